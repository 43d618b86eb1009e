// ===== kernels/embedding_rms_norm_24cf9ee07efc.cu =====
/*
 * embedding_rms_norm_24cf9ee07efc: fused row-wise kernel, one block of 128 threads per row (token).
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

extern "C" __global__ void __launch_bounds__(128) embedding_rms_norm_24cf9ee07efc(
    const int* __restrict__ s0,
    const bf16* __restrict__ w1,
    const bf16* __restrict__ w2,
    bf16* __restrict__ o0, int o0_stride,
    bf16* __restrict__ o1, int o1_stride,
    int rows)
{
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __shared__ float red_[4];
    (void)lane; (void)warp; (void)red_;
    /* embedding @ model */
    const int id0 = s0[row];
    auto v0 = [&](int c) -> float { return (id0 >= 0 && id0 < 96) ? bf2f(w1[(long)id0 * 64 + c]) : __int_as_float(0x7fc00000); };
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

// ===== kernels/rope_467f3a6c044b.cu =====
/*
 * rope_467f3a6c044b: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   rope(head_dim=32, theta=10000) @ layers.*.mixer
 *   rope(head_dim=32, theta=10000) @ layers.*.mixer
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

__constant__ double rope_inv_freq_0[16] = {1e0, 5.623413251903491e-1, 3.1622776601683794e-1, 1.778279410038923e-1, 1e-1, 5.623413251903491e-2, 3.162277660168379e-2, 1.778279410038923e-2, 1e-2, 5.623413251903491e-3, 3.1622776601683794e-3, 1.7782794100389228e-3, 1e-3, 5.623413251903491e-4, 3.1622776601683794e-4, 1.7782794100389227e-4};
__constant__ double rope_inv_freq_1[16] = {1e0, 5.623413251903491e-1, 3.1622776601683794e-1, 1.778279410038923e-1, 1e-1, 5.623413251903491e-2, 3.162277660168379e-2, 1.778279410038923e-2, 1e-2, 5.623413251903491e-3, 3.1622776601683794e-3, 1.7782794100389228e-3, 1e-3, 5.623413251903491e-4, 3.1622776601683794e-4, 1.7782794100389227e-4};
extern "C" __global__ void __launch_bounds__(256) rope_467f3a6c044b(
    const bf16* __restrict__ x0_p, int x0_stride,
    const int* __restrict__ s1,
    const bf16* __restrict__ x2_p, int x2_stride,
    bf16* __restrict__ o0, int o0_stride,
    bf16* __restrict__ o1, int o1_stride,
    int rows)
{
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x2 = [&](int c) -> float { return ld(x2_p, row * x2_stride + c); };
    /* rope(head_dim=32, theta=10000) @ layers.*.mixer */
    const double pos0 = (double)s1[row];
    auto v0 = [&](int c) -> float { return [&]() { const int i = c % 32; const int j = i % 16; double s, co; sincos(pos0 * rope_inv_freq_0[j], &s, &co); return i < 16 ? x0(c) * (float)co - x0(c + 16) * (float)s : x0(c) * (float)co + x0(c - 16) * (float)s; }(); };
    /* rope(head_dim=32, theta=10000) @ layers.*.mixer */
    const double pos1 = (double)s1[row];
    auto v1 = [&](int c) -> float { return [&]() { const int i = c % 32; const int j = i % 16; double s, co; sincos(pos1 * rope_inv_freq_1[j], &s, &co); return i < 16 ? x2(c) * (float)co - x2(c + 16) * (float)s : x2(c) * (float)co + x2(c - 16) * (float)s; }(); };
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

// ===== kernels/attn_prefill_cdfc4895.cu =====
/*
 * modelc mixer core: attn_prefill_cdfc4895 (template).
 * Fuses, in order:
 *   attention(heads=2, kv_heads=1, head_dim=32, causal=true, window=none, scale=0.17677669529663687)
 * Bytes loaded:  256*batch*tokens + 128*batch*(past + tokens)
 * Bytes stored:  256*batch*tokens
 * FLOPs:         256*batch*tokens*(past + tokens)
 */
