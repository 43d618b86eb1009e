//! A bandwidth-bound GEMV for few rows (decode): `D[m,N] = alpha·X[m,K]·W[N,K]ᵀ + beta·C + bias`
//! for `m ≤ GEMV_MAX_ROWS`, the same operation as [`Gemm::matmul_raw`](super::gemm::Gemm) with
//! one batch, optionally with an input transform fused into the read of X ([`GemvPrologue`]:
//! RMSNorm of each row, or `silu(gate)·up`), so the decode schedule needs no separate norm or
//! activation launch before the GEMM. At m = 1 cuBLASLt reaches about 45% of the copy bandwidth
//! on the decode shapes; this kernel streams W once with 16-byte loads spread over every SM.
//!
//! Layout: a block of 256 threads holds `256 / GROUP` column sets of `COLS = 4` output columns;
//! the `GROUP` threads of a set (256: the whole block, or 32: one warp, for short K) take the
//! 8-element chunks `t, t + GROUP, …` of K, `U = 2` chunks per iteration, and for each chunk load
//! the chunk of each of its `COLS` rows of W (16-byte `__ldcs`, all issued before the X loads)
//! and of every row of X once, accumulating `m × COLS` f32 partial sums. Partials are summed by a
//! butterfly of warp shuffles, then (GROUP = 256) over the 8 warps in warp order: the order is
//! fixed, so runs are bit-identical. K not a multiple of 8, or operands not 16-byte aligned,
//! take a scalar loop with the same structure.
//!
//! Programmatic dependent launch ([`gemv_ex`] with `pdl`): the first iteration's W loads are
//! issued before `griddepcontrol.wait` (weights are constant), so streaming the weights overlaps
//! the tail of the kernel before; X, C and D are touched only after the wait, and X and C are read
//! through L2 (`ld.global.cg`), never a possibly stale L1 line. Each block signals
//! `griddepcontrol.launch_dependents` once its loads are done.
//!
//! Streamed: at m ≤ 2 and `512 < K ≤ 4096` on the 16-byte path (every decode GEMV of the 1B
//! but the tiny low-rank ones), a persistent kernel runs instead: two blocks of 8 warps per SM,
//! global warp `gw` of `NW` takes the rows `gw, gw + NW, …` of W and reads each in 4 KB units
//! (eight 16-byte chunks a lane), two units in flight in registers, the first two issued before
//! `griddepcontrol.wait`. X, with the prologue applied, is staged once per block in shared memory
//! as f32, so a row's sum needs only its warp's butterfly: no block barrier in the main loop, and
//! no recomputing of the prologue per column set. Its blocks let their dependents launch right
//! after their own wait, so the next kernel's first weights stream while this one runs (the
//! KDA decode step relies on that order: see its template). Measured on an H200 (hybrid-1b
//! decode, batch 1): 0.949 against 1.00 ms a step; batch 2 1.20 against 1.30.
//! `MODELC_NO_GEMV_STREAM=1` keeps the kernels above. Two trials, off (on an H100 they were
//! slower or no faster): with [`GEMV_L2_PREFETCH_ENV`] each warp also prefetches its next rows of
//! W into L2 before the wait; given an [`L2Prefetch`] (the executor's [`PREFETCH_NEXT_ENV`]: the
//! next GEMM step's weights) the warps prefetch it, a slice each, before the wait. Multiplying
//! on tensor cores instead (each lane's 16-byte chunk an `mma.sync` A fragment whose products
//! land on D's diagonal, X staged as bf16, or held in registers) was timed on an H100 and made
//! decode 4–25% slower (docs/PERFORMANCE.md), so the products stay on the FMA pipes.
//!
//! Tensor cores: at 3 to 8 rows (K a multiple of 8 up to 4096, 16-byte operands, sm_80 on) the
//! column-set kernels would keep `m × COLS` sums a thread and fall to a third of the copy
//! bandwidth, so a tensor-core kernel runs instead: `mma.sync` m16n8k16 with 16 rows of W as A
//! and X's rows as the 8 columns of B (zero past m), one block of 16 warps per SM taking groups
//! of 16 rows of W, each warp 128-element K chunks of a group (4 KB of W, two in flight in
//! registers, the first two before `griddepcontrol.wait`), the warps' sums added in shared memory
//! in warp order. The K order inside a chunk is permuted so that every load is 16 bytes, the same
//! permutation in A and B. X is staged as bf16 with the prologue applied: RMSNorm's `x·γ` is
//! rounded to bf16 (the unfused path rounds the normalised row likewise), the rows' `1/rms`
//! scales the sums. `MODELC_NO_GEMV_TENSOR=1` keeps the column-set kernels (read once).
//!
//! Fused prologues: RMSNorm accumulates `Σ x·γ·w` and `Σ x²` in the same pass and scales the sums
//! by `rsqrt(Σx²/K + eps)` at the end (linear in x, so no second pass over X and no rounding of
//! the normalized row to bf16: slightly more accurate than the unfused path, which stores it);
//! SiLU·up computes `bf16(silu(g)·u)` per element exactly as the unfused kernel stores it.

use std::sync::OnceLock;

use super::device::{Gpu, KernelArg, LaunchDims};
use super::error::CudaError;
use super::gemm::{GemmBias, GemmC, GemmOut, GemmShape};
use super::kernel_cache::KernelCache;

/// The most rows (`m`) the GEMV kernels take.
pub const GEMV_MAX_ROWS: usize = 8;

/// Threads per block (the kernel's reduction assumes 8 warps).
const THREADS: u32 = 256;

/// Output columns per column set (the kernel's `COLS`).
const COLS: usize = 4;

/// At most this K, un-fused GEMVs run the one-warp-per-column-set kernels (`GROUP = 32`).
const NARROW_MAX_K: usize = 512;

/// An input transform the GEMV applies to X as it reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GemvPrologue {
    /// X as it is.
    None,
    /// RMSNorm of each row over its K channels: the GEMV reads `x · rsqrt(mean(x²) + eps) · γ`,
    /// γ a vector of K elements (bf16 or f32) at `gamma`.
    RmsNorm { gamma: u64, gamma_dtype: GemmOut, eps: f32 },
    /// The GEMV reads `silu(x) · up` (rounded to bf16), `up` being m rows of K bf16 at X's row
    /// stride.
    SiluMul { up: u64 },
}

/// Device memory a GEMV prefetches into L2 before its dependent-launch wait: the weights of the
/// GEMM that runs after it, so that DRAM streams them while the kernel before the GEMV (a mixer,
/// which reads little) runs ([`PREFETCH_NEXT_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Prefetch {
    /// 16-byte aligned.
    pub ptr: u64,
    /// A multiple of 16, at most [`L2Prefetch::MAX_BYTES`].
    pub bytes: u64,
}

impl L2Prefetch {
    /// About half the 50 MB L2 of an H100/H200: more would evict the first lines before their use.
    pub const MAX_BYTES: u64 = 24 << 20;

    /// The first bytes of `len` at `ptr`, up to [`L2Prefetch::MAX_BYTES`] (rounded down to 16
    /// bytes); `None` where `ptr` is not 16-byte aligned or nothing is left.
    pub fn head(ptr: u64, len: u64) -> Option<L2Prefetch> {
        let bytes = len.min(Self::MAX_BYTES) & !15;
        (ptr.is_multiple_of(16) && bytes > 0).then_some(L2Prefetch { ptr, bytes })
    }
}

/// Set to `1`: the executor has each streamed GEMV prefetch the weights of the GEMM step after it
/// into L2 ([`L2Prefetch`]; read once). Off: timed on an H100 it did not help (docs/PERFORMANCE.md).
pub const PREFETCH_NEXT_ENV: &str = "MODELC_GEMV_PREFETCH_NEXT";

/// [`PREFETCH_NEXT_ENV`] is `1` (read once).
pub fn prefetch_next_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| env_is_one(PREFETCH_NEXT_ENV))
}

