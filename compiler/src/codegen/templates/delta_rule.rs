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
//!
//! **Gated RMSNorm epilogue** (`gated_norm`, GDN/KDA's output norm, apriel2.md §2.4/§2.5): per
//! token and value head the kernel stores `o·rsqrt(mean_j o_j² + eps)·w_j·act(gate_j)` instead
//! of o, with o still in f32 (the unfused path rounds o to bf16 first). Invariants:
//! - one block spans the head: `BV ≥ Dv` (validated; [`DeltaRuleParams::with_gated_norm`] picks
//!   Dv rounded up to a warp, so `Dv ≤ 256`), the grid has one block along x and thread `tid`
//!   holds column `j = tid`. Larger Dv has no fused form: codegen keeps the glue kernel;
//! - the sum of squares is a fixed-order reduction: `warp_sum` (a fixed butterfly) per warp,
//!   then lane 0's partials added in warp order by every thread, so every thread of the block
//!   gets the same bits. Threads without a value column add 0 and store nothing;
//! - no extra barrier: the per-warp partials (`nred` / `nss`) are written before the
//!   end-of-iteration `__syncthreads` (token or chunk) and read right after it; the next
//!   iteration rewrites them only after passing its own first `__syncthreads`, which no thread
//!   reaches before every thread has finished reading. The warp reductions sit in block-uniform
//!   code (the token loops run to T or to the chunk's `cn`), so all 32 lanes reach them;
//! - the extra arguments (gate pointer + row stride, f32 norm weight `[Dv]`) come last and only
//!   when the option is on: the unfused kernels keep their argument list and source text.
//!
//! **Chunk-parallel form** ([`delta_rule_chunk_parallel`], `delta_rule_cp.cu`; codegen's prefill
//! wherever [`delta_rule_chunk_parallel_supported`]: Dk 32, 64 or 128, Dv a multiple of 32 up to
//! 256): fla's `chunk_kda` split into three launches on one stream, so that only the state scan
//! is serial.
//! `prep` (grid chunks × heads × batch) does everything that needs no state (norms, gate cumsum,
//! A_qk, the UT solve, W = (I+L)⁻¹diag(β)(e^G k), U = (I+L)⁻¹diag(β)v) and writes it to a
//! per-call workspace; `scan` (grid Dv/SBV × heads × batch) carries the state across the
//! chunks, writing each chunk's entering state h and v_new = U − W h; `out` (grid chunks × heads
//! × batch) computes o = (e^G q) h + A_qk v_new over a chunk's full rows, so the gated norm needs
//! no cross-block reduction. Invariants: the workspace holds rows of every chunk, padded rows of
//! a partial last chunk are zero (their inputs are), so no pass reads what an earlier pass did
//! not write (the GPU tests fill it with NaN); every pass sums in a fixed order (no atomics on
//! data), so results are bit-reproducible; the state is read and written by the scan only
//! (in place is fine: each block owns its columns).

use super::{
    blocks, check, dim, f32_lit, finish, splice_once, KernelSource, Launch, TemplateError, CLUSTER_ASYNC_HELPERS,
    CLUSTER_HELPERS, HASH, MBAR_PRELUDE, MMA_PRELUDE, PRELUDE,
};
use crate::spec::GateActivation;

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
    /// Value columns per block (threads per block): a multiple of 32 in 32..=128; with
    /// `gated_norm`, one block per head: a multiple of 32 in `Dv..=256`.
    pub value_block: usize,
    /// Gated RMSNorm applied to o before it is stored; `None` stores o.
    pub gated_norm: Option<GatedNormEpilogue>,
    /// Value columns per block of the chunk-parallel form's state scan
    /// ([`delta_rule_chunk_parallel`]): 16, 32, 64 or 128 dividing Dv. Ignored by the other
    /// kernels.
    pub scan_block: usize,
}

/// The gated RMSNorm epilogue: `o·rsqrt(mean(o²) + eps)·w·act(gate)` over each value head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatedNormEpilogue {
    pub eps: f32,
    pub act: GateActivation,
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
            gated_norm: None,
            scan_block: default_scan_block(value_heads, value_dim),
        }
    }

    /// Turns the gated-norm epilogue on, with one block per head ([`gated_norm_value_block`]).
    pub fn with_gated_norm(self, norm: GatedNormEpilogue) -> Self {
        DeltaRuleParams {
            gated_norm: Some(norm),
            value_block: gated_norm_value_block(self.value_dim),
            ..self
        }
    }
}

/// Largest value dimension the gated-norm epilogue supports: one block of at most 256 threads
/// must hold all value columns of a head (the reduction runs inside the block).
pub const DELTA_NORM_MAX_VALUE_DIM: usize = 256;

/// Largest dynamic shared memory of one block on sm_90 (227 KiB, with the opt-in attribute).
pub const DELTA_MAX_SMEM: u32 = 227 * 1024;

/// Columns per block with the gated-norm epilogue: Dv rounded up to a multiple of 32.
pub fn gated_norm_value_block(value_dim: usize) -> usize {
    value_dim.max(1).next_multiple_of(32)
}

/// Whether a head of `value_dim` columns has a fused gated-norm form.
pub fn gated_norm_supported(value_dim: usize) -> bool {
    (1..=DELTA_NORM_MAX_VALUE_DIM).contains(&value_dim)
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
    check(template, p.value_dim >= 1, || "value_dim must be at least 1".into())?;
    match p.gated_norm {
        None => check(
            template,
            p.value_block.is_multiple_of(32) && (32..=128).contains(&p.value_block),
            || format!("value_block {} must be 32, 64, 96 or 128", p.value_block),
        )?,
        Some(n) => {
            check(template, gated_norm_supported(p.value_dim), || {
                format!(
                    "value_dim {} exceeds the gated-norm epilogue's limit of {DELTA_NORM_MAX_VALUE_DIM} (one \
                     block reduces over a head's value columns)",
                    p.value_dim
                )
            })?;
            check(
                template,
                p.value_block.is_multiple_of(32)
                    && p.value_block >= p.value_dim
                    && p.value_block <= DELTA_NORM_MAX_VALUE_DIM,
                || {
                    format!(
                        "value_block {} must be a multiple of 32 in {}..={DELTA_NORM_MAX_VALUE_DIM} with the \
                         gated-norm epilogue (one block per head)",
                        p.value_block, p.value_dim
                    )
                },
            )?;
            check(template, n.eps.is_finite() && n.eps >= 0.0, || {
                format!("gated-norm eps {} must be finite and non-negative", n.eps)
            })?;
        }
    }
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

/// The arguments the gated-norm epilogue appends.
const NORM_ARGS: &str = ",
    const bf16* __restrict__ gate, int gate_stride, const float* __restrict__ norm_w";

/// The argument list of both kernels for `p`.
fn args(p: &DeltaRuleParams) -> String {
    match p.gated_norm {
        None => ARGS.to_string(),
        Some(_) => format!("{ARGS}{NORM_ARGS}"),
    }
}

/// The epilogue's constants (empty without it, so the unfused sources are unchanged).
fn norm_constants(p: &DeltaRuleParams) -> String {
    match p.gated_norm {
        None => String::new(),
        Some(n) => format!("    constexpr float NORM_EPS = {};\n", f32_lit(n.eps)),
    }
}

/// `act(z)` of the gate as a C expression.
pub(super) fn gate_act(act: GateActivation, z: &str) -> String {
    match act {
        GateActivation::Silu => format!("silu_f({z})"),
        GateActivation::Sigmoid => format!("(1.0f / (1.0f + expf(-{z})))"),
    }
}

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

/// The epilogue's line of the kernel comment (empty without it).
fn describe_norm(p: &DeltaRuleParams) -> String {
    match p.gated_norm {
        None => String::new(),
        Some(n) => format!(
            "\n *   Gated RMSNorm epilogue: o <- o * rsqrt(mean_head(o^2) + {}) * norm_w * {}",
            f32_lit(n.eps),
            gate_act(n.act, "gate")
        ),
    }
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

/// [`LAYOUTS`], plus the epilogue's inputs when it is on.
fn layouts(p: &DeltaRuleParams) -> String {
    match p.gated_norm {
        None => LAYOUTS.to_string(),
        Some(_) => format!(
            "{LAYOUTS}\n *   gate [B,T,Hv*Dv] bf16 rows with stride gate_stride; norm_w [Dv] f32 (the norm's weight)."
        ),
    }
}

const RECURRENT_NORM_DOC: &str = "
 *   Epilogue: one block per head (BV >= Dv); the per-warp sums of o^2 go to nred before the
 *   token's last barrier and are read after it (the next token rewrites nred only after its
 *   first barrier), so the epilogue adds no barrier.";

/// Recurrent epilogue, before the token's last barrier: o in f32, its square summed per warp.
const RECURRENT_NORM_PARTIAL: &str =
    "        /* Gated RMSNorm epilogue, part 1: threads without a value column add 0. */
        const float ov = active ? oj * qscale : 0.0f;
        const float zj = active ? bf2f(gate[row * gate_stride + hv * DV + j]) : 0.0f;
        const float wj = active ? norm_w[j] : 0.0f;
        {
            const float ss = warp_sum(ov * ov);
            if (tid % 32 == 0) nred[tid / 32] = ss;
        }";

/// Recurrent epilogue, after the token's last barrier: the block's sum in warp order, the store.
const RECURRENT_NORM_STORE: &str = "        {
            /* Gated RMSNorm epilogue, part 2: every thread adds the partials in warp order. */
            float tot = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) tot += nred[w];
            const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
            if (active) o[row * o_stride + hv * DV + j] = f2bf(ov * rn * wj * @ACT@);
        }
";