/*
 * attn_prefill_cdfc4895: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = 2 query heads, G = 1 KV heads, Dh = 32, scale = 1.7677669e-1f, full causal (slot = pos).
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t; f32 online softmax (flash style), f32 accumulation.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 * Grid (ceil(T/16), H, B), block 128 (4 warps x 4 queries),
 *   dynamic smem 4 * (BQ*Dh + BK*KP + BK*Dh) bytes (attention_prefill_smem), KP = Dh | 1.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
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

extern "C" __global__ void __launch_bounds__(128) attn_prefill_cdfc4895(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)
{
    constexpr int H = 2;
    constexpr int G = 1;
    constexpr int R = H / G;
    constexpr int DH = 32;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 33;
    (void)KP;
    constexpr int W = 0;
    constexpr float SCALE = 1.7677669e-1f;
    constexpr int BK = 32;
    constexpr int NW = 4;
    constexpr int BQ = 16;
    constexpr int QPW = BQ / NW;
    /* Dynamic shared memory (attention_prefill_smem bytes): above 48 KiB for Dh > 128. */
    extern __shared__ float smem[];
    float (*q_s)[DH] = reinterpret_cast<float (*)[DH]>(smem);
    float (*k_s)[KP] = reinterpret_cast<float (*)[KP]>(smem + BQ * DH);
    float (*v_s)[DH] = reinterpret_cast<float (*)[DH]>(smem + BQ * DH + BK * KP);

    const int qt0 = blockIdx.x * BQ;
    const int h = blockIdx.y;
    const long b = blockIdx.z;
    const int g = h / R;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int past = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;

    for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {
        const int r = i / DH, d = i % DH, t = qt0 + r;
        q_s[r][d] = t < T ? bf2f(q[(b * T + t) * q_stride + h * DH + d]) * SCALE : 0.0f;
    }
    /* Append this tile's new keys/values (one query head per KV group does it). */
    if (h % R == 0) {
        for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {
            const int r = i / DH, d = i % DH, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {
                kc[slot * DH + d] = k[(b * T + t) * k_stride + g * DH + d];
                vc[slot * DH + d] = v[(b * T + t) * v_stride + g * DH + d];
            }
        }
    }

    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    float m[QPW], l[QPW], o[QPW][DPL];
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[qi][i] = 0.0f;
    }
    __syncthreads();

    for (int kt0 = lo; kt0 <= hi; kt0 += BK) {
        for (int i = threadIdx.x; i < BK * DH; i += blockDim.x) {
            const int r = i / DH, d = i % DH, pos = kt0 + r;
            float kv = 0.0f, vv = 0.0f;
            if (pos <= hi) {
                if (pos < past) {
                    const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                    if (slot < s_max) {
                        kv = bf2f(kc[slot * DH + d]);
                        vv = bf2f(vc[slot * DH + d]);
                    }
                } else {
                    const long row = b * T + (pos - past);
                    kv = bf2f(k[row * k_stride + g * DH + d]);
                    vv = bf2f(v[row * v_stride + g * DH + d]);
                }
            }
            k_s[r][d] = kv;
            v_s[r][d] = vv;
        }
        __syncthreads();
#pragma unroll
        for (int qi = 0; qi < QPW; ++qi) {
            const int r = warp * QPW + qi, t = qt0 + r;
            if (t >= T) continue; /* warp-uniform */
            const int qpos = past + t, pos = kt0 + lane;
            float s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < DH; ++d) s = fmaf(q_s[r][d], k_s[lane][d], s);
            const bool vis = pos <= qpos && (W == 0 || qpos - pos < W);
            s = vis ? s : -INFINITY;
            const float mn = fmaxf(m[qi], warp_max(s));
            if (mn == -INFINITY) continue; /* nothing visible yet: warp-uniform */
            const float pr = vis ? expf(s - mn) : 0.0f;
            const float corr = expf(m[qi] - mn);
            l[qi] = l[qi] * corr + warp_sum(pr);
            m[qi] = mn;
#pragma unroll
            for (int i = 0; i < DPL; ++i) o[qi][i] *= corr;
            for (int j = 0; j < BK; ++j) {
                const float pj = __shfl_sync(0xffffffffu, pr, j);
#pragma unroll
                for (int i = 0; i < DPL; ++i)
                    if (!DTAIL || lane + 32 * i < DH) o[qi][i] = fmaf(pj, v_s[j][lane + 32 * i], o[qi][i]);
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        const int t = qt0 + warp * QPW + qi;
        if (t >= T) continue;
        const float inv = 1.0f / l[qi];
#pragma unroll
        for (int i = 0; i < DPL; ++i)
            if (!DTAIL || lane + 32 * i < DH)
                out[(b * T + t) * out_stride + h * DH + lane + 32 * i] = f2bf(o[qi][i] * inv);
    }
}

