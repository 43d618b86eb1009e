//! The `mma.sync` prefills (sm_80+): the FlashAttention-2 form of 128 query rows a block and
//! the 32-row form.

use super::*;

/// Keys per tile of the tensor-core prefill.
pub const ATTN_TC_KEYS_PER_TILE: usize = 64;
/// Shared-memory stages of the tensor-core prefill's k/v tiles (`cp.async` pipeline depth).
pub const ATTN_TC_STAGES: usize = 3;
/// Threads of the tensor-core prefill: 8 warps of 16 query rows.
pub const ATTN_TC_THREADS: usize = 256;

/// The tensor-core prefill (FlashAttention-2 style): per block 128 queries of one head, 8 warps
/// of 16 query rows; S = Q·Kᵀ and O += P·V on `mma.sync` m16n8k16 (bf16 operands, f32
/// accumulators), P kept in registers as the A operand of P·V, online softmax in f32 (exp2) on
/// the accumulators, 64-key k/v tiles through a 3-stage `cp.async` pipeline. Warps skip key
/// tiles that are fully masked for their 16 rows and mask only tiles that cross a row's diagonal
/// (or window edge). Grid `(H·B, query tiles)`, heaviest (last) query tiles first.
/// The opening of both `mma.sync` prefill kernels: tile constants, shared-memory carving, the
/// block's (head, sequence, query tile), the visible key range, the q tile's copy and `load_kv`
/// (one k/v tile into a stage, keys past the last visible one zero-filled).
fn mma_prefill_setup(p: &AttentionParams, bq: usize, bk: usize, stages: usize, threads: usize) -> String {
    format!(
        r#"{consts}    constexpr int BQ = {bq}, BK = {bk}, NTH = {threads}, STAGES = {stages};
    constexpr int DS = DH + 8;          /* padded smem row (elements): conflict-free ldmatrix */
    constexpr int CPR = DH / 8;         /* 16-byte chunks per row */
    constexpr int NT = BK / 8;          /* score n-tiles per m-tile */
    constexpr int DT = DH / 8;          /* output n-tiles per m-tile */
    constexpr int KS = DH / 16;         /* k-steps of q.k */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* q_s = reinterpret_cast<bf16*>(smem_raw);
    bf16* k_s = q_s + BQ * DS;          /* [STAGES][BK][DS] */
    bf16* v_s = k_s + STAGES * BK * DS; /* [STAGES][BK][DS] */

    /* Heaviest (latest) query tiles first: causal work grows with the tile index. */
    const int qt0 = (gridDim.y - 1 - blockIdx.y) * BQ;
    const int h = blockIdx.x % H;
    const long b = blockIdx.x / H;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
{ITEM_SETUP}    /* q/k/v rows may be column slices of wider buffers: 16-byte copies need aligned rows. */
    const bool vec = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k) |
                       reinterpret_cast<unsigned long long>(v) |
                       2ull * (unsigned long long)(q_stride | k_stride | v_stride)) & 15) == 0;

    /* q tile (zero rows past T): part of the first cp.async group */
    for (int c = tid; c < BQ * CPR; c += NTH) {{
        const int r = c / CPR, ch = c % CPR, t = qt0 + r;
        const bf16* src = q + (b * T + min(t, T - 1)) * (long)q_stride + h * DH + ch * 8;
        copy8_to_smem(q_s + r * DS + ch * 8, src, t < T, vec);
    }}
    /* Keys past hi (and rows of empty slots) are zero-filled: a NaN there would survive P = 0. */
    auto load_kv = [&](int tile, int buf) {{
        const int kt0 = lo + tile * BK;
        bf16* kd = k_s + buf * BK * DS;
        bf16* vd = v_s + buf * BK * DS;
        for (int c = tid; c < BK * CPR; c += NTH) {{
            const int r = c / CPR, ch = c % CPR, pos = kt0 + r;
            const bf16* ks = k;
            const bf16* vs = v;
            bool ok = pos <= hi;
            if (pos < past) {{
                const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                ok = ok && slot < s_max;
                ks = kc + slot * DH + ch * 8;
                vs = vc + slot * DH + ch * 8;
            }} else if (ok) {{
                const long row = b * T + (pos - past);
                ks = k + row * k_stride + g * DH + ch * 8;
                vs = v + row * v_stride + g * DH + ch * 8;
            }}
            copy8_to_smem(kd + r * DS + ch * 8, ks, ok, vec);
            copy8_to_smem(vd + r * DS + ch * 8, vs, ok, vec);
        }}
    }};
