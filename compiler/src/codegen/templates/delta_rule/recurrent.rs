//! The recurrent form (decode): one token at a time, the state in registers.

use super::*;

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