/// The GEMV kernels' definitions: one entry per output type, row count `1..=8` and prologue,
/// and narrow (one warp per column set) un-fused ones, instantiated by [`Module`]s of their own
/// (compiled in parallel: the whole set in one module took 15 s, its largest part 2.6).
const SOURCE: &str = r#"#include <cuda_bf16.h>
#ifndef MODELC_GEMV_L2_PREFETCH
#define MODELC_GEMV_L2_PREFETCH 0 /* 1: the streamed kernel's L2 prefetch (GEMV_L2_PREFETCH_ENV) */
#endif
__device__ __forceinline__ float lo_bf(unsigned u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float hi_bf(unsigned u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ float ld_f(const float* p) { return __ldcg(p); }
__device__ __forceinline__ float ld_f(const __nv_bfloat16* p) { return __bfloat162float(__ldcg(p)); }
__device__ __forceinline__ void st_f(float* p, float v) { *p = v; }
__device__ __forceinline__ void st_f(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ float bf_round(float v) { return __bfloat162float(__float2bfloat16(v)); }
// Fast intrinsics: every block recomputes the whole row, so this is on the critical path.
// __fdividef(g, inf) is 0 (g below about -88), as silu's limit.
__device__ __forceinline__ float silu_mul(float g, float u) { return bf_round(__fdividef(g, 1.0f + __expf(-g)) * u); }
__device__ __forceinline__ void dep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void dep_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void unpack8(const uint4 v, float f[8]) {
  f[0] = lo_bf(v.x); f[1] = hi_bf(v.x); f[2] = lo_bf(v.y); f[3] = hi_bf(v.y);
  f[4] = lo_bf(v.z); f[5] = hi_bf(v.z); f[6] = lo_bf(v.w); f[7] = hi_bf(v.w);
}

// Eight elements of the RMSNorm weight (bf16 or f32) at chunk v.
__device__ __forceinline__ void load_gamma8(const __nv_bfloat16* gb, const float* gf, int v, float g[8]) {
  if (gb) {
    unpack8(__ldg(reinterpret_cast<const uint4*>(gb) + v), g);
  } else {
    const float4 a = __ldg(reinterpret_cast<const float4*>(gf) + 2 * v);
    const float4 b = __ldg(reinterpret_cast<const float4*>(gf) + 2 * v + 1);
    g[0] = a.x; g[1] = a.y; g[2] = a.z; g[3] = a.w; g[4] = b.x; g[5] = b.y; g[6] = b.z; g[7] = b.w;
  }
}

// Chunk v (8 elements) of the X row at x + row, the prologue applied: RMSNorm multiplies by γ's
// chunk g and adds the row's squares into ss; SiLU·up reads up's chunk at the same place.
template <int PRO>
__device__ __forceinline__ void load_x8(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ up,
                                        long long row, int v, const float* g, float xf[8], float& ss) {
  unpack8(__ldcg(reinterpret_cast<const uint4*>(x + row) + v), xf);
  if (PRO == 1) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      ss = fmaf(xf[e], xf[e], ss);
      xf[e] *= g[e];
    }
  } else if (PRO == 2) {
    float uf[8];
    unpack8(__ldcg(reinterpret_cast<const uint4*>(up + row) + v), uf);
#pragma unroll
    for (int e = 0; e < 8; ++e) xf[e] = silu_mul(xf[e], uf[e]);
  }
}

// Output row r, column col: alpha·s + beta·C + bias (C read only when beta ≠ 0), in D's type.
template <typename T>
__device__ __forceinline__ void store_out(T* d, int ldd, const T* c, int ldc, const __nv_bfloat16* __restrict__ bias_bf16,
                                          const float* __restrict__ bias_f32, float alpha, float beta, int r,
                                          long long col, float s) {
  float v = alpha * s;
  if (beta != 0.0f) v = fmaf(beta, ld_f(c + (long long)r * ldc + col), v);
  if (bias_bf16) v += __bfloat162float(bias_bf16[col]);
  if (bias_f32) v += bias_f32[col];
  st_f(d + (long long)r * ldd + col, v);
}

// PRO: 0 none, 1 RMSNorm (x·γ summed, Σx² alongside), 2 silu(x)·up. GROUP: threads per column set.
template <typename T, int M, int PRO, int GROUP, int U>
__device__ __forceinline__ void gemv(const __nv_bfloat16* __restrict__ x, int ldx, const __nv_bfloat16* __restrict__ w,
                                     int ldw, T* d, int ldd, const T* c, int ldc,
                                     const __nv_bfloat16* __restrict__ bias_bf16, const float* __restrict__ bias_f32,
                                     float alpha, float beta, int n, int k, int vec,
                                     const __nv_bfloat16* __restrict__ up, const __nv_bfloat16* __restrict__ gam_bf16,
                                     const float* __restrict__ gam_f32, float eps) {
  constexpr int COLS = 4;
  constexpr int SETS = 256 / GROUP;
  constexpr int GW = GROUP / 32;
  constexpr int RED = M * COLS + (PRO == 1 ? M : 0);
  __shared__ float part[GW][RED];
  const int tid = threadIdx.x, lane = tid & 31;
  const int set = tid / GROUP, lt = tid % GROUP;
  const long long col0 = ((long long)blockIdx.x * SETS + set) * COLS;
  float acc[M][COLS];
  float ss[M];
#pragma unroll
  for (int r = 0; r < M; ++r) {
    ss[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < COLS; ++j) acc[r][j] = 0.0f;
  }
  // Columns past n read row n - 1 (in bounds) and are never written.
  const __nv_bfloat16* wr[COLS];
#pragma unroll
  for (int j = 0; j < COLS; ++j) {
    long long cj = col0 + j < n ? col0 + j : n - 1;
    wr[j] = w + cj * ldw;
  }
  if (vec) {
    const int nv = k >> 3;
    uint4 wv[U][COLS];
    float gv[U][8];  // RMSNorm weight of the chunks (PRO 1)
    int v = lt;
    // The weights are constant: the first loads go out before waiting for the kernel before.
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int j = 0; j < COLS; ++j)
        wv[u][j] = v + u * GROUP < nv ? __ldcs(reinterpret_cast<const uint4*>(wr[j]) + v + u * GROUP)
                                      : make_uint4(0u, 0u, 0u, 0u);
      if (PRO == 1 && v + u * GROUP < nv) load_gamma8(gam_bf16, gam_f32, v + u * GROUP, gv[u]);
    }
    dep_wait();
    for (;;) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int vu = v + u * GROUP;
        if (vu < nv) {
          float* g = gv[u];
#pragma unroll
          for (int r = 0; r < M; ++r) {
            float xf[8];
            load_x8<PRO>(x, up, (long long)r * ldx, vu, g, xf, ss[r]);
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
              float a = acc[r][j];
              a = fmaf(xf[0], lo_bf(wv[u][j].x), a);
              a = fmaf(xf[1], hi_bf(wv[u][j].x), a);
              a = fmaf(xf[2], lo_bf(wv[u][j].y), a);
              a = fmaf(xf[3], hi_bf(wv[u][j].y), a);
              a = fmaf(xf[4], lo_bf(wv[u][j].z), a);
              a = fmaf(xf[5], hi_bf(wv[u][j].z), a);
              a = fmaf(xf[6], lo_bf(wv[u][j].w), a);
              a = fmaf(xf[7], hi_bf(wv[u][j].w), a);
              acc[r][j] = a;
            }
          }
        }
      }
      v += U * GROUP;
      if (v >= nv) break;
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int j = 0; j < COLS; ++j)
          wv[u][j] = v + u * GROUP < nv ? __ldcs(reinterpret_cast<const uint4*>(wr[j]) + v + u * GROUP)
                                        : make_uint4(0u, 0u, 0u, 0u);
        if (PRO == 1 && v + u * GROUP < nv) load_gamma8(gam_bf16, gam_f32, v + u * GROUP, gv[u]);
      }
    }
  } else {
    dep_wait();
    for (int i = lt; i < k; i += GROUP) {
      float wf[COLS];
#pragma unroll
      for (int j = 0; j < COLS; ++j) wf[j] = __bfloat162float(wr[j][i]);
      float g = 1.0f;
      if (PRO == 1) g = gam_bf16 ? __bfloat162float(gam_bf16[i]) : gam_f32[i];
#pragma unroll
      for (int r = 0; r < M; ++r) {
        float xf = ld_f(x + (long long)r * ldx + i);
        if (PRO == 1) {
          ss[r] = fmaf(xf, xf, ss[r]);
          xf *= g;
        } else if (PRO == 2) {
          xf = silu_mul(xf, ld_f(up + (long long)r * ldx + i));
        }
#pragma unroll
        for (int j = 0; j < COLS; ++j) acc[r][j] = fmaf(xf, wf[j], acc[r][j]);
      }
    }
  }
  dep_launch();
