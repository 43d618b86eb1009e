//! A bandwidth-bound GEMV for few rows (decode): `D[m,N] = alpha·X[m,K]·W[N,K]ᵀ + beta·C + bias`
//! for `m ≤ GEMV_MAX_ROWS`, the same operation as [`Gemm::matmul_raw`](super::gemm::Gemm) with
//! one batch. At m = 1 cuBLASLt reaches about 45% of the copy bandwidth on the decode shapes;
//! this kernel streams W once with 16-byte loads spread over every SM.
//!
//! Layout: a block of 256 threads owns `COLS` output columns (4 for m ≤ 2, else 8). Each thread
//! takes the 8-element chunks `t, t + 256, …` of K and, for each chunk, loads the chunk of every
//! row of X once and of each of its `COLS` rows of W, accumulating `m × COLS` f32 partial sums.
//! Partials are summed by a butterfly of warp shuffles, then over the 8 warps in warp order:
//! the order is fixed, so runs are bit-identical. K not a multiple of 8, or operands not 16-byte
//! aligned, take a scalar loop with the same structure.

use super::device::{Gpu, KernelArg, LaunchDims};
use super::error::CudaError;
use super::gemm::{GemmBias, GemmC, GemmOut, GemmShape};
use super::kernel_cache::KernelCache;

/// The most rows (`m`) the GEMV kernels take.
pub const GEMV_MAX_ROWS: usize = 8;

/// Threads per block (the kernel's reduction assumes 8 warps).
const THREADS: u32 = 256;

/// The GEMV kernels: one per output type and row count `1..=8`.
const SOURCE: &str = r#"#include <cuda_bf16.h>
__device__ __forceinline__ float lo_bf(unsigned u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float hi_bf(unsigned u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ float ld_f(const float* p) { return *p; }
__device__ __forceinline__ float ld_f(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st_f(float* p, float v) { *p = v; }
__device__ __forceinline__ void st_f(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }

template <typename T, int M>
__device__ void gemv(const __nv_bfloat16* __restrict__ x, int ldx, const __nv_bfloat16* __restrict__ w, int ldw,
                     T* d, int ldd, const T* c, int ldc, const __nv_bfloat16* __restrict__ bias_bf16,
                     const float* __restrict__ bias_f32, float alpha, float beta, int n, int k, int vec) {
  constexpr int COLS = M <= 2 ? 4 : 8;
  constexpr int WARPS = 8;
  __shared__ float part[WARPS][M][COLS];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const long long col0 = (long long)blockIdx.x * COLS;
  float acc[M][COLS];
#pragma unroll
  for (int r = 0; r < M; ++r)
#pragma unroll
    for (int j = 0; j < COLS; ++j) acc[r][j] = 0.0f;
  // Columns past n read row n - 1 (in bounds) and are never written.
  const __nv_bfloat16* wr[COLS];
#pragma unroll
  for (int j = 0; j < COLS; ++j) {
    long long cj = col0 + j < n ? col0 + j : n - 1;
    wr[j] = w + cj * ldw;
  }
  if (vec) {
    const int nv = k >> 3;
#pragma unroll 2
    for (int v = tid; v < nv; v += 256) {
      uint4 wv[COLS];
#pragma unroll
      for (int j = 0; j < COLS; ++j) wv[j] = __ldcs(reinterpret_cast<const uint4*>(wr[j]) + v);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + (long long)r * ldx) + v);
        const float xf[8] = {lo_bf(xv.x), hi_bf(xv.x), lo_bf(xv.y), hi_bf(xv.y),
                             lo_bf(xv.z), hi_bf(xv.z), lo_bf(xv.w), hi_bf(xv.w)};
#pragma unroll
        for (int j = 0; j < COLS; ++j) {
          float a = acc[r][j];
          a = fmaf(xf[0], lo_bf(wv[j].x), a);
          a = fmaf(xf[1], hi_bf(wv[j].x), a);
          a = fmaf(xf[2], lo_bf(wv[j].y), a);
          a = fmaf(xf[3], hi_bf(wv[j].y), a);
          a = fmaf(xf[4], lo_bf(wv[j].z), a);
          a = fmaf(xf[5], hi_bf(wv[j].z), a);
          a = fmaf(xf[6], lo_bf(wv[j].w), a);
          a = fmaf(xf[7], hi_bf(wv[j].w), a);
          acc[r][j] = a;
        }
      }
    }
  } else {
    for (int i = tid; i < k; i += 256) {
      float wf[COLS];
#pragma unroll
      for (int j = 0; j < COLS; ++j) wf[j] = __bfloat162float(wr[j][i]);
#pragma unroll
      for (int r = 0; r < M; ++r) {
        const float xf = __bfloat162float(x[(long long)r * ldx + i]);
#pragma unroll
        for (int j = 0; j < COLS; ++j) acc[r][j] = fmaf(xf, wf[j], acc[r][j]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < M; ++r)
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      float a = acc[r][j];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
      acc[r][j] = a;
    }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < M; ++r)
#pragma unroll
      for (int j = 0; j < COLS; ++j) part[warp][r][j] = acc[r][j];
  }
  __syncthreads();
  if (tid < M * COLS) {
    const int r = tid / COLS, j = tid % COLS;
    const long long col = col0 + j;
    if (col < n) {
      float s = 0.0f;
#pragma unroll
      for (int q = 0; q < WARPS; ++q) s += part[q][r][j];
      float v = alpha * s;
      if (beta != 0.0f) v = fmaf(beta, ld_f(c + (long long)r * ldc + col), v);
      if (bias_bf16) v += __bfloat162float(bias_bf16[col]);
      if (bias_f32) v += bias_f32[col];
      st_f(d + (long long)r * ldd + col, v);
    }
  }
}

