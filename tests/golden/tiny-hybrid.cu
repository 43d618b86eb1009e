// ===== kernels/embedding_rms_norm_61b6b3e49fd7.cu =====
/*
 * embedding_rms_norm_61b6b3e49fd7: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   embedding @ model
 *   rms_norm(eps=1e-5, group=64) @ layers.*
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  132*batch*tokens + 128
 * Bytes stored:  256*batch*tokens
 * FLOPs:         256*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128) embedding_rms_norm_61b6b3e49fd7(
    const int* __restrict__ s0,
    const bf16* __restrict__ w1,
    const bf16* __restrict__ w2,
    bf16* __restrict__ o0, int o0_stride,
    bf16* __restrict__ o1, int o1_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __shared__ float red_[4];
    (void)lane; (void)warp; (void)red_;
    /* embedding @ model */
    const int id0 = s0[row];
    auto v0 = [&](int c) -> float { return (id0 >= 0 && id0 < 128) ? bf2f(w1[(long)id0 * 64 + c]) : __int_as_float(0x7fc00000); };
    /* rms_norm(eps=1e-5, group=64) @ layers.* */
    __shared__ float st1[1];
    {
        constexpr int G = 64, NG = 1;
        const int gi = warp / 4, t = tid - gi * 128;
        float acc = 0.0f;
        {
#pragma unroll
            for (int i = 0; i < 1; ++i) {
                const int j = t + i * 128;
                if (j < G) { const float x = v0(gi * G + j); acc += x * x; }
            }
        }
        acc = warp_sum(acc);
        __syncthreads();
        if (lane == 0) red_[warp] = acc;
        __syncthreads();
        if (tid < NG) {
            acc = 0.0f;
            for (int i = 0; i < 4; ++i) acc += red_[tid * 4 + i];
            st1[tid] = rsqrtf(acc / 64.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v1 = [&](int c) -> float { return v0(c) * st1[c / 64] * bf2f(w2[c % 64]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 64) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/rope_326855c1bbcd.cu =====
/*
 * rope_326855c1bbcd: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   rope(head_dim=16, theta=10000) @ layers.*.mixer
 *   rope(head_dim=16, theta=10000) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  196*batch*tokens
 * Bytes stored:  192*batch*tokens
 * FLOPs:         1152*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

__device__ const double rope_inv_freq_0[8] = {1e0, 3.1622776601683794e-1, 1e-1, 3.162277660168379e-2, 1e-2, 3.1622776601683794e-3, 1e-3, 3.1622776601683794e-4};
static __device__ __forceinline__ void rope_sincos(double a, float* s, float* c) {
    a -= 6.283185307179586 * rint(a * 0.15915494309189535);
    sincosf((float)a, s, c);
}
__device__ const double rope_inv_freq_1[8] = {1e0, 3.1622776601683794e-1, 1e-1, 3.162277660168379e-2, 1e-2, 3.1622776601683794e-3, 1e-3, 3.1622776601683794e-4};
extern "C" __global__ void __launch_bounds__(256) rope_326855c1bbcd(
    const bf16* __restrict__ x0_p, int x0_stride,
    const int* __restrict__ s1,
    const bf16* __restrict__ x2_p, int x2_stride,
    bf16* __restrict__ o0, int o0_stride,
    bf16* __restrict__ o1, int o1_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x2 = [&](int c) -> float { return ld(x2_p, row * x2_stride + c); };
    /* rope(head_dim=16, theta=10000) @ layers.*.mixer */
    const double pos0 = (double)s1[row];
    auto v0 = [&](int c) -> float { return [&]() { const int i = c % 16; const int j = i % 8; float s, co; rope_sincos(pos0 * rope_inv_freq_0[j], &s, &co); return i < 8 ? x0(c) * co - x0(c + 8) * s : x0(c) * co + x0(c - 8) * s; }(); };
    /* rope(head_dim=16, theta=10000) @ layers.*.mixer */
    const double pos1 = (double)s1[row];
    auto v1 = [&](int c) -> float { return [&]() { const int i = c % 16; const int j = i % 8; float s, co; rope_sincos(pos1 * rope_inv_freq_1[j], &s, &co); return i < 8 ? x2(c) * co - x2(c + 8) * s : x2(c) * co + x2(c - 8) * s; }(); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 32) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/attn_prefill_48c04fff.cu =====
/*
 * modelc mixer core: attn_prefill_48c04fff (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=16, causal=true, window=none, scale=0.25)
 * Bytes loaded:  256*batch*tokens + 128*batch*(past + tokens)
 * Bytes stored:  256*batch*tokens
 * FLOPs:         256*batch*tokens*(past + tokens)
 */
/*
 * attn_prefill_48c04fff: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = 4 query heads, G = 2 KV heads, Dh = 16, scale = 2.5e-1f, full causal (slot = pos).
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t. Tensor cores: S = Q K^T and O += P V on mma.sync m16n8k16
 *   (bf16 operands, f32 accumulation); online softmax in f32 (exp2, log2(e) folded into the
 *   scale). Each warp owns 32 query rows (two m-tiles), so every k or v fragment loaded with
 *   ldmatrix feeds two mma; q fragments are reloaded from shared memory per key tile. P stays
 *   in registers (the S accumulators of two n-tiles are one A fragment), rounded to bf16.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 *   Rows that are not 16-byte aligned are copied element by element (same results); out rows
 *   that are not 4-byte aligned are stored a channel at a time.
 * Grid (H*B, ceil(T/128)): blockIdx.x = h + H*b, blockIdx.y counts query tiles from the last
 *   (the heaviest under the causal mask) so that they start first. Block 128 (4 warps x 32
 *   query rows), dynamic smem (BQ + 2 STAGES BK) (Dh + 8) * 2 bytes: q tile and 2 stages
 *   of 64-key k/v tiles, rows padded by 8 channels so that ldmatrix is free of bank conflicts.
 * Per warp, key tiles past its last row (or before its first row's window) are skipped, and
 *   only tiles that cross a row's diagonal or window edge are masked.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif
#ifndef MODELC_MMA_PRELUDE
#define MODELC_MMA_PRELUDE
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/* 16-byte global -> shared copy; pred = false zero-fills the destination (reads nothing). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
}
/* cp_async16 for long streams read once (the decode's cached keys and values): L2 fetches the
   whole 128-byte line from DRAM at once (L2::128B) and evicts it first (an evict-first policy). */
__device__ __forceinline__ void cp_async16_stream(void* dst, const void* src, bool pred) {
    asm volatile(
        "{\n.reg .b64 pol;\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        "cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2, pol;\n}\n" ::"r"(smem_addr(dst)),
        "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
/* Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i. */
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d += A (16x16, row) * B (16x8, col): bf16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
__device__ __forceinline__ void copy8_to_smem(bf16* dst, const bf16* src, bool pred, bool vec) {
    if (vec) {
        cp_async16(dst, src, pred);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = pred ? src[i] : f2bf(0.0f);
}
__device__ __forceinline__ void copy8_global(bf16* dst, const bf16* src, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = src[i];
}
#endif

extern "C" __global__ void __launch_bounds__(128) attn_prefill_48c04fff(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)
{
    constexpr int H = 4;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 16;
    constexpr int W = 0;
    constexpr float SCALE_LOG2 = 3.6067376e-1f;
    constexpr int BQ = 128, BK = 64, NTH = 128, STAGES = 2;
    constexpr int DS = DH + 8;          /* padded smem row (elements): conflict-free ldmatrix */
    constexpr int CPR = DH / 8;         /* 16-byte chunks per row */
    constexpr int NT = BK / 8;          /* score n-tiles per m-tile */
    constexpr int DT = DH / 8;          /* output n-tiles per m-tile */
    constexpr int KS = DH / 16;         /* k-steps of q.k */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* q_s = reinterpret_cast<bf16*>(smem_raw);
    bf16* k_s = q_s + BQ * DS;          /* [STAGES][BK][DS] */
    bf16* v_s = k_s + STAGES * BK * DS; /* [STAGES][BK][DS] */

    /* Heaviest (latest) query tiles first: causal work grows with the tile index. */
    const int qt0 = (gridDim.y - 1 - blockIdx.y) * BQ;
    const int h = blockIdx.x % H;
    const long b = blockIdx.x / H;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = h / R;
    const int past = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    const int n_tiles = (hi - lo) / BK + 1;
    /* q/k/v rows may be column slices of wider buffers: 16-byte copies need aligned rows. */
    const bool vec = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k) |
                       reinterpret_cast<unsigned long long>(v) |
                       2ull * (unsigned long long)(q_stride | k_stride | v_stride)) & 15) == 0;

    /* q tile (zero rows past T): part of the first cp.async group */
    for (int c = tid; c < BQ * CPR; c += NTH) {
        const int r = c / CPR, ch = c % CPR, t = qt0 + r;
        const bf16* src = q + (b * T + min(t, T - 1)) * (long)q_stride + h * DH + ch * 8;
        copy8_to_smem(q_s + r * DS + ch * 8, src, t < T, vec);
    }
    /* Keys past hi (and rows of empty slots) are zero-filled: a NaN there would survive P = 0. */
    auto load_kv = [&](int tile, int buf) {
        const int kt0 = lo + tile * BK;
        bf16* kd = k_s + buf * BK * DS;
        bf16* vd = v_s + buf * BK * DS;
        for (int c = tid; c < BK * CPR; c += NTH) {
            const int r = c / CPR, ch = c % CPR, pos = kt0 + r;
            const bf16* ks = k;
            const bf16* vs = v;
            bool ok = pos <= hi;
            if (pos < past) {
                const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                ok = ok && slot < s_max;
                ks = kc + slot * DH + ch * 8;
                vs = vc + slot * DH + ch * 8;
            } else if (ok) {
                const long row = b * T + (pos - past);
                ks = k + row * k_stride + g * DH + ch * 8;
                vs = v + row * v_stride + g * DH + ch * 8;
            }
            copy8_to_smem(kd + r * DS + ch * 8, ks, ok, vec);
            copy8_to_smem(vd + r * DS + ch * 8, vs, ok, vec);
        }
    };
    load_kv(0, 0); /* with the q tile: the first cp.async group */
    cp_async_commit();

    if (h % R == 0) {
        for (int c = tid; c < BQ * CPR; c += NTH) {
            const int r = c / CPR, ch = c % CPR, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {
                copy8_global(kc + slot * DH + ch * 8, k + (b * T + t) * k_stride + g * DH + ch * 8, vec);
                copy8_global(vc + slot * DH + ch * 8, v + (b * T + t) * v_stride + g * DH + ch * 8, vec);
            }
        }
    }

    /* Fragment coordinates: m-tile mt of this warp holds rows warp*32 + mt*16 + lane/4 (+ 8). */
    const int fr = lane / 4, fc = (lane % 4) * 2;
    const int wq0 = past + qt0 + warp * 32;  /* position of the warp's first row */
    float o[2][DT][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int i = 0; i < DT; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    float m[2][2], l[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

    for (int tile = 0; tile < n_tiles; ++tile) {
        cp_async_wait<0>();
        __syncthreads(); /* tile visible to all; every warp is done with tile - 1's buffer */
        if (tile + 1 < n_tiles) load_kv(tile + 1, (tile + 1) % STAGES);
        cp_async_commit();
        const int kt0 = lo + tile * BK;
        /* Warp-uniform: every key of the tile is past the warp's last row, or before the window
         * of its first row. */
        if (kt0 > wq0 + 31 || (W > 0 && kt0 + BK - 1 <= wq0 - W)) continue;
        const bf16* kb = k_s + (tile % STAGES) * BK * DS;
        const bf16* vb = v_s + (tile % STAGES) * BK * DS;

        float s[2][NT][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int n = 0; n < NT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
        /* Not unrolled: q fragments of every k-step hoisted at once would spill. */
#pragma unroll 1
        for (int ks = 0; ks < KS; ++ks) {
            unsigned qa[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
                ldmatrix_x4(qa[mt], q_s + (warp * 32 + mt * 16 + lane % 16) * DS + ks * 16 + (lane / 16) * 8);
#pragma unroll
            for (int np = 0; np < NT / 2; ++np) {
                unsigned bfr[4];
                const int key = np * 16 + (lane / 16) * 8 + lane % 8;
                const int d = ks * 16 + ((lane / 8) % 2) * 8;
                ldmatrix_x4(bfr, kb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    mma_bf16(s[mt][2 * np], qa[mt], bfr[0], bfr[1]);
                    mma_bf16(s[mt][2 * np + 1], qa[mt], bfr[2], bfr[3]);
                }
            }
        }
        /* Mask only tiles that reach past the warp's first row or out of its last row's window. */
        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 31 - kt0 < W);
        unsigned pa[2][BK / 16][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const int qpos0 = wq0 + mt * 16 + fr, qpos1 = qpos0 + 8;
            float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int pos = kt0 + n * 8 + fc + e;
                    float a = s[mt][n][e], c = s[mt][n][2 + e];
                    if (!full) {
                        if (!(pos <= qpos0 && (W == 0 || qpos0 - pos < W))) a = -INFINITY;
                        if (!(pos <= qpos1 && (W == 0 || qpos1 - pos < W))) c = -INFINITY;
                    }
                    s[mt][n][e] = a;
                    s[mt][n][2 + e] = c;
                    mx0 = fmaxf(mx0, a);
                    mx1 = fmaxf(mx1, c);
                }
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            /* Raw-score maxima (scale > 0 commutes with max); a row with nothing visible yet
             * keeps base 0 so that exp2 never sees inf - inf. */
            const float mn0 = fmaxf(m[mt][0], mx0), mn1 = fmaxf(m[mt][1], mx1);
            const float nb0 = mn0 == -INFINITY ? 0.0f : -mn0 * SCALE_LOG2;
            const float nb1 = mn1 == -INFINITY ? 0.0f : -mn1 * SCALE_LOG2;
            const float corr0 = exp2f(fmaf(m[mt][0], SCALE_LOG2, nb0));
            const float corr1 = exp2f(fmaf(m[mt][1], SCALE_LOG2, nb1));
            m[mt][0] = mn0;
            m[mt][1] = mn1;
            float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
                s[mt][n][0] = exp2f(fmaf(s[mt][n][0], SCALE_LOG2, nb0));
                s[mt][n][1] = exp2f(fmaf(s[mt][n][1], SCALE_LOG2, nb0));
                s[mt][n][2] = exp2f(fmaf(s[mt][n][2], SCALE_LOG2, nb1));
                s[mt][n][3] = exp2f(fmaf(s[mt][n][3], SCALE_LOG2, nb1));
                sum0 += s[mt][n][0] + s[mt][n][1];
                sum1 += s[mt][n][2] + s[mt][n][3];
            }
            l[mt][0] = l[mt][0] * corr0 + sum0;
            l[mt][1] = l[mt][1] * corr1 + sum1;
#pragma unroll
            for (int i = 0; i < DT; ++i) {
                o[mt][i][0] *= corr0;
                o[mt][i][1] *= corr0;
                o[mt][i][2] *= corr1;
                o[mt][i][3] *= corr1;
            }
            /* The score accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
#pragma unroll
            for (int j = 0; j < BK / 16; ++j) {
                pa[mt][j][0] = pack_bf16x2(s[mt][2 * j][0], s[mt][2 * j][1]);
                pa[mt][j][1] = pack_bf16x2(s[mt][2 * j][2], s[mt][2 * j][3]);
                pa[mt][j][2] = pack_bf16x2(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
                pa[mt][j][3] = pack_bf16x2(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
            }
        }
        /* O += P V: one transposed v fragment feeds both m-tiles. */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
#pragma unroll
            for (int dp = 0; dp < DT / 2; ++dp) {
                unsigned bfr[4];
                const int key = j * 16 + ((lane / 8) % 2) * 8 + lane % 8;
                const int d = dp * 16 + (lane / 16) * 8;
                ldmatrix_x4_trans(bfr, vb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    mma_bf16(o[mt][2 * dp], pa[mt][j], bfr[0], bfr[1]);
                    mma_bf16(o[mt][2 * dp + 1], pa[mt][j], bfr[2], bfr[3]);
                }
            }
        }
    }
    cp_async_wait<0>();
    const bool out_pairs = ((reinterpret_cast<unsigned long long>(out) | 2ull * (unsigned long long)out_stride) & 3) == 0;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
        float l0 = l[mt][0], l1 = l[mt][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
        const int t0 = qt0 + warp * 32 + mt * 16 + fr, t1 = t0 + 8;
#pragma unroll
        for (int i = 0; i < DT; ++i) {
            const int d = i * 8 + fc;
            bf16* o0 = out + (b * T + t0) * out_stride + h * DH + d;
            bf16* o1 = out + (b * T + t1) * out_stride + h * DH + d;
            const __nv_bfloat162 v0 = __floats2bfloat162_rn(o[mt][i][0] * inv0, o[mt][i][1] * inv0);
            const __nv_bfloat162 v1 = __floats2bfloat162_rn(o[mt][i][2] * inv1, o[mt][i][3] * inv1);
            if (out_pairs) {
                if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
                if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;
            } else {
                if (t0 < T) { o0[0] = v0.x; o0[1] = v0.y; }
                if (t1 < T) { o1[0] = v1.x; o1[1] = v1.y; }
            }
        }
    }
}

// ===== kernels/rms_norm_86fdad02b6ce.cu =====
/*
 * rms_norm_86fdad02b6ce: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   rms_norm(eps=1e-5, group=64) @ layers.*
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  128*batch*tokens + 128
 * Bytes stored:  128*batch*tokens
 * FLOPs:         256*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128) rms_norm_86fdad02b6ce(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ w1,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __shared__ float red_[4];
    (void)lane; (void)warp; (void)red_;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    /* rms_norm(eps=1e-5, group=64) @ layers.* */
    __shared__ float st0[1];
    {
        constexpr int G = 64, NG = 1;
        const int gi = warp / 4, t = tid - gi * 128;
        float acc = 0.0f;
        {
#pragma unroll
            for (int i = 0; i < 1; ++i) {
                const int j = t + i * 128;
                if (j < G) { const float x = x0(gi * G + j); acc += x * x; }
            }
        }
        acc = warp_sum(acc);
        __syncthreads();
        if (lane == 0) red_[warp] = acc;
        __syncthreads();
        if (tid < NG) {
            acc = 0.0f;
            for (int i = 0; i < 4; ++i) acc += red_[tid * 4 + i];
            st0[tid] = rsqrtf(acc / 64.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v0 = [&](int c) -> float { return x0(c) * st0[c / 64] * bf2f(w1[c % 64]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/silu_mul_9fbd1932e067.cu =====
/*
 * silu_mul_9fbd1932e067: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   silu @ layers.*.mlp
 *   mul @ layers.*.mlp
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  512*batch*tokens
 * Bytes stored:  256*batch*tokens
 * FLOPs:         896*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(256) silu_mul_9fbd1932e067(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ x1_p, int x1_stride,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x1 = [&](int c) -> float { return ld(x1_p, row * x1_stride + c); };
    /* silu @ layers.*.mlp */
    auto v0 = [&](int c) -> float { return silu_f(x0(c)); };
    /* mul @ layers.*.mlp */
    auto v1 = [&](int c) -> float { return v0(c) * x1(c); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 128) st(o0, row * o0_stride + c, v1(c));
    }
}

// ===== kernels/attn_prefill_767f5022.cu =====
/*
 * modelc mixer core: attn_prefill_767f5022 (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=16, causal=true, window=8, scale=0.25)
 * Bytes loaded:  256*batch*tokens + 128*batch*min(past + tokens, 8)
 * Bytes stored:  256*batch*tokens
 * FLOPs:         256*batch*tokens*min(past + tokens, 8)
 */
/*
 * attn_prefill_767f5022: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = 4 query heads, G = 2 KV heads, Dh = 16, scale = 2.5e-1f, sliding window W = 8 (ring cache, slot = pos mod S_max).
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t. Tensor cores: S = Q K^T and O += P V on mma.sync m16n8k16
 *   (bf16 operands, f32 accumulation); online softmax in f32 (exp2, log2(e) folded into the
 *   scale). Each warp owns 32 query rows (two m-tiles), so every k or v fragment loaded with
 *   ldmatrix feeds two mma; q fragments are reloaded from shared memory per key tile. P stays
 *   in registers (the S accumulators of two n-tiles are one A fragment), rounded to bf16.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 *   Rows that are not 16-byte aligned are copied element by element (same results); out rows
 *   that are not 4-byte aligned are stored a channel at a time.
 * Grid (H*B, ceil(T/128)): blockIdx.x = h + H*b, blockIdx.y counts query tiles from the last
 *   (the heaviest under the causal mask) so that they start first. Block 128 (4 warps x 32
 *   query rows), dynamic smem (BQ + 2 STAGES BK) (Dh + 8) * 2 bytes: q tile and 2 stages
 *   of 64-key k/v tiles, rows padded by 8 channels so that ldmatrix is free of bank conflicts.
 * Per warp, key tiles past its last row (or before its first row's window) are skipped, and
 *   only tiles that cross a row's diagonal or window edge are masked.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif
#ifndef MODELC_MMA_PRELUDE
#define MODELC_MMA_PRELUDE
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/* 16-byte global -> shared copy; pred = false zero-fills the destination (reads nothing). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
}
/* cp_async16 for long streams read once (the decode's cached keys and values): L2 fetches the
   whole 128-byte line from DRAM at once (L2::128B) and evicts it first (an evict-first policy). */
__device__ __forceinline__ void cp_async16_stream(void* dst, const void* src, bool pred) {
    asm volatile(
        "{\n.reg .b64 pol;\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        "cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2, pol;\n}\n" ::"r"(smem_addr(dst)),
        "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
/* Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i. */
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d += A (16x16, row) * B (16x8, col): bf16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
__device__ __forceinline__ void copy8_to_smem(bf16* dst, const bf16* src, bool pred, bool vec) {
    if (vec) {
        cp_async16(dst, src, pred);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = pred ? src[i] : f2bf(0.0f);
}
__device__ __forceinline__ void copy8_global(bf16* dst, const bf16* src, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = src[i];
}
#endif

extern "C" __global__ void __launch_bounds__(128) attn_prefill_767f5022(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)
{
    constexpr int H = 4;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 16;
    constexpr int W = 8;
    constexpr float SCALE_LOG2 = 3.6067376e-1f;
    constexpr int BQ = 128, BK = 64, NTH = 128, STAGES = 2;
    constexpr int DS = DH + 8;          /* padded smem row (elements): conflict-free ldmatrix */
    constexpr int CPR = DH / 8;         /* 16-byte chunks per row */
    constexpr int NT = BK / 8;          /* score n-tiles per m-tile */
    constexpr int DT = DH / 8;          /* output n-tiles per m-tile */
    constexpr int KS = DH / 16;         /* k-steps of q.k */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* q_s = reinterpret_cast<bf16*>(smem_raw);
    bf16* k_s = q_s + BQ * DS;          /* [STAGES][BK][DS] */
    bf16* v_s = k_s + STAGES * BK * DS; /* [STAGES][BK][DS] */

    /* Heaviest (latest) query tiles first: causal work grows with the tile index. */
    const int qt0 = (gridDim.y - 1 - blockIdx.y) * BQ;
    const int h = blockIdx.x % H;
    const long b = blockIdx.x / H;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = h / R;
    const int past = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    const int n_tiles = (hi - lo) / BK + 1;
    /* q/k/v rows may be column slices of wider buffers: 16-byte copies need aligned rows. */
    const bool vec = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k) |
                       reinterpret_cast<unsigned long long>(v) |
                       2ull * (unsigned long long)(q_stride | k_stride | v_stride)) & 15) == 0;

    /* q tile (zero rows past T): part of the first cp.async group */
    for (int c = tid; c < BQ * CPR; c += NTH) {
        const int r = c / CPR, ch = c % CPR, t = qt0 + r;
        const bf16* src = q + (b * T + min(t, T - 1)) * (long)q_stride + h * DH + ch * 8;
        copy8_to_smem(q_s + r * DS + ch * 8, src, t < T, vec);
    }
    /* Keys past hi (and rows of empty slots) are zero-filled: a NaN there would survive P = 0. */
    auto load_kv = [&](int tile, int buf) {
        const int kt0 = lo + tile * BK;
        bf16* kd = k_s + buf * BK * DS;
        bf16* vd = v_s + buf * BK * DS;
        for (int c = tid; c < BK * CPR; c += NTH) {
            const int r = c / CPR, ch = c % CPR, pos = kt0 + r;
            const bf16* ks = k;
            const bf16* vs = v;
            bool ok = pos <= hi;
            if (pos < past) {
                const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                ok = ok && slot < s_max;
                ks = kc + slot * DH + ch * 8;
                vs = vc + slot * DH + ch * 8;
            } else if (ok) {
                const long row = b * T + (pos - past);
                ks = k + row * k_stride + g * DH + ch * 8;
                vs = v + row * v_stride + g * DH + ch * 8;
            }
            copy8_to_smem(kd + r * DS + ch * 8, ks, ok, vec);
            copy8_to_smem(vd + r * DS + ch * 8, vs, ok, vec);
        }
    };
    load_kv(0, 0); /* with the q tile: the first cp.async group */
    cp_async_commit();

    if (h % R == 0) {
        for (int c = tid; c < BQ * CPR; c += NTH) {
            const int r = c / CPR, ch = c % CPR, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {
                copy8_global(kc + slot * DH + ch * 8, k + (b * T + t) * k_stride + g * DH + ch * 8, vec);
                copy8_global(vc + slot * DH + ch * 8, v + (b * T + t) * v_stride + g * DH + ch * 8, vec);
            }
        }
    }

    /* Fragment coordinates: m-tile mt of this warp holds rows warp*32 + mt*16 + lane/4 (+ 8). */
    const int fr = lane / 4, fc = (lane % 4) * 2;
    const int wq0 = past + qt0 + warp * 32;  /* position of the warp's first row */
    float o[2][DT][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int i = 0; i < DT; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    float m[2][2], l[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

    for (int tile = 0; tile < n_tiles; ++tile) {
        cp_async_wait<0>();
        __syncthreads(); /* tile visible to all; every warp is done with tile - 1's buffer */
        if (tile + 1 < n_tiles) load_kv(tile + 1, (tile + 1) % STAGES);
        cp_async_commit();
        const int kt0 = lo + tile * BK;
        /* Warp-uniform: every key of the tile is past the warp's last row, or before the window
         * of its first row. */
        if (kt0 > wq0 + 31 || (W > 0 && kt0 + BK - 1 <= wq0 - W)) continue;
        const bf16* kb = k_s + (tile % STAGES) * BK * DS;
        const bf16* vb = v_s + (tile % STAGES) * BK * DS;

        float s[2][NT][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int n = 0; n < NT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
        /* Not unrolled: q fragments of every k-step hoisted at once would spill. */
#pragma unroll 1
        for (int ks = 0; ks < KS; ++ks) {
            unsigned qa[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
                ldmatrix_x4(qa[mt], q_s + (warp * 32 + mt * 16 + lane % 16) * DS + ks * 16 + (lane / 16) * 8);
#pragma unroll
            for (int np = 0; np < NT / 2; ++np) {
                unsigned bfr[4];
                const int key = np * 16 + (lane / 16) * 8 + lane % 8;
                const int d = ks * 16 + ((lane / 8) % 2) * 8;
                ldmatrix_x4(bfr, kb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    mma_bf16(s[mt][2 * np], qa[mt], bfr[0], bfr[1]);
                    mma_bf16(s[mt][2 * np + 1], qa[mt], bfr[2], bfr[3]);
                }
            }
        }
        /* Mask only tiles that reach past the warp's first row or out of its last row's window. */
        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 31 - kt0 < W);
        unsigned pa[2][BK / 16][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const int qpos0 = wq0 + mt * 16 + fr, qpos1 = qpos0 + 8;
            float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int pos = kt0 + n * 8 + fc + e;
                    float a = s[mt][n][e], c = s[mt][n][2 + e];
                    if (!full) {
                        if (!(pos <= qpos0 && (W == 0 || qpos0 - pos < W))) a = -INFINITY;
                        if (!(pos <= qpos1 && (W == 0 || qpos1 - pos < W))) c = -INFINITY;
                    }
                    s[mt][n][e] = a;
                    s[mt][n][2 + e] = c;
                    mx0 = fmaxf(mx0, a);
                    mx1 = fmaxf(mx1, c);
                }
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            /* Raw-score maxima (scale > 0 commutes with max); a row with nothing visible yet
             * keeps base 0 so that exp2 never sees inf - inf. */
            const float mn0 = fmaxf(m[mt][0], mx0), mn1 = fmaxf(m[mt][1], mx1);
            const float nb0 = mn0 == -INFINITY ? 0.0f : -mn0 * SCALE_LOG2;
            const float nb1 = mn1 == -INFINITY ? 0.0f : -mn1 * SCALE_LOG2;
            const float corr0 = exp2f(fmaf(m[mt][0], SCALE_LOG2, nb0));
            const float corr1 = exp2f(fmaf(m[mt][1], SCALE_LOG2, nb1));
            m[mt][0] = mn0;
            m[mt][1] = mn1;
            float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
                s[mt][n][0] = exp2f(fmaf(s[mt][n][0], SCALE_LOG2, nb0));
                s[mt][n][1] = exp2f(fmaf(s[mt][n][1], SCALE_LOG2, nb0));
                s[mt][n][2] = exp2f(fmaf(s[mt][n][2], SCALE_LOG2, nb1));
                s[mt][n][3] = exp2f(fmaf(s[mt][n][3], SCALE_LOG2, nb1));
                sum0 += s[mt][n][0] + s[mt][n][1];
                sum1 += s[mt][n][2] + s[mt][n][3];
            }
            l[mt][0] = l[mt][0] * corr0 + sum0;
            l[mt][1] = l[mt][1] * corr1 + sum1;
#pragma unroll
            for (int i = 0; i < DT; ++i) {
                o[mt][i][0] *= corr0;
                o[mt][i][1] *= corr0;
                o[mt][i][2] *= corr1;
                o[mt][i][3] *= corr1;
            }
            /* The score accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
#pragma unroll
            for (int j = 0; j < BK / 16; ++j) {
                pa[mt][j][0] = pack_bf16x2(s[mt][2 * j][0], s[mt][2 * j][1]);
                pa[mt][j][1] = pack_bf16x2(s[mt][2 * j][2], s[mt][2 * j][3]);
                pa[mt][j][2] = pack_bf16x2(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
                pa[mt][j][3] = pack_bf16x2(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
            }
        }
        /* O += P V: one transposed v fragment feeds both m-tiles. */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
#pragma unroll
            for (int dp = 0; dp < DT / 2; ++dp) {
                unsigned bfr[4];
                const int key = j * 16 + ((lane / 8) % 2) * 8 + lane % 8;
                const int d = dp * 16 + (lane / 16) * 8;
                ldmatrix_x4_trans(bfr, vb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    mma_bf16(o[mt][2 * dp], pa[mt][j], bfr[0], bfr[1]);
                    mma_bf16(o[mt][2 * dp + 1], pa[mt][j], bfr[2], bfr[3]);
                }
            }
        }
    }
    cp_async_wait<0>();
    const bool out_pairs = ((reinterpret_cast<unsigned long long>(out) | 2ull * (unsigned long long)out_stride) & 3) == 0;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
        float l0 = l[mt][0], l1 = l[mt][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
        const int t0 = qt0 + warp * 32 + mt * 16 + fr, t1 = t0 + 8;
#pragma unroll
        for (int i = 0; i < DT; ++i) {
            const int d = i * 8 + fc;
            bf16* o0 = out + (b * T + t0) * out_stride + h * DH + d;
            bf16* o1 = out + (b * T + t1) * out_stride + h * DH + d;
            const __nv_bfloat162 v0 = __floats2bfloat162_rn(o[mt][i][0] * inv0, o[mt][i][1] * inv0);
            const __nv_bfloat162 v1 = __floats2bfloat162_rn(o[mt][i][2] * inv1, o[mt][i][3] * inv1);
            if (out_pairs) {
                if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
                if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;
            } else {
                if (t0 < T) { o0[0] = v0.x; o0[1] = v0.y; }
                if (t1 < T) { o1[0] = v1.x; o1[1] = v1.y; }
            }
        }
    }
}

// ===== kernels/conv1d_928edf1d.cu =====
/*
 * modelc mixer core: conv1d_928edf1d (template).
 * Fuses, in order:
 *   causal_conv1d(kernel=4, silu)
 * Bytes loaded:  256*batch*tokens + 1536*batch + 1024
 * Bytes stored:  256*batch*tokens + 1536*batch
 * FLOPs:         1792*batch*tokens
 */
/*
 * conv1d_928edf1d: causal depthwise conv1d, K = 4 taps, bias = false, activation = silu.
 *   y[b,t,c] = act(bias[c] + sum_j w[c,j] * x[b, t-(K-1)+j, c]); the last tap j = K-1 multiplies
 *   the current token; inputs before t = 0 come from state_in[b, c, :] (oldest first) or zeros.
 *   state_out[b, c, :] = the last K-1 inputs of (state_in ++ x). f32 accumulation.
 * Layouts: x, y [B, T, C] bf16, row strides x_stride / y_stride (elements); w [C, K] bf16;
 *   bias [C] bf16; states [B, C, K-1] f32 (may alias).
 * Grid (ceil(C/128), ceil(T/16), B), block 128: one thread per channel and 16-token tile.
 * Decode: the same kernel with T = 1.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128) conv1d_928edf1d(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ w, const bf16* __restrict__ bias,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int C)
{
    modelc_pdl_enter();
    constexpr int K = 4;
    constexpr int TT = 16;
    const int c = blockIdx.x * 128 + threadIdx.x;
    const int t0 = blockIdx.y * TT;
    const long b = blockIdx.z;
    if (c >= C) return;
    const float* st = state_in ? state_in + (b * C + c) * (K - 1) : nullptr;

    float wr[K];
#pragma unroll
    for (int j = 0; j < K; ++j) wr[j] = bf2f(w[(long)c * K + j]);
    const float bv = 0.0f;

    /* win[j] holds the input at t - (K-1) + j for the token t being computed. */
    float win[K];
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {
        const int tt = t0 - (K - 1) + j;
        win[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
    }
    /* The first tile writes the final state, after having read state_in: in-place is safe. */
    if (state_out && blockIdx.y == 0) {
        float fin[K > 1 ? K - 1 : 1];
#pragma unroll
        for (int j = 0; j < K - 1; ++j) {
            const int tt = T - (K - 1) + j;
            fin[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
        }
        float* so = state_out + (b * C + c) * (K - 1);
#pragma unroll
        for (int j = 0; j < K - 1; ++j) so[j] = fin[j];
    }
    for (int i = 0; i < TT; ++i) {
        const int t = t0 + i;
        if (t >= T) break;
        win[K - 1] = bf2f(x[(b * T + t) * x_stride + c]);
        float acc = bv;
#pragma unroll
        for (int j = 0; j < K; ++j) acc = fmaf(wr[j], win[j], acc);
        y[(b * T + t) * y_stride + c] = f2bf(silu_f(acc));
#pragma unroll
        for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }
}

// ===== kernels/sigmoid_decay_gate_37cde2c21463.cu =====
/*
 * sigmoid_decay_gate_37cde2c21463: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   sigmoid @ layers.*.mixer
 *   decay_gate(group=1) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  16*batch*tokens + 32
 * Bytes stored:  32*batch*tokens
 * FLOPs:         72*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(256) sigmoid_decay_gate_37cde2c21463(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ x1_p, int x1_stride,
    const float* __restrict__ w2,
    const float* __restrict__ w3,
    float* __restrict__ o0, int o0_stride,
    float* __restrict__ o1, int o1_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x1 = [&](int c) -> float { return ld(x1_p, row * x1_stride + c); };
    /* sigmoid @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return sigmoid_f(x0(c)); };
    /* decay_gate(group=1) @ layers.*.mixer */
    auto v1 = [&](int c) -> float { return -expf((float)w2[c / 1]) * softplus_f(x1(c) + (float)w3[c]); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 4) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 4) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/delta_rule_chunked_7f64ed63.cu =====
/*
 * modelc mixer core: delta_rule_chunked_7f64ed63 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=16)
 *   scale(0.25)
 *   l2_norm(eps=1e-6, group=16)
 *   delta_rule(key_heads=2, value_heads=4, key_dim=16, value_dim=16, decay=scalar)
 *   gated_rms_norm(eps=1e-5, group=16, act=silu)
 * Bytes loaded:  416*batch*tokens + 4096*batch + 64
 * Bytes stored:  128*batch*tokens + 4096*batch
 * FLOPs:         17024*batch*tokens
 */
/*
 * delta_rule_chunked_7f64ed63: gated delta rule, chunked (WY representation / UT transform).
 *   Hk = 2, Hv = 4, Dk = 16, Dv = 16, gate = scalar per head (GDN), qk l2norm = true, scale = 2.5e-1f, chunk C = 16.
 *   Gated RMSNorm epilogue: o <- o * rsqrt(mean_head(o^2) + 1e-5f) * norm_w * silu_f(gate)
 *   Per chunk: G = in-chunk cumsum of g; L[t,s] = beta_t sum_d k_td k_sd e^(G_td - G_sd) (s < t);
 *   QK[t,s] = sum_d q_td k_sd e^(G_td - G_sd) (s <= t); u = (I + L)^-1 diag(beta) (V - (e^G k) S);
 *   o_t = S^T (e^G_t q_t) + sum_(s<=t) QK[t,s] u_s; S <- e^G_last S + (e^(G_last - G) k)^T u.
 *   Tokens past T in the last chunk are zero with beta = 0 and g = 0, so they change nothing.
 * Layouts: q, k [B,T,Hk*Dk], v [B,T,Hv*Dv], o [B,T,Hv*Dv] bf16 rows with strides (elements);
 *   g [B,T,Hv] (scalar) or [B,T,Hv*Dk] (per channel) f32 dense log-decays; beta [B,T,Hv] f32 dense;
 *   state_in / state_out [B,Hv,Dk,Dv] f32 (state_in null = zeros; they may alias).
 *   gate [B,T,Hv*Dv] bf16 rows with stride gate_stride; norm_w [Dv] f32 (the norm's weight).
 * Grid (ceil(Dv/BV), Hv, B), block BV = 32, dynamic smem = delta_rule_chunked_smem() bytes.
 *   Thread j keeps column j of S in registers; chunks run in sequence inside the block.
 *   Threads with j >= Dv (VTAIL) keep a zero column: they help with the setup, their u is 0.
 *   Epilogue: one block per head (BV >= Dv). Step 5 keeps each token's o (f32) in ob and the
 *   per-warp sums of o^2 in nss; after the chunk's last barrier every thread adds the partials
 *   in warp order and stores its normalised, gated columns. The next chunk rewrites ob/nss only
 *   in its step 5, behind its own barriers, so the epilogue adds no barrier.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

extern "C" __global__ void __launch_bounds__(32) delta_rule_chunked_7f64ed63(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 2;
    constexpr int HV = 4;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 16;
    constexpr int DV = 16;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = false;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 2.5e-1f;
    (void)DV; (void)NWARP;
    constexpr float NORM_EPS = 1e-5f;
    constexpr int C = 16;
    constexpr int DKP = DK + 1;
    constexpr int NG = PER_CHANNEL ? C * DK : C;
    extern __shared__ float smem[];
    float* qn = smem;                  /* [C][DKP] q (normalised, scaled), then e^G q      */
    float* kn = qn + C * DKP;          /* [C][DKP] k (normalised), then e^G k              */
    float* kh = kn + C * DKP;          /* [C][DKP] e^(G_last - G) k                        */
    float* Gs = kh + C * DKP;          /* [C][DK] or [C]: cumulative log-decay             */
    float* Lm = Gs + NG;               /* [C][C] beta_t k_t.k_s decay, s < t               */
    float* QK = Lm + C * C;            /* [C][C] q_t.k_s decay, s <= t                     */
    float* bs = QK + C * C;            /* [C] beta                                         */
    float* gl = bs + C;                /* [DK] G_last                                      */
    float* egl = gl + DK;              /* [DK] e^G_last                                    */
    float* us = egl + DK;              /* [C][BV] u, one column per thread                 */
    float* nrm = us + C * BV;          /* [2][C] reciprocal norms of q and k rows          */
    float* ob = nrm + 2 * C;           /* [C][BV] o in f32, one column per thread (epilogue) */
    float* nss = ob + C * BV;          /* [C][NWARP] per-warp sums of o^2 (epilogue)        */

    const int tid = threadIdx.x;
    const int j = blockIdx.x * BV + tid;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int hk = hv / RATIO;
    const bool active = !VTAIL || j < DV; /* owns a value column */
    const long sbase = (b * HV + hv) * (long)DK * DV + j;

    float s[DK];
#pragma unroll
    for (int d = 0; d < DK; ++d) s[d] = state_in && active ? state_in[sbase + (long)d * DV] : 0.0f;

    for (int c0 = 0; c0 < T; c0 += C) {
        const int cn = min(C, T - c0);
        /* 1. load the chunk (zeros past T) */
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            qn[t * DKP + d] = ok ? bf2f(q[row * q_stride + hk * DK + d]) : 0.0f;
            kn[t * DKP + d] = ok ? bf2f(k[row * k_stride + hk * DK + d]) : 0.0f;
            if (PER_CHANNEL) Gs[t * DK + d] = ok ? g[row * HV * DK + hv * DK + d] : 0.0f;
        }
        for (int t = tid; t < C; t += BV) {
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            bs[t] = ok ? beta[row * HV + hv] : 0.0f;
            if (!PER_CHANNEL) Gs[t] = ok ? g[row * HV + hv] : 0.0f;
        }
        __syncthreads();
        /* 2. row norms (one warp per row) and the in-chunk cumulative decay */
        for (int t = tid / 32; t < C; t += NWARP) {
            float sq = 0.0f, sk = 0.0f;
            for (int d = tid % 32; d < DK; d += 32) {
                sq += qn[t * DKP + d] * qn[t * DKP + d];
                sk += kn[t * DKP + d] * kn[t * DKP + d];
            }
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (tid % 32 == 0) {
                nrm[t] = L2NORM ? SCALE * rsqrtf(sq + 1e-6f) : SCALE;
                nrm[C + t] = L2NORM ? rsqrtf(sk + 1e-6f) : 1.0f;
            }
        }
        if (PER_CHANNEL) {
            for (int d = tid; d < DK; d += BV) {
                float acc = 0.0f;
                for (int t = 0; t < C; ++t) { acc += Gs[t * DK + d]; Gs[t * DK + d] = acc; }
                gl[d] = acc;
            }
        } else if (tid == 0) {
            float acc = 0.0f;
            for (int t = 0; t < C; ++t) { acc += Gs[t]; Gs[t] = acc; }
            gl[0] = acc;
        }
        __syncthreads();
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            qn[t * DKP + d] *= nrm[t];
            kn[t * DKP + d] *= nrm[C + t];
        }
        __syncthreads();
        /* 3. L (strictly lower, scaled by beta_t) and QK (lower with diagonal) */
        for (int i = tid; i < C * C; i += BV) {
            const int t = i / C, r = i % C;
            float lk = 0.0f, lq = 0.0f;
            if (r <= t) {
                if (PER_CHANNEL) {
                    for (int d = 0; d < DK; ++d) {
                        const float e = expf(Gs[t * DK + d] - Gs[r * DK + d]);
                        const float kr = kn[r * DKP + d] * e;
                        lk = fmaf(kn[t * DKP + d], kr, lk);
                        lq = fmaf(qn[t * DKP + d], kr, lq);
                    }
                } else {
                    for (int d = 0; d < DK; ++d) {
                        lk = fmaf(kn[t * DKP + d], kn[r * DKP + d], lk);
                        lq = fmaf(qn[t * DKP + d], kn[r * DKP + d], lq);
                    }
                    const float e = expf(Gs[t] - Gs[r]);
                    lk *= e;
                    lq *= e;
                }
            }
            Lm[i] = r < t ? bs[t] * lk : 0.0f;
            QK[i] = lq;
        }
        __syncthreads();
        /* 4. decay the rows: q <- e^G q, k <- e^G k, kh = e^(G_last - G) k */
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            const float gt = PER_CHANNEL ? Gs[t * DK + d] : Gs[t];
            const float glast = PER_CHANNEL ? gl[d] : gl[0];
            const float e = expf(gt);
            const float kv = kn[t * DKP + d];
            qn[t * DKP + d] *= e;
            kn[t * DKP + d] = kv * e;
            kh[t * DKP + d] = kv * expf(glast - gt);
        }
        for (int d = tid; d < DK; d += BV) egl[d] = expf(PER_CHANNEL ? gl[d] : gl[0]);
        __syncthreads();
        /* 5. thread-local: u by forward substitution, outputs, state update. Token loops stay
         *    rolled (only the Dk loops over the register column unroll), to bound code size. */
#pragma unroll 1
        for (int t = 0; t < C; ++t) {
            float ks = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) ks = fmaf(kn[t * DKP + d], s[d], ks);
            const float vj = t < cn && active ? bf2f(v[(b * T + c0 + t) * v_stride + hv * DV + j]) : 0.0f;
            float u = bs[t] * (vj - ks);
#pragma unroll 1
            for (int r = 0; r < t; ++r) u = fmaf(-Lm[t * C + r], us[r * BV + tid], u);
            us[t * BV + tid] = u;
        }
#pragma unroll 1
        for (int t = 0; t < cn; ++t) {
            float acc = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) acc = fmaf(qn[t * DKP + d], s[d], acc);
#pragma unroll 1
            for (int r = 0; r <= t; ++r) acc = fmaf(QK[t * C + r], us[r * BV + tid], acc);
            /* Gated RMSNorm epilogue, part 1: threads without a value column add 0. */
            const float ov = active ? acc : 0.0f;
            ob[t * BV + tid] = ov;
            const float ss = warp_sum(ov * ov);
            if (tid % 32 == 0) nss[t * NWARP + tid / 32] = ss;
        }
#pragma unroll
        for (int d = 0; d < DK; ++d) s[d] *= egl[d];
#pragma unroll 1
        for (int t = 0; t < C; ++t) {
            const float ut = us[t * BV + tid];
#pragma unroll
            for (int d = 0; d < DK; ++d) s[d] = fmaf(kh[t * DKP + d], ut, s[d]);
        }
        __syncthreads(); /* the next chunk overwrites shared memory */
        /* Gated RMSNorm epilogue, part 2: every thread adds the partials in warp order. */
        if (active) {
            const float wj = norm_w[j];
#pragma unroll 1
            for (int t = 0; t < cn; ++t) {
                float tot = 0.0f;
#pragma unroll
                for (int w = 0; w < NWARP; ++w) tot += nss[t * NWARP + w];
                const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
                const long row = b * T + c0 + t;
                const float zj = bf2f(gate[row * gate_stride + hv * DV + j]);
                o[row * o_stride + hv * DV + j] = f2bf(ob[t * BV + tid] * rn * wj * silu_f(zj));
            }
        }
    }
    if (state_out && active) {
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }
}

// ===== kernels/decay_gate_sigmoid_cb1a543ce061.cu =====
/*
 * decay_gate_sigmoid_cb1a543ce061: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   decay_gate(group=16) @ layers.*.mixer
 *   sigmoid @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  136*batch*tokens + 272
 * Bytes stored:  272*batch*tokens
 * FLOPs:         792*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(256) decay_gate_sigmoid_cb1a543ce061(
    const bf16* __restrict__ x0_p, int x0_stride,
    const float* __restrict__ w1,
    const float* __restrict__ w2,
    const bf16* __restrict__ x3_p, int x3_stride,
    float* __restrict__ o0, int o0_stride,
    float* __restrict__ o1, int o1_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x3 = [&](int c) -> float { return ld(x3_p, row * x3_stride + c); };
    /* decay_gate(group=16) @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return -expf((float)w1[c / 16]) * softplus_f(x0(c) + (float)w2[c]); };
    /* sigmoid @ layers.*.mixer */
    auto v1 = [&](int c) -> float { return sigmoid_f(x3(c)); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 4) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/delta_rule_chunked_af059fae.cu =====
/*
 * modelc mixer core: delta_rule_chunked_af059fae (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=16)
 *   scale(0.25)
 *   l2_norm(eps=1e-6, group=16)
 *   delta_rule(key_heads=4, value_heads=4, key_dim=16, value_dim=16, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=16, act=silu)
 * Bytes loaded:  784*batch*tokens + 4096*batch + 64
 * Bytes stored:  128*batch*tokens + 4096*batch
 * FLOPs:         17024*batch*tokens
 */
/*
 * delta_rule_chunked_af059fae: gated delta rule, chunked (WY representation / UT transform).
 *   Hk = 4, Hv = 4, Dk = 16, Dv = 16, gate = per key channel (KDA), qk l2norm = true, scale = 2.5e-1f, chunk C = 16.
 *   Gated RMSNorm epilogue: o <- o * rsqrt(mean_head(o^2) + 1e-5f) * norm_w * silu_f(gate)
 *   Per chunk: G = in-chunk cumsum of g; L[t,s] = beta_t sum_d k_td k_sd e^(G_td - G_sd) (s < t);
 *   QK[t,s] = sum_d q_td k_sd e^(G_td - G_sd) (s <= t); u = (I + L)^-1 diag(beta) (V - (e^G k) S);
 *   o_t = S^T (e^G_t q_t) + sum_(s<=t) QK[t,s] u_s; S <- e^G_last S + (e^(G_last - G) k)^T u.
 *   Tokens past T in the last chunk are zero with beta = 0 and g = 0, so they change nothing.
 * Layouts: q, k [B,T,Hk*Dk], v [B,T,Hv*Dv], o [B,T,Hv*Dv] bf16 rows with strides (elements);
 *   g [B,T,Hv] (scalar) or [B,T,Hv*Dk] (per channel) f32 dense log-decays; beta [B,T,Hv] f32 dense;
 *   state_in / state_out [B,Hv,Dk,Dv] f32 (state_in null = zeros; they may alias).
 *   gate [B,T,Hv*Dv] bf16 rows with stride gate_stride; norm_w [Dv] f32 (the norm's weight).
 * Grid (ceil(Dv/BV), Hv, B), block BV = 32, dynamic smem = delta_rule_chunked_smem() bytes.
 *   Thread j keeps column j of S in registers; chunks run in sequence inside the block.
 *   Threads with j >= Dv (VTAIL) keep a zero column: they help with the setup, their u is 0.
 *   Epilogue: one block per head (BV >= Dv). Step 5 keeps each token's o (f32) in ob and the
 *   per-warp sums of o^2 in nss; after the chunk's last barrier every thread adds the partials
 *   in warp order and stores its normalised, gated columns. The next chunk rewrites ob/nss only
 *   in its step 5, behind its own barriers, so the epilogue adds no barrier.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

extern "C" __global__ void __launch_bounds__(32) delta_rule_chunked_af059fae(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 4;
    constexpr int HV = 4;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 16;
    constexpr int DV = 16;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = true;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 2.5e-1f;
    (void)DV; (void)NWARP;
    constexpr float NORM_EPS = 1e-5f;
    constexpr int C = 16;
    constexpr int DKP = DK + 1;
    constexpr int NG = PER_CHANNEL ? C * DK : C;
    extern __shared__ float smem[];
    float* qn = smem;                  /* [C][DKP] q (normalised, scaled), then e^G q      */
    float* kn = qn + C * DKP;          /* [C][DKP] k (normalised), then e^G k              */
    float* kh = kn + C * DKP;          /* [C][DKP] e^(G_last - G) k                        */
    float* Gs = kh + C * DKP;          /* [C][DK] or [C]: cumulative log-decay             */
    float* Lm = Gs + NG;               /* [C][C] beta_t k_t.k_s decay, s < t               */
    float* QK = Lm + C * C;            /* [C][C] q_t.k_s decay, s <= t                     */
    float* bs = QK + C * C;            /* [C] beta                                         */
    float* gl = bs + C;                /* [DK] G_last                                      */
    float* egl = gl + DK;              /* [DK] e^G_last                                    */
    float* us = egl + DK;              /* [C][BV] u, one column per thread                 */
    float* nrm = us + C * BV;          /* [2][C] reciprocal norms of q and k rows          */
    float* ob = nrm + 2 * C;           /* [C][BV] o in f32, one column per thread (epilogue) */
    float* nss = ob + C * BV;          /* [C][NWARP] per-warp sums of o^2 (epilogue)        */

    const int tid = threadIdx.x;
    const int j = blockIdx.x * BV + tid;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int hk = hv / RATIO;
    const bool active = !VTAIL || j < DV; /* owns a value column */
    const long sbase = (b * HV + hv) * (long)DK * DV + j;

    float s[DK];
#pragma unroll
    for (int d = 0; d < DK; ++d) s[d] = state_in && active ? state_in[sbase + (long)d * DV] : 0.0f;

    for (int c0 = 0; c0 < T; c0 += C) {
        const int cn = min(C, T - c0);
        /* 1. load the chunk (zeros past T) */
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            qn[t * DKP + d] = ok ? bf2f(q[row * q_stride + hk * DK + d]) : 0.0f;
            kn[t * DKP + d] = ok ? bf2f(k[row * k_stride + hk * DK + d]) : 0.0f;
            if (PER_CHANNEL) Gs[t * DK + d] = ok ? g[row * HV * DK + hv * DK + d] : 0.0f;
        }
        for (int t = tid; t < C; t += BV) {
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            bs[t] = ok ? beta[row * HV + hv] : 0.0f;
            if (!PER_CHANNEL) Gs[t] = ok ? g[row * HV + hv] : 0.0f;
        }
        __syncthreads();
        /* 2. row norms (one warp per row) and the in-chunk cumulative decay */
        for (int t = tid / 32; t < C; t += NWARP) {
            float sq = 0.0f, sk = 0.0f;
            for (int d = tid % 32; d < DK; d += 32) {
                sq += qn[t * DKP + d] * qn[t * DKP + d];
                sk += kn[t * DKP + d] * kn[t * DKP + d];
            }
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (tid % 32 == 0) {
                nrm[t] = L2NORM ? SCALE * rsqrtf(sq + 1e-6f) : SCALE;
                nrm[C + t] = L2NORM ? rsqrtf(sk + 1e-6f) : 1.0f;
            }
        }
        if (PER_CHANNEL) {
            for (int d = tid; d < DK; d += BV) {
                float acc = 0.0f;
                for (int t = 0; t < C; ++t) { acc += Gs[t * DK + d]; Gs[t * DK + d] = acc; }
                gl[d] = acc;
            }
        } else if (tid == 0) {
            float acc = 0.0f;
            for (int t = 0; t < C; ++t) { acc += Gs[t]; Gs[t] = acc; }
            gl[0] = acc;
        }
        __syncthreads();
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            qn[t * DKP + d] *= nrm[t];
            kn[t * DKP + d] *= nrm[C + t];
        }
        __syncthreads();
        /* 3. L (strictly lower, scaled by beta_t) and QK (lower with diagonal) */
        for (int i = tid; i < C * C; i += BV) {
            const int t = i / C, r = i % C;
            float lk = 0.0f, lq = 0.0f;
            if (r <= t) {
                if (PER_CHANNEL) {
                    for (int d = 0; d < DK; ++d) {
                        const float e = expf(Gs[t * DK + d] - Gs[r * DK + d]);
                        const float kr = kn[r * DKP + d] * e;
                        lk = fmaf(kn[t * DKP + d], kr, lk);
                        lq = fmaf(qn[t * DKP + d], kr, lq);
                    }
                } else {
                    for (int d = 0; d < DK; ++d) {
                        lk = fmaf(kn[t * DKP + d], kn[r * DKP + d], lk);
                        lq = fmaf(qn[t * DKP + d], kn[r * DKP + d], lq);
                    }
                    const float e = expf(Gs[t] - Gs[r]);
                    lk *= e;
                    lq *= e;
                }
            }
            Lm[i] = r < t ? bs[t] * lk : 0.0f;
            QK[i] = lq;
        }
        __syncthreads();
        /* 4. decay the rows: q <- e^G q, k <- e^G k, kh = e^(G_last - G) k */
        for (int i = tid; i < C * DK; i += BV) {
            const int t = i / DK, d = i % DK;
            const float gt = PER_CHANNEL ? Gs[t * DK + d] : Gs[t];
            const float glast = PER_CHANNEL ? gl[d] : gl[0];
            const float e = expf(gt);
            const float kv = kn[t * DKP + d];
            qn[t * DKP + d] *= e;
            kn[t * DKP + d] = kv * e;
            kh[t * DKP + d] = kv * expf(glast - gt);
        }
        for (int d = tid; d < DK; d += BV) egl[d] = expf(PER_CHANNEL ? gl[d] : gl[0]);
        __syncthreads();
        /* 5. thread-local: u by forward substitution, outputs, state update. Token loops stay
         *    rolled (only the Dk loops over the register column unroll), to bound code size. */
