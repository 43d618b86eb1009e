//! Mixer cores: instantiates the hand-written templates (`templates/`) for each core step of
//! the fusion plan, in a prefill and a one-token decode form, and describes their launches
//! (grid, block, arguments) over the symbolic dims.
//!
//! The launch geometry restates the templates' `*_launch` functions as expressions; the tests
//! check both agree. One file per mixer kind (`attention.rs`, `conv.rs`, `delta_rule.rs`,
//! `scan.rs`: its grids and its [`CoreCode`]); this one has what they share and the dispatch.

use std::collections::HashMap;
use std::fmt::Write;

use super::glue::describe_op;
use super::kernel::{c, rows, KArg, KTensorMap, VariantSpec};
use super::templates::attention::{
    attention_decode, attention_decode_blocks_per_sm, attention_decode_fused, attention_decode_heads_per_grid,
    attention_decode_launch, attention_decode_min_keys, attention_decode_rope, attention_prefill,
    attention_prefill_launch, attention_prefill_queries_per_block, attention_prefill_wgmma_variant,
    attention_prefill_wgmma_variant_launch, mma_decode, tensor_core_prefill, wgmma_prefill,
    AttentionParams as TAttention, WgmmaVariant, ATTN_TMA_L2_PROMOTION, ATTN_TMA_MAX_KEYS, ATTN_WGMMA_DEFAULT,
    ATTN_WG_KEYS_PER_TILE, ATTN_WG_TILE,
};
use super::templates::conv1d::{
    conv1d, conv1d_launch, Conv1dParams, ConvActivation, CONV_CHANNELS_PER_BLOCK, CONV_TOKENS_PER_THREAD,
};
use super::templates::delta_rule::{
    delta_rule_chunk_parallel, delta_rule_chunk_parallel_supported, delta_rule_chunk_parallel_with_scan_out_at,
    delta_rule_chunked, delta_rule_chunked_launch, delta_rule_cp_launches, delta_rule_cp_scan_out_launch,
    delta_rule_cp_scan_out_supported, delta_rule_cp_wide_scans, delta_rule_cp_workspace_per_chunk, delta_rule_launch,
    delta_rule_recurrent, DecayGate, DeltaRuleParams as TDelta, GatedNormEpilogue, ScanOutExchange,
    DELTA_CP_SCAN_BLOCKS, DELTA_TC_CHUNK,
};
use super::templates::selective_scan::{
    selective_scan, selective_scan_launch, SelectiveScanParams, SCAN_CHANNELS_PER_BLOCK,
};
use super::templates::{KernelSource, Launch};
use super::CodegenError;
use crate::ir::lower::STATE_PREFIX;
use crate::ir::{DecayKind, Graph, Op, Value};
use crate::passes::fuse::{Core, FusionPlan, Step, StepKind};
use modelc_runtime::cuda::nvrtc::HOPPER_TARGET;
use modelc_runtime::program::{ComputeCapability, Cond, Expr, Sym};
use modelc_runtime::tensor::DType;
use petgraph::stable_graph::NodeIndex;

mod attention;
mod conv;
mod delta_rule;
mod scan;

pub use attention::{
    attention_decode_fused_in_programs, attention_decode_grids, attention_decode_splits, attention_prefill_grid,
    attention_prefill_wgmma_grid, FusedDecode, ATTN_DECODE_FUSED_ENV, ATTN_FUSED_MAX_SPLITS,
};
pub use conv::conv_grid;
pub use delta_rule::{
    delta_rule_cp_grids, delta_rule_cp_workspace, delta_rule_grid, scan_out_in_programs, scan_out_waves_in_programs,
    ScanOutWidth, DELTA_SCAN_OUT_ENV, DELTA_SCAN_OUT_WAVES_ENV,
};
pub use scan::scan_grid;

/// A template kernel with the header modelc adds (fused nodes, cost).
#[derive(Debug, Clone)]
pub struct CoreKernel {
    pub kind: String,
    pub source: KernelSource,
    pub bytes_loaded: Expr,
    pub bytes_stored: Expr,
    pub flops: Expr,
    /// The one NVRTC target the kernel compiles for (`sm_90a`), if any.
    pub target: Option<String>,
}