/// Emits `delta_rule_recurrent_<hash>`: the per-token recurrence, for decode (T = 1) and short
/// prefills.
///
/// Kernel arguments, in order (shared with [`delta_rule_chunked`]):
/// `(const bf16* q, int q_stride, const bf16* k, int k_stride, const bf16* v, int v_stride,
///   const float* g, const float* beta, const float* state_in, float* state_out,
///   bf16* o, int o_stride, int T)`, and with `gated_norm` also
/// `(const bf16* gate, int gate_stride, const float* norm_w)` at the end (o then receives the
/// normalised, gated output).
///
/// Launch with [`delta_rule_launch`] (no dynamic shared memory).
pub fn delta_rule_recurrent(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    validate(p, "delta_rule_recurrent")?;
    let body = format!(
        r#"/*
 * delta_rule_recurrent_{HASH}: gated delta rule, one token at a time.
 *   {desc}.{norm_line}
 *   Per token: S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
{layouts}
 * Grid (ceil(Dv/BV), Hv, B), block BV = {bv}: thread j keeps column j of S (Dk floats) in
 *   registers; threads with j >= Dv (VTAIL) only help with loads and the norm reductions.{norm_doc}
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({bv}) delta_rule_recurrent_{HASH}(
    {args})
{{
{consts}    __shared__ float qs[DK], ks[DK], as_[DK];
    __shared__ float red[2][NWARP];
{norm_smem}    const int tid = threadIdx.x;
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
{store}
        __syncthreads(); /* qs/ks/as_/red are rewritten by the next token */
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
        bv = p.value_block,
        args = args(p),
        consts = constants(p) + &norm_constants(p),
        norm_doc = if p.gated_norm.is_some() { RECURRENT_NORM_DOC } else { "" },
        norm_smem = if p.gated_norm.is_some() {
            "    __shared__ float nred[NWARP]; /* per-warp sums of o^2 (epilogue) */\n"
        } else {
            ""
        },
        store = match p.gated_norm {
            None => "        if (active) o[row * o_stride + hv * DV + j] = f2bf(oj * qscale);".to_string(),
            Some(_) => RECURRENT_NORM_PARTIAL.to_string(),
        },
        norm_store = match p.gated_norm {
            None => String::new(),
            Some(n) => RECURRENT_NORM_STORE.replace("@ACT@", &gate_act(n.act, "zj")),
        },
    );
    Ok(finish(&[&format!("delta_rule_recurrent_{HASH}")], body))
}

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
const TC_HELPERS: &str = include_str!("delta_rule_tc_helpers.cu");

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
const TC_NORM_ROW_SCALES: &str = "        {
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

/// Scan blocks a call of the chunk-parallel form should have at least: the scan is its serial
/// part, so it wants the widest block (fewest redundant W/k reads) that still fills the GPU.
pub const DELTA_CP_SCAN_BLOCKS: usize = 128;

/// Value columns per block of the chunk-parallel scan for `heads` heads of `value_dim`: the
/// widest of 64, 32, 16 dividing Dv that still gives one sequence [`DELTA_CP_SCAN_BLOCKS`] scan
/// blocks (measured on H200, B1 T4096 Dk = Dv = 128: H32 best at 32, H16 at 16). Programs add
/// wider blocks as launch variants for calls of several sequences.
pub fn default_scan_block(heads: usize, value_dim: usize) -> usize {
    [64, 32, 16]
        .into_iter()
        .find(|&s| value_dim.is_multiple_of(s) && (value_dim / s) * heads >= DELTA_CP_SCAN_BLOCKS)
        .unwrap_or(16)
}

/// The chunk-parallel form's three kernels (prep, scan, out), after the tensor-core helpers.
const CP_KERNELS: &str = include_str!("delta_rule_cp.cu");

/// The chunk-parallel output pass's store without the epilogue: o (bf16) into shared memory
/// over v_new, then whole rows out.
const CP_STORE: &str = "    __syncthreads(); /* every warp is done reading v_new */
#pragma unroll
    for (int n = 0; n < NTW; ++n)
#pragma unroll
        for (int h = 0; h < 2; ++h)
            dtc_st2(&Vs[(16 * mr + r4 + 8 * h) * VP + cg * BVW + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
    __syncthreads();
    dcp_store_rows<C, DV, NT>(o + row0 * o_stride + hv * DV, o_stride, Vs, VP, cn, tid);";

/// The gate rows of the chunk-parallel output pass's gated RMSNorm, staged with A_qk and v_new.
const CP_GATE_STAGE: &str =
    "    bf16* Zs = reinterpret_cast<bf16*>(nss + 2 * C);   /* [C][VP] the gate rows             */
    dtc_stage<bf16, C, DV, NT>(Zs, VP, gate + row0 * gate_stride + hv * DV, gate_stride, cn,
                               (reinterpret_cast<unsigned long long>(gate) & 15) == 0 && gate_stride % 8 == 0, tid);
";

/// The chunk-parallel output pass's gated RMSNorm store, after [`TC_NORM_ROW_SCALES`] (whose
/// barrier also ends every warp's reads of v_new): o rounded into shared memory over v_new
/// (with the staged gate), then whole rows out.
const CP_NORM_STORE: &str = "#pragma unroll
                for (int n = 0; n < NTW; ++n) {
                    const int col = cg * BVW + 8 * n + c4;
                    float y[2];
#pragma unroll
                    for (int x = 0; x < 2; ++x) {
                        const float zj = bf2f(Zs[t * VP + col + x]);
                        y[x] = acc[n][2 * h + x] * rn * norm_w[col + x] * @ACT@;
                    }
                    dtc_st2(&Vs[t * VP + col], y[0], y[1]);
                }
            }
            __syncthreads();
            dcp_store_rows<C, DV, NT>(o + row0 * o_stride + hv * DV, o_stride, Vs, VP, cn, tid);
        }";

/// The workspace pointer the chunk-parallel kernels take after the shared arguments.
const CP_WS_ARG: &str = ",\n    float* __restrict__ ws_raw";

/// Whether [`delta_rule_chunk_parallel`] covers `p`: Dk 32, 64 or 128 (the kernels take any
/// multiple of 32; 96, three passes of 32 in the prep, has not run on a GPU), Dv a multiple of 32
/// up to [`DELTA_NORM_MAX_VALUE_DIM`] (the output pass holds a chunk's full rows), a scan block
/// of 16, 32, 64 or 128 dividing Dv, and each pass's shared memory within a block's.
pub fn delta_rule_chunk_parallel_supported(p: &DeltaRuleParams) -> bool {
    validate(p, "delta_rule_chunk_parallel").is_ok()
        && matches!(p.key_dim, 32 | 64 | 128)
        && p.value_dim.is_multiple_of(32)
        && p.value_dim <= DELTA_NORM_MAX_VALUE_DIM
        && matches!(p.scan_block, 16 | 32 | 64 | 128)
        && p.value_dim.is_multiple_of(p.scan_block)
        && delta_rule_cp_smem(p).iter().all(|&s| s <= DELTA_MAX_SMEM)
}

/// Key channels per pass of the `Compact` prep with a per-channel gate (`KH` there).
const CP_COMPACT_PASS_CHANNELS: usize = 32;

/// Key channels per pass of the chunk-parallel prep kernel (`KH` in `delta_rule_cp.cu`; the
/// `Compact` form with a per-channel gate takes [`CP_COMPACT_PASS_CHANNELS`]).
fn cp_prep_pass_channels(key_dim: usize) -> usize {
    if key_dim.is_multiple_of(64) {
        64
    } else {
        32
    }
}

/// Passes of the chunk-parallel prep kernel over the key channels (`NPASS` there).
fn cp_prep_passes(p: &DeltaRuleParams) -> usize {
    p.key_dim / cp_prep_pass_channels(p.key_dim)
}

/// Dynamic shared memory of the chunk-parallel passes `[prep, scan, out]`, in bytes (the
/// layouts at the top of each kernel in `delta_rule_cp.cu`).
pub fn delta_rule_cp_smem(p: &DeltaRuleParams) -> [u32; 3] {
    let (c, dk, dv, sbv) = (DELTA_TC_CHUNK, p.key_dim, p.value_dim, p.scan_block);
    let (kp, vp, ap, sp) = (dk + 8, dv + 8, c + 8, sbv + 8);
    // prep: the default form's layout (`delta_rule_cp_prep_smem`).
    let prep = delta_rule_cp_prep_smem(p, CpPrepVariant::default_for(p)) as usize;
    // scan: h [DK][SP], v_new [C][SP], and three buffers of W, k [C][KP], U [C][SP],
    // e^G_last [DK], and their mbarriers (the cluster entry's).
    let scan = (dk * sp + c * sp + 3 * (2 * c * kp + c * sp)) * 2 + 3 * dk * 4 + 3 * 8;
    // out: q e^G [C][KP], h [DK][VP], A_qk [C][AP], v_new [C][VP] (bf16), the norm's sums [2][C]
    // and, with the norm, its gate rows [C][VP] (bf16).
    let gate_rows = if p.gated_norm.is_some() { c * vp * 2 } else { 0 };
    let out = (c * kp + dk * vp + c * ap + c * vp) * 2 + 2 * c * 4 + gate_rows;
    [prep, scan, out].map(|b| u32::try_from(b).unwrap_or(u32::MAX))
}

/// Dynamic shared memory of the chunk-parallel prep of form `v`: [`delta_rule_cp_smem`]'s, or
/// less for `Compact` (its layouts, `delta_rule_cp_prep/compact_layout.cu` for a scalar gate: k
/// e^G, L, row scales and beta, flags; then g and its factors, the per-block sums, q and k of
/// every pass; or the inverse and v. `compact_layout_channels.cu` for a per-channel gate: the
/// same kept part, then per pass of 32 channels g, its per-block sums, q, k, the reference copies
/// and the exact diagonal blocks; or the inverse and v). A launch of that form with this much fits
/// three blocks an SM at Dk = Dv = 128.
pub fn delta_rule_cp_prep_smem(p: &DeltaRuleParams, v: CpPrepVariant) -> u32 {
    let (c, dk, dv) = (DELTA_TC_CHUNK, p.key_dim, p.value_dim);
    let (kp, vp, ap, fp) = (dk + 8, dv + 8, c + 8, c + 4);
    let compact = v.resolved(p) == CpPrepVariant::Compact;
    let scalar = matches!(p.gate, DecayGate::Scalar);
    let kh = if compact && !scalar {
        CP_COMPACT_PASS_CHANNELS
    } else {
        cp_prep_pass_channels(dk)
    };
    // Kept: k e^G [C][KP] (bf16); L [C][FP], row scales and beta [3][C] (f32), flags; and
    // outside Compact A_qk [C][AP] (bf16).
    let aq_kept = if compact { 0 } else { c * ap * 2 };
    let kept = c * kp * 2 + aq_kept + c * fp * 4 + 3 * c * 4 + 16;
    // Phase A (per pass of KH channels): G [C][KH] per channel, a scalar gate's [C] and its
    // per-row factors [7][C]; per-block sums of g [4][KH]; then the rows of [..][KH + 8]: q, k
    // and the reference copies Kc (160 rows) with the exact diagonal blocks [2][4][16][16]
    // (f32), or for a scalar gate's Compact q and k of every pass.
    let ng = if scalar { 8 * c } else { c * kh };
    let rows = if compact && scalar {
        cp_prep_passes(p) * 2 * c * (kh + 8) * 2
    } else {
        (2 * c + 160) * (kh + 8) * 2 + 2 * 4 * 256 * 4
    };
    let phase_a = ng * 4 + 4 * kh * 4 + rows;
    // Phase B: (I + L)^-1, v; outside Compact a scratch [C][FP] and A bf16 [C][AP] (Compact
    // puts the inverse's products in its upper triangle and A bf16 over L).
    let scratch = if compact { 0 } else { c * fp * 4 + c * ap * 2 };
    let phase_b = c * fp * 4 + c * vp * 2 + scratch;
    let bytes = kept + phase_a.max(phase_b);
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// f32 elements of the chunk-parallel workspace per chunk of 64 tokens and value head
/// (`DcpWs` in `delta_rule_cp.cu`): e^G_last `[Dk]` in f32; q e^G, k e^(G_last - G), W `[C][Dk]`,
/// U, v_new `[C][Dv]`, A_qk `[C][C]` and the state `[Dk][Dv]` in bf16.
pub fn delta_rule_cp_workspace_per_chunk(p: &DeltaRuleParams) -> usize {
    let (c, dk, dv) = (DELTA_TC_CHUNK, p.key_dim, p.value_dim);
    dk + (3 * c * dk + 2 * c * dv + c * c + dk * dv) / 2
}

/// f32 elements of the chunk-parallel workspace for `batch` sequences of `tokens` tokens.
pub fn delta_rule_cp_workspace_len(p: &DeltaRuleParams, batch: usize, tokens: usize) -> usize {
    batch * p.value_heads * tokens.div_ceil(DELTA_TC_CHUNK) * delta_rule_cp_workspace_per_chunk(p)
}

/// Bytes each chunk-parallel pass `[prep, scan, out]` must move to or from DRAM for `batch`
/// sequences of `tokens` tokens: every input it reads (q and k once per key head), every
/// workspace region it writes or reads (`DcpWs`, [`delta_rule_cp_workspace_per_chunk`]) and
/// its outputs, each once. Caches can only help where a pass reads a byte twice, so this over
/// the copy bandwidth is each pass's floor (docs/PERFORMANCE.md puts the passes' times next to
/// it).
pub fn delta_rule_cp_traffic(p: &DeltaRuleParams, batch: usize, tokens: usize) -> [u64; 3] {
    let (c, dk, dv) = (DELTA_TC_CHUNK, p.key_dim, p.value_dim);
    let n = batch * p.value_heads * tokens.div_ceil(c);
    let rows = batch * tokens;
    let gate_cols = match p.gate {
        DecayGate::Scalar => 1,
        DecayGate::PerChannel => dk,
    };
    let (bf16, f32) = (2, 4);
    // inputs
    let qk = 2 * rows * p.key_heads * dk * bf16;
    let v = rows * p.value_heads * dv * bf16;
    let g_beta = rows * p.value_heads * (gate_cols + 1) * f32;
    let gate_rows = if p.gated_norm.is_some() {
        rows * p.value_heads * dv * bf16
    } else {
        0
    };
    let o = rows * p.value_heads * dv * bf16;
    let state = batch * p.value_heads * dk * dv * f32;
    // workspace regions
    let egl = n * dk * f32;
    // ck: one of q e^G, k e^(G_last - G), W; cv: one of U, v_new.
    let ck = n * c * dk * bf16;
    let cv = n * c * dv * bf16;
    let aq = n * c * c * bf16;
    let hs = n * dk * dv * bf16;
    let prep = qk + v + g_beta + egl + 3 * ck + cv + aq;
    let scan = 2 * ck + cv + egl + 2 * state + hs + cv;
    let out = ck + hs + aq + cv + gate_rows + o;
    [prep, scan, out].map(|b| b as u64)
}

/// Launch geometry of the chunk-parallel passes `[prep, scan, out]` for `batch` sequences of
/// `tokens` tokens (all three take the same arguments, in this order, on one stream).
pub fn delta_rule_cp_launches(p: &DeltaRuleParams, batch: usize, tokens: usize) -> [Launch; 3] {
    let nc = blocks(tokens, DELTA_TC_CHUNK);
    let [s0, s1, s2] = delta_rule_cp_smem(p);
    [
        Launch::new((nc, dim(p.value_heads), dim(batch)), (256, 1, 1), s0),
        Launch::new(
            (blocks(p.value_dim, p.scan_block), dim(p.value_heads), dim(batch)),
            (256, 1, 1),
            s1,
        ),
        Launch::new((nc, dim(p.value_heads), dim(batch)), (256, 1, 1), s2),
    ]
}

/// [`delta_rule_cp_launches`] for the module of prep form `v`
/// ([`delta_rule_chunk_parallel_variant`]): its prep takes the form's own shared memory.
pub fn delta_rule_cp_variant_launches(
    p: &DeltaRuleParams,
    v: CpPrepVariant,
    batch: usize,
    tokens: usize,
) -> [Launch; 3] {
    let mut launches = delta_rule_cp_launches(p, batch, tokens);
    launches[0].smem = delta_rule_cp_prep_smem(p, v);
    launches
}

/// Emits the chunk-parallel form of the chunked prefill (fla's `chunk_kda` /
/// `chunk_gated_delta_rule` split), three entries run in order on one stream:
/// `delta_rule_cp_prep_<hash>` (per chunk: norms, gate cumsum, A_qk, the UT solve, W, U),
/// `delta_rule_cp_scan_<hash>` (per value block: the state across the chunks; v_new) and
/// `delta_rule_cp_out_<hash>` (per chunk: o and the gated RMSNorm over full rows).
///
/// Arguments of each: those of [`delta_rule_chunked`] followed by `float* ws_raw`, a workspace
/// of [`delta_rule_cp_workspace_len`] f32 elements for the call's batch and tokens. The state
/// is read by the scan only (it may be updated in place). Launch with
/// [`delta_rule_cp_launches`]. Requires [`delta_rule_chunk_parallel_supported`].
pub fn delta_rule_chunk_parallel(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    delta_rule_chunk_parallel_variant(p, CpPrepVariant::default_for(p))
}

/// Forms of the chunk-parallel prep pass (same arguments, launches, shared memory and
/// workspace; only the prep kernel's code differs), for tests and benches to compare:
/// [`delta_rule_chunk_parallel_variant`]. Codegen emits [`CpPrepVariant::default_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpPrepVariant {
    /// `delta_rule_cp.cu` as written: step 4 takes each exponential directly (a scalar gate's
    /// once per row).
    Base,
    /// Step 4 with two exp2f per element instead of about five and a half: per (block,
    /// channel) factors times e^(G - G_r) or e^(G_r - G) (flagged blocks as in Base).
    FewExp,
    /// For a scalar gate (GDN), fla's `chunk_scaled_dot_kkt` form: A_qk and L from the
    /// normalised q and k without decay factors, each entry then scaled by e^(G_t - G_s) <= 1 in
    /// f32 (no reference copies Kc, no span check: nothing can overflow); step 4 from two
    /// per-row factors. For a per-channel gate the same text as [`CpPrepVariant::FewExp`].
    ScalarRaw,
    /// `FewExp` with step 0's span check (which diagonal blocks to sum exactly) loading its g
    /// rows before the norms' loads are waited for, as 16-byte pieces, so that the two take one
    /// trip to memory rather than two (the span's trip and barrier held about 13% of the KDA
    /// prep's warp stalls on the H100, 2026-12-07). For a scalar gate the same text as
    /// [`CpPrepVariant::ScalarRaw`], which has no span check.
    EarlySpan,
    /// For a scalar gate, `ScalarRaw` with the later passes' q and k channels staged at the
    /// start, into the rows of the reference copies that `ScalarRaw` does not take, so that
    /// no later pass waits for a copy; the scalar cumsum and its per-row factors are computed
    /// once (the second pass's staging, its wait and the barriers around it held about 5% of
    /// the GDN prep's warp stalls on the H100, 2026-12-07). For a per-channel gate the same
    /// text as [`CpPrepVariant::FewExp`].
    EarlyStage,
    /// `EarlySpan` (per-channel gate) or `EarlyStage` (scalar gate) with the UT inverse computed
    /// by halves: the diagonal blocks, blocks (1,0) and (3,2), then the lower half's block
    /// below the upper one with every thread busy; five phases instead of seven and a shorter
    /// chain of products (the inverse held 11–13% of the prep's warp stalls on the H100,
    /// 2026-12-07).
    UtHalves,
    /// With Dk, Dv <= 128, `UtHalves` in 75,536 bytes of shared memory (at Dk = Dv = 128) and 80
    /// registers, so that three blocks share an SM instead of two (the prep is latency-bound:
    /// with 16 warps an SM no warp was eligible in 60% of cycles, H100, 2026-12-07). For a
    /// scalar gate (`EarlyStage` by halves): no reference copies or exact blocks, A_qk over q.
    /// For a per-channel gate (`EarlySpan` by halves): passes of 32 key channels, A_qk over g.
    /// Both: the inverse's products in its own upper triangle, (I + L)^-1 diag(beta) over L
    /// ([`delta_rule_cp_prep_smem`]). Elsewhere the same text as `UtHalves`.
    Compact,
}

impl CpPrepVariant {
    /// Every form, `Base` first.
    pub const ALL: [CpPrepVariant; 7] = [
        CpPrepVariant::Base,
        CpPrepVariant::FewExp,
        CpPrepVariant::ScalarRaw,
        CpPrepVariant::EarlySpan,
        CpPrepVariant::EarlyStage,
        CpPrepVariant::UtHalves,
        CpPrepVariant::Compact,
    ];

    /// Whether `Compact`'s layout applies to `p`: Dk and Dv up to 128.
    fn compact_applies(p: &DeltaRuleParams) -> bool {
        p.key_dim <= 128 && p.value_dim <= 128
    }

    /// `v` as `p` has it: `Compact` is `UtHalves` where its layout does not apply.
    fn resolved(self, p: &DeltaRuleParams) -> CpPrepVariant {
        if self == CpPrepVariant::Compact && !Self::compact_applies(p) {
            CpPrepVariant::UtHalves
        } else {
            self
        }
    }

    /// The forms with a prep text of their own for `p`, in [`CpPrepVariant::ALL`]'s order: of
    /// forms with one text, the default if it is one of them, else the first. (A per-channel
    /// gate's `ScalarRaw` and `EarlyStage` are `FewExp`'s text, a scalar gate's `EarlySpan` is
    /// `ScalarRaw`'s; with one pass of key channels a scalar gate's `EarlyStage` is too.)
    pub fn distinct_for(p: &DeltaRuleParams) -> Vec<CpPrepVariant> {
        let text = |v| cp_kernels(v, p);
        let default = Self::default_for(p);
        let mut seen = vec![text(default)];
        let mut forms = Vec::new();
        for v in Self::ALL {
            let t = text(v);
            if v == default {
                forms.push(v);
            } else if !seen.contains(&t) {
                seen.push(t);
                forms.push(v);
            }
        }
        forms
    }

    /// The form [`delta_rule_chunk_parallel`] emits for `p`, the fastest at both of issue 8's
    /// shapes on an H100 (2026-12-07, seventh session, Dk = Dv = 128, prep alone, B1 T4096 H32 /
    /// B8 T2048 H16 with 16-column scans, docs/PERFORMANCE.md): `Compact` where its layout applies
    /// (Dk, Dv <= 128; KDA 0.226 / 0.410 ms against 0.241 / 0.453 for `UtHalves`, GDN 0.150
    /// at B1 against 0.174), else `UtHalves` for a per-channel gate and `EarlyStage` for a
    /// scalar one (by halves it ties). Prefetching the next round's rows into L2 lost 9–17% at
    /// both shapes, and was dropped.
    pub fn default_for(p: &DeltaRuleParams) -> CpPrepVariant {
        match p.gate {
            // Three blocks an SM with passes of 32 channels took 6% (B1 T4096 H32) and 9% (B8
            // T2048 H16) off KDA's prep on the H100 (2026-12-07, seventh session).
            DecayGate::PerChannel if Self::compact_applies(p) => CpPrepVariant::Compact,
            DecayGate::PerChannel => CpPrepVariant::UtHalves,
            // Three blocks an SM took 16% (B1 T4096 H32) and 22% (B8 T2048 H16) off the prep on
            // the H100 (2026-12-07, docs/PERFORMANCE.md).
            DecayGate::Scalar if Self::compact_applies(p) => CpPrepVariant::Compact,
            DecayGate::Scalar => CpPrepVariant::EarlyStage,
        }
    }
}

/// The variant snippets of the prep kernel (`delta_rule_cp_prep/`), spliced into
/// `delta_rule_cp.cu` at fixed anchors so that the base text stays as written.
const CP_PREP_FEW_EXP: &str = include_str!("delta_rule_cp_prep/few_exp.cu");
const CP_PREP_SCALAR_RAW: &str = include_str!("delta_rule_cp_prep/scalar_raw.cu");
const CP_PREP_SCALAR_RAW_FACTORS: &str = include_str!("delta_rule_cp_prep/scalar_raw_factors.cu");
const CP_PREP_EARLY_SPAN_LOADS: &str = include_str!("delta_rule_cp_prep/early_span_loads.cu");
const CP_PREP_EARLY_SPAN_FLAGS: &str = include_str!("delta_rule_cp_prep/early_span_flags.cu");
const CP_PREP_UT_HALVES: &str = include_str!("delta_rule_cp_prep/ut_halves.cu");
const CP_PREP_EARLY_STAGE: &str = include_str!("delta_rule_cp_prep/early_stage.cu");
const CP_PREP_COMPACT_KEPT: &str = include_str!("delta_rule_cp_prep/compact_kept.cu");
const CP_PREP_COMPACT_LAYOUT: &str = include_str!("delta_rule_cp_prep/compact_layout.cu");
const CP_PREP_COMPACT_LAYOUT_CHANNELS: &str = include_str!("delta_rule_cp_prep/compact_layout_channels.cu");
const CP_ANCHOR_PASS_CHANNELS: &str =
    "    constexpr int KH = DK % 64 == 0 ? 64 : 32; /* key channels per pass                       */\n";
const CP_ANCHOR_LAYOUT_BEGIN: &str = "    /* kept through the block */\n";
const CP_ANCHOR_LAYOUT_END: &str = "\n    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;\n    const int mr = warp & 3, cg = warp >> 2;";
const CP_ANCHOR_PREP_BOUNDS: &str = "__launch_bounds__(256, 2) delta_rule_cp_prep_@HASH@(";
const CP_ANCHOR_PREP_KERNEL: &str = "/*\n * delta_rule_cp_prep_@HASH@: pass 1 of 3";
const CP_ANCHOR_UT_INVERSE: &str = "    dtc_ut_inverse<C, FP, NT, true>(Lf, Af, Tf, tid);\n";
const CP_ANCHOR_FIRST_STAGE: &str = "    stage_pass(0);\n";
const CP_ANCHOR_PASS_STAGE: &str = "        if (pass > 0) stage_pass(pass);\n";
const CP_ANCHOR_SCALAR_CUMSUM: &str = "        } else if (warp == 0) {\n";
const CP_ANCHOR_NORMS: &str = "    if (VEC_NORM && vec_qk) {\n";
const CP_ANCHOR_EXP_BEGIN: &str = "            for (int e = tid; e < C * KH / 2; e += NT) {\n";
const CP_ANCHOR_EXP_END: &str = "            for (int d = tid; d < KH; d += NT) ws.egl[";
const CP_ANCHOR_FACTORS_BEGIN: &str =
    "            /* a scalar gate's factors of step 4 depend on the row only: once per row here */\n";
const CP_ANCHOR_FACTORS_END: &str = "        }\n        __syncthreads();\n        /* 3. the flagged diagonal blocks";
const CP_ANCHOR_SPAN_BEGIN: &str = "    __syncthreads(); /* flags[0] = 0 before any atomicOr */\n";
const CP_ANCHOR_SPAN_END: &str = "    const int wide = flags[0];\n";
const CP_ANCHOR_PRODUCT_B: &str = "                    const bf16* Bsrc = Kc + 8 * rb * (rb + 1) * HP;\n";
const CP_ANCHOR_AQ: &str = "                    AQ[t * AP + s] = f2bf(s <= t ? pacc[n][e] : 0.0f);\n";
const CP_ANCHOR_L: &str = "                    Lf[t * FP + s] = s < t ? bs[t] * pacc[n][e] : 0.0f;\n";

/// Replaces the text of `s` from the one occurrence of `begin` up to (not including) the next
/// `end` by `with`.
fn splice_range(s: &mut String, begin: &str, end: &str, with: &str) {
    assert_eq!(s.matches(begin).count(), 1, "anchor {begin:?}");
    let a = s.find(begin).unwrap_or_else(|| panic!("anchor {begin:?}"));
    let b = a + s[a..].find(end).unwrap_or_else(|| panic!("anchor {end:?}"));
    s.replace_range(a..b, with);
}

/// `delta_rule_cp.cu` with the prep kernel of form `v` for `p`'s gate (per-channel, KDA, or
/// scalar, GDN) and passes over the key channels.
fn cp_kernels(v: CpPrepVariant, p: &DeltaRuleParams) -> String {
    use CpPrepVariant::{Compact, EarlySpan, EarlyStage, FewExp, ScalarRaw, UtHalves};
    let (per_channel, passes) = (matches!(p.gate, DecayGate::PerChannel), cp_prep_passes(p));
    let v = v.resolved(p);
    let mut s = CP_KERNELS.to_string();
    // The parts of form `v`: ScalarRaw's products (which a scalar gate's later forms build on),
    // FewExp's step 4 (a per-channel gate's), the gate's early loads (EarlySpan, EarlyStage),
    // the UT inverse by halves on top of those, and Compact's layout.
    let built_on_few_exp = matches!(v, ScalarRaw | EarlySpan | EarlyStage | UtHalves | Compact);
    let scalar_raw = !per_channel && built_on_few_exp;
    let few_exp = v == FewExp || (per_channel && built_on_few_exp);
    let early_span = per_channel && matches!(v, EarlySpan | UtHalves | Compact);
    // With one pass there is no later pass to stage early.
    let early_stage = !per_channel && passes > 1 && matches!(v, EarlyStage | UtHalves | Compact);
    if scalar_raw {
        splice_range(
            &mut s,
            CP_ANCHOR_SPAN_BEGIN,
            CP_ANCHOR_SPAN_END,
            "    __syncthreads(); /* ScalarRaw: no span check, flags stay 0 */\n",
        );
        splice_range(&mut s, CP_ANCHOR_EXP_BEGIN, CP_ANCHOR_EXP_END, CP_PREP_SCALAR_RAW);
        splice_range(
            &mut s,
            CP_ANCHOR_FACTORS_BEGIN,
            CP_ANCHOR_FACTORS_END,
            CP_PREP_SCALAR_RAW_FACTORS,
        );
        splice_once(
            &mut s,
            CP_ANCHOR_PRODUCT_B,
            "                    const bf16* Bsrc = Kr; /* undecayed k rows 0 .. 16 rb + 15 */\n",
        );
        splice_once(
            &mut s,
            CP_ANCHOR_AQ,
            "                    AQ[t * AP + s] = f2bf(s <= t ? pacc[n][e] * exp2f(Gs[t] - Gs[s]) : 0.0f);\n",
        );
        splice_once(
            &mut s,
            CP_ANCHOR_L,
            "                    Lf[t * FP + s] = s < t ? bs[t] * pacc[n][e] * exp2f(Gs[t] - Gs[s]) : 0.0f;\n",
        );
    }
    if early_stage {
        splice_once(
            &mut s,
            CP_ANCHOR_FIRST_STAGE,
            &format!("{CP_ANCHOR_FIRST_STAGE}{CP_PREP_EARLY_STAGE}"),
        );
        splice_once(
            &mut s,
            CP_ANCHOR_PASS_STAGE,
            "        if (pass > 0) { /* (EarlyStage) staged at the start */\n            \
             Qr = Kc + (pass - 1) * 2 * C * HP;\n            Kr = Qr + C * HP;\n        }\n",
        );
        // g, hence the cumsum and its per-row factors, is the same in every pass.
        splice_once(
            &mut s,
            CP_ANCHOR_SCALAR_CUMSUM,
            "        } else if (warp == 0 && pass == 0) {\n",
        );
    }
    if matches!(v, UtHalves | Compact) {
        splice_once(
            &mut s,
            CP_ANCHOR_PREP_KERNEL,
            &format!("{CP_PREP_UT_HALVES}{CP_ANCHOR_PREP_KERNEL}"),
        );
    }
    if v == UtHalves {
        splice_once(
            &mut s,
            CP_ANCHOR_UT_INVERSE,
            "    dcp_ut_inverse_halves<C, FP, NT>(Lf, Af, Tf, tid); /* (UtHalves) */\n",
        );
    }
    if v == Compact {
        let layout = if per_channel {
            // Passes of 32 key channels, so that the reference copies fit.
            splice_once(
                &mut s,
                CP_ANCHOR_PASS_CHANNELS,
                &format!("    constexpr int KH = {CP_COMPACT_PASS_CHANNELS}; /* key channels per pass (Compact) */\n"),
            );
            CP_PREP_COMPACT_LAYOUT_CHANNELS
        } else {
            CP_PREP_COMPACT_LAYOUT
        };
        splice_range(
            &mut s,
            CP_ANCHOR_LAYOUT_BEGIN,
            CP_ANCHOR_LAYOUT_END,
            &format!("{CP_PREP_COMPACT_KEPT}{layout}"),
        );
        splice_once(
            &mut s,
            CP_ANCHOR_UT_INVERSE,
            "    __syncthreads(); /* (Compact) A_qk is stored: the inverse goes over it */\n    \
             dcp_ut_inverse_halves<C, FP, NT, true>(Lf, Af, Tf, tid);\n",
        );
        splice_once(
            &mut s,
            CP_ANCHOR_PREP_BOUNDS,
            "__launch_bounds__(256, 3) delta_rule_cp_prep_@HASH@(",
        );
    }
    if few_exp {
        splice_range(&mut s, CP_ANCHOR_EXP_BEGIN, CP_ANCHOR_EXP_END, CP_PREP_FEW_EXP);
        // Its step 4 takes no per-row factors.
        splice_range(&mut s, CP_ANCHOR_FACTORS_BEGIN, CP_ANCHOR_FACTORS_END, "");
    }
    if early_span {
        splice_once(
            &mut s,
            CP_ANCHOR_NORMS,
            &format!("{CP_PREP_EARLY_SPAN_LOADS}{CP_ANCHOR_NORMS}"),
        );
        splice_range(
            &mut s,
            CP_ANCHOR_SPAN_BEGIN,
            CP_ANCHOR_SPAN_END,
            CP_PREP_EARLY_SPAN_FLAGS,
        );
    }
    s
}

/// [`delta_rule_chunk_parallel`] with prep form `v` (entry names differ by the hash; the
/// launches, shared memory and workspace are those of the default form).
pub fn delta_rule_chunk_parallel_variant(p: &DeltaRuleParams, v: CpPrepVariant) -> Result<KernelSource, TemplateError> {
    chunk_parallel_module(p, v, CpExtraEntry::None)
}

/// [`delta_rule_chunk_parallel`] with one more entry where [`delta_rule_cp_scan_cluster`] is
/// `Some`: `delta_rule_cp_scan_mc_<hash>`, last, the scan over clusters (sm_90; a trap below).
/// Programs do not use it (on an H100 it took three times the plain scan's time,
/// docs/PERFORMANCE.md); the GPU tests and benchmarks do.
pub fn delta_rule_chunk_parallel_with_cluster_scan(p: &DeltaRuleParams) -> Result<KernelSource, TemplateError> {
    chunk_parallel_module(p, CpPrepVariant::default_for(p), CpExtraEntry::ClusterScan)
}

/// How the blocks of a head in `delta_rule_cp_scan_out_` share the gated norm's row sums (a
/// head's Dv / SBV blocks each hold part of every row of o).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutExchange {
    /// The head's blocks form a cluster (sm_90); each puts its sums into every block's shared
    /// memory with asynchronous stores completing on the receiver's mbarrier. Measured on an
    /// H100 (2026-12-07, ninth session) at three times the cluster-free time: see
    /// docs/PERFORMANCE.md.
    Cluster,
    /// Ordinary blocks; each writes its sums to the workspace (over the state copies the
    /// three-pass form keeps there) and counts them in a per-chunk word the prep zeroes; readers
    /// wait for the count. A block takes its place in the grid from a ticket (the order blocks
    /// start in), so a head's blocks start one after another and a grid larger than the device
    /// holds runs in waves; a head's blocks must fit at once
    /// ([`delta_rule_cp_scan_out_runs_on`]; a block that waits about 2^31 cycles traps rather
    /// than hang).
    Global,
}

/// [`delta_rule_chunk_parallel`] with one more entry, last: `delta_rule_cp_scan_out_<hash>`,
/// the scan and the output pass in one (`delta_rule_cp_scan_out.cu`), launched after the prep
/// with [`delta_rule_cp_scan_out_launch`] in place of the scan and output launches. With the
/// gated norm over several blocks a head, `exchange` says how they share its row sums (with
/// [`ScanOutExchange::Global`] the module's prep also zeroes the counts). Requires
/// [`delta_rule_cp_scan_out_supported`].
pub fn delta_rule_chunk_parallel_with_scan_out(
    p: &DeltaRuleParams,
    exchange: ScanOutExchange,
) -> Result<KernelSource, TemplateError> {
    check("delta_rule_cp_scan_out", delta_rule_cp_scan_out_supported(p), || {
        format!(
            "the scan with the output needs a scan block of 16..=128 dividing Dv {} (got {}), \
                 with the gated norm at most 8 blocks a head, within a block's shared memory",
            p.value_dim, p.scan_block
        )
    })?;
    chunk_parallel_module(p, CpPrepVariant::default_for(p), CpExtraEntry::ScanOut(exchange))
}

/// The entry a chunk-parallel module carries after its own (tests and benchmarks compare them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CpExtraEntry {
    None,
    /// `delta_rule_cp_scan_mc_`: the scan with W and k multicast to clusters.
    ClusterScan,
    /// `delta_rule_cp_scan_out_`: the scan and the output pass in one.
    ScanOut(ScanOutExchange),
}