#pragma unroll 1
        for (int t = 0; t < C; ++t) {
            float ks = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) ks = fmaf(kn[t * DKP + d], s[d], ks);
            const float vj = t < cn && active ? bf2f(v[(b * T + c0 + t) * v_stride + hv * DV + j]) : 0.0f;
            float u = bs[t] * (vj - ks);
#pragma unroll 1
            for (int r = 0; r < t; ++r) u = fmaf(-Lm[t * C + r], us[r * BV + tid], u);
            us[t * BV + tid] = u;
        }
#pragma unroll 1
        for (int t = 0; t < cn; ++t) {
            float acc = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) acc = fmaf(qn[t * DKP + d], s[d], acc);
#pragma unroll 1
            for (int r = 0; r <= t; ++r) acc = fmaf(QK[t * C + r], us[r * BV + tid], acc);
            /* Gated RMSNorm epilogue, part 1: threads without a value column add 0. */
            const float ov = active ? acc : 0.0f;
            ob[t * BV + tid] = ov;
            const float ss = warp_sum(ov * ov);
            if (tid % 32 == 0) nss[t * NWARP + tid / 32] = ss;
        }
#pragma unroll
        for (int d = 0; d < DK; ++d) s[d] *= egl[d];
#pragma unroll 1
        for (int t = 0; t < C; ++t) {
            const float ut = us[t * BV + tid];
#pragma unroll
            for (int d = 0; d < DK; ++d) s[d] = fmaf(kh[t * DKP + d], ut, s[d]);
        }
        __syncthreads(); /* the next chunk overwrites shared memory */
        /* Gated RMSNorm epilogue, part 2: every thread adds the partials in warp order. */
        if (active) {
            const float wj = norm_w[j];
#pragma unroll 1
            for (int t = 0; t < cn; ++t) {
                float tot = 0.0f;
#pragma unroll
                for (int w = 0; w < NWARP; ++w) tot += nss[t * NWARP + w];
                const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
                const long row = b * T + c0 + t;
                const float zj = bf2f(gate[row * gate_stride + hv * DV + j]);
                o[row * o_stride + hv * DV + j] = f2bf(ob[t * BV + tid] * rn * wj * silu_f(zj));
            }
        }
    }
    if (state_out && active) {
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }
}

