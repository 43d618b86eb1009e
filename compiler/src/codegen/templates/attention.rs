//! Causal softmax attention with GQA, an optional sliding window and a KV cache (apriel2.md §2.1,
//! §3): a flash-style prefill (online softmax over key tiles) and a split-K one-token decode.
//!
//! RoPE is *not* applied here: q and k arrive already rotated (a glue kernel does it), and keys
//! are stored in the cache after RoPE, as upstream does.
//!
//! KV cache `[B, G, S_max, Dh]` bf16 (k and v alike). Sequence b holds `past_len[b]` tokens
//! before the call; the call appends its T new tokens at positions `past .. past+T` and the
//! caller then advances `past_len` by T. Position p lives in slot `p` (full attention; needs
//! `past + T ≤ S_max`) or slot `p mod S_max` (sliding window W: a ring, which needs
//! `S_max ≥ W + T − 1` so that appending never overwrites a key that a query of the same call
//! still reads; decode needs `S_max ≥ W`). New keys are read from the k/v inputs, not back from
//! the cache, so no block depends on another block's writes.
//!
//! Any head size `1 ≤ Dh ≤ 256` works (the spec requires even head sizes for RoPE; the kernels
//! do not). Invariants the kernels rely on, for every Dh:
//! - warp shuffles and reductions (`warp_sum`, `warp_max`, `__shfl_sync` with the full mask) run
//!   over *keys*, one key per lane of a 32-key tile, never over head channels: every lane of
//!   every warp reaches them (the branches around them are warp-uniform), so they are full-warp
//!   operations whatever Dh is. Lanes whose key is invisible or past the end hold score −∞ and
//!   probability 0;
//! - head channels are spread over lanes as `d = lane + 32·i`, `i < DPL = ceil(Dh/32)`. When
//!   `Dh % 32 ≠ 0` the lanes with `d ≥ Dh` own no channel: they skip the P·V accumulation and the
//!   stores (`DTAIL` guards, compile-time false when Dh is a multiple of 32, so those kernels
//!   are unchanged), and they never index shared memory or global memory past a row;
//! - shared tiles hold exactly Dh columns (q, v) or KP columns (k, padded to an odd stride so
//!   that 32 lanes reading 32 different key rows hit 32 different banks);
//!   `attention_prefill_smem` is their size in bytes;
//! - the combine kernel runs one thread per channel (Dh threads, any count ≥ 1) and has no warp
//!   operations.

use super::{blocks, check, dim, f32_lit, finish, KernelSource, Launch, TemplateError, HASH, PRELUDE};

/// Compile-time constants of both attention kernels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParams {
    /// Query heads H.
    pub heads: usize,
    /// KV heads G (H a multiple of G; query head h reads KV head h / (H/G)).
    pub kv_heads: usize,
    /// Dh: any size in 1..=[`ATTN_MAX_HEAD_DIM`].
    pub head_dim: usize,
    /// Sliding window W (keys j with p − W < j ≤ p); `None` is full causal attention.
    pub window: Option<usize>,
    /// Score scale, usually `head_dim^−½`.
    pub scale: f32,
}

/// Queries per prefill block (4 warps × 4 queries).
pub const ATTN_PREFILL_QUERIES_PER_BLOCK: usize = 16;
/// Keys per tile.
pub const ATTN_KEYS_PER_TILE: usize = 32;
/// Threads of the prefill and decode blocks.
pub const ATTN_THREADS: usize = 128;
/// Largest head size: the per-lane output accumulators (`4·ceil(Dh/32)` floats in the prefill)
/// live in registers, and the prefill tiles take `attention_prefill_smem` bytes (82 KiB here).
pub const ATTN_MAX_HEAD_DIM: usize = 256;

/// Row stride (floats) of the prefill's shared key tile: Dh padded to an odd number, so that the
/// 32 lanes of a warp, each reading its own key row at the same channel, hit 32 distinct banks.
fn key_stride(head_dim: usize) -> usize {
    head_dim | 1
}

