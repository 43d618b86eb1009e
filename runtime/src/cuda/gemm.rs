//! cuBLASLt GEMMs in the `nn.Linear` layout: `Y[M,N] = alpha·X[M,K]·W[N,K]ᵀ + beta·Y`, row-major,
//! bf16 inputs, f32 accumulation and scale, bf16 or f32 output. `beta = 1` accumulates into Y, so
//! the residual add of a block rides on its output projection.
//!
//! cuBLASLt is column-major; a row-major `Y[M,N]` is the column-major `Yᵀ[N,M]`, so we ask for
//! `Yᵀ = W·Xᵀ` with `op(A) = Wᵀ` (A = W stored `K×N`, transposed) and `B = Xᵀ` (stored `K×M`).
//! The chosen algorithm is cached per (shape, strides, output type, pointer alignment).

use super::device::{Gpu, GpuBuffer, GpuElem};
use super::error::CudaError;
use cudarc::cublaslt::result::{self, CublasError};
use cudarc::cublaslt::sys;
use cudarc::driver::CudaStream;
use half::bf16;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// cuBLASLt's recommended workspace on Hopper.
const WORKSPACE_BYTES: usize = 32 * 1024 * 1024;

/// The element type of Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmOut {
    Bf16,
    F32,
}

impl GemmOut {
    fn cuda_type(self) -> sys::cudaDataType {
        match self {
            GemmOut::Bf16 => sys::cudaDataType::CUDA_R_16BF,
            GemmOut::F32 => sys::cudaDataType::CUDA_R_32F,
        }
    }
}

/// Output element types [`Gemm::linear`] accepts.
pub trait GemmOutElem: GpuElem {
    const OUT: GemmOut;
}
impl GemmOutElem for bf16 {
    const OUT: GemmOut = GemmOut::Bf16;
}
impl GemmOutElem for f32 {
    const OUT: GemmOut = GemmOut::F32;
}

/// Sizes and strides of `Y[M,N] = X[M,K]·W[N,K]ᵀ`, all in elements. Row strides (`ld*`) let X, W
/// or Y be column slices of wider row-major buffers; batch strides (`stride_*`) give a
/// strided-batched GEMM (a stride of 0 shares that operand across the batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Row stride of X (≥ k).
    pub ldx: usize,
    /// Row stride of W (≥ k).
    pub ldw: usize,
    /// Row stride of Y (≥ n).
    pub ldy: usize,
    pub batch: usize,
    pub stride_x: usize,
    pub stride_w: usize,
    pub stride_y: usize,
}

impl GemmShape {
    /// A dense, unbatched `nn.Linear`: X `[m,k]`, W `[n,k]`, Y `[m,n]`.
    pub fn linear(m: usize, n: usize, k: usize) -> GemmShape {
        GemmShape {
            m,
            n,
            k,
            ldx: k,
            ldw: k,
            ldy: n,
            batch: 1,
            stride_x: m * k,
            stride_w: n * k,
            stride_y: m * n,
        }
    }

    /// `batch` dense GEMMs laid one after another in each buffer.
    pub fn batched(batch: usize, m: usize, n: usize, k: usize) -> GemmShape {
        GemmShape {
            batch,
            ..GemmShape::linear(m, n, k)
        }
    }

    /// Elements an operand must span: the last batch's offset plus its last row's reach.
    fn span(rows: usize, cols: usize, ld: usize, batch: usize, stride: usize) -> usize {
        if rows == 0 || cols == 0 || batch == 0 {
            return 0;
        }
        (batch - 1) * stride + (rows - 1) * ld + cols
    }

    /// Elements X must hold.
    pub fn x_len(&self) -> usize {
        Self::span(self.m, self.k, self.ldx, self.batch, self.stride_x)
    }

    /// Elements W must hold.
    pub fn w_len(&self) -> usize {
        Self::span(self.n, self.k, self.ldw, self.batch, self.stride_w)
    }

    /// Elements Y must hold.
    pub fn y_len(&self) -> usize {
        Self::span(self.m, self.n, self.ldy, self.batch, self.stride_y)
    }

