//! The SIMT prefill: f32 FMA on any head size (the module doc's invariants).

use super::*;

/// The SIMT prefill: f32 FMA on any head size (see the module doc's invariants).
pub(super) fn prefill_simt(p: &AttentionParams) -> KernelSource {
    let bq = ATTN_PREFILL_QUERIES_PER_BLOCK;
    let body = format!(
        r#"/*
 * attn_prefill_{HASH}: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = {h} query heads, G = {g} KV heads, Dh = {dh}, scale = {scale}, {window}.
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t; f32 online softmax (flash style), f32 accumulation.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 * Grid (ceil(T/{bq}), H, B), block {threads} (4 warps x 4 queries),
 *   dynamic smem 4 * (BQ*Dh + BK*KP + BK*Dh) bytes (attention_prefill_smem), KP = Dh | 1.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({threads}) attn_prefill_{HASH}(
{PREFILL_PARAMS}
{{
{consts}    constexpr int BQ = {bq};
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

    for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {{
        const int r = i / DH, d = i % DH, t = qt0 + r;
        q_s[r][d] = t < T ? bf2f(q[(b * T + t) * q_stride + h * DH + d]) * SCALE : 0.0f;
    }}
    /* Append this tile's new keys/values (one query head per KV group does it). */
    if (h % R == 0) {{
        for (int i = threadIdx.x; i < BQ * DH; i += blockDim.x) {{
            const int r = i / DH, d = i % DH, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {{
                kc[slot * DH + d] = k[(b * T + t) * k_stride + g * DH + d];
                vc[slot * DH + d] = v[(b * T + t) * v_stride + g * DH + d];
            }}
        }}
    }}

    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    float m[QPW], l[QPW], o[QPW][DPL];
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {{
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[qi][i] = 0.0f;
    }}
    __syncthreads();

    for (int kt0 = lo; kt0 <= hi; kt0 += BK) {{
        for (int i = threadIdx.x; i < BK * DH; i += blockDim.x) {{
            const int r = i / DH, d = i % DH, pos = kt0 + r;
            float kv = 0.0f, vv = 0.0f;
            if (pos <= hi) {{
                if (pos < past) {{
                    const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                    if (slot < s_max) {{
                        kv = bf2f(kc[slot * DH + d]);
                        vv = bf2f(vc[slot * DH + d]);
                    }}
                }} else {{
                    const long row = b * T + (pos - past);
                    kv = bf2f(k[row * k_stride + g * DH + d]);
                    vv = bf2f(v[row * v_stride + g * DH + d]);
                }}
            }}
            k_s[r][d] = kv;
            v_s[r][d] = vv;
        }}
        __syncthreads();
#pragma unroll
        for (int qi = 0; qi < QPW; ++qi) {{
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
            for (int j = 0; j < BK; ++j) {{
                const float pj = __shfl_sync(0xffffffffu, pr, j);
#pragma unroll
                for (int i = 0; i < DPL; ++i)
                    if (!DTAIL || lane + 32 * i < DH) o[qi][i] = fmaf(pj, v_s[j][lane + 32 * i], o[qi][i]);
            }}
        }}
        __syncthreads();
    }}
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {{
        const int t = qt0 + warp * QPW + qi;
        if (t >= T) continue;
        const float inv = 1.0f / l[qi];
#pragma unroll
        for (int i = 0; i < DPL; ++i)
            if (!DTAIL || lane + 32 * i < DH)
                out[(b * T + t) * out_stride + h * DH + lane + 32 * i] = f2bf(o[qi][i] * inv);
    }}
}}
"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        threads = ATTN_THREADS,
        consts = constants(p),
    );
    finish(&[&format!("attn_prefill_{HASH}")], body)
}
