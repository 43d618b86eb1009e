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
//!
//! Files: this one has the parameters, the checks and the prefill's dispatch; `simt.rs` the
//! SIMT prefill, `mma.rs` the `mma.sync` prefills (sm_80+), `wgmma.rs` the Hopper prefill; the
//! decode kernels are in `attention_decode.rs`.

use modelc_runtime::cuda::TileMap2d;

use super::{
    blocks, check, dim, f32_lit, finish, splice_once, KernelSource, Launch, TemplateError, HASH, MBAR_PRELUDE,
    MMA_PRELUDE, PRELUDE,
};

pub use super::attention_decode::{
    attention_decode, attention_decode_blocks_per_sm, attention_decode_fused, attention_decode_heads_per_grid,
    attention_decode_launch, attention_decode_min_keys, attention_decode_pick_splits, attention_decode_rope,
    attention_decode_smem, attention_decode_variant, attention_decode_variant_launch, attention_decode_variant_smem,
    attention_decode_workspace_len, grouped_decode, mma_decode, DecodeVariant, ATTN_DECODE_DEFAULT,
    ATTN_DECODE_MMA_KEYS, ATTN_DECODE_STAGES, ATTN_GROUPED_MAX_RATIO,
};

mod mma;
mod simt;
mod wgmma;

use mma::mma_geometry;
pub use mma::*;
use simt::prefill_simt;
pub use wgmma::*;

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

/// Queries per block of the tensor-core prefill (8 warps × 16 query rows).
pub const ATTN_TC_TILE: usize = 128;
/// Largest head size of the tensor-core prefill: its q fragments and output accumulators live
/// in registers (`Dh/16·4 + Dh/8·4` per thread).
pub const ATTN_TC_MAX_HEAD_DIM: usize = 128;

/// Whether [`attention_prefill`] emits the tensor-core kernel for `p` (else the SIMT one): head
/// sizes made of whole 16-channel `mma` k-steps, up to [`ATTN_TC_MAX_HEAD_DIM`].
pub fn tensor_core_prefill(p: &AttentionParams) -> bool {
    p.head_dim.is_multiple_of(16) && p.head_dim <= ATTN_TC_MAX_HEAD_DIM
}

/// Query rows per prefill block: 128 on tensor cores (either [`MmaVariant`]), else
/// [`ATTN_PREFILL_QUERIES_PER_BLOCK`].
pub fn attention_prefill_queries_per_block(p: &AttentionParams) -> usize {
    if tensor_core_prefill(p) {
        mma_geometry(p, ATTN_MMA_DEFAULT).0
    } else {
        ATTN_PREFILL_QUERIES_PER_BLOCK
    }
}

/// Row stride (floats) of the prefill's shared key tile: Dh padded to an odd number, so that the
/// 32 lanes of a warp, each reading its own key row at the same channel, hit 32 distinct banks.
fn key_stride(head_dim: usize) -> usize {
    head_dim | 1
}