fn validate(p: &AttentionParams, template: &'static str) -> Result<(), TemplateError> {
    check(
        template,
        p.heads > 0 && p.kv_heads > 0 && p.heads.is_multiple_of(p.kv_heads),
        || {
            format!(
                "heads {} must be a positive multiple of kv_heads {}",
                p.heads, p.kv_heads
            )
        },
    )?;
    check(template, p.head_dim >= 1, || "head_dim must be at least 1".into())?;
    check(template, p.head_dim <= ATTN_MAX_HEAD_DIM, || {
        format!(
            "head_dim {} exceeds the template's limit of {ATTN_MAX_HEAD_DIM} (per-lane output \
             accumulators live in registers)",
            p.head_dim
        )
    })?;
    check(template, p.window != Some(0), || "window 0 sees no key".into())?;
    check(template, p.scale.is_finite() && p.scale > 0.0, || {
        format!("scale {} must be finite and positive", p.scale)
    })?;
    Ok(())
}

fn window_name(p: &AttentionParams) -> String {
    match p.window {
        Some(w) => format!("sliding window W = {w} (ring cache, slot = pos mod S_max)"),
        None => "full causal (slot = pos)".to_string(),
    }
}

/// Constants shared by both kernels, as `constexpr` lines.
fn constants(p: &AttentionParams) -> String {
    format!(
        "    constexpr int H = {h};\n    constexpr int G = {g};\n    constexpr int R = H / G;\n    \
         constexpr int DH = {dh};\n    constexpr int DPL = (DH + 31) / 32;\n    \
         constexpr bool DTAIL = DH % 32 != 0;\n    constexpr int KP = {kp};\n    (void)KP;\n    constexpr int W = {w};\n    \
         constexpr float SCALE = {scale};\n    constexpr int BK = {bk};\n    constexpr int NW = {nw};\n",
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        kp = key_stride(p.head_dim),
        w = p.window.unwrap_or(0),
        scale = f32_lit(p.scale),
        bk = ATTN_KEYS_PER_TILE,
        nw = ATTN_THREADS / 32,
    )
}

/// Emits `attn_prefill_<hash>`.
///
/// Kernel arguments, in order:
/// `(const bf16* q, int q_stride, const bf16* k, int k_stride, const bf16* v, int v_stride,
///   bf16* k_cache, bf16* v_cache, const int* past_len, bf16* out, int out_stride,
///   int T, int s_max)`
/// - q `[B, T, H·Dh]`, k and v `[B, T, G·Dh]`, out `[B, T, H·Dh]`, rows with the given strides;
/// - caches `[B, G, s_max, Dh]`; past_len `[B]` int32 (see the module doc for the slot rules).
///
/// Launch with [`attention_prefill_launch`].
pub fn attention_prefill(p: &AttentionParams) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_prefill")?;
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
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)
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
    Ok(finish(&[&format!("attn_prefill_{HASH}")], body))
}

/// Dynamic shared memory of [`attention_prefill`], in bytes (q tile, padded k tile, v tile).
pub fn attention_prefill_smem(p: &AttentionParams) -> u32 {
    let (bq, bk, dh) = (ATTN_PREFILL_QUERIES_PER_BLOCK, ATTN_KEYS_PER_TILE, p.head_dim);
    dim(4 * (bq * dh + bk * key_stride(dh) + bk * dh))
}

/// Launch geometry of [`attention_prefill`] (dynamic shared memory included).
pub fn attention_prefill_launch(p: &AttentionParams, batch: usize, tokens: usize) -> Launch {
    Launch::new(
        (blocks(tokens, ATTN_PREFILL_QUERIES_PER_BLOCK), dim(p.heads), dim(batch)),
        (dim(ATTN_THREADS), 1, 1),
        attention_prefill_smem(p),
    )
}

