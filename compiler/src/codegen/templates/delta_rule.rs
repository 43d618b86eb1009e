//! The gated delta rule of GDN (one scalar log-decay per value head) and KDA (one log-decay per
//! key channel): a chunked prefill and a recurrent form for decode (apriel2.md §2.4, §2.5, §2.8).
//!
//! Per value head, with state S `[Dk, Dv]` (f32), per token:
//! `S ← Diag(exp g_t)·S;  S ← S + β_t k_t (v_t − Sᵀk_t)ᵀ;  o_t = Sᵀ q_t`,
//! where (optionally, in-kernel) `q ← l2norm(q)·scale`, `k ← l2norm(k)` with
//! `l2norm(x) = x·rsqrt(Σx² + 1e−6)`; without the flag q is still multiplied by `scale`.
//! Value head `hv` reads key head `hv / (Hv/Hk)` (GDN's GQA; KDA has Hk = Hv).
//!
//! Both kernels share one argument list and one thread layout: a block owns `BV` value columns
//! of one (batch, value head) and each thread keeps one column of S in registers (`Dk ≤ 128`),
//! so everything after the per-chunk setup is thread-local. The state may be updated in place.
//!
//! Any `1 ≤ Dk ≤ 128` and any `Dv ≥ 1` work. Invariants the kernels rely on:
//! - the block has `BV` threads, a multiple of 32 (32..=128), so every warp is full: the warp
//!   reductions (`warp_sum` with the full mask) are reached by all 32 lanes of a warp (the loops
//!   around them are warp-uniform), and lanes with nothing to add contribute 0;
//! - thread `tid` owns value column `j = blockIdx.x·BV + tid` when `j < Dv` (`active`). The grid
//!   has `ceil(Dv/BV)` blocks along x, so when `Dv % BV ≠ 0` (`VTAIL`, e.g. Dv = 8 in a block of
//!   32) the last block has idle threads: they take part in the cooperative loads, the
//!   reductions and every `__syncthreads`, keep a zero state column (so their u is 0), and never
//!   read or write v, o or the state. `VTAIL` is a compile-time constant: for Dv a multiple of
//!   BV the guards vanish and the kernels are those of the untailed template;
//! - loops over key channels are strided by the block (`d = tid; d < Dk; d += BV`) or by the
//!   warp (`d = lane; d < Dk; d += 32`), so Dk below 32 leaves lanes idle but never out of range.

use super::{blocks, check, dim, f32_lit, finish, KernelSource, Launch, TemplateError, HASH, PRELUDE};

/// Shape of the log-decay input g.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecayGate {
    /// g `[B, T, Hv]` f32 (GDN).
    Scalar,
    /// g `[B, T, Hv·Dk]` f32 (KDA).
    PerChannel,
}

/// Compile-time constants of the delta-rule kernels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaRuleParams {
    pub key_heads: usize,
    pub value_heads: usize,
    /// Dk ≤ 128 (one state column per thread lives in registers).
    pub key_dim: usize,
    /// Dv ≥ 1 (any size: the last block's extra threads idle).
    pub value_dim: usize,
    pub gate: DecayGate,
    /// L2-normalise q and k inside the kernel (eps 1e-6).
    pub qk_l2norm: bool,
    /// Multiplies q (after the norm), usually `Dk^−½`.
    pub scale: f32,
    /// Tokens per chunk of the prefill kernel (1..=64); ignored by the recurrent kernel.
    pub chunk: usize,
    /// Value columns per block (threads per block): a multiple of 32 in 32..=128.
    pub value_block: usize,
}

impl DeltaRuleParams {
    /// GDN/KDA defaults: scale `Dk^−½`, in-kernel L2 norm, chunk 16, and
    /// [`default_value_block`] columns per block.
    pub fn new(key_heads: usize, value_heads: usize, key_dim: usize, value_dim: usize, gate: DecayGate) -> Self {
        DeltaRuleParams {
            key_heads,
            value_heads,
            key_dim,
            value_dim,
            gate,
            qk_l2norm: true,
            scale: 1.0 / (key_dim.max(1) as f32).sqrt(),
            chunk: 16,
            value_block: default_value_block(value_dim),
        }
    }
}

/// Largest key dimension: each thread keeps a `Dk`-float state column in registers.
pub const DELTA_MAX_KEY_DIM: usize = 128;