    fn validate(&self) -> Result<(), CudaError> {
        let bad = |what: String| Err(CudaError::InvalidGemm { what });
        if self.m == 0 || self.n == 0 || self.k == 0 || self.batch == 0 {
            return bad(format!("shape with a zero size: {self:?}"));
        }
        if self.ldx < self.k || self.ldw < self.k || self.ldy < self.n {
            return bad(format!("leading dimensions smaller than the rows they hold: {self:?}"));
        }
        let limit = i32::MAX as usize;
        if [self.m, self.n, self.k, self.batch].iter().any(|&d| d > limit) {
            return bad(format!("dimension above i32::MAX: {self:?}"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AlgoKey {
    shape: GemmShape,
    out: GemmOut,
    align: [u32; 3],
}

/// Owns a cuBLASLt handle and workspace bound to a [`Gpu`]'s stream.
pub struct Gemm {
    handle: sys::cublasLtHandle_t,
    workspace: GpuBuffer<u8>,
    stream: Arc<CudaStream>,
    algos: Mutex<HashMap<AlgoKey, sys::cublasLtMatmulAlgo_t>>,
}

// SAFETY: the handle is used only through `&self` calls that enqueue on one stream; cuBLASLt
// handles may be shared between threads when not used concurrently on different streams.
unsafe impl Send for Gemm {}
// SAFETY: see `Send`; the algorithm cache is behind a mutex.
unsafe impl Sync for Gemm {}

impl std::fmt::Debug for Gemm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemm").finish_non_exhaustive()
    }
}

impl Drop for Gemm {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

/// Whether `libcublasLt` can be loaded.
pub fn cublaslt_available() -> bool {
    // SAFETY: only tries to dlopen candidate names.
    unsafe { sys::is_culib_present() }
}

fn cublas_err<'a>(call: &'static str, what: &'a str) -> impl Fn(CublasError) -> CudaError + 'a {
    move |source| CudaError::Cublas {
        call,
        what: what.to_string(),
        source,
    }
}

/// The largest power of two (≤ 256) dividing a device address: the alignment cuBLASLt may assume.
fn alignment(ptr: u64) -> u32 {
    if ptr == 0 {
        return 256;
    }
    (1u64 << ptr.trailing_zeros().min(8)) as u32
}

/// RAII wrappers so every descriptor is destroyed on every path.
struct Layout(sys::cublasLtMatrixLayout_t);
impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: created by `create_matrix_layout`, destroyed once.
        let _ = unsafe { result::destroy_matrix_layout(self.0) };
    }
}
struct Desc(sys::cublasLtMatmulDesc_t);
impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_desc`, destroyed once.
        let _ = unsafe { result::destroy_matmul_desc(self.0) };
    }
}
struct Pref(sys::cublasLtMatmulPreference_t);
impl Drop for Pref {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_pref`, destroyed once.
        let _ = unsafe { result::destroy_matmul_pref(self.0) };
    }
}

fn layout(
    ty: sys::cudaDataType,
    rows: usize,
    cols: usize,
    ld: usize,
    batch: usize,
    stride: usize,
    what: &str,
) -> Result<Layout, CudaError> {
    let l = Layout(
        result::create_matrix_layout(ty, rows as u64, cols as u64, ld as i64)
            .map_err(cublas_err("cublasLtMatrixLayoutCreate", what))?,
    );
    if batch > 1 {
        let count = batch as i32;
        let stride = stride as i64;
        // SAFETY: the attribute buffers are live locals of the documented types (int32, int64).
        unsafe {
            result::set_matrix_layout_attribute(
                l.0,
                sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                (&count) as *const i32 as *const c_void,
                std::mem::size_of::<i32>(),
            )
            .map_err(cublas_err("cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)", what))?;
            result::set_matrix_layout_attribute(
                l.0,
                sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                (&stride) as *const i64 as *const c_void,
                std::mem::size_of::<i64>(),
            )
            .map_err(cublas_err(
                "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)",
                what,
            ))?;
        }
    }
    Ok(l)
}