// ===== kernels/rms_norm_3d488d001d19.cu =====
/*
 * rms_norm_3d488d001d19: fused row-wise kernel, one block of 128 threads per row (token).
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

extern "C" __global__ void __launch_bounds__(128) rms_norm_3d488d001d19(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ w1,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
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

// ===== kernels/silu_mul_78101e1a0685.cu =====
/*
 * silu_mul_78101e1a0685: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
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

extern "C" __global__ void __launch_bounds__(256) silu_mul_78101e1a0685(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ x1_p, int x1_stride,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
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

// ===== kernels/rope_8922f6b61c3a.cu =====
/*
 * rope_8922f6b61c3a: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   rope(head_dim=32, theta=10000) @ layers.*.mixer
 *   rope(head_dim=32, theta=10000) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  260*batch*tokens
 * Bytes stored:  256*batch*tokens
 * FLOPs:         1536*batch*tokens
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

__constant__ double rope_inv_freq_0[16] = {1e0, 5.623413251903491e-1, 3.1622776601683794e-1, 1.778279410038923e-1, 1e-1, 5.623413251903491e-2, 3.162277660168379e-2, 1.778279410038923e-2, 1e-2, 5.623413251903491e-3, 3.1622776601683794e-3, 1.7782794100389228e-3, 1e-3, 5.623413251903491e-4, 3.1622776601683794e-4, 1.7782794100389227e-4};
__constant__ double rope_inv_freq_1[16] = {1e0, 5.623413251903491e-1, 3.1622776601683794e-1, 1.778279410038923e-1, 1e-1, 5.623413251903491e-2, 3.162277660168379e-2, 1.778279410038923e-2, 1e-2, 5.623413251903491e-3, 3.1622776601683794e-3, 1.7782794100389228e-3, 1e-3, 5.623413251903491e-4, 3.1622776601683794e-4, 1.7782794100389227e-4};
extern "C" __global__ void __launch_bounds__(256) rope_8922f6b61c3a(
    const bf16* __restrict__ x0_p, int x0_stride,
    const int* __restrict__ s1,
    const bf16* __restrict__ x2_p, int x2_stride,
    bf16* __restrict__ o0, int o0_stride,
    bf16* __restrict__ o1, int o1_stride,
    int rows)
{
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x2 = [&](int c) -> float { return ld(x2_p, row * x2_stride + c); };
    /* rope(head_dim=32, theta=10000) @ layers.*.mixer */
    const double pos0 = (double)s1[row];
    auto v0 = [&](int c) -> float { return [&]() { const int i = c % 32; const int j = i % 16; double s, co; sincos(pos0 * rope_inv_freq_0[j], &s, &co); return i < 16 ? x0(c) * (float)co - x0(c + 16) * (float)s : x0(c) * (float)co + x0(c - 16) * (float)s; }(); };
    /* rope(head_dim=32, theta=10000) @ layers.*.mixer */
    const double pos1 = (double)s1[row];
    auto v1 = [&](int c) -> float { return [&]() { const int i = c % 32; const int j = i % 16; double s, co; sincos(pos1 * rope_inv_freq_1[j], &s, &co); return i < 16 ? x2(c) * (float)co - x2(c + 16) * (float)s : x2(c) * (float)co + x2(c - 16) * (float)s; }(); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 64) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/attn_prefill_6e30089e.cu =====
/*
 * modelc mixer core: attn_prefill_6e30089e (template).
 * Fuses, in order:
 *   attention(heads=2, kv_heads=2, head_dim=32, causal=true, window=4, scale=0.17677669529663687)
 * Bytes loaded:  384*batch*tokens + 256*batch*min(past + tokens, 4)
 * Bytes stored:  384*batch*tokens
 * FLOPs:         256*batch*tokens*min(past + tokens, 4)
 */
