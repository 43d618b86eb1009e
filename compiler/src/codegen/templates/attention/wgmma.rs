//! The Hopper prefill (sm_90a): `wgmma` on two consumer warpgroups, warp-specialised k/v
//! producers (`cp.async` or TMA), its ping-pong, FA3 and persistent forms.

use super::*;

/// Query rows per block of the Hopper (`wgmma`) prefill: 2 consumer warpgroups × 64.
pub const ATTN_WG_TILE: usize = 128;
/// Keys per tile of the Hopper prefill.
pub const ATTN_WG_KEYS_PER_TILE: usize = 128;
/// Shared-memory stages of the Hopper prefill's k/v tiles (k of tile j, v of tile j − 1 and
/// tile j + 1 in flight; 225 KiB with the q tile, within Hopper's 227 KiB).
pub const ATTN_WG_STAGES: usize = 3;
/// Threads of the Hopper prefill: two warpgroups.
pub const ATTN_WG_THREADS: usize = 256;

/// Whether [`attention_prefill_wgmma`] takes `p`: head size 128 (one `m64n128k16` per 16 keys
/// of P·V, two 128-byte swizzle atoms per row). Other shapes use [`attention_prefill`].
pub fn wgmma_prefill(p: &AttentionParams) -> bool {
    p.head_dim == 128
}

/// Dynamic shared memory of [`attention_prefill_wgmma`], in bytes: 1 KiB of alignment slack
/// (128-byte swizzled tiles need 1024-byte aligned bases), the q tile and the k/v stages.
pub fn attention_prefill_wgmma_smem(p: &AttentionParams) -> u32 {
    wgmma_smem(p, ATTN_WGMMA_DEFAULT)
}

fn wgmma_smem(p: &AttentionParams, v: WgmmaVariant) -> u32 {
    dim(1024 + (ATTN_WG_TILE + 2 * wgmma_stages(v) * ATTN_WG_KEYS_PER_TILE) * p.head_dim * 2)
}

/// L2 promotion of the TMA prefill's maps, bytes (a 256-byte row of Dh = 128 is read as two
/// 128-byte boxes).
pub const ATTN_TMA_L2_PROMOTION: u32 = 256;

/// The four tensor maps [`WgmmaVariant::PingPongTma`] takes after the common arguments, in
/// order: k and v as `rows` rows of `G·Dh` elements at their row strides (device addresses
/// `k`, `v`; `rows` at least B·T, e.g. the buffer's capacity: the kernel reads only rows of
/// the call), then the caches as `B·G·s_max` rows of `Dh`. Boxes of 128 keys × 64 channels.
/// A map TMA cannot address (unaligned base or stride) encodes as the null map, and the kernel
/// then copies those tiles itself.
#[allow(clippy::too_many_arguments)]
pub fn attention_prefill_tma_maps(
    p: &AttentionParams,
    k: u64,
    k_stride: usize,
    v: u64,
    v_stride: usize,
    rows: usize,
    k_cache: u64,
    v_cache: u64,
    cache_rows: usize,
) -> [TileMap2d; 4] {
    let map = |base: u64, cols: usize, rows: usize, row_stride: usize| TileMap2d {
        base,
        cols: cols as u64,
        rows: rows as u64,
        row_stride: row_stride as u64,
        box_cols: 64,
        box_rows: ATTN_WG_KEYS_PER_TILE as u32,
        l2_promotion: ATTN_TMA_L2_PROMOTION,
    };
    let kv_cols = p.kv_heads * p.head_dim;
    [
        map(k, kv_cols, rows, k_stride),
        map(v, kv_cols, rows, v_stride),
        map(k_cache, p.head_dim, cache_rows, p.head_dim),
        map(v_cache, p.head_dim, cache_rows, p.head_dim),
    ]
}

/// Launch geometry of [`attention_prefill_wgmma`]: grid `(H·B, ceil(T/128), 1)`, 384 threads
/// (256 for the forms without a producer warpgroup).
pub fn attention_prefill_wgmma_launch(p: &AttentionParams, batch: usize, tokens: usize) -> Launch {
    attention_prefill_wgmma_variant_launch(p, ATTN_WGMMA_DEFAULT, batch, tokens)
}

/// Launch geometry of [`attention_prefill_wgmma_variant`]: a block per (head, sequence, query
/// tile). The persistent forms take it too (one item a block); their own schedule is
/// [`attention_prefill_wgmma_persistent_launch`].
pub fn attention_prefill_wgmma_variant_launch(
    p: &AttentionParams,
    v: WgmmaVariant,
    batch: usize,
    tokens: usize,
) -> Launch {
    let threads = match ws_config(v) {
        Some(_) => ATTN_WG_THREADS + 128,
        None => ATTN_WG_THREADS,
    };
    Launch::new(
        (dim(p.heads * batch), blocks(tokens, ATTN_WG_TILE), 1),
        (dim(threads), 1, 1),
        wgmma_smem(p, v),
    )
}

/// Launch geometry of a persistent form ([`WgmmaVariant::is_persistent`]): one block per work
/// item up to `blocks` (the device's SMs: one block fits an SM). The forms also run correctly
/// on [`attention_prefill_wgmma_variant_launch`]'s grid, one item per block.
pub fn attention_prefill_wgmma_persistent_launch(
    p: &AttentionParams,
    v: WgmmaVariant,
    batch: usize,
    tokens: usize,
    blocks: usize,
) -> Launch {
    let items = p.heads * batch * tokens.div_ceil(ATTN_WG_TILE);
    let one_per_item = attention_prefill_wgmma_variant_launch(p, v, batch, tokens);
    Launch::new(
        (dim(items.min(blocks).max(1)), 1, 1),
        one_per_item.block,
        one_per_item.smem,
    )
}

/// The end of every `wgmma` prefill form: a consumer thread's row sums over its quad, and its
/// two rows of O normalised and stored (pairs of channels where `out` and its stride allow).
const WGMMA_EPILOGUE: &str = r#"    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int t0 = qt0 + row0, t1 = t0 + 8;
    const bool out_pairs = ((reinterpret_cast<unsigned long long>(out) | 2ull * (unsigned long long)out_stride) & 3) == 0;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        const int d = i * 8 + fc;
        bf16* o0 = out + (b * T + t0) * out_stride + h * DH + d;
        bf16* o1 = out + (b * T + t1) * out_stride + h * DH + d;
        const __nv_bfloat162 v0 = __floats2bfloat162_rn(o[4 * i] * inv0, o[4 * i + 1] * inv0);
        const __nv_bfloat162 v1 = __floats2bfloat162_rn(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1);
        if (out_pairs) {
            if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
            if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;
        } else {
            if (t0 < T) { o0[0] = v0.x; o0[1] = v0.y; }
            if (t1 < T) { o1[0] = v1.x; o1[1] = v1.y; }
        }
    }
"#;

/// `{%a, %a+1, ..., %a+n-1}` for an inline-asm operand list.
fn asm_regs(first: usize, n: usize) -> String {
    let regs: Vec<String> = (first..first + n).map(|i| format!("%{i}")).collect();
    format!("{{{}}}", regs.join(", "))
}

/// `"+f"(d[0]), ..., "+f"(d[n-1])`.
fn asm_accs(n: usize) -> String {
    let v: Vec<String> = (0..n).map(|i| format!("\"+f\"(d[{i}])")).collect();
    v.join(", ")
}

/// Hopper helpers of the `wgmma` prefill (sm_90a only): shared-memory descriptors, fences, and
/// `m64n128k16` bf16 → f32 with A from shared memory (SS) or registers (RS).
fn wgmma_prelude() -> String {
    format!(
        r#"#ifndef MODELC_WGMMA_PRELUDE
#define MODELC_WGMMA_PRELUDE
/* wgmma shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride
 * byte offsets (all >> 4), layout type 1 in bits 62-63. */
__device__ __forceinline__ unsigned long long wg_desc(unsigned addr, unsigned lbo, unsigned sbo) {{
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | ((unsigned long long)((lbo & 0x3FFFF) >> 4) << 16) |
           ((unsigned long long)((sbo & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}}
__device__ __forceinline__ void wg_fence() {{ asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }}
__device__ __forceinline__ void wg_commit() {{ asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }}
template <int N>
__device__ __forceinline__ void wg_wait() {{ asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }}
/* Generic-proxy writes to shared memory (cp.async, st.shared) made visible to wgmma's async proxy. */
__device__ __forceinline__ void fence_proxy_async() {{ asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }}
/* Keeps the compiler from moving accesses of an accumulator across wgmma issue/wait. */
__device__ __forceinline__ void reg_fence(float& r) {{ asm volatile("" : "+f"(r)::"memory"); }}
__device__ __forceinline__ void reg_fence_u(unsigned& r) {{ asm volatile("" : "+r"(r)::"memory"); }}
/* 2^x on the SFU (flush-to-zero; ex2(-inf) = 0). */
__device__ __forceinline__ float ex2_approx(float x) {{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}}
/* d (64x128 f32, per warpgroup) (+)= A (64x16, smem, K-major) * B (16x128, smem, K-major). */
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], unsigned long long da, unsigned long long db, int acc) {{
    asm volatile(
        "{{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {d_ss}, %64, %65, p, 1, 1, 0, 0;\n}}\n"
        : {accs}
        : "l"(da), "l"(db), "r"(acc));
}}
/* d (64x128 f32) += A (64x16 bf16, registers, mma.sync A-fragment layout per warp) *
 * B (16x128, smem, MN-major: the transposed descriptor). */
__device__ __forceinline__ void wgmma_rs_n128_tb(float (&d)[64], const unsigned (&a)[4], unsigned long long db) {{
    asm volatile(
        "{{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {d_ss}, {a_rs}, %68, p, 1, 1, 1;\n}}\n"
        : {accs}
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}}
#endif
"#,
        d_ss = asm_regs(0, 64),
        a_rs = asm_regs(64, 4),
        accs = asm_accs(64),
    )
}

/// Registers per thread of the warp-specialised prefill's producer and consumer warpgroups
/// (`setmaxnreg`; 128·40 + 256·232 = 64 512 of the SM's 65 536 at 384 threads).
const ATTN_WS_PRODUCER_REGS: usize = 40;
const ATTN_WS_CONSUMER_REGS: usize = 232;

/// Threads `first`, `first + step`, ... below `end` of a warp-specialised opening, each taking
/// 16-byte chunk `c % CPR` of q-tile row `row` (an expression of `c`).
#[derive(Clone, Copy)]
struct RowCopy {
    first: &'static str,
    end: &'static str,
    step: &'static str,
    row: &'static str,
}

/// The whole q tile by every thread (the non-persistent openings).
const WHOLE_TILE: RowCopy = RowCopy {
    first: "tid",
    end: "BQ * CPR",
    step: "nth",
    row: "c / CPR",
};

/// The q rows of a [`RowCopy`] into shared memory (`cp.async`), one commit group.
fn q_rows_copy(t: RowCopy) -> String {
    format!(
        r#"    for (int c = {first}; c < {end}; c += {step}) {{
        const int r = {row}, ch = c % CPR, t = qt0 + r;
        const bf16* src = q + (b * T + min(t, T - 1)) * (long)q_stride + h * DH + ch * 8;
        copy8_to_smem(reinterpret_cast<bf16*>(q_s + swz(r, ch, QHALF)), src, t < T, vec);
    }}
    cp_async_commit();
"#,
        first = t.first,
        end = t.end,
        step = t.step,
        row = t.row
    )
}