#pragma unroll
  for (int r = 0; r < M; ++r) {
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      float a = acc[r][j];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
      acc[r][j] = a;
    }
    if (PRO == 1) {
      float a = ss[r];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
      ss[r] = a;
    }
  }
  // One output: row r, column j of this set, with the set's sums s (and Σx² of the row).
  auto store = [&](int r, int j, float s, float sq) {
    const long long col = col0 + j;
    if (col >= n) return;
    if (PRO == 1) s *= rsqrtf(sq / (float)k + eps);
    store_out(d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, r, col, s);
  };
  if (GW > 1) {
    const int warp = tid >> 5;
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < M; ++r) {
#pragma unroll
        for (int j = 0; j < COLS; ++j) part[warp][r * COLS + j] = acc[r][j];
        if (PRO == 1) part[warp][M * COLS + r] = ss[r];
      }
    }
    __syncthreads();
    if (tid < M * COLS) {
      const int r = tid / COLS, j = tid % COLS;
      float s = 0.0f, sq = 0.0f;
#pragma unroll
      for (int q = 0; q < GW; ++q) {
        s += part[q][tid];
        if (PRO == 1) sq += part[q][M * COLS + r];
      }
      store(r, j, s, sq);
    }
  } else {
    // One warp per set: after the butterfly every lane holds every sum.
#pragma unroll
    for (int r = 0; r < M; ++r)
#pragma unroll
      for (int j = 0; j < COLS; ++j)
        if (lane == r * COLS + j) store(r, j, acc[r][j], ss[r]);
  }
}

// The streamed GEMV (module doc, "Streamed"): persistent blocks of 8 warps; global
// warp gw of NW takes rows gw, gw + NW, … of W, each read in units of 256 16-byte chunks (eight a
// lane, 4 KB), two units in flight in registers (the next loads while the current multiplies;
// the first two before griddepcontrol.wait). X, the prologue applied, is staged once a block in
// shared memory as f32, each 8-element chunk as two float4 halves [M][2][K/8] (16-byte reads
// without bank conflicts). A row's sum is a butterfly in its warp: no block barrier after the
// staging, so the warps of an SM hide each other's latency.
template <typename T, int M, int PRO>
__device__ __forceinline__ void gemv_stream(const __nv_bfloat16* __restrict__ x, int ldx, const __nv_bfloat16* __restrict__ w,
                                             int ldw, T* d, int ldd, const T* c, int ldc,
                                             const __nv_bfloat16* __restrict__ bias_bf16, const float* __restrict__ bias_f32,
                                             float alpha, float beta, int n, int k, const __nv_bfloat16* __restrict__ up,
                                             const __nv_bfloat16* __restrict__ gam_bf16, const float* __restrict__ gam_f32,
                                             float eps, const char* pf, long long pf_bytes) {
  extern __shared__ __align__(16) float4 xs[];
  __shared__ float sq_part[8][M];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nv = k >> 3;
  const int upr = (nv + 255) >> 8;  // units a row
  const long long nw = (long long)gridDim.x * 8, gw = (long long)blockIdx.x * 8 + warp;
  const int units = gw < n ? (int)((n - 1 - gw) / nw + 1) * upr : 0;
  auto load_unit = [&](int u, uint4 (&buf)[8]) {
    if (u < units) {
      const int rj = u / upr, base = (u - rj * upr) * 256;
      const uint4* src = reinterpret_cast<const uint4*>(w + (gw + rj * nw) * ldw);
#pragma unroll
      for (int cc = 0; cc < 8; ++cc) {
        const int v = base + lane + 32 * cc;
        buf[cc] = v < nv ? __ldcs(src + v) : make_uint4(0u, 0u, 0u, 0u);
      }
    }
  };
  uint4 b0[8], b1[8];
  // The weights are constant: the first two units stream before the wait.
  load_unit(0, b0);
  load_unit(1, b1);
#if MODELC_GEMV_L2_PREFETCH && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // And the warp's next rows into L2 (one bulk prefetch a row, no registers held), up to
  // MODELC_GEMV_L2_PREFETCH_MAX bytes a kernel (L2Prefetch::MAX_BYTES) so that the prefetched
  // lines are still in L2 when their turn comes: the DRAM stream goes on while the kernel
  // before drains.
  if (lane == 0 && units > 0) {
    const long long rows = units / upr, row_bytes = 2ll * k;
    const long long first = 2 / upr, last = min(rows, first + MODELC_GEMV_L2_PREFETCH_MAX / (row_bytes * nw));
    for (long long rj = first; rj < last; ++rj)
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(w + (gw + rj * nw) * ldw), "r"((unsigned)row_bytes)
                   : "memory");
  }
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // The next GEMM's weights (pf, pf_bytes; none when null), a slice a warp, into L2 before the
  // wait: while the kernel before this one runs (a mixer, say), DRAM streams them.
  if (pf && lane == 0) {
    const long long slice = ((pf_bytes + nw - 1) / nw + 15) & ~15ll, lo = gw * slice;
    const long long len = min(slice, pf_bytes - lo);
    if (len > 0) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(pf + lo), "r"((unsigned)len) : "memory");
  }
#endif
  dep_wait();
  // Everything before this kernel has finished: the next kernel may launch and start its own
  // weight stream while this one runs.
  dep_launch();
  float inv[M];
#pragma unroll
  for (int r = 0; r < M; ++r) {
    float ss = 0.0f;
    for (int v = tid; v < nv; v += 256) {
      float xf[8], g[8];
      if (PRO == 1) load_gamma8(gam_bf16, gam_f32, v, g);
      load_x8<PRO>(x, up, (long long)r * ldx, v, g, xf, ss);
      xs[(2 * r) * nv + v] = make_float4(xf[0], xf[1], xf[2], xf[3]);
      xs[(2 * r + 1) * nv + v] = make_float4(xf[4], xf[5], xf[6], xf[7]);
    }
    if (PRO == 1) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      if (lane == 0) sq_part[warp][r] = ss;
    }
  }
  __syncthreads();
  if (PRO == 1) {
#pragma unroll
    for (int r = 0; r < M; ++r) {
      float sq = 0.0f;
#pragma unroll
      for (int q = 0; q < 8; ++q) sq += sq_part[q][r];
      inv[r] = rsqrtf(sq / (float)k + eps);
    }
  }
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; ++r) acc[r] = 0.0f;
  // Unit u's products into acc; at a row's last unit, its sums out (lane r stores X row r's).
  auto mul = [&](int u, const uint4 (&buf)[8]) {
    const int rj = u / upr, part = u - rj * upr, base = part * 256;
#pragma unroll
    for (int cc = 0; cc < 8; ++cc) {
      const int v = base + lane + 32 * cc;
      if (v < nv) {
        float wf[8];
        unpack8(buf[cc], wf);
#pragma unroll
        for (int r = 0; r < M; ++r) {
          const float4 lo = xs[(2 * r) * nv + v], hi = xs[(2 * r + 1) * nv + v];
          float a = acc[r];
          a = fmaf(lo.x, wf[0], a);
          a = fmaf(lo.y, wf[1], a);
          a = fmaf(lo.z, wf[2], a);
          a = fmaf(lo.w, wf[3], a);
          a = fmaf(hi.x, wf[4], a);
          a = fmaf(hi.y, wf[5], a);
          a = fmaf(hi.z, wf[6], a);
          a = fmaf(hi.w, wf[7], a);
          acc[r] = a;
        }
      }
    }
    if (part == upr - 1) {
      const long long col = gw + rj * nw;
#pragma unroll
      for (int r = 0; r < M; ++r) {
        float a = acc[r];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
        acc[r] = 0.0f;
        if (lane == r) store_out(d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, r, col, PRO == 1 ? a * inv[r] : a);
      }
    }
  };
  for (int u = 0; u < units; u += 2) {
    mul(u, b0);
    load_unit(u + 2, b0);
    if (u + 1 < units) {
      mul(u + 1, b1);
      load_unit(u + 3, b1);
    }
  }
}