// ===== kernels/repeat_groups_41c1eee33bae.cu =====
/*
 * repeat_groups_41c1eee33bae: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   repeat_groups(n=16, repeats=4) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  64*batch*tokens
 * Bytes stored:  256*batch*tokens
 * FLOPs:         0
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(256) repeat_groups_41c1eee33bae(
    const bf16* __restrict__ x0_p, int x0_stride,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    /* repeat_groups(n=16, repeats=4) @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return x0((c / 64) * 16 + c % 16); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 128) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/conv1d_533690aa.cu =====
/*
 * modelc mixer core: conv1d_533690aa (template).
 * Fuses, in order:
 *   causal_conv1d(kernel=4, bias, silu)
 * Bytes loaded:  256*batch*tokens + 1536*batch + 1280
 * Bytes stored:  256*batch*tokens + 1536*batch
 * FLOPs:         1792*batch*tokens
 */
/*
 * conv1d_533690aa: causal depthwise conv1d, K = 4 taps, bias = true, activation = silu.
 *   y[b,t,c] = act(bias[c] + sum_j w[c,j] * x[b, t-(K-1)+j, c]); the last tap j = K-1 multiplies
 *   the current token; inputs before t = 0 come from state_in[b, c, :] (oldest first) or zeros.
 *   state_out[b, c, :] = the last K-1 inputs of (state_in ++ x). f32 accumulation.
 * Layouts: x, y [B, T, C] bf16, row strides x_stride / y_stride (elements); w [C, K] bf16;
 *   bias [C] bf16; states [B, C, K-1] f32 (may alias).
 * Grid (ceil(C/128), ceil(T/16), B), block 128: one thread per channel and 16-token tile.
 * Decode: the same kernel with T = 1.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128) conv1d_533690aa(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ w, const bf16* __restrict__ bias,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int C)
{
    modelc_pdl_enter();
    constexpr int K = 4;
    constexpr int TT = 16;
    const int c = blockIdx.x * 128 + threadIdx.x;
    const int t0 = blockIdx.y * TT;
    const long b = blockIdx.z;
    if (c >= C) return;
    const float* st = state_in ? state_in + (b * C + c) * (K - 1) : nullptr;

    float wr[K];
#pragma unroll
    for (int j = 0; j < K; ++j) wr[j] = bf2f(w[(long)c * K + j]);
    const float bv = bf2f(bias[c]);

    /* win[j] holds the input at t - (K-1) + j for the token t being computed. */
    float win[K];
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {
        const int tt = t0 - (K - 1) + j;
        win[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
    }
    /* The first tile writes the final state, after having read state_in: in-place is safe. */
    if (state_out && blockIdx.y == 0) {
        float fin[K > 1 ? K - 1 : 1];
#pragma unroll
        for (int j = 0; j < K - 1; ++j) {
            const int tt = T - (K - 1) + j;
            fin[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
        }
        float* so = state_out + (b * C + c) * (K - 1);
#pragma unroll
        for (int j = 0; j < K - 1; ++j) so[j] = fin[j];
    }
    for (int i = 0; i < TT; ++i) {
        const int t = t0 + i;
        if (t >= T) break;
        win[K - 1] = bf2f(x[(b * T + t) * x_stride + c]);
        float acc = bv;
#pragma unroll
        for (int j = 0; j < K; ++j) acc = fmaf(wr[j], win[j], acc);
        y[(b * T + t) * y_stride + c] = f2bf(silu_f(acc));
#pragma unroll
        for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }
}

// ===== kernels/selective_scan_c81da83f.cu =====
/*
 * modelc mixer core: selective_scan_c81da83f (template).
 * Fuses, in order:
 *   add
 *   softplus
 *   selective_scan(state_size=16)
 *   silu
 *   mul
 * Bytes loaded:  1088*batch*tokens + 8192*batch + 9216
 * Bytes stored:  256*batch*tokens + 8192*batch
 * FLOPs:         13824*batch*tokens
 */
/*
 * selective_scan_c81da83f: Mamba-1 selective scan, M1 grouped x/B, N = 16, r = Hc/Gx = 4,
 *   delta_bias = true, softplus = true, D skip = true, z gate = true.
 *   Channel c, head h = c / N, group h / r. dt = softplus(delta + delta_bias);
 *   s[n] <- exp(dt * A[c,n]) s[n] + dt u B[group, n];  y = <s, C[h, :]> + D u;  y *= silu(z).
 *   A = -exp(a_log). f32 state and arithmetic.
 * Layouts: u, delta, z, y [B,T,Di]; Bm [B,T,Gx*N]; Cm [B,T,Hc*N] bf16 rows with strides;
 *   a_log [Di,N], D [Di], delta_bias [Di] f32; state_in / state_out [B,Di,N] f32 (may alias).
 * Grid (ceil(Di/128), 1, B), block 128: one thread per channel, tokens in order. Decode: T = 1.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

extern "C" __global__ void __launch_bounds__(128) selective_scan_c81da83f(
    const bf16* __restrict__ u, int u_stride,
    const bf16* __restrict__ delta, int delta_stride,
    const float* __restrict__ a_log,
    const bf16* __restrict__ Bm, int b_stride,
    const bf16* __restrict__ Cm, int c_stride,
    const float* __restrict__ D, const float* __restrict__ delta_bias,
    const bf16* __restrict__ z, int z_stride,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int Di)
{
    constexpr int N = 16;
    constexpr int R = 4;
    constexpr bool HAS_DELTA_BIAS = true;
    constexpr bool SOFTPLUS = true;
    constexpr bool HAS_D = true;
    constexpr bool HAS_Z = true;
    const int c = blockIdx.x * 128 + threadIdx.x;
    const long b = blockIdx.z;
    if (c >= Di) return;
    const int h = c / N;
    const int grp = h / R;
    float A[N], s[N];
    const long sbase = (b * Di + c) * (long)N;
#pragma unroll
    for (int n = 0; n < N; ++n) {
        A[n] = -expf(a_log[(long)c * N + n]);
        s[n] = state_in ? state_in[sbase + n] : 0.0f;
    }
    const float dc = HAS_D ? D[c] : 0.0f;
    const float dbias = HAS_DELTA_BIAS ? delta_bias[c] : 0.0f;
    for (int t = 0; t < T; ++t) {
        const long row = b * T + t;
        const float uu = bf2f(u[row * u_stride + c]);
        float dt = bf2f(delta[row * delta_stride + c]) + dbias;
        if (SOFTPLUS) dt = softplus_f(dt);
        const bf16* bp = Bm + row * b_stride + (long)grp * N;
        const bf16* cp = Cm + row * c_stride + (long)h * N;
        const float du = dt * uu;
        float acc = 0.0f;
#pragma unroll
        for (int n = 0; n < N; ++n) {
            s[n] = fmaf(expf(dt * A[n]), s[n], du * bf2f(bp[n]));
            acc = fmaf(s[n], bf2f(cp[n]), acc);
        }
        if (HAS_D) acc = fmaf(dc, uu, acc);
        if (HAS_Z) acc *= silu_f(bf2f(z[row * z_stride + c]));
        y[row * y_stride + c] = f2bf(acc);
    }
    if (state_out) {
#pragma unroll
        for (int n = 0; n < N; ++n) state_out[sbase + n] = s[n];
    }
}

// ===== kernels/rms_norm_78ae3235cae7.cu =====
/*
 * rms_norm_78ae3235cae7: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   rms_norm(eps=1e-5, group=64) @ head
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  128*batch*tokens + 128
 * Bytes stored:  128*batch*tokens
 * FLOPs:         256*batch*tokens
 */
#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128) rms_norm_78ae3235cae7(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ w1,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
    modelc_pdl_enter();
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __shared__ float red_[4];
    (void)lane; (void)warp; (void)red_;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    /* rms_norm(eps=1e-5, group=64) @ head */
    __shared__ float st0[1];
    {
        constexpr int G = 64, NG = 1;
        const int gi = warp / 4, t = tid - gi * 128;
        float acc = 0.0f;
        {
#pragma unroll
            for (int i = 0; i < 1; ++i) {
                const int j = t + i * 128;
                if (j < G) { const float x = x0(gi * G + j); acc += x * x; }
            }
        }
        acc = warp_sum(acc);
        __syncthreads();
        if (lane == 0) red_[warp] = acc;
        __syncthreads();
        if (tid < NG) {
            acc = 0.0f;
            for (int i = 0; i < 4; ++i) acc += red_[tid * 4 + i];
            st0[tid] = rsqrtf(acc / 64.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v0 = [&](int c) -> float { return x0(c) * st0[c / 64] * bf2f(w1[c % 64]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/attn_decode_b4711d4e.cu =====
/*
 * modelc mixer core: attn_decode_b4711d4e, attn_decode_combine_b4711d4e (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=16, causal=true, window=none, scale=0.25)
 * Bytes loaded:  256*batch*tokens + 128*batch*(past + tokens) + 288*batch*max(min(fdiv(2*sms, 2*batch), cdiv(past + 1, 64)), 1)
 * Bytes stored:  256*batch*tokens + 288*batch*max(min(fdiv(2*sms, 2*batch), cdiv(past + 1, 64)), 1)
 * FLOPs:         256*batch*tokens*(past + tokens)
 */
/*
 * attn_decode_b4711d4e: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = 4, G = 2, Dh = 16, scale = 2.5e-1f, full causal (slot = pos).
 *   Split-K, grouped, tensor cores: block (split, g, b) covers a contiguous share (a multiple of
 *   16 keys) of the visible cached keys for all H/G query heads of KV head g; the last split
 *   also takes the new key (position past_len[b]), read from k/v directly. Cached keys/values
 *   stream through shared memory in 64-key tiles (cp.async, 128-byte L2 fetches, evict-first,
 *   3 stages, rows padded to Dh + 8 channels); warp w scores keys 16w..16w+15 of a tile:
 *   S = Q K^T on mma.sync m16n8k16 (A = the R query heads as rows, zero rows up to 16; B = keys
 *   by ldmatrix), online softmax in f32 (exp2, one max update per 16 keys), O += P V (A = P in
 *   bf16, B = values by ldmatrix.trans). Warps merge in shared memory and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:] (max in natural-log units); attn_decode_combine_b4711d4e merges the
 *   splits in split order and normalises. The split-0 block appends the new k/v row.
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, G, B) x 128 threads, dynamic smem attention_decode_smem;
 *   combine (H, B) x Dh threads. Both entries wait for the previous kernel first (PDL).
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif
#ifndef MODELC_MMA_PRELUDE
#define MODELC_MMA_PRELUDE
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/* 16-byte global -> shared copy; pred = false zero-fills the destination (reads nothing). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
}
/* cp_async16 for long streams read once (the decode's cached keys and values): L2 fetches the
   whole 128-byte line from DRAM at once (L2::128B) and evicts it first (an evict-first policy). */
__device__ __forceinline__ void cp_async16_stream(void* dst, const void* src, bool pred) {
    asm volatile(
        "{\n.reg .b64 pol;\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        "cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2, pol;\n}\n" ::"r"(smem_addr(dst)),
        "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
/* Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i. */
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d += A (16x16, row) * B (16x8, col): bf16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
__device__ __forceinline__ void copy8_to_smem(bf16* dst, const bf16* src, bool pred, bool vec) {
    if (vec) {
        cp_async16(dst, src, pred);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = pred ? src[i] : f2bf(0.0f);
}
__device__ __forceinline__ void copy8_global(bf16* dst, const bf16* src, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = src[i];
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128, 2) attn_decode_b4711d4e(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{
    modelc_pdl_enter();
    constexpr int H = 4;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 16;
    constexpr int W = 0;
    constexpr float SCALE_LOG2 = 3.6067376e-1f;
    constexpr int NW = 4;
    constexpr int STAGES = 3;
    constexpr int KW = 16;               /* keys per warp per tile */
    constexpr int BT = NW * KW;          /* keys per tile */
    constexpr int DP = DH + 8;           /* shared row stride (elements): conflict-free ldmatrix */
    constexpr int CPR = DH / 8;          /* 16-byte chunks per row */
    constexpr int KS = DH / 16;          /* k-steps of Q K^T; also 16-channel blocks of P V */
    constexpr int NT = DH / 8;           /* n-tiles of the output */
    static_assert(R <= 8, "query heads per KV head fill at most 8 of the 16 mma rows");
    static_assert(NW * R * DH + 2 * NW * R <= STAGES * BT * DP, "merge buffers fit the tiles");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* ks = reinterpret_cast<bf16*>(smem_raw);          /* [STAGES][BT][DP] */
    bf16* vs = ks + STAGES * BT * DP;                      /* [STAGES][BT][DP] */

    const int split = blockIdx.x;
    const int g = blockIdx.y;
    const long b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int fr = lane / 4, fc = (lane % 4) * 2;  /* fragment row (query head), column pair */
    const int mi = lane / 8, mr = lane % 8;        /* ldmatrix: matrix, row within it */
    const int qpos = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const bf16* knew = k + b * k_stride + g * DH;
    const bf16* vnew = v + b * v_stride + g * DH;

    if (split == 0) {
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = tid; d < DH; d += blockDim.x) {
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }
    }
    /* q as mma A fragments: row fr = query head g*R + fr (zero past R), columns fc, fc+1 and
       fc+8, fc+9 of each 16-channel k-step; rows 8..15 are zero registers. */
    unsigned qa[KS][2];
#pragma unroll
    for (int s = 0; s < KS; ++s) {
        qa[s][0] = 0u;
        qa[s][1] = 0u;
        if (fr < R) {
            const bf16* qrow = q + b * q_stride + (g * R + fr) * DH + 16 * s + fc;
            qa[s][0] = pack_bf16x2(bf2f(qrow[0]), bf2f(qrow[1]));
            qa[s][1] = pack_bf16x2(bf2f(qrow[8]), bf2f(qrow[9]));
        }
    }

    /* Cached keys [a, ec) of this split: the visible ones [lo, qpos) in shares of a multiple of
       16 keys; the new key goes to the last split. */
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int nc = qpos - lo;
    const int per = max(KW, ((nc + n_splits - 1) / n_splits + KW - 1) / KW * KW);
    const int a = min(lo + split * per, qpos);
    const int ec = min(a + per, qpos);
    const int n_tiles = (ec - a + BT - 1) / BT;

    auto load_tile = [&](int tile) {
        const int st = tile % STAGES;
        const int t0 = a + tile * BT;
#pragma unroll
        for (int c = tid; c < BT * CPR; c += NW * 32) {
            const int r = c / CPR, ch = c % CPR, pos = t0 + r;
            const bool ok = pos < ec;
            const long slot = W > 0 ? (long)pos % s_max : (long)pos;
            const long off = (ok ? slot : 0) * DH + ch * 8;
            cp_async16_stream(ks + (st * BT + r) * DP + ch * 8, kc + off, ok);
            cp_async16_stream(vs + (st * BT + r) * DP + ch * 8, vc + off, ok);
        }
    };

    float m = -INFINITY, l = 0.0f;   /* row fr; l over this thread's columns */
    float o[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) o[j][i] = 0.0f;
#pragma unroll
    for (int t = 0; t < STAGES - 1; ++t) {
        if (t < n_tiles) load_tile(t);
        cp_async_commit();
    }
    for (int tile = 0; tile < n_tiles; ++tile) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (tile + STAGES - 1 < n_tiles) load_tile(tile + STAGES - 1);
        cp_async_commit();
        const int st = tile % STAGES;
        const int k0 = a + tile * BT + warp * KW;
        if (k0 < ec) { /* warp-uniform */
            const bf16* kt = ks + (st * BT + warp * KW) * DP;
            const bf16* vt = vs + (st * BT + warp * KW) * DP;
            float s0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, s1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int s = 0; s < KS; ++s) {
                unsigned kb[4];
                /* matrices: keys 0-7 | 0-7 | 8-15 | 8-15, channels +0 | +8 | +0 | +8 */
                ldmatrix_x4(kb, kt + ((mi / 2) * 8 + mr) * DP + 16 * s + (mi % 2) * 8);
                const unsigned qf[4] = {qa[s][0], 0u, qa[s][1], 0u};
                mma_bf16(s0, qf, kb[0], kb[1]);
                mma_bf16(s1, qf, kb[2], kb[3]);
            }
            /* Row fr's scores of keys k0 + fc, +1 (s0) and k0 + 8 + fc, +1 (s1). */
            float sc[4] = {s0[0] * SCALE_LOG2, s0[1] * SCALE_LOG2, s1[0] * SCALE_LOG2, s1[1] * SCALE_LOG2};
            if (k0 + KW > ec) {
                if (k0 + fc >= ec) sc[0] = -INFINITY;
                if (k0 + fc + 1 >= ec) sc[1] = -INFINITY;
                if (k0 + 8 + fc >= ec) sc[2] = -INFINITY;
                if (k0 + 9 + fc >= ec) sc[3] = -INFINITY;
            }
            float mx = fmaxf(fmaxf(sc[0], sc[1]), fmaxf(sc[2], sc[3]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mn = fmaxf(m, mx); /* finite: key k0 is visible */
            const float corr = exp2f(m - mn);
            float pr[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) pr[i] = exp2f(sc[i] - mn);
            l = l * corr + ((pr[0] + pr[1]) + (pr[2] + pr[3]));
            m = mn;
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                o[j][0] *= corr;
                o[j][1] *= corr;
            }
            const unsigned pa[4] = {pack_bf16x2(pr[0], pr[1]), 0u, pack_bf16x2(pr[2], pr[3]), 0u};
#pragma unroll
            for (int s = 0; s < KS; ++s) {
                unsigned vb[4];
                /* matrices: keys 0-7 | 8-15 | 0-7 | 8-15, channels +0 | +0 | +8 | +8 */
                ldmatrix_x4_trans(vb, vt + ((mi % 2) * 8 + mr) * DP + 16 * s + (mi / 2) * 8);
                mma_bf16(o[2 * s], pa, vb[0], vb[1]);
                mma_bf16(o[2 * s + 1], pa, vb[2], vb[3]);
            }
        }
    }
    cp_async_wait<0>();
    /* The new key, by warp 0 of the last split, from k/v directly (f32). */
    if (split == n_splits - 1 && warp == 0) {
        float acc = 0.0f;
#pragma unroll
        for (int s = 0; s < KS; ++s) {
            const __nv_bfloat162 q0 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][0]);
            const __nv_bfloat162 q1 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][1]);
            acc = fmaf(__low2float(q0), bf2f(knew[16 * s + fc]), acc);
            acc = fmaf(__high2float(q0), bf2f(knew[16 * s + fc + 1]), acc);
            acc = fmaf(__low2float(q1), bf2f(knew[16 * s + 8 + fc]), acc);
            acc = fmaf(__high2float(q1), bf2f(knew[16 * s + 9 + fc]), acc);
        }
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        const float sn = acc * SCALE_LOG2;
        const float mn = fmaxf(m, sn);
        const float corr = exp2f(m - mn);
        const float pn = exp2f(sn - mn);
        m = mn;
        l = l * corr + (fc == 0 ? pn : 0.0f);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            o[j][0] = fmaf(pn, bf2f(vnew[8 * j + fc]), o[j][0] * corr);
            o[j][1] = fmaf(pn, bf2f(vnew[8 * j + fc + 1]), o[j][1] * corr);
        }
    }
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    /* Merge the warps (buffers over the drained tiles). */
    __syncthreads();
    float* red_o = reinterpret_cast<float*>(smem_raw); /* [NW][R][DH] */
    float* red_m = red_o + NW * R * DH;                 /* [NW][R] */
    float* red_l = red_m + NW * R;                      /* [NW][R] */
    if (fr < R) {
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            red_o[(warp * R + fr) * DH + 8 * j + fc] = o[j][0];
            red_o[(warp * R + fr) * DH + 8 * j + fc + 1] = o[j][1];
        }
        if (fc == 0) {
            red_m[warp * R + fr] = m;
            red_l[warp * R + fr] = l;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < R * DH; idx += blockDim.x) {
        const int r = idx / DH, d = idx % DH;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < NW; ++w) M = fmaxf(M, red_m[w * R + r]);
        float acc = 0.0f, L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w * R + r] != -INFINITY) {
                const float c = exp2f(red_m[w * R + r] - M);
                acc += red_o[(w * R + r) * DH + d] * c;
                L += red_l[w * R + r] * c;
            }
        float* dst = partial + ((b * H + g * R + r) * (long)n_splits + split) * (DH + 2);
        dst[2 + d] = acc;
        if (d == 0) {
            dst[0] = M == -INFINITY ? M : M * 0.6931471805599453f;
            dst[1] = L;
        }
    }
}
extern "C" __global__ void attn_decode_combine_b4711d4e(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{
    modelc_pdl_enter();
    constexpr int H = 4;
    constexpr int DH = 16;
    const int h = blockIdx.x;
    const long b = blockIdx.y;
    const float* src = partial + (b * H + h) * (long)n_splits * (DH + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_splits; ++s) M = fmaxf(M, src[s * (DH + 2)]);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {
        float L = 0.0f, acc = 0.0f;
        for (int s = 0; s < n_splits; ++s) {
            const float ms = src[s * (DH + 2)];
            if (ms == -INFINITY) continue;
            const float c = expf(ms - M);
            L += src[s * (DH + 2) + 1] * c;
            acc += src[s * (DH + 2) + 2 + d] * c;
        }
        out[b * out_stride + h * DH + d] = f2bf(acc / L);
    }
}

// ===== kernels/attn_decode_3cc384f4.cu =====
/*
 * modelc mixer core: attn_decode_3cc384f4, attn_decode_combine_3cc384f4 (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=16, causal=true, window=8, scale=0.25)
 * Bytes loaded:  256*batch*tokens + 128*batch*min(past + tokens, 8) + 288*batch*max(min(fdiv(2*sms, 2*batch), cdiv(min(past + 1, 8), 64)), 1)
 * Bytes stored:  256*batch*tokens + 288*batch*max(min(fdiv(2*sms, 2*batch), cdiv(min(past + 1, 8), 64)), 1)
 * FLOPs:         256*batch*tokens*min(past + tokens, 8)
 */
/*
 * attn_decode_3cc384f4: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = 4, G = 2, Dh = 16, scale = 2.5e-1f, sliding window W = 8 (ring cache, slot = pos mod S_max).
 *   Split-K, grouped, tensor cores: block (split, g, b) covers a contiguous share (a multiple of
 *   16 keys) of the visible cached keys for all H/G query heads of KV head g; the last split
 *   also takes the new key (position past_len[b]), read from k/v directly. Cached keys/values
 *   stream through shared memory in 64-key tiles (cp.async, 128-byte L2 fetches, evict-first,
 *   3 stages, rows padded to Dh + 8 channels); warp w scores keys 16w..16w+15 of a tile:
 *   S = Q K^T on mma.sync m16n8k16 (A = the R query heads as rows, zero rows up to 16; B = keys
 *   by ldmatrix), online softmax in f32 (exp2, one max update per 16 keys), O += P V (A = P in
 *   bf16, B = values by ldmatrix.trans). Warps merge in shared memory and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:] (max in natural-log units); attn_decode_combine_3cc384f4 merges the
 *   splits in split order and normalises. The split-0 block appends the new k/v row.
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, G, B) x 128 threads, dynamic smem attention_decode_smem;
 *   combine (H, B) x Dh threads. Both entries wait for the previous kernel first (PDL).
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif
#ifndef MODELC_MMA_PRELUDE
#define MODELC_MMA_PRELUDE
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/* 16-byte global -> shared copy; pred = false zero-fills the destination (reads nothing). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
}
/* cp_async16 for long streams read once (the decode's cached keys and values): L2 fetches the
   whole 128-byte line from DRAM at once (L2::128B) and evicts it first (an evict-first policy). */
__device__ __forceinline__ void cp_async16_stream(void* dst, const void* src, bool pred) {
    asm volatile(
        "{\n.reg .b64 pol;\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        "cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2, pol;\n}\n" ::"r"(smem_addr(dst)),
        "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
/* Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i. */
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d += A (16x16, row) * B (16x8, col): bf16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
__device__ __forceinline__ void copy8_to_smem(bf16* dst, const bf16* src, bool pred, bool vec) {
    if (vec) {
        cp_async16(dst, src, pred);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = pred ? src[i] : f2bf(0.0f);
}
__device__ __forceinline__ void copy8_global(bf16* dst, const bf16* src, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = src[i];
}
#endif
#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

extern "C" __global__ void __launch_bounds__(128, 2) attn_decode_3cc384f4(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{
    modelc_pdl_enter();
    constexpr int H = 4;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 16;
    constexpr int W = 8;
    constexpr float SCALE_LOG2 = 3.6067376e-1f;
    constexpr int NW = 4;
    constexpr int STAGES = 3;
    constexpr int KW = 16;               /* keys per warp per tile */
    constexpr int BT = NW * KW;          /* keys per tile */
    constexpr int DP = DH + 8;           /* shared row stride (elements): conflict-free ldmatrix */
    constexpr int CPR = DH / 8;          /* 16-byte chunks per row */
    constexpr int KS = DH / 16;          /* k-steps of Q K^T; also 16-channel blocks of P V */
    constexpr int NT = DH / 8;           /* n-tiles of the output */
    static_assert(R <= 8, "query heads per KV head fill at most 8 of the 16 mma rows");
    static_assert(NW * R * DH + 2 * NW * R <= STAGES * BT * DP, "merge buffers fit the tiles");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* ks = reinterpret_cast<bf16*>(smem_raw);          /* [STAGES][BT][DP] */
    bf16* vs = ks + STAGES * BT * DP;                      /* [STAGES][BT][DP] */

    const int split = blockIdx.x;
    const int g = blockIdx.y;
    const long b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int fr = lane / 4, fc = (lane % 4) * 2;  /* fragment row (query head), column pair */
    const int mi = lane / 8, mr = lane % 8;        /* ldmatrix: matrix, row within it */
    const int qpos = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const bf16* knew = k + b * k_stride + g * DH;
    const bf16* vnew = v + b * v_stride + g * DH;

    if (split == 0) {
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = tid; d < DH; d += blockDim.x) {
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }
    }
    /* q as mma A fragments: row fr = query head g*R + fr (zero past R), columns fc, fc+1 and
       fc+8, fc+9 of each 16-channel k-step; rows 8..15 are zero registers. */
    unsigned qa[KS][2];
#pragma unroll
    for (int s = 0; s < KS; ++s) {
        qa[s][0] = 0u;
        qa[s][1] = 0u;
        if (fr < R) {
            const bf16* qrow = q + b * q_stride + (g * R + fr) * DH + 16 * s + fc;
            qa[s][0] = pack_bf16x2(bf2f(qrow[0]), bf2f(qrow[1]));
            qa[s][1] = pack_bf16x2(bf2f(qrow[8]), bf2f(qrow[9]));
        }
    }

    /* Cached keys [a, ec) of this split: the visible ones [lo, qpos) in shares of a multiple of
       16 keys; the new key goes to the last split. */
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int nc = qpos - lo;
    const int per = max(KW, ((nc + n_splits - 1) / n_splits + KW - 1) / KW * KW);
    const int a = min(lo + split * per, qpos);
    const int ec = min(a + per, qpos);
    const int n_tiles = (ec - a + BT - 1) / BT;

    auto load_tile = [&](int tile) {
        const int st = tile % STAGES;
        const int t0 = a + tile * BT;
#pragma unroll
        for (int c = tid; c < BT * CPR; c += NW * 32) {
            const int r = c / CPR, ch = c % CPR, pos = t0 + r;
            const bool ok = pos < ec;
            const long slot = W > 0 ? (long)pos % s_max : (long)pos;
            const long off = (ok ? slot : 0) * DH + ch * 8;
            cp_async16_stream(ks + (st * BT + r) * DP + ch * 8, kc + off, ok);
            cp_async16_stream(vs + (st * BT + r) * DP + ch * 8, vc + off, ok);
        }
    };

    float m = -INFINITY, l = 0.0f;   /* row fr; l over this thread's columns */
    float o[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) o[j][i] = 0.0f;
#pragma unroll
    for (int t = 0; t < STAGES - 1; ++t) {
        if (t < n_tiles) load_tile(t);
        cp_async_commit();
    }
    for (int tile = 0; tile < n_tiles; ++tile) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (tile + STAGES - 1 < n_tiles) load_tile(tile + STAGES - 1);
        cp_async_commit();
        const int st = tile % STAGES;
        const int k0 = a + tile * BT + warp * KW;
        if (k0 < ec) { /* warp-uniform */
            const bf16* kt = ks + (st * BT + warp * KW) * DP;
            const bf16* vt = vs + (st * BT + warp * KW) * DP;
            float s0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, s1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int s = 0; s < KS; ++s) {
                unsigned kb[4];
                /* matrices: keys 0-7 | 0-7 | 8-15 | 8-15, channels +0 | +8 | +0 | +8 */
                ldmatrix_x4(kb, kt + ((mi / 2) * 8 + mr) * DP + 16 * s + (mi % 2) * 8);
                const unsigned qf[4] = {qa[s][0], 0u, qa[s][1], 0u};
                mma_bf16(s0, qf, kb[0], kb[1]);
                mma_bf16(s1, qf, kb[2], kb[3]);
            }
            /* Row fr's scores of keys k0 + fc, +1 (s0) and k0 + 8 + fc, +1 (s1). */
            float sc[4] = {s0[0] * SCALE_LOG2, s0[1] * SCALE_LOG2, s1[0] * SCALE_LOG2, s1[1] * SCALE_LOG2};
            if (k0 + KW > ec) {
                if (k0 + fc >= ec) sc[0] = -INFINITY;
                if (k0 + fc + 1 >= ec) sc[1] = -INFINITY;
                if (k0 + 8 + fc >= ec) sc[2] = -INFINITY;
                if (k0 + 9 + fc >= ec) sc[3] = -INFINITY;
            }
            float mx = fmaxf(fmaxf(sc[0], sc[1]), fmaxf(sc[2], sc[3]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mn = fmaxf(m, mx); /* finite: key k0 is visible */
            const float corr = exp2f(m - mn);
            float pr[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) pr[i] = exp2f(sc[i] - mn);
            l = l * corr + ((pr[0] + pr[1]) + (pr[2] + pr[3]));
            m = mn;
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                o[j][0] *= corr;
                o[j][1] *= corr;
            }
            const unsigned pa[4] = {pack_bf16x2(pr[0], pr[1]), 0u, pack_bf16x2(pr[2], pr[3]), 0u};
#pragma unroll
            for (int s = 0; s < KS; ++s) {
                unsigned vb[4];
                /* matrices: keys 0-7 | 8-15 | 0-7 | 8-15, channels +0 | +0 | +8 | +8 */
                ldmatrix_x4_trans(vb, vt + ((mi % 2) * 8 + mr) * DP + 16 * s + (mi / 2) * 8);
                mma_bf16(o[2 * s], pa, vb[0], vb[1]);
                mma_bf16(o[2 * s + 1], pa, vb[2], vb[3]);
            }
        }
    }
    cp_async_wait<0>();
    /* The new key, by warp 0 of the last split, from k/v directly (f32). */
    if (split == n_splits - 1 && warp == 0) {
        float acc = 0.0f;
#pragma unroll
        for (int s = 0; s < KS; ++s) {
            const __nv_bfloat162 q0 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][0]);
            const __nv_bfloat162 q1 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][1]);
            acc = fmaf(__low2float(q0), bf2f(knew[16 * s + fc]), acc);
            acc = fmaf(__high2float(q0), bf2f(knew[16 * s + fc + 1]), acc);
            acc = fmaf(__low2float(q1), bf2f(knew[16 * s + 8 + fc]), acc);
            acc = fmaf(__high2float(q1), bf2f(knew[16 * s + 9 + fc]), acc);
        }
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        const float sn = acc * SCALE_LOG2;
        const float mn = fmaxf(m, sn);
        const float corr = exp2f(m - mn);
        const float pn = exp2f(sn - mn);
        m = mn;
        l = l * corr + (fc == 0 ? pn : 0.0f);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            o[j][0] = fmaf(pn, bf2f(vnew[8 * j + fc]), o[j][0] * corr);
            o[j][1] = fmaf(pn, bf2f(vnew[8 * j + fc + 1]), o[j][1] * corr);
        }
    }
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    /* Merge the warps (buffers over the drained tiles). */
    __syncthreads();
    float* red_o = reinterpret_cast<float*>(smem_raw); /* [NW][R][DH] */
    float* red_m = red_o + NW * R * DH;                 /* [NW][R] */
    float* red_l = red_m + NW * R;                      /* [NW][R] */
    if (fr < R) {
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            red_o[(warp * R + fr) * DH + 8 * j + fc] = o[j][0];
            red_o[(warp * R + fr) * DH + 8 * j + fc + 1] = o[j][1];
        }
        if (fc == 0) {
            red_m[warp * R + fr] = m;
            red_l[warp * R + fr] = l;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < R * DH; idx += blockDim.x) {
        const int r = idx / DH, d = idx % DH;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < NW; ++w) M = fmaxf(M, red_m[w * R + r]);
        float acc = 0.0f, L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w * R + r] != -INFINITY) {
                const float c = exp2f(red_m[w * R + r] - M);
                acc += red_o[(w * R + r) * DH + d] * c;
                L += red_l[w * R + r] * c;
            }
        float* dst = partial + ((b * H + g * R + r) * (long)n_splits + split) * (DH + 2);
        dst[2 + d] = acc;
        if (d == 0) {
            dst[0] = M == -INFINITY ? M : M * 0.6931471805599453f;
            dst[1] = L;
        }
    }
}
extern "C" __global__ void attn_decode_combine_3cc384f4(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{
    modelc_pdl_enter();
    constexpr int H = 4;
    constexpr int DH = 16;
    const int h = blockIdx.x;
    const long b = blockIdx.y;
    const float* src = partial + (b * H + h) * (long)n_splits * (DH + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_splits; ++s) M = fmaxf(M, src[s * (DH + 2)]);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {
        float L = 0.0f, acc = 0.0f;
        for (int s = 0; s < n_splits; ++s) {
            const float ms = src[s * (DH + 2)];
            if (ms == -INFINITY) continue;
            const float c = expf(ms - M);
            L += src[s * (DH + 2) + 1] * c;
            acc += src[s * (DH + 2) + 2 + d] * c;
        }
        out[b * out_stride + h * DH + d] = f2bf(acc / L);
    }
}

// ===== kernels/delta_rule_recurrent_dc206da6.cu =====
/*
 * modelc mixer core: delta_rule_recurrent_dc206da6 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=16)
 *   scale(0.25)
 *   l2_norm(eps=1e-6, group=16)
 *   delta_rule(key_heads=2, value_heads=4, key_dim=16, value_dim=16, decay=scalar)
 *   gated_rms_norm(eps=1e-5, group=16, act=silu)
 * Bytes loaded:  416*batch*tokens + 4096*batch + 64
 * Bytes stored:  128*batch*tokens + 4096*batch
 * FLOPs:         8832*batch*tokens
 */
/*
 * delta_rule_recurrent_dc206da6: gated delta rule, one token at a time.
 *   Hk = 2, Hv = 4, Dk = 16, Dv = 16, gate = scalar per head (GDN), qk l2norm = true, scale = 2.5e-1f.
 *   Gated RMSNorm epilogue: o <- o * rsqrt(mean_head(o^2) + 1e-5f) * norm_w * silu_f(gate)
 *   Per token: S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
 * Layouts: q, k [B,T,Hk*Dk], v [B,T,Hv*Dv], o [B,T,Hv*Dv] bf16 rows with strides (elements);
 *   g [B,T,Hv] (scalar) or [B,T,Hv*Dk] (per channel) f32 dense log-decays; beta [B,T,Hv] f32 dense;
 *   state_in / state_out [B,Hv,Dk,Dv] f32 (state_in null = zeros; they may alias).
 *   gate [B,T,Hv*Dv] bf16 rows with stride gate_stride; norm_w [Dv] f32 (the norm's weight).
 * Grid (ceil(Dv/BV), Hv, B), block BV = 32: thread j keeps column j of S (Dk floats) in
 *   registers; threads with j >= Dv (VTAIL) only help with loads and the norm reductions.
 *   Epilogue: one block per head (BV >= Dv); the per-warp sums of o^2 go to nred before the
 *   token's last barrier and are read after it (the next token rewrites nred only after its
 *   first barrier), so the epilogue adds no barrier.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

extern "C" __global__ void __launch_bounds__(32) delta_rule_recurrent_dc206da6(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 2;
    constexpr int HV = 4;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 16;
    constexpr int DV = 16;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = false;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 2.5e-1f;
    (void)DV; (void)NWARP;
    constexpr float NORM_EPS = 1e-5f;
    __shared__ float qs[DK], ks[DK], as_[DK];
    __shared__ float red[2][NWARP];
    __shared__ float nred[NWARP]; /* per-warp sums of o^2 (epilogue) */
    const int tid = threadIdx.x;
    const int j = blockIdx.x * BV + tid;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int hk = hv / RATIO;
    const bool active = !VTAIL || j < DV; /* owns a value column */
    const long sbase = (b * HV + hv) * (long)DK * DV + j;

    float s[DK];
#pragma unroll
    for (int d = 0; d < DK; ++d) s[d] = state_in && active ? state_in[sbase + (long)d * DV] : 0.0f;

    for (int t = 0; t < T; ++t) {
        const long row = b * T + t;
        float sq = 0.0f, sk = 0.0f;
        for (int d = tid; d < DK; d += BV) {
            const float qv = bf2f(q[row * q_stride + hk * DK + d]);
            const float kv = bf2f(k[row * k_stride + hk * DK + d]);
            qs[d] = qv;
            ks[d] = kv;
            sq += qv * qv;
            sk += kv * kv;
            if (PER_CHANNEL) as_[d] = expf(g[row * HV * DK + hv * DK + d]);
        }
        float qscale = SCALE, kscale = 1.0f;
        if (L2NORM) {
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (tid % 32 == 0) { red[0][tid / 32] = sq; red[1][tid / 32] = sk; }
        }
        __syncthreads();
        if (L2NORM) {
            float tq = 0.0f, tk = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) { tq += red[0][w]; tk += red[1][w]; }
            qscale *= rsqrtf(tq + 1e-6f);
            kscale = rsqrtf(tk + 1e-6f);
        }
        const float a = PER_CHANNEL ? 1.0f : expf(g[row * HV + hv]);
        const float bt = beta[row * HV + hv];
        const float vj = active ? bf2f(v[row * v_stride + hv * DV + j]) : 0.0f;
        float kv = 0.0f;
#pragma unroll
        for (int d = 0; d < DK; ++d) {
            s[d] *= PER_CHANNEL ? as_[d] : a;
            kv = fmaf(s[d], ks[d], kv);
        }
        const float u = bt * (vj - kv * kscale) * kscale;
        /* A barrier makes the compiler reload ks/qs from shared memory below instead of keeping
         * Dk of them live next to the Dk state registers (which spilled at Dk = 128). */
        __syncthreads();
        float oj = 0.0f;
#pragma unroll
        for (int d = 0; d < DK; ++d) {
            s[d] = fmaf(ks[d], u, s[d]);
            oj = fmaf(s[d], qs[d], oj);
        }
        /* Gated RMSNorm epilogue, part 1: threads without a value column add 0. */
        const float ov = active ? oj * qscale : 0.0f;
        const float zj = active ? bf2f(gate[row * gate_stride + hv * DV + j]) : 0.0f;
        const float wj = active ? norm_w[j] : 0.0f;
        {
            const float ss = warp_sum(ov * ov);
            if (tid % 32 == 0) nred[tid / 32] = ss;
        }
        __syncthreads(); /* qs/ks/as_/red are rewritten by the next token */
        {
            /* Gated RMSNorm epilogue, part 2: every thread adds the partials in warp order. */
            float tot = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) tot += nred[w];
            const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
            if (active) o[row * o_stride + hv * DV + j] = f2bf(ov * rn * wj * silu_f(zj));
        }
    }
    if (state_out && active) {
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }
}