"#,
        consts = tensor_core_constants(p),
    )
}

fn prefill_tensor_core(p: &AttentionParams) -> KernelSource {
    let body = format!(
        r#"/*
 * attn_prefill_{HASH}: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = {h} query heads, G = {g} KV heads, Dh = {dh}, scale = {scale}, {window}.
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t. Tensor cores: S = Q K^T and O += P V on mma.sync m16n8k16
 *   (bf16 operands, f32 accumulation); online softmax in f32 (exp2, log2(e) folded into the
 *   scale). P stays in registers (the S accumulators of two n-tiles are one A fragment),
 *   rounded to bf16 for the P V product, as FlashAttention does.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 *   Rows that are not 16-byte aligned are copied element by element (same results); out rows
 *   that are not 4-byte aligned are stored a channel at a time.
 * Grid (H*B, ceil(T/{bq})): blockIdx.x = h + H*b, blockIdx.y counts query tiles from the last
 *   (the heaviest under the causal mask) so that they start first. Block {threads} (8 warps x 16
 *   query rows), dynamic smem (BQ + 2 STAGES BK) (Dh + 8) * 2 bytes: q tile and {stages} stages
 *   of {bk}-key k/v tiles, rows padded by 8 channels so that ldmatrix is free of bank conflicts.
 * Per warp, key tiles past its last row (or before its first row's window) are skipped, and
 *   only tiles that cross a row's diagonal or window edge are masked.
 */
{PRELUDE}{MMA_PRELUDE}
extern "C" __global__ void __launch_bounds__({threads}) attn_prefill_{HASH}(
{PREFILL_PARAMS}
{{
{setup}    /* Prologue: tiles 0 .. STAGES-2, one cp.async group each (empty groups are fine). */
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {{
        if (s < n_tiles) load_kv(s, s);
        cp_async_commit();
    }}

    /* Append this tile's new keys/values to the caches (one query head per KV group). */
    if (h % R == 0) {{
        for (int c = tid; c < BQ * CPR; c += NTH) {{
            const int r = c / CPR, ch = c % CPR, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {{
                copy8_global(kc + slot * DH + ch * 8, k + (b * T + t) * k_stride + g * DH + ch * 8, vec);
                copy8_global(vc + slot * DH + ch * 8, v + (b * T + t) * v_stride + g * DH + ch * 8, vec);
            }}
        }}
    }}

    /* Fragment coordinates: this thread's rows are lane/4 and lane/4 + 8 of the warp's 16. */
    const int fr = lane / 4, fc = (lane % 4) * 2;
    const int row0 = warp * 16 + fr;
    const int wq0 = past + qt0 + warp * 16;  /* position of the warp's first row */
    const int qpos0 = past + qt0 + row0, qpos1 = qpos0 + 8;
    unsigned qf[KS][4];
    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int tile = 0; tile < n_tiles; ++tile) {{
        /* Groups committed so far: STAGES-1 + tile; tile's own must have landed. */
        cp_async_wait<STAGES - 2>();
        __syncthreads(); /* tile visible to all; every warp is done with tile - 1's buffer */
        if (tile + STAGES - 1 < n_tiles) load_kv(tile + STAGES - 1, (tile + STAGES - 1) % STAGES);
        cp_async_commit();
        if (tile == 0) {{
#pragma unroll
            for (int ks = 0; ks < KS; ++ks)
                ldmatrix_x4(qf[ks], q_s + (warp * 16 + lane % 16) * DS + ks * 16 + (lane / 16) * 8);
        }}
        const int kt0 = lo + tile * BK;
        /* Warp-uniform: every key of the tile is past the warp's last row, or before the window
         * of its first row. */
        if (kt0 > wq0 + 15 || (W > 0 && kt0 + BK - 1 <= wq0 - W)) continue;
        const int buf = tile % STAGES;
        const bf16* kb = k_s + buf * BK * DS;
        const bf16* vb = v_s + buf * BK * DS;

        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KS; ++ks) {{
#pragma unroll
            for (int np = 0; np < NT / 2; ++np) {{
                unsigned bfr[4];
                const int key = np * 16 + (lane / 16) * 8 + lane % 8;
                const int d = ks * 16 + ((lane / 8) % 2) * 8;
                ldmatrix_x4(bfr, kb + key * DS + d);
                mma_bf16(s[2 * np], qf[ks], bfr[0], bfr[1]);
                mma_bf16(s[2 * np + 1], qf[ks], bfr[2], bfr[3]);
            }}
        }}
        /* Mask only tiles that reach past the warp's first row or out of its last row's window. */
        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 15 - kt0 < W);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < NT; ++n) {{
#pragma unroll
            for (int e = 0; e < 2; ++e) {{
                const int pos = kt0 + n * 8 + fc + e;
                float a = s[n][e] * SCALE_LOG2, c = s[n][2 + e] * SCALE_LOG2;
                if (!full) {{
                    if (!(pos <= qpos0 && (W == 0 || qpos0 - pos < W))) a = -INFINITY;
                    if (!(pos <= qpos1 && (W == 0 || qpos1 - pos < W))) c = -INFINITY;
                }}
                s[n][e] = a;
                s[n][2 + e] = c;
                mx0 = fmaxf(mx0, a);
                mx1 = fmaxf(mx1, c);
            }}
        }}
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        /* A row with nothing visible yet keeps base 0 so that exp2 never sees inf - inf. */
        const float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float corr0 = exp2f(m0 - base0), corr1 = exp2f(m1 - base1);
        m0 = mn0;
        m1 = mn1;
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int n = 0; n < NT; ++n) {{
            s[n][0] = exp2f(s[n][0] - base0);
            s[n][1] = exp2f(s[n][1] - base0);
            s[n][2] = exp2f(s[n][2] - base1);
            s[n][3] = exp2f(s[n][3] - base1);
            sum0 += s[n][0] + s[n][1];
            sum1 += s[n][2] + s[n][3];
        }}
        l0 = l0 * corr0 + sum0;
        l1 = l1 * corr1 + sum1;
#pragma unroll
        for (int i = 0; i < DT; ++i) {{
            o[i][0] *= corr0;
            o[i][1] *= corr0;
            o[i][2] *= corr1;
            o[i][3] *= corr1;
        }}
        /* O += P V: the score accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {{
            unsigned pa[4];
            pa[0] = pack_bf16x2(s[2 * j][0], s[2 * j][1]);
            pa[1] = pack_bf16x2(s[2 * j][2], s[2 * j][3]);
            pa[2] = pack_bf16x2(s[2 * j + 1][0], s[2 * j + 1][1]);
            pa[3] = pack_bf16x2(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
            for (int dp = 0; dp < DT / 2; ++dp) {{
                unsigned bfr[4];
                const int key = j * 16 + ((lane / 8) % 2) * 8 + lane % 8;
                const int d = dp * 16 + (lane / 16) * 8;
                ldmatrix_x4_trans(bfr, vb + key * DS + d);
                mma_bf16(o[2 * dp], pa, bfr[0], bfr[1]);
                mma_bf16(o[2 * dp + 1], pa, bfr[2], bfr[3]);
            }}
        }}
    }}
    cp_async_wait<0>();
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int t0 = qt0 + row0, t1 = t0 + 8;
    /* Channel pairs are stored as one bf16x2 where out rows are 4-byte aligned. */
    const bool out_pairs = ((reinterpret_cast<unsigned long long>(out) | 2ull * (unsigned long long)out_stride) & 3) == 0;
#pragma unroll
    for (int i = 0; i < DT; ++i) {{
        const int d = i * 8 + fc;
        bf16* o0 = out + (b * T + t0) * out_stride + h * DH + d;
        bf16* o1 = out + (b * T + t1) * out_stride + h * DH + d;
        const __nv_bfloat162 v0 = __floats2bfloat162_rn(o[i][0] * inv0, o[i][1] * inv0);
        const __nv_bfloat162 v1 = __floats2bfloat162_rn(o[i][2] * inv1, o[i][3] * inv1);
        if (out_pairs) {{
            if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
            if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;
        }} else {{
            if (t0 < T) {{ o0[0] = v0.x; o0[1] = v0.y; }}
            if (t1 < T) {{ o1[0] = v1.x; o1[1] = v1.y; }}
        }}
    }}
}}
"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        bq = ATTN_TC_TILE,
        bk = ATTN_TC_KEYS_PER_TILE,
        stages = ATTN_TC_STAGES,
        threads = ATTN_TC_THREADS,
        setup = mma_prefill_setup(p, ATTN_TC_TILE, ATTN_TC_KEYS_PER_TILE, ATTN_TC_STAGES, ATTN_TC_THREADS),
    );
    finish(&[&format!("attn_prefill_{HASH}")], body)
}