/// The same rows' new k/v appended to the caches, by the blocks of a KV group's first head (no
/// slot appended holds a key this call reads: S_max >= W + T - 1).
fn cache_rows_append(t: RowCopy) -> String {
    format!(
        r#"    if (h % R == 0) {{
        for (int c = {first}; c < {end}; c += {step}) {{
            const int r = {row}, ch = c % CPR, t = qt0 + r;
            if (t >= T) continue;
            const long pos = (long)past + t;
            const long slot = W > 0 ? pos % s_max : pos;
            if (slot < s_max) {{
                copy8_global(kc + slot * DH + ch * 8, k + (b * T + t) * k_stride + g * DH + ch * 8, vec);
                copy8_global(vc + slot * DH + ch * 8, v + (b * T + t) * v_stride + g * DH + ch * 8, vec);
            }}
        }}
    }}
"#,
        first = t.first,
        end = t.end,
        step = t.step,
        row = t.row
    )
}

/// The stage barriers, initialised by thread 0.
const WS_BARRIER_INIT: &str = r#"    if (tid == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(&bars[0][s], NPROD);
            mbar_init(&bars[1][s], NPROD);
            mbar_init(&bars[2][s], NCONS);
            mbar_init(&bars[3][s], NCONS);
        }
    }
"#;

/// The opening of the consumers with early k/v ([`WsConfig::early_kv`]): the q tile and the
/// cache rows, behind named barrier 3.
fn ws_consumer_prologue_early() -> String {
    let consumers = RowCopy {
        step: "NCONS",
        ..WHOLE_TILE
    };
    format!(
        "{}{}    cp_async_wait<0>();\n    fence_proxy_async();\n    \
         named_bar_sync(3, NCONS); /* the q tile is complete for both consumer warpgroups */\n",
        q_rows_copy(consumers),
        cache_rows_append(consumers)
    )
}

/// Named-barrier helpers of the ping-pong prefill.
const NAMED_BAR_PRELUDE: &str = r#"#ifndef MODELC_NAMED_BAR_PRELUDE
#define MODELC_NAMED_BAR_PRELUDE
/* Named barrier `id` (1..15) of `n` threads: bar.sync waits for n arrivals (its own included),
 * bar.arrive counts the warp in and does not wait. */
__device__ __forceinline__ void named_bar_sync(int id, int n) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int n) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
#endif
"#;

/// The shape of a warp-specialised Hopper prefill: whether its consumer warpgroups take turns
/// issuing their GEMMs (ping-pong), its k/v stages and its `setmaxnreg` split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WsConfig {
    pingpong: bool,
    /// The producer starts loading k/v right after the barriers are set up; the consumers load
    /// the q tile and append the cache rows meanwhile.
    early_kv: bool,
    stages: usize,
    producer_regs: usize,
    consumer_regs: usize,
    /// Masking only on tiles that cross a row's diagonal or window edge (a branch around it);
    /// the row maxima in a separate pass.
    mask_branch: bool,
    /// FlashAttention-3's order: O is rescaled between the S and the P V issues (the previous
    /// tile's factor), S starts from scale-d = 0 (no zeroing), the exponentials are fenced
    /// before the wait for P V, after which only P is packed.
    fa3_order: bool,
    /// With `fa3_order`: a row's running maximum moves only when it grows by more than 8 in
    /// the exp2 domain (P stays <= 2^8), and O is rescaled only when some row's did.
    lazy_rescale: bool,
    /// k/v tiles loaded by TMA (`cp.async.bulk.tensor`, one thread issues a tile) from tensor
    /// maps passed as extra parameters, instead of `cp.async` by the producer warpgroup.
    tma: bool,
    /// A persistent schedule: each block walks several work items (query tile, head, batch),
    /// its k/v stages running on across them, so that the producer loads the next item's
    /// tiles while the consumers finish the last one and store its O. Takes the batch size as
    /// an extra parameter (before any tensor maps).
    persistent: bool,
}

/// The warp-specialised configuration of a variant (`None` for the forms without a producer).
fn ws_config(v: WgmmaVariant) -> Option<WsConfig> {
    let base = WsConfig {
        pingpong: false,
        early_kv: false,
        stages: ATTN_WG_STAGES,
        producer_regs: ATTN_WS_PRODUCER_REGS,
        consumer_regs: ATTN_WS_CONSUMER_REGS,
        mask_branch: false,
        fa3_order: false,
        lazy_rescale: false,
        tma: false,
        persistent: false,
    };
    match v {
        WgmmaVariant::Specialized => Some(base),
        WgmmaVariant::PingPong => Some(WsConfig { pingpong: true, ..base }),
        WgmmaVariant::PingPongEarlyKv => Some(WsConfig {
            pingpong: true,
            early_kv: true,
            ..base
        }),
        WgmmaVariant::PingPong2Stages => Some(WsConfig {
            pingpong: true,
            stages: 2,
            ..base
        }),
        WgmmaVariant::PingPongMaskSplit => Some(WsConfig {
            pingpong: true,
            mask_branch: true,
            ..base
        }),
        WgmmaVariant::PingPongFa3Order => Some(WsConfig {
            pingpong: true,
            mask_branch: true,
            fa3_order: true,
            ..base
        }),
        WgmmaVariant::PingPongFa3Lazy => Some(WsConfig {
            pingpong: true,
            mask_branch: true,
            fa3_order: true,
            lazy_rescale: true,
            ..base
        }),
        WgmmaVariant::PingPongTma => Some(WsConfig {
            pingpong: true,
            mask_branch: true,
            fa3_order: true,
            lazy_rescale: true,
            tma: true,
            ..base
        }),
        WgmmaVariant::PingPongPersistent => Some(WsConfig {
            persistent: true,
            ..ws_config(ATTN_WGMMA_DEFAULT)?
        }),
        WgmmaVariant::PingPongTmaPersistent => Some(WsConfig {
            persistent: true,
            // At 40 registers the TMA producer's item loop spills (16 bytes, ptxas).
            producer_regs: 48,
            consumer_regs: 224,
            ..ws_config(WgmmaVariant::PingPongTma)?
        }),
        _ => None,
    }
}

/// Pieces of the warp-specialised consumer loop that [`WsConfig`] chooses.
const S_INIT: &str = r#"        float sc[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) {
            sc[i] = 0.0f;
            reg_fence(sc[i]);
        }
"#;
const S_INIT_FA3: &str = r#"        float sc[64]; /* the first k-step has scale-d = 0: no zeroing */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(sc[i]);
"#;
const RESCALE_O: &str = r#"#pragma unroll
        for (int i = 0; i < 16; ++i) {
            o[4 * i + 0] *= corr0;
            o[4 * i + 1] *= corr0;
            o[4 * i + 2] *= corr1;
            o[4 * i + 3] *= corr1;
        }
"#;
const RESCALE_O_LAZY: &str = r#"        if (__any_sync(0xffffffffu, corr0 != 1.0f || corr1 != 1.0f)) {
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                o[4 * i + 0] *= corr0;
                o[4 * i + 1] *= corr0;
                o[4 * i + 2] *= corr1;
                o[4 * i + 3] *= corr1;
            }
        }
"#;
const MN_EAGER: &str = "        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);";
/* The running maximum moves only when a row's maximum grows by more than 8 in the exp2 domain
 * (so P <= 2^8); otherwise O and l keep their scale (factor exactly 1). */
const MN_LAZY: &str = "        /* lazy rescale: a row's running max moves only past m + 8 / SCALE_LOG2 (P <= 2^8) */
        const float mn0 = mx0 > m0 + 8.0f / SCALE_LOG2 ? mx0 : m0, mn1 = mx1 > m1 + 8.0f / SCALE_LOG2 ? mx1 : m1;";
const CORR_CONST: &str =
    "        const float corr0 = ex2_approx(fmaf(m0, SCALE_LOG2, nb0)), corr1 = ex2_approx(fmaf(m1, SCALE_LOG2, nb1));";
const CORR_STATE: &str =
    "        corr0 = ex2_approx(fmaf(m0, SCALE_LOG2, nb0)), corr1 = ex2_approx(fmaf(m1, SCALE_LOG2, nb1));";
const CORR_LAZY: &str = "        corr0 = mn0 == m0 ? 1.0f : ex2_approx(fmaf(m0, SCALE_LOG2, nb0));
        corr1 = mn1 == m1 ? 1.0f : ex2_approx(fmaf(m1, SCALE_LOG2, nb1));";
const FENCE_EXP: &str = r#"#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(sc[i]); /* the exponentials before the P V wait */
"#;
/* The S and P V issues, a descriptor built per k-step. (One base descriptor per operand plus
 * a constant per k-step cut the instructions between wgmmas but measured slower at T8192 on an
 * H200: docs/PERFORMANCE.md.) */
const S_ISSUE: &str = r#"#pragma unroll
        for (int kk = 0; kk < DH / 16; ++kk) {
            const unsigned long long da = wg_desc(q_base + (kk / 4) * QHALF + (kk % 4) * 32, 16, 1024);
            const unsigned long long db = wg_desc(kb + (kk / 4) * KHALF + (kk % 4) * 32, 16, 1024);
            wgmma_ss_n128(sc, da, db, S_ACC);
        }"#;
const PV_ISSUE: &str = r#"#pragma unroll
        for (int j = 0; j < BK / 16; ++j) wgmma_rs_n128_tb(o, pa[j], wg_desc(vb + j * 16 * ROWB, KHALF, 1024));
"#;

const MASK_INLINE: &str = r#"        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < BK / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int pos = kt0 + n * 8 + fc + e;
                const bool vis0 = full || (pos <= qpos0 && (W == 0 || qpos0 - pos < W));
                const bool vis1 = full || (pos <= qpos1 && (W == 0 || qpos1 - pos < W));
                sc[4 * n + e] = vis0 ? sc[4 * n + e] : -INFINITY;
                sc[4 * n + 2 + e] = vis1 ? sc[4 * n + 2 + e] : -INFINITY;
                mx0 = fmaxf(mx0, sc[4 * n + e]);
                mx1 = fmaxf(mx1, sc[4 * n + 2 + e]);
            }
        }
"#;
const MASK_BRANCH: &str = r#"        if (!full) { /* only tiles crossing a row's diagonal or window edge */
#pragma unroll
            for (int n = 0; n < BK / 8; ++n) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int pos = kt0 + n * 8 + fc + e;
                    const bool vis0 = pos <= qpos0 && (W == 0 || qpos0 - pos < W);
                    const bool vis1 = pos <= qpos1 && (W == 0 || qpos1 - pos < W);
                    sc[4 * n + e] = vis0 ? sc[4 * n + e] : -INFINITY;
                    sc[4 * n + 2 + e] = vis1 ? sc[4 * n + 2 + e] : -INFINITY;
                }
            }
        }
        /* Row maxima, four partial maxima per row. */
        float mx0 = -INFINITY, mx1 = -INFINITY;
        {
            float a0 = sc[0], a1 = sc[1], a2 = sc[4], a3 = sc[5];
            float b0 = sc[2], b1 = sc[3], b2 = sc[6], b3 = sc[7];
#pragma unroll
            for (int i = 8; i < 64; i += 8) {
                a0 = fmaxf(a0, sc[i]);
                a1 = fmaxf(a1, sc[i + 1]);
                a2 = fmaxf(a2, sc[i + 4]);
                a3 = fmaxf(a3, sc[i + 5]);
                b0 = fmaxf(b0, sc[i + 2]);
                b1 = fmaxf(b1, sc[i + 3]);
                b2 = fmaxf(b2, sc[i + 6]);
                b3 = fmaxf(b3, sc[i + 7]);
            }
            mx0 = fmaxf(fmaxf(a0, a1), fmaxf(a2, a3));
            mx1 = fmaxf(fmaxf(b0, b1), fmaxf(b2, b3));
        }