/// Chunks in flight of `delta_rule_cp_scan_out_`: three where they fit a block's shared memory,
/// else two; `None` where two do not fit.
fn cp_scan_out_buffers(p: &DeltaRuleParams) -> Option<usize> {
    [3, 2]
        .into_iter()
        .find(|&n| cp_scan_out_smem_with(p, n) <= DELTA_MAX_SMEM as usize)
}

/// Shared memory of `delta_rule_cp_scan_out_` with `nbuf` buffers (the layout at its top): h,
/// v_new and o `[..][SP]` (bf16); per buffer W, k, q `[C][KP]`, A_qk `[C][AP]`, U and, with the
/// norm, the gate rows `[C][SP]` (bf16), e^G_last `[DK]` (f32); with the norm the row sums
/// `[4][NCL][2][C]` (f32) and their four mbarriers.
fn cp_scan_out_smem_with(p: &DeltaRuleParams, nbuf: usize) -> usize {
    let (c, dk, sbv) = (DELTA_TC_CHUNK, p.key_dim, p.scan_block);
    let (kp, sp, ap) = (dk + 8, sbv + 8, c + 8);
    let norm = p.gated_norm.is_some();
    let ncl = p.value_dim / sbv.max(1);
    let per_buffer = 3 * c * kp + c * ap + c * sp + if norm { c * sp } else { 0 };
    let bf16 = dk * sp + 2 * c * sp + nbuf * per_buffer;
    let f32 = nbuf * dk + if norm { 8 * ncl * c } else { 0 };
    bf16 * 2 + f32 * 4 + if norm { 4 * 8 } else { 0 }
}