/*
 * attn_prefill_6e30089e: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = 2 query heads, G = 2 KV heads, Dh = 32, scale = 1.7677669e-1f, sliding window W = 4 (ring cache, slot = pos mod S_max).
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t; f32 online softmax (flash style), f32 accumulation.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 * Grid (ceil(T/16), H, B), block 128 (4 warps x 4 queries),
 *   dynamic smem 4 * (BQ*Dh + BK*KP + BK*Dh) bytes (attention_prefill_smem), KP = Dh | 1.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
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

extern "C" __global__ void __launch_bounds__(128) attn_prefill_6e30089e(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)
{
    constexpr int H = 2;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 32;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 33;
    (void)KP;
    constexpr int W = 4;
    constexpr float SCALE = 1.7677669e-1f;
    constexpr int BK = 32;
    constexpr int NW = 4;
    constexpr int BQ = 16;
    constexpr int QPW = BQ / NW;
    /* Dynamic shared memory (attention_prefill_smem bytes): above 48 KiB for Dh > 128. */
    extern __shared__ float smem[];
    float (*q_s)[DH] = reinterpret_cast<float (*)[DH]>(smem);
    float (*k_s)[KP] = reinterpret_cast<float (*)[KP]>(smem + BQ * DH);
    float (*v_s)[DH] = reinterpret_cast<float (*)[DH]>(smem + BQ * DH + BK * KP);

    const int qt0 = blockIdx.x * BQ;
    const int h = blockIdx.y;
    const long b = blockIdx.z;
    const int g = h / R;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int past = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;

    for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {
        const int r = i / DH, d = i % DH, t = qt0 + r;
        q_s[r][d] = t < T ? bf2f(q[(b * T + t) * q_stride + h * DH + d]) * SCALE : 0.0f;
    }
    /* Append this tile's new keys/values (one query head per KV group does it). */
    if (h % R == 0) {
        for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {
            const int r = i / DH, d = i % DH, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {
                kc[slot * DH + d] = k[(b * T + t) * k_stride + g * DH + d];
                vc[slot * DH + d] = v[(b * T + t) * v_stride + g * DH + d];
            }
        }
    }

    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    float m[QPW], l[QPW], o[QPW][DPL];
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[qi][i] = 0.0f;
    }
    __syncthreads();

    for (int kt0 = lo; kt0 <= hi; kt0 += BK) {
        for (int i = threadIdx.x; i < BK * DH; i += blockDim.x) {
            const int r = i / DH, d = i % DH, pos = kt0 + r;
            float kv = 0.0f, vv = 0.0f;
            if (pos <= hi) {
                if (pos < past) {
                    const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                    if (slot < s_max) {
                        kv = bf2f(kc[slot * DH + d]);
                        vv = bf2f(vc[slot * DH + d]);
                    }
                } else {
                    const long row = b * T + (pos - past);
                    kv = bf2f(k[row * k_stride + g * DH + d]);
                    vv = bf2f(v[row * v_stride + g * DH + d]);
                }
            }
            k_s[r][d] = kv;
            v_s[r][d] = vv;
        }
        __syncthreads();
#pragma unroll
        for (int qi = 0; qi < QPW; ++qi) {
            const int r = warp * QPW + qi, t = qt0 + r;
            if (t >= T) continue; /* warp-uniform */
            const int qpos = past + t, pos = kt0 + lane;
            float s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < DH; ++d) s = fmaf(q_s[r][d], k_s[lane][d], s);
            const bool vis = pos <= qpos && (W == 0 || qpos - pos < W);
            s = vis ? s : -INFINITY;
            const float mn = fmaxf(m[qi], warp_max(s));
            if (mn == -INFINITY) continue; /* nothing visible yet: warp-uniform */
            const float pr = vis ? expf(s - mn) : 0.0f;
            const float corr = expf(m[qi] - mn);
            l[qi] = l[qi] * corr + warp_sum(pr);
            m[qi] = mn;
#pragma unroll
            for (int i = 0; i < DPL; ++i) o[qi][i] *= corr;
            for (int j = 0; j < BK; ++j) {
                const float pj = __shfl_sync(0xffffffffu, pr, j);
#pragma unroll
                for (int i = 0; i < DPL; ++i)
                    if (!DTAIL || lane + 32 * i < DH) o[qi][i] = fmaf(pj, v_s[j][lane + 32 * i], o[qi][i]);
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        const int t = qt0 + warp * QPW + qi;
        if (t >= T) continue;
        const float inv = 1.0f / l[qi];
#pragma unroll
        for (int i = 0; i < DPL; ++i)
            if (!DTAIL || lane + 32 * i < DH)
                out[(b * T + t) * out_stride + h * DH + lane + 32 * i] = f2bf(o[qi][i] * inv);
    }
}

// ===== kernels/conv1d_d0383ac1.cu =====
/*
 * modelc mixer core: conv1d_d0383ac1 (template).
 * Fuses, in order:
 *   causal_conv1d(kernel=4, silu)
 * Bytes loaded:  256*batch*tokens + 1536*batch + 1024
 * Bytes stored:  256*batch*tokens + 1536*batch
 * FLOPs:         1792*batch*tokens
 */
