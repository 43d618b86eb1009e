//! The single-kernel chunked prefill: the SIMT form and the tensor-core form (`delta_rule_tc.cu`).

use super::*;

const CHUNKED_NORM_DOC: &str = "
 *   Epilogue: one block per head (BV >= Dv). Step 5 keeps each token's o (f32) in ob and the
 *   per-warp sums of o^2 in nss; after the chunk's last barrier every thread adds the partials
 *   in warp order and stores its normalised, gated columns. The next chunk rewrites ob/nss only
 *   in its step 5, behind its own barriers, so the epilogue adds no barrier.";

const CHUNKED_NORM_SMEM: &str =
    "    float* ob = nrm + 2 * C;           /* [C][BV] o in f32, one column per thread (epilogue) */
    float* nss = ob + C * BV;          /* [C][NWARP] per-warp sums of o^2 (epilogue)        */
";

/// Chunked epilogue, in the output loop: o kept in f32, its square summed per warp (the loop
/// runs to the block-uniform `cn`, so every lane reaches the shuffle).
const CHUNKED_NORM_PARTIAL: &str =
    "            /* Gated RMSNorm epilogue, part 1: threads without a value column add 0. */
            const float ov = active ? acc : 0.0f;
            ob[t * BV + tid] = ov;
            const float ss = warp_sum(ov * ov);
            if (tid % 32 == 0) nss[t * NWARP + tid / 32] = ss;";

/// Chunked epilogue, after the chunk's last barrier: per token, the block's sum in warp order
/// and the store of the thread's column.
const CHUNKED_NORM_STORE: &str =
    "        /* Gated RMSNorm epilogue, part 2: every thread adds the partials in warp order. */
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
                o[row * o_stride + hv * DV + j] = f2bf(ob[t * BV + tid] * rn * wj * @ACT@);
            }
        }
";

/// Dynamic shared memory of [`delta_rule_chunked`], in bytes (either form).
pub fn delta_rule_chunked_smem(p: &DeltaRuleParams) -> u32 {
    if delta_rule_tensor_cores(p) {
        tc_smem(p)
    } else {
        simt_smem(p)
    }
}

/// Shared memory of the SIMT form of the chunked kernel.
fn simt_smem(p: &DeltaRuleParams) -> u32 {
    let c = p.chunk;
    let dk = p.key_dim;
    let g = match p.gate {
        DecayGate::Scalar => c,
        DecayGate::PerChannel => c * dk,
    };
    // qn, kn, kh [C][Dk+1]; G; L, QK [C][C]; beta [C]; glast, eglast [Dk]; u [C][BV]; red [2][C].
    let floats = 3 * c * (dk + 1) + g + 2 * c * c + c + 2 * dk + c * p.value_block + 2 * c;
    // The epilogue's o [C][BV] and per-warp sums [C][BV/32].
    let norm = match p.gated_norm {
        Some(_) => c * p.value_block + c * (p.value_block / 32),
        None => 0,
    };
    u32::try_from((floats + norm) * 4).unwrap_or(u32::MAX)
}

/// Emits `delta_rule_chunked_<hash>`: the chunked (WY / UT-transform) prefill. Any T ≥ 1; the
/// last chunk may be partial. Shapes that [`delta_rule_tensor_cores`] accepts get the
/// tensor-core form (64-token chunks, `p.chunk` ignored); the others the SIMT form below.
///
/// Kernel arguments: as [`delta_rule_recurrent`]. Launch with [`delta_rule_chunked_launch`].
pub fn delta_rule_chunked(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    validate(p, "delta_rule_chunked")?;
    check("delta_rule_chunked", (1..=64).contains(&p.chunk), || {
        format!("chunk {} must be in 1..=64", p.chunk)
    })?;
    if delta_rule_tensor_cores(p) {
        return Ok(tensor_core_kernel(p));
    }
    simt_kernel(p)
}