// The tensor-core GEMV for up to 8 rows of X (module doc, "Tensor cores"): mma.sync m16n8k16
// with A = 16 rows of W by 16 of K and B = 16 of K by the 8 rows of X (X's rows are the MMA's n
// columns, missing ones zero), D = 16 output columns by 8 rows in f32. A block takes groups of 16
// rows of W (g = blockIdx.x, + gridDim.x, …); warp w of its 16 takes the 128-element K chunks
// w, w + 16, … of each group (4 KB of W a chunk, two chunks in flight in registers, the first two
// before griddepcontrol.wait; 16 warps a group so that the few groups of a 2048-row W still keep
// every chunk in flight), and the warps' sums meet in shared memory in warp order (runs are
// bit-identical). Lane (g, q) = (lane / 4, lane % 4) loads 16-byte pieces q, q + 4, q + 8, q + 12
// of the chunk in rows g and g + 8: the K order inside a chunk is permuted, identically in A and B
// (only the order of the sum's terms changes). X is staged as bf16 with the prologue applied
// (RMSNorm: x·γ, the rows' 1/rms applied to the sums; SiLU·up as the unfused kernel rounds it),
// in rows padded by 64 bytes (the fragment loads hit every bank once).
__device__ __forceinline__ void mma_16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                          unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}

// The tensor-core kernel's warps a block (the host's TENSOR_WARPS).
#define MODELC_GEMV_TC_WARPS 16
template <typename T, int PRO>
__device__ __forceinline__ void gemv_tc(const __nv_bfloat16* __restrict__ x, int ldx, const __nv_bfloat16* __restrict__ w,
                                         int ldw, T* d, int ldd, const T* c, int ldc,
                                         const __nv_bfloat16* __restrict__ bias_bf16, const float* __restrict__ bias_f32,
                                         float alpha, float beta, int m, int n, int k,
                                         const __nv_bfloat16* __restrict__ up, const __nv_bfloat16* __restrict__ gam_bf16,
                                         const float* __restrict__ gam_f32, float eps) {
  constexpr int WARPS = MODELC_GEMV_TC_WARPS, NT = 32 * WARPS;
  extern __shared__ __align__(16) uint4 xs_tc[];  // [8][nv + 4] 16-byte pieces of X rows
  __shared__ float red[2][WARPS][128];            // the warps' sums of a group, double-buffered
  static_assert(WARPS == 16, "two warps a row of X when staging it");
  __shared__ float sq_part[WARPS], inv[8];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q = lane & 3;
  const int nv = k >> 3, xrow = nv + 4;
  const int chunks = (nv + 15) >> 4;                     // 128-element K chunks
  const int per_group = warp < chunks ? (chunks - 1 - warp) / WARPS + 1 : 0;  // this warp's chunks a group
  const int groups = (n + 15) >> 4;
  const int my_groups = (int)blockIdx.x < groups ? (groups - 1 - (int)blockIdx.x) / (int)gridDim.x + 1 : 0;
  const int units = my_groups * per_group;
  // Unit u: chunk warp + 16·(u % per_group) of group blockIdx.x + (u / per_group)·gridDim.x; rows
  // past n read row n - 1 (in bounds, never stored), pieces past K read zeros.
  auto load_unit = [&](int u, uint4 (&buf)[8]) {
    if (u < units) {
      const int j = u / per_group, ch = warp + WARPS * (u - j * per_group);
      const int row0 = (blockIdx.x + j * gridDim.x) * 16 + g;
      const uint4* r0 = reinterpret_cast<const uint4*>(w + (long long)min(row0, n - 1) * ldw);
      const uint4* r1 = reinterpret_cast<const uint4*>(w + (long long)min(row0 + 8, n - 1) * ldw);
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        const int v = ch * 16 + q + 4 * p;
        buf[p] = v < nv ? __ldcs(r0 + v) : make_uint4(0u, 0u, 0u, 0u);
        buf[4 + p] = v < nv ? __ldcs(r1 + v) : make_uint4(0u, 0u, 0u, 0u);
      }
    }
  };
  uint4 b0[8], b1[8];
  // The weights are constant: the first two units stream before the wait.
  load_unit(0, b0);
  load_unit(1, b1);
  dep_wait();
  dep_launch();
  // Stage X (zeros past row m), the prologue applied: the PER_ROW threads of warps 2r, 2r + 1
  // take row r's pieces t, t + PER_ROW, … (unrolled, so a thread's loads are in flight together
  // rather than a row after another); RMSNorm: a row's Σx² is its two warps' sums.
  constexpr int PER_ROW = NT / 8;
  {
    const int r = tid / PER_ROW;
    float ss = 0.0f;
#pragma unroll 4
    for (int v = tid % PER_ROW; v < nv; v += PER_ROW) {
      float xf[8], gm[8];
      if (r < m) {
        if (PRO == 1) load_gamma8(gam_bf16, gam_f32, v, gm);
        load_x8<PRO>(x, up, (long long)r * ldx, v, gm, xf, ss);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) xf[e] = 0.0f;
      }
      xs_tc[r * xrow + v] = make_uint4(pack_bf16x2(xf[0], xf[1]), pack_bf16x2(xf[2], xf[3]), pack_bf16x2(xf[4], xf[5]),
                                       pack_bf16x2(xf[6], xf[7]));
    }
    if (PRO == 1) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      if (lane == 0) sq_part[warp] = ss;
    }
  }
  __syncthreads();
  if (PRO == 1 && tid < 8) inv[tid] = rsqrtf((sq_part[2 * tid] + sq_part[2 * tid + 1]) / (float)k + eps);
  // Unit u's 8 MMAs (K steps) into acc: step s takes words 2(s % 2), 2(s % 2) + 1 of piece s / 2.
  auto mul = [&](int u, const uint4 (&buf)[8], float (&acc)[4]) {
    const int j = u / per_group, ch = warp + WARPS * (u - j * per_group);
    const uint4* xr = xs_tc + g * xrow + ch * 16 + q;
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const uint4 xv = ch * 16 + q + 4 * p < nv ? xr[4 * p] : make_uint4(0u, 0u, 0u, 0u);
      mma_16816(acc, buf[p].x, buf[4 + p].x, buf[p].y, buf[4 + p].y, xv.x, xv.y);
      mma_16816(acc, buf[p].z, buf[4 + p].z, buf[p].w, buf[4 + p].w, xv.z, xv.w);
    }
  };
  int u = 0;
  for (int j = 0; j < my_groups; ++j) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < per_group; ++i, ++u) {
      if ((u & 1) == 0) {
        mul(u, b0, acc);
        load_unit(u + 2, b0);
      } else {
        mul(u, b1, acc);
        load_unit(u + 2, b1);
      }
    }
    // D's element (column 16·group + row, X row n) at red[.][.][row·8 + n]: lane (g, q) holds
    // rows g and g + 8, X rows 2q and 2q + 1.
    float* mine = red[j & 1][warp];
    mine[g * 8 + 2 * q] = acc[0];
    mine[g * 8 + 2 * q + 1] = acc[1];
    mine[(g + 8) * 8 + 2 * q] = acc[2];
    mine[(g + 8) * 8 + 2 * q + 1] = acc[3];
    __syncthreads();
    if (tid < 128) {
      const int row = tid >> 3, xi = tid & 7;
      const long long col = (long long)(blockIdx.x + j * gridDim.x) * 16 + row;
      if (xi < m && col < n) {
        float sum = 0.0f;
#pragma unroll
        for (int p = 0; p < WARPS; ++p) sum += red[j & 1][p][tid];
        store_out(d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, xi, col, PRO == 1 ? sum * inv[xi] : sum);
      }
    }
  }
}