/// Emits `attn_decode_<hash>` (split-K partials) and `attn_decode_combine_<hash>`.
///
/// `attn_decode_<hash>` arguments, in order:
/// `(const bf16* q, int q_stride, const bf16* k, int k_stride, const bf16* v, int v_stride,
///   bf16* k_cache, bf16* v_cache, const int* past_len, float* partial, int s_max, int n_splits)`
/// - one new token per sequence: row b of q `[B, H·Dh]`, k, v `[B, G·Dh]` (strides in elements);
/// - partial `[B, H, n_splits, Dh + 2]` f32 workspace: (max, sum, unnormalised output).
///
/// `attn_decode_combine_<hash>` arguments: `(const float* partial, bf16* out, int out_stride,
///   int n_splits)`, out row b `[B, H·Dh]`.
///
/// Launch both with [`attention_decode_launch`]; pick `n_splits` so that
/// `B·H·n_splits` covers the SMs (e.g. `ceil(2·SMs / (B·H))`, at most `ceil(len / 32)`).
pub fn attention_decode(p: &AttentionParams) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_decode")?;
    let body = format!(
        r#"/*
 * attn_decode_{HASH}: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = {h}, G = {g}, Dh = {dh}, scale = {scale}, {window}.
 *   Split-K: block (split, h, b) covers a contiguous share of the visible keys; its 4 warps
 *   take interleaved 32-key tiles, merge in shared memory, and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:]. attn_decode_combine_{HASH} merges the splits and normalises.
 *   The (split 0, h % (H/G) == 0) block appends the new k/v row at position past_len[b].
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, H, B) x {threads} threads; combine (H, B) x Dh threads.
 * Lane l of a warp scores key kt0 + l (full-warp shuffles over keys) and accumulates output
 *   channels l + 32 i, i < ceil(Dh/32); when Dh % 32 != 0 lanes past Dh own no channel (DTAIL).
 */
{PRELUDE}
/* The min-blocks hint (4) keeps ptxas from a 4-byte spill it made at 32 registers. */
extern "C" __global__ void __launch_bounds__({threads}, 4) attn_decode_{HASH}(
    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)
{{
{consts}    __shared__ float q_s[DH];
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
    if (split == 0 && h % R == 0) {{
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = threadIdx.x; d < DH; d += blockDim.x) {{
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }}
    }}
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int n = qpos - lo + 1;
    const int per = (n + n_splits - 1) / n_splits;
    const int a = lo + split * per;
    const int e = min(a + per, qpos + 1);
    __syncthreads();

    float m = -INFINITY, l = 0.0f, o[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[i] = 0.0f;
    for (int kt0 = a + warp * BK; kt0 < e; kt0 += NW * BK) {{
        const int pos = kt0 + lane;
        const bool valid = pos < e;
        const bf16* kr = knew;
        if (valid && pos < qpos) kr = kc + (W > 0 ? (long)pos % s_max : (long)pos) * DH;
        float s = -INFINITY;
        if (valid) {{
            s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < DH; ++d) s = fmaf(q_s[d], bf2f(kr[d]), s);
        }}
        const float mn = fmaxf(m, warp_max(s)); /* finite: tile has a valid key */
        const float pr = valid ? expf(s - mn) : 0.0f;
        const float corr = expf(m - mn);
        l = l * corr + warp_sum(pr);
        m = mn;
#pragma unroll
        for (int i = 0; i < DPL; ++i) o[i] *= corr;
        const int jn = min(BK, e - kt0);
        for (int j = 0; j < jn; ++j) {{
            const float pj = __shfl_sync(0xffffffffu, pr, j);
            const int pj_pos = kt0 + j;
            const bf16* vr = pj_pos < qpos ? vc + (W > 0 ? (long)pj_pos % s_max : (long)pj_pos) * DH : vnew;
#pragma unroll
            for (int i = 0; i < DPL; ++i)
                if (!DTAIL || lane + 32 * i < DH) o[i] = fmaf(pj, bf2f(vr[lane + 32 * i]), o[i]);
        }}
    }}
    if (lane == 0) {{ red_m[warp] = m; red_l[warp] = l; }}
#pragma unroll
    for (int i = 0; i < DPL; ++i)
        if (!DTAIL || lane + 32 * i < DH) red_o[warp][lane + 32 * i] = o[i];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) M = fmaxf(M, red_m[w]);
    float* dst = partial + ((b * H + h) * (long)n_splits + split) * (DH + 2);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {{
        float acc = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) acc += red_o[w][d] * expf(red_m[w] - M);
        dst[2 + d] = acc;
    }}
    if (threadIdx.x == 0) {{
        float L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if (red_m[w] != -INFINITY) L += red_l[w] * expf(red_m[w] - M);
        dst[0] = M;
        dst[1] = L;
    }}
}}