/// The SIMT form of [`delta_rule_chunked`]: one thread per value column, state in registers.
///
/// Per chunk of C tokens, with `G_t` the in-chunk cumulative log-decay, `k̃_t = e^{G_t}⊙k_t`,
/// `q̃_t = e^{G_t}⊙q_t`, `k̂_t = e^{G_last − G_t}⊙k_t`, `L[t,s] = β_t Σ_d k_t,d k_s,d e^{G_t,d − G_s,d}`
/// (s < t) and `QK[t,s] = Σ_d q_t,d k_s,d e^{G_t,d − G_s,d}` (s ≤ t):
/// `u = (I + L)⁻¹·diag(β)(V − K̃ S)` by forward substitution, `o_t = Sᵀq̃_t + Σ_{s≤t} QK[t,s] u_s`,
/// `S ← e^{G_last}⊙S + K̂ᵀU`. Only non-positive differences of G are exponentiated.
fn simt_kernel(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    let smem = simt_smem(p);
    check("delta_rule_chunked", smem <= DELTA_MAX_SMEM, || {
        format!(
            "{smem} bytes of shared memory exceed the {DELTA_MAX_SMEM} a block may have (smaller chunk or value_block)"
        )
    })?;
    let body = format!(
        r#"/*
 * delta_rule_chunked_{HASH}: gated delta rule, chunked (WY representation / UT transform).
 *   {desc}, chunk C = {c}.{norm_line}
 *   Per chunk: G = in-chunk cumsum of g; L[t,s] = beta_t sum_d k_td k_sd e^(G_td - G_sd) (s < t);
 *   QK[t,s] = sum_d q_td k_sd e^(G_td - G_sd) (s <= t); u = (I + L)^-1 diag(beta) (V - (e^G k) S);
 *   o_t = S^T (e^G_t q_t) + sum_(s<=t) QK[t,s] u_s; S <- e^G_last S + (e^(G_last - G) k)^T u.
 *   Tokens past T in the last chunk are zero with beta = 0 and g = 0, so they change nothing.
{layouts}
 * Grid (ceil(Dv/BV), Hv, B), block BV = {bv}, dynamic smem = delta_rule_chunked_smem() bytes.
 *   Thread j keeps column j of S in registers; chunks run in sequence inside the block.
 *   Threads with j >= Dv (VTAIL) keep a zero column: they help with the setup, their u is 0.{norm_doc}
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({bv}) delta_rule_chunked_{HASH}(
    {args})
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
{norm_smem}
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
{store}
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
{norm_store}    }}
    if (state_out && active) {{
#pragma unroll
        for (int d = 0; d < DK; ++d) state_out[sbase + (long)d * DV] = s[d];
    }}
}}
"#,
        desc = describe(p),
        norm_line = describe_norm(p),
        layouts = layouts(p),
        c = p.chunk,
        bv = p.value_block,
        args = args(p),
        consts = constants(p) + &norm_constants(p),
        norm_doc = if p.gated_norm.is_some() { CHUNKED_NORM_DOC } else { "" },
        norm_smem = if p.gated_norm.is_some() { CHUNKED_NORM_SMEM } else { "" },
        store = match p.gated_norm {
            None => "            if (active) o[(b * T + c0 + t) * o_stride + hv * DV + j] = f2bf(acc);",
            Some(_) => CHUNKED_NORM_PARTIAL,
        },
        norm_store = match p.gated_norm {
            None => String::new(),
            Some(n) => CHUNKED_NORM_STORE.replace("@ACT@", &gate_act(n.act, "zj")),
        },
    );
    Ok(finish(&[&format!("delta_rule_chunked_{HASH}")], body))
}

/// Tokens per chunk of the tensor-core form.
pub const DELTA_TC_CHUNK: usize = 64;

/// The tensor-core form's kernel text; `@THREADS@`, `@ARGS@`, `@CONSTS@` and `@STORE@` are
/// filled in by [`tensor_core_kernel`].
const TC_KERNEL: &str = concat!(
    include_str!("delta_rule_tc_helpers.cu"),
    include_str!("delta_rule_tc.cu")
);

/// Fragment loads and staging shared by the tensor-core kernels (their own include guard).
pub(super) const TC_HELPERS: &str = include_str!("delta_rule_tc_helpers.cu");

/// The tensor-core form's output store without the epilogue.
const TC_STORE: &str = "#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int t = 16 * mr + r4 + 8 * h;
                if (t < cn)
