//! The executor's own kernels: the GEMM prologue (`y = beta·c + bias` before a GEMM that
//! accumulates), RMSNorm and SiLU·up rows into a scratch X, and the profiler's spin.

/// The helper kernel: `y = beta·c + bias` over `m × n` rows with strides (bf16 or f32 `y`/`c`,
/// bf16 or f32 bias, each optional), before a GEMM that accumulates into `y`.
pub(super) const HELPER_SOURCE: &str = r#"#include <cuda_bf16.h>
template <typename T> __device__ __forceinline__ float ld_f(const T* p, long long i);
template <> __device__ __forceinline__ float ld_f<float>(const float* p, long long i) { return p[i]; }
template <> __device__ __forceinline__ float ld_f<__nv_bfloat16>(const __nv_bfloat16* p, long long i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st_f(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st_f(__nv_bfloat16* p, long long i, float v) { p[i] = __float2bfloat16(v); }
template <typename T>
__device__ void gemm_prologue(T* y, int ldy, const T* c, int ldc, float beta, const __nv_bfloat16* bias_bf16,
                              const float* bias_f32, int m, int n) {
  long long total = (long long)m * n;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    long long r = i / n, j = i % n;
    float v = 0.0f;
    if (c) v = beta * ld_f(c, r * ldc + j);
    if (bias_bf16) v += __bfloat162float(bias_bf16[j]);
    if (bias_f32) v += bias_f32[j];
    st_f(y, r * ldy + j, v);
  }
}
extern "C" __global__ void modelc_exec_gemm_prologue_bf16(__nv_bfloat16* y, int ldy, const __nv_bfloat16* c, int ldc,
    float beta, const __nv_bfloat16* bias_bf16, const float* bias_f32, int m, int n) {
  gemm_prologue(y, ldy, c, ldc, beta, bias_bf16, bias_f32, m, n);
}
extern "C" __global__ void modelc_exec_gemm_prologue_f32(float* y, int ldy, const float* c, int ldc,
    float beta, const __nv_bfloat16* bias_bf16, const float* bias_f32, int m, int n) {
  gemm_prologue(y, ldy, c, ldc, beta, bias_bf16, bias_f32, m, n);
}
// Fallbacks of fused GEMM prologues (decode GEMMs the GEMV does not take): the transform into a
// dense scratch X of k columns. One block per row.
extern "C" __global__ void modelc_exec_rms_norm_rows(const __nv_bfloat16* x, int ldx, const __nv_bfloat16* gb,
    const float* gf, float eps, __nv_bfloat16* y, int k) {
  __shared__ float red[32];
  const __nv_bfloat16* xr = x + (long long)blockIdx.x * ldx;
  float s = 0.0f;
  for (int i = threadIdx.x; i < k; i += blockDim.x) { const float v = __bfloat162float(xr[i]); s = fmaf(v, v, s); }
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) t += __shfl_xor_sync(0xffffffffu, t, off);
    if (threadIdx.x == 0) red[0] = t;
  }
  __syncthreads();
  const float inv = rsqrtf(red[0] / (float)k + eps);
  __nv_bfloat16* yr = y + (long long)blockIdx.x * k;
  for (int i = threadIdx.x; i < k; i += blockDim.x) {
    const float g = gb ? __bfloat162float(gb[i]) : gf[i];
    yr[i] = __float2bfloat16(__bfloat162float(xr[i]) * inv * g);
  }
}
extern "C" __global__ void modelc_exec_silu_mul_rows(const __nv_bfloat16* g, const __nv_bfloat16* u, int ld,
    __nv_bfloat16* y, int k, int m) {
  const long long total = (long long)m * k;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / k, j = i % k;
    const float gv = __bfloat162float(g[r * ld + j]);
    y[i] = __float2bfloat16(gv / (1.0f + expf(-gv)) * __bfloat162float(u[r * ld + j]));
  }
}
extern "C" __global__ void modelc_exec_spin(long long cycles) {
  long long t0 = clock64();
  while (clock64() - t0 < cycles) {}
}
"#;

pub(super) const HELPER_RMS: &str = "modelc_exec_rms_norm_rows";

pub(super) const HELPER_SILU: &str = "modelc_exec_silu_mul_rows";

pub(super) const HELPER_BF16: &str = "modelc_exec_gemm_prologue_bf16";

pub(super) const HELPER_F32: &str = "modelc_exec_gemm_prologue_f32";

/// Busy-waits `cycles` SM clocks: holds the stream while the host queues a profiled call.
pub(super) const SPIN: &str = "modelc_exec_spin";

/// Every entry of [`HELPER_SOURCE`].
pub(super) const HELPERS: [&str; 5] = [HELPER_BF16, HELPER_F32, HELPER_RMS, HELPER_SILU, SPIN];