/// Whether [`delta_rule_chunk_parallel_with_scan_out`] covers `p`: the chunk-parallel form's
/// cases whose scan block leaves two buffers room in a block, and with the gated norm at most 8
/// blocks a head (a cluster's portable size; several blocks a head need sm_90).
pub fn delta_rule_cp_scan_out_supported(p: &DeltaRuleParams) -> bool {
    delta_rule_chunk_parallel_supported(p)
        && cp_scan_out_buffers(p).is_some()
        && (p.gated_norm.is_none() || matches!(p.value_dim / p.scan_block, 1 | 2 | 4 | 8))
}

/// Launch geometry of `delta_rule_cp_scan_out_` for `batch` sequences: the scan's grid and block.
pub fn delta_rule_cp_scan_out_launch(p: &DeltaRuleParams, batch: usize) -> Launch {
    let smem = cp_scan_out_buffers(p).map_or(u32::MAX, |n| dim(cp_scan_out_smem_with(p, n)));
    Launch::new(
        (blocks(p.value_dim, p.scan_block), dim(p.value_heads), dim(batch)),
        (256, 1, 1),
        smem,
    )
}

/// Whether the blocks of a head in `delta_rule_cp_scan_out_` exchange row sums (the gated norm
/// over several blocks a head).
fn cp_scan_out_exchanges(p: &DeltaRuleParams) -> bool {
    p.gated_norm.is_some() && p.value_dim > p.scan_block
}

