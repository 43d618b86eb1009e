//! The one-token decode of causal softmax attention with GQA, an optional sliding window and a
//! KV cache (apriel2.md §2.1, §3): split-K partials and a combine (see `attention.rs`'s module
//! doc for the cache layout, the slot rules and the invariants the SIMT kernels keep).

use super::attention::{constants, tensor_core_constants, validate, window_name, AttentionParams, ATTN_THREADS};
use super::rope::{rope_inv_freq_table, rope_rotated, ROPE_SINCOS};
use super::{check, dim, f32_lit, finish, KernelSource, Launch, TemplateError, HASH, MMA_PRELUDE, PRELUDE};

/// Largest query-heads-per-KV-head ratio of the grouped decode (its queries and accumulators are
/// `2·8·R` registers per thread).
pub const ATTN_GROUPED_MAX_RATIO: usize = 8;

/// Whether [`attention_decode`] emits the grouped kernel for `p` (one block per KV head serving
/// all its query heads, 16-byte loads; else the SIMT one): `Dh/8` lanes per key must divide a
/// warp (Dh = 8, one lane per key, is left to the SIMT kernel: ptxas spills its windowed form),
/// and at most [`ATTN_GROUPED_MAX_RATIO`] query heads share a KV head.
pub fn grouped_decode(p: &AttentionParams) -> bool {
    matches!(p.head_dim, 16 | 32 | 64 | 128 | 256) && p.kv_heads > 0 && p.heads / p.kv_heads <= ATTN_GROUPED_MAX_RATIO
}

/// Heads along the decode grid's y axis: KV heads for the grouped kernel, query heads otherwise.
pub fn attention_decode_heads_per_grid(p: &AttentionParams) -> usize {
    if grouped_decode(p) {
        p.kv_heads
    } else {
        p.heads
    }
}

/// The parameter list every decode (partials) kernel takes.
const DECODE_PARAMS: &str = "    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    float* __restrict__ partial, int s_max, int n_splits)";

/// What the fused decode ([`attention_decode_fused`]) takes after [`DECODE_PARAMS`]' own: the
/// output rows, and a count per (KV head, sequence) that its blocks number themselves by.
const DECODE_FUSED_PARAMS: &str = ",
    bf16* __restrict__ out, int out_stride, unsigned* __restrict__ count)";

/// The tensor-core decode's reads of what the kernel before writes (q, the new k/v row), and
/// the split-0 block's append of that row to the cache; `q_rows` is the block's first query
/// row (row `fr` follows at `fr * DH`).
fn decode_mma_fetch(q_rows: &str) -> String {
    format!(
        r#"    if (split == 0) {{
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = tid; d < DH; d += blockDim.x) {{
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }}
    }}
    /* q as mma A fragments: row fr = query head g*R + fr (zero past R), columns fc, fc+1 and
       fc+8, fc+9 of each 16-channel k-step; rows 8..15 are zero registers. */
    unsigned qa[KS][2];
#pragma unroll
    for (int s = 0; s < KS; ++s) {{
        qa[s][0] = 0u;
        qa[s][1] = 0u;
        if (fr < R) {{
            const bf16* qrow = {q_rows} + 16 * s + fc;
            qa[s][0] = pack_bf16x2(bf2f(qrow[0]), bf2f(qrow[1]));
            qa[s][1] = pack_bf16x2(bf2f(qrow[8]), bf2f(qrow[9]));
        }}
    }}
"#
    )
}

/// Where the q rows of [`decode_mma_fetch`] are: the kernel's `q` argument.
const Q_ROWS: &str = "q + b * q_stride + (g * R + fr) * DH";

/// The parameters the decode with RoPE folded in takes after [`DECODE_PARAMS`]' own (whose `q`
/// and `k` it then does not read): the unrotated q and k rows and the tokens' positions.
const DECODE_ROPE_PARAMS: &str = ",
    const bf16* __restrict__ q_in, int q_in_stride, const bf16* __restrict__ k_in, int k_in_stride,
    const int* __restrict__ positions";

/// The decode with RoPE folded in, after the wait: the block's R query rows and the new key
/// row, rotated as the rope kernel does (`templates/rope.rs`) and rounded to bf16 as it stores
/// them, into shared memory, where the rest reads them.
fn rope_fetch(head_dim: usize) -> String {
    let rotated = rope_rotated::<std::convert::Infallible>(
        |c| Ok(format!("x({c})")),
        &format!("rope_inv_freq_{HASH}"),
        "pos",
        head_dim,
    )
    .unwrap_or_else(|e| match e {});
    format!(
        r#"    /* RoPE folded in: this block's R query rows and the new key row, rotated as the rope
       kernel would rotate them (f32, stored as bf16), into shared memory. */
    __shared__ __align__(16) bf16 q_rot[R * DH];
    __shared__ __align__(16) bf16 k_rot[DH];
    {{
        const double pos = (double)positions[b];
        for (int idx = tid; idx < (R + 1) * DH; idx += blockDim.x) {{
            const int r = idx / DH, c = idx % DH;
            const bf16* x_row = r < R ? q_in + b * q_in_stride + (g * R + r) * DH : k_in + b * k_in_stride + g * DH;
            auto x = [&](int ch) -> float {{ return bf2f(x_row[ch]); }};
            (r < R ? q_rot + r * DH : k_rot)[c] = f2bf({rotated});
        }}
        __syncthreads();
    }}
    knew = k_rot;
{fetch}"#,
        fetch = decode_mma_fetch("q_rot + fr * DH"),
    )
}