/// Queries per block, keys per tile, stages and threads of the 32-rows-per-warp tensor-core
/// prefill ([`MmaVariant::Rows32`]).
const ATTN_R32_TILE: usize = 128;
/// Keys per tile: 64, or 32 above Dh 64 (o of two m-tiles takes Dh registers per thread).
pub(super) fn r32_keys(head_dim: usize) -> usize {
    if head_dim > 64 {
        32
    } else {
        64
    }
}
const ATTN_R32_STAGES: usize = 2;
const ATTN_R32_THREADS: usize = 128;

/// Forms of the `mma.sync` tensor-core prefill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmaVariant {
    /// 8 warps × 16 query rows, q fragments in registers, 64-key tiles, 3 stages.
    Rows16,
    /// 4 warps × 32 query rows (two m-tiles share every k/v fragment: half the shared-memory
    /// reads per `mma`), q fragments reloaded per tile, 2 stages of 64-key tiles (32 above
    /// Dh 64: 68 KiB at Dh 128, two blocks per SM).
    Rows32,
}

/// The `mma.sync` form [`attention_prefill`] emits.
pub const ATTN_MMA_DEFAULT: MmaVariant = MmaVariant::Rows32;

/// [`attention_prefill`]'s tensor-core kernel in a chosen form (`p` must satisfy
/// [`tensor_core_prefill`]); launch with [`attention_prefill_mma_launch`].
pub fn attention_prefill_mma(p: &AttentionParams, v: MmaVariant) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_prefill")?;
    check("attention_prefill", tensor_core_prefill(p), || {
        format!("head_dim {} is not a multiple of 16 up to 128", p.head_dim)
    })?;
    Ok(match v {
        MmaVariant::Rows16 => prefill_tensor_core(p),
        MmaVariant::Rows32 => prefill_tensor_core_r32(p),
    })
}