/// A launch of entry `entry` of `kernels[kernel]` (local to the step).
#[derive(Debug, Clone)]
pub struct CoreLaunch {
    pub kernel: usize,
    pub entry: String,
    pub grid: [Expr; 3],
    pub block: [u32; 3],
    pub smem: u32,
    pub args: Vec<KArg>,
    /// Alternatives for some devices or calls (same arguments), their `kernel` an index into
    /// this step's kernels like [`CoreLaunch::kernel`].
    pub variants: Vec<VariantSpec>,
    /// Calls where this holds leave the launch out (an earlier launch's variant does its work).
    pub skip_when: Option<Cond>,
}

/// The kernels and launches of one core step.
#[derive(Debug, Clone)]
pub struct CoreCode {
    pub kernels: Vec<CoreKernel>,
    pub prefill: Vec<CoreLaunch>,
    pub decode: Vec<CoreLaunch>,
    /// Values the core needs stored in a dtype other than their IR type (beta in f32).
    pub demands: Vec<(Value, DType)>,
    /// Decode: plan steps the core's decode launches compute too (RoPE folded into the
    /// attention decode); they have no decode launch of their own.
    pub decode_absorbs: Vec<usize>,
    /// Decode: values those launches read in place of the absorbed steps' outputs.
    pub decode_reads: Vec<Value>,
}

pub(crate) fn b() -> Expr {
    Expr::sym(Sym::Batch)
}
pub(crate) fn t() -> Expr {
    Expr::sym(Sym::Tokens)
}

/// The name of the state input feeding input `port` of `n` (without `state.`).
pub(crate) fn state_name(graph: &Graph, n: NodeIndex, port: usize) -> Result<String, CodegenError> {
    let v = graph.inputs(n).get(port).copied();
    match v.map(|v| &graph.node(v.node).op) {
        Some(Op::Input { name, .. }) => Ok(name.strip_prefix(STATE_PREFIX).unwrap_or(name).to_string()),
        _ => Err(CodegenError::Unsupported {
            scope: graph.node(n).scope.clone(),
            op: graph.node(n).op.name(),
            reason: format!("input {port} must be a state input"),
        }),
    }
}

pub(crate) fn weight(graph: &Graph, v: Value, dtype: DType) -> Result<KArg, CodegenError> {
    match &graph.node(v.node).op {
        Op::Weight { key, .. } => Ok(KArg::Weight {
            key: key.clone(),
            dtype,
        }),
        other => Err(CodegenError::Unsupported {
            scope: graph.node(v.node).scope.clone(),
            op: other.name(),
            reason: "a core's parameter must be a checkpoint tensor".into(),
        }),
    }
}

pub(crate) fn template_err(
    graph: &Graph,
    n: NodeIndex,
) -> impl Fn(super::templates::TemplateError) -> CodegenError + '_ {
    move |e| CodegenError::Template {
        scope: graph.node(n).scope.clone(),
        source: e,
    }
}

/// Prepends modelc's header (what the kernel fuses, its cost) to a template's source.
fn with_header(src: KernelSource, fuses: &[String], loaded: &Expr, stored: &Expr, flops: &Expr) -> KernelSource {
    let mut h = String::new();
    let _ = writeln!(h, "/*\n * modelc mixer core: {} (template).", src.entries.join(", "));
    let _ = writeln!(h, " * Fuses, in order:");
    for f in fuses {
        let _ = writeln!(h, " *   {f}");
    }
    let _ = writeln!(
        h,
        " * Bytes loaded:  {loaded}\n * Bytes stored:  {stored}\n * FLOPs:         {flops}\n */"
    );
    KernelSource {
        entries: src.entries,
        source: format!("{h}{}", src.source),
    }
}

pub(crate) fn kernel(
    kind: &str,
    src: KernelSource,
    fuses: &[String],
    loaded: Expr,
    stored: Expr,
    flops: Expr,
) -> CoreKernel {
    let source = with_header(src, fuses, &loaded, &stored, &flops);
    CoreKernel {
        kind: kind.to_string(),
        source,
        bytes_loaded: loaded,
        bytes_stored: stored,
        flops,
        target: None,
    }
}

/// Block shape and dynamic shared memory of a template's launch helper (they do not depend on
/// the batch or token count, only on the template's constants), so a launch can never disagree
/// with what its template was written for.
fn block_smem(l: Launch) -> ([u32; 3], u32) {
    ([l.block.0, l.block.1, l.block.2], l.smem)
}