/// Where the decode that loads its first tiles early waits for the kernel before.
const EARLY_WAIT: &str = "    /* The first tiles (cached keys, written by earlier steps) are on their way: now wait for
       the kernel before, whose q and new k/v row the rest reads. */
";

/// The tensor-core decode's form: who merges the splits, whether the first tiles load before the
/// dependent-launch wait, and the RoPE `theta` where it rotates q and k itself.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MmaForm {
    merge: Merge,
    early: bool,
    rope: Option<f64>,
}

/// Who merges the splits' partials of the tensor-core decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// The module's second entry, `attn_decode_combine_<hash>`, launched after the partials.
    Combine,
    /// The last block of each (KV head, sequence) to finish, in the same launch.
    LastBlock,
}

/// The fused decode's merge, after its partials are written: each block fences them and takes
/// a number from `count`; the one that finishes last merges the splits of its R query heads as
/// the combine kernel does (the same order and arithmetic, reading through L2) and leaves the
/// count zero for the next call.
const LAST_BLOCK_MERGE: &str = r#"    /* The splits' merge, by the block of (g, b) that finishes last. */
    __shared__ bool merges;
    __threadfence();
    __syncthreads();
    if (tid == 0) merges = atomicAdd(count + b * G + g, 1u) == (unsigned)n_splits - 1u;
    __syncthreads();
    if (!merges) return;
    __threadfence();
    for (int idx = tid; idx < R * DH; idx += blockDim.x) {
        const int h = g * R + idx / DH, d = idx % DH;
        const float* src = partial + (b * H + h) * (long)n_splits * (DH + 2);
        float M = -INFINITY;
        for (int s = 0; s < n_splits; ++s) M = fmaxf(M, __ldcg(src + s * (DH + 2)));
        float L = 0.0f, acc = 0.0f;
        for (int s = 0; s < n_splits; ++s) {
            const float ms = __ldcg(src + s * (DH + 2));
            if (ms == -INFINITY) continue;
            const float c = expf(ms - M);
            L += __ldcg(src + s * (DH + 2) + 1) * c;
            acc += __ldcg(src + s * (DH + 2) + 2 + d) * c;
        }
        out[b * out_stride + h * DH + d] = f2bf(acc / L);
    }
    if (tid == 0) count[b * G + g] = 0u;
"#;

/// Shared-memory stages of the grouped decode's key/value tiles.
pub const ATTN_DECODE_STAGES: usize = 4;

/// Keys per shared-memory tile of the grouped decode: 4 warps × (keys per warp step) × steps
/// (it mirrors `BT` in the kernel: 32 for 32 ≤ Dh ≤ 128; Dh 256 takes 4 steps of one key, as 8
/// would spill registers).
fn decode_keys_per_tile(head_dim: usize) -> usize {
    let keys_per_step = 32 / (head_dim / 8).max(1);
    let steps = match keys_per_step {
        8.. => 1,
        2.. => 8 / keys_per_step,
        _ => 4,
    };
    4 * keys_per_step * steps
}

/// Forms of the decode's partials kernel ([`attention_decode_variant`]); every form takes the
/// same arguments and writes the same partials, and shares the combine kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeVariant {
    /// CUDA cores: `Dh/8` lanes per key, scores reduced with warp shuffles,
    /// [`ATTN_DECODE_STAGES`] shared-memory stages of 32-key tiles (the grouped kernel up to
    /// 2026-12-03).
    Cuda,
    /// Tensor cores (`mma.sync` m16n8k16): per warp and 16-key chunk, S = Q Kᵀ with the query
    /// heads as the 16 rows (rows past R zero) and O += P V; keys and values staged through
    /// shared memory (`cp.async`, this many stages of [`ATTN_DECODE_MMA_KEYS`]-key tiles, rows
    /// padded by 8 channels for conflict-free `ldmatrix`). Needs [`mma_decode`] shapes; others
    /// fall back to [`DecodeVariant::Cuda`] (or the SIMT kernel).
    Mma(usize),
}

/// The form [`attention_decode`] emits (where [`mma_decode`] holds).
pub const ATTN_DECODE_DEFAULT: DecodeVariant = DecodeVariant::Mma(3);

/// Keys per shared-memory tile of the tensor-core decode: 4 warps × 16 keys.
pub const ATTN_DECODE_MMA_KEYS: usize = 64;

/// Whether the tensor-core decode serves `p`: the grouped decode's shapes with whole 16-channel
/// k-steps up to Dh 128 (its output accumulators, `Dh/2` floats per thread, live in registers).
pub fn mma_decode(p: &AttentionParams) -> bool {
    grouped_decode(p) && p.head_dim.is_multiple_of(16) && p.head_dim <= 128
}

/// The form actually emitted for `p` when `v` is asked for: `None` for the SIMT kernel.
fn effective_variant(p: &AttentionParams, v: DecodeVariant) -> Option<DecodeVariant> {
    match v {
        DecodeVariant::Mma(_) if mma_decode(p) => Some(v),
        _ if grouped_decode(p) => Some(DecodeVariant::Cuda),
        _ => None,
    }
}

