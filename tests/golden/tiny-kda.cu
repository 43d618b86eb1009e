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

// ===== kernels/decay_gate_sigmoid_ad3db244bea0.cu =====
/*
 * decay_gate_sigmoid_ad3db244bea0: fused row-wise kernel, 1 block(s) of 256 threads per row (token), 512 channels a block.
 * Fuses, in order:
 *   decay_gate(group=8) @ layers.*.mixer
 *   sigmoid @ layers.*.mixer
 * Grid (batch*tokens, 1, 1). f32 math; bf16/f32 storage; deterministic reductions.
 * Bytes loaded:  72*batch*tokens + 144
 * Bytes stored:  144*batch*tokens
 * FLOPs:         408*batch*tokens
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

extern "C" __global__ void __launch_bounds__(256) decay_gate_sigmoid_ad3db244bea0(
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
    /* decay_gate(group=8) @ layers.*.mixer */
    auto v0 = [&](int c) -> float { return -expf((float)w1[c / 8]) * softplus_f(x0(c) + (float)w2[c]); };
    /* sigmoid @ layers.*.mixer */
    auto v1 = [&](int c) -> float { return sigmoid_f(x3(c)); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 32) st(o0, row * o0_stride + c, v0(c));
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int c = c0 + tid + i * 256;
        if (c < 4) st(o1, row * o1_stride + c, v1(c));
    }
}

// ===== kernels/conv1d_928edf1d.cu =====
/*
 * modelc mixer core: conv1d_928edf1d (template).
 * Fuses, in order:
 *   causal_conv1d(kernel=4, silu)
 * Bytes loaded:  192*batch*tokens + 1152*batch + 768
 * Bytes stored:  192*batch*tokens + 1152*batch
 * FLOPs:         1344*batch*tokens
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

// ===== kernels/delta_rule_chunked_1a8fd764.cu =====
/*
 * modelc mixer core: delta_rule_chunked_1a8fd764 (template).
 * Fuses, in order:
 *   l2_norm(eps=1e-6, group=8)
 *   scale(0.35355339059327373)
 *   l2_norm(eps=1e-6, group=8)
 *   delta_rule(key_heads=4, value_heads=4, key_dim=8, value_dim=8, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=8, act=silu)
 * Bytes loaded:  400*batch*tokens + 1024*batch + 32
 * Bytes stored:  64*batch*tokens + 1024*batch
 * FLOPs:         6464*batch*tokens
 */
/*
 * delta_rule_chunked_1a8fd764: gated delta rule, chunked (WY representation / UT transform).
 *   Hk = 4, Hv = 4, Dk = 8, Dv = 8, gate = per key channel (KDA), qk l2norm = true, scale = 3.5355338e-1f, chunk C = 16.
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

extern "C" __global__ void __launch_bounds__(32) delta_rule_chunked_1a8fd764(
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
    constexpr int DK = 8;
    constexpr int DV = 8;
    constexpr int BV = 32;
    constexpr int NWARP = BV / 32;
    constexpr bool VTAIL = DV % BV != 0;
    constexpr bool PER_CHANNEL = true;
    constexpr bool L2NORM = true;
    constexpr float SCALE = 3.5355338e-1f;
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

// ===== kernels/kda_decode_step_ac3181bf.cu =====
/*
 * modelc mixer core: kda_decode_step_ac3181bf (template).
 * Fuses, in order:
 *   linear
 *   decay_gate(group=8)
 *   sigmoid
 *   linear
 *   causal_conv1d(kernel=4, silu)
 *   l2_norm(eps=1e-6, group=8)
 *   scale(0.35355339059327373)
 *   l2_norm(eps=1e-6, group=8)
 *   delta_rule(key_heads=4, value_heads=4, key_dim=8, value_dim=8, decay=per_channel)
 *   gated_rms_norm(eps=1e-5, group=8, act=silu)
 * Bytes loaded:  232*batch*tokens + 2176*batch + 1968
 * Bytes stored:  64*batch*tokens + 2176*batch
 * FLOPs:         4160*batch*tokens
 */
/*
 * kda_decode_step_ac3181bf: one KDA layer's decode step after its input projection.
 *   H = 4, Dk = 8, Dv = 8, conv K = 4 (bias = false, SiLU), decay rank 8, gate rank 8,
 *   qk l2norm = true, scale = 3.5355338e-1f.
 *   q, k, v = conv(x) (channels 0.., 32.., 64.. of the conv's 96); conv state updated.
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

extern "C" __global__ void __launch_bounds__(128) kda_decode_step_ac3181bf(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ conv_w, const bf16* __restrict__ conv_b, float* conv_state,
    const bf16* __restrict__ fa, int fa_stride, const bf16* __restrict__ fb,
    const float* __restrict__ a_log, const float* __restrict__ dt_bias,
    const bf16* __restrict__ braw, int braw_stride,
    const bf16* __restrict__ ga, int ga_stride, const bf16* __restrict__ gb,
    const float* __restrict__ norm_w, float* state,
    bf16* __restrict__ o, int o_stride, int T)
{
    constexpr int H = 4, DK = 8, DV = 8, NT = 128, NWARP = NT / 32;
    constexpr int K = 4, C = 96, Q0 = 0, K0 = 32, V0 = 64;
    constexpr int RF = 8, RG = 8;
    constexpr int EF = 2, EG = 2;                 /* bf16 per chunk of f_b's, g_b's rows */
    constexpr int NF = RF / (4 * EF), NG = RG / (4 * EG); /* chunks per lane */
    typedef unsigned ChunkF;
    typedef unsigned ChunkG;
    constexpr int KPL = DK / 4; /* state rows per lane */
    constexpr bool L2NORM = true, CONV_BIAS = false;
    constexpr float SCALE = 3.5355338e-1f, NORM_EPS = 1e-5f;
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