"#;

const PRODUCER_CP_ASYNC: &str = r#"        /* Producer warpgroup, registers handed to the consumers: thread pt copies chunk pt % 16
         * of rows pt / 16 + 8 i. Keys past hi (and rows of empty slots) are zero-filled: a NaN
         * there would survive P = 0. */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 {preg};\n" ::: "memory");
        const int pt = tid - NCONS;
        const int r0 = pt / CPR, ch = pt % CPR;
{TILE_LOOP_HEAD}                const bf16* src_new = which == 0 ? k : v;
                const int src_stride = which == 0 ? k_stride : v_stride;
                const bf16* src_cache = which == 0 ? kc : vc;
                if (vec && (all_new || all_cached)) {
                    const bf16* src = all_new ? src_new + (b * T + kt0 - past + r0) * (long)src_stride + g * DH + ch * 8
                                              : src_cache + (slot0 + r0) * DH + ch * 8;
                    const long step = (all_new ? (long)src_stride : (long)DH) * 8;
#pragma unroll
                    for (int i = 0; i < BK / 8; ++i) cp_async16(dst + swz(r0, ch, KHALF) + i * 8 * ROWB, src + i * step, true);
                } else {
{ELEMENT_COPY_PT}                }
                /* cp.async copies are tracked by the barrier itself (one arrival when they land);
                 * element copies (unaligned rows) are plain stores: proxy fence, then a releasing
                 * arrival (the same count). */
                if (vec) {
                    mbar_arrive_cp_async(&bars[which][s]);
                } else {
                    fence_proxy_async();
                    mbar_arrive(&bars[which][s]);
                }
            }
        }
        @ITEM_LOOP_END@
        cp_async_wait<0>();
"#;

/// The opening of a warp-specialised form: with TMA, a stage's full barrier takes one arrival
/// (its bytes are counted by the copies) and the initialised barriers are fenced for the async
/// proxy.
fn ws_prologue(cfg: WsConfig) -> String {
    let barriers_only = |why: &str| format!("{why}    (void)nth;\n{WS_BARRIER_INIT}    __syncthreads();\n");
    let prologue = if cfg.persistent {
        barriers_only(
            "    /* Barriers by thread 0, then one block-wide barrier; each consumer warpgroup loads its q rows\n     \
             * at the start of every item. */\n",
        )
    } else if cfg.early_kv {
        barriers_only(
            "    /* Barriers by thread 0, then one block-wide barrier: the producer streams k/v from the start\n     \
             * while the consumers copy the q tile and append this call's cache rows (no slot appended\n     \
             * holds a key this call reads: S_max >= W + T - 1). */\n",
        )
    } else {
        format!(
            "    /* q tile by every thread; barriers by thread 0; then one block-wide barrier. */\n\
             {}{WS_BARRIER_INIT}{}    cp_async_wait<0>();\n    fence_proxy_async();\n    __syncthreads();\n",
            q_rows_copy(WHOLE_TILE),
            cache_rows_append(WHOLE_TILE)
        )
    };
    if !cfg.tma {
        return prologue;
    }
    let init = "            mbar_init(&bars[0][s], NPROD);\n            mbar_init(&bars[1][s], NPROD);\n";
    let init_tma = "            mbar_init(&bars[0][s], 1);\n            mbar_init(&bars[1][s], 1);\n";
    let loop_end = "            mbar_init(&bars[3][s], NCONS);\n        }\n";
    let mut s = prologue;
    splice_once(&mut s, init, init_tma);
    let fence = "        asm volatile(\"fence.mbarrier_init.release.cluster;\\n\" ::: \"memory\");\n";
    splice_once(&mut s, loop_end, &format!("{loop_end}{fence}"));
    s
}

/// The opening of a producer's loop: for key tile t and then k (`which` 0) and v (1), wait until
/// the stage is empty (the consumers' arrivals for tile t - STAGES); `dst` is the stage.
const PRODUCER_TILE_LOOP_HEAD: &str = r#"        @ITEM_LOOP producer@
        for (int t = 0; t < n_tiles; ++t) {
            const int s = t % STAGES;
            const int kt0 = lo + t * BK;
            const long slot0 = W > 0 ? (long)kt0 % s_max : (long)kt0;
            const bool all_new = kt0 >= past && kt0 + BK - 1 <= hi;
            const bool all_cached = kt0 + BK - 1 < past && slot0 + BK <= s_max;
            for (int which = 0; which < 2; ++which) {
                if (t >= STAGES) mbar_wait(&bars[2 + which][s], ((t / STAGES) - 1) & 1);
                unsigned char* dst = (which == 0 ? k_s : v_s) + s * 2 * KHALF;
"#;

/// A producer's copy of key tile `kt0` into `dst` one 16-byte chunk at a time, by threads
/// `FIRST`, `FIRST + STEP`, ...: rows past `hi` and empty cache slots zero-filled (the path for
/// tiles that mix cache rows and new keys, or unaligned rows).
const ELEMENT_TILE_COPY: &str = r#"                    for (int c = FIRST; c < BK * CPR; c += STEP) {
                        const int r = c / CPR, cc = c % CPR, pos = kt0 + r;
                        const bf16* src = src_new;
                        bool ok = pos <= hi;
                        if (pos < past) {
                            const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                            ok = ok && slot < s_max;
                            src = src_cache + slot * DH + cc * 8;
                        } else if (ok) {
                            src = src_new + (b * T + (pos - past)) * src_stride + g * DH + cc * 8;
                        }
                        copy8_to_smem(reinterpret_cast<bf16*>(dst + swz(r, cc, KHALF)), src, ok, vec);
                    }
"#;

/// The producer warp of the TMA form ([`WsConfig::tma`]).
const PRODUCER_TMA: &str = r#"        /* Producer, TMA form: warp 8 alone (warps 9-11 leave). For tile t it waits until stage
         * t % STAGES of k (then v) is empty; lane 0 makes the stage's full barrier expect the
         * tile's bytes and issues two 2-D TMA copies (the 64-channel halves; the maps swizzle
         * them as swz does). Tiles that are neither all new keys nor all cache rows, or whose
         * rows TMA cannot address, are copied by the warp's lanes, then one arrival. Keys past
         * hi (and rows of empty slots) are zero-filled: a NaN there would survive P = 0. */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 {preg};\n" ::: "memory");
        if (warp_id > 8) return;
        const bool tma_new = vec && tma_map_set(tm_k) && tma_map_set(tm_v);
        const bool tma_cache = tma_map_set(tm_kc) && tma_map_set(tm_vc);
        /* k/v stay in L2 (evict-last): every query tile of the head group reads them again,
         * while q and O pass once. */
        const unsigned long long keep = l2_evict_last_policy();
        if (lane == 0) { /* the maps into the TMA unit's descriptor cache */
            if (tma_new) { tma_prefetch_map(&tm_k); tma_prefetch_map(&tm_v); }
            if (tma_cache) { tma_prefetch_map(&tm_kc); tma_prefetch_map(&tm_vc); }
        }
{TILE_LOOP_HEAD}                unsigned long long* full = &bars[which][s];
                if ((all_new && tma_new) || (all_cached && tma_cache)) {
                    if (lane == 0) {
                        const TmaMap* map = all_new ? (which == 0 ? &tm_k : &tm_v) : (which == 0 ? &tm_kc : &tm_vc);
                        const int c0 = all_new ? g * DH : 0;
                        const int row = all_new ? (int)(b * T + kt0 - past) : (int)((b * G + g) * (long)s_max + slot0);
                        mbar_expect_tx(full, 2 * KHALF);
                        tma_load_2d(dst, map, c0, row, full, keep);
                        tma_load_2d(dst + KHALF, map, c0 + 64, row, full, keep);
                    }
                } else {
                    const bf16* src_new = which == 0 ? k : v;
                    const int src_stride = which == 0 ? k_stride : v_stride;
                    const bf16* src_cache = which == 0 ? kc : vc;
{ELEMENT_COPY_LANE}                    cp_async_commit();
                    cp_async_wait<0>();
                    fence_proxy_async();
                    __syncwarp();
                    if (lane == 0) mbar_arrive(full);
                }
            }
        }
        @ITEM_LOOP_END@
"#;

/// TMA helpers of [`PRODUCER_TMA`].
const TMA_PRELUDE: &str = r#"#ifndef MODELC_TMA_PRELUDE
#define MODELC_TMA_PRELUDE
/* A CUtensorMap, passed by value as a __grid_constant__ parameter (all zeros: none). */
struct __align__(64) TmaMap {
    unsigned long long w[16];
};
__device__ __forceinline__ bool tma_map_set(const TmaMap& m) {
    unsigned long long any = 0;
#pragma unroll
    for (int i = 0; i < 16; ++i) any |= m.w[i];
    return any != 0;
}
__device__ __forceinline__ void tma_prefetch_map(const TmaMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<unsigned long long>(map)) : "memory");
}
/* An L2 policy that keeps lines (evict-last): for tiles many blocks read again. */
__device__ __forceinline__ unsigned long long l2_evict_last_policy() {
    unsigned long long pol;
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(pol));
    return pol;
}
/* The box at (c0 elements, row c1) of the map's tensor into dst, its L2 lines under policy pol;
 * completes its bytes on bar. */
__device__ __forceinline__ void tma_load_2d(void* dst, const TmaMap* map, int c0, int c1, unsigned long long* bar,
                                            unsigned long long pol) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
        " [%0], [%1, {%2, %3}], [%4], %5;\n"
        ::"r"(smem_addr(dst)), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(smem_addr(bar)),
        "l"(pol)
        : "memory");
}
#endif
"#;

/// The extra parameters of the TMA form: maps of k, v (`[B·T, G·Dh]` at their strides) and of
/// the caches (`[B·G·s_max, Dh]`); see [`attention_prefill_tma_maps`].
const TMA_PARAMS: &str = ",
    const __grid_constant__ TmaMap tm_k, const __grid_constant__ TmaMap tm_v,
    const __grid_constant__ TmaMap tm_kc, const __grid_constant__ TmaMap tm_vc)";