/// Columns per block for `Dv` value columns: Dv rounded up to a multiple of 32 when that is at
/// most 64 (one block per head, idle threads only in the rounding), else 64 when it divides the
/// rounded Dv, else 32 (so that at most 31 threads of the last block idle).
pub fn default_value_block(value_dim: usize) -> usize {
    let rounded = value_dim.max(1).next_multiple_of(32);
    if rounded <= 64 {
        rounded
    } else if rounded.is_multiple_of(64) {
        64
    } else {
        32
    }
}

fn validate(p: &DeltaRuleParams, template: &'static str) -> Result<(), TemplateError> {
    check(
        template,
        p.key_heads > 0 && p.value_heads.is_multiple_of(p.key_heads.max(1)) && p.value_heads > 0,
        || {
            format!(
                "value_heads {} must be a positive multiple of key_heads {}",
                p.value_heads, p.key_heads
            )
        },
    )?;
    check(template, p.key_dim >= 1, || "key_dim must be at least 1".into())?;
    check(template, p.key_dim <= DELTA_MAX_KEY_DIM, || {
        format!(
            "key_dim {} exceeds the template's limit of {DELTA_MAX_KEY_DIM} (each thread keeps a \
             key_dim-float state column in registers)",
            p.key_dim
        )
    })?;
    check(
        template,
        p.value_block.is_multiple_of(32) && (32..=128).contains(&p.value_block),
        || format!("value_block {} must be 32, 64, 96 or 128", p.value_block),
    )?;
    check(template, p.value_dim >= 1, || "value_dim must be at least 1".into())?;
    check(template, p.scale.is_finite(), || {
        format!("scale {} is not finite", p.scale)
    })?;
    Ok(())
}

/// The argument list both kernels share.
const ARGS: &str = "const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    const float* __restrict__ g, const float* __restrict__ beta,
    const float* state_in, float* state_out,
    bf16* __restrict__ o, int o_stride, int T";

fn constants(p: &DeltaRuleParams) -> String {
    format!(
        "    constexpr int HK = {hk};\n    constexpr int HV = {hv};\n    constexpr int RATIO = HV / HK;\n    \
         constexpr int DK = {dk};\n    constexpr int DV = {dv};\n    constexpr int BV = {bv};\n    \
         constexpr int NWARP = BV / 32;\n    constexpr bool VTAIL = DV % BV != 0;\n    \
         constexpr bool PER_CHANNEL = {pc};\n    constexpr bool L2NORM = {l2};\n    \
         constexpr float SCALE = {scale};\n    (void)DV; (void)NWARP;\n",
        hk = p.key_heads,
        hv = p.value_heads,
        dk = p.key_dim,
        dv = p.value_dim,
        bv = p.value_block,
        pc = p.gate == DecayGate::PerChannel,
        l2 = p.qk_l2norm,
        scale = f32_lit(p.scale),
    )
}

fn describe(p: &DeltaRuleParams) -> String {
    format!(
        "Hk = {}, Hv = {}, Dk = {}, Dv = {}, gate = {}, qk l2norm = {}, scale = {}",
        p.key_heads,
        p.value_heads,
        p.key_dim,
        p.value_dim,
        match p.gate {
            DecayGate::Scalar => "scalar per head (GDN)",
            DecayGate::PerChannel => "per key channel (KDA)",
        },
        p.qk_l2norm,
        f32_lit(p.scale)
    )
}

const LAYOUTS: &str = " * Layouts: q, k [B,T,Hk*Dk], v [B,T,Hv*Dv], o [B,T,Hv*Dv] bf16 rows with strides (elements);
 *   g [B,T,Hv] (scalar) or [B,T,Hv*Dk] (per channel) f32 dense log-decays; beta [B,T,Hv] f32 dense;
 *   state_in / state_out [B,Hv,Dk,Dv] f32 (state_in null = zeros; they may alias).";