/*
 * conv1d_d0383ac1: causal depthwise conv1d, K = 4 taps, bias = false, activation = silu.
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

extern "C" __global__ void __launch_bounds__(128) conv1d_d0383ac1(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ w, const bf16* __restrict__ bias,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int C)
{
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

// ===== kernels/sigmoid_decay_gate_0a3a29d17c96.cu =====
/*
 * sigmoid_decay_gate_0a3a29d17c96: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   sigmoid @ layers.*.mixer
 *   decay_gate(group=1) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  8*batch*tokens + 16
 * Bytes stored:  16*batch*tokens
 * FLOPs:         36*batch*tokens
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

extern "C" __global__ void __launch_bounds__(256) sigmoid_decay_gate_0a3a29d17c96(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ x1_p, int x1_stride,
    const float* __restrict__ w2,
    const float* __restrict__ w3,
    float* __restrict__ o0, int o0_stride,
    float* __restrict__ o1, int o1_stride,
    int rows)
{
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
        if (c < 2) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 2) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/delta_rule_chunked_55fdce41.cu =====
/*
 * modelc mixer core: delta_rule_chunked_55fdce41 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=32)
 *   scale(0.17677669529663687)
 *   l2_norm(eps=1e-6, group=32)
 *   delta_rule(key_heads=1, value_heads=2, key_dim=32, value_dim=32, decay=scalar)
 *   gated_rms_norm(eps=1e-5, group=32, act=silu)
 * Bytes loaded:  400*batch*tokens + 8192*batch + 128
 * Bytes stored:  128*batch*tokens + 8192*batch
 * FLOPs:         25216*batch*tokens
 */
/*
 * delta_rule_chunked_55fdce41: gated delta rule, chunked (WY representation / UT transform).
 *   Hk = 1, Hv = 2, Dk = 32, Dv = 32, gate = scalar per head (GDN), qk l2norm = true, scale = 1.7677669e-1f, chunk C = 16.
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

extern "C" __global__ void __launch_bounds__(32) delta_rule_chunked_55fdce41(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 1;
    constexpr int HV = 2;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 32;
    constexpr int DV = 32;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = false;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 1.7677669e-1f;
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

// ===== kernels/decay_gate_sigmoid_9719a7a8fa4f.cu =====
/*
 * decay_gate_sigmoid_9719a7a8fa4f: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   decay_gate(group=32) @ layers.*.mixer
 *   sigmoid @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  132*batch*tokens + 264
 * Bytes stored:  264*batch*tokens
 * FLOPs:         780*batch*tokens
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

extern "C" __global__ void __launch_bounds__(256) decay_gate_sigmoid_9719a7a8fa4f(
    const bf16* __restrict__ x0_p, int x0_stride,
    const float* __restrict__ w1,
    const float* __restrict__ w2,
    const bf16* __restrict__ x3_p, int x3_stride,
    float* __restrict__ o0, int o0_stride,
    float* __restrict__ o1, int o1_stride,
    int rows)
{
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    auto x3 = [&](int c) -> float { return ld(x3_p, row * x3_stride + c); };
    /* decay_gate(group=32) @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return -expf((float)w1[c / 32]) * softplus_f(x0(c) + (float)w2[c]); };
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
        if (c < 2) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/delta_rule_chunked_3871c799.cu =====
/*
 * modelc mixer core: delta_rule_chunked_3871c799 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=32)
 *   scale(0.17677669529663687)
 *   l2_norm(eps=1e-6, group=32)
 *   delta_rule(key_heads=2, value_heads=2, key_dim=32, value_dim=32, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=32, act=silu)
 * Bytes loaded:  776*batch*tokens + 8192*batch + 128
 * Bytes stored:  128*batch*tokens + 8192*batch
 * FLOPs:         25216*batch*tokens
 */
/*
 * delta_rule_chunked_3871c799: gated delta rule, chunked (WY representation / UT transform).
 *   Hk = 2, Hv = 2, Dk = 32, Dv = 32, gate = per key channel (KDA), qk l2norm = true, scale = 1.7677669e-1f, chunk C = 16.
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

extern "C" __global__ void __launch_bounds__(32) delta_rule_chunked_3871c799(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 2;
    constexpr int HV = 2;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 32;
    constexpr int DV = 32;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = true;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 1.7677669e-1f;
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

// ===== kernels/repeat_groups_13d4fe7fb568.cu =====
/*
 * repeat_groups_13d4fe7fb568: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   repeat_groups(n=16, repeats=2) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  64*batch*tokens
 * Bytes stored:  128*batch*tokens
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

extern "C" __global__ void __launch_bounds__(256) repeat_groups_13d4fe7fb568(
    const bf16* __restrict__ x0_p, int x0_stride,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
    const long row = blockIdx.x;
    if (row >= rows) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c0 = blockIdx.y * 512;
    (void)lane; (void)warp;
    auto x0 = [&](int c) -> float { return ld(x0_p, row * x0_stride + c); };
    /* repeat_groups(n=16, repeats=2) @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return x0((c / 32) * 16 + c % 16); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 64) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/conv1d_78ff4e55.cu =====
/*
 * modelc mixer core: conv1d_78ff4e55 (template).
 * Fuses, in order:
 *   causal_conv1d(kernel=4, bias, silu)
 * Bytes loaded:  128*batch*tokens + 768*batch + 640
 * Bytes stored:  128*batch*tokens + 768*batch
 * FLOPs:         896*batch*tokens
 */