impl Gemm {
    /// A cuBLASLt handle and a 32 MiB workspace on `gpu`'s stream.
    pub fn new(gpu: &Gpu) -> Result<Gemm, CudaError> {
        if !cublaslt_available() {
            return Err(CudaError::CublasUnavailable);
        }
        let handle = result::create_handle().map_err(cublas_err("cublasLtCreate", "a new handle"))?;
        let workspace = match gpu.alloc_zeros::<u8>(WORKSPACE_BYTES, "the cuBLASLt workspace") {
            Ok(w) => w,
            Err(e) => {
                // SAFETY: created just above and not shared.
                let _ = unsafe { result::destroy_handle(handle) };
                return Err(e);
            }
        };
        Ok(Gemm {
            handle,
            workspace,
            stream: gpu.stream().clone(),
            algos: Mutex::new(HashMap::new()),
        })
    }

    /// Number of distinct GEMM configurations whose algorithm is cached.
    pub fn cached_algorithms(&self) -> usize {
        self.algos.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// `Y = alpha·X·Wᵀ + beta·Y` on buffers, with sizes checked against `shape`.
    pub fn linear<O: GemmOutElem>(
        &self,
        x: &GpuBuffer<bf16>,
        w: &GpuBuffer<bf16>,
        y: &mut GpuBuffer<O>,
        shape: GemmShape,
        alpha: f32,
        beta: f32,
    ) -> Result<(), CudaError> {
        shape.validate()?;
        for (what, need, have) in [
            ("X of the GEMM", shape.x_len(), x.len()),
            ("W of the GEMM", shape.w_len(), w.len()),
            ("Y of the GEMM", shape.y_len(), y.len()),
        ] {
            if have < need {
                return Err(CudaError::SizeMismatch {
                    what: format!("{what} {shape:?}"),
                    expected: need,
                    got: have,
                });
            }
        }
        // SAFETY: the three buffers are live and large enough for `shape` (checked above).
        unsafe {
            self.linear_raw(
                x.device_ptr(),
                w.device_ptr(),
                y.device_ptr(),
                O::OUT,
                shape,
                alpha,
                beta,
            )
        }
    }

    /// `Y = alpha·X·Wᵀ + beta·Y` on raw device addresses (X and W bf16, Y of type `out`), for
    /// generated code that launches on offsets into larger arenas.
    ///
    /// # Safety
    /// `x`, `w`, `y` must address live device memory of at least `shape.x_len()`, `w_len()`,
    /// `y_len()` elements of their types, on this `Gemm`'s device.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn linear_raw(
        &self,
        x: u64,
        w: u64,
        y: u64,
        out: GemmOut,
        shape: GemmShape,
        alpha: f32,
        beta: f32,
    ) -> Result<(), CudaError> {
        shape.validate()?;
        let what = format!(
            "Y[{},{}] = X[{},{}]·W[{},{}]ᵀ ({out:?} out, batch {})",
            shape.m, shape.n, shape.m, shape.k, shape.n, shape.k, shape.batch
        );
        let bf = sys::cudaDataType::CUDA_R_16BF;
        let a = layout(bf, shape.k, shape.n, shape.ldw, shape.batch, shape.stride_w, &what)?;
        let b = layout(bf, shape.k, shape.m, shape.ldx, shape.batch, shape.stride_x, &what)?;
        let c = layout(
            out.cuda_type(),
            shape.n,
            shape.m,
            shape.ldy,
            shape.batch,
            shape.stride_y,
            &what,
        )?;
        let desc = Desc(
            result::create_matmul_desc(
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                sys::cudaDataType::CUDA_R_32F,
            )
            .map_err(cublas_err("cublasLtMatmulDescCreate", &what))?,
        );
        // cublasOperation_t: CUBLAS_OP_T = 1 (an int32 attribute).
        let trans_a: i32 = 1;
        // SAFETY: the attribute buffer is a live local of the documented type.
        unsafe {
            result::set_matmul_desc_attribute(
                desc.0,
                sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                (&trans_a) as *const i32 as *const c_void,
                std::mem::size_of::<i32>(),
            )
        }
        .map_err(cublas_err("cublasLtMatmulDescSetAttribute(TRANSA)", &what))?;

        let align = [alignment(x), alignment(w), alignment(y)];
        let key = AlgoKey { shape, out, align };
        let cached = self.algos.lock().ok().and_then(|m| m.get(&key).copied());
        let algo = match cached {
            Some(a) => a,
            None => {
                let algo = self.heuristic(&desc, &a, &b, &c, align, &what)?;
                if let Ok(mut m) = self.algos.lock() {
                    m.insert(key, algo);
                }
                algo
            }
        };
        // SAFETY: descriptors are live; the caller guarantees the operands; the workspace is ours.
        unsafe {
            result::matmul(
                self.handle,
                desc.0,
                (&alpha) as *const f32 as *const c_void,
                (&beta) as *const f32 as *const c_void,
                w as *const c_void,
                a.0,
                x as *const c_void,
                b.0,
                y as *const c_void,
                c.0,
                y as *mut c_void,
                c.0,
                &algo,
                self.workspace.device_ptr() as *mut c_void,
                self.workspace.num_bytes(),
                self.stream.cu_stream() as sys::cudaStream_t,
            )
        }
        .map_err(cublas_err("cublasLtMatmul", &what))
    }

