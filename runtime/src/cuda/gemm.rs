//! cuBLASLt GEMMs in the `nn.Linear` layout: `D[M,N] = alpha·X[M,K]·W[N,K]ᵀ + beta·C (+ bias)`,
//! row-major, bf16 inputs, f32 accumulation and scale, bf16 or f32 output. C is D itself
//! ([`Gemm::linear`], [`Gemm::linear_raw`]) or a separate matrix of D's type
//! ([`Gemm::matmul_raw`], [`Gemm::linear_c_bias`]); the bias is cuBLASLt's bias epilogue, a
//! `[N]` vector of D's type added to every row. So a block's residual add, and a projection's
//! bias, ride on the GEMM with no extra launch, and D is rounded once.
//!
//! cuBLASLt is column-major; a row-major `Y[M,N]` is the column-major `Yᵀ[N,M]`, so we ask for
//! `Yᵀ = W·Xᵀ` with `op(A) = Wᵀ` (A = W stored `K×N`, transposed) and `B = Xᵀ` (stored `K×M`).
//! The chosen algorithm is cached per (shape, strides, C's stride, output type, bias, pointer
//! alignment).

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

/// A C operand apart from D in `D = alpha·X·Wᵀ + beta·C`: its device address, row stride and
/// batch stride (elements), of D's type and `m × n` like D. C may be D itself (same address, row
/// and batch strides) but must not overlap it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmC {
    pub ptr: u64,
    /// Row stride (≥ n).
    pub ld: usize,
    /// Batch stride (ignored for one GEMM).
    pub stride: usize,
}

/// A bias vector of `n` elements added to every row of D (cuBLASLt's bias epilogue). It must be
/// of D's type ([`Gemm::bias_supported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmBias {
    pub ptr: u64,
    pub dtype: GemmOut,
}