// ===== kernels/kda_decode_step_3a4d887c.cu =====
/*
 * modelc mixer core: kda_decode_step_3a4d887c (template).
 * Fuses, in order:
 *   linear
 *   decay_gate(group=16)
 *   sigmoid
 *   linear
 *   causal_conv1d(kernel=4, silu)
 *   l2_norm(eps=1e-6, group=16)
 *   scale(0.25)
 *   l2_norm(eps=1e-6, group=16)
 *   delta_rule(key_heads=4, value_heads=4, key_dim=16, value_dim=16, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=16, act=silu)
 * Bytes loaded:  456*batch*tokens + 6400*batch + 5968
 * Bytes stored:  128*batch*tokens + 6400*batch
 * FLOPs:         14464*batch*tokens
 */
/*
 * kda_decode_step_3a4d887c: one KDA layer's decode step after its input projection.
 *   H = 4, Dk = 16, Dv = 16, conv K = 4 (bias = false, SiLU), decay rank 16, gate rank 16,
 *   qk l2norm = true, scale = 2.5e-1f.
 *   q, k, v = conv(x) (channels 0.., 64.., 128.. of the conv's 192); conv state updated.
 *   g = -exp(a_log[h]) * softplus(bf16(fa . fb[h*Dk + d]) + dt_bias[h*Dk + d]); beta = sigmoid(braw[h]).
 *   S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
 *   o <- o * rsqrt(mean_head(o^2) + 1e-5f) * norm_w * silu_f(zj), z = bf16(ga . gb[h*Dv + j]).
 * Grid (H, B), block 128: thread tid serves value column / key channel tid/4 (lane tid%4 keeps
 *   state rows 4i + tid%4) and conv channel tid. States and weights load before the PDL wait.
 */