/// Emits `delta_rule_recurrent_<hash>`: the per-token recurrence, for decode (T = 1) and short
/// prefills.
///
/// Kernel arguments, in order (shared with [`delta_rule_chunked`]):
/// `(const bf16* q, int q_stride, const bf16* k, int k_stride, const bf16* v, int v_stride,
///   const float* g, const float* beta, const float* state_in, float* state_out,
///   bf16* o, int o_stride, int T)`
///
/// Launch with [`delta_rule_launch`] (no dynamic shared memory).
pub fn delta_rule_recurrent(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    validate(p, "delta_rule_recurrent")?;
    let body = format!(
        r#"/*
 * delta_rule_recurrent_{HASH}: gated delta rule, one token at a time.
 *   {desc}.
 *   Per token: S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
{LAYOUTS}
 * Grid (ceil(Dv/BV), Hv, B), block BV = {bv}: thread j keeps column j of S (Dk floats) in
 *   registers; threads with j >= Dv (VTAIL) only help with loads and the norm reductions.
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({bv}) delta_rule_recurrent_{HASH}(
    {ARGS})
{{
{consts}    __shared__ float qs[DK], ks[DK], as_[DK];
    __shared__ float red[2][NWARP];
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

    for (int t = 0; t < T; ++t) {{
        const long row = b * T + t;
        float sq = 0.0f, sk = 0.0f;
        for (int d = tid; d < DK; d += BV) {{
            const float qv = bf2f(q[row * q_stride + hk * DK + d]);
            const float kv = bf2f(k[row * k_stride + hk * DK + d]);
            qs[d] = qv;
            ks[d] = kv;
            sq += qv * qv;
            sk += kv * kv;
            if (PER_CHANNEL) as_[d] = expf(g[row * HV * DK + hv * DK + d]);
        }}
        float qscale = SCALE, kscale = 1.0f;
        if (L2NORM) {{
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (tid % 32 == 0) {{ red[0][tid / 32] = sq; red[1][tid / 32] = sk; }}
        }}
        __syncthreads();
        if (L2NORM) {{
            float tq = 0.0f, tk = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) {{ tq += red[0][w]; tk += red[1][w]; }}
            qscale *= rsqrtf(tq + 1e-6f);
            kscale = rsqrtf(tk + 1e-6f);
        }}
        const float a = PER_CHANNEL ? 1.0f : expf(g[row * HV + hv]);
        const float bt = beta[row * HV + hv];
        const float vj = active ? bf2f(v[row * v_stride + hv * DV + j]) : 0.0f;
        float kv = 0.0f;
#pragma unroll
        for (int d = 0; d < DK; ++d) {{
            s[d] *= PER_CHANNEL ? as_[d] : a;
            kv = fmaf(s[d], ks[d], kv);
        }}
        const float u = bt * (vj - kv * kscale) * kscale;
        /* A barrier makes the compiler reload ks/qs from shared memory below instead of keeping
         * Dk of them live next to the Dk state registers (which spilled at Dk = 128). */
        __syncthreads();
        float oj = 0.0f;
#pragma unroll
        for (int d = 0; d < DK; ++d) {{
            s[d] = fmaf(ks[d], u, s[d]);
            oj = fmaf(s[d], qs[d], oj);
        }}
        if (active) o[row * o_stride + hv * DV + j] = f2bf(oj * qscale);
        __syncthreads(); /* qs/ks/as_/red are rewritten by the next token */
    }}
    if (state_out && active) {{
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }}
}}
"#,
        desc = describe(p),
        bv = p.value_block,
        consts = constants(p),
    );
    Ok(finish(&[&format!("delta_rule_recurrent_{HASH}")], body))
}

/// Dynamic shared memory of [`delta_rule_chunked`], in bytes.
pub fn delta_rule_chunked_smem(p: &DeltaRuleParams) -> u32 {
    let c = p.chunk;
    let dk = p.key_dim;
    let g = match p.gate {
        DecayGate::Scalar => c,
        DecayGate::PerChannel => c * dk,
    };
    // qn, kn, kh [C][Dk+1]; G; L, QK [C][C]; beta [C]; glast, eglast [Dk]; u [C][BV]; red [2][C].
    let floats = 3 * c * (dk + 1) + g + 2 * c * c + c + 2 * dk + c * p.value_block + 2 * c;
    u32::try_from(floats * 4).unwrap_or(u32::MAX)
}

