// ===== kernels/embedding_rms_norm_b8f444b3d9c3.cu =====
/*
 * embedding_rms_norm_b8f444b3d9c3: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   embedding @ model
 *   rms_norm(eps=1e-5, group=32) @ layers.*
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  68*batch*tokens + 64
 * Bytes stored:  128*batch*tokens
 * FLOPs:         128*batch*tokens
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

extern "C" __global__ void __launch_bounds__(128) embedding_rms_norm_b8f444b3d9c3(
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
    auto v0 = [&](int c) -> float { return (id0 >= 0 && id0 < 64) ? bf2f(w1[(long)id0 * 32 + c]) : __int_as_float(0x7fc00000); };
    /* rms_norm(eps=1e-5, group=32) @ layers.* */
    __shared__ float st1[1];
    {
        constexpr int G = 32, NG = 1;
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
            st1[tid] = rsqrtf(acc / 32.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v1 = [&](int c) -> float { return v0(c) * st1[c / 32] * bf2f(w2[c % 32]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 32) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 32) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/rope_31c2f5bb90cd.cu =====
/*
 * rope_31c2f5bb90cd: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   rope(head_dim=8, theta=10000) @ layers.*.mixer
 *   rope(head_dim=8, theta=10000) @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  100*batch*tokens
 * Bytes stored:  96*batch*tokens
 * FLOPs:         576*batch*tokens
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

__device__ const double rope_inv_freq_0[4] = {1e0, 1e-1, 1e-2, 1e-3};
static __device__ __forceinline__ void rope_sincos(double a, float* s, float* c) {
    a -= 6.283185307179586 * rint(a * 0.15915494309189535);
    sincosf((float)a, s, c);
}
__device__ const double rope_inv_freq_1[4] = {1e0, 1e-1, 1e-2, 1e-3};
extern "C" __global__ void __launch_bounds__(256) rope_31c2f5bb90cd(
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
    /* rope(head_dim=8, theta=10000) @ layers.*.mixer */
    const double pos0 = (double)s1[row];
    auto v0 = [&](int c) -> float { return [&]() { const int i = c % 8; const int j = i % 4; float s, co; rope_sincos(pos0 * rope_inv_freq_0[j], &s, &co); return i < 4 ? x0(c) * co - x0(c + 4) * s : x0(c) * co + x0(c - 4) * s; }(); };
    /* rope(head_dim=8, theta=10000) @ layers.*.mixer */
    const double pos1 = (double)s1[row];
    auto v1 = [&](int c) -> float { return [&]() { const int i = c % 8; const int j = i % 4; float s, co; rope_sincos(pos1 * rope_inv_freq_1[j], &s, &co); return i < 4 ? x2(c) * co - x2(c + 4) * s : x2(c) * co + x2(c - 4) * s; }(); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 32) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 16) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/attn_prefill_a2b6f2d0.cu =====
/*
 * modelc mixer core: attn_prefill_a2b6f2d0 (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=8, causal=true, window=4, scale=0.35355339059327373)
 * Bytes loaded:  128*batch*tokens + 64*batch*min(past + tokens, 4)
 * Bytes stored:  128*batch*tokens
 * FLOPs:         128*batch*tokens*min(past + tokens, 4)
 */
/*
 * attn_prefill_a2b6f2d0: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = 4 query heads, G = 2 KV heads, Dh = 8, scale = 3.5355338e-1f, sliding window W = 4 (ring cache, slot = pos mod S_max).
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

extern "C" __global__ void __launch_bounds__(128) attn_prefill_a2b6f2d0(
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
    constexpr int DH = 8;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 9;
    (void)KP;
    constexpr int W = 4;
    constexpr float SCALE = 3.5355338e-1f;
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

// ===== kernels/rms_norm_4625ef7e0292.cu =====
/*
 * rms_norm_4625ef7e0292: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   rms_norm(eps=1e-5, group=32) @ layers.*
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  64*batch*tokens + 64
 * Bytes stored:  64*batch*tokens
 * FLOPs:         128*batch*tokens
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

extern "C" __global__ void __launch_bounds__(128) rms_norm_4625ef7e0292(
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
    /* rms_norm(eps=1e-5, group=32) @ layers.* */
    __shared__ float st0[1];
    {
        constexpr int G = 32, NG = 1;
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
            st0[tid] = rsqrtf(acc / 32.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v0 = [&](int c) -> float { return x0(c) * st0[c / 32] * bf2f(w1[c % 32]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 32) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/silu_mul_30851b1c1769.cu =====
/*
 * silu_mul_30851b1c1769: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   silu @ layers.*.mlp
 *   mul @ layers.*.mlp
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  256*batch*tokens
 * Bytes stored:  128*batch*tokens
 * FLOPs:         448*batch*tokens
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

extern "C" __global__ void __launch_bounds__(256) silu_mul_30851b1c1769(
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
        if (c < 64) st(o0, row * o0_stride + c, v1(c));
    }
}

// ===== kernels/rms_norm_83f588c36a54.cu =====
/*
 * rms_norm_83f588c36a54: fused row-wise kernel, one block of 128 threads per row (token).
 * Fuses, in order:
 *   rms_norm(eps=1e-5, group=32) @ head
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  64*batch*tokens + 64
 * Bytes stored:  64*batch*tokens
 * FLOPs:         128*batch*tokens
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

extern "C" __global__ void __launch_bounds__(128) rms_norm_83f588c36a54(
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
    /* rms_norm(eps=1e-5, group=32) @ head */
    __shared__ float st0[1];
    {
        constexpr int G = 32, NG = 1;
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
            st0[tid] = rsqrtf(acc / 32.0f + 1e-5f);
        }
    }
    __syncthreads();
    auto v0 = [&](int c) -> float { return x0(c) * st0[c / 32] * bf2f(w1[c % 32]); };
#pragma unroll
    for (int i = 0; i < 1; ++i) {
        const int c = tid + i * 128;
        if (c < 32) st(o0, row * o0_stride + c, v0(c));
    }
}

// ===== kernels/attn_decode_65355868.cu =====
/*
 * modelc mixer core: attn_decode_65355868, attn_decode_combine_65355868 (template).
 * Fuses, in order:
 *   attention(heads=4, kv_heads=2, head_dim=8, causal=true, window=4, scale=0.35355339059327373)
 * Bytes loaded:  128*batch*tokens + 64*batch*min(past + tokens, 4) + 160*batch*max(min(fdiv(2*sms, 4*batch), cdiv(min(past + 1, 4), 32)), 1)
 * Bytes stored:  128*batch*tokens + 160*batch*max(min(fdiv(2*sms, 4*batch), cdiv(min(past + 1, 4), 32)), 1)
 * FLOPs:         128*batch*tokens*min(past + tokens, 4)
 */
/*
 * attn_decode_65355868: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = 4, G = 2, Dh = 8, scale = 3.5355338e-1f, sliding window W = 4 (ring cache, slot = pos mod S_max).
 *   Split-K: block (split, h, b) covers a contiguous share of the visible keys; its 4 warps
 *   take interleaved 32-key tiles, merge in shared memory, and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:]. attn_decode_combine_65355868 merges the splits and normalises.
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
extern "C" __global__ void __launch_bounds__(128, 4) attn_decode_65355868(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{
    constexpr int H = 4;
    constexpr int G = 2;
    constexpr int R = H / G;
    constexpr int DH = 8;
    constexpr int DPL = (DH + 31) / 32;
    constexpr bool DTAIL = DH % 32 != 0;
    constexpr int KP = 9;
    (void)KP;
    constexpr int W = 4;
    constexpr float SCALE = 3.5355338e-1f;
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

extern "C" __global__ void attn_decode_combine_65355868(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{
    constexpr int H = 4;
    constexpr int DH = 8;
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