#pragma unroll
                    for (int x = 0; x < 2; ++x)
                        o[(row0 + t) * o_stride + hv * DV + j0 + cg * BVW + 8 * n + c4 + x] = f2bf(acc[n][2 * h + x]);
            }";

/// The gated RMSNorm epilogues' common start (tensor-core and chunk-parallel forms, whose warps
/// hold o in the same fragments): opens a block and, per fragment row half `h`, row `t` and its
/// scale `rn`, opens the loop the store tails ([`TC_NORM_STORE`], [`CP_NORM_STORE`]) close.
pub(super) const TC_NORM_ROW_SCALES: &str = "        {
            /* Gated RMSNorm epilogue: a row's sum of o^2 over the 4 lanes of its quad (a fixed
             * butterfly), then over the column groups in order; o stays f32 until the store. */
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float ss = 0.0f;
#pragma unroll
                for (int n = 0; n < NTW; ++n)
                    ss += acc[n][2 * h] * acc[n][2 * h] + acc[n][2 * h + 1] * acc[n][2 * h + 1];
                ss += __shfl_xor_sync(0xffffffffu, ss, 1);
                ss += __shfl_xor_sync(0xffffffffu, ss, 2);
                if ((lane & 3) == 0) nss[cg * C + 16 * mr + r4 + 8 * h] = ss;
            }
            __syncthreads();
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int t = 16 * mr + r4 + 8 * h;
                float tot = 0.0f;
#pragma unroll
                for (int w = 0; w < NW / 4; ++w) tot += nss[w * C + t];
                const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
";

/// The tensor-core form's gated RMSNorm store, after [`TC_NORM_ROW_SCALES`] (one block per
/// head, so `j0 = 0`).
const TC_NORM_STORE: &str = "                if (t < cn)
#pragma unroll
                    for (int n = 0; n < NTW; ++n)
#pragma unroll
                        for (int x = 0; x < 2; ++x) {
                            const int col = j0 + cg * BVW + 8 * n + c4 + x;
                            const float zj = bf2f(gate[(row0 + t) * gate_stride + hv * DV + col]);
                            o[(row0 + t) * o_stride + hv * DV + col] =
                                f2bf(acc[n][2 * h + x] * rn * norm_w[col] * @ACT@);
                        }
            }
        }";

/// Whether [`delta_rule_chunked`] takes the tensor-core form for `p`: Dk a multiple of 16
/// (16..=128, the k tiles of mma m16n8k16), BV ∈ {32, 64, 96, 128} dividing Dv (whole n tiles
/// per warp, no idle columns) and the shared memory within a block's limit. Needs sm_80+.
pub fn delta_rule_tensor_cores(p: &DeltaRuleParams) -> bool {
    p.key_dim.is_multiple_of(16)
        && (16..=DELTA_MAX_KEY_DIM).contains(&p.key_dim)
        && matches!(p.value_block, 32 | 64 | 96 | 128)
        && p.value_dim.is_multiple_of(p.value_block)
        && tc_smem(p) <= DELTA_MAX_SMEM
}

/// Threads of the tensor-core form: 4 warps (one per 16-row tile of a chunk) per column group
/// of at most 64 value columns.
fn tc_threads(p: &DeltaRuleParams) -> usize {
    if p.value_block <= 64 {
        128
    } else {
        256
    }
}

/// Shared memory of the tensor-core form (the layout at the top of `delta_rule_tc.cu`).
fn tc_smem(p: &DeltaRuleParams) -> u32 {
    let (c, dk, bv) = (DELTA_TC_CHUNK, p.key_dim, p.value_block);
    let groups = tc_threads(p) / 128;
    let (kp, vp, ap, fp) = (dk + 8, bv + 8, c + 8, c + 1);
    let ng = match p.gate {
        DecayGate::Scalar => c,
        DecayGate::PerChannel => c * dk,
    };
    // Kept through a chunk: q e^G, k e^G, k e^(G_last - G) [C][KP], S [DK][VP], A_qk [C][AP]
    // (bf16); L [C][FP], row scales and beta [3][C], e^G_last [DK], norm sums [groups][C] (f32);
    // flags (16 bytes).
    let kept = (3 * c * kp + dk * vp + c * ap) * 2 + c * fp * 4 + (3 * c + dk + groups * c) * 4 + 16;
    // Phase A: G (f32), q, k and the 4 + 3 + 2 + 1 column blocks of Kc (bf16). Phase B, over
    // it: (I + L)^-1 and a scratch [C][FP] (f32), (I + L)^-1 [C][AP], R and u [C][VP] (bf16).
    let phase_a = ng * 4 + (2 * c + 160) * kp * 2;
    let phase_b = 2 * c * fp * 4 + c * ap * 2 + 2 * c * vp * 2;
    u32::try_from(kept + phase_a.max(phase_b)).unwrap_or(u32::MAX)
}