fn mma_smem(p: &AttentionParams, stages: usize) -> usize {
    stages * ATTN_DECODE_MMA_KEYS * (p.head_dim + 8) * 2 * 2
}

/// Dynamic shared memory of the decode kernel, in bytes: the grouped kernels' staged k and v
/// tiles, none for the SIMT one.
pub fn attention_decode_smem(p: &AttentionParams) -> u32 {
    attention_decode_variant_smem(p, ATTN_DECODE_DEFAULT)
}

/// [`attention_decode_smem`] of a given form.
pub fn attention_decode_variant_smem(p: &AttentionParams, v: DecodeVariant) -> u32 {
    match effective_variant(p, v) {
        Some(DecodeVariant::Mma(stages)) => dim(mma_smem(p, stages)),
        Some(DecodeVariant::Cuda) => dim(ATTN_DECODE_STAGES * decode_keys_per_tile(p.head_dim) * p.head_dim * 2 * 2),
        None => 0,
    }
}

/// Blocks of the decode kernel resident per SM (what the split count aims to fill): the
/// tensor-core form's shared memory allows 2 blocks up to about 113 KiB, else 1; the CUDA-core
/// and SIMT forms count 2 (the split count they were tuned with).
pub fn attention_decode_blocks_per_sm(p: &AttentionParams) -> usize {
    match effective_variant(p, ATTN_DECODE_DEFAULT) {
        Some(DecodeVariant::Mma(stages)) if mma_smem(p, stages) > 113 * 1024 => 1,
        _ => 2,
    }
}

/// Fewest keys per split worth a block: one tensor-core tile, else 32.
pub fn attention_decode_min_keys(p: &AttentionParams) -> usize {
    match effective_variant(p, ATTN_DECODE_DEFAULT) {
        Some(DecodeVariant::Mma(_)) => ATTN_DECODE_MMA_KEYS,
        _ => 32,
    }
}

/// The split count the executor picks for `batch` sequences of `past` cached tokens on `sms`
/// SMs (`codegen::cores::attention_decode_splits` as a function): as many splits as fit the
/// resident blocks in one wave, `floor(blocks_per_sm·SMs / (B·Y))`, at most one per
/// [`attention_decode_min_keys`] cached keys (and window), at least one.
pub fn attention_decode_pick_splits(p: &AttentionParams, batch: usize, past: usize, sms: usize) -> usize {
    let y = batch * attention_decode_heads_per_grid(p);
    let fill = (attention_decode_blocks_per_sm(p) * sms) / y.max(1);
    let keys = match p.window {
        Some(w) => (past + 1).min(w),
        None => past + 1,
    };
    fill.min(keys.div_ceil(attention_decode_min_keys(p))).max(1)
}

/// The end of the grouped decode kernels (CUDA-core and tensor-core): the block's warps merge
/// their (max, sum, output) records of each query row, and the split's partial record is written.
/// `m`, `l` and `o` are the forms' expressions of warp `w`'s max, sum and output of row `r`
/// (channel `d`).
fn warp_merge_tail(m: &str, l: &str, o: &str) -> String {
    format!(
        r#"    for (int idx = tid; idx < R * DH; idx += blockDim.x) {{
        const int r = idx / DH, d = idx % DH;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < NW; ++w) M = fmaxf(M, {m});
        float acc = 0.0f, L = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
            if ({m} != -INFINITY) {{
                const float c = exp2f({m} - M);
                acc += {o} * c;
                L += {l} * c;
            }}
        float* dst = partial + ((b * H + g * R + r) * (long)n_splits + split) * (DH + 2);
        dst[2 + d] = acc;
        if (d == 0) {{
            dst[0] = M == -INFINITY ? M : M * 0.6931471805599453f;
            dst[1] = L;
        }}
    }}
"#
    )
}