    fn heuristic(
        &self,
        desc: &Desc,
        a: &Layout,
        b: &Layout,
        c: &Layout,
        align: [u32; 3],
        what: &str,
    ) -> Result<sys::cublasLtMatmulAlgo_t, CudaError> {
        let pref = Pref(result::create_matmul_pref().map_err(cublas_err("cublasLtMatmulPreferenceCreate", what))?);
        let ws = self.workspace.num_bytes() as u64;
        use sys::cublasLtMatmulPreferenceAttributes_t as P;
        // SAFETY: attribute buffers are live locals of the documented types (uint64, uint32).
        unsafe {
            result::set_matmul_pref_attribute(
                pref.0,
                P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&ws) as *const u64 as *const c_void,
                std::mem::size_of::<u64>(),
            )
            .map_err(cublas_err(
                "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
                what,
            ))?;
            // A = W, B = X, C = D = Y.
            for (attr, v) in [
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align[1]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align[0]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align[2]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align[2]),
            ] {
                result::set_matmul_pref_attribute(
                    pref.0,
                    attr,
                    (&v) as *const u32 as *const c_void,
                    std::mem::size_of::<u32>(),
                )
                .map_err(cublas_err("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)", what))?;
            }
            result::get_matmul_algo_heuristic(self.handle, desc.0, a.0, b.0, c.0, c.0, pref.0)
                .map(|h| h.algo)
                .map_err(cublas_err("cublasLtMatmulAlgoGetHeuristic", what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_last_element() {
        let s = GemmShape::linear(3, 5, 4);
        assert_eq!((s.x_len(), s.w_len(), s.y_len()), (12, 20, 15));
        let b = GemmShape::batched(2, 3, 5, 4);
        assert_eq!((b.x_len(), b.w_len(), b.y_len()), (24, 40, 30));
        // Y as a column slice of a [3, 16] buffer.
        let sl = GemmShape { ldy: 16, ..s };
        assert_eq!(sl.y_len(), 2 * 16 + 5);
        // Shared weight across the batch.
        let shared = GemmShape { stride_w: 0, ..b };
        assert_eq!(shared.w_len(), 20);
    }

    #[test]
    fn invalid_shapes_are_errors() {
        assert!(GemmShape::linear(0, 5, 4).validate().is_err());
        assert!(GemmShape {
            ldx: 3,
            ..GemmShape::linear(3, 5, 4)
        }
        .validate()
        .is_err());
        assert!(GemmShape::linear(3, 5, 4).validate().is_ok());
    }

    #[test]
    fn alignment_is_the_largest_power_of_two_up_to_256() {
        assert_eq!(alignment(0x1000), 256);
        assert_eq!(alignment(0x1002), 2);
        assert_eq!(alignment(0x1010), 16);
    }
}