/// The tensor-core form of [`delta_rule_chunked`] (`p` passed [`delta_rule_tensor_cores`]).
fn tensor_core_kernel(p: &DeltaRuleParams) -> KernelSource {
    let threads = tc_threads(p);
    let header = format!(
        r#"/*
 * delta_rule_chunked_{HASH}: gated delta rule, chunked (WY representation / UT transform), on
 *   tensor cores (mma.sync m16n8k16 bf16 -> f32, ldmatrix, cp.async; sm_80+).
 *   {desc}, chunk C = {c}.{norm_line}
 *   Fuses the q/k l2 norm and scale, the in-chunk cumsum of g, the intra-chunk products, the
 *   UT solve and the state scan{norm_fused}. Per chunk, with G the in-chunk cumsum of g:
 *   A_qk[t,s] = sum_d q_td k_sd e^(G_td - G_sd) (s <= t), L[t,s] = beta_t sum_d k_td k_sd
 *   e^(G_td - G_sd) (s < t): 16-row block i against the columns up to its end, with the
 *   factors (x e^(G - G_r)) (k e^(G_r - G)), r = 16 i (fla's chunk_kda), all <= 1 off the
 *   diagonal blocks; a diagonal block whose decay span passes 2^64 is summed exactly instead.
 *   (I + L)^-1 in f32 (16x16 blocks by substitution, then by distance); R = diag(beta)
 *   (V - (e^G k) S); u = (I + L)^-1 R; o = (e^G q) S + A_qk u; S <- e^G_last S +
 *   (e^(G_last - G) k)^T u. Products on tensor cores with bf16 operands and f32 accumulators;
 *   the state stays in f32 accumulators (a bf16 copy in shared memory feeds the products).
 *   Tokens past T in the last chunk are zero with beta = 0 and g = 0, so they change nothing.
{layouts}
 * Grid (Dv/BV, Hv, B), block {threads} threads = 4 row tiles x {groups} column group(s) of warps,
 *   BV = {bv}, dynamic smem = delta_rule_chunked_smem() bytes. Deterministic: fixed reduction
 *   orders, no atomics on data. Requires Dk % 16 == 0 (<= 128) and BV | Dv.
 */
{PRELUDE}{MMA_PRELUDE}"#,
        desc = describe(p),
        norm_line = describe_norm(p),
        norm_fused = if p.gated_norm.is_some() {
            " and the gated RMSNorm"
        } else {
            ""
        },
        c = DELTA_TC_CHUNK,
        layouts = layouts(p),
        groups = threads / 128,
        bv = p.value_block,
    );
    let store = match p.gated_norm {
        None => TC_STORE.to_string(),
        Some(n) => format!("{TC_NORM_ROW_SCALES}{TC_NORM_STORE}").replace("@ACT@", &gate_act(n.act, "zj")),
    };
    let body = TC_KERNEL
        .replace("@THREADS@", &threads.to_string())
        .replace("@ARGS@", &args(p))
        .replace("@CONSTS@", &(constants(p) + &norm_constants(p)))
        .replace("@STORE@", &store)
        .replace("@HASH@", HASH);
    finish(&[&format!("delta_rule_chunked_{HASH}")], header + &body)
}

/// Launch geometry of the chunked kernel for `batch` sequences (either form): the grid of
/// [`delta_rule_launch`], the form's threads and [`delta_rule_chunked_smem`] bytes.
pub fn delta_rule_chunked_launch(p: &DeltaRuleParams, batch: usize) -> Launch {
    let threads = if delta_rule_tensor_cores(p) {
        tc_threads(p)
    } else {
        p.value_block
    };
    Launch::new(
        (blocks(p.value_dim, p.value_block), dim(p.value_heads), dim(batch)),
        (dim(threads), 1, 1),
        delta_rule_chunked_smem(p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tensor-core form takes Dk in 16..=128 in steps of 16 and BV in {32, 64, 96, 128}
    /// dividing Dv; its launch has 128 threads per 64 columns, the recurrent kernel's grid.
    #[test]
    fn tensor_core_form_selection_and_launch() {
        for (dk, dv, tc) in [
            (16, 32, true),
            (64, 96, true),
            (128, 128, true),
            (24, 64, false),
            (128, 80, false),
        ] {
            for gate in [DecayGate::Scalar, DecayGate::PerChannel] {
                let p = DeltaRuleParams::new(2, 4, dk, dv, gate);
                assert_eq!(delta_rule_tensor_cores(&p), tc, "Dk {dk} Dv {dv}");
                let src = delta_rule_chunked(&p).unwrap();
                assert_eq!(src.source.contains("mma.sync"), tc, "Dk {dk} Dv {dv}");
                let l = delta_rule_chunked_launch(&p, 3);
                assert_eq!(l.grid, delta_rule_launch(&p, 3, 0).grid);
                assert_eq!(l.smem, delta_rule_chunked_smem(&p));
                let threads = if !tc {
                    p.value_block
                } else if p.value_block <= 64 {
                    128
                } else {
                    256
                };
                assert_eq!(l.block.0 as usize, threads, "Dk {dk} Dv {dv}");
                assert!(src.source.contains(&format!("__launch_bounds__({threads})")));
            }
        }
        // One block per head with the epilogue: Dv = 128 in 256 threads.
        let norm = DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(SILU);
        assert_eq!(delta_rule_chunked_launch(&norm, 1).block.0, 256);
        assert_eq!(delta_rule_chunked_launch(&norm, 1).grid.0, 1);
    }

    #[test]
    fn chunk_size_changes_the_chunked_kernel_only() {
        // The SIMT form (Dk = 48 + 8); the tensor-core form always uses 64-token chunks.
        let tc = DeltaRuleParams::new(4, 4, 64, 64, DecayGate::PerChannel);
        assert_eq!(
            delta_rule_chunked(&tc).unwrap().name(),
            delta_rule_chunked(&DeltaRuleParams { chunk: 32, ..tc }).unwrap().name()
        );
        let a = DeltaRuleParams::new(4, 4, 56, 64, DecayGate::PerChannel);
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

    /// The chunked kernel's shared memory grows by the epilogue's buffers and must fit a block.
    #[test]
    fn chunked_shared_memory_accounts_for_the_epilogue() {
        // The SIMT form (Dk = 120); the tensor-core form always reserves the epilogue's sums.
        let plain = DeltaRuleParams::new(16, 16, 120, 128, DecayGate::PerChannel);
        let fused = plain.with_gated_norm(SILU);
        let wider = DeltaRuleParams {
            value_block: 128,
            ..plain
        };
        // o [C][BV] and the per-warp sums [C][BV/32], in f32.
        let extra = 4 * (16 * 128 + 16 * 4);
        assert_eq!(delta_rule_chunked_smem(&fused), delta_rule_chunked_smem(&wider) + extra);
        // Chunk 64 with Dk = 128 and a 256-wide head no longer fits: rejected, not mis-launched.
        let huge = DeltaRuleParams {
            chunk: 64,
            ..DeltaRuleParams::new(1, 1, 128, 256, DecayGate::PerChannel).with_gated_norm(SILU)
        };
        assert!(delta_rule_chunked_smem(&huge) > DELTA_MAX_SMEM);
        let err = delta_rule_chunked(&huge).unwrap_err();
        assert!(err.to_string().contains("shared memory"), "{err}");
        assert!(
            delta_rule_recurrent(&huge).is_ok(),
            "the recurrent kernel has no chunk buffers"
        );
    }
}