/// Whether the blocks of a head in `delta_rule_cp_scan_out_` with `exchange` share row sums
/// through the workspace (the module's prep then zeroes the counts).
fn cp_scan_out_through_workspace(p: &DeltaRuleParams, exchange: ScanOutExchange) -> bool {
    exchange == ScanOutExchange::Global && cp_scan_out_exchanges(p)
}

/// Whether `delta_rule_cp_scan_out_` with `exchange` runs as clusters, which needs sm_90.
pub fn delta_rule_cp_scan_out_clusters(p: &DeltaRuleParams, exchange: ScanOutExchange) -> bool {
    exchange == ScanOutExchange::Cluster && cp_scan_out_exchanges(p)
}

/// Whether `delta_rule_cp_scan_out_` with `exchange` may be launched on a device of `sms`
/// streaming multiprocessors: always, unless its blocks wait on each other through global memory
/// ([`ScanOutExchange::Global`]), which needs a head's Dv / SBV blocks resident at once: at
/// least that many SMs (a block takes over half an SM's shared memory). The blocks take their
/// places by ticket, so any larger grid runs in waves without deadlock.
pub fn delta_rule_cp_scan_out_runs_on(p: &DeltaRuleParams, exchange: ScanOutExchange, sms: usize) -> bool {
    exchange == ScanOutExchange::Cluster || !cp_scan_out_exchanges(p) || p.value_dim / p.scan_block.max(1) <= sms
}

/// The scan-and-output entry's text (`@ARGS@` etc. substituted by the module).
fn cp_scan_out_entry(p: &DeltaRuleParams, exchange: ScanOutExchange) -> String {
    let global = cp_scan_out_through_workspace(p, exchange);
    let clusters = delta_rule_cp_scan_out_clusters(p, exchange);
    let nbuf = cp_scan_out_buffers(p).unwrap_or(2);
    let names = arg_names(&(args(p) + CP_WS_ARG));
    let (gate_stage, partials, epilogue, keep_gate) = match p.gated_norm {
        None => ("", String::new(), CP_SO_STORE.to_string(), ""),
        Some(n) => {
            let x = if global {
                SO_EXCHANGE_GLOBAL
            } else {
                SO_EXCHANGE_CLUSTER
            };
            (
                CP_SO_GATE_STAGE,
                CP_SO_NORM_PARTIALS
                    .replace("@SLOT@", x.slot)
                    .replace("@PUT@", x.put)
                    .replace("@DONE@", x.done),
                CP_SO_NORM_STORE
                    .replace("@WAIT@", x.wait)
                    .replace("@SUM@", x.sum)
                    .replace("@ACT@", &gate_act(n.act, "zj")),
                CP_SO_KEEP_GATE,
            )
        }
    };
    let body = CLUSTER_ASYNC_HELPERS.to_string()
        + &CP_SCAN_OUT
            .replace("@NORM@", if p.gated_norm.is_some() { "true" } else { "false" })
            .replace("@CLUSTER@", if clusters { "true" } else { "false" })
            .replace("@PLACE@", if global { CP_SO_TICKET } else { CP_SO_PLACE })
            .replace("@GATE_STAGE@", gate_stage)
            .replace("@NORM_PARTIALS@", &partials)
            .replace("@O_EPILOGUE@", &epilogue)
            .replace("@KEEP_GATE@", keep_gate);
    let call = format!(
        "    delta_rule_cp_scan_out_body_@HASH@<{}, {nbuf}>({names});",
        p.scan_block
    );
    let entry = if clusters {
        // Clusters exist from sm_90; below it the entry traps (a module's entries load by name).
        format!(
            "#if __CUDA_ARCH__ >= 900\nextern \"C\" __global__ void __cluster_dims__({cl}, 1, 1) \
             __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n{{\n{call}\n}}\n#else\n\
             extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n\
             {{\n    __trap();\n}}\n#endif\n",
            cl = p.value_dim / p.scan_block,
        )
    } else {
        format!("extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n{{\n{call}\n}}\n")
    };
    body + &entry
}

/// The scan and the output pass in one (`delta_rule_chunk_parallel_with_scan_out`).
const CP_SCAN_OUT: &str = include_str!("delta_rule_cp_scan_out.cu");

/// `delta_rule_cp_scan_out_`'s place of a block in the grid (`j0`, `hv`, `b`): blockIdx's.
const CP_SO_PLACE: &str = "    const int j0 = blockIdx.x * SBV;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
";

/// [`ScanOutExchange::Global`]'s place of a block: thread 0 takes the launch's next ticket
/// (modulo the grid, so that launches without the prep that zeroes the counter between them
/// still take every place once) and passes it on through `Pb`; places are numbered as blockIdx
/// (x fastest: a head's blocks take consecutive tickets).
const CP_SO_TICKET: &str = "    if (tid == 0)
        *reinterpret_cast<unsigned*>(Pb) =
            atomicAdd(dcp_so_ticket<C, DK, DV, NCL>(ws), 1u) % (gridDim.x * gridDim.y * gridDim.z);
    __syncthreads();
    const unsigned place = *reinterpret_cast<volatile unsigned*>(Pb);
    const int j0 = (int)(place % NCL) * SBV;
    const int hv = (int)(place / NCL % HV);
    const long b = place / (NCL * HV);
";

/// `delta_rule_cp_scan_out_`'s store of o without the norm: chunk `ce`'s fragments into Os.
const CP_SO_STORE: &str = "        (void)ce;
#pragma unroll
        for (int n = 0; n < NPW; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&Os[(16 * mr + r4 + 8 * h) * SP + 8 * (NPW * nh + n) + c4], ao_prev[n][2 * h],
                        ao_prev[n][2 * h + 1]);
";

/// `delta_rule_cp_scan_out_`'s gate values of this chunk's o, kept for its epilogue in the next
/// chunk (whose copies reuse the buffer).
const CP_SO_KEEP_GATE: &str = "#pragma unroll
        for (int n = 0; n < NPW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                z_prev[n][e] = bf2f(Z[(16 * mr + r4 + 8 * (e >> 1)) * SP + 8 * (NPW * nh + n) + c4 + (e & 1)]);
";

/// `delta_rule_cp_scan_out_`'s gate rows (the block's columns of the chunk's rows), staged with
/// the chunk's other operands.
const CP_SO_GATE_STAGE: &str = "        dtc_stage<bf16, C, SBV, NT>(Zb + p * C * SP, SP, gate + (b * T + c * C) * gate_stride + hv * DV + j0,
                                    gate_stride, min(C, T - c * C),
                                    (reinterpret_cast<unsigned long long>(gate) & 15) == 0 && gate_stride % 8 == 0, tid);
";

/// `delta_rule_cp_scan_out_`'s partial sums of o^2 for the gated norm, before the state update:
/// a row's over the four lanes of its quad (a fixed butterfly), into the chunk's slot of this
/// block and column half, as the exchange says ([`SoExchangeText`]).
const CP_SO_NORM_PARTIALS: &str = "        {
@SLOT@#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float ss = 0.0f;
#pragma unroll
                for (int n = 0; n < NPW; ++n)
                    ss += ao[n][2 * h] * ao[n][2 * h] + ao[n][2 * h + 1] * ao[n][2 * h + 1];
                ss += __shfl_xor_sync(0xffffffffu, ss, 1);
                ss += __shfl_xor_sync(0xffffffffu, ss, 2);
                if ((lane & 3) == 0) {
@PUT@                }
            }
@DONE@        }
";

/// `delta_rule_cp_scan_out_`'s gated-norm store of chunk `ce`: once the exchange has every
/// block's partial sums of a row, their total (in a fixed order, the same in every block), then
/// o rsqrt(mean(o^2) + eps) w act(gate) into Os.
const CP_SO_NORM_STORE: &str = "@WAIT@#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 16 * mr + r4 + 8 * h;
            float tot = 0.0f;
#pragma unroll
            for (int r = 0; r < 2 * NCL; ++r) tot += @SUM@;
            const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
#pragma unroll
            for (int n = 0; n < NPW; ++n) {
                const int col = 8 * (NPW * nh + n) + c4;
                float y[2];
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const float zj = z_prev[n][2 * h + x];
                    y[x] = ao_prev[n][2 * h + x] * rn * norm_w[j0 + col + x] * @ACT@;
                }
                dtc_st2(&Os[t * SP + col], y[0], y[1]);
            }
        }
";

/// How an exchange fills [`CP_SO_NORM_PARTIALS`] (`slot`: the pointer `R` to this block's
/// sums of chunk c; `put`: a quad's sum `ss` of row `16 mr + r4 + 8 h` to it; `done`: after
/// the warp's) and [`CP_SO_NORM_STORE`] (`wait`: until chunk ce's sums are all in; `sum`: the
/// sum of slot r, row t).
struct SoExchangeText {
    slot: &'static str,
    put: &'static str,
    done: &'static str,
    wait: &'static str,
    sum: &'static str,
}

/// Into every block of the cluster with asynchronous stores completing on the receiver's
/// `Pb[c & 3]` (one block a head: its own shared memory, read after the last two barriers).
const SO_EXCHANGE_CLUSTER: SoExchangeText = SoExchangeText {
    slot: "            float* R = Rs + ((c & 3) * NCL * 2 + 2 * (int)blockIdx.x + nh) * C;
            if (NCL > 1 && tid == 0) mbar_expect_tx(Pb + (c & 3), NCL * 2 * C * 4); /* chunk c - 4's phase is over */
",
    put: "                    if constexpr (NCL > 1) {
                        cluster_put_async<NCL>(Pb + (c & 3), R + 16 * mr + r4 + 8 * h, ss);
                    } else {
                        R[16 * mr + r4 + 8 * h] = ss;
                    }
",
    done: "",
    wait:
        "        if constexpr (NCL > 1) mbar_wait_cluster(Pb + (ce & 3), (ce >> 2) & 1); /* every block's sums are in */
        const float* R = Rs + (ce & 3) * NCL * 2 * C;
",
    sum: "R[r * C + t]",
};

/// [`ScanOutExchange::Global`]: into the chunk's slot in the workspace, then each warp adds one
/// to the chunk's count; a reader's lane 0 waits for NCL · NW, then its warp reads every
/// block's sums past L1 (written on other SMs).
const SO_EXCHANGE_GLOBAL: SoExchangeText = SoExchangeText {
    slot: "            float* R = dcp_so_sums<DK, DV>(ws, bh * NC + c) + (2 * (j0 / SBV) + nh) * C;\n",
    put: "                    R[16 * mr + r4 + 8 * h] = ss;\n",
    done: "            __syncwarp();
            if (lane == 0) {
                __threadfence(); /* the warp's sums are visible before its count */
                atomicAdd(dcp_so_count<C, DK, DV, NCL>(ws, bh * NC + c), 1u);
            }
",
    wait: "        const float* Rg = dcp_so_sums<DK, DV>(ws, bh * NC + ce);
        if (lane == 0) dcp_so_wait(dcp_so_count<C, DK, DV, NCL>(ws, bh * NC + ce), NCL * NW);
        __syncwarp();
",
    sum: "__ldcg(Rg + r * C + t)",
};