/// Emits `delta_rule_chunked_<hash>`: the chunked (WY / UT-transform) prefill. Any T ≥ 1; the
/// last chunk may be partial.
///
/// Kernel arguments: as [`delta_rule_recurrent`]. Launch with [`delta_rule_launch`] and
/// [`delta_rule_chunked_smem`] bytes of dynamic shared memory.
///
/// Per chunk of C tokens, with `G_t` the in-chunk cumulative log-decay, `k̃_t = e^{G_t}⊙k_t`,
/// `q̃_t = e^{G_t}⊙q_t`, `k̂_t = e^{G_last − G_t}⊙k_t`, `L[t,s] = β_t Σ_d k_t,d k_s,d e^{G_t,d − G_s,d}`
/// (s < t) and `QK[t,s] = Σ_d q_t,d k_s,d e^{G_t,d − G_s,d}` (s ≤ t):
/// `u = (I + L)⁻¹·diag(β)(V − K̃ S)` by forward substitution, `o_t = Sᵀq̃_t + Σ_{s≤t} QK[t,s] u_s`,
/// `S ← e^{G_last}⊙S + K̂ᵀU`. Only non-positive differences of G are exponentiated.
pub fn delta_rule_chunked(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    validate(p, "delta_rule_chunked")?;
    check("delta_rule_chunked", (1..=64).contains(&p.chunk), || {
        format!("chunk {} must be in 1..=64", p.chunk)
    })?;
    let body = format!(
        r#"/*
 * delta_rule_chunked_{HASH}: gated delta rule, chunked (WY representation / UT transform).
 *   {desc}, chunk C = {c}.
 *   Per chunk: G = in-chunk cumsum of g; L[t,s] = beta_t sum_d k_td k_sd e^(G_td - G_sd) (s < t);
 *   QK[t,s] = sum_d q_td k_sd e^(G_td - G_sd) (s <= t); u = (I + L)^-1 diag(beta) (V - (e^G k) S);
 *   o_t = S^T (e^G_t q_t) + sum_(s<=t) QK[t,s] u_s; S <- e^G_last S + (e^(G_last - G) k)^T u.
 *   Tokens past T in the last chunk are zero with beta = 0 and g = 0, so they change nothing.
{LAYOUTS}
 * Grid (ceil(Dv/BV), Hv, B), block BV = {bv}, dynamic smem = delta_rule_chunked_smem() bytes.
 *   Thread j keeps column j of S in registers; chunks run in sequence inside the block.
 *   Threads with j >= Dv (VTAIL) keep a zero column: they help with the setup, their u is 0.
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({bv}) delta_rule_chunked_{HASH}(
    {ARGS})
{{
{consts}    constexpr int C = {c};
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

    for (int c0 = 0; c0 < T; c0 += C) {{
        const int cn = min(C, T - c0);
        /* 1. load the chunk (zeros past T) */
        for (int i = tid; i < C * DK; i += BV) {{
            const int t = i / DK, d = i % DK;
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            qn[t * DKP + d] = ok ? bf2f(q[row * q_stride + hk * DK + d]) : 0.0f;
            kn[t * DKP + d] = ok ? bf2f(k[row * k_stride + hk * DK + d]) : 0.0f;
            if (PER_CHANNEL) Gs[t * DK + d] = ok ? g[row * HV * DK + hv * DK + d] : 0.0f;
        }}
        for (int t = tid; t < C; t += BV) {{
            const long row = b * T + c0 + t;
            const bool ok = t < cn;
            bs[t] = ok ? beta[row * HV + hv] : 0.0f;
            if (!PER_CHANNEL) Gs[t] = ok ? g[row * HV + hv] : 0.0f;
        }}
        __syncthreads();
        /* 2. row norms (one warp per row) and the in-chunk cumulative decay */
        for (int t = tid / 32; t < C; t += NWARP) {{
            float sq = 0.0f, sk = 0.0f;
            for (int d = tid % 32; d < DK; d += 32) {{
                sq += qn[t * DKP + d] * qn[t * DKP + d];
                sk += kn[t * DKP + d] * kn[t * DKP + d];
            }}
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (tid % 32 == 0) {{
                nrm[t] = L2NORM ? SCALE * rsqrtf(sq + 1e-6f) : SCALE;
                nrm[C + t] = L2NORM ? rsqrtf(sk + 1e-6f) : 1.0f;
            }}
        }}
        if (PER_CHANNEL) {{
            for (int d = tid; d < DK; d += BV) {{
                float acc = 0.0f;
                for (int t = 0; t < C; ++t) {{ acc += Gs[t * DK + d]; Gs[t * DK + d] = acc; }}
                gl[d] = acc;
            }}
        }} else if (tid == 0) {{
            float acc = 0.0f;
            for (int t = 0; t < C; ++t) {{ acc += Gs[t]; Gs[t] = acc; }}
            gl[0] = acc;
        }}
        __syncthreads();
        for (int i = tid; i < C * DK; i += BV) {{
            const int t = i / DK, d = i % DK;
            qn[t * DKP + d] *= nrm[t];
            kn[t * DKP + d] *= nrm[C + t];
        }}
        __syncthreads();
        /* 3. L (strictly lower, scaled by beta_t) and QK (lower with diagonal) */
        for (int i = tid; i < C * C; i += BV) {{
            const int t = i / C, r = i % C;
            float lk = 0.0f, lq = 0.0f;
            if (r <= t) {{
                if (PER_CHANNEL) {{
                    for (int d = 0; d < DK; ++d) {{
                        const float e = expf(Gs[t * DK + d] - Gs[r * DK + d]);
                        const float kr = kn[r * DKP + d] * e;
                        lk = fmaf(kn[t * DKP + d], kr, lk);
                        lq = fmaf(qn[t * DKP + d], kr, lq);
                    }}
                }} else {{
                    for (int d = 0; d < DK; ++d) {{
                        lk = fmaf(kn[t * DKP + d], kn[r * DKP + d], lk);
                        lq = fmaf(qn[t * DKP + d], kn[r * DKP + d], lq);
                    }}
                    const float e = expf(Gs[t] - Gs[r]);
                    lk *= e;
                    lq *= e;
                }}
            }}
            Lm[i] = r < t ? bs[t] * lk : 0.0f;
            QK[i] = lq;
        }}
        __syncthreads();
        /* 4. decay the rows: q <- e^G q, k <- e^G k, kh = e^(G_last - G) k */
        for (int i = tid; i < C * DK; i += BV) {{
            const int t = i / DK, d = i % DK;
            const float gt = PER_CHANNEL ? Gs[t * DK + d] : Gs[t];
            const float glast = PER_CHANNEL ? gl[d] : gl[0];
            const float e = expf(gt);
            const float kv = kn[t * DKP + d];
            qn[t * DKP + d] *= e;
            kn[t * DKP + d] = kv * e;
            kh[t * DKP + d] = kv * expf(glast - gt);
        }}
        for (int d = tid; d < DK; d += BV) egl[d] = expf(PER_CHANNEL ? gl[d] : gl[0]);
        __syncthreads();
        /* 5. thread-local: u by forward substitution, outputs, state update. Token loops stay
         *    rolled (only the Dk loops over the register column unroll), to bound code size. */
#pragma unroll 1
        for (int t = 0; t < C; ++t) {{
            float ks = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) ks = fmaf(kn[t * DKP + d], s[d], ks);
            const float vj = t < cn && active ? bf2f(v[(b * T + c0 + t) * v_stride + hv * DV + j]) : 0.0f;
            float u = bs[t] * (vj - ks);
#pragma unroll 1
            for (int r = 0; r < t; ++r) u = fmaf(-Lm[t * C + r], us[r * BV + tid], u);
            us[t * BV + tid] = u;
        }}
#pragma unroll 1
        for (int t = 0; t < cn; ++t) {{
            float acc = 0.0f;
#pragma unroll
            for (int d = 0; d < DK; ++d) acc = fmaf(qn[t * DKP + d], s[d], acc);
#pragma unroll 1
            for (int r = 0; r <= t; ++r) acc = fmaf(QK[t * C + r], us[r * BV + tid], acc);
            if (active) o[(b * T + c0 + t) * o_stride + hv * DV + j] = f2bf(acc);
        }}
#pragma unroll
        for (int d = 0; d < DK; ++d) s[d] *= egl[d];
#pragma unroll 1
        for (int t = 0; t < C; ++t) {{
            const float ut = us[t * BV + tid];
#pragma unroll
            for (int d = 0; d < DK; ++d) s[d] = fmaf(kh[t * DKP + d], ut, s[d]);
        }}
        __syncthreads(); /* the next chunk overwrites shared memory */
    }}
    if (state_out && active) {{
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }}
}}
"#,
        desc = describe(p),
        c = p.chunk,
        bv = p.value_block,
        consts = constants(p),
    );
    Ok(finish(&[&format!("delta_rule_chunked_{HASH}")], body))
}