#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif

#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif

#ifndef MODELC_KDA_STEP_HELPERS
#define MODELC_KDA_STEP_HELPERS
/* Rounds to bf16 and back: the unfused kernels store these values as bf16. */
__device__ __forceinline__ float bf16_round(float x) { return bf2f(f2bf(x)); }
/* Sum over the four lanes of one column (lanes 4j..4j+3). */
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}
/* Rows of the low-rank weights are read in chunks (16 bytes when the rank is a multiple of
 * 32, else 4), lane qd of a column taking chunks qd, qd + 4, ...: the four lanes of a row read
 * adjacent chunks together, so a warp's load uses whole sectors. */
__device__ __forceinline__ void unpack(const uint4 v, float (&f)[8]) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) { f[2 * i] = __uint_as_float(u[i] << 16); f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u); }
}
__device__ __forceinline__ void unpack(const unsigned v, float (&f)[2]) {
    f[0] = __uint_as_float(v << 16);
    f[1] = __uint_as_float(v & 0xffff0000u);
}
template <typename Chunk, int N>
__device__ __forceinline__ void load_chunks(Chunk (&w)[N], const bf16* row, int qd, bool on) {
    const Chunk* p = reinterpret_cast<const Chunk*>(row);
#pragma unroll
    for (int c = 0; c < N; ++c) w[c] = on ? p[c * 4 + qd] : Chunk{};
}
/* This lane's part of a row times the f32 vector xs (in shared memory). */
template <int E, typename Chunk, int N>
__device__ __forceinline__ float chunk_dot(const Chunk (&w)[N], const float* xs, int qd) {
    float acc = 0.0f;
#pragma unroll
    for (int c = 0; c < N; ++c) {
        float f[E];
        unpack(w[c], f);
        const float* x = xs + (c * 4 + qd) * E;
#pragma unroll
        for (int e = 0; e < E; ++e) acc = fmaf(f[e], x[e], acc);
    }
    return acc;
}
#endif