/*
 * conv1d_78ff4e55: causal depthwise conv1d, K = 4 taps, bias = true, activation = silu.
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

extern "C" __global__ void __launch_bounds__(128) conv1d_78ff4e55(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ w, const bf16* __restrict__ bias,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int C)
{
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

// ===== kernels/selective_scan_b0c77ed8.cu =====
/*
 * modelc mixer core: selective_scan_b0c77ed8 (template).
 * Fuses, in order:
 *   add
 *   softplus
 *   selective_scan(state_size=16)
 *   silu
 *   mul
 * Bytes loaded:  576*batch*tokens + 4096*batch + 4608
 * Bytes stored:  128*batch*tokens + 4096*batch
 * FLOPs:         6912*batch*tokens
 */
/*
 * selective_scan_b0c77ed8: Mamba-1 selective scan, M1 grouped x/B, N = 16, r = Hc/Gx = 2,
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

extern "C" __global__ void __launch_bounds__(128) selective_scan_b0c77ed8(
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
    constexpr int R = 2;
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

// ===== kernels/rms_norm_61b2ad4d1e7b.cu =====
/*
 * rms_norm_61b2ad4d1e7b: fused row-wise kernel, one block of 128 threads per row (token).
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

extern "C" __global__ void __launch_bounds__(128) rms_norm_61b2ad4d1e7b(
    const bf16* __restrict__ x0_p, int x0_stride,
    const bf16* __restrict__ w1,
    bf16* __restrict__ o0, int o0_stride,
    int rows)
{
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

// ===== kernels/attn_decode_217309b7.cu =====
/*
 * modelc mixer core: attn_decode_217309b7, attn_decode_combine_217309b7 (template).
 * Fuses, in order:
 *   attention(heads=2, kv_heads=1, head_dim=32, causal=true, window=none, scale=0.17677669529663687)
 * Bytes loaded:  256*batch*tokens + 128*batch*(past + tokens) + 272*batch*max(min(cdiv(2*sms, 2*batch), cdiv(past + 1, 32)), 1)
 * Bytes stored:  256*batch*tokens + 272*batch*max(min(cdiv(2*sms, 2*batch), cdiv(past + 1, 32)), 1)
 * FLOPs:         256*batch*tokens*(past + tokens)
 */
/*
 * attn_decode_217309b7: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = 2, G = 1, Dh = 32, scale = 1.7677669e-1f, full causal (slot = pos).
 *   Split-K: block (split, h, b) covers a contiguous share of the visible keys; its 4 warps
 *   take interleaved 32-key tiles, merge in shared memory, and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:]. attn_decode_combine_217309b7 merges the splits and normalises.
 *   The (split 0, h % (H/G) == 0) block appends the new k/v row at position past_len[b].
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, H, B) x 128 threads; combine (H, B) x Dh threads.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
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

/* The min-blocks hint (4) keeps ptxas from a 4-byte spill it made at 32 registers. */
extern "C" __global__ void __launch_bounds__(128, 4) attn_decode_217309b7(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{
    constexpr int H = 2;
    constexpr int G = 1;
    constexpr int R = H / G;
    constexpr int DH = 32;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 33;
    (void)KP;
    constexpr int W = 0;
    constexpr float SCALE = 1.7677669e-1f;
    constexpr int BK = 32;
    constexpr int NW = 4;
    __shared__ float q_s[DH];
    __shared__ float red_m[NW], red_l[NW];
    __shared__ float red_o[NW][DH];

    const int split = blockIdx.x;
    const int h = blockIdx.y;
    const long b = blockIdx.z;
    const int g = h / R;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int qpos = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const bf16* knew = k + b * k_stride + g * DH;
    const bf16* vnew = v + b * v_stride + g * DH;

    for (int d = threadIdx.x; d < DH; d += blockDim.x) q_s[d] = bf2f(q[b * q_stride + h * DH + d]) * SCALE;
    if (split == 0 && h % R == 0) {
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = threadIdx.x; d < DH; d += blockDim.x) {
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }
    }
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int n = qpos - lo + 1;
    const int per = (n + n_splits - 1) / n_splits;
    const int a = lo + split * per;
    const int e = min(a + per, qpos + 1);
    __syncthreads();

    float m = -INFINITY, l = 0.0f, o[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[i] = 0.0f;
    for (int kt0 = a + warp * BK; kt0 < e; kt0 += NW * BK) {
        const int pos = kt0 + lane;
        const bool valid = pos < e;
        const bf16* kr = knew;
        if (valid && pos < qpos) kr = kc + (W > 0 ? (long)pos % s_max : (long)pos) * DH;
        float s = -INFINITY;
        if (valid) {
            s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < DH; ++d) s = fmaf(q_s[d], bf2f(kr[d]), s);
        }
        const float mn = fmaxf(m, warp_max(s)); /* finite: tile has a valid key */
        const float pr = valid ? expf(s - mn) : 0.0f;
        const float corr = expf(m - mn);
        l = l * corr + warp_sum(pr);
        m = mn;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[i] *= corr;
        const int jn = min(BK, e - kt0);
        for (int j = 0; j < jn; ++j) {
            const float pj = __shfl_sync(0xffffffffu, pr, j);
            const int pj_pos = kt0 + j;
            const bf16* vr = pj_pos < qpos ? vc + (W > 0 ? (long)pj_pos % s_max : (long)pj_pos) * DH : vnew;
#pragma unroll
            for (int i = 0; i < DPL; ++i)
                if (!DTAIL || lane + 32 * i < DH) o[i] = fmaf(pj, bf2f(vr[lane + 32 * i]), o[i]);
        }
    }
    if (lane == 0) { red_m[warp] = m; red_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < DPL; ++i)
        if (!DTAIL || lane + 32 * i < DH) red_o[warp][lane + 32 * i] = o[i];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) M = fmaxf(M, red_m[w]);
    float* dst = partial + ((b * H + h) * (long)n_splits + split) * (DH + 2);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) acc += red_o[w][d] * expf(red_m[w] - M);
        dst[2 + d] = acc;
    }
    if (threadIdx.x == 0) {
        float L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) L += red_l[w] * expf(red_m[w] - M);
        dst[0] = M;
        dst[1] = L;
    }
}