pub(crate) fn ch(graph: &Graph, v: Value) -> usize {
    graph.ty(v).channels().unwrap_or(0)
}

/// What a mixer kind's code takes from its core step: the graph, the core's node, and the
/// descriptions of the nodes it fuses (for its kernels' headers).
#[derive(Clone, Copy)]
pub(crate) struct CoreCx<'g> {
    pub graph: &'g Graph,
    pub plan: &'g FusionPlan,
    /// The plan step of each node.
    pub owner: &'g HashMap<NodeIndex, usize>,
    pub n: NodeIndex,
    pub fuses: &'g [String],
}

impl CoreCx<'_> {
    /// Input `i` of the core's node.
    fn input(&self, i: usize) -> Result<Value, CodegenError> {
        self.graph
            .inputs(self.n)
            .get(i)
            .copied()
            .ok_or_else(|| CodegenError::Internal(format!("core {}: input {i} missing", self.n.index())))
    }

    /// The error for a core step whose node is not of its kind.
    fn mismatch(&self) -> CodegenError {
        CodegenError::Internal(format!("core step {} does not match its node's op", self.n.index()))
    }
}

/// Generates the kernels and launches of one core step.
pub fn core_code(
    graph: &Graph,
    plan: &FusionPlan,
    owner: &HashMap<NodeIndex, usize>,
    step: &Step,
    core: &Core,
) -> Result<CoreCode, CodegenError> {
    let n = core.node();
    // Template headers name ops without scopes: a template's body fixes what it fuses, so the
    // header (and the kernel) stays shared by every layer and sub-mixer using it.
    let fuses: Vec<String> = step.nodes.iter().map(|&m| describe_op(graph, m)).collect();
    let cx = CoreCx {
        graph,
        plan,
        owner,
        n,
        fuses: &fuses,
    };
    match (core, &graph.node(n).op) {
        (Core::Attention { .. }, Op::Attention(p)) => attention::attention_core(&cx, p),
        (Core::Conv { .. }, Op::CausalConv1d { kernel: kk, bias, silu }) => conv::conv_core(&cx, kk, bias, silu),
        (Core::DeltaRule { .. }, Op::DeltaRule(p)) => delta_rule::delta_rule_core(&cx, core, p),
        (Core::Scan { .. }, Op::SelectiveScan { state_size }) => scan::scan_core(&cx, core, state_size),
        _ => Err(cx.mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::templates::attention::{
        attention_decode_pick_splits, attention_decode_smem, attention_prefill_smem, attention_prefill_threads,
    };
    use super::*;
    use modelc_runtime::program::Env;

    fn grid(g: &[Expr; 3], env: &Env) -> (u32, u32, u32) {
        let e = |x: &Expr| x.eval(env).map(|v| v as u32).unwrap_or(u32::MAX);
        (e(&g[0]), e(&g[1]), e(&g[2]))
    }

    fn envs() -> Vec<Env> {
        [(1, 1, 0), (2, 17, 5), (3, 64, 1000), (1, 1000, 33)]
            .into_iter()
            .map(|(batch, tokens, past)| Env {
                batch,
                tokens,
                past,
                max_len: 4096,
                slots: 4,
                slot: 0,
                sms: 132,
            })
            .collect()
    }

    /// The expressions agree with the templates' own launch functions on several sizes, for
    /// large and small (below one warp) head and value dims.
    #[test]
    fn launch_expressions_match_the_templates() {
        // 8 and 24: SIMT both; 16, 64, 128: tensor cores and grouped.
        for head_dim in [8, 16, 24, 64, 128] {
            let ap = TAttention {
                heads: 8,
                kv_heads: 2,
                head_dim,
                window: None,
                scale: 0.125,
            };
            for env in envs() {
                let (bu, tu, past) = (env.batch as usize, env.tokens as usize, env.past as usize);
                assert_eq!(
                    grid(&attention_prefill_grid(&ap), &env),
                    attention_prefill_launch(&ap, bu, tu).grid
                );
                let splits = attention_decode_splits(&ap).eval(&env).unwrap_or(0) as usize;
                assert!(splits >= 1 && splits <= (past + 1).div_ceil(32).max(1));
                assert_eq!(splits, attention_decode_pick_splits(&ap, bu, past, env.sms as usize));
                let (pg, cg) = attention_decode_launch(&ap, bu, splits);
                let (pe, ce) = attention_decode_grids(&ap, attention_decode_splits(&ap));
                assert_eq!((grid(&pe, &env), grid(&ce, &env)), (pg.grid, cg.grid));
                assert_eq!(cg.block.0 as usize, head_dim);
            }
        }
        let norm = GatedNormEpilogue {
            eps: 1e-5,
            act: crate::spec::GateActivation::Silu,
        };
        let plain = [(64, 128), (128, 64), (8, 8), (16, 16), (16, 80)]
            .map(|(dk, dv)| TDelta::new(2, 4, dk, dv, DecayGate::Scalar));
        // With the epilogue: one block per head (the grid has one block along x).
        let fused = [(64, 128), (8, 8), (16, 80), (32, 256)]
            .map(|(dk, dv)| TDelta::new(2, 4, dk, dv, DecayGate::Scalar).with_gated_norm(norm));
        for dp in plain.into_iter().chain(fused) {
            let dv = dp.value_dim;
            for env in envs() {
                let g = grid(&delta_rule_grid(&dp), &env);
                assert_eq!(g, delta_rule_launch(&dp, env.batch as usize, 0).grid);
                // Every value column has a thread, and no block is empty.
                assert!(g.0 as usize * dp.value_block >= dv && (g.0 as usize - 1) * dp.value_block < dv);
            }
        }
        // The chunk-parallel delta rule's grids and workspace.
        for (dk, dv, sbv) in [(128, 128, 32), (64, 64, 16), (32, 256, 64)] {
            let dp = TDelta {
                scan_block: sbv,
                ..TDelta::new(2, 4, dk, dv, DecayGate::PerChannel).with_gated_norm(norm)
            };
            for env in envs() {
                let (bu, tu) = (env.batch as usize, env.tokens as usize);
                let want = delta_rule_cp_launches(&dp, bu, tu);
                for (g, l) in delta_rule_cp_grids(&dp).iter().zip(want) {
                    assert_eq!(grid(g, &env), l.grid);
                }
                assert_eq!(
                    delta_rule_cp_workspace(&dp).eval(&env).unwrap() as usize,
                    super::super::templates::delta_rule::delta_rule_cp_workspace_len(&dp, bu, tu)
                );
            }
        }
        for env in envs() {
            let (bu, tu) = (env.batch as usize, env.tokens as usize);
            assert_eq!(grid(&conv_grid(300), &env), conv1d_launch(bu, tu, 300).grid);
            assert_eq!(grid(&scan_grid(200), &env), selective_scan_launch(bu, 200).grid);
        }
    }

    /// Head dims of 32 (codegen-hybrid): the delta rule's prefill is the chunk-parallel form,
    /// three launches of one kernel with the shared arguments and one workspace; decode keeps
    /// the recurrent kernel.
    #[test]
    fn chunk_parallel_prefill_has_three_launches_and_a_workspace() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/specs/codegen-hybrid.yaml");
        let spec = crate::spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let placement = crate::passes::Placement::main(&spec);
        let (cg, _) = super::super::compile(&spec, &placement, "codegen-hybrid").unwrap_or_else(|e| panic!("{e}"));
        let mut seen = 0;
        for (step, code) in cg.plan.steps.iter().zip(&cg.steps) {
            let crate::passes::fuse::StepKind::Core(core) = &step.kind else {
                continue;
            };
            let Op::DeltaRule(p) = &cg.graph.node(core.node()).op else {
                continue;
            };
            seen += 1;
            // KDA decodes with one kernel for the whole layer (`kda_step`), GDN with the
            // recurrent kernel on the prefill's arguments.
            let kda = p.decay == crate::ir::DecayKind::PerChannel;
            assert_eq!(code.decode.len(), 1);
            assert_eq!(
                code.decode[0].entry.starts_with("kda_decode_step_"),
                kda,
                "{}",
                code.decode[0].entry
            );
            let entries: Vec<&str> = code.prefill.iter().map(|l| l.entry.as_str()).collect();
            assert_eq!(entries.len(), 3, "{entries:?}");
            for (e, want) in entries
                .iter()
                .zip(["delta_rule_cp_prep_", "delta_rule_cp_scan_", "delta_rule_cp_out_"])
            {
                assert!(e.starts_with(want), "{e}");
            }
            for l in &code.prefill {
                assert_eq!(l.kernel, code.prefill[0].kernel, "one module, three entries");
                assert!(l.smem > 0, "{}", l.entry);
                assert!(
                    matches!(l.args.last(), Some(KArg::Workspace { name, dtype: DType::F32, .. }) if name == "delta_cp"),
                    "{:?}",
                    l.args.last()
                );
                if !kda {
                    assert_eq!(l.args[..l.args.len() - 1], code.decode[0].args[..], "{}", l.entry);
                }
            }
            if !kda {
                assert!(code.decode[0].entry.starts_with("delta_rule_recurrent_"));
            }
        }
        assert!(seen >= 2, "codegen-hybrid has GDN and KDA cores ({seen})");
    }

    /// The launches of a generated program carry the templates' block shapes and dynamic shared
    /// memory: the attention prefill's tiles and the chunked delta rule's need it.
    #[test]
    fn generated_launches_carry_block_and_shared_memory() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/tiny-hybrid.yaml");
        let spec = crate::spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let placement = crate::passes::Placement::main(&spec);
        let (cg, _) = super::super::compile(&spec, &placement, "tiny-hybrid").unwrap_or_else(|e| panic!("{e}"));
        let mut seen = std::collections::BTreeSet::new();
        for (step, code) in cg.plan.steps.iter().zip(&cg.steps) {
            let crate::passes::fuse::StepKind::Core(core) = &step.kind else {
                continue;
            };
            let launches = code.prefill.iter().chain(&code.decode);
            match &cg.graph.node(core.node()).op {
                Op::Attention(p) => {
                    let tp = attention::template_params(p);
                    for l in launches {
                        let want = if l.entry.starts_with("attn_prefill_") {
                            attention_prefill_smem(&tp)
                        } else if l.entry.starts_with("attn_decode_combine_") {
                            0
                        } else {
                            attention_decode_smem(&tp)
                        };
                        assert_eq!(l.smem, want, "{}", l.entry);
                        assert!(want == 0 || want >= 4 * 16 * 16, "{}", l.entry);
                        let threads = if l.entry.starts_with("attn_decode_combine_") {
                            p.head_dim
                        } else if l.entry.starts_with("attn_prefill_") {
                            attention_prefill_threads(&tp)
                        } else {
                            128
                        };
                        assert_eq!(l.block, [threads as u32, 1, 1], "{}", l.entry);
                        seen.insert("attention");
                    }
                }
                Op::DeltaRule(p) => {
                    let Core::DeltaRule { norm: Some(m), .. } = core else {
                        panic!("tiny-hybrid's delta rule absorbs its gated norm")
                    };
                    for l in launches {
                        assert_eq!(l.block[0] % 32, 0, "{}: whole warps", l.entry);
                        if l.entry.starts_with("kda_decode_step_") {
                            // Four lanes per value column / key channel, a block per head.
                            let width = p.key_dim.max(p.value_dim).div_ceil(32) * 32;
                            assert_eq!(l.block, [4 * width as u32, 1, 1], "{}", l.entry);
                            assert_eq!(l.grid[0], c(p.value_heads), "{}", l.entry);
                            assert_eq!((l.smem, l.args.len()), (0, 20), "{}", l.entry);
                            seen.insert("kda_decode_step");
                            continue;
                        }
                        assert!(l.block[0] as usize >= p.value_dim.min(32), "{}", l.entry);
                        assert_eq!(l.smem > 0, l.entry.starts_with("delta_rule_chunked_"), "{}", l.entry);
                        // The epilogue: one block per head, its three arguments appended.
                        assert!(l.block[0] as usize >= p.value_dim, "{}", l.entry);
                        assert_eq!(l.grid[0], c(1), "{}", l.entry);
                        assert_eq!(l.args.len(), 16, "{}", l.entry);
                        assert_eq!(l.args[13], KArg::Value(m.gate));
                        assert_eq!(l.args[14], KArg::Stride(m.gate));
                        assert!(
                            matches!(&l.args[15], KArg::Weight { dtype: DType::F32, .. }),
                            "{:?}",
                            l.args[15]
                        );
                        seen.insert("delta_rule");
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            seen.len(),
            3,
            "tiny-hybrid has attention and delta-rule cores, KDA decoding in one kernel: {seen:?}"
        );
    }

    /// hybrid-1b (attention Dh 128, KDA H16 Dk = Dv = 128): on Hopper the attention prefill runs
    /// the wgmma kernel (an sm_90a module, as the template launches it); the KDA scan runs with
    /// the output pass where all its blocks are resident (the output pass's step then left out),
    /// and otherwise widens its value block for calls of several sequences, to the widest that
    /// still has 128 blocks.
    #[test]
    fn programs_carry_the_hopper_prefill_and_batch_wide_scans_as_variants() {
        use super::super::templates::attention::attention_prefill_wgmma_launch;
        use modelc_runtime::program::{Arg, Step as PStep};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/hybrid-1b.yaml");
        let spec = crate::spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let placement = crate::passes::Placement::main(&spec);
        let (cg, program) = super::super::compile(&spec, &placement, "hybrid-1b").unwrap_or_else(|e| panic!("{e}"));
        let module = |name: &str| program.kernels.iter().find(|k| k.name == name).expect("module");
        let (mut attn, mut scans) = (0, 0);
        for (i, st) in program.prefill.steps.iter().enumerate() {
            let PStep::Launch(l) = st else { continue };
            if l.entry.starts_with("attn_prefill_") {
                attn += 1;
                // The TMA form for calls of at most ATTN_TMA_MAX_KEYS keys (its four tensor maps
                // as extra arguments), then the cp.async form for every other call.
                assert_eq!(l.variants.len(), 2, "{}", l.label);
                let (tma, v) = (&l.variants[0], &l.variants[1]);
                assert_eq!((tma.cc, tma.when.is_some()), (Some(ComputeCapability::HOPPER), true));
                assert_eq!(tma.extra_args.len(), 4);
                assert!(tma.extra_args.iter().all(|a| matches!(a, Arg::TensorMap(_))));
                assert_eq!(
                    (v.cc, v.when.is_none(), v.extra_args.len()),
                    (Some(ComputeCapability::HOPPER), true, 0)
                );
                for w in [tma, v] {
                    assert!(w.entry.starts_with("attn_prefill_wgmma_"), "{}", w.entry);
                    assert_eq!(module(&w.module).target.as_deref(), Some(HOPPER_TARGET));
                    assert_eq!(w.grid, v.grid);
                }
                assert_ne!(tma.module, v.module);
                assert_eq!(module(&l.module).target, None, "the fallback runs anywhere");
                let tp = TAttention {
                    heads: 16,
                    kv_heads: 4,
                    head_dim: 128,
                    window: None,
                    scale: 0.0,
                };
                for env in envs() {
                    let want = attention_prefill_wgmma_launch(&tp, env.batch as usize, env.tokens as usize);
                    assert_eq!(grid(&v.grid, &env), want.grid);
                    assert_eq!(
                        (v.block, v.smem),
                        ([want.block.0, want.block.1, want.block.2], want.smem)
                    );
                }
            } else if l.entry.starts_with("delta_rule_cp_scan_") {
                scans += 1;
                assert!(
                    !l.variants.is_empty(),
                    "H16 x Dv 128: scan block 16 for one sequence, wider for more"
                );
                // The output pass's step, next, is left out exactly where the scan with the
                // output runs (programs carry it where DELTA_SCAN_OUT_ENV asks for it).
                let Some(PStep::Launch(out)) = program.prefill.steps.get(i + 1) else {
                    panic!("{}: no output pass after the scan", l.label)
                };
                assert!(out.entry.starts_with("delta_rule_cp_out_"), "{}", out.entry);
                // (Other widths of the scan with the output: the CLI's test builds with them.)
                let request = super::scan_out_in_programs().unwrap();
                if matches!(request, Some(super::ScanOutWidth::Columns(_))) {
                    continue;
                }
                let wide = if request.is_some() {
                    let so = &l.variants[0];
                    assert!(so.entry.starts_with("delta_rule_cp_scan_out_"), "{}", so.entry);
                    assert_eq!(
                        (so.module.as_str(), so.cc, so.grid.clone()),
                        (l.module.as_str(), None, l.grid.clone())
                    );
                    assert_eq!(out.skip_when, so.when, "{}", out.label);
                    for (batch, sms, fused) in [(1, 132, true), (1, 128, true), (1, 127, false), (2, 132, false)] {
                        let env = Env {
                            batch,
                            sms,
                            ..envs()[0]
                        };
                        assert_eq!(l.pick_index(&env).unwrap() == 1, fused, "batch {batch}, {sms} SMs");
                        assert_eq!(out.skips(&env).unwrap(), fused, "batch {batch}, {sms} SMs");
                    }
                    &l.variants[1..]
                } else {
                    assert_eq!(out.skip_when, None, "{}", out.label);
                    &l.variants[..]
                };
                // With the scan with the output out of the way (too few SMs), the widest scan
                // block that still has 128 blocks.
                for batch in 1..=16 {
                    let env = Env {
                        batch,
                        sms: 100,
                        ..envs()[0]
                    };
                    let blocks = |g: &[Expr; 3]| {
                        let (x, y, z) = grid(g, &env);
                        (x, u64::from(x) * u64::from(y) * u64::from(z))
                    };
                    let chosen = l.pick(&env).unwrap();
                    assert!(!chosen.entry.starts_with("delta_rule_cp_scan_out_"));
                    let (x, n) = blocks(chosen.grid);
                    assert!(n >= 128, "batch {batch}: {n} scan blocks");
                    for other in l.choices().filter(|c| !c.entry.starts_with("delta_rule_cp_scan_out_")) {
                        let (ox, on) = blocks(other.grid);
                        assert!(
                            ox >= x || on < 128,
                            "batch {batch}: a wider block ({ox} per head) has {on} blocks"
                        );
                    }
                    let (x1, _) = blocks(l.pick(&Env { batch: 1, ..env }).unwrap().grid);
                    assert!(batch < 8 || x < x1, "batch {batch}: the scan widened");
                }
                for v in wide {
                    assert_eq!(v.module, l.module, "wider scans are entries of the same module");
                    assert!(
                        v.entry.starts_with("delta_rule_cp_scan_w") && v.smem > l.smem && v.cc.is_none(),
                        "{}",
                        v.entry
                    );
                }
            }
        }
        assert_eq!((attn, scans), (6, 18), "hybrid-1b: 6 attention and 18 KDA layers");
        // Decode: each KDA layer's step kernel splits its heads over clusters of 8 CTAs on Hopper
        // (16 value columns each) at small batches; the single-block kernel is the fallback.
        // Same arguments.
        let mut kda = 0;
        for st in &program.decode.steps {
            let PStep::Launch(l) = st else { continue };
            if !l.entry.starts_with("kda_decode_step_") {
                continue;
            }
            kda += 1;
            assert_eq!(l.variants.len(), 1, "{}", l.label);
            let v = &l.variants[0];
            assert_eq!(v.cc, Some(ComputeCapability::HOPPER));
            assert!(v.entry.starts_with("kda_decode_step_cluster_"), "{}", v.entry);
            // While the single-block grid (16 blocks a sequence) leaves over half the SMs idle.
            let when = v.when.as_ref().expect("a batch condition");
            for (batch, holds) in [(1, true), (4, true), (5, false), (8, false)] {
                let env = Env {
                    batch,
                    sms: 132,
                    ..envs()[0]
                };
                assert_eq!(when.holds(&env).unwrap(), holds, "{when} at batch {batch}");
            }
            assert_eq!(module(&v.module).target.as_deref(), Some(HOPPER_TARGET));
            assert_eq!(module(&l.module).target, None, "the fallback runs anywhere");
            assert!(v.pdl && l.pdl, "{}: both forms wait for the projection", l.label);
            assert_eq!((v.block, v.smem), ([64, 1, 1], 0));
            for env in envs() {
                let (x, y, z) = grid(&v.grid, &env);
                assert_eq!(
                    (x, y, z),
                    (16 * 8, env.batch as u32, 1),
                    "H16 x 8 CTAs, a row per sequence"
                );
                assert_eq!(grid(&l.grid, &env), (16, env.batch as u32, 1));
            }
        }
        assert_eq!(kda, 18, "one step kernel per KDA layer");
        // The Hopper kernels are part of the codegen's kernel list (written, listed, compiled):
        // the attention prefill's two forms and the KDA decode step (one module each: the
        // layers are alike).
        assert_eq!(cg.kernels.iter().filter(|k| k.target.is_some()).count(), 3);
        // `modelc kernels` lists it with the kernels of the steps that may launch it.
        let listed = super::super::kernels_of_steps(&cg, |_| true);
        assert!(listed.iter().any(|&k| cg.kernels[k].target.is_some()), "{listed:?}");
        program.validate().unwrap();
    }
}