// `vec` carries the tensor-core kernel's row count m.
#define MODELC_GEMV_TC(T, NAME, PRO, SUFFIX)                                                                    \
  extern "C" __global__ void __launch_bounds__(32 * MODELC_GEMV_TC_WARPS, 1) modelc_gemv_##NAME##_tc##SUFFIX(                          \
      const __nv_bfloat16* x, int ldx, const __nv_bfloat16* w, int ldw, T* d, int ldd, const T* c, int ldc,       \
      const __nv_bfloat16* bias_bf16, const float* bias_f32, float alpha, float beta, int n, int k, int vec,      \
      const __nv_bfloat16* up, const __nv_bfloat16* gam_bf16, const float* gam_f32, float eps, const char* pf,     \
      long long pf_bytes) {                                                                                       \
    (void)pf; (void)pf_bytes; /* the next GEMM's prefetch: streamed kernel only */                             \
    gemv_tc<T, PRO>(x, ldx, w, ldw, d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, vec, n, k, up, gam_bf16,        \
                    gam_f32, eps);                                                                               \
  }
#define MODELC_GEMV_TC_T(PRO, SUFFIX) MODELC_GEMV_TC(__nv_bfloat16, bf16, PRO, SUFFIX) MODELC_GEMV_TC(float, f32, PRO, SUFFIX)

#define MODELC_GEMV_STREAM(T, NAME, M, PRO, SUFFIX)                                                             \
  extern "C" __global__ void __launch_bounds__(256, 2) modelc_gemv_##NAME##_m##M##SUFFIX(                        \
      const __nv_bfloat16* x, int ldx, const __nv_bfloat16* w, int ldw, T* d, int ldd, const T* c, int ldc,       \
      const __nv_bfloat16* bias_bf16, const float* bias_f32, float alpha, float beta, int n, int k, int vec,      \
      const __nv_bfloat16* up, const __nv_bfloat16* gam_bf16, const float* gam_f32, float eps, const char* pf,     \
      long long pf_bytes) {                                                                                       \
    gemv_stream<T, M, PRO>(x, ldx, w, ldw, d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, n, k, up, gam_bf16,      \
                            gam_f32, eps, pf, pf_bytes);                                                         \
  }
#define MODELC_GEMV_STREAM_T(M, PRO, SUFFIX) \
  MODELC_GEMV_STREAM(__nv_bfloat16, bf16, M, PRO, SUFFIX) MODELC_GEMV_STREAM(float, f32, M, PRO, SUFFIX)
#define MODELC_GEMV_STREAM_ALL(M) \
  MODELC_GEMV_STREAM_T(M, 0, _stream) MODELC_GEMV_STREAM_T(M, 1, _rms_stream) MODELC_GEMV_STREAM_T(M, 2, _silu_stream)

// At least 4 blocks (32 warps) per SM at m = 1, 3 at m = 2, 2 at m ≤ 4: the loads in flight.
#define MODELC_GEMV_MINB(M) ((M) == 1 ? 4 : (M) == 2 ? 3 : (M) <= 4 ? 2 : 1)
#define MODELC_GEMV(T, NAME, M, PRO, GROUP, U, SUFFIX)                                                           \
  extern "C" __global__ void __launch_bounds__(256, MODELC_GEMV_MINB(M)) modelc_gemv_##NAME##_m##M##SUFFIX(      \
      const __nv_bfloat16* x, int ldx, const __nv_bfloat16* w, int ldw, T* d, int ldd, const T* c, int ldc,       \
      const __nv_bfloat16* bias_bf16, const float* bias_f32, float alpha, float beta, int n, int k, int vec,      \
      const __nv_bfloat16* up, const __nv_bfloat16* gam_bf16, const float* gam_f32, float eps, const char* pf,     \
      long long pf_bytes) {                                                                                       \
    (void)pf; (void)pf_bytes;                                                                                   \
    gemv<T, M, PRO, GROUP, U>(x, ldx, w, ldw, d, ldd, c, ldc, bias_bf16, bias_f32, alpha, beta, n, k, vec, up,        \
                           gam_bf16, gam_f32, eps);                                                              \
  }
#define MODELC_GEMV_T(M, PRO, GROUP, U, SUFFIX) \
  MODELC_GEMV(__nv_bfloat16, bf16, M, PRO, GROUP, U, SUFFIX) MODELC_GEMV(float, f32, M, PRO, GROUP, U, SUFFIX)
// U: chunks of 8 per thread and iteration (RMSNorm: one, its γ chunk takes registers too).
#define MODELC_GEMV_ALL(M)                                                                       \
  MODELC_GEMV_T(M, 0, 256, 2, ) MODELC_GEMV_T(M, 1, 256, 1, _rms) MODELC_GEMV_T(M, 2, 256, 2, _silu) \
  MODELC_GEMV_T(M, 0, 32, 2, _narrow)
"#;

/// The input transform a kernel applies to X (the source's `PRO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pro {
    None = 0,
    Rms = 1,
    Silu = 2,
}

impl Pro {
    const ALL: [Pro; 3] = [Pro::None, Pro::Rms, Pro::Silu];

    fn suffix(self) -> &'static str {
        match self {
            Pro::None => "",
            Pro::Rms => "_rms",
            Pro::Silu => "_silu",
        }
    }
}

/// The kernel variants of one output type and row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Column sets of a whole block (module doc), with a prologue.
    ColumnSets(Pro),
    /// One warp per column set, no prologue, for short K.
    Narrow,
    /// The streamed kernel (module doc), with a prologue.
    Streamed(Pro),
    /// The tensor-core kernel (module doc), with a prologue: one entry for every row count.
    Tensor(Pro),
}

const VARIANTS: [Variant; 4] = [
    Variant::ColumnSets(Pro::None),
    Variant::ColumnSets(Pro::Rms),
    Variant::ColumnSets(Pro::Silu),
    Variant::Narrow,
];

/// The streamed kernel runs for m ≤ this many rows (X staged as f32 in shared memory, a sum per
/// row in registers), and for `NARROW_MAX_K < K ≤` [`STREAM_MAX_K`] (X: at most 32 KiB).
const STREAM_MAX_ROWS: usize = 2;
const STREAM_MAX_K: usize = 4096;
/// The streamed kernel's blocks per SM (its launch bounds hold two; measured on an H200,
/// hybrid-1b decode: one block per SM runs 30% slower than the non-streamed kernels, two 5%
/// faster).
const STREAM_BLOCKS_PER_SM: usize = 2;
/// Set to `1`: the streamed kernel's grid is sized to whole rounds of rows (`stream_blocks`), a
/// trial: timed on an H200 it was no faster at batch 1 (read once; `docs/PERFORMANCE.md`,
/// "Where the GEMV stream loses its time").
pub const GEMV_BALANCED_GRID_ENV: &str = "MODELC_GEMV_BALANCED_GRID";
/// Set to `1`: every GEMV takes the non-streamed kernels (for comparison; read once).
pub const NO_GEMV_STREAM_ENV: &str = "MODELC_NO_GEMV_STREAM";
/// Set to `1`: the streamed kernel also prefetches the rest of its warps' rows of W into L2
/// (`cp.async.bulk.prefetch.L2`, up to about 24 MiB a kernel) before it waits for the kernel
/// before it, so that the weight stream keeps going while that kernel drains (sm_90 on; read
/// once). Off: timed on an H100 it made decode slower (docs/PERFORMANCE.md).
pub const GEMV_L2_PREFETCH_ENV: &str = "MODELC_GEMV_L2_PREFETCH";
/// Set to `1`: GEMVs of 3 to 8 rows take the column-set kernels, not the tensor-core one, and
/// callers asking [`gemv_tensor_takes`] hear no (read once).
pub const NO_GEMV_TENSOR_ENV: &str = "MODELC_NO_GEMV_TENSOR";
/// The tensor-core kernel runs for K up to this (X staged in shared memory: 66 KB at 4096, beside
/// 16 KB of sums) and from this many rows (fewer take the streamed kernel).
const TENSOR_MAX_K: usize = 4096;
const TENSOR_MIN_ROWS: usize = 3;
/// The tensor-core kernel's warps a block (the source's `MODELC_GEMV_TC_WARPS`) and blocks per
/// SM (its launch bounds hold one).
const TENSOR_WARPS: u32 = 16;
const TENSOR_BLOCKS_PER_SM: usize = 1;