extern "C" __global__ void __launch_bounds__(128) kda_decode_step_3a4d887c(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ conv_w, const bf16* __restrict__ conv_b, float* conv_state,
    const bf16* __restrict__ fa, int fa_stride, const bf16* __restrict__ fb,
    const float* __restrict__ a_log, const float* __restrict__ dt_bias,
    const bf16* __restrict__ braw, int braw_stride,
    const bf16* __restrict__ ga, int ga_stride, const bf16* __restrict__ gb,
    const float* __restrict__ norm_w, float* state,
    bf16* __restrict__ o, int o_stride, int T)
{
    constexpr int H = 4, DK = 16, DV = 16, NT = 128, NWARP = NT / 32;
    constexpr int K = 4, C = 192, Q0 = 0, K0 = 64, V0 = 128;
    constexpr int RF = 16, RG = 16;
    constexpr int EF = 2, EG = 2;                 /* bf16 per chunk of f_b's, g_b's rows */
    constexpr int NF = RF / (4 * EF), NG = RG / (4 * EG); /* chunks per lane */
    typedef unsigned ChunkF;
    typedef unsigned ChunkG;
    constexpr int KPL = DK / 4; /* state rows per lane */
    constexpr bool L2NORM = true, CONV_BIAS = false;
    constexpr float SCALE = 2.5e-1f, NORM_EPS = 1e-5f;
    __shared__ float qs[DK], ks[DK], vs[DV], decay[DK], zs[DV];
    __shared__ float fas[RF], gas[RG];
    __shared__ float red[3][NWARP];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int j = tid >> 2, qd = tid & 3;
    const int h = blockIdx.x;
    const long b = blockIdx.y;
    const bool column = j < DV;  /* owns value column j (with its three neighbours) */
    const bool channel = j < DK; /* computes the decay of key channel j */

    /* --- Before the wait: states and weights (nothing earlier in this step writes them). --- */
    float s[KPL];
    float* sp = state + ((b * H + h) * (long)DK) * DV + j;
#pragma unroll
    for (int i = 0; i < KPL; ++i) s[i] = column ? sp[(long)(4 * i + qd) * DV] : 0.0f;

    /* Conv channel of this thread: q, then k, then v channels of head h. */
    const int cidx = tid < DK ? Q0 + h * DK + tid
                   : tid < 2 * DK ? K0 + h * DK + (tid - DK)
                   : tid < 2 * DK + DV ? V0 + h * DV + (tid - 2 * DK) : -1;
    float cw[K], win[K];
    float cbias = 0.0f;
    float* cst = cidx >= 0 ? conv_state + (b * C + cidx) * (K - 1) : nullptr;
    if (cidx >= 0) {
#pragma unroll
        for (int i = 0; i < K; ++i) cw[i] = bf2f(conv_w[(long)cidx * K + i]);
#pragma unroll
        for (int i = 0; i < K - 1; ++i) win[i] = cst[i];
        if (CONV_BIAS) cbias = bf2f(conv_b[cidx]);
    }

    /* This lane's part of f_b's row for key channel j, in registers (the decay is on the
     * critical path); its part of g_b's row for value column j only goes to L2 (the gate is
     * needed last, and registers are full: 128 at 512 threads). */
    ChunkF fbw[NF];
    load_chunks(fbw, fb + (long)(h * DK + j) * RF, qd, channel);
    const bf16* gbrow = gb + (long)(h * DV + j) * RG;
    if (column) {
#pragma unroll
        for (int c = 0; c < NG; ++c)
            asm volatile("prefetch.global.L2 [%0];" :: "l"(reinterpret_cast<const ChunkG*>(gbrow) + c * 4 + qd));
    }
    const float neg_a = -expf(a_log[h]);
    const float dtb = channel ? dt_bias[h * DK + j] : 0.0f;
    const float nw = column ? norm_w[j] : 0.0f;

    modelc_pdl_enter(); /* the projection's rows are ready from here on */

    for (int t = 0; t < T; ++t) {
        const long row = b * T + t;
        if (tid < RF) fas[tid] = bf2f(fa[row * fa_stride + tid]);
        if (tid < RG) gas[tid] = bf2f(ga[row * ga_stride + tid]);
        /* Conv of this thread's channel; the squares of q and k for their norms. */
        float sq = 0.0f, sk = 0.0f;
        if (cidx >= 0) {
            win[K - 1] = bf2f(x[row * x_stride + cidx]);
            float acc = cbias;
#pragma unroll
            for (int i = 0; i < K; ++i) acc = fmaf(cw[i], win[i], acc);
#pragma unroll
            for (int i = 0; i < K - 1; ++i) win[i] = win[i + 1];
            if (t == T - 1) {
#pragma unroll
                for (int i = 0; i < K - 1; ++i) cst[i] = win[i];
            }
            const float y = bf16_round(silu_f(acc));
            if (tid < DK) { qs[tid] = y; sq = y * y; }
            else if (tid < 2 * DK) { ks[tid - DK] = y; sk = y * y; }
            else vs[tid - 2 * DK] = y;
        }
        sq = warp_sum(sq);
        sk = warp_sum(sk);
        if (lane == 0) { red[0][warp] = sq; red[1][warp] = sk; }
        __syncthreads(); /* qs, ks, vs, fas, gas, red[0..1] */

        /* Decay of key channel j and gate of value column j: a quarter of the rank per lane. */
        const float f = quad_sum(chunk_dot<EF>(fbw, fas, qd));
        ChunkG gbw[NG];
        load_chunks(gbw, gbrow, qd, column);
        const float z = quad_sum(chunk_dot<EG>(gbw, gas, qd));
        if (qd == 0 && channel) decay[j] = expf(neg_a * softplus_f(bf16_round(f) + dtb));
        if (qd == 0 && column) zs[j] = bf16_round(z);
        float qscale = SCALE, kscale = 1.0f;
        if (L2NORM) {
            float tq = 0.0f, tk = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) { tq += red[0][w]; tk += red[1][w]; }
            qscale *= rsqrtf(tq + 1e-6f);
            kscale = rsqrtf(tk + 1e-6f);
        }
        const float beta = 1.0f / (1.0f + expf(-bf2f(braw[row * braw_stride + h])));
        __syncthreads(); /* decay, zs */

        /* The recurrence on this lane's rows of column j. */
        float kv = 0.0f;
#pragma unroll
        for (int i = 0; i < KPL; ++i) {
            const int d = 4 * i + qd;
            s[i] *= decay[d];
            kv = fmaf(s[i], ks[d], kv);
        }
        kv = quad_sum(kv);
        const float u = column ? beta * (vs[j] - kv * kscale) * kscale : 0.0f;
        float oj = 0.0f;
#pragma unroll
        for (int i = 0; i < KPL; ++i) {
            const int d = 4 * i + qd;
            s[i] = fmaf(ks[d], u, s[i]);
            oj = fmaf(s[i], qs[d], oj);
        }
        const float ov = quad_sum(oj) * qscale;
        if (t == T - 1 && column) {
#pragma unroll
            for (int i = 0; i < KPL; ++i) sp[(long)(4 * i + qd) * DV] = s[i];
        }
        /* Gated RMSNorm over the head: lane qd = 0 of each column adds its square. */
        const float ss = warp_sum(qd == 0 && column ? ov * ov : 0.0f);
        if (lane == 0) red[2][warp] = ss;
        __syncthreads(); /* red[2] */
        float tot = 0.0f;
#pragma unroll
        for (int w = 0; w < NWARP; ++w) tot += red[2][w];
        const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
        if (qd == 0 && column) {
            const float zj = zs[j];
            o[row * o_stride + h * DV + j] = f2bf(ov * rn * nw * silu_f(zj));
        }
        __syncthreads(); /* every shared array is rewritten by the next token */
    }

}