/// [`ScanOutExchange::Global`]'s helpers: where a chunk's row sums and count live in the
/// workspace (the region of the state copies, `hs`, which the one launch does not use), and the
/// wait for a count.
const CP_SO_GLOBAL_HELPERS: &str = "#ifndef MODELC_DELTA_CP_SO_GLOBAL
#define MODELC_DELTA_CP_SO_GLOBAL
/* chunk ci's row sums of o^2, [NCL][2][C] f32, at the start of its state copy's region (32 KB
 * at Dk = Dv = 128) */
template <int DK, int DV>
__device__ __forceinline__ float* dcp_so_sums(const DcpWs& ws, long ci) {
    return reinterpret_cast<float*>(ws.hs + ci * DK * DV);
}
/* chunk ci's count of warps whose sums are in, after the sums (zeroed by the prep) */
template <int C, int DK, int DV, int NCL>
__device__ __forceinline__ unsigned* dcp_so_count(const DcpWs& ws, long ci) {
    static_assert(NCL * 2 * C + 2 <= DK * DV / 2, \"the sums, the count and the ticket fit the region\");
    return reinterpret_cast<unsigned*>(dcp_so_sums<DK, DV>(ws, ci) + NCL * 2 * C);
}
/* the launch's ticket counter (blocks take their place in the grid in the order they start),
 * after chunk 0's count (zeroed by the prep) */
template <int C, int DK, int DV, int NCL>
__device__ __forceinline__ unsigned* dcp_so_ticket(const DcpWs& ws) {
    return dcp_so_count<C, DK, DV, NCL>(ws, 0) + 1;
}
/* Spins until *count reaches want (acquire, GPU scope); traps after about 2^31 cycles, so a
 * launch whose blocks are not all resident fails instead of hanging. */
__device__ __forceinline__ void dcp_so_wait(const unsigned* count, unsigned want) {
    const long long t0 = clock64();
    for (;;) {
        unsigned v;
        asm volatile(\"ld.acquire.gpu.global.u32 %0, [%1];\" : \"=r\"(v) : \"l\"(count) : \"memory\");
        if (v >= want) return;
        if (clock64() - t0 > (1ll << 31)) __trap();
        __nanosleep(64);
    }
}
#endif
";

/// The prep's last store, after which [`ScanOutExchange::Global`]'s module has thread 0 zero
/// the chunk's count (the prep runs to completion before the one launch starts).
const CP_ANCHOR_PREP_LAST_STORE: &str = "    dcp_store_rows<C, DV, NT>(ws.u + ci * C * DV, DV, Ts, VP, C, tid);\n";

fn chunk_parallel_module(
    p: &DeltaRuleParams,
    v: CpPrepVariant,
    extra: CpExtraEntry,
) -> Result<KernelSource, TemplateError> {
    let cluster = delta_rule_cp_scan_cluster(p).filter(|_| extra == CpExtraEntry::ClusterScan);
    let scan_out = match extra {
        CpExtraEntry::ScanOut(x) => Some(x),
        _ => None,
    };
    validate(p, "delta_rule_chunk_parallel")?;
    check(
        "delta_rule_chunk_parallel",
        delta_rule_chunk_parallel_supported(p),
        || {
            format!(
                "Dk {} must be 32, 64 or 128 and Dv {} a multiple of 32 up to \
             {DELTA_NORM_MAX_VALUE_DIM}, with a scan block of 16, 32, 64 or 128 dividing Dv (got {}), \
             within the shared memory of a block",
                p.key_dim, p.value_dim, p.scan_block
            )
        },
    )?;
    let [s0, s1, s2] = delta_rule_cp_smem(p);
    let header = format!(
        r#"/*
 * delta_rule_cp_{{prep,scan,out}}_{HASH}: gated delta rule, chunked (WY representation / UT
 *   transform), chunk-parallel on tensor cores (mma.sync m16n8k16 bf16 -> f32, ldmatrix,
 *   cp.async; sm_80+): three launches in order, fla's chunk_kda split.
 *   {desc}, chunk C = {c}, scan block SBV = {sbv}{wide_line}.{cluster_line}{norm_line}
 *   Per chunk, with G the in-chunk cumsum of g: A_qk[t,s] = sum_d q_td k_sd e^(G_td - G_sd)
 *   (s <= t), L[t,s] = beta_t sum_d k_td k_sd e^(G_td - G_sd) (s < t), W = (I + L)^-1
 *   diag(beta) (e^G k), U = (I + L)^-1 diag(beta) v (prep); per sequence, h_0 = state_in,
 *   v_new_c = U_c - W_c h_c, h_(c+1) = e^G_last h_c + (e^(G_last - G) k)^T v_new_c (scan);
 *   o = (e^G q) h_c + A_qk v_new_c{norm_fused} (out). Products on tensor cores with bf16
 *   operands and f32 accumulators; the state stays f32 in the scan, the workspace holds bf16
 *   copies (as fla's kernels do). Tokens past T in the last chunk are zero with beta = 0 and
 *   g = 0, so they change nothing.
{layouts}
 *   ws_raw: the workspace, delta_rule_cp_workspace_len() f32 elements (DcpWs below).
 * Dynamic smem: prep {s0}, scan {s1}, out {s2} bytes. Deterministic: fixed reduction orders,
 *   no atomics on data (one atomicOr on a flag word).
 */
{PRELUDE}{MMA_PRELUDE}{TC_HELPERS}{MBAR_PRELUDE}{CLUSTER_HELPERS}"#,
        desc = describe(p),
        norm_line = describe_norm(p),
        norm_fused = if p.gated_norm.is_some() {
            ", then the gated RMSNorm"
        } else {
            ""
        },
        c = DELTA_TC_CHUNK,
        sbv = p.scan_block,
        wide_line = delta_rule_cp_wide_scans(p)
            .iter()
            .map(|w| format!(" (or {w}: delta_rule_cp_scan_w{w}_{HASH})"))
            .collect::<String>(),
        layouts = layouts(p),
        cluster_line = match cluster {
            Some(cl) => format!(
                "\n *   sm_90: delta_rule_cp_scan_mc_{HASH}, the scan with W and k multicast to clusters of {cl} blocks."
            ),
            None => String::new(),
        } + match scan_out {
            Some(x) if cp_scan_out_through_workspace(p, x) => {
                "\n *   delta_rule_cp_scan_out_@HASH@: the scan and the output pass in one, after the prep \
                 (row sums through the workspace; the prep zeroes their counts)."
            }
            Some(_) => "\n *   delta_rule_cp_scan_out_@HASH@: the scan and the output pass in one, after the prep.",
            None => "",
        },
    );
    let (store, gate_stage, epilogue) = match p.gated_norm {
        None => (CP_STORE.to_string(), "", "of o (bf16)"),
        Some(n) => (
            format!("{TC_NORM_ROW_SCALES}{CP_NORM_STORE}").replace("@ACT@", &gate_act(n.act, "zj")),
            CP_GATE_STAGE,
            "through the gated RMSNorm (the block owns full rows; the gate rows arrive with A_qk and v_new)",
        ),
    };
    let wide = delta_rule_cp_wide_scans(p);
    let scan_entries: String = std::iter::once(p.scan_block)
        .chain(wide.iter().copied())
        .map(|sbv| {
            format!(
                "extern \"C\" __global__ void __launch_bounds__(256) {entry}(\n    @ARGS@)\n{{\n    \
                 delta_rule_cp_scan_body_@HASH@<{sbv}, false>({names});\n}}\n",
                entry = scan_entry_template(p, sbv),
                names = arg_names(&(args(p) + CP_WS_ARG)),
            )
        })
        .chain(scan_out.map(|x| cp_scan_out_entry(p, x)))
        .chain(cluster.map(|cl| {
            // The entry exists on every target (a module's entries are loaded by name); below
            // sm_90, where clusters do not exist, it traps.
            format!(
                "#if __CUDA_ARCH__ >= 900\nextern \"C\" __global__ void __cluster_dims__({cl}, 1, 1) \
                 __launch_bounds__(256) delta_rule_cp_scan_mc_@HASH@(\n    @ARGS@)\n{{\n    \
                 delta_rule_cp_scan_body_@HASH@<{sbv}, true>({names});\n}}\n#else\n\
                 extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_mc_@HASH@(\n    @ARGS@)\n\
                 {{\n    __trap();\n}}\n#endif\n",
                sbv = p.scan_block,
                names = arg_names(&(args(p) + CP_WS_ARG)),
            )
        }))
        .collect();
    let mut kernels = cp_kernels(v, p);
    if scan_out.is_some_and(|x| cp_scan_out_through_workspace(p, x)) {
        splice_once(
            &mut kernels,
            CP_ANCHOR_PREP_KERNEL,
            &format!("{CP_SO_GLOBAL_HELPERS}{CP_ANCHOR_PREP_KERNEL}"),
        );
        splice_once(
            &mut kernels,
            CP_ANCHOR_PREP_LAST_STORE,
            &format!(
                "{CP_ANCHOR_PREP_LAST_STORE}    if (tid == 0) *dcp_so_count<C, DK, DV, {ncl}>(ws, ci) = 0u; \
                 /* the one launch's row sums of this chunk: none in yet */\n    \
                 if (tid == 0 && ci == 0) *dcp_so_ticket<C, DK, DV, {ncl}>(ws) = 0u; /* nor its blocks */\n",
                ncl = p.value_dim / p.scan_block
            ),
        );
    }
    let body = kernels
        .replace("@SCAN_ENTRIES@", &scan_entries)
        .replace("@ARGS@", &(args(p) + CP_WS_ARG))
        .replace("@CONSTS@", &(constants(p) + &norm_constants(p)))
        .replace("@STORE@", &store)
        .replace("@GATE_STAGE@", gate_stage)
        .replace("@EPILOGUE@", epilogue)
        .replace("@HASH@", HASH);
    let mut entries = vec![
        format!("delta_rule_cp_prep_{HASH}"),
        format!("delta_rule_cp_scan_{HASH}"),
        format!("delta_rule_cp_out_{HASH}"),
    ];
    entries.extend(wide.iter().map(|&w| scan_entry_template(p, w).replace("@HASH@", HASH)));
    if scan_out.is_some() {
        entries.push(format!("delta_rule_cp_scan_out_{HASH}"));
    }
    if cluster.is_some() {
        entries.push(format!("delta_rule_cp_scan_mc_{HASH}"));
    }
    let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
    Ok(finish(&entries, header + &body))
}

/// Wider scan blocks than `p.scan_block` the chunk-parallel module also has a scan entry for
/// (`delta_rule_cp_scan_w<SBV>_<hash>`): 32, 64 and 128 where they divide Dv and fit a block's
/// shared memory. A call of many sequences has scan blocks enough at a wider block, which reads W
/// and k fewer times (programs pick them per call: `LaunchStep::variants`).
pub fn delta_rule_cp_wide_scans(p: &DeltaRuleParams) -> Vec<usize> {
    [32, 64, 128]
        .into_iter()
        .filter(|&w| w > p.scan_block)
        .filter(|&w| delta_rule_chunk_parallel_supported(&DeltaRuleParams { scan_block: w, ..*p }))
        .collect()
}

/// Blocks of the cluster that `delta_rule_cp_scan_mc_<hash>` (the last entry of
/// [`delta_rule_chunk_parallel_with_cluster_scan`] where this is `Some`) spreads a head's Dv / SBV
/// scan blocks over: 2, 4 or 8. That entry is the scan with each chunk's W and k loaded once per
/// head and multicast to its blocks (sm_90 only; same arguments, grid, block and shared memory
/// as the scan entry).
pub fn delta_rule_cp_scan_cluster(p: &DeltaRuleParams) -> Option<usize> {
    let cl = p.value_dim / p.scan_block.max(1);
    matches!(cl, 2 | 4 | 8).then_some(cl)
}

/// The scan entry for block width `sbv` (`@HASH@` not yet substituted).
fn scan_entry_template(p: &DeltaRuleParams, sbv: usize) -> String {
    if sbv == p.scan_block {
        "delta_rule_cp_scan_@HASH@".to_string()
    } else {
        format!("delta_rule_cp_scan_w{sbv}_@HASH@")
    }
}

/// The parameter names of a C parameter list (`const bf16* __restrict__ q, int n` → `q, n`).
fn arg_names(params: &str) -> String {
    params
        .split(',')
        .filter_map(|a| a.split_whitespace().last())
        .map(|n| n.trim_start_matches('*'))
        .collect::<Vec<_>>()
        .join(", ")
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

/// Launch geometry of the recurrent kernel (and of the SIMT chunked form) for `batch`
/// sequences: BV threads per block; `smem` is 0 for the recurrent kernel.
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

    /// The scan and the output pass in one: which exchange each form emits, what the module's
    /// prep does for the global one, and where the launch may run.
    #[test]
    fn scan_out_forms_emit_their_exchange() {
        let silu = GatedNormEpilogue {
            eps: 1e-5,
            act: GateActivation::Silu,
        };
        let kda = DeltaRuleParams {
            scan_block: 32,
            ..DeltaRuleParams::new(32, 32, 128, 128, DecayGate::PerChannel).with_gated_norm(silu)
        };
        assert!(delta_rule_cp_scan_out_supported(&kda));
        let cluster = delta_rule_chunk_parallel_with_scan_out(&kda, ScanOutExchange::Cluster).unwrap();
        let global = delta_rule_chunk_parallel_with_scan_out(&kda, ScanOutExchange::Global).unwrap();
        for m in [&cluster, &global] {
            assert!(m.entries.last().unwrap().starts_with("delta_rule_cp_scan_out_"));
        }
        assert!(cluster
            .source
            .contains("__cluster_dims__(4, 1, 1) __launch_bounds__(256) delta_rule_cp_scan_out_"));
        assert!(cluster.source.contains("cluster_put_async<NCL>") && !cluster.source.contains("dcp_so_wait("));
        assert!(!global.source.contains("__cluster_dims__(4"));
        assert!(
            global.source.contains("dcp_so_wait(dcp_so_count<C, DK, DV, NCL>")
                && !global.source.contains("cluster_put_async<NCL>(")
        );
        // The global form's prep zeroes each chunk's count after its last store.
        assert!(global
            .source
            .contains("if (tid == 0) *dcp_so_count<C, DK, DV, 4>(ws, ci) = 0u;"));
        assert!(!cluster.source.contains("*dcp_so_count<"));
        // ... and the ticket counter once, with chunk 0; the global form's blocks take their
        // places from it, the cluster form's from blockIdx.
        assert!(global
            .source
            .contains("if (tid == 0 && ci == 0) *dcp_so_ticket<C, DK, DV, 4>(ws) = 0u;"));
        assert!(global
            .source
            .contains("atomicAdd(dcp_so_ticket<C, DK, DV, NCL>(ws), 1u)"));
        assert!(!cluster.source.contains("dcp_so_ticket"));
        // Without the norm there is nothing to exchange: neither form's code.
        let plain = DeltaRuleParams {
            gated_norm: None,
            ..kda
        };
        let m = delta_rule_chunk_parallel_with_scan_out(&plain, ScanOutExchange::Global).unwrap();
        assert!(!m.source.contains("__cluster_dims__(4") && !m.source.contains("dcp_so_wait(dcp_so_count"));
        // Two buffers at SBV 32 with the norm (three do not fit), three without.
        assert_eq!(cp_scan_out_buffers(&kda), Some(2));
        assert_eq!(cp_scan_out_buffers(&plain), Some(3));
        assert!(delta_rule_cp_scan_out_launch(&kda, 1).smem <= DELTA_MAX_SMEM);
        // The global exchange needs a head's four blocks resident at once, whatever the grid.
        assert!(delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Global, 4));
        assert!(!delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Global, 3));
        assert!(delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Cluster, 3));
        assert!(delta_rule_cp_scan_out_runs_on(&plain, ScanOutExchange::Global, 1));
        // One block a head needs no exchange; a head of Dv 128 in SBV 128 does not fit a block.
        let wide = DeltaRuleParams { scan_block: 128, ..kda };
        assert!(!delta_rule_cp_scan_out_supported(&wide));
        assert!(delta_rule_chunk_parallel_with_scan_out(&wide, ScanOutExchange::Cluster).is_err());
    }

    #[test]
    fn defaults_are_valid_for_gdn_and_kda_shapes() {
        let gdn = DeltaRuleParams::new(8, 32, 64, 64, DecayGate::Scalar);
        let kda = DeltaRuleParams::new(16, 16, 128, 128, DecayGate::PerChannel);
        for p in [gdn, kda] {
            assert!(delta_rule_recurrent(&p).is_ok());
            assert!(delta_rule_chunked(&p).is_ok());
        }
        // Both take the tensor-core form, within a block's shared memory.
        for p in [gdn, kda, kda.with_gated_norm(SILU)] {
            assert!(delta_rule_tensor_cores(&p));
            assert!(delta_rule_chunked_smem(&p) <= DELTA_MAX_SMEM);
            assert!(delta_rule_chunked(&p)
                .unwrap()
                .source
                .contains("mma.sync.aligned.m16n8k16"));
        }
        // The SIMT form (Dk not a multiple of 16), C=16, Dk=120, Dv=128, BV=64: inside the
        // 48 KiB default.
        let simt = DeltaRuleParams::new(16, 16, 120, 128, DecayGate::PerChannel);
        assert!(!delta_rule_tensor_cores(&simt));
        assert!(delta_rule_chunked_smem(&simt) < 48 * 1024);
    }

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

    /// The chunk-parallel form: which shapes it covers, its three entries, launches and
    /// workspace, and that it fits a block's shared memory at the largest covered shapes.
    #[test]
    fn chunk_parallel_form_selection_launches_and_workspace() {
        for (dk, dv, ok) in [
            (128, 128, true),
            (64, 64, true),
            (32, 256, true),
            (128, 256, true),
            (16, 64, false),
            (48, 64, false),
            (96, 64, false),
            (128, 80, false),
            (128, 288, false),
        ] {
            for gate in [DecayGate::Scalar, DecayGate::PerChannel] {
                let p = DeltaRuleParams::new(2, 4, dk, dv, gate);
                assert_eq!(delta_rule_chunk_parallel_supported(&p), ok, "Dk {dk} Dv {dv}");
                assert_eq!(delta_rule_chunk_parallel(&p).is_ok(), ok, "Dk {dk} Dv {dv}");
                if dv <= DELTA_NORM_MAX_VALUE_DIM {
                    let n = p.with_gated_norm(SILU);
                    assert_eq!(delta_rule_chunk_parallel_supported(&n), ok, "Dk {dk} Dv {dv} norm");
                }
                if ok {
                    assert!(delta_rule_cp_smem(&p).iter().all(|&b| b <= DELTA_MAX_SMEM));
                }
            }
        }
        let p = DeltaRuleParams::new(16, 16, 128, 128, DecayGate::PerChannel).with_gated_norm(SILU);
        let src = delta_rule_chunk_parallel(&p).unwrap();
        // prep, scan (16 wide), out, then the scans 32, 64 and 128 wide.
        assert_eq!(src.entries.len(), 6);
        for (e, want) in src.entries.iter().zip([
            "delta_rule_cp_prep_",
            "delta_rule_cp_scan_",
            "delta_rule_cp_out_",
            "delta_rule_cp_scan_w32_",
            "delta_rule_cp_scan_w64_",
            "delta_rule_cp_scan_w128_",
        ]) {
            assert!(e.starts_with(want), "{e}");
            assert!(src.source.contains(&format!("{e}(")), "{e}");
        }
        assert!(src.source.contains("float* __restrict__ ws_raw)"));
        assert!(src.source.contains("silu_f(zj)"));
        // Placeholders are @NAME@ (PTX predicates, `@!done`, are not).
        let placeholder = src
            .source
            .match_indices('@')
            .any(|(i, _)| src.source[i + 1..].starts_with(|c: char| c.is_ascii_uppercase()));
        assert!(!placeholder, "a placeholder left in the source");
        // Grids: chunks x heads x batch for prep and out, value blocks for the scan.
        let [prep, scan, out] = delta_rule_cp_launches(&p, 3, 130);
        assert_eq!(prep.grid, (3, 16, 3));
        assert_eq!(out.grid, (3, 16, 3));
        assert_eq!(p.scan_block, 16, "H16, Dv = 128: 128 scan blocks of 16 columns");
        assert_eq!(scan.grid, (8, 16, 3));
        assert_eq!((prep.block.0, scan.block.0, out.block.0), (256, 256, 256));
        assert_eq!([prep.smem, scan.smem, out.smem], delta_rule_cp_smem(&p));
        assert_eq!(
            delta_rule_cp_workspace_len(&p, 3, 130),
            3 * 16 * 3 * delta_rule_cp_workspace_per_chunk(&p)
        );
        // Traffic: every workspace region is written by one pass and read by a later one, so
        // the passes move the inputs, o, the state twice and the workspace twice. The gate rows
        // are the output pass's alone.
        for q in [p, DeltaRuleParams::new(4, 16, 128, 128, DecayGate::Scalar)] {
            let [t_prep, t_scan, t_out] = delta_rule_cp_traffic(&q, 3, 130);
            let rows = 3 * 130;
            let gate_cols = if q.gate == DecayGate::Scalar { 1 } else { 128 };
            let inputs = rows * (2 * q.key_heads * 128 * 2 + 16 * 128 * 2 + 16 * (gate_cols + 1) * 4);
            let gate = if q.gated_norm.is_some() { rows * 16 * 128 * 2 } else { 0 };
            let o = rows * 16 * 128 * 2;
            let state = 3 * 16 * 128 * 128 * 4;
            let ws = delta_rule_cp_workspace_len(&q, 3, 130) * 4;
            assert_eq!(
                t_prep + t_scan + t_out,
                (inputs + gate + o + 2 * state + 2 * ws) as u64,
                "{:?}",
                q.gate
            );
        }
        let plain = DeltaRuleParams { gated_norm: None, ..p };
        let [a, b, c] = delta_rule_cp_traffic(&p, 3, 130);
        assert_eq!(
            [a, b, c - 3 * 130 * 16 * 128 * 2],
            delta_rule_cp_traffic(&plain, 3, 130)
        );
        // The scan block is a template constant of each scan entry; the module has entries for
        // the wider blocks too; unsupported blocks are rejected.
        // Where Dv / SBV is 2, 4 or 8, the module with the cluster scan has one more entry, last:
        // the Hopper scan over clusters of that many blocks.
        for (sbv, ok, wide, cluster) in [
            (16, true, &[32, 64, 128][..], Some(8)),
            (32, true, &[64, 128][..], Some(4)),
            (64, true, &[128][..], Some(2)),
            (128, true, &[][..], None),
            (8, false, &[][..], None),
            (256, false, &[][..], None),
        ] {
            let q = DeltaRuleParams { scan_block: sbv, ..p };
            assert_eq!(delta_rule_chunk_parallel_supported(&q), ok, "SBV {sbv}");
            if ok {
                assert_eq!(delta_rule_cp_wide_scans(&q), wide, "SBV {sbv}");
                assert_eq!(delta_rule_cp_scan_cluster(&q), cluster, "SBV {sbv}");
                assert_eq!(delta_rule_chunk_parallel(&q).unwrap().entries.len(), 3 + wide.len());
                let src = delta_rule_chunk_parallel_with_cluster_scan(&q).unwrap();
                let hash = src.name().trim_start_matches("delta_rule_cp_prep_").to_string();
                assert_eq!(src.entries.len(), 3 + wide.len() + usize::from(cluster.is_some()));
                assert!(src
                    .source
                    .contains(&format!("delta_rule_cp_scan_body_{hash}<{sbv}, false>(q, q_stride, k,")));
                for w in wide {
                    assert!(
                        src.source.contains(&format!("_body_{hash}<{w}, false>(")),
                        "SBV {sbv} / {w}"
                    );
                }
                let mc = format!("delta_rule_cp_scan_mc_{hash}");
                assert_eq!(src.entries.last() == Some(&mc), cluster.is_some(), "SBV {sbv}");
                if let Some(cl) = cluster {
                    assert!(src
                        .source
                        .contains(&format!("__cluster_dims__({cl}, 1, 1) __launch_bounds__(256) {mc}(")));
                    assert!(src
                        .source
                        .contains(&format!("delta_rule_cp_scan_body_{hash}<{sbv}, true>(q, q_stride,")));
                } else {
                    assert!(!src.source.contains("__cluster_dims__"));
                }
            }
        }
        let odd = DeltaRuleParams {
            scan_block: 64,
            ..DeltaRuleParams::new(1, 1, 64, 96, DecayGate::Scalar)
        };
        assert!(!delta_rule_chunk_parallel_supported(&odd), "64 does not divide Dv = 96");
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
                let mut sources = vec![delta_rule_recurrent(&p).unwrap()];
                if !delta_rule_tensor_cores(&p) {
                    sources.push(delta_rule_chunked(&p).unwrap());
                }
                for src in sources {
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

    const SILU: GatedNormEpilogue = GatedNormEpilogue {
        eps: 1e-5,
        act: GateActivation::Silu,
    };

    /// The epilogue appends its three arguments after `T` and nothing else; without it the
    /// source mentions none of them (existing launches and kernels are unchanged).
    #[test]
    fn gated_norm_appends_arguments_only_when_on() {
        let plain = DeltaRuleParams::new(2, 4, 16, 80, DecayGate::PerChannel);
        let fused = plain.with_gated_norm(SILU);
        assert_eq!(fused.value_block, 96, "one block spans Dv = 80");
        assert_eq!(delta_rule_launch(&fused, 3, 0).grid, (1, 4, 3));
        let tail = "bf16* __restrict__ o, int o_stride, int T,\n    const bf16* __restrict__ gate, int gate_stride, \
                    const float* __restrict__ norm_w)";
        for (a, b) in [
            (delta_rule_chunked(&plain).unwrap(), delta_rule_chunked(&fused).unwrap()),
            (
                delta_rule_recurrent(&plain).unwrap(),
                delta_rule_recurrent(&fused).unwrap(),
            ),
        ] {
            assert!(
                a.source.contains("bf16* __restrict__ o, int o_stride, int T)"),
                "{}",
                a.name()
            );
            for word in ["gate_stride", "norm_w", "NORM_EPS", "nred", "nss", "epilogue"] {
                assert!(!a.source.contains(word), "{}: {word}", a.name());
            }
            assert!(b.source.contains(tail), "{}", b.source);
            assert!(b.source.contains("silu_f(zj)"), "{}", b.name());
            assert!(b.source.contains("constexpr float NORM_EPS = 1e-5f;"));
            assert_ne!(a.name(), b.name());
        }
        // The activation and eps are part of the kernel.
        let sig = plain.with_gated_norm(GatedNormEpilogue {
            act: GateActivation::Sigmoid,
            ..SILU
        });
        let sig_src = delta_rule_recurrent(&sig).unwrap();
        assert!(sig_src.source.contains("(1.0f / (1.0f + expf(-zj)))"));
        assert_ne!(sig_src.name(), delta_rule_recurrent(&fused).unwrap().name());
        let eps = plain.with_gated_norm(GatedNormEpilogue { eps: 1e-6, ..SILU });
        assert_ne!(
            delta_rule_chunked(&eps).unwrap().name(),
            delta_rule_chunked(&fused).unwrap().name()
        );
    }

    /// One block must hold a whole head: Dv up to 256, a value block covering it.
    #[test]
    fn gated_norm_needs_one_block_per_head() {
        for dv in [1, 8, 31, 32, 80, 128, 200, 256] {
            let p = DeltaRuleParams::new(1, 2, 16, dv, DecayGate::Scalar).with_gated_norm(SILU);
            assert!(gated_norm_supported(dv));
            assert!(p.value_block >= dv && p.value_block < dv + 32 && p.value_block.is_multiple_of(32));
            assert_eq!(delta_rule_launch(&p, 1, 0).grid.0, 1, "Dv {dv}");
            assert!(
                delta_rule_chunked(&p).is_ok() && delta_rule_recurrent(&p).is_ok(),
                "Dv {dv}"
            );
        }
        assert!(!gated_norm_supported(257) && !gated_norm_supported(0));
        let big = DeltaRuleParams::new(1, 2, 16, 288, DecayGate::Scalar).with_gated_norm(SILU);
        let err = delta_rule_recurrent(&big).unwrap_err();
        assert!(err.to_string().contains("limit of 256"), "{err}");
        // A head split over two blocks has no fused form.
        let split = DeltaRuleParams {
            value_block: 64,
            ..DeltaRuleParams::new(1, 2, 16, 128, DecayGate::Scalar).with_gated_norm(SILU)
        };
        let err = delta_rule_chunked(&split).unwrap_err();
        assert!(err.to_string().contains("one block per head"), "{err}");
        // Without the epilogue the block stays at most 128 threads.
        let wide = DeltaRuleParams {
            value_block: 256,
            ..DeltaRuleParams::new(1, 2, 16, 256, DecayGate::Scalar)
        };
        assert!(delta_rule_recurrent(&wide).is_err());
        for eps in [f32::NAN, -1.0, f32::INFINITY] {
            let p = DeltaRuleParams::new(1, 2, 16, 64, DecayGate::Scalar)
                .with_gated_norm(GatedNormEpilogue { eps, ..SILU });
            assert!(delta_rule_recurrent(&p).is_err(), "eps {eps}");
        }
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

    /// The prep forms: the default for the gate is what `delta_rule_chunk_parallel` emits; each
    /// form's text has exactly the parts its gate and pass count give it (two forms share a text
    /// exactly when they share the parts), every form keeps the entries, and `distinct_for`
    /// lists one form of each text, the default among them.
    #[test]
    fn chunk_parallel_prep_variants() {
        use CpPrepVariant::{Base, Compact, EarlySpan, EarlyStage, FewExp, ScalarRaw, UtHalves};
        for p in [
            DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(SILU),
            DeltaRuleParams::new(1, 2, 128, 128, DecayGate::Scalar),
            DeltaRuleParams::new(1, 1, 32, 256, DecayGate::PerChannel),
            DeltaRuleParams::new(2, 2, 64, 128, DecayGate::PerChannel),
            DeltaRuleParams::new(2, 2, 64, 64, DecayGate::Scalar),
        ] {
            let scalar = matches!(p.gate, DecayGate::Scalar);
            let one_pass = cp_prep_passes(&p) == 1;
            let default = CpPrepVariant::default_for(&p);
            // Compact is the default where its layout applies, and UtHalves' text elsewhere.
            let compact_applies = p.key_dim <= 128 && p.value_dim <= 128;
            let want = match (scalar, compact_applies) {
                (_, true) => Compact,
                (false, false) => UtHalves,
                (true, false) => EarlyStage,
            };
            assert_eq!(default, want);
            let emitted = delta_rule_chunk_parallel(&p).unwrap();
            assert_eq!(delta_rule_chunk_parallel_variant(&p, default).unwrap(), emitted);
            // (few_exp, raw, early, staged, halves, compact) of each form.
            let parts = |v: CpPrepVariant| {
                let v = if v == Compact && !compact_applies { UtHalves } else { v };
                let later = matches!(v, ScalarRaw | EarlySpan | EarlyStage | UtHalves | Compact);
                let raw = scalar && later;
                let few = v == FewExp || (!scalar && later);
                let early = !scalar && matches!(v, EarlySpan | UtHalves | Compact);
                let staged = scalar && !one_pass && matches!(v, EarlyStage | UtHalves | Compact);
                (few, raw, early, staged, v == UtHalves, v == Compact)
            };
            let sources: Vec<_> = CpPrepVariant::ALL
                .iter()
                .map(|&v| delta_rule_chunk_parallel_variant(&p, v).unwrap())
                .collect();
            for (i, &v) in CpPrepVariant::ALL.iter().enumerate() {
                for (j, &w) in CpPrepVariant::ALL.iter().enumerate() {
                    assert_eq!(sources[i] == sources[j], parts(v) == parts(w), "{v:?} {w:?}");
                }
            }
            let distinct = CpPrepVariant::distinct_for(&p);
            assert!(distinct.contains(&default), "{distinct:?}");
            for &v in &CpPrepVariant::ALL {
                let same: Vec<_> = distinct.iter().filter(|&&w| parts(w) == parts(v)).collect();
                assert_eq!(same.len(), 1, "{v:?} in {distinct:?}");
            }
            for (v, src) in CpPrepVariant::ALL.into_iter().zip(sources) {
                assert_eq!(src.entries.len(), emitted.entries.len(), "{v:?}");
                assert!(src.entries[0].starts_with("delta_rule_cp_prep_"), "{v:?}");
                let (few, raw, early, staged, halves, compact) = parts(v);
                assert_eq!(src.source.contains("(CpPrepVariant::FewExp)"), few, "{v:?}");
                assert_eq!(src.source.contains("(CpPrepVariant::ScalarRaw"), raw, "{v:?}");
                assert_eq!(src.source.contains("(CpPrepVariant::EarlySpan)"), early, "{v:?}");
                assert_eq!(src.source.contains("(CpPrepVariant::EarlyStage)"), staged, "{v:?}");
                // The UT inverse by halves, or by block distance; Compact: its layout, the
                // inverse's products in its upper triangle, three blocks an SM (and below, shared
                // memory for three at Dk = Dv = 128: an SM has 228 KiB, 1 KiB reserved per block).
                for (text, want) in [
                    ("dcp_ut_inverse_halves<C, FP, NT>(Lf", halves),
                    ("dtc_ut_inverse<C, FP, NT, true>(Lf", !halves && !compact),
                    ("(CpPrepVariant::Compact, a scalar gate)", compact && scalar),
                    ("(CpPrepVariant::Compact, a per-channel gate)", compact && !scalar),
                    (
                        "constexpr int KH = 32; /* key channels per pass (Compact) */",
                        compact && !scalar,
                    ),
                    ("dcp_ut_inverse_halves<C, FP, NT, true>(Lf", compact),
                    ("__launch_bounds__(256, 3) delta_rule_cp_prep_", compact),
                ] {
                    assert_eq!(src.source.contains(text), want, "{v:?}: {text}");
                }
                // Launches take the default form's (`delta_rule_cp_smem`); the forms with the
                // standard layout share one figure, above Compact's.
                let smem = delta_rule_cp_prep_smem(&p, v);
                assert_eq!(
                    smem == delta_rule_cp_smem(&p)[0],
                    parts(v).5 == parts(default).5,
                    "{v:?}"
                );
                let standard = delta_rule_cp_prep_smem(&p, Base);
                if compact {
                    assert!(smem < standard, "{v:?}");
                    if p.key_dim == 128 && p.value_dim == 128 {
                        assert_eq!(smem, 75_536);
                        assert!(3 * (smem + 1024) <= 228 * 1024);
                    }
                } else {
                    assert_eq!(smem, standard, "{v:?}");
                }
                // Every pass's q and k staged before the first pass waits; none later.
                assert_eq!(src.source.contains("if (pass > 0) stage_pass(pass);"), !staged, "{v:?}");
                assert_eq!(src.source.contains("else if (warp == 0 && pass == 0)"), staged, "{v:?}");
                // A scalar gate's per-row factors: all seven in Base, two in ScalarRaw, none in
                // FewExp (its step 4 takes its own exponentials).
                assert_eq!(src.source.contains("Ex[(3 + ii) * C + t] = exp2f"), v == Base, "{v:?}");
                assert_eq!(src.source.contains("Ex[C + t] = exp2f"), !few, "{v:?}");
                if raw {
                    // No span check or reference copies; the products scaled in f32.
                    assert!(!src.source.contains("atomicOr(flags"), "{v:?}");
                    assert!(!src.source.contains("const bf16* Bsrc = Kc"), "{v:?}");
                    assert_eq!(src.source.matches("exp2f(Gs[t] - Gs[s])").count(), 2, "{v:?}");
                }
                // The span check: g's rows read once, by the loads issued before the norms' block
                // (EarlySpan), or in a loop of their own after it; one atomicOr either way.
                assert_eq!(src.source.contains("span -= (PER_CHANNEL"), !raw && !early, "{v:?}");
                assert_eq!(src.source.matches("atomicOr(flags").count(), usize::from(!raw), "{v:?}");
                if early {
                    let loads = src.source.find("float4 sp_g[8];").unwrap();
                    let norms = src.source.find("if (VEC_NORM && vec_qk) {").unwrap();
                    let flags = src.source.find("atomicOr(flags, bits)").unwrap();
                    assert!(loads < norms && norms < flags, "{v:?}");
                }
            }
        }
    }
}