impl Variant {
    fn suffix(self) -> String {
        match self {
            Variant::ColumnSets(p) => p.suffix().to_string(),
            Variant::Narrow => "_narrow".into(),
            Variant::Streamed(p) => format!("{}_stream", p.suffix()),
            Variant::Tensor(p) => format!("_tc{}", p.suffix()),
        }
    }

    /// Chunks of 8 elements a thread loads per iteration (the kernel's `U`).
    #[cfg(test)]
    fn unroll(self) -> usize {
        match self {
            Variant::ColumnSets(Pro::Rms) => 1,
            _ => 2,
        }
    }

    /// Threads per column set (non-streamed variants).
    fn group(self) -> usize {
        match self {
            Variant::Narrow => 32,
            _ => THREADS as usize,
        }
    }
}

/// The entry name for an output type, row count and variant.
fn entry(out: GemmOut, m: usize, variant: Variant) -> String {
    let t = match out {
        GemmOut::Bf16 => "bf16",
        GemmOut::F32 => "f32",
    };
    match variant {
        Variant::Tensor(_) => format!("modelc_gemv_{t}{}", variant.suffix()),
        _ => format!("modelc_gemv_{t}_m{m}{}", variant.suffix()),
    }
}

/// The streamed variants of a row count (none past [`STREAM_MAX_ROWS`]).
fn streamed_variants(m: usize) -> Vec<Variant> {
    if m > STREAM_MAX_ROWS {
        return Vec::new();
    }
    Pro::ALL.map(Variant::Streamed).to_vec()
}

/// One module of the GEMV kernels: the tensor-core ones, the streamed ones of one row count, or
/// the column-set ones of one row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Tensor,
    Streamed(usize),
    ColumnSets(usize),
}

impl Module {
    /// Every module: together they hold every entry once.
    fn all() -> Vec<Module> {
        let streamed = (1..=STREAM_MAX_ROWS).map(Module::Streamed);
        let column_sets = (1..=GEMV_MAX_ROWS).map(Module::ColumnSets);
        std::iter::once(Module::Tensor)
            .chain(streamed)
            .chain(column_sets)
            .collect()
    }

    /// The macro line that instantiates the module's entries.
    fn instances(self) -> String {
        match self {
            Module::Tensor => "MODELC_GEMV_TC_T(0, ) MODELC_GEMV_TC_T(1, _rms) MODELC_GEMV_TC_T(2, _silu)".into(),
            Module::Streamed(m) => format!("MODELC_GEMV_STREAM_ALL({m})"),
            Module::ColumnSets(m) => format!("MODELC_GEMV_ALL({m})"),
        }
    }

    /// The module's entries, as [`Module::instances`] defines them.
    fn entries(self) -> Vec<String> {
        let both = |m: usize, v: Variant| [GemmOut::Bf16, GemmOut::F32].map(|out| entry(out, m, v));
        match self {
            Module::Tensor => Pro::ALL.into_iter().flat_map(|p| both(1, Variant::Tensor(p))).collect(),
            Module::Streamed(m) => streamed_variants(m).into_iter().flat_map(|v| both(m, v)).collect(),
            Module::ColumnSets(m) => VARIANTS.into_iter().flat_map(|v| both(m, v)).collect(),
        }
    }

    /// The module's source: [`SOURCE`] and its instances, the streamed kernel's L2 prefetch
    /// compiled in or not ([`GEMV_L2_PREFETCH_ENV`]).
    fn source(self, l2_prefetch: bool) -> String {
        let define = if l2_prefetch {
            format!(
                "#define MODELC_GEMV_L2_PREFETCH 1\n#define MODELC_GEMV_L2_PREFETCH_MAX {}ll\n",
                L2Prefetch::MAX_BYTES
            )
        } else {
            String::new()
        };
        format!("{define}{SOURCE}\n{}\n", self.instances())
    }
}

/// Every entry of the GEMV kernels.
#[cfg(test)]
fn entries() -> Vec<String> {
    Module::all().into_iter().flat_map(Module::entries).collect()
}

/// The GEMV modules `gpu` has not loaded yet, as `(source, entries)`: for a caller that
/// compiles them together with other modules ([`Gpu::compile_and_load_all`]).
pub fn gemv_modules_to_load(gpu: &Gpu) -> Vec<(String, Vec<String>)> {
    Module::all()
        .into_iter()
        .filter(|m| m.entries().iter().any(|e| !gpu.has_kernel(e)))
        .map(|m| (m.source(prefetch_on()), m.entries()))
        .collect()
}

/// Compiles (or fetches from `cache`) and loads the GEMV kernels, once per [`Gpu`]: their
/// modules in parallel ([`Gpu::compile_and_load_all`]).
pub fn load_gemv(gpu: &mut Gpu, cache: &KernelCache) -> Result<(), CudaError> {
    let modules = gemv_modules_to_load(gpu);
    gpu.compile_and_load_all(cache, &modules)
}

/// Whether [`gemv_raw`] takes a GEMM of this shape: one batch of at most [`GEMV_MAX_ROWS`] rows.
pub fn gemv_supported(shape: &GemmShape) -> bool {
    shape.batch == 1 && (1..=GEMV_MAX_ROWS).contains(&shape.m)
}

/// `D = alpha·X·Wᵀ + beta·C (+ bias)` like [`Gemm::matmul_raw`](super::gemm::Gemm::matmul_raw)
/// for one batch of `m ≤ GEMV_MAX_ROWS` rows: X and W bf16; D of type `out` with row stride
/// `shape.ldy`; C = `c` (of D's type) or D itself when `None` (read only when `beta ≠ 0`); the
/// bias an `[n]` vector, bf16 or f32. Needs [`load_gemv`] first. Works inside stream capture.
/// [`gemv_ex`] without a prologue, launched plainly.
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
    // SAFETY: forwarded from the caller.
    unsafe {
        gemv_ex(
            gpu,
            x,
            w,
            d,
            out,
            shape,
            alpha,
            beta,
            c,
            bias,
            GemvPrologue::None,
            false,
            None,
        )
    }
}