/// The warp-specialised prefill's tile order: FlashAttention-3's longest-first scheduler with L2
/// sections. Blocks start roughly in the order of their linear index; that index walks sections
/// of (head, batch) rows whose KV heads' k and v (`keys · Dh · 4` bytes each) fit in
/// `L2_KV_BYTES`, and inside a section the query tiles from the last (the most keys) to the
/// first, the section's heads fastest. The blocks in flight then share the k/v of a few KV heads:
/// at T 8192 (H32 G8 Dh128) all eight KV heads' 32 MB compete with the q and o streams for the
/// 50 MB L2. Sections hold whole KV groups (`R` query heads each).
///
/// `L2_KV_BYTES = 0` is one section: exactly the order before sections (blockIdx.x = h + H·b,
/// blockIdx.y the query tiles from the last). It stays 0 until sections are timed on a GPU; the
/// benchmark's trials (`MODELC_BENCH_TRIALS=1`) time 4, 8 and 16 MiB (at T 8192: one, two and
/// four KV heads a section); the tests walk several sections by fixing `sec_kv`.
const WS_TILE_ORDER: &str = r#"    /* Tile order: L2 sections of whole KV groups, longest query tiles first (WS_TILE_ORDER). */
    constexpr long L2_KV_BYTES = 0; /* 0: one section */
    const int n_hb = gridDim.x, n_qt = gridDim.y;
    const long kv_head_bytes = (long)(T + past_len[0]) * DH * 4; /* batch 0's keys stand for all */
    int sec_kv = 1; /* KV heads per section: the most whose k/v fit in L2_KV_BYTES, a power of 2 */
    while (2l * sec_kv * kv_head_bytes <= L2_KV_BYTES && 2 * sec_kv * R < n_hb) sec_kv *= 2;
    const int sec = L2_KV_BYTES > 0 ? min(sec_kv * R, n_hb) : n_hb;
    const int lin = blockIdx.x + n_hb * blockIdx.y;
    const int s0 = lin / (sec * n_qt) * sec; /* the section's first (head, batch) row */
    const int in_sec = min(sec, n_hb - s0);  /* the last section may be shorter */
    const int rem = lin - s0 * n_qt;
    const int qt0 = (n_qt - 1 - rem / in_sec) * BQ;
    const int h = (s0 + rem % in_sec) % H;
    const long b = (s0 + rem % in_sec) / H;
"#;

/// The warp-specialised Hopper prefill ([`WgmmaVariant::Specialized`], and with `cfg.pingpong`
/// [`WgmmaVariant::PingPong`]): 2 consumer warpgroups (the overlapped loop) and one producer
/// warpgroup that streams k/v tiles through `cp.async` into `cfg.stages` stages, with
/// full/empty mbarriers per stage instead of block-wide barriers. Ping-pong (FlashAttention-3's
/// inter-warpgroup schedule): two named barriers make the consumer warpgroups issue their
/// GEMMs in turn, so that one warpgroup's softmax runs while the other's GEMMs keep the tensor
/// cores busy.
fn prefill_wgmma_ws(p: &AttentionParams, cfg: WsConfig) -> KernelSource {
    let pp = cfg.pingpong;
    let schedule = if pp {
        "warp-specialised, ping-pong"
    } else {
        "warp-specialised"
    };
    let pp_doc = if pp {
        "\n * Ping-pong (FlashAttention-3): the consumer warpgroups issue their GEMMs in turn. Before its\n \
         *   k-th issue (S of tile k with P V of tile k - 1; k = n_tiles: the last P V) warpgroup w\n \
         *   waits on named barrier 1 + w (bar.sync, 256 threads), after it arrives on the other's\n \
         *   (bar.arrive): warpgroup 0 goes first, so the tensor cores run one warpgroup's GEMMs while\n \
         *   the other does its softmax. Both barriers see as many arrivals as waits."
    } else {
        ""
    };
    let persistent_doc = if cfg.persistent {
        "\n * Persistent: a block walks its work items in turn (the schedule below). The producer's\n \
         *   stage and phase counters run on across items, so it loads the next item's k/v while the\n \
         *   consumers finish the last one; each consumer warpgroup loads its own q rows (and appends\n \
         *   their cache rows) when its last S GEMM has completed, and the ping-pong turns continue\n \
         *   from item to item."
    } else {
        ""
    };
    let early_doc = if cfg.early_kv {
        "\n * Opening: barriers by thread 0, one block-wide barrier; the producer streams k/v at once\n \
         *   while the consumers copy the q tile and append the cache rows (no appended slot holds a\n \
         *   key this call reads: S_max >= W + T - 1), then named barrier 3 (256 threads)."
    } else {
        ""
    };
    let named_bar_prelude = if pp || cfg.early_kv || cfg.persistent {
        NAMED_BAR_PRELUDE
    } else {
        ""
    };
    let turn_begin = |k: &str| {
        if pp {
            format!("        turn_begin({k});\n")
        } else {
            String::new()
        }
    };
    let turn_end = |k: &str| {
        if pp {
            format!("        turn_end({k});\n")
        } else {
            String::new()
        }
    };
    let turn_fns = if pp {
        "    /* Ping-pong turns: warpgroup w issues its k-th batch after the other's (k - 1)-th (w = 1:\n     \
         * its k-th); barrier 1 + w is w's turn. */\n    \
         auto turn_begin = [&](int k) {\n        \
         if (k > 0 || wg == 1) named_bar_sync(1 + wg, NCONS);\n    \
         };\n    \
         auto turn_end = [&](int k) {\n        \
         if (wg == 0 || k < n_tiles) named_bar_arrive(2 - wg, NCONS);\n    \
         };\n"
    } else {
        ""
    };
    let pre_pv = match (cfg.fa3_order, cfg.lazy_rescale) {
        (_, true) => RESCALE_O_LAZY,
        (true, false) => RESCALE_O,
        (false, false) => "",
    };
    let body = format!(
        r#"/*
 * attn_prefill_wgmma_{HASH}: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = {h} query heads, G = {g} KV heads, Dh = {dh}, scale = {scale}, {window}.
 *   Hopper (sm_90a), {schedule}: S = Q K^T on wgmma.mma_async m64n128k16 (Q, K from
 *   shared memory), O += P V with P from registers and V through a transposed descriptor; f32
 *   accumulation, online softmax in f32 (exp2, log2(e) folded into the scale).
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: as attn_prefill (q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] strided bf16 rows;
 *   caches [B,G,s_max,Dh]; past_len [B] int32). Unaligned rows are copied element by element;
 *   out rows that are not 4-byte aligned are stored a channel at a time.
 * {grid_doc}
 *   Block {threads}: warps 0-7 are 2 consumer warpgroups x 64 query rows ({creg} registers),
 *   warps 8-11 the producer warpgroup ({preg} registers, setmaxnreg).
 *   Dynamic smem 1 KiB (alignment) + q tile + {stages} stages each of k and v tiles ({bk} x Dh bf16),
 *   128-byte swizzled halves of 64 channels (16-byte chunk c of row r at chunk c ^ (r % 8)).
{producer_doc} * Consumers, per key tile j: wait for k(j) and v(j-1) to be full, fence.proxy.async, issue
 *   S = Q K_j^T and O += P_(j-1) V_(j-1), wait for S, arrive on k(j)'s empty barrier, mask
 *   (only tiles that cross a row's diagonal or window edge) and exponentiate while that P V runs,
 *   wait for it, arrive on v(j-1)'s empty barrier, rescale O and pack P_j (256 arrivals each).
 *   No branch encloses a wgmma (ptxas would serialize them).{pp_doc}{early_doc}{persistent_doc}
 */
{PRELUDE}{MMA_PRELUDE}{wg_prelude}
{MBAR_PRELUDE}{named_bar_prelude}{tma_prelude}extern "C" __global__ void __launch_bounds__({threads}, 1) attn_prefill_wgmma_{HASH}(
{params}
{{
{consts}    constexpr int BQ = {bq}, BK = {bk}, STAGES = {stages};
    static_assert(DH == 128, "two 64-channel swizzle atoms per row");
    constexpr int ROWB = 128;                /* bytes per swizzled row (64 channels) */
    constexpr int QHALF = BQ * ROWB;         /* bytes per 64-channel half of the q tile */
    constexpr int KHALF = BK * ROWB;         /* ... of a k or v tile */
    constexpr int CPR = DH / 8;              /* 16-byte chunks per row */
    constexpr int NCONS = 256;               /* consumer threads (warps 0-7) */
    constexpr int NPROD = 128;               /* producer threads (warps 8-11) */
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    /* full_k, full_v, empty_k, empty_v: one per stage */
    __shared__ __align__(8) unsigned long long bars[4][STAGES];
    unsigned char* sm = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* q_s = sm;                             /* [2][BQ][128 B] */
    unsigned char* k_s = sm + 2 * QHALF;                 /* [STAGES][2][BK][128 B] */
    unsigned char* v_s = k_s + STAGES * 2 * KHALF;       /* [STAGES][2][BK][128 B] */

    const int tid = threadIdx.x, nth = blockDim.x, warp_id = tid / 32, lane = tid % 32;
    const bool vec = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k) |
                       reinterpret_cast<unsigned long long>(v) |
                       2ull * (unsigned long long)(q_stride | k_stride | v_stride)) & 15) == 0;
    auto swz = [](int r, int ch, int half) {{ return (ch / 8) * half + r * ROWB + (((ch % 8) ^ (r % 8)) << 4); }};

{block_items}
{prologue}
    if (warp_id >= 8) {{
{producer}        return;
    }}

    /* Consumers. Accumulator coordinates (as mma.sync per warp): rows lane/4 and lane/4 + 8 of
     * the warp's 16 in the warpgroup's 64; n-tile i holds columns 8 i + 2 (lane % 4) + {{0, 1}}. */
    asm volatile("setmaxnreg.inc.sync.aligned.u32 {creg};\n" ::: "memory");
{consumer_prologue}    const int wg = tid / 128, warp = (tid / 32) % 4;
    const int fc = (lane % 4) * 2;
    const int row0 = wg * 64 + warp * 16 + lane / 4;
    const unsigned q_base = smem_addr(q_s) + wg * 64 * ROWB;
    @ITEM_LOOP consumer@
    const int wq0 = past + qt0 + wg * 64;
    const int qpos0 = past + qt0 + row0, qpos1 = qpos0 + 8;
    float o[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
{corr_state}    /* pa holds P of tile j - 1 until its P V has completed; the first P V multiplies P = 0 by
     * tile 0's v (finite). */
    unsigned pa[BK / 16][4];
#pragma unroll
    for (int j = 0; j < BK / 16; ++j) pa[j][0] = pa[j][1] = pa[j][2] = pa[j][3] = 0u;
    auto issue_pv = [&](int buf) {{
        const unsigned vb = smem_addr(v_s + buf * 2 * KHALF);
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {{
            reg_fence_u(pa[j][0]);
            reg_fence_u(pa[j][1]);
            reg_fence_u(pa[j][2]);
            reg_fence_u(pa[j][3]);
        }}
        wg_fence();
{pv_issue}        wg_commit();
    }};
{turn_fns}
    for (int tile = 0; tile < n_tiles; ++tile) {{
        const int s = tile % STAGES;
        const int pv = tile == 0 ? 0 : tile - 1;
        mbar_wait(&bars[0][s], (tile / STAGES) & 1);
        mbar_wait(&bars[1][pv % STAGES], (pv / STAGES) & 1);
        fence_proxy_async();
{pre_pv}{turn_begin_loop}        const int kt0 = lo + tile * BK;
        const unsigned kb = smem_addr(k_s + s * 2 * KHALF);
{s_init}        wg_fence();
{s_issue}
        wg_commit();
        issue_pv(pv % STAGES);
{turn_end_loop}        wg_wait<1>(); /* S done; P V of tile - 1 may still run */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(sc[i]);
        mbar_arrive(&bars[2][s]); /* k(tile) read */

        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 63 - kt0 < W);
{mask_code}        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
{mn_code}
        const float nb0 = mn0 == -INFINITY ? 0.0f : -mn0 * SCALE_LOG2;
        const float nb1 = mn1 == -INFINITY ? 0.0f : -mn1 * SCALE_LOG2;
{corr_code}
        m0 = mn0;
        m1 = mn1;
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int i = 0; i < 64; i += 4) {{
            sc[i] = ex2_approx(fmaf(sc[i], SCALE_LOG2, nb0));
            sc[i + 1] = ex2_approx(fmaf(sc[i + 1], SCALE_LOG2, nb0));
            sc[i + 2] = ex2_approx(fmaf(sc[i + 2], SCALE_LOG2, nb1));
            sc[i + 3] = ex2_approx(fmaf(sc[i + 3], SCALE_LOG2, nb1));
            sum0 += sc[i] + sc[i + 1];
            sum1 += sc[i + 2] + sc[i + 3];
        }}
        l0 = l0 * corr0 + sum0;
        l1 = l1 * corr1 + sum1;
{post_exp}        wg_wait<0>(); /* P V of tile - 1 done: o, pa and v(tile - 1) are free */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
        if (tile > 0) mbar_arrive(&bars[3][pv % STAGES]);
{rescale_after_wait}#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {{
            pa[j][0] = pack_bf16x2(sc[8 * j + 0], sc[8 * j + 1]);
            pa[j][1] = pack_bf16x2(sc[8 * j + 2], sc[8 * j + 3]);
            pa[j][2] = pack_bf16x2(sc[8 * j + 4], sc[8 * j + 5]);
            pa[j][3] = pack_bf16x2(sc[8 * j + 6], sc[8 * j + 7]);
        }}
    }}
    {{
        const int last = n_tiles - 1;
        mbar_wait(&bars[1][last % STAGES], (last / STAGES) & 1);
        fence_proxy_async();
{pre_pv_last}{turn_begin_last}        issue_pv(last % STAGES);
{turn_end_last}        wg_wait<0>();
{last_release}    }}
#pragma unroll
    for (int i = 0; i < 64; ++i) reg_fence(o[i]);
{epilogue}    @ITEM_LOOP_END@
}}
"#,
        epilogue = WGMMA_EPILOGUE,
        producer_doc = if cfg.tma {
            " * Producer: warp 8 (warps 9-11 leave). For tile t it waits until stage t % STAGES of k (then v)\n \
             *   is empty (the consumers' arrivals for tile t - STAGES); lane 0 makes the stage's full\n \
             *   barrier expect the tile's 32 KiB and issues two TMA copies (cp.async.bulk.tensor, maps\n \
             *   tm_k/tm_v for new keys, tm_kc/tm_vc for cache rows, 128-byte swizzle, L2 evict-last;\n \
             *   1 arrival).\n"
        } else {
            " * Producer: for tile t, waits until stage t % STAGES of k (then v) is empty (the consumers' arrivals\n \
             *   for tile t - STAGES), copies the tile with cp.async and makes the stage's full barrier track the\n \
             *   copies (cp.async.mbarrier.arrive.noinc, 128 arrivals).\n"
        },
        producer = if cfg.tma { PRODUCER_TMA } else { PRODUCER_CP_ASYNC }
            .replace("{preg}", &cfg.producer_regs.to_string())
            .replace("{TILE_LOOP_HEAD}", PRODUCER_TILE_LOOP_HEAD)
            .replace(
                "{ELEMENT_COPY_PT}",
                &ELEMENT_TILE_COPY.replace("FIRST", "pt").replace("STEP", "NPROD")
            )
            .replace(
                "{ELEMENT_COPY_LANE}",
                &ELEMENT_TILE_COPY.replace("FIRST", "lane").replace("STEP", "32")
            ),
        tma_prelude = if cfg.tma { TMA_PRELUDE } else { "" },
        params = ws_params(cfg),
        grid_doc = if cfg.persistent {
            "Grid: at most one block per SM, persistent (see the schedule below); any grid shape works."
        } else {
            "Grid (H*B, ceil(T/{bq})), walked in L2 sections (see the tile order below)."
        }
        .replace("{bq}", &ATTN_WG_TILE.to_string()),
        block_items = if cfg.persistent {
            PERSISTENT_SCHEDULE.to_string()
        } else {
            format!("{WS_TILE_ORDER}{ITEM_SETUP}")
        },
        last_release = if cfg.persistent {
            "        mbar_arrive(&bars[3][last % STAGES]); /* v(last) read: the next item's tiles reuse its stage */\n"
        } else {
            ""
        },
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        bq = ATTN_WG_TILE,
        bk = ATTN_WG_KEYS_PER_TILE,
        threads = ATTN_WG_THREADS + 128,
        stages = cfg.stages,
        preg = cfg.producer_regs,
        creg = cfg.consumer_regs,
        prologue = ws_prologue(cfg),
        consumer_prologue = if cfg.early_kv {
            ws_consumer_prologue_early()
        } else {
            String::new()
        },
        turn_begin_loop = turn_begin("tile"),
        turn_end_loop = turn_end("tile"),
        turn_begin_last = turn_begin("n_tiles"),
        turn_end_last = turn_end("n_tiles"),
        s_init = if cfg.fa3_order { S_INIT_FA3 } else { S_INIT },
        pre_pv = pre_pv,
        pre_pv_last = pre_pv,
        mask_code = if cfg.mask_branch { MASK_BRANCH } else { MASK_INLINE },
        mn_code = if cfg.lazy_rescale { MN_LAZY } else { MN_EAGER },
        s_issue = S_ISSUE.replace("S_ACC", if cfg.fa3_order { "kk > 0" } else { "1" }),
        pv_issue = PV_ISSUE,
        corr_code = match (cfg.fa3_order, cfg.lazy_rescale) {
            (_, true) => CORR_LAZY,
            (true, false) => CORR_STATE,
            (false, false) => CORR_CONST,
        },
        corr_state = if cfg.fa3_order {
            "    /* O's rescale factors of the last softmax, applied before the next P V issue. */
    float corr0 = 1.0f, corr1 = 1.0f;
"
        } else {
            ""
        },
        post_exp = if cfg.fa3_order { FENCE_EXP } else { "" },
        rescale_after_wait = if cfg.fa3_order { "" } else { RESCALE_O },
        consts = tensor_core_constants(p),
        wg_prelude = wgmma_prelude(),
    );
    finish(
        &[&format!("attn_prefill_wgmma_{HASH}")],
        item_loops(body, cfg.persistent),
    )
}

