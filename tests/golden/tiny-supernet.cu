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

// ===== kernels/rope_6425a55b79c7.cu =====
/*
 * rope_6425a55b79c7: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   rope(head_dim=16, theta=10000) @ layers.*.mixer.mixers.attention
 *   rope(head_dim=16, theta=10000) @ layers.*.mixer.mixers.attention
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
extern "C" __global__ void __launch_bounds__(256) rope_6425a55b79c7(
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
    /* rope(head_dim=16, theta=10000) @ layers.*.mixer.mixers.attention */
    const double pos0 = (double)s1[row];
    auto v0 = [&](int c) -> float { return [&]() { const int i = c % 16; const int j = i % 8; float s, co; rope_sincos(pos0 * rope_inv_freq_0[j], &s, &co); return i < 8 ? x0(c) * co - x0(c + 8) * s : x0(c) * co + x0(c - 8) * s; }(); };
    /* rope(head_dim=16, theta=10000) @ layers.*.mixer.mixers.attention */
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