extern "C" __global__ void attn_decode_combine_217309b7(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{
    constexpr int H = 2;
    constexpr int DH = 32;
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

// ===== kernels/attn_decode_9b18b5e3.cu =====
/*
 * modelc mixer core: attn_decode_9b18b5e3, attn_decode_combine_9b18b5e3 (template).
 * Fuses, in order:
 *   attention(heads=2, kv_heads=2, head_dim=32, causal=true, window=4, scale=0.17677669529663687)
 * Bytes loaded:  384*batch*tokens + 256*batch*min(past + tokens, 4) + 272*batch*max(min(cdiv(2*sms, 2*batch), cdiv(past + 1, 32)), 1)
 * Bytes stored:  384*batch*tokens + 272*batch*max(min(cdiv(2*sms, 2*batch), cdiv(past + 1, 32)), 1)
 * FLOPs:         256*batch*tokens*min(past + tokens, 4)
 */
/*
 * attn_decode_9b18b5e3: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = 2, G = 2, Dh = 32, scale = 1.7677669e-1f, sliding window W = 4 (ring cache, slot = pos mod S_max).
 *   Split-K: block (split, h, b) covers a contiguous share of the visible keys; its 4 warps
 *   take interleaved 32-key tiles, merge in shared memory, and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:]. attn_decode_combine_9b18b5e3 merges the splits and normalises.
 *   The (split 0, h % (H/G) == 0) block appends the new k/v row at position past_len[b].
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, H, B) x 128 threads; combine (H, B) x Dh threads.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
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

/* The min-blocks hint (4) keeps ptxas from a 4-byte spill it made at 32 registers. */
extern "C" __global__ void __launch_bounds__(128, 4) attn_decode_9b18b5e3(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{
    constexpr int H = 2;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 32;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 33;
    (void)KP;
    constexpr int W = 4;
    constexpr float SCALE = 1.7677669e-1f;
    constexpr int BK = 32;
    constexpr int NW = 4;
    __shared__ float q_s[DH];
    __shared__ float red_m[NW], red_l[NW];
    __shared__ float red_o[NW][DH];

    const int split = blockIdx.x;
    const int h = blockIdx.y;
    const long b = blockIdx.z;
    const int g = h / R;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int qpos = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const bf16* knew = k + b * k_stride + g * DH;
    const bf16* vnew = v + b * v_stride + g * DH;

    for (int d = threadIdx.x; d < DH; d += blockDim.x) q_s[d] = bf2f(q[b * q_stride + h * DH + d]) * SCALE;
    if (split == 0 && h % R == 0) {
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = threadIdx.x; d < DH; d += blockDim.x) {
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }
    }
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int n = qpos - lo + 1;
    const int per = (n + n_splits - 1) / n_splits;
    const int a = lo + split * per;
    const int e = min(a + per, qpos + 1);
    __syncthreads();

    float m = -INFINITY, l = 0.0f, o[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[i] = 0.0f;
    for (int kt0 = a + warp * BK; kt0 < e; kt0 += NW * BK) {
        const int pos = kt0 + lane;
        const bool valid = pos < e;
        const bf16* kr = knew;
        if (valid && pos < qpos) kr = kc + (W > 0 ? (long)pos % s_max : (long)pos) * DH;
        float s = -INFINITY;
        if (valid) {
            s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < DH; ++d) s = fmaf(q_s[d], bf2f(kr[d]), s);
        }
        const float mn = fmaxf(m, warp_max(s)); /* finite: tile has a valid key */
        const float pr = valid ? expf(s - mn) : 0.0f;
        const float corr = expf(m - mn);
        l = l * corr + warp_sum(pr);
        m = mn;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[i] *= corr;
        const int jn = min(BK, e - kt0);
        for (int j = 0; j < jn; ++j) {
            const float pj = __shfl_sync(0xffffffffu, pr, j);
            const int pj_pos = kt0 + j;
            const bf16* vr = pj_pos < qpos ? vc + (W > 0 ? (long)pj_pos % s_max : (long)pj_pos) * DH : vnew;
#pragma unroll
            for (int i = 0; i < DPL; ++i)
                if (!DTAIL || lane + 32 * i < DH) o[i] = fmaf(pj, bf2f(vr[lane + 32 * i]), o[i]);
        }
    }
    if (lane == 0) { red_m[warp] = m; red_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < DPL; ++i)
        if (!DTAIL || lane + 32 * i < DH) red_o[warp][lane + 32 * i] = o[i];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) M = fmaxf(M, red_m[w]);
    float* dst = partial + ((b * H + h) * (long)n_splits + split) * (DH + 2);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) acc += red_o[w][d] * expf(red_m[w] - M);
        dst[2 + d] = acc;
    }
    if (threadIdx.x == 0) {
        float L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) L += red_l[w] * expf(red_m[w] - M);
        dst[0] = M;
        dst[1] = L;
    }
}