/// The parameters of a warp-specialised form: the common ones, then the batch size (persistent)
/// and the tensor maps (TMA).
fn ws_params(cfg: WsConfig) -> String {
    let mut params = PREFILL_PARAMS.trim_end_matches(')').to_string();
    if cfg.persistent {
        params.push_str(",\n    int batch");
    }
    params.push_str(if cfg.tma { TMA_PARAMS } else { ")" });
    params
}

/// The persistent schedule ([`WsConfig::persistent`]): the work items and which a block takes.
const PERSISTENT_SCHEDULE: &str = r#"    /* Persistent schedule: work items (query tile, head, sequence), heaviest first (the last
     * query tiles, heads fastest). Round k hands out items k n_blk .. (k + 1) n_blk - 1; block x
     * takes the x-th in even rounds and the (n_blk - 1 - x)-th in odd ones: a snake that evens
     * out the causal tiles' unequal work about as well as the hardware's dynamic order. */
    const int n_hb = H * batch, n_qt = (T + BQ - 1) / BQ, n_items = n_hb * n_qt;
    const int n_blk = gridDim.x * gridDim.y * gridDim.z;
    const int blk = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    auto item_of = [&](int k) { return k * n_blk + ((k & 1) ? n_blk - 1 - blk : blk); };
"#;