/// Launch geometry of [`attention_prefill_mma`].
pub fn attention_prefill_mma_launch(p: &AttentionParams, v: MmaVariant, batch: usize, tokens: usize) -> Launch {
    let (bq, threads, smem) = mma_geometry(p, v);
    Launch::new(
        (dim(p.heads * batch), blocks(tokens, bq), 1),
        (dim(threads), 1, 1),
        smem,
    )
}

/// (queries per block, threads, dynamic shared memory) of an `mma.sync` form.
pub(super) fn mma_geometry(p: &AttentionParams, v: MmaVariant) -> (usize, usize, u32) {
    match v {
        MmaVariant::Rows16 => (
            ATTN_TC_TILE,
            ATTN_TC_THREADS,
            dim((ATTN_TC_TILE + 2 * ATTN_TC_STAGES * ATTN_TC_KEYS_PER_TILE) * (p.head_dim + 8) * 2),
        ),
        MmaVariant::Rows32 => (
            ATTN_R32_TILE,
            ATTN_R32_THREADS,
            dim((ATTN_R32_TILE + 2 * ATTN_R32_STAGES * r32_keys(p.head_dim)) * (p.head_dim + 8) * 2),
        ),
    }
}

/// The 32-rows-per-warp form of the tensor-core prefill (FlashAttention-2's tiling): per block
/// 128 queries of one head, 4 warps of two 16-row m-tiles each.
fn prefill_tensor_core_r32(p: &AttentionParams) -> KernelSource {
    let body = format!(
        r#"/*
 * attn_prefill_{HASH}: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = {h} query heads, G = {g} KV heads, Dh = {dh}, scale = {scale}, {window}.
 *   out[b,t,h,:] = softmax_j(scale * q[b,t,h,:] . k_j) v_j over the keys j visible from
 *   position past_len[b] + t. Tensor cores: S = Q K^T and O += P V on mma.sync m16n8k16
 *   (bf16 operands, f32 accumulation); online softmax in f32 (exp2, log2(e) folded into the
 *   scale). Each warp owns 32 query rows (two m-tiles), so every k or v fragment loaded with
 *   ldmatrix feeds two mma; q fragments are reloaded from shared memory per key tile. P stays
 *   in registers (the S accumulators of two n-tiles are one A fragment), rounded to bf16.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] bf16 rows with strides (elements);
 *   k_cache/v_cache [B,G,s_max,Dh] bf16; past_len [B] int32. q and k are already rotated (RoPE).
 *   Rows that are not 16-byte aligned are copied element by element (same results); out rows
 *   that are not 4-byte aligned are stored a channel at a time.
 * Grid (H*B, ceil(T/{bq})): blockIdx.x = h + H*b, blockIdx.y counts query tiles from the last
 *   (the heaviest under the causal mask) so that they start first. Block {threads} (4 warps x 32
 *   query rows), dynamic smem (BQ + 2 STAGES BK) (Dh + 8) * 2 bytes: q tile and {stages} stages
 *   of {bk}-key k/v tiles, rows padded by 8 channels so that ldmatrix is free of bank conflicts.
 * Per warp, key tiles past its last row (or before its first row's window) are skipped, and
 *   only tiles that cross a row's diagonal or window edge are masked.
 */
{PRELUDE}{MMA_PRELUDE}
extern "C" __global__ void __launch_bounds__({threads}) attn_prefill_{HASH}(
{PREFILL_PARAMS}
{{
{setup}    load_kv(0, 0); /* with the q tile: the first cp.async group */
    cp_async_commit();

    if (h % R == 0) {{
        for (int c = tid; c < BQ * CPR; c += NTH) {{
            const int r = c / CPR, ch = c % CPR, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {{
                copy8_global(kc + slot * DH + ch * 8, k + (b * T + t) * k_stride + g * DH + ch * 8, vec);
                copy8_global(vc + slot * DH + ch * 8, v + (b * T + t) * v_stride + g * DH + ch * 8, vec);
            }}
        }}
    }}

    /* Fragment coordinates: m-tile mt of this warp holds rows warp*32 + mt*16 + lane/4 (+ 8). */
    const int fr = lane / 4, fc = (lane % 4) * 2;
    const int wq0 = past + qt0 + warp * 32;  /* position of the warp's first row */
    float o[2][DT][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int i = 0; i < DT; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    float m[2][2], l[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

    for (int tile = 0; tile < n_tiles; ++tile) {{
        cp_async_wait<0>();
        __syncthreads(); /* tile visible to all; every warp is done with tile - 1's buffer */
        if (tile + 1 < n_tiles) load_kv(tile + 1, (tile + 1) % STAGES);
        cp_async_commit();
        const int kt0 = lo + tile * BK;
        /* Warp-uniform: every key of the tile is past the warp's last row, or before the window
         * of its first row. */
        if (kt0 > wq0 + 31 || (W > 0 && kt0 + BK - 1 <= wq0 - W)) continue;
        const bf16* kb = k_s + (tile % STAGES) * BK * DS;
        const bf16* vb = v_s + (tile % STAGES) * BK * DS;

        float s[2][NT][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int n = 0; n < NT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
        /* Not unrolled: q fragments of every k-step hoisted at once would spill. */
#pragma unroll 1
        for (int ks = 0; ks < KS; ++ks) {{
            unsigned qa[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
                ldmatrix_x4(qa[mt], q_s + (warp * 32 + mt * 16 + lane % 16) * DS + ks * 16 + (lane / 16) * 8);
#pragma unroll
            for (int np = 0; np < NT / 2; ++np) {{
                unsigned bfr[4];
                const int key = np * 16 + (lane / 16) * 8 + lane % 8;
                const int d = ks * 16 + ((lane / 8) % 2) * 8;
                ldmatrix_x4(bfr, kb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {{
                    mma_bf16(s[mt][2 * np], qa[mt], bfr[0], bfr[1]);
                    mma_bf16(s[mt][2 * np + 1], qa[mt], bfr[2], bfr[3]);
                }}
            }}
        }}
        /* Mask only tiles that reach past the warp's first row or out of its last row's window. */
        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 31 - kt0 < W);
        unsigned pa[2][BK / 16][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {{
            const int qpos0 = wq0 + mt * 16 + fr, qpos1 = qpos0 + 8;
            float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
            for (int n = 0; n < NT; ++n) {{
#pragma unroll
                for (int e = 0; e < 2; ++e) {{
                    const int pos = kt0 + n * 8 + fc + e;
                    float a = s[mt][n][e], c = s[mt][n][2 + e];
                    if (!full) {{
                        if (!(pos <= qpos0 && (W == 0 || qpos0 - pos < W))) a = -INFINITY;
                        if (!(pos <= qpos1 && (W == 0 || qpos1 - pos < W))) c = -INFINITY;
                    }}
                    s[mt][n][e] = a;
                    s[mt][n][2 + e] = c;
                    mx0 = fmaxf(mx0, a);
                    mx1 = fmaxf(mx1, c);
                }}
            }}
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            /* Raw-score maxima (scale > 0 commutes with max); a row with nothing visible yet
             * keeps base 0 so that exp2 never sees inf - inf. */
            const float mn0 = fmaxf(m[mt][0], mx0), mn1 = fmaxf(m[mt][1], mx1);
            const float nb0 = mn0 == -INFINITY ? 0.0f : -mn0 * SCALE_LOG2;
            const float nb1 = mn1 == -INFINITY ? 0.0f : -mn1 * SCALE_LOG2;
            const float corr0 = exp2f(fmaf(m[mt][0], SCALE_LOG2, nb0));
            const float corr1 = exp2f(fmaf(m[mt][1], SCALE_LOG2, nb1));
            m[mt][0] = mn0;
            m[mt][1] = mn1;
            float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
            for (int n = 0; n < NT; ++n) {{
                s[mt][n][0] = exp2f(fmaf(s[mt][n][0], SCALE_LOG2, nb0));
                s[mt][n][1] = exp2f(fmaf(s[mt][n][1], SCALE_LOG2, nb0));
                s[mt][n][2] = exp2f(fmaf(s[mt][n][2], SCALE_LOG2, nb1));
                s[mt][n][3] = exp2f(fmaf(s[mt][n][3], SCALE_LOG2, nb1));
                sum0 += s[mt][n][0] + s[mt][n][1];
                sum1 += s[mt][n][2] + s[mt][n][3];
            }}
            l[mt][0] = l[mt][0] * corr0 + sum0;
            l[mt][1] = l[mt][1] * corr1 + sum1;
#pragma unroll
            for (int i = 0; i < DT; ++i) {{
                o[mt][i][0] *= corr0;
                o[mt][i][1] *= corr0;
                o[mt][i][2] *= corr1;
                o[mt][i][3] *= corr1;
            }}
            /* The score accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
#pragma unroll
            for (int j = 0; j < BK / 16; ++j) {{
                pa[mt][j][0] = pack_bf16x2(s[mt][2 * j][0], s[mt][2 * j][1]);
                pa[mt][j][1] = pack_bf16x2(s[mt][2 * j][2], s[mt][2 * j][3]);
                pa[mt][j][2] = pack_bf16x2(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
                pa[mt][j][3] = pack_bf16x2(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
            }}
        }}
        /* O += P V: one transposed v fragment feeds both m-tiles. */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {{
#pragma unroll
            for (int dp = 0; dp < DT / 2; ++dp) {{
                unsigned bfr[4];
                const int key = j * 16 + ((lane / 8) % 2) * 8 + lane % 8;
                const int d = dp * 16 + (lane / 16) * 8;
                ldmatrix_x4_trans(bfr, vb + key * DS + d);
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {{
                    mma_bf16(o[mt][2 * dp], pa[mt][j], bfr[0], bfr[1]);
                    mma_bf16(o[mt][2 * dp + 1], pa[mt][j], bfr[2], bfr[3]);
                }}
            }}
        }}
    }}
    cp_async_wait<0>();
    const bool out_pairs = ((reinterpret_cast<unsigned long long>(out) | 2ull * (unsigned long long)out_stride) & 3) == 0;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {{
        float l0 = l[mt][0], l1 = l[mt][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
        const int t0 = qt0 + warp * 32 + mt * 16 + fr, t1 = t0 + 8;
#pragma unroll
        for (int i = 0; i < DT; ++i) {{
            const int d = i * 8 + fc;
            bf16* o0 = out + (b * T + t0) * out_stride + h * DH + d;
            bf16* o1 = out + (b * T + t1) * out_stride + h * DH + d;
            const __nv_bfloat162 v0 = __floats2bfloat162_rn(o[mt][i][0] * inv0, o[mt][i][1] * inv0);
            const __nv_bfloat162 v1 = __floats2bfloat162_rn(o[mt][i][2] * inv1, o[mt][i][3] * inv1);
            if (out_pairs) {{
                if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
                if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;
            }} else {{
                if (t0 < T) {{ o0[0] = v0.x; o0[1] = v0.y; }}
                if (t1 < T) {{ o1[0] = v1.x; o1[1] = v1.y; }}
            }}
        }}
    }}
}}
"#,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        bq = ATTN_R32_TILE,
        bk = r32_keys(p.head_dim),
        stages = ATTN_R32_STAGES,
        threads = ATTN_R32_THREADS,
        setup = mma_prefill_setup(
            p,
            ATTN_R32_TILE,
            r32_keys(p.head_dim),
            ATTN_R32_STAGES,
            ATTN_R32_THREADS
        ),
    );
    finish(&[&format!("attn_prefill_{HASH}")], body)
}
