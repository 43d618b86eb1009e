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
//!
//! Files: this one has the parameters and what every form shares; `recurrent.rs` the decode
//! form; `chunked.rs` the single-kernel prefill (SIMT and tensor-core); `chunk_parallel.rs` the
//! three-pass prefill and its prep forms; `scan_out.rs` the scan and the output pass in one. The
//! CUDA text they fill in lives beside them (`delta_rule_*.cu`, `delta_rule_cp_prep/`).

use super::{
    blocks, check, dim, f32_lit, finish, splice_once, KernelSource, Launch, TemplateError, CLUSTER_ASYNC_HELPERS,
    CLUSTER_HELPERS, HASH, MBAR_PRELUDE, MMA_PRELUDE, PRELUDE,
};
use crate::spec::GateActivation;

mod chunk_parallel;
mod chunked;
mod recurrent;
mod scan_out;

pub use chunk_parallel::*;
pub use chunked::*;
pub use recurrent::*;
pub use scan_out::*;

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

/// The parameter names of a C parameter list (`const bf16* __restrict__ q, int n` → `q, n`).
fn arg_names(params: &str) -> String {
    params
        .split(',')
        .filter_map(|a| a.split_whitespace().last())
        .map(|n| n.trim_start_matches('*'))
        .collect::<Vec<_>>()
        .join(", ")
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

/// The gated norm the tests fuse.
#[cfg(test)]
const SILU: GatedNormEpilogue = GatedNormEpilogue {
    eps: 1e-5,
    act: GateActivation::Silu,
};

#[cfg(test)]
mod tests {
    use super::*;

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
}