/// [`gemv_raw`] with an input transform fused into the read of X (`prologue`), optionally
/// launched as a programmatic dependent launch (`pdl`: see the module doc; the kernel waits for
/// the previous kernel before it touches X, C or D), and optionally prefetching `next` (the
/// weights of the GEMM after it) into L2 before that wait (the streamed kernel only; sm_90 on).
///
/// # Safety
/// As [`gemv_raw`]; with [`GemvPrologue::RmsNorm`], `gamma` must address `shape.k` elements of
/// its dtype; with [`GemvPrologue::SiluMul`], `up` must address `m` rows of `shape.k` bf16 at row
/// stride `shape.ldx`. D must not overlap X or `up`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_ex(
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
    prologue: GemvPrologue,
    pdl: bool,
    next: Option<L2Prefetch>,
) -> Result<(), CudaError> {
    let bad = |what: String| Err(CudaError::InvalidGemm { what });
    if let Some(p) = next {
        if !p.ptr.is_multiple_of(16) || !p.bytes.is_multiple_of(16) || p.bytes > L2Prefetch::MAX_BYTES {
            return bad(format!(
                "L2 prefetch of {} bytes at {:#x}: 16-byte aligned, a multiple of 16, at most {} expected",
                p.bytes,
                p.ptr,
                L2Prefetch::MAX_BYTES
            ));
        }
    }
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
    let split = |p: Option<(u64, GemmOut)>| match p {
        Some((ptr, GemmOut::Bf16)) => (ptr, 0),
        Some((ptr, GemmOut::F32)) => (0, ptr),
        None => (0, 0),
    };
    let (bias_bf16, bias_f32) = split(bias.map(|b| (b.ptr, b.dtype)));
    let (pro, up, (gam_bf16, gam_f32), eps) = match prologue {
        GemvPrologue::None => (Pro::None, 0, (0, 0), 0.0),
        GemvPrologue::RmsNorm {
            gamma,
            gamma_dtype,
            eps,
        } => {
            if gamma == 0 {
                return bad(format!("GEMV RMSNorm prologue without a weight: {shape:?}"));
            }
            (Pro::Rms, 0, split(Some((gamma, gamma_dtype))), eps)
        }
        GemvPrologue::SiluMul { up } => {
            if up == 0 {
                return bad(format!("GEMV SiLU·up prologue without `up`: {shape:?}"));
            }
            (Pro::Silu, up, (0, 0), 0.0)
        }
    };
    // 16-byte loads of X, W (and `up`, γ): chunks of 8 whole elements on 16-byte boundaries.
    let vec = shape.k.is_multiple_of(8)
        && shape.ldx.is_multiple_of(8)
        && shape.ldw.is_multiple_of(8)
        && x.is_multiple_of(16)
        && w.is_multiple_of(16)
        && up.is_multiple_of(16)
        && gam_bf16.is_multiple_of(16)
        && gam_f32.is_multiple_of(16);
    let (variant, dims) = if vec && gemv_tensor_takes(gpu, &shape) {
        // Groups of 16 rows of W; X's rows staged as 16-byte pieces in rows of K/8 + 4.
        let blocks = (TENSOR_BLOCKS_PER_SM * gpu.sm_count() as usize).min(shape.n.div_ceil(16));
        let smem = u32::try_from(8 * (shape.k / 8 + 4) * 16).unwrap_or(u32::MAX);
        let dims = LaunchDims::new((u32_of(blocks, &shape)?, 1, 1), (32 * TENSOR_WARPS, 1, 1), smem);
        (Variant::Tensor(pro), dims)
    } else if vec && stream_takes(&shape) {
        // One warp a row at most: no block without rows.
        let blocks = stream_blocks(shape.n, gpu.sm_count() as usize, balanced_grid());
        let x_bytes = u32::try_from(shape.m * shape.k * 4).unwrap_or(u32::MAX);
        let dims = LaunchDims::new((u32_of(blocks, &shape)?, 1, 1), (THREADS, 1, 1), x_bytes);
        (Variant::Streamed(pro), dims)
    } else {
        let variant = if pro == Pro::None && shape.k <= NARROW_MAX_K {
            Variant::Narrow
        } else {
            Variant::ColumnSets(pro)
        };
        let per_block = COLS * (THREADS as usize / variant.group());
        let grid = u32_of(shape.n.div_ceil(per_block), &shape)?;
        (variant, LaunchDims::new((grid, 1, 1), (THREADS, 1, 1), 0))
    };
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
        // The tensor-core kernel takes m there (one entry for every row count).
        KernelArg::I32(match variant {
            Variant::Tensor(_) => int(shape.m, "m")?,
            _ => i32::from(vec),
        }),
        KernelArg::Ptr(up),
        KernelArg::Ptr(gam_bf16),
        KernelArg::Ptr(gam_f32),
        KernelArg::F32(eps),
        KernelArg::Ptr(next.map_or(0, |p| p.ptr)),
        KernelArg::I64(next.map_or(0, |p| p.bytes as i64)),
    ];
    // SAFETY: the arguments follow the kernel's signature; the caller guarantees the operands
    // (and `next`'s bytes: prefetches read nothing into the kernel); the kernel waits
    // (griddepcontrol.wait) before touching anything but W, γ and `next`.
    unsafe { gpu.launch_ex(&entry(out, shape.m, variant), dims, &args, pdl) }
}

fn u32_of(grid: usize, shape: &GemmShape) -> Result<u32, CudaError> {
    u32::try_from(grid).map_err(|_| CudaError::InvalidGemm {
        what: format!("GEMV grid above u32::MAX: {shape:?}"),
    })
}

/// Whether the environment variable `name` is `1`.
fn env_is_one(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// [`NO_GEMV_STREAM_ENV`] is `1` (read once: GEMVs are launched per GEMM step).
fn stream_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| env_is_one(NO_GEMV_STREAM_ENV))
}

/// [`GEMV_L2_PREFETCH_ENV`] is `1` (read once).
fn prefetch_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| env_is_one(GEMV_L2_PREFETCH_ENV))
}

/// [`NO_GEMV_TENSOR_ENV`] is `1` (read once).
fn tensor_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| env_is_one(NO_GEMV_TENSOR_ENV))
}

/// Whether [`gemv_ex`] runs this shape on `gpu` with the tensor-core kernel (operands 16-byte
/// aligned assumed): 3 to 8 rows, K up to `TENSOR_MAX_K` (4096), a GPU with bf16 `mma.sync` (sm_80
/// on), not turned off. It streams W near the copy bandwidth at every row count up to 8, with a
/// prologue fused or not: callers choosing between the GEMV and cuBLASLt for 3 to 8 rows ask this.
pub fn gemv_tensor_takes(gpu: &Gpu, shape: &GemmShape) -> bool {
    gpu.compute_capability().0 >= 8 && tensor_shape(shape) && !tensor_off()
}

/// The tensor-core kernel's shapes (any GPU): one batch of 3 to 8 rows, K a multiple of 8 up
/// to [`TENSOR_MAX_K`].
fn tensor_shape(shape: &GemmShape) -> bool {
    gemv_supported(shape)
        && shape.m >= TENSOR_MIN_ROWS
        && shape.k.is_multiple_of(8)
        && shape.k <= TENSOR_MAX_K
        && shape.ldx.is_multiple_of(8)
        && shape.ldw.is_multiple_of(8)
}

/// The streamed kernel's grid for `n` rows of W on `sms` SMs: [`STREAM_BLOCKS_PER_SM`] blocks an
/// SM, at most one warp a row. `balanced` ([`GEMV_BALANCED_GRID_ENV`]) keeps the number of rounds
/// of rows a warp takes but spreads the rows over as few warps as that needs (6416 rows on 132
/// SMs: 1604 warps taking four each, not 2112 taking three and 80 of them a fourth), so that no
/// kernel ends with a short round.
fn stream_blocks(n: usize, sms: usize, balanced: bool) -> usize {
    let blocks = (STREAM_BLOCKS_PER_SM * sms).min(n.div_ceil(8)).max(1);
    if !balanced {
        return blocks;
    }
    let rounds = n.div_ceil(8 * blocks);
    n.div_ceil(rounds).div_ceil(8)
}

/// [`GEMV_BALANCED_GRID_ENV`] is `1` (read once).
fn balanced_grid() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| env_is_one(GEMV_BALANCED_GRID_ENV))
}