extern "C" __global__ void attn_decode_combine_{HASH}(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{{
    constexpr int H = {h};
    constexpr int DH = {dh};
    const int h = blockIdx.x;
    const long b = blockIdx.y;
    const float* src = partial + (b * H + h) * (long)n_splits * (DH + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_splits; ++s) M = fmaxf(M, src[s * (DH + 2)]);
    for (int d = threadIdx.x; d < DH; d += blockDim.x) {{
        float L = 0.0f, acc = 0.0f;
        for (int s = 0; s < n_splits; ++s) {{
            const float ms = src[s * (DH + 2)];
            if (ms == -INFINITY) continue;
            const float c = expf(ms - M);
            L += src[s * (DH + 2) + 1] * c;
            acc += src[s * (DH + 2) + 2 + d] * c;
        }}
        out[b * out_stride + h * DH + d] = f2bf(acc / L);
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
    Ok(finish(
        &[&format!("attn_decode_{HASH}"), &format!("attn_decode_combine_{HASH}")],
        body,
    ))
}

/// Launch geometry of the two decode kernels: `(partials, combine)`.
pub fn attention_decode_launch(p: &AttentionParams, batch: usize, n_splits: usize) -> (Launch, Launch) {
    (
        Launch::new(
            (dim(n_splits.max(1)), dim(p.heads), dim(batch)),
            (dim(ATTN_THREADS), 1, 1),
            0,
        ),
        Launch::new((dim(p.heads), dim(batch), 1), (dim(p.head_dim), 1, 1), 0),
    )
}

/// Elements of the decode workspace `partial`.
pub fn attention_decode_workspace_len(p: &AttentionParams, batch: usize, n_splits: usize) -> usize {
    batch * p.heads * n_splits.max(1) * (p.head_dim + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> AttentionParams {
        AttentionParams {
            heads: 8,
            kv_heads: 2,
            head_dim: 64,
            window: None,
            scale: 0.125,
        }
    }

    #[test]
    fn rejects_unsupported_shapes() {
        for head_dim in [0, ATTN_MAX_HEAD_DIM + 2] {
            let err = attention_prefill(&AttentionParams { head_dim, ..params() }).unwrap_err();
            assert!(err.reason.contains("head_dim"), "{err}");
        }
        let err = attention_decode(&AttentionParams {
            head_dim: 512,
            ..params()
        })
        .unwrap_err();
        assert!(err.to_string().contains("limit of 256"), "{err}");
        assert!(attention_prefill(&AttentionParams {
            kv_heads: 3,
            ..params()
        })
        .is_err());
        assert!(attention_decode(&AttentionParams {
            window: Some(0),
            ..params()
        })
        .is_err());
        assert!(attention_prefill(&params()).is_ok());
    }

    #[test]
    fn any_head_dim_up_to_the_limit_is_accepted() {
        for head_dim in [1, 2, 8, 16, 24, 33, 48, 100, 256] {
            let p = AttentionParams { head_dim, ..params() };
            let pre = attention_prefill(&p).unwrap();
            let dec = attention_decode(&p).unwrap();
            for src in [&pre, &dec] {
                assert!(src.source.contains(&format!("constexpr int DH = {head_dim};")));
                assert!(src.source.contains("constexpr bool DTAIL = DH % 32 != 0;"));
            }
            // The key tile's row stride is odd (bank-conflict free) and at least Dh.
            let kp = key_stride(head_dim);
            assert!(kp >= head_dim && kp % 2 == 1 && kp <= head_dim + 1);
            let want = 4 * (16 * head_dim + 32 * kp + 32 * head_dim);
            assert_eq!(attention_prefill_smem(&p) as usize, want);
        }
    }

    #[test]
    fn decode_has_two_entries_sharing_the_hash() {
        let src = attention_decode(&params()).unwrap();
        assert_eq!(src.entries.len(), 2);
        let hash = src.entries[0].trim_start_matches("attn_decode_");
        assert_eq!(src.entries[1], format!("attn_decode_combine_{hash}"));
        let windowed = attention_decode(&AttentionParams {
            window: Some(16),
            ..params()
        })
        .unwrap();
        assert_ne!(windowed.entries, src.entries);
        assert!(windowed.source.contains("constexpr int W = 16;"));
    }
}