/// Launch geometry of both delta-rule kernels for `batch` sequences; `smem` is
/// [`delta_rule_chunked_smem`] for the chunked kernel and 0 for the recurrent one.
pub fn delta_rule_launch(p: &DeltaRuleParams, batch: usize, smem: u32) -> Launch {
    Launch::new(
        (blocks(p.value_dim, p.value_block), dim(p.value_heads), dim(batch)),
        (dim(p.value_block), 1, 1),
        smem,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_gdn_and_kda_shapes() {
        let gdn = DeltaRuleParams::new(8, 32, 64, 64, DecayGate::Scalar);
        let kda = DeltaRuleParams::new(16, 16, 128, 128, DecayGate::PerChannel);
        for p in [gdn, kda] {
            assert!(delta_rule_recurrent(&p).is_ok());
            assert!(delta_rule_chunked(&p).is_ok());
        }
        // C=16, Dk=Dv=128, BV=64: comfortably inside the 48 KiB default.
        assert!(delta_rule_chunked_smem(&kda) < 48 * 1024);
    }

    #[test]
    fn rejects_unsupported_shapes() {
        let mut p = DeltaRuleParams::new(8, 32, 256, 64, DecayGate::Scalar);
        let err = delta_rule_recurrent(&p).unwrap_err();
        assert!(err.to_string().contains("limit of 128"), "{err}");
        p.key_dim = 0;
        assert!(delta_rule_chunked(&p).is_err());
        p.key_dim = 64;
        for value_block in [0, 16, 48, 160] {
            assert!(delta_rule_chunked(&DeltaRuleParams { value_block, ..p }).is_err());
        }
        assert!(delta_rule_recurrent(&DeltaRuleParams { value_dim: 0, ..p }).is_err());
        p.key_dim = 64;
        p.value_heads = 30;
        assert!(delta_rule_chunked(&p).is_err());
        p.value_heads = 32;
        p.chunk = 0;
        assert!(delta_rule_chunked(&p).is_err());
        assert!(
            delta_rule_recurrent(&p).is_ok(),
            "the recurrent kernel ignores the chunk"
        );
    }

    #[test]
    fn small_and_ragged_dims_are_accepted() {
        for (dk, dv) in [(1, 1), (8, 8), (16, 16), (8, 24), (24, 8), (128, 8), (16, 96), (32, 80)] {
            for gate in [DecayGate::Scalar, DecayGate::PerChannel] {
                let p = DeltaRuleParams::new(2, 4, dk, dv, gate);
                let tail = !dv.is_multiple_of(p.value_block);
                for src in [delta_rule_chunked(&p).unwrap(), delta_rule_recurrent(&p).unwrap()] {
                    assert!(src.source.contains("constexpr bool VTAIL = DV % BV != 0;"));
                    assert!(src.source.contains("const bool active = !VTAIL || j < DV;"));
                }
                // The launch covers every column with whole warps.
                let l = delta_rule_launch(&p, 1, 0);
                assert!(l.grid.0 as usize * p.value_block >= dv, "Dv {dv}");
                assert!((l.grid.0 as usize - 1) * p.value_block < dv, "Dv {dv}: an empty block");
                assert!(p.value_block.is_multiple_of(32));
                assert_eq!(tail, dv % p.value_block != 0);
            }
        }
    }

    #[test]
    fn default_value_blocks() {
        // Unchanged for the usual sizes; small ones round up to one warp.
        for (dv, bv) in [
            (1, 32),
            (8, 32),
            (16, 32),
            (32, 32),
            (48, 64),
            (64, 64),
            (80, 32),
            (96, 32),
            (128, 64),
            (256, 64),
        ] {
            assert_eq!(default_value_block(dv), bv, "Dv {dv}");
        }
    }

    #[test]
    fn chunk_size_changes_the_chunked_kernel_only() {
        let a = DeltaRuleParams::new(4, 4, 64, 64, DecayGate::PerChannel);
        let b = DeltaRuleParams { chunk: 32, ..a };
        assert_ne!(
            delta_rule_chunked(&a).unwrap().name(),
            delta_rule_chunked(&b).unwrap().name()
        );
        // The recurrent source does not mention the chunk, but hashes the whole text: equal here.
        assert_eq!(
            delta_rule_recurrent(&a).unwrap().name(),
            delta_rule_recurrent(&b).unwrap().name()
        );
    }
}