/// Whether the streamed kernel takes a GEMV (its 16-byte path assumed): few rows, K between the
/// narrow kernels' and [`STREAM_MAX_K`], and not turned off by [`NO_GEMV_STREAM_ENV`].
fn stream_takes(shape: &GemmShape) -> bool {
    shape.m <= STREAM_MAX_ROWS && shape.k > NARROW_MAX_K && shape.k <= STREAM_MAX_K && !stream_off()
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

    /// Assembles every entry for sm_90 (the H100): the source compiles, and no kernel spills or
    /// keeps a local-memory array (the `m × COLS` accumulators and the streamed kernel's X
    /// chunks must stay in registers, or the kernel stops being bandwidth-bound).
    #[test]
    fn every_entry_assembles_for_sm90_without_spills() {
        use crate::cuda::nvrtc::{default_include_dirs, nvrtc_or_skip, ptxas_report};
        if !nvrtc_or_skip("the GEMV assembly test") {
            return;
        }
        // The L2-prefetch form differs in the streamed modules only.
        let forms: Vec<_> = Module::all()
            .into_iter()
            .map(|m| (m, false))
            .chain((1..=STREAM_MAX_ROWS).map(|m| (Module::Streamed(m), true)))
            .collect();
        let logs = crate::parallel::par_map(&forms, |&(module, l2_prefetch)| {
            ptxas_report(
                &module.source(l2_prefetch),
                "modelc_gemv",
                "sm_90",
                &default_include_dirs(),
            )
            .unwrap_or_else(|e| panic!("{module:?}: {e}"))
        });
        for (&(module, l2_prefetch), log) in forms.iter().zip(logs) {
            let mut reports = 0;
            for line in log.lines().filter(|l| l.contains("spill")) {
                reports += 1;
                assert!(
                    line.contains(" 0 bytes stack frame, 0 bytes spill stores"),
                    "a GEMV kernel spills ({module:?}, L2 prefetch {l2_prefetch}): {line}\n{log}"
                );
            }
            assert_eq!(
                reports,
                module.entries().len(),
                "{module:?}: one report per entry expected:\n{log}"
            );
            if l2_prefetch {
                eprintln!("{log}");
            }
        }
    }

    /// The modules as `load_gemv` compiles them (CUBINs for sm_90a, in parallel through the
    /// cache): each holds the entries `load_gemv` will look up in it.
    #[test]
    fn every_module_compiles_with_its_entries() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the GEMV module test") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path());
        let sources: Vec<String> = Module::all().into_iter().map(|m| m.source(false)).collect();
        let jobs: Vec<(&str, &str)> = sources.iter().map(|s| (s.as_str(), "modelc_gemv")).collect();
        for (module, cubin) in Module::all()
            .into_iter()
            .zip(cache.get_or_compile_cubins(&jobs, "sm_90a"))
        {
            let cubin = cubin.unwrap_or_else(|e| panic!("{module:?}: {e}"));
            for e in module.entries() {
                assert!(cubin.holds_symbol(&e), "{module:?} has no kernel {e}");
            }
            // And none of another module's.
            let other = if module == Module::Tensor {
                Module::ColumnSets(1)
            } else {
                Module::Tensor
            };
            assert!(
                !cubin.holds_symbol(&other.entries()[0]),
                "{module:?} holds {}",
                other.entries()[0]
            );
        }
    }

    #[test]
    fn the_source_defines_every_entry() {
        let streamed: usize = (1..=GEMV_MAX_ROWS).map(|m| streamed_variants(m).len()).sum();
        assert_eq!(streamed, STREAM_MAX_ROWS * Pro::ALL.len());
        let tensor = Pro::ALL.len();
        assert_eq!(
            entries().len(),
            2 * (GEMV_MAX_ROWS * VARIANTS.len() + streamed + tensor)
        );
        assert_eq!(
            entry(GemmOut::F32, 5, Variant::Tensor(Pro::Rms)),
            "modelc_gemv_f32_tc_rms"
        );
        // Each entry in one module only.
        let unique: std::collections::HashSet<String> = entries().into_iter().collect();
        assert_eq!(unique.len(), entries().len());
        assert!(SOURCE.contains(&format!("#define MODELC_GEMV_TC_WARPS {TENSOR_WARPS}\n")));
        let modules = Module::all();
        for m in 1..=GEMV_MAX_ROWS {
            assert!(modules.contains(&Module::ColumnSets(m)), "m = {m}");
            assert!(Module::ColumnSets(m)
                .source(false)
                .ends_with(&format!("\nMODELC_GEMV_ALL({m})\n")));
            assert_eq!(modules.contains(&Module::Streamed(m)), m <= STREAM_MAX_ROWS, "m = {m}");
        }
        assert!(Module::Streamed(2)
            .source(false)
            .contains("\nMODELC_GEMV_STREAM_ALL(2)\n"));
        assert!(Module::Streamed(1)
            .source(true)
            .starts_with("#define MODELC_GEMV_L2_PREFETCH 1\n"));
        for v in VARIANTS {
            let group = v.group();
            assert!(
                SOURCE.contains(&format!(", {group}, {}, {})", v.unroll(), v.suffix())),
                "{v:?} is not instantiated with GROUP {group}"
            );
        }
        for p in Pro::ALL {
            let streamed = format!("(M, {}, {})", p as usize, Variant::Streamed(p).suffix());
            assert!(SOURCE.contains(&streamed), "{streamed} is not in the source");
            let tensor = format!("MODELC_GEMV_TC_T({}, {})", p as usize, p.suffix());
            assert!(
                Module::Tensor.instances().contains(&tensor),
                "{tensor} is not instantiated"
            );
        }
        assert_eq!(
            entry(GemmOut::F32, 3, Variant::ColumnSets(Pro::Silu)),
            "modelc_gemv_f32_m3_silu"
        );
        assert_eq!(
            entry(GemmOut::Bf16, 1, Variant::Streamed(Pro::Rms)),
            "modelc_gemv_bf16_m1_rms_stream"
        );
    }

    /// The tensor-core kernel's shapes: 3 to 8 rows, K a multiple of 8 up to 4096, 16-byte row
    /// strides (the decode shapes of batches 3 to 8).
    #[test]
    fn the_tensor_core_kernel_takes_three_to_eight_rows() {
        for m in 1..=GEMV_MAX_ROWS {
            assert_eq!(tensor_shape(&GemmShape::linear(m, 8192, 2048)), m >= 3, "m = {m}");
        }
        assert!(tensor_shape(&GemmShape::linear(8, 32000, 4096)));
        assert!(tensor_shape(&GemmShape::linear(5, 37, 200)));
        assert!(!tensor_shape(&GemmShape::linear(9, 2048, 2048)));
        assert!(!tensor_shape(&GemmShape::linear(4, 2048, 4104)));
        assert!(!tensor_shape(&GemmShape::linear(4, 2048, 1001)));
        let odd_stride = GemmShape {
            ldx: 2051,
            ..GemmShape::linear(4, 2048, 2048)
        };
        assert!(!tensor_shape(&odd_stride));
    }

    /// The balanced grid keeps the rounds of rows a warp takes and ends without a short round;
    /// the default is two blocks an SM, one warp a row at most.
    #[test]
    fn a_balanced_stream_grid_keeps_the_rounds_and_fills_the_last() {
        assert_eq!(stream_blocks(6416, 132, false), 264);
        assert_eq!(stream_blocks(6416, 132, true), 201);
        assert_eq!(stream_blocks(100, 132, false), 13);
        for sms in [1, 78, 114, 132] {
            for n in [1, 7, 8, 100, 2048, 3072, 6416, 8192, 32000, 100_000] {
                let (d, b) = (stream_blocks(n, sms, false), stream_blocks(n, sms, true));
                let rounds = |blocks: usize| n.div_ceil(8 * blocks);
                assert!(b <= d && b >= 1, "n {n}, {sms} SMs: {b} blocks against {d}");
                assert_eq!(rounds(b), rounds(d), "n {n}, {sms} SMs");
                // The last round's rows: never fewer than with the default grid.
                let last = |blocks: usize| n - (rounds(blocks) - 1) * 8 * blocks;
                assert!(
                    last(b) >= last(d),
                    "n {n}, {sms} SMs: {} rows against {}",
                    last(b),
                    last(d)
                );
            }
        }
    }

    /// The streamed kernel takes the decode shapes of few rows and K past the narrow kernels'.
    #[test]
    fn the_streamed_kernel_takes_few_rows_and_mid_k() {
        assert!(stream_takes(&GemmShape::linear(1, 2048, 2048)));
        assert!(stream_takes(&GemmShape::linear(2, 32000, 4096)));
        assert!(!stream_takes(&GemmShape::linear(3, 2048, 2048)));
        assert!(!stream_takes(&GemmShape::linear(1, 2048, NARROW_MAX_K)));
        assert!(!stream_takes(&GemmShape::linear(1, 2048, STREAM_MAX_K + 8)));
    }
}