/// The bias address alignment the epilogue is given (cuBLASLt's vectorised bias loads fault on
/// less; allocations are 256-byte aligned).
const BIAS_ALIGN: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AlgoKey {
    shape: GemmShape,
    out: GemmOut,
    /// C's row and batch strides.
    c_strides: (usize, usize),
    bias: Option<GemmOut>,
    /// X, W, C, D.
    align: [u32; 4],
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

    /// `D = alpha·X·Wᵀ + beta·C + bias` on buffers: C a separate `[m, n]` matrix with row stride
    /// `ldc` (batch stride `m·ldc`), the bias an optional `[n]` vector, both of D's type; sizes
    /// checked against `shape`.
    #[allow(clippy::too_many_arguments)]
    pub fn linear_c_bias<O: GemmOutElem>(
        &self,
        x: &GpuBuffer<bf16>,
        w: &GpuBuffer<bf16>,
        c: &GpuBuffer<O>,
        ldc: usize,
        bias: Option<&GpuBuffer<O>>,
        d: &mut GpuBuffer<O>,
        shape: GemmShape,
        alpha: f32,
        beta: f32,
    ) -> Result<(), CudaError> {
        shape.validate()?;
        let c_shape = GemmShape {
            ldy: ldc,
            stride_y: shape.m * ldc,
            ..shape
        };
        c_shape.validate()?;
        let mut checks = vec![
            ("X of the GEMM", shape.x_len(), x.len()),
            ("W of the GEMM", shape.w_len(), w.len()),
            ("C of the GEMM", c_shape.y_len(), c.len()),
            ("D of the GEMM", shape.y_len(), d.len()),
        ];
        if let Some(b) = bias {
            checks.push(("bias of the GEMM", shape.n, b.len()));
        }
        for (what, need, have) in checks {
            if have < need {
                return Err(CudaError::SizeMismatch {
                    what: format!("{what} {shape:?}"),
                    expected: need,
                    got: have,
                });
            }
        }
        let gc = GemmC {
            ptr: c.device_ptr(),
            ld: ldc,
            stride: c_shape.stride_y,
        };
        let gb = bias.map(|b| GemmBias {
            ptr: b.device_ptr(),
            dtype: O::OUT,
        });
        // SAFETY: every buffer is live and large enough for `shape` and its strides (checked
        // above); C and D are distinct buffers (one is borrowed mutably), so they do not overlap.
        unsafe {
            self.matmul_raw(
                x.device_ptr(),
                w.device_ptr(),
                d.device_ptr(),
                O::OUT,
                shape,
                alpha,
                beta,
                Some(gc),
                gb,
            )
        }
    }

    /// Whether the bias epilogue takes `bias` for an output of type `out`: the bias must be of
    /// D's type (cuBLASLt's default; other combinations are not supported for bf16 GEMMs) and
    /// 16-byte aligned.
    pub fn bias_supported(out: GemmOut, bias: GemmBias) -> bool {
        bias.dtype == out && alignment(bias.ptr) >= BIAS_ALIGN
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
        // SAFETY: forwarded from the caller; C is D.
        unsafe { self.matmul_raw(x, w, y, out, shape, alpha, beta, None, None) }
    }

    /// `D = alpha·X·Wᵀ + beta·C (+ bias)` on raw device addresses: X and W bf16; D of type `out`
    /// with `shape`'s `ldy`/`stride_y`; C = `c` (of D's type) or D itself when `None`; `bias` an
    /// `[n]` vector of D's type ([`Gemm::bias_supported`], else an `InvalidGemm` error).
    ///
    /// # Safety
    /// `x`, `w`, `d` must address live device memory of at least `shape.x_len()`, `w_len()`,
    /// `y_len()` elements of their types, C (when given) `m × n` elements per batch with its
    /// strides, and the bias `n` elements, all on this `Gemm`'s device. C must be D exactly or
    /// not overlap D.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn matmul_raw(
        &self,
        x: u64,
        w: u64,
        d: u64,
        out: GemmOut,
        shape: GemmShape,
        alpha: f32,
        beta: f32,
        c: Option<GemmC>,
        bias: Option<GemmBias>,
    ) -> Result<(), CudaError> {
        shape.validate()?;
        let c = c.unwrap_or(GemmC {
            ptr: d,
            ld: shape.ldy,
            stride: shape.stride_y,
        });
        if c.ld < shape.n {
            return Err(CudaError::InvalidGemm {
                what: format!("C's row stride {} is below n = {}: {shape:?}", c.ld, shape.n),
            });
        }
        if c.ptr == d && (c.ld != shape.ldy || (shape.batch > 1 && c.stride != shape.stride_y)) {
            return Err(CudaError::InvalidGemm {
                what: format!("C is D in place but with other strides ({c:?}): {shape:?}"),
            });
        }
        if let Some(b) = bias {
            if !Self::bias_supported(out, b) {
                return Err(CudaError::InvalidGemm {
                    what: format!(
                        "bias {b:?} for a {out:?} output: the epilogue takes a bias of D's type, \
                         {BIAS_ALIGN}-byte aligned"
                    ),
                });
            }
        }
        let what = format!(
            "D[{},{}] = X[{},{}]·W[{},{}]ᵀ{}{} ({out:?} out, batch {})",
            shape.m,
            shape.n,
            shape.m,
            shape.k,
            shape.n,
            shape.k,
            if c.ptr == d { "" } else { " + βC" },
            if bias.is_some() { " + bias" } else { "" },
            shape.batch
        );
        let bf = sys::cudaDataType::CUDA_R_16BF;
        let a = layout(bf, shape.k, shape.n, shape.ldw, shape.batch, shape.stride_w, &what)?;
        let b = layout(bf, shape.k, shape.m, shape.ldx, shape.batch, shape.stride_x, &what)?;
        let c_layout = layout(out.cuda_type(), shape.n, shape.m, c.ld, shape.batch, c.stride, &what)?;
        let d_layout = layout(
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
        use sys::cublasLtMatmulDescAttributes_t as A;
        // SAFETY: the attribute buffer is a live local of the documented type.
        unsafe {
            result::set_matmul_desc_attribute(
                desc.0,
                A::CUBLASLT_MATMUL_DESC_TRANSA,
                (&trans_a) as *const i32 as *const c_void,
                std::mem::size_of::<i32>(),
            )
        }
        .map_err(cublas_err("cublasLtMatmulDescSetAttribute(TRANSA)", &what))?;
        if let Some(bias) = bias {
            // D is column-major `n × m` here, so the bias runs along D's rows: one value per
            // output channel, broadcast over the m tokens.
            let epilogue = sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS;
            let ptr = bias.ptr as *const c_void;
            let ty = out.cuda_type();
            // SAFETY: the attribute buffers are live locals of the documented types (an enum of
            // uint32 size, a device pointer, an int32 cudaDataType).
            unsafe {
                result::set_matmul_desc_attribute(
                    desc.0,
                    A::CUBLASLT_MATMUL_DESC_EPILOGUE,
                    (&epilogue) as *const sys::cublasLtEpilogue_t as *const c_void,
                    std::mem::size_of::<sys::cublasLtEpilogue_t>(),
                )
                .map_err(cublas_err("cublasLtMatmulDescSetAttribute(EPILOGUE)", &what))?;
                result::set_matmul_desc_attribute(
                    desc.0,
                    A::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                    (&ptr) as *const *const c_void as *const c_void,
                    std::mem::size_of::<*const c_void>(),
                )
                .map_err(cublas_err("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", &what))?;
                result::set_matmul_desc_attribute(
                    desc.0,
                    A::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                    (&ty) as *const sys::cudaDataType as *const c_void,
                    std::mem::size_of::<sys::cudaDataType>(),
                )
                .map_err(cublas_err("cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)", &what))?;
            }
        }

        let align = [alignment(x), alignment(w), alignment(c.ptr), alignment(d)];
        let key = AlgoKey {
            shape,
            out,
            c_strides: (c.ld, c.stride),
            bias: bias.map(|b| b.dtype),
            align,
        };
        let cached = self.algos.lock().ok().and_then(|m| m.get(&key).copied());
        let algo = match cached {
            Some(a) => a,
            None => {
                let algo = self.heuristic(&desc, &a, &b, &c_layout, &d_layout, align, &what)?;
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
                c.ptr as *const c_void,
                c_layout.0,
                d as *mut c_void,
                d_layout.0,
                &algo,
                self.workspace.device_ptr() as *mut c_void,
                self.workspace.num_bytes(),
                self.stream.cu_stream() as sys::cudaStream_t,
            )
        }
        .map_err(cublas_err("cublasLtMatmul", &what))
    }

    #[allow(clippy::too_many_arguments)]
    fn heuristic(
        &self,
        desc: &Desc,
        a: &Layout,
        b: &Layout,
        c: &Layout,
        d: &Layout,
        align: [u32; 4],
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
            // A = W, B = X.
            for (attr, v) in [
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align[1]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align[0]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align[2]),
                (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align[3]),
            ] {
                result::set_matmul_pref_attribute(
                    pref.0,
                    attr,
                    (&v) as *const u32 as *const c_void,
                    std::mem::size_of::<u32>(),
                )
                .map_err(cublas_err("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)", what))?;
            }
            result::get_matmul_algo_heuristic(self.handle, desc.0, a.0, b.0, c.0, d.0, pref.0)
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