/// The opening of a block's item loop (persistent schedule): the item's coordinates and setup.
const ITEM_LOOP_OPEN: &str = r#"int it = 0; /* k/v tiles of the earlier items: stages and phases run on across items */
for (int k_item = 0;; ++k_item) {
    const int item = item_of(k_item);
    if (item >= n_items) break;
    const int qt0 = (n_qt - 1 - item / n_hb) * BQ;
    const int h = item % n_hb % H;
    const long b = item % n_hb / H;
"#;

/// A consumer warpgroup's part of an item's opening: its 64 rows of the q tile (its S GEMMs of
/// the last item have completed, so q_s is free) and their cache rows, then a warpgroup barrier.
fn item_q_rows() -> String {
    let warpgroup = RowCopy {
        first: "tid % 128",
        end: "64 * CPR",
        step: "128",
        row: "wg * 64 + c / CPR",
    };
    format!(
        "{}{}    cp_async_wait<0>();\n    fence_proxy_async();\n    \
         named_bar_sync(4 + wg, 128); /* the warpgroup's q rows are complete */\n",
        q_rows_copy(warpgroup),
        cache_rows_append(warpgroup)
    )
}

/// Expands the `@ITEM_LOOP producer|consumer@` .. `@ITEM_LOOP_END@` markers of a
/// warp-specialised body: with the persistent schedule into a loop over the block's work items
/// (the stage and phase counters offset by the tiles of earlier items), else to nothing.
fn item_loops(body: String, persistent: bool) -> String {
    if !persistent {
        return body
            .lines()
            .filter(|l| !l.trim_start().starts_with("@ITEM_LOOP"))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    let mut body = body;
    for (from, to) in [
        // producer: stage and phase of the block's tc-th tile
        (
            "            const int s = t % STAGES;\n",
            "            const int tc = it + t, s = tc % STAGES;\n",
        ),
        (
            "if (t >= STAGES) mbar_wait(&bars[2 + which][s], ((t / STAGES) - 1) & 1);",
            "if (tc >= STAGES) mbar_wait(&bars[2 + which][s], ((tc / STAGES) - 1) & 1);",
        ),
        // consumers
        (
            "        const int s = tile % STAGES;\n        const int pv = tile == 0 ? 0 : tile - 1;\n        \
             mbar_wait(&bars[0][s], (tile / STAGES) & 1);",
            "        const int tc = it + tile, s = tc % STAGES;\n        const int pv = it + (tile == 0 ? 0 : tile - 1);\n        \
             mbar_wait(&bars[0][s], (tc / STAGES) & 1);",
        ),
        ("        const int last = n_tiles - 1;", "        const int last = it + n_tiles - 1;"),
        // ping-pong: the turns run on across items (warpgroup 0's first of an item follows
        // warpgroup 1's last of the one before), so that neither arrives twice on a named
        // barrier before the other has waited on it
        (
            "if (k > 0 || wg == 1) named_bar_sync(1 + wg, NCONS);",
            "if (k > 0 || wg == 1 || k_item > 0) named_bar_sync(1 + wg, NCONS);",
        ),
        (
            "if (wg == 0 || k < n_tiles) named_bar_arrive(2 - wg, NCONS);",
            "if (wg == 0 || k < n_tiles || item_of(k_item + 1) < n_items) named_bar_arrive(2 - wg, NCONS);",
        ),
    ] {
        splice_once(&mut body, from, to);
    }
    let mut out = String::new();
    let mut depth = 0;
    for line in body.lines() {
        let trimmed = line.trim_start();
        let ind = &line[..line.len() - trimmed.len()];
        if let Some(kind) = trimmed.strip_prefix("@ITEM_LOOP ") {
            let mut open = ITEM_LOOP_OPEN.to_string();
            open.push_str(ITEM_SETUP);
            if kind.starts_with("consumer") {
                open.push_str(&item_q_rows());
            }
            for l in open.lines() {
                out.push_str(&format!("{ind}{l}\n"));
            }
            depth += 1;
        } else if trimmed.starts_with("@ITEM_LOOP_END@") {
            out.push_str(&format!("{ind}    it += n_tiles;\n{ind}}}\n"));
            depth -= 1;
        } else if depth > 0 && !line.is_empty() && !trimmed.starts_with('#') {
            out.push_str(&format!("    {line}\n"));
        } else {
            out.push_str(&format!("{line}\n"));
        }
    }
    out
}

/// Main loop of the overlapped Hopper prefill (3 stages; see the kernel header).
const WGMMA_LOOP_OVERLAPPED: &str = r#"    /* P V of tile j - 1 runs on the tensor cores while the softmax of tile j runs on the ALUs;
     * pa holds P of tile j - 1 until that P V has completed. The loop has no branch around a
     * wgmma (ptxas would serialize them): the first iteration's P V multiplies P = 0 by tile 0's
     * v (finite: zero-filled past hi), and tiles that are fully masked for a warpgroup's rows are
     * computed and masked like the others (they add exp2(-inf) = 0). */
    unsigned pa[BK / 16][4];
#pragma unroll
    for (int j = 0; j < BK / 16; ++j) pa[j][0] = pa[j][1] = pa[j][2] = pa[j][3] = 0u;
    /* O += P V over the v tile in stage `buf` (issued and committed, not waited). */
    auto issue_pv = [&](int buf) {
        const unsigned vb = smem_addr(v_s + buf * 2 * KHALF);
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
            reg_fence_u(pa[j][0]);
            reg_fence_u(pa[j][1]);
            reg_fence_u(pa[j][2]);
            reg_fence_u(pa[j][3]);
        }
        wg_fence();
        /* k-step j covers keys 16 j .. 16 j + 15 = 2048 bytes of each v half; the two 64-channel
         * halves are KHALF apart (leading byte offset), 8-key groups 1024 apart (stride). */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) wgmma_rs_n128_tb(o, pa[j], wg_desc(vb + j * 16 * ROWB, KHALF, 1024));
        wg_commit();
    };

    for (int tile = 0; tile < n_tiles; ++tile) {
        /* cp.async groups: the prologue's {q, k0, v0} and {k1}, then iteration j's {k(j+2),
         * v(j+1)}. Iteration j reads k(j) and v(j-1), both in iteration j-2's group: only the
         * newest group may still be in flight. */
        cp_async_wait<1>();
        fence_proxy_async();
        __syncthreads();
        /* Stage (j+2) % 3 of k last held k(j-1), read by S(j-1), waited in iteration j-1; stage
         * (j+1) % 3 of v held v(j-2), read by the P V issued and waited in iteration j-1. */
        if (DIAG != 1) {
            if (tile + 2 < n_tiles) load_rows(tile + 2, (tile + 2) % STAGES, 0);
            if (tile + 1 < n_tiles) load_rows(tile + 1, (tile + 1) % STAGES, 1);
        }
        cp_async_commit();
        if (DIAG == 2) continue;
        const int kt0 = lo + tile * BK;
        const int buf = tile % STAGES;
        const int prev = tile == 0 ? 0 : (tile + STAGES - 1) % STAGES;
        /* S = Q K^T: 8 k-steps of 16 channels; a step moves 32 bytes inside a swizzled row. */
        const unsigned kb = smem_addr(k_s + buf * 2 * KHALF);
        float s[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) {
            s[i] = 0.0f;
            reg_fence(s[i]);
        }
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < DH / 16; ++kk) {
            const unsigned long long da = wg_desc(q_base + (kk / 4) * QHALF + (kk % 4) * 32, 16, 1024);
            const unsigned long long db = wg_desc(kb + (kk / 4) * KHALF + (kk % 4) * 32, 16, 1024);
            wgmma_ss_n128(s, da, db, 1);
        }
        wg_commit();
        issue_pv(prev);
        wg_wait<1>(); /* S done; P V of tile - 1 may still run */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(s[i]);

        /* Raw-score row maxima (scale > 0 commutes with max); masked scores are -inf. Tiles
         * wholly below every row's diagonal and inside every row's window need no mask. */
        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 63 - kt0 < W);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < BK / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int pos = kt0 + n * 8 + fc + e;
                const bool vis0 = full || (pos <= qpos0 && (W == 0 || qpos0 - pos < W));
                const bool vis1 = full || (pos <= qpos1 && (W == 0 || qpos1 - pos < W));
                s[4 * n + e] = vis0 ? s[4 * n + e] : -INFINITY;
                s[4 * n + 2 + e] = vis1 ? s[4 * n + 2 + e] : -INFINITY;
                mx0 = fmaxf(mx0, s[4 * n + e]);
                mx1 = fmaxf(mx1, s[4 * n + 2 + e]);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        /* A row with nothing visible yet keeps base 0 so that exp2 never sees inf - inf. */
        const float nb0 = mn0 == -INFINITY ? 0.0f : -mn0 * SCALE_LOG2;
        const float nb1 = mn1 == -INFINITY ? 0.0f : -mn1 * SCALE_LOG2;
        const float corr0 = ex2_approx(fmaf(m0, SCALE_LOG2, nb0)), corr1 = ex2_approx(fmaf(m1, SCALE_LOG2, nb1));
        m0 = mn0;
        m1 = mn1;
        float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
        for (int i = 0; i < 64; i += 4) {
            s[i] = ex2_approx(fmaf(s[i], SCALE_LOG2, nb0));
            s[i + 1] = ex2_approx(fmaf(s[i + 1], SCALE_LOG2, nb0));
            s[i + 2] = ex2_approx(fmaf(s[i + 2], SCALE_LOG2, nb1));
            s[i + 3] = ex2_approx(fmaf(s[i + 3], SCALE_LOG2, nb1));
            sum0 += s[i] + s[i + 1];
            sum1 += s[i + 2] + s[i + 3];
        }
        l0 = l0 * corr0 + sum0;
        l1 = l1 * corr1 + sum1;
        wg_wait<0>(); /* P V of tile - 1 done: o and pa are free */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            o[4 * i + 0] *= corr0;
            o[4 * i + 1] *= corr0;
            o[4 * i + 2] *= corr1;
            o[4 * i + 3] *= corr1;
        }
        /* P, packed to bf16: the accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
            pa[j][0] = pack_bf16x2(s[8 * j + 0], s[8 * j + 1]);
            pa[j][1] = pack_bf16x2(s[8 * j + 2], s[8 * j + 3]);
            pa[j][2] = pack_bf16x2(s[8 * j + 4], s[8 * j + 5]);
            pa[j][3] = pack_bf16x2(s[8 * j + 6], s[8 * j + 7]);
        }
    }
    if (DIAG != 2) {
        issue_pv((n_tiles - 1) % STAGES);
        wg_wait<0>();
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) reg_fence(o[i]);
"#;

/// Main loop of the plain Hopper prefill (2 stages): per tile S, softmax, then P·V, each wgmma
/// batch waited before the next step; fully masked tiles skipped per warpgroup.
const WGMMA_LOOP_PLAIN: &str = r#"    for (int tile = 0; tile < n_tiles; ++tile) {
        cp_async_wait<STAGES - 2>();
        fence_proxy_async();
        __syncthreads(); /* tile visible to both warpgroups; tile - 1's buffer is free */
        if (tile + STAGES - 1 < n_tiles) load_kv(tile + STAGES - 1, (tile + STAGES - 1) % STAGES);
        cp_async_commit();
        const int kt0 = lo + tile * BK;
        /* Warpgroup-uniform skip of tiles fully masked for its 64 rows. */
        if (kt0 > wq0 + 63 || (W > 0 && kt0 + BK - 1 <= wq0 - W)) continue;
        const int buf = tile % STAGES;
        const unsigned kb = smem_addr(k_s + buf * 2 * KHALF);
        const unsigned vb = smem_addr(v_s + buf * 2 * KHALF);

        /* S = Q K^T: 8 k-steps of 16 channels; a step moves 32 bytes inside a swizzled row. */
        float s[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) {
            s[i] = 0.0f;
            reg_fence(s[i]);
        }
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < DH / 16; ++kk) {
            const unsigned long long da = wg_desc(q_base + (kk / 4) * QHALF + (kk % 4) * 32, 16, 1024);
            const unsigned long long db = wg_desc(kb + (kk / 4) * KHALF + (kk % 4) * 32, 16, 1024);
            wgmma_ss_n128(s, da, db, 1);
        }
        wg_commit();
        wg_wait<0>();
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(s[i]);

        const bool full = kt0 + BK - 1 <= wq0 && (W == 0 || wq0 + 63 - kt0 < W);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < BK / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int pos = kt0 + n * 8 + fc + e;
                float a = s[4 * n + e] * SCALE_LOG2, c = s[4 * n + 2 + e] * SCALE_LOG2;
                if (!full) {
                    if (!(pos <= qpos0 && (W == 0 || qpos0 - pos < W))) a = -INFINITY;
                    if (!(pos <= qpos1 && (W == 0 || qpos1 - pos < W))) c = -INFINITY;
                }
                s[4 * n + e] = a;
                s[4 * n + 2 + e] = c;
                mx0 = fmaxf(mx0, a);
                mx1 = fmaxf(mx1, c);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        const float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float corr0 = exp2f(m0 - base0), corr1 = exp2f(m1 - base1);
        m0 = mn0;
        m1 = mn1;
        float sum0 = 0.0f, sum1 = 0.0f;
        /* P, packed to bf16: the accumulators of n-tiles 2j, 2j+1 are the A fragment of k-step j. */
        unsigned pa[BK / 16][4];
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
            const float p00 = exp2f(s[8 * j + 0] - base0), p01 = exp2f(s[8 * j + 1] - base0);
            const float p02 = exp2f(s[8 * j + 2] - base1), p03 = exp2f(s[8 * j + 3] - base1);
            const float p10 = exp2f(s[8 * j + 4] - base0), p11 = exp2f(s[8 * j + 5] - base0);
            const float p12 = exp2f(s[8 * j + 6] - base1), p13 = exp2f(s[8 * j + 7] - base1);
            sum0 += p00 + p01 + p10 + p11;
            sum1 += p02 + p03 + p12 + p13;
            pa[j][0] = pack_bf16x2(p00, p01);
            pa[j][1] = pack_bf16x2(p02, p03);
            pa[j][2] = pack_bf16x2(p10, p11);
            pa[j][3] = pack_bf16x2(p12, p13);
        }
        l0 = l0 * corr0 + sum0;
        l1 = l1 * corr1 + sum1;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            o[4 * i + 0] *= corr0;
            o[4 * i + 1] *= corr0;
            o[4 * i + 2] *= corr1;
            o[4 * i + 3] *= corr1;
        }
        /* Register writes of the wgmma operands happen before the fence. */
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
            reg_fence_u(pa[j][0]);
            reg_fence_u(pa[j][1]);
            reg_fence_u(pa[j][2]);
            reg_fence_u(pa[j][3]);
        }
        /* O += P V: k-step j covers keys 16 j .. 16 j + 15 = 2048 bytes of each v half; the two
         * 64-channel halves are KHALF apart (leading byte offset), 8-key groups 1024 apart. */
        wg_fence();
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) wgmma_rs_n128_tb(o, pa[j], wg_desc(vb + j * 16 * ROWB, KHALF, 1024));
        wg_commit();
        wg_wait<0>();
#pragma unroll
        for (int i = 0; i < 64; ++i) reg_fence(o[i]);
    }
"#;

/// Emits `attn_prefill_wgmma_<hash>`: the Hopper prefill (sm_90a only; compile it to CUBIN for
/// `sm_90a`). Same arguments and results as [`attention_prefill`]; launch with
/// [`attention_prefill_wgmma_launch`]. Takes the shapes where [`wgmma_prefill`] holds.
pub fn attention_prefill_wgmma(p: &AttentionParams) -> Result<KernelSource, TemplateError> {
    attention_prefill_wgmma_variant(p, ATTN_WGMMA_DEFAULT)
}