/// The grouped decode: one block per (split, KV head, sequence) serving the head's R query
/// heads, so every cached key and value is read once; cached keys and values stream through
/// shared memory in tiles, [`ATTN_DECODE_STAGES`] deep (`cp.async`), and `Dh/8` lanes hold one
/// key (16-byte reads).
fn decode_grouped(p: &AttentionParams, combine: &str) -> KernelSource {
    let body = format!(
        r#"/*
 * attn_decode_{HASH}: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = {h}, G = {g}, Dh = {dh}, scale = {scale}, {window}.
 *   Split-K, grouped: block (split, g, b) covers a contiguous share of the visible keys for
 *   all H/G query heads of KV head g. Cached keys/values stream through shared memory in tiles
 *   (cp.async, {stages} stages); Dh/8 lanes hold one key (16-byte reads), a warp scores
 *   32/(Dh/8) keys per step; online softmax in f32 (exp2), one max update per tile; the new key
 *   (position past_len[b]) is read from k/v directly. Warps merge in shared memory and write
 *   (max, sum, o[Dh]) to partial[b,h,split,:] (max in natural-log units);
 *   attn_decode_combine_{HASH} merges the splits and normalises.
 *   The split-0 block of each group appends the new k/v row at position past_len[b].
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: decode (n_splits, G, B) x {threads} threads, dynamic smem attention_decode_smem;
 *   combine (H, B) x Dh threads.
 */
{PRELUDE}{MMA_PRELUDE}
extern "C" __global__ void __launch_bounds__({threads}) attn_decode_{HASH}(
{DECODE_PARAMS}
{{
{consts}    constexpr int NW = {nw};
    constexpr int STAGES = {stages};
    constexpr int LPK = DH / 8;          /* lanes per key: 8 channels (16 bytes) each */
    constexpr int KPI = 32 / LPK;        /* keys per warp per step */
    constexpr int STEPS = KPI >= 8 ? 1 : (KPI >= 2 ? 8 / KPI : 4); /* steps per warp per tile */
    constexpr int BT = NW * KPI * STEPS; /* keys per tile (16 for Dh = 256, else >= 32) */
    constexpr int CPR = DH / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* ks = reinterpret_cast<bf16*>(smem_raw);          /* [STAGES][BT][DH] */
    bf16* vs = ks + STAGES * BT * DH;                      /* [STAGES][BT][DH] */
    __shared__ float red_m[NW][R], red_l[NW][R];
    __shared__ float red_o[NW][R][DH];

    const int split = blockIdx.x;
    const int g = blockIdx.y;
    const long b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int kl = lane / LPK, d0 = (lane % LPK) * 8;
    const int qpos = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const bf16* knew = k + b * k_stride + g * DH;
    const bf16* vnew = v + b * v_stride + g * DH;

    if (split == 0) {{
        const long slot = W > 0 ? (long)qpos % s_max : (long)qpos;
        if (slot < s_max)
            for (int d = tid; d < DH; d += blockDim.x) {{
                kc[slot * DH + d] = knew[d];
                vc[slot * DH + d] = vnew[d];
            }}
    }}
    float qr[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < 8; ++i) qr[r][i] = bf2f(q[b * q_stride + (g * R + r) * DH + d0 + i]) * SCALE_LOG2;

    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int n = qpos - lo + 1;
    const int per = (n + n_splits - 1) / n_splits;
    const int a = lo + split * per;
    const int e = min(a + per, qpos + 1);
    const int ec = min(e, qpos);              /* cached keys: [a, ec) */
    const int n_tiles = ec > a ? (ec - a + BT - 1) / BT : 0;

    auto load_tile = [&](int tile) {{
        const int st = tile % STAGES;
        const int t0 = a + tile * BT;
        for (int c = tid; c < BT * CPR; c += NW * 32) {{
            const int r = c / CPR, ch = c % CPR, pos = t0 + r;
            const bool ok = pos < ec;
            const long slot = W > 0 ? (long)pos % s_max : (long)pos;
            const long off = (ok ? slot : 0) * DH + ch * 8;
            cp_async16(ks + (st * BT + r) * DH + ch * 8, kc + off, ok);
            cp_async16(vs + (st * BT + r) * DH + ch * 8, vc + off, ok);
        }}
    }};

    float m[R], l[R], o[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r) {{
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) o[r][i] = 0.0f;
    }}
    /* Scores of STEPS keys per lane-group, then one max update per tile and head. */
#pragma unroll
    for (int t = 0; t < STAGES - 1; ++t) {{
        if (t < n_tiles) load_tile(t);
        cp_async_commit();
    }}
    for (int tile = 0; tile < n_tiles; ++tile) {{
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (tile + STAGES - 1 < n_tiles) load_tile(tile + STAGES - 1);
        cp_async_commit();
        const int st = tile % STAGES;
        const int t0 = a + tile * BT;
        float s[STEPS][R];
        float vf[STEPS][8];
#pragma unroll
        for (int u = 0; u < STEPS; ++u) {{
            const int r_in = (warp * STEPS + u) * KPI + kl;
            const bool ok = t0 + r_in < ec;
            const uint4 kv = *reinterpret_cast<const uint4*>(ks + (st * BT + r_in) * DH + d0);
            const uint4 vv = *reinterpret_cast<const uint4*>(vs + (st * BT + r_in) * DH + d0);
            const __nv_bfloat162* k2 = reinterpret_cast<const __nv_bfloat162*>(&kv);
            const __nv_bfloat162* v2 = reinterpret_cast<const __nv_bfloat162*>(&vv);
            float kf[8];
#pragma unroll
            for (int i = 0; i < 4; ++i) {{
                const float2 kk = __bfloat1622float2(k2[i]);
                const float2 vq = __bfloat1622float2(v2[i]);
                kf[2 * i] = kk.x; kf[2 * i + 1] = kk.y;
                vf[u][2 * i] = vq.x; vf[u][2 * i + 1] = vq.y;
            }}
#pragma unroll
            for (int r = 0; r < R; ++r) {{
                float acc = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; ++i) acc = fmaf(qr[r][i], kf[i], acc);
#pragma unroll
                for (int off = LPK / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
                s[u][r] = ok ? acc : -INFINITY;
            }}
        }}
#pragma unroll
        for (int r = 0; r < R; ++r) {{
            float mx = s[0][r];
#pragma unroll
            for (int u = 1; u < STEPS; ++u) mx = fmaxf(mx, s[u][r]);
#pragma unroll
            for (int off = LPK; off < 32; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float mn = fmaxf(m[r], mx);
            const float base = mn == -INFINITY ? 0.0f : mn;
            const float corr = exp2f(m[r] - base);
            m[r] = mn;
            l[r] *= corr;
#pragma unroll
            for (int i = 0; i < 8; ++i) o[r][i] *= corr;
#pragma unroll
            for (int u = 0; u < STEPS; ++u) {{
                const float p = exp2f(s[u][r] - base);
                l[r] += p;
#pragma unroll
                for (int i = 0; i < 8; ++i) o[r][i] = fmaf(p, vf[u][i], o[r][i]);
            }}
        }}
    }}
    cp_async_wait<0>();
    /* The new key: one per sequence, by warp 0's first key group, from k/v directly. */
    if (qpos >= a && qpos < e && warp == 0) {{
        float kf[8], vf1[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {{ kf[i] = bf2f(knew[d0 + i]); vf1[i] = bf2f(vnew[d0 + i]); }}
        const bool mine = kl == 0;
#pragma unroll
        for (int r = 0; r < R; ++r) {{
            float acc = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) acc = fmaf(qr[r][i], kf[i], acc);
#pragma unroll
            for (int off = LPK / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
            const float mn = fmaxf(m[r], acc);
            const float corr = exp2f(m[r] - mn);
            const float p = mine ? exp2f(acc - mn) : 0.0f;
            m[r] = mn;
            l[r] = l[r] * corr + p;
#pragma unroll
            for (int i = 0; i < 8; ++i) o[r][i] = fmaf(p, vf1[i], o[r][i] * corr);
        }}
    }}
#pragma unroll
    for (int r = 0; r < R; ++r) {{
#pragma unroll
        for (int off = LPK; off < 32; off <<= 1) {{
            l[r] += __shfl_xor_sync(0xffffffffu, l[r], off);
#pragma unroll
            for (int i = 0; i < 8; ++i) o[r][i] += __shfl_xor_sync(0xffffffffu, o[r][i], off);
        }}
        if (lane == 0) {{ red_m[warp][r] = m[r]; red_l[warp][r] = l[r]; }}
        if (kl == 0)
#pragma unroll
            for (int i = 0; i < 8; ++i) red_o[warp][r][d0 + i] = o[r][i];
    }}
    __syncthreads();
{warp_merge}}}
{combine}"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        threads = ATTN_THREADS,
        nw = ATTN_THREADS / 32,
        stages = ATTN_DECODE_STAGES,
        consts = tensor_core_constants(p),
        warp_merge = warp_merge_tail("red_m[w][r]", "red_l[w][r]", "red_o[w][r][d]"),
    );
    finish(
        &[&format!("attn_decode_{HASH}"), &format!("attn_decode_combine_{HASH}")],
        body,
    )
}

/// The tensor-core decode ([`DecodeVariant::Mma`]): one block per (split, KV head, sequence)
/// serving the head's R query heads; 4 warps, each scoring its own 16 keys of every 64-key tile
/// on `mma.sync` (query heads as the A rows, padded to 16 with zeros), an online softmax per
/// 16 keys in f32 (exp2), and O += P V on `mma.sync` with P rounded to bf16 (as FlashAttention
/// does). Starts with [`crate::codegen::kernel::PDL_ENTER`], as does its combine kernel.
fn decode_mma(p: &AttentionParams, stages: usize, form: MmaForm) -> KernelSource {
    let MmaForm { merge, early, rope } = form;
    // What reads the kernel before's outputs: q and the new row as they are, or rotated first.
    let (fetch, rope_globals, rope_params) = match rope {
        None => (decode_mma_fetch(Q_ROWS), String::new(), ""),
        Some(theta) => (
            rope_fetch(p.head_dim),
            format!(
                "#ifndef MODELC_ROPE_SINCOS\n#define MODELC_ROPE_SINCOS\n{ROPE_SINCOS}#endif\n{}\n",
                rope_inv_freq_table(&format!("rope_inv_freq_{HASH}"), p.head_dim, theta)
            ),
            DECODE_ROPE_PARAMS,
        ),
    };
    // What waits for the kernel before (PDL): everything, or all but the first tiles' loads.
    let enter = "    modelc_pdl_enter();\n";
    let (enter_top, fetch_top, fetch_late) = match early {
        false => (enter, fetch, String::new()),
        true => ("", String::new(), format!("{EARLY_WAIT}{enter}{fetch}")),
    };
    let params = |tail: &str| format!("{}{rope_params}{tail}", DECODE_PARAMS.trim_end_matches(')'));
    let min_blocks = if mma_smem(p, stages) > 113 * 1024 { 1 } else { 2 };
    let threads = ATTN_THREADS;
    // The entry, its parameters, the header's lines on who merges the splits and on the grids,
    // the merge after the partials (none here, or the last block's), and the combine entry.
    let (entry, params, merged_by, grids, tail, combine) = match merge {
        Merge::Combine => (
            format!("attn_decode_{HASH}"),
            params(")"),
            format!("attn_decode_combine_{HASH} merges the\n *   splits in split order and normalises"),
            format!(
                "decode (n_splits, G, B) x {threads} threads, dynamic smem attention_decode_smem;\n \
                 *   combine (H, B) x Dh threads. Both entries wait for the previous kernel first (PDL)."
            ),
            String::new(),
            decode_combine(p, true),
        ),
        Merge::LastBlock => (
            format!("attn_decode_fused_{HASH}"),
            params(DECODE_FUSED_PARAMS),
            "the last block of (g, b) to finish\n *   merges the splits in split order and normalises \
             into out (count[b,g] numbers the finished\n *   blocks; that block leaves it zero)"
                .to_string(),
            format!(
                "(n_splits, G, B) x {threads} threads, dynamic smem attention_decode_smem; waits for \
                 the\n *   previous kernel first (PDL)."
            ),
            LAST_BLOCK_MERGE.to_string(),
            String::new(),
        ),
    };
    let body = format!(
        r#"/*
 * {entry}: one-token causal GQA attention over (KV cache ++ the new key),
 *   H = {h}, G = {g}, Dh = {dh}, scale = {scale}, {window}.
 *   Split-K, grouped, tensor cores: block (split, g, b) covers a contiguous share (a multiple of
 *   16 keys) of the visible cached keys for all H/G query heads of KV head g; the last split
 *   also takes the new key (position past_len[b]), read from k/v directly. Cached keys/values
 *   stream through shared memory in {bt}-key tiles (cp.async, 128-byte L2 fetches, evict-first,
 *   {stages} stages, rows padded to Dh + 8 channels); warp w scores keys 16w..16w+15 of a tile:
 *   S = Q K^T on mma.sync m16n8k16 (A = the R query heads as rows, zero rows up to 16; B = keys
 *   by ldmatrix), online softmax in f32 (exp2, one max update per 16 keys), O += P V (A = P in
 *   bf16, B = values by ldmatrix.trans). Warps merge in shared memory and write (max, sum, o[Dh]) to
 *   partial[b,h,split,:] (max in natural-log units); {merged_by}. The split-0 block appends the new k/v row.
 * Layouts: q row b of [B,H*Dh], k/v row b of [B,G*Dh] bf16; caches [B,G,s_max,Dh] bf16;
 *   past_len [B] int32; partial [B,H,n_splits,Dh+2] f32; out row b of [B,H*Dh] bf16.
 * Grids: {grids}
 */
{PRELUDE}{MMA_PRELUDE}{PDL}{rope_globals}
extern "C" __global__ void __launch_bounds__({threads}, {min_blocks}) {entry}(
{params}
{{
{enter_top}{consts}    constexpr int NW = {nw};
    constexpr int STAGES = {stages};
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

{fetch_top}
    /* Cached keys [a, ec) of this split: the visible ones [lo, qpos) in shares of a multiple of
       16 keys; the new key goes to the last split. */
    const int lo = W > 0 ? max(0, qpos - W + 1) : 0;
    const int nc = qpos - lo;
    const int per = max(KW, ((nc + n_splits - 1) / n_splits + KW - 1) / KW * KW);
    const int a = min(lo + split * per, qpos);
    const int ec = min(a + per, qpos);
    const int n_tiles = (ec - a + BT - 1) / BT;

    auto load_tile = [&](int tile) {{
        const int st = tile % STAGES;
        const int t0 = a + tile * BT;
#pragma unroll
        for (int c = tid; c < BT * CPR; c += NW * 32) {{
            const int r = c / CPR, ch = c % CPR, pos = t0 + r;
            const bool ok = pos < ec;
            const long slot = W > 0 ? (long)pos % s_max : (long)pos;
            const long off = (ok ? slot : 0) * DH + ch * 8;
            cp_async16_stream(ks + (st * BT + r) * DP + ch * 8, kc + off, ok);
            cp_async16_stream(vs + (st * BT + r) * DP + ch * 8, vc + off, ok);
        }}
    }};

    float m = -INFINITY, l = 0.0f;   /* row fr; l over this thread's columns */
    float o[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) o[j][i] = 0.0f;
#pragma unroll
    for (int t = 0; t < STAGES - 1; ++t) {{
        if (t < n_tiles) load_tile(t);
        cp_async_commit();
    }}
{fetch_late}    for (int tile = 0; tile < n_tiles; ++tile) {{
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (tile + STAGES - 1 < n_tiles) load_tile(tile + STAGES - 1);
        cp_async_commit();
        const int st = tile % STAGES;
        const int k0 = a + tile * BT + warp * KW;
        if (k0 < ec) {{ /* warp-uniform */
            const bf16* kt = ks + (st * BT + warp * KW) * DP;
            const bf16* vt = vs + (st * BT + warp * KW) * DP;
            float s0[4] = {{0.0f, 0.0f, 0.0f, 0.0f}}, s1[4] = {{0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
            for (int s = 0; s < KS; ++s) {{
                unsigned kb[4];
                /* matrices: keys 0-7 | 0-7 | 8-15 | 8-15, channels +0 | +8 | +0 | +8 */
                ldmatrix_x4(kb, kt + ((mi / 2) * 8 + mr) * DP + 16 * s + (mi % 2) * 8);
                const unsigned qf[4] = {{qa[s][0], 0u, qa[s][1], 0u}};
                mma_bf16(s0, qf, kb[0], kb[1]);
                mma_bf16(s1, qf, kb[2], kb[3]);
            }}
            /* Row fr's scores of keys k0 + fc, +1 (s0) and k0 + 8 + fc, +1 (s1). */
            float sc[4] = {{s0[0] * SCALE_LOG2, s0[1] * SCALE_LOG2, s1[0] * SCALE_LOG2, s1[1] * SCALE_LOG2}};
            if (k0 + KW > ec) {{
                if (k0 + fc >= ec) sc[0] = -INFINITY;
                if (k0 + fc + 1 >= ec) sc[1] = -INFINITY;
                if (k0 + 8 + fc >= ec) sc[2] = -INFINITY;
                if (k0 + 9 + fc >= ec) sc[3] = -INFINITY;
            }}
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
            for (int j = 0; j < NT; ++j) {{
                o[j][0] *= corr;
                o[j][1] *= corr;
            }}
            const unsigned pa[4] = {{pack_bf16x2(pr[0], pr[1]), 0u, pack_bf16x2(pr[2], pr[3]), 0u}};
#pragma unroll
            for (int s = 0; s < KS; ++s) {{
                unsigned vb[4];
                /* matrices: keys 0-7 | 8-15 | 0-7 | 8-15, channels +0 | +0 | +8 | +8 */
                ldmatrix_x4_trans(vb, vt + ((mi % 2) * 8 + mr) * DP + 16 * s + (mi / 2) * 8);
                mma_bf16(o[2 * s], pa, vb[0], vb[1]);
                mma_bf16(o[2 * s + 1], pa, vb[2], vb[3]);
            }}
        }}
    }}
    cp_async_wait<0>();
    /* The new key, by warp 0 of the last split, from k/v directly (f32). */
    if (split == n_splits - 1 && warp == 0) {{
        float acc = 0.0f;
#pragma unroll
        for (int s = 0; s < KS; ++s) {{
            const __nv_bfloat162 q0 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][0]);
            const __nv_bfloat162 q1 = *reinterpret_cast<const __nv_bfloat162*>(&qa[s][1]);
            acc = fmaf(__low2float(q0), bf2f(knew[16 * s + fc]), acc);
            acc = fmaf(__high2float(q0), bf2f(knew[16 * s + fc + 1]), acc);
            acc = fmaf(__low2float(q1), bf2f(knew[16 * s + 8 + fc]), acc);
            acc = fmaf(__high2float(q1), bf2f(knew[16 * s + 9 + fc]), acc);
        }}
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        const float sn = acc * SCALE_LOG2;
        const float mn = fmaxf(m, sn);
        const float corr = exp2f(m - mn);
        const float pn = exp2f(sn - mn);
        m = mn;
        l = l * corr + (fc == 0 ? pn : 0.0f);
#pragma unroll
        for (int j = 0; j < NT; ++j) {{
            o[j][0] = fmaf(pn, bf2f(vnew[8 * j + fc]), o[j][0] * corr);
            o[j][1] = fmaf(pn, bf2f(vnew[8 * j + fc + 1]), o[j][1] * corr);
        }}
    }}
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    /* Merge the warps (buffers over the drained tiles). */
    __syncthreads();
    float* red_o = reinterpret_cast<float*>(smem_raw); /* [NW][R][DH] */
    float* red_m = red_o + NW * R * DH;                 /* [NW][R] */
    float* red_l = red_m + NW * R;                      /* [NW][R] */
    if (fr < R) {{
#pragma unroll
        for (int j = 0; j < NT; ++j) {{
            red_o[(warp * R + fr) * DH + 8 * j + fc] = o[j][0];
            red_o[(warp * R + fr) * DH + 8 * j + fc + 1] = o[j][1];
        }}
        if (fc == 0) {{
            red_m[warp * R + fr] = m;
            red_l[warp * R + fr] = l;
        }}
    }}
    __syncthreads();
{warp_merge}{tail}}}
{combine}"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        nw = ATTN_THREADS / 32,
        bt = ATTN_DECODE_MMA_KEYS,
        stages = stages,
        min_blocks = min_blocks,
        warp_merge = warp_merge_tail("red_m[w * R + r]", "red_l[w * R + r]", "red_o[(w * R + r) * DH + d]"),
        consts = tensor_core_constants(p),
        PDL = crate::codegen::kernel::PDL_DEFINITION,
    );
    // Without the fetch at the top, the blank lines around its place are one too many.
    let body = match early {
        true => body.replacen("\n\n\n", "\n\n", 1),
        false => body,
    };
    match merge {
        Merge::Combine => finish(&[&entry, &format!("attn_decode_combine_{HASH}")], body),
        Merge::LastBlock => finish(&[&entry], body),
    }
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
/// `B·Y·n_splits` covers the SMs (e.g. `ceil(2·SMs / (B·Y))`, at most `ceil(len / 32)`), Y being
/// [`attention_decode_heads_per_grid`]. Emits the grouped kernel where [`grouped_decode`] holds
/// (grid `(n_splits, G, B)`), else the SIMT one (grid `(n_splits, H, B)`); the arguments, the
/// partials' format and the combine kernel are the same.
pub fn attention_decode(p: &AttentionParams) -> Result<KernelSource, TemplateError> {
    attention_decode_variant(p, ATTN_DECODE_DEFAULT)
}

/// [`attention_decode`] in a given form (for tests and benchmarks); shapes a form does not serve
/// get the CUDA-core grouped kernel or the SIMT one, as [`attention_decode`] would. Launch with
/// [`attention_decode_variant_launch`].
pub fn attention_decode_variant(p: &AttentionParams, v: DecodeVariant) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_decode")?;
    Ok(match effective_variant(p, v) {
        Some(DecodeVariant::Mma(stages)) => {
            check("attention_decode", stages >= 2, || {
                format!("{stages} stages: at least 2")
            })?;
            decode_mma(
                p,
                stages,
                MmaForm {
                    merge: Merge::Combine,
                    early: false,
                    rope: None,
                },
            )
        }
        Some(DecodeVariant::Cuda) => decode_grouped(p, &decode_combine(p, false)),
        None => decode_simt(p, &decode_combine(p, false)),
    })
}

/// The tensor-core decode with the combine folded in (`attn_decode_fused_<hash>`, one entry):
/// where [`mma_decode`] holds, else `None`. Its arguments are `attn_decode_<hash>`'s (with
/// `rope`, [`attention_decode_rope`]'s) followed by `(bf16* out, int out_stride, unsigned*
/// count)`: the output rows as the combine writes them, and `B·G` counts that must be zero
/// before the first launch (each launch leaves them zero). Launch with
/// [`attention_decode_launch`]'s first launch. The output is the combine's: the last block of
/// each (KV head, sequence) merges the same partials in the same order. With `early_loads`,
/// each block issues its first tiles' loads (cached keys and values, which earlier steps wrote)
/// before it waits for the kernel before it (PDL), and reads q and the new k/v row after.
pub fn attention_decode_fused(
    p: &AttentionParams,
    early_loads: bool,
    rope: Option<f64>,
) -> Result<Option<KernelSource>, TemplateError> {
    let merge = Merge::LastBlock;
    tensor_core_form(
        p,
        MmaForm {
            merge,
            early: early_loads,
            rope,
        },
    )
}

/// The tensor-core decode (and its combine) with RoPE folded in, for calls whose q and k rows
/// come unrotated: where [`mma_decode`] holds, else `None`. Its arguments are
/// `attn_decode_<hash>`'s, whose `q` and `k` it does not read, followed by `(const bf16* q_in,
/// int q_in_stride, const bf16* k_in, int k_in_stride, const int* positions)`: the unrotated
/// rows and each sequence's position (one token each). Each block rotates its R query rows and
/// the new key row (rotate-half, `theta`, as the rope kernel does: `templates/rope.rs`) into
/// shared memory and reads them there; the cache gets the rotated key. The combine entry is
/// [`attention_decode`]'s.
pub fn attention_decode_rope(p: &AttentionParams, theta: f64) -> Result<Option<KernelSource>, TemplateError> {
    let merge = Merge::Combine;
    tensor_core_form(
        p,
        MmaForm {
            merge,
            early: false,
            rope: Some(theta),
        },
    )
}

/// The tensor-core decode in `form`, at the default's depth, where [`mma_decode`] holds.
fn tensor_core_form(p: &AttentionParams, form: MmaForm) -> Result<Option<KernelSource>, TemplateError> {
    validate(p, "attention_decode")?;
    Ok(match effective_variant(p, ATTN_DECODE_DEFAULT) {
        Some(DecodeVariant::Mma(stages)) => Some(decode_mma(p, stages, form)),
        _ => None,
    })
}

/// `attn_decode_combine_<hash>`: merges the splits' partials and normalises (one thread per
/// channel). Shared by both decode kernels.
fn decode_combine(p: &AttentionParams, pdl: bool) -> String {
    format!(
        r#"extern "C" __global__ void attn_decode_combine_{HASH}(
    const float* __restrict__ partial, bf16* __restrict__ out, int out_stride, int n_splits)
{{
{pdl}    constexpr int H = {h};
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
        dh = p.head_dim,
        pdl = if pdl {
            format!("    {}\n", crate::codegen::kernel::PDL_ENTER)
        } else {
            String::new()
        },
    )
}

/// The SIMT decode: one block per (split, query head, sequence), one key per lane.
fn decode_simt(p: &AttentionParams, combine: &str) -> KernelSource {
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
{DECODE_PARAMS}
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

{combine}"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        threads = ATTN_THREADS,
        consts = constants(p),
    );
    finish(
        &[&format!("attn_decode_{HASH}"), &format!("attn_decode_combine_{HASH}")],
        body,
    )
}

/// Launch geometry of the two decode kernels: `(partials, combine)`.
pub fn attention_decode_launch(p: &AttentionParams, batch: usize, n_splits: usize) -> (Launch, Launch) {
    attention_decode_variant_launch(p, ATTN_DECODE_DEFAULT, batch, n_splits)
}

/// [`attention_decode_launch`] of a given form.
pub fn attention_decode_variant_launch(
    p: &AttentionParams,
    v: DecodeVariant,
    batch: usize,
    n_splits: usize,
) -> (Launch, Launch) {
    (
        Launch::new(
            (
                dim(n_splits.max(1)),
                dim(attention_decode_heads_per_grid(p)),
                dim(batch),
            ),
            (dim(ATTN_THREADS), 1, 1),
            attention_decode_variant_smem(p, v),
        ),
        Launch::new((dim(p.heads), dim(batch), 1), (dim(p.head_dim), 1, 1), 0),
    )
}

/// Elements of the decode workspace `partial`.
pub fn attention_decode_workspace_len(p: &AttentionParams, batch: usize, n_splits: usize) -> usize {
    batch * p.heads * n_splits.max(1) * (p.head_dim + 2)
}