#define MODELC_GEMV(T, NAME, M)                                                                        \
  extern "C" __global__ void __launch_bounds__(256) modelc_gemv_##NAME##_m##M(                          \
      const __nv_bfloat16* x, int ldx, const __nv_bfloat16* w, int ldw, T* d, int ldd, const T* c, int ldc, \
      const __nv_bfloat16* bias_bf16, const float* bias_f32, float alpha, float beta, int n, int k, int vec) { \
    gemv<T, M>(x, ldx, w, ldw, d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, n, k, vec);              \
  }
#define MODELC_GEMV_ALL(M) MODELC_GEMV(__nv_bfloat16, bf16, M) MODELC_GEMV(float, f32, M)
MODELC_GEMV_ALL(1) MODELC_GEMV_ALL(2) MODELC_GEMV_ALL(3) MODELC_GEMV_ALL(4)
MODELC_GEMV_ALL(5) MODELC_GEMV_ALL(6) MODELC_GEMV_ALL(7) MODELC_GEMV_ALL(8)
"#;

/// The entry name for an output type and row count.
fn entry(out: GemmOut, m: usize) -> String {
    let t = match out {
        GemmOut::Bf16 => "bf16",
        GemmOut::F32 => "f32",
    };
    format!("modelc_gemv_{t}_m{m}")
}

/// Columns one block owns for `m` rows (the kernel's `COLS`).
fn cols_per_block(m: usize) -> usize {
    if m <= 2 {
        4
    } else {
        8
    }
}

/// Compiles (or fetches from `cache`) and loads the GEMV kernels, once per [`Gpu`].
pub fn load_gemv(gpu: &mut Gpu, cache: &KernelCache) -> Result<(), CudaError> {
    if gpu.has_kernel(&entry(GemmOut::Bf16, 1)) {
        return Ok(());
    }
    let names: Vec<String> = (1..=GEMV_MAX_ROWS)
        .flat_map(|m| [entry(GemmOut::Bf16, m), entry(GemmOut::F32, m)])
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    gpu.compile_and_load(cache, SOURCE, &refs)
}

/// Whether [`gemv_raw`] takes a GEMM of this shape: one batch of at most [`GEMV_MAX_ROWS`] rows.
pub fn gemv_supported(shape: &GemmShape) -> bool {
    shape.batch == 1 && (1..=GEMV_MAX_ROWS).contains(&shape.m)
}