/// The form [`attention_prefill_wgmma`] emits: ping-pong with FlashAttention-3's ordering and
/// lazy rescaling (fastest on H200, 2026-12-03, B1 H32 G8: 0.258 / 1.003 ms at T4096 / T8192,
/// against 0.282 / 1.046 for plain ping-pong and 0.314 / 1.213 without ping-pong).
pub const ATTN_WGMMA_DEFAULT: WgmmaVariant = WgmmaVariant::PingPongFa3Lazy;

/// Programs launch the TMA form ([`WgmmaVariant::PingPongTma`], its tensor maps the launch
/// variant's extra arguments) on Hopper while a call's `batch·(past + tokens)` is at most this,
/// else [`ATTN_WGMMA_DEFAULT`]. On an H200 (B1 H32 G8), T4096: 0.253–0.258 ms against
/// 0.256–0.261 for the `cp.async` form; T8192: 0.97–1.00 against 0.90–0.95 (k/v no longer
/// stay in L2, and TMA's half-row boxes fare worse from DRAM).
pub const ATTN_TMA_MAX_KEYS: usize = 4096;

/// Forms of the Hopper prefill's main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgmmaVariant {
    /// P·V of key tile j − 1 overlaps the softmax of tile j (3 stages); every thread loads.
    Overlapped,
    /// Each wgmma batch waited before the next step (2 stages); a simpler reference form.
    Plain,
    /// Warp-specialised: the overlapped consumer loop in 2 warpgroups and one producer
    /// warpgroup that loads k/v tiles, synchronised by per-stage full/empty mbarriers (384
    /// threads, `setmaxnreg`).
    Specialized,
    /// [`WgmmaVariant::Specialized`] with FlashAttention-3's ping-pong schedule: the two
    /// consumer warpgroups issue their GEMMs in turn (two named barriers), so that one
    /// warpgroup's softmax overlaps the other's GEMMs.
    PingPong,
    /// [`WgmmaVariant::PingPong`] with 2 k/v stages instead of 3 (a tuning alternative).
    PingPong2Stages,
    /// [`WgmmaVariant::PingPong`] whose producer starts loading k/v at once, while the consumers
    /// load the q tile and append the cache rows (the other forms do both before any k/v load).
    PingPongEarlyKv,
    /// [`WgmmaVariant::PingPong`] with the mask code behind a branch taken only by the tiles
    /// that cross a row's diagonal or window edge (the row maxima a separate pass).
    PingPongMaskSplit,
    /// [`WgmmaVariant::PingPongMaskSplit`] in FlashAttention-3's order: O rescaled between the
    /// S and P·V issues, S from scale-d = 0, the exponentials fenced before the P·V wait.
    PingPongFa3Order,
    /// [`WgmmaVariant::PingPongFa3Order`] with lazy rescaling: a row's running maximum moves
    /// only when it grows by more than 8 in the exp2 domain, O is rescaled only then.
    PingPongFa3Lazy,
    /// [`WgmmaVariant::PingPongFa3Lazy`] whose k/v tiles are TMA copies issued by one producer
    /// thread. Takes four tensor maps after the common arguments
    /// ([`attention_prefill_tma_maps`]).
    PingPongTma,
    /// [`WgmmaVariant::PingPongFa3Lazy`] on a persistent schedule: at most one block per SM, each
    /// walking work items (query tile, head, batch) heaviest first in a snake order, its k/v
    /// stages running on across items. Takes the batch size after the common arguments; launch
    /// with [`attention_prefill_wgmma_persistent_launch`].
    PingPongPersistent,
    /// [`WgmmaVariant::PingPongTma`] on the persistent schedule of
    /// [`WgmmaVariant::PingPongPersistent`]: the batch size, then the four tensor maps.
    PingPongTmaPersistent,
    /// Timing diagnostic (wrong results): the overlapped loop without k/v loads after the first
    /// three tiles, i.e. its compute alone.
    #[doc(hidden)]
    DiagNoLoad,
    /// Timing diagnostic (wrong results): the overlapped loop's loads and barriers alone.
    #[doc(hidden)]
    DiagNoCompute,
}

impl WgmmaVariant {
    /// The warp-specialised forms (a producer warpgroup and two consumer warpgroups; the TMA
    /// and persistent ones last).
    pub const WARP_SPECIALISED: [WgmmaVariant; 10] = [
        WgmmaVariant::Specialized,
        WgmmaVariant::PingPong,
        WgmmaVariant::PingPong2Stages,
        WgmmaVariant::PingPongEarlyKv,
        WgmmaVariant::PingPongMaskSplit,
        WgmmaVariant::PingPongFa3Order,
        WgmmaVariant::PingPongFa3Lazy,
        WgmmaVariant::PingPongTma,
        WgmmaVariant::PingPongPersistent,
        WgmmaVariant::PingPongTmaPersistent,
    ];

    /// Whether the form takes TMA tensor maps (after the common arguments and, persistent, the
    /// batch size).
    pub fn takes_tensor_maps(self) -> bool {
        ws_config(self).is_some_and(|c| c.tma)
    }

    /// Whether the form runs the persistent schedule (the batch size an extra argument).
    pub fn is_persistent(self) -> bool {
        ws_config(self).is_some_and(|c| c.persistent)
    }
}

/// Shared-memory stages of a variant.
fn wgmma_stages(v: WgmmaVariant) -> usize {
    match (v, ws_config(v)) {
        (WgmmaVariant::Plain, _) => 2,
        (_, Some(cfg)) => cfg.stages,
        _ => ATTN_WG_STAGES,
    }
}

