//! The chunk-parallel prefill (`delta_rule_cp.cu`): prep, scan and output pass, the prep's forms
//! and the module that carries them with the wider scans and the extra entries.

use super::chunked::{TC_HELPERS, TC_NORM_ROW_SCALES};
use super::scan_out::{
    cp_scan_out_entry, cp_scan_out_through_workspace, CP_ANCHOR_PREP_LAST_STORE, CP_SO_GLOBAL_HELPERS,
};
use super::*;

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
pub(super) const CP_WS_ARG: &str = ",\n    float* __restrict__ ws_raw";

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

/// The entry a chunk-parallel module carries after its own (tests and benchmarks compare them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CpExtraEntry {
    None,
    /// `delta_rule_cp_scan_mc_`: the scan with W and k multicast to clusters.
    ClusterScan,
    /// `delta_rule_cp_scan_out_`: the scan and the output pass in one, its blocks this many
    /// value columns wide.
    ScanOut(ScanOutExchange, usize),
}

pub(super) fn chunk_parallel_module(
    p: &DeltaRuleParams,
    v: CpPrepVariant,
    extra: CpExtraEntry,
) -> Result<KernelSource, TemplateError> {
    let cluster = delta_rule_cp_scan_cluster(p).filter(|_| extra == CpExtraEntry::ClusterScan);
    // The scan with the output, as the parameters of its own width.
    let scan_out = match extra {
        CpExtraEntry::ScanOut(x, width) => Some((
            x,
            DeltaRuleParams {
                scan_block: width,
                ..*p
            },
        )),
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
        } + &match scan_out {
            Some((x, so)) => format!(
                "\n *   delta_rule_cp_scan_out_{HASH}: the scan and the output pass in one, after the prep \
                 (blocks of {} value columns{}).",
                so.scan_block,
                if cp_scan_out_through_workspace(&so, x) {
                    "; row sums through the workspace, whose counts the prep zeroes"
                } else {
                    ""
                }
            ),
            None => String::new(),
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
        .chain(scan_out.map(|(x, so)| cp_scan_out_entry(&so, x)))
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
    if let Some((_, so)) = scan_out.filter(|(x, so)| cp_scan_out_through_workspace(so, *x)) {
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
                ncl = so.value_dim / so.scan_block
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

#[cfg(test)]
mod tests {
    use super::*;

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