/// `D = alpha·X·Wᵀ + beta·C (+ bias)` like [`Gemm::matmul_raw`](super::gemm::Gemm::matmul_raw)
/// for one batch of `m ≤ GEMV_MAX_ROWS` rows: X and W bf16; D of type `out` with row stride
/// `shape.ldy`; C = `c` (of D's type) or D itself when `None` (read only when `beta ≠ 0`); the
/// bias an `[n]` vector, bf16 or f32. Needs [`load_gemv`] first. Works inside stream capture.
///
/// # Safety
/// `x`, `w`, `d` must address live device memory of at least `shape.x_len()`, `w_len()`,
/// `y_len()` elements of their types, C (when given) `m` rows of `n` elements at its row stride,
/// and the bias `n` elements, on `gpu`'s device. C must be D exactly or not overlap D.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_raw(
    gpu: &Gpu,
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
    let bad = |what: String| Err(CudaError::InvalidGemm { what });
    if !gemv_supported(&shape) {
        return bad(format!(
            "the GEMV takes one batch of 1 to {GEMV_MAX_ROWS} rows: {shape:?}"
        ));
    }
    if shape.n == 0 || shape.k == 0 || shape.ldx < shape.k || shape.ldw < shape.k || shape.ldy < shape.n {
        return bad(format!("GEMV shape with a zero size or short row strides: {shape:?}"));
    }
    let c = c.unwrap_or(GemmC {
        ptr: d,
        ld: shape.ldy,
        stride: shape.stride_y,
    });
    if c.ld < shape.n {
        return bad(format!("C's row stride {} is below n = {}: {shape:?}", c.ld, shape.n));
    }
    if c.ptr == d && c.ld != shape.ldy {
        return bad(format!(
            "C is D in place but with another row stride ({c:?}): {shape:?}"
        ));
    }
    let int = |v: usize, what: &str| {
        i32::try_from(v).map_err(|_| CudaError::InvalidGemm {
            what: format!("GEMV {what} {v} above i32::MAX: {shape:?}"),
        })
    };
    let (bias_bf16, bias_f32) = match bias {
        Some(GemmBias {
            ptr,
            dtype: GemmOut::Bf16,
        }) => (ptr, 0),
        Some(GemmBias {
            ptr,
            dtype: GemmOut::F32,
        }) => (0, ptr),
        None => (0, 0),
    };
    // 16-byte loads of X and W: chunks of 8 whole elements on 16-byte boundaries.
    let vec = shape.k.is_multiple_of(8)
        && shape.ldx.is_multiple_of(8)
        && shape.ldw.is_multiple_of(8)
        && x.is_multiple_of(16)
        && w.is_multiple_of(16);
    let cols = cols_per_block(shape.m);
    let grid = u32::try_from(shape.n.div_ceil(cols)).map_err(|_| CudaError::InvalidGemm {
        what: format!("GEMV grid above u32::MAX: {shape:?}"),
    })?;
    let args = [
        KernelArg::Ptr(x),
        KernelArg::I32(int(shape.ldx, "row stride of X")?),
        KernelArg::Ptr(w),
        KernelArg::I32(int(shape.ldw, "row stride of W")?),
        KernelArg::Ptr(d),
        KernelArg::I32(int(shape.ldy, "row stride of D")?),
        KernelArg::Ptr(c.ptr),
        KernelArg::I32(int(c.ld, "row stride of C")?),
        KernelArg::Ptr(bias_bf16),
        KernelArg::Ptr(bias_f32),
        KernelArg::F32(alpha),
        KernelArg::F32(beta),
        KernelArg::I32(int(shape.n, "n")?),
        KernelArg::I32(int(shape.k, "k")?),
        KernelArg::I32(i32::from(vec)),
    ];
    // SAFETY: the arguments follow the kernel's signature; the caller guarantees the operands.
    unsafe {
        gpu.launch(
            &entry(out, shape.m),
            LaunchDims::new((grid, 1, 1), (THREADS, 1, 1), 0),
            &args,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_shapes_are_one_batch_of_few_rows() {
        assert!(gemv_supported(&GemmShape::linear(1, 4096, 2048)));
        assert!(gemv_supported(&GemmShape::linear(8, 37, 1000)));
        assert!(!gemv_supported(&GemmShape::linear(9, 37, 1000)));
        assert!(!gemv_supported(&GemmShape::batched(2, 1, 37, 1000)));
    }

    /// Assembles every entry for sm_90 (the H100): the source compiles, and no kernel spills
    /// (the `m × COLS` accumulators must stay in registers, or the kernel stops being
    /// bandwidth-bound).
    #[test]
    fn every_entry_assembles_for_sm90_without_spills() {
        use crate::cuda::nvrtc::{default_include_dirs, nvrtc_or_skip, ptxas_report};
        if !nvrtc_or_skip("the GEMV assembly test") {
            return;
        }
        let log =
            ptxas_report(SOURCE, "modelc_gemv", "sm_90", &default_include_dirs()).unwrap_or_else(|e| panic!("{e}"));
        let mut reports = 0;
        for line in log.lines().filter(|l| l.contains("spill")) {
            reports += 1;
            assert!(
                line.contains(" 0 bytes spill stores"),
                "a GEMV kernel spills: {line}\n{log}"
            );
        }
        assert_eq!(reports, 2 * GEMV_MAX_ROWS, "one report per entry expected:\n{log}");
        eprintln!("{log}");
    }

    #[test]
    fn the_source_defines_every_entry() {
        for m in 1..=GEMV_MAX_ROWS {
            for out in [GemmOut::Bf16, GemmOut::F32] {
                let name = entry(out, m);
                let (t, _) = name.trim_start_matches("modelc_gemv_").split_once('_').unwrap();
                assert!(SOURCE.contains(&format!("MODELC_GEMV_ALL({m})")), "{name}");
                assert!(SOURCE.contains(&format!("{t}, M)")), "{name}");
            }
        }
    }
}