/// [`attention_prefill_wgmma`] with a chosen main loop; launch with
/// [`attention_prefill_wgmma_variant_launch`].
pub fn attention_prefill_wgmma_variant(
    p: &AttentionParams,
    variant: WgmmaVariant,
) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_prefill_wgmma")?;
    check("attention_prefill_wgmma", wgmma_prefill(p), || {
        format!("head_dim {} is not 128", p.head_dim)
    })?;
    if let Some(cfg) = ws_config(variant) {
        return Ok(prefill_wgmma_ws(p, cfg));
    }
    let main_loop = match variant {
        WgmmaVariant::Plain => WGMMA_LOOP_PLAIN,
        _ => WGMMA_LOOP_OVERLAPPED,
    };
    let prologue = match variant {
        WgmmaVariant::Plain => {
            "    load_kv(0, 0); /* with the q tile: the first cp.async group */\n    cp_async_commit();\n"
        }
        WgmmaVariant::DiagNoLoad => {
            "    /* Diagnostic: every stage loaded once, never again. */\n    load_kv(0, 0);\n    \
             if (n_tiles > 1) load_kv(1, 1);\n    if (n_tiles > 2) load_kv(2, 2);\n    cp_async_commit();\n    \
             cp_async_commit();\n"
        }
        _ => {
            "    load_kv(0, 0); /* with the q tile: the first cp.async group */\n    cp_async_commit();\n    \
             if (n_tiles > 1) load_rows(1, 1, 0);\n    cp_async_commit();\n"
        }
    };
    let diag = match variant {
        WgmmaVariant::DiagNoLoad => 1,
        WgmmaVariant::DiagNoCompute => 2,
        _ => 0,
    };
    let body = format!(
        r#"/*
 * attn_prefill_wgmma_{HASH}: causal GQA attention of T new tokens over (KV cache ++ new keys),
 *   H = {h} query heads, G = {g} KV heads, Dh = {dh}, scale = {scale}, {window}.
 *   Hopper (sm_90a) form of attn_prefill: S = Q K^T on wgmma.mma_async m64n128k16 with Q and K
 *   from shared memory, O += P V with P from registers (the S accumulators, packed to bf16) and
 *   V from shared memory through a transposed (MN-major) descriptor; f32 accumulation, online
 *   softmax in f32 (exp2, log2(e) folded into the scale). Results match attn_prefill's.
 *   Also appends this call's k/v rows into the caches (done by the blocks of head h % (H/G) == 0).
 * Layouts: as attn_prefill (q [B,T,H*Dh], k/v [B,T,G*Dh], out [B,T,H*Dh] strided bf16 rows;
 *   caches [B,G,s_max,Dh]; past_len [B] int32). Unaligned rows are copied element by element;
 *   out rows that are not 4-byte aligned are stored a channel at a time.
 * Grid (H*B, ceil(T/{bq})): blockIdx.x = h + H*b, blockIdx.y counts query tiles from the last.
 *   Block {threads} = 2 warpgroups x 64 query rows. Dynamic smem 1 KiB (alignment) + q tile
 *   ({bq} x Dh) + {stages} stages of k and v tiles ({bk} x Dh), bf16, each tile stored as two
 *   64-channel halves of 128-byte rows with the 128-byte swizzle (16-byte chunk c of row r at
 *   chunk c ^ (r % 8)) that the wgmma descriptors name. Tiles arrive by cp.async (all threads);
 *   fence.proxy.async hands them to the tensor cores' async proxy.
 * Main loop ({loop_name}): {loop_doc}
 */
{PRELUDE}{MMA_PRELUDE}{wg_prelude}
extern "C" __global__ void __launch_bounds__({threads}, 1) attn_prefill_wgmma_{HASH}(
{PREFILL_PARAMS}
{{
{consts}    constexpr int BQ = {bq}, BK = {bk}, NTH = {threads}, STAGES = {stages};
    constexpr int DIAG = {diag}; /* 0; timing diagnostics only: 1 no k/v reloads, 2 no compute */
    (void)DIAG;
    static_assert(DH == 128, "two 64-channel swizzle atoms per row");
    constexpr int ROWB = 128;                /* bytes per swizzled row (64 channels) */
    constexpr int QHALF = BQ * ROWB;         /* bytes per 64-channel half of the q tile */
    constexpr int KHALF = BK * ROWB;         /* ... of a k or v tile */
    constexpr int CPR = DH / 8;              /* 16-byte chunks per row */
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* sm = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* q_s = sm;                             /* [2][BQ][128 B] */
    unsigned char* k_s = sm + 2 * QHALF;                 /* [STAGES][2][BK][128 B] */
    unsigned char* v_s = k_s + STAGES * 2 * KHALF;       /* [STAGES][2][BK][128 B] */

    const int qt0 = (gridDim.y - 1 - blockIdx.y) * BQ;
    const int h = blockIdx.x % H;
    const long b = blockIdx.x / H;
    const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32;
{ITEM_SETUP}    const bool vec = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k) |
                       reinterpret_cast<unsigned long long>(v) |
                       2ull * (unsigned long long)(q_stride | k_stride | v_stride)) & 15) == 0;
    /* Byte offset of 16-byte chunk ch (0..15) of row r in a tile whose halves are `half` bytes. */
    auto swz = [](int r, int ch, int half) {{ return (ch / 8) * half + r * ROWB + (((ch % 8) ^ (r % 8)) << 4); }};

    for (int c = tid; c < BQ * CPR; c += NTH) {{
        const int r = c / CPR, ch = c % CPR, t = qt0 + r;
        const bf16* src = q + (b * T + min(t, T - 1)) * (long)q_stride + h * DH + ch * 8;
        copy8_to_smem(reinterpret_cast<bf16*>(q_s + swz(r, ch, QHALF)), src, t < T, vec);
    }}
    /* Rows of a k (which = 0) or v (which = 1) tile into stage `buf`. Keys past hi (and rows of
     * empty slots) are zero-filled: a NaN there would survive P = 0. */
    auto load_rows = [&](int tile, int buf, int which) {{
        const int kt0 = lo + tile * BK;
        unsigned char* dst = (which == 0 ? k_s : v_s) + buf * 2 * KHALF;
        const bf16* src_new = which == 0 ? k : v;
        const int src_stride = which == 0 ? k_stride : v_stride;
        const bf16* src_cache = which == 0 ? kc : vc;
        /* Fast path: every row of the tile is a new key, or a cached one in consecutive slots.
         * Thread tid copies chunk tid % 16 of rows tid / 16 + 16 i: one source pointer stepped
         * by 16 rows, and a swizzle that does not change with i (16 is a multiple of 8). */
        static_assert((NTH / CPR) % 8 == 0 && (BK * CPR) % NTH == 0, "fast-path row mapping");
        const long slot0 = W > 0 ? (long)kt0 % s_max : (long)kt0;
        const bool all_new = kt0 >= past && kt0 + BK - 1 <= hi;
        const bool all_cached = kt0 + BK - 1 < past && slot0 + BK <= s_max;
        if (vec && (all_new || all_cached)) {{
            const int r0 = tid / CPR, ch = tid % CPR;
            const bf16* src = all_new ? src_new + (b * T + kt0 - past + r0) * (long)src_stride + g * DH + ch * 8
                                      : src_cache + (slot0 + r0) * DH + ch * 8;
            const long step = (all_new ? (long)src_stride : (long)DH) * (NTH / CPR);
            unsigned char* d = dst + swz(r0, ch, KHALF);
#pragma unroll
            for (int i = 0; i < BK * CPR / NTH; ++i) cp_async16(d + i * (NTH / CPR) * ROWB, src + i * step, true);
            return;
        }}
        for (int c = tid; c < BK * CPR; c += NTH) {{
            const int r = c / CPR, ch = c % CPR, pos = kt0 + r;
            const bf16* src = src_new;
            bool ok = pos <= hi;
            if (pos < past) {{
                const long slot = W > 0 ? (long)pos % s_max : (long)pos;
                ok = ok && slot < s_max;
                src = src_cache + slot * DH + ch * 8;
            }} else if (ok) {{
                src = src_new + (b * T + (pos - past)) * src_stride + g * DH + ch * 8;
            }}
            copy8_to_smem(reinterpret_cast<bf16*>(dst + swz(r, ch, KHALF)), src, ok, vec);
        }}
    }};
    auto load_kv = [&](int tile, int buf) {{
        load_rows(tile, buf, 0);
        load_rows(tile, buf, 1);
    }};
{prologue}

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

    /* Accumulator coordinates (as mma.sync per warp): rows lane/4 and lane/4 + 8 of the warp's
     * 16 in the warpgroup's 64; n-tile i holds columns 8 i + 2 (lane % 4) + {{0, 1}}. */
    const int fc = (lane % 4) * 2;
    const int row0 = wg * 64 + warp * 16 + lane / 4;
    const int wq0 = past + qt0 + wg * 64;  /* position of the warpgroup's first row */
    const int qpos0 = past + qt0 + row0, qpos1 = qpos0 + 8;
    const unsigned q_base = smem_addr(q_s) + wg * 64 * ROWB;
    float o[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

{main_loop}    cp_async_wait<0>();
{epilogue}}}
"#,
        epilogue = WGMMA_EPILOGUE,
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        scale = f32_lit(p.scale),
        window = window_name(p),
        bq = ATTN_WG_TILE,
        bk = ATTN_WG_KEYS_PER_TILE,
        stages = wgmma_stages(variant),
        diag = diag,
        loop_name = match variant {
            WgmmaVariant::Plain => "plain",
            _ => "overlapped",
        },
        loop_doc = match variant {
            WgmmaVariant::Plain =>
                "per key tile, S = Q K^T, mask and softmax, then O += P V, each\n \
                 *   wgmma batch waited; 2 stages, the next tile loading; tiles fully masked for a\n \
                 *   warpgroup's rows skipped.",
            _ =>
                "per warpgroup and key tile j, issue S = Q K_j^T, issue O += P_(j-1)\n \
                 *   V_(j-1), wait for S, mask (only tiles that cross a row's diagonal or window edge) and\n \
                 *   exponentiate while that P V runs, wait for it, rescale O and pack P_j. 3 stages each\n \
                 *   of k and v: k(j+2) and v(j+1) load during iteration j. No branch encloses a wgmma\n \
                 *   (ptxas would serialize them).",
        },
        prologue = prologue,
        threads = ATTN_WG_THREADS,
        consts = tensor_core_constants(p),
        wg_prelude = wgmma_prelude(),
    );
    Ok(finish(&[&format!("attn_prefill_wgmma_{HASH}")], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ping-pong forms are the warp-specialised kernel plus the turn-taking named
    /// barriers: same launch shape (384 threads), their own stage count, distinct sources.
    #[test]
    fn wgmma_pingpong_forms() {
        let p = AttentionParams {
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            window: None,
            scale: 128f32.powf(-0.5),
        };
        let ws = attention_prefill_wgmma_variant(&p, WgmmaVariant::Specialized).unwrap();
        let pp = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPong).unwrap();
        let pp2 = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPong2Stages).unwrap();
        let ppe = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongEarlyKv).unwrap();
        assert!(ppe.source.contains("named_bar_sync(3, NCONS);") && !pp.source.contains("named_bar_sync(3"));
        if std::env::var_os("MODELC_DUMP_PINGPONG").is_some() {
            eprintln!("{}", pp.source);
        }
        assert!(!ws.source.contains("turn_begin("));
        let ppm = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongMaskSplit).unwrap();
        let ppf = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongFa3Order).unwrap();
        assert!(ppm.source.contains("if (!full) {") && !pp.source.contains("if (!full) {"));
        assert!(ppf.source.contains("wgmma_ss_n128(sc, da, db, kk > 0);") && !ppm.source.contains("kk > 0"));
        for src in [&pp, &pp2, &ppe, &ppm, &ppf] {
            assert!(src.source.contains("turn_begin(tile);") && src.source.contains("turn_end(n_tiles);"));
            assert_ne!(src.entries, ws.entries);
        }
        assert!(pp.source.contains("STAGES = 3;") && pp2.source.contains("STAGES = 2;"));
        for v in WgmmaVariant::WARP_SPECIALISED {
            let l = attention_prefill_wgmma_variant_launch(&p, v, 2, 300);
            assert_eq!((l.grid, l.block.0), ((64, 3, 1), 384));
        }
        let smem = |v| attention_prefill_wgmma_variant_launch(&p, v, 1, 1).smem;
        assert_eq!(smem(WgmmaVariant::PingPong), smem(WgmmaVariant::Specialized));
        assert_eq!(
            smem(WgmmaVariant::PingPong2Stages),
            1024 + (128 + 2 * 2 * 128) * 128 * 2
        );
    }

    /// The TMA form is the default with another producer: four tensor-map parameters, full
    /// barriers of one arrival (the copies count the bytes), fenced after initialisation, no
    /// cp.async tracking; the default has none of it.
    #[test]
    fn tma_form_swaps_the_producer_only() {
        let p = AttentionParams {
            head_dim: 128,
            ..params()
        };
        let tma = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTma)
            .unwrap()
            .source;
        let default = attention_prefill_wgmma(&p).unwrap().source;
        if std::env::var("MODELC_PRINT_TMA").is_ok() {
            println!("{tma}");
        }
        for needle in [
            "const __grid_constant__ TmaMap tm_vc)",
            "mbar_init(&bars[0][s], 1);",
            "fence.mbarrier_init.release.cluster;",
            "cp.async.bulk.tensor.2d",
            "mbar_expect_tx(full, 2 * KHALF);",
        ] {
            assert!(tma.contains(needle), "TMA form lacks {needle:?}");
            assert!(!default.contains(needle), "default has {needle:?}");
        }
        assert!(
            !tma.contains("mbar_arrive_cp_async(&"),
            "TMA form still tracks cp.async copies"
        );
        assert_eq!(tma.matches("setmaxnreg.dec").count(), 1);
        // The consumer loop is the default's, word for word.
        let consumers = |s: &str| s[s.find("    /* Consumers.").unwrap()..].to_string();
        assert_eq!(consumers(&tma), consumers(&default));
    }

    /// The persistent forms are their base forms inside a loop over work items: the batch
    /// size before any tensor maps, stage and phase counters offset by earlier items' tiles,
    /// the last v stage released, each warpgroup loading its own q rows; the base forms keep
    /// no trace of the loop. A launch covers every item up to the block limit.
    #[test]
    fn persistent_forms_loop_over_items() {
        let p = AttentionParams {
            head_dim: 128,
            ..params()
        };
        for (base, persistent) in [
            (ATTN_WGMMA_DEFAULT, WgmmaVariant::PingPongPersistent),
            (WgmmaVariant::PingPongTma, WgmmaVariant::PingPongTmaPersistent),
        ] {
            let src = attention_prefill_wgmma_variant(&p, persistent).unwrap().source;
            let plain = attention_prefill_wgmma_variant(&p, base).unwrap().source;
            if std::env::var_os("MODELC_PRINT_PERSISTENT").is_some() {
                println!("{src}");
            }
            assert!(persistent.is_persistent() && !base.is_persistent());
            assert_eq!(persistent.takes_tensor_maps(), base.takes_tensor_maps());
            for needle in [
                "int batch",
                "for (int k_item = 0;; ++k_item) {",
                "const int tc = it + t, s = tc % STAGES;",
                "const int tc = it + tile, s = tc % STAGES;",
                "const int last = it + n_tiles - 1;",
                "mbar_arrive(&bars[3][last % STAGES]);",
                "named_bar_sync(4 + wg, 128);",
            ] {
                assert!(src.contains(needle), "{persistent:?} lacks {needle:?}");
                assert!(!plain.contains(needle), "{base:?} has {needle:?}");
            }
            assert_eq!(src.matches("for (int k_item = 0;; ++k_item) {").count(), 2);
            assert_eq!(src.matches("it += n_tiles;").count(), 2);
            assert!(!src.contains("@ITEM_LOOP") && !plain.contains("@ITEM_LOOP"));
            if persistent.takes_tensor_maps() {
                assert!(src.contains("int batch,\n    const __grid_constant__ TmaMap tm_k"));
            }
        }
        let l = attention_prefill_wgmma_persistent_launch(&p, WgmmaVariant::PingPongPersistent, 2, 300, 132);
        assert_eq!((l.grid, l.block.0), ((p.heads as u32 * 2 * 3, 1, 1), 384));
        let l = attention_prefill_wgmma_persistent_launch(&p, WgmmaVariant::PingPongPersistent, 1, 8192, 132);
        assert_eq!(l.grid, (132, 1, 1));
    }

    /// `setmaxnreg` hands registers between the warpgroups of one block: what the consumers
    /// take must fit in what the block holds at its launch bound (the SM's 65 536 registers
    /// over its threads, in the allocation's units of 8 a thread: 168 at 384 threads).
    #[test]
    fn warp_specialised_register_split_fits_the_block() {
        let threads = ATTN_WG_THREADS + 128;
        let per_thread = 65536 / threads / 8 * 8;
        for v in WgmmaVariant::WARP_SPECIALISED {
            let cfg = ws_config(v).unwrap();
            assert!(
                128 * cfg.producer_regs + 256 * cfg.consumer_regs <= threads * per_thread,
                "{v:?}: {cfg:?}"
            );
            assert!(
                cfg.producer_regs.is_multiple_of(8) && cfg.consumer_regs.is_multiple_of(8),
                "{v:?}"
            );
        }
    }
}