extern "C" __global__ void attn_decode_combine_9b18b5e3(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{
    constexpr int H = 2;
    constexpr int DH = 32;
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

// ===== kernels/delta_rule_recurrent_3e5f7fd8.cu =====
/*
 * modelc mixer core: delta_rule_recurrent_3e5f7fd8 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=32)
 *   scale(0.17677669529663687)
 *   l2_norm(eps=1e-6, group=32)
 *   delta_rule(key_heads=1, value_heads=2, key_dim=32, value_dim=32, decay=scalar)
 *   gated_rms_norm(eps=1e-5, group=32, act=silu)
 * Bytes loaded:  400*batch*tokens + 8192*batch + 128
 * Bytes stored:  128*batch*tokens + 8192*batch
 * FLOPs:         17024*batch*tokens
 */
/*
 * delta_rule_recurrent_3e5f7fd8: gated delta rule, one token at a time.
 *   Hk = 1, Hv = 2, Dk = 32, Dv = 32, gate = scalar per head (GDN), qk l2norm = true, scale = 1.7677669e-1f.
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

extern "C" __global__ void __launch_bounds__(32) delta_rule_recurrent_3e5f7fd8(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 1;
    constexpr int HV = 2;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 32;
    constexpr int DV = 32;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = false;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 1.7677669e-1f;
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

// ===== kernels/delta_rule_recurrent_01376277.cu =====
/*
 * modelc mixer core: delta_rule_recurrent_01376277 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=32)
 *   scale(0.17677669529663687)
 *   l2_norm(eps=1e-6, group=32)
 *   delta_rule(key_heads=2, value_heads=2, key_dim=32, value_dim=32, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=32, act=silu)
 * Bytes loaded:  776*batch*tokens + 8192*batch + 128
 * Bytes stored:  128*batch*tokens + 8192*batch
 * FLOPs:         17024*batch*tokens
 */
/*
 * delta_rule_recurrent_01376277: gated delta rule, one token at a time.
 *   Hk = 2, Hv = 2, Dk = 32, Dv = 32, gate = per key channel (KDA), qk l2norm = true, scale = 1.7677669e-1f.
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

extern "C" __global__ void __launch_bounds__(32) delta_rule_recurrent_01376277(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T,
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w)
{
    constexpr int HK = 2;
    constexpr int HV = 2;
    constexpr int RATIO = HV / HK;
    constexpr int DK = 32;
    constexpr int DV = 32;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = true;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 1.7677669e-1f;
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