pub(super) fn validate(p: &AttentionParams, template: &'static str) -> Result<(), TemplateError> {
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

pub(super) fn window_name(p: &AttentionParams) -> String {
    match p.window {
        Some(w) => format!("sliding window W = {w} (ring cache, slot = pos mod S_max)"),
        None => "full causal (slot = pos)".to_string(),
    }
}

/// Constants shared by both kernels, as `constexpr` lines.
pub(super) fn constants(p: &AttentionParams) -> String {
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

/// The parameter list every prefill kernel takes (the contract `codegen::cores` launches).
const PREFILL_PARAMS: &str = "    const bf16* __restrict__ q, int q_stride,
    const bf16* __restrict__ k, int k_stride,
    const bf16* __restrict__ v, int v_stride,
    bf16* k_cache, bf16* v_cache, const int* __restrict__ past_len,
    bf16* __restrict__ out, int out_stride,
    int T, int s_max)";

/// Emits `attn_prefill_<hash>`.
///
/// Kernel arguments, in order:
/// `(const bf16* q, int q_stride, const bf16* k, int k_stride, const bf16* v, int v_stride,
///   bf16* k_cache, bf16* v_cache, const int* past_len, bf16* out, int out_stride,
///   int T, int s_max)`
/// - q `[B, T, H·Dh]`, k and v `[B, T, G·Dh]`, out `[B, T, H·Dh]`, rows with the given strides;
/// - caches `[B, G, s_max, Dh]`; past_len `[B]` int32 (see the module doc for the slot rules).
///
/// Launch with [`attention_prefill_launch`]. Emits the tensor-core kernel where
/// [`tensor_core_prefill`] holds, else the SIMT one; both take the same arguments.
pub fn attention_prefill(p: &AttentionParams) -> Result<KernelSource, TemplateError> {
    validate(p, "attention_prefill")?;
    if tensor_core_prefill(p) {
        return attention_prefill_mma(p, ATTN_MMA_DEFAULT);
    }
    Ok(prefill_simt(p))
}

/// Constants of the tensor-core prefill and the grouped decode, as `constexpr` lines.
pub(super) fn tensor_core_constants(p: &AttentionParams) -> String {
    format!(
        "    constexpr int H = {h};\n    constexpr int G = {g};\n    constexpr int R = H / G;\n    \
         constexpr int DH = {dh};\n    constexpr int W = {w};\n    constexpr float SCALE_LOG2 = {scale};\n",
        h = p.heads,
        g = p.kv_heads,
        dh = p.head_dim,
        w = p.window.unwrap_or(0),
        // Scores are exponentiated with exp2: fold log2(e) into the scale once.
        scale = f32_lit(p.scale * std::f32::consts::LOG2_E),
    )
}

/// A prefill block's (or work item's) keys and cache rows, from its query tile `qt0`, head `h`
/// and sequence `b`: its KV head, the key tiles `lo ..` up to the last query row's position.
const ITEM_SETUP: &str = r#"    const int g = h / R;
    const int past = past_len[b];
    bf16* kc = k_cache + (b * G + g) * (long)s_max * DH;
    bf16* vc = v_cache + (b * G + g) * (long)s_max * DH;
    const int q_last = min(T, qt0 + BQ) - 1;
    const int hi = past + q_last;
    const int lo = W > 0 ? max(0, past + qt0 - W + 1) : 0;
    const int n_tiles = (hi - lo) / BK + 1;
"#;

/// Dynamic shared memory of [`attention_prefill`], in bytes (q tile, padded k tile, v tile).
pub fn attention_prefill_smem(p: &AttentionParams) -> u32 {
    if tensor_core_prefill(p) {
        // bf16 tiles with rows padded by 8 channels: q, and STAGES buffers each of k and v tiles.
        return mma_geometry(p, ATTN_MMA_DEFAULT).2;
    }
    let (bq, bk, dh) = (ATTN_PREFILL_QUERIES_PER_BLOCK, ATTN_KEYS_PER_TILE, p.head_dim);
    dim(4 * (bq * dh + bk * key_stride(dh) + bk * dh))
}

/// Launch geometry of [`attention_prefill`] (dynamic shared memory included): the tensor-core
/// kernel takes grid `(H·B, query tiles, 1)` (heads fastest, so that the heaviest query tiles of
/// every head and sequence start first) and [`ATTN_TC_THREADS`] threads; the SIMT one grid
/// `(query tiles, H, B)` and [`ATTN_THREADS`].
pub fn attention_prefill_launch(p: &AttentionParams, batch: usize, tokens: usize) -> Launch {
    if tensor_core_prefill(p) {
        return attention_prefill_mma_launch(p, ATTN_MMA_DEFAULT, batch, tokens);
    }
    let tiles = blocks(tokens, attention_prefill_queries_per_block(p));
    Launch::new(
        (tiles, dim(p.heads), dim(batch)),
        (dim(ATTN_THREADS), 1, 1),
        attention_prefill_smem(p),
    )
}

/// Threads per block of [`attention_prefill`].
pub fn attention_prefill_threads(p: &AttentionParams) -> usize {
    if tensor_core_prefill(p) {
        mma_geometry(p, ATTN_MMA_DEFAULT).1
    } else {
        ATTN_THREADS
    }
}

/// The parameters the tests start from.
#[cfg(test)]
fn params() -> AttentionParams {
    AttentionParams {
        heads: 8,
        kv_heads: 2,
        head_dim: 64,
        window: None,
        scale: 0.125,
    }
}

#[cfg(test)]
mod tests {
    use super::mma::r32_keys;
    use super::*;

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
        for head_dim in [1, 2, 8, 16, 24, 33, 48, 100, 128, 144, 256] {
            let p = AttentionParams { head_dim, ..params() };
            let pre = attention_prefill(&p).unwrap();
            let dec = attention_decode(&p).unwrap();
            for src in [&pre, &dec] {
                assert!(src.source.contains(&format!("constexpr int DH = {head_dim};")));
            }
            // Tensor cores for whole 16-channel k-steps up to 128, SIMT (with lanes past Dh
            // guarded) otherwise; the launch follows the kernel.
            let tc = head_dim % 16 == 0 && head_dim <= 128;
            assert_eq!(tensor_core_prefill(&p), tc, "Dh {head_dim}");
            assert_eq!(pre.source.contains("mma.sync.aligned.m16n8k16"), tc, "Dh {head_dim}");
            assert_eq!(pre.source.contains("constexpr bool DTAIL"), !tc, "Dh {head_dim}");
            let grouped = [16, 32, 64, 128, 256].contains(&head_dim);
            assert_eq!(grouped_decode(&p), grouped, "Dh {head_dim}");
            assert_eq!(dec.source.contains("constexpr bool DTAIL"), !grouped, "Dh {head_dim}");
            let launch = attention_prefill_launch(&p, 2, 100);
            if tc {
                assert_eq!(launch.grid, (16, 1, 1));
                let (bq, threads, smem) = mma_geometry(&p, ATTN_MMA_DEFAULT);
                assert_eq!((bq, launch.block, launch.smem), (128, (threads as u32, 1, 1), smem));
                let want = match ATTN_MMA_DEFAULT {
                    MmaVariant::Rows16 => (128 + 6 * 64) * (head_dim + 8) * 2,
                    MmaVariant::Rows32 => (128 + 4 * r32_keys(head_dim)) * (head_dim + 8) * 2,
                };
                assert_eq!(attention_prefill_smem(&p) as usize, want);
            } else {
                assert_eq!(launch.grid, (7, 8, 2));
                // The key tile's row stride is odd (bank-conflict free) and at least Dh.
                let kp = key_stride(head_dim);
                assert!(kp >= head_dim && kp % 2 == 1 && kp <= head_dim + 1);
                let want = 4 * (16 * head_dim + 32 * kp + 32 * head_dim);
                assert_eq!(attention_prefill_smem(&p) as usize, want);
            }
            let (partials, combine) = attention_decode_launch(&p, 3, 4);
            assert_eq!(partials.grid, (4, if grouped { 2 } else { 8 }, 3));
            assert_eq!(combine.grid, (8, 3, 1));
        }
        // More than 8 query heads per KV head: the SIMT decode.
        let wide = AttentionParams {
            heads: 32,
            kv_heads: 2,
            ..params()
        };
        assert!(!grouped_decode(&wide));
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
