//! Mixer cores: instantiates the hand-written templates (`templates/`) for each core step of
//! the fusion plan, in a prefill and a one-token decode form, and describes their launches
//! (grid, block, arguments) over the symbolic dims.
//!
//! The launch geometry below restates the templates' `*_launch` functions as expressions; the
//! tests check both agree.

use std::fmt::Write;

use super::glue::describe_op;
use super::kernel::{c, rows, KArg, KTensorMap, VariantSpec};
use super::templates::attention::{
    attention_decode, attention_decode_blocks_per_sm, attention_decode_heads_per_grid, attention_decode_launch,
    attention_decode_min_keys, attention_prefill, attention_prefill_launch, attention_prefill_queries_per_block,
    attention_prefill_wgmma_variant, attention_prefill_wgmma_variant_launch, tensor_core_prefill, wgmma_prefill,
    AttentionParams as TAttention, WgmmaVariant, ATTN_TMA_L2_PROMOTION, ATTN_TMA_MAX_KEYS, ATTN_WGMMA_DEFAULT,
    ATTN_WG_KEYS_PER_TILE, ATTN_WG_TILE,
};
use super::templates::conv1d::{
    conv1d, conv1d_launch, Conv1dParams, ConvActivation, CONV_CHANNELS_PER_BLOCK, CONV_TOKENS_PER_THREAD,
};
use super::templates::delta_rule::{
    delta_rule_chunk_parallel, delta_rule_chunk_parallel_supported, delta_rule_chunk_parallel_with_scan_out,
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
use crate::passes::fuse::{Core, FusionPlan, Step};
use modelc_runtime::cuda::nvrtc::HOPPER_TARGET;
use modelc_runtime::program::{ComputeCapability, Cond, Expr, Sym};
use modelc_runtime::tensor::DType;

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
}

pub(crate) fn b() -> Expr {
    Expr::sym(Sym::Batch)
}
pub(crate) fn t() -> Expr {
    Expr::sym(Sym::Tokens)
}

/// The name of the state input feeding input `port` of `n` (without `state.`).
pub(crate) fn state_name(
    graph: &Graph,
    n: petgraph::stable_graph::NodeIndex,
    port: usize,
) -> Result<String, CodegenError> {
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
    n: petgraph::stable_graph::NodeIndex,
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

/// Grid of `attn_prefill` (the template's `attention_prefill_launch` as an expression).
pub fn attention_prefill_grid(p: &TAttention) -> [Expr; 3] {
    let tiles = t().cdiv(c(attention_prefill_queries_per_block(p)));
    if tensor_core_prefill(p) {
        [c(p.heads).times(b()), tiles, c(1)]
    } else {
        [tiles, c(p.heads), b()]
    }
}

/// The tensor maps the Hopper prefill's TMA form takes after its common arguments
/// (`attention_prefill_tma_maps`): the call's k and v rows (`batch·tokens` rows of `G·Dh` at
/// their buffers' strides), then the call's cache rows (`batch·G·max_len` rows of `Dh`).
fn attention_prefill_tma_args(p: &TAttention, k: Value, v: Value, kc: &str, vc: &str) -> Vec<KArg> {
    let map = |base: KArg, row_stride: KArg, cols: usize, rows: Expr| {
        KArg::TensorMap(Box::new(KTensorMap {
            base,
            row_stride,
            cols: c(cols),
            rows,
            box_cols: 64,
            box_rows: ATTN_WG_KEYS_PER_TILE as u32,
            l2_promotion: ATTN_TMA_L2_PROMOTION,
        }))
    };
    let (g, dh) = (p.kv_heads, p.head_dim);
    let cache_rows = b().times(c(g)).times(Expr::sym(Sym::MaxLen));
    vec![
        map(KArg::Value(k), KArg::Stride(k), g * dh, rows()),
        map(KArg::Value(v), KArg::Stride(v), g * dh, rows()),
        map(KArg::State(kc.to_string()), KArg::Int(c(dh)), dh, cache_rows.clone()),
        map(KArg::State(vc.to_string()), KArg::Int(c(dh)), dh, cache_rows),
    ]
}

/// Grid of `attn_prefill_wgmma` (`attention_prefill_wgmma_launch`).
pub fn attention_prefill_wgmma_grid(p: &TAttention) -> [Expr; 3] {
    [c(p.heads).times(b()), t().cdiv(c(ATTN_WG_TILE)), c(1)]
}

/// Split-K factor of decode attention (`attention_decode_pick_splits` as an expression): as many
/// splits as fit the resident decode blocks in one wave, `floor(blocks_per_sm·SMs / (B·Y))`, at
/// most one per `attention_decode_min_keys` visible keys, at least one.
pub fn attention_decode_splits(p: &TAttention) -> Expr {
    let keys = match p.window {
        Some(w) => Expr::sym(Sym::Past).plus(c(1)).min(c(w)),
        None => Expr::sym(Sym::Past).plus(c(1)),
    };
    c(attention_decode_blocks_per_sm(p))
        .times(Expr::sym(Sym::Sms))
        .fdiv(b().times(c(attention_decode_heads_per_grid(p))))
        .min(keys.cdiv(c(attention_decode_min_keys(p))))
        .max(c(1))
}

/// Grids of the two decode entries (`attention_decode_launch`): partials, combine.
pub fn attention_decode_grids(p: &TAttention, splits: Expr) -> ([Expr; 3], [Expr; 3]) {
    (
        [splits, c(attention_decode_heads_per_grid(p)), b()],
        [c(p.heads), b(), c(1)],
    )
}

/// Grid of `conv1d` (`conv1d_launch`).
pub fn conv_grid(channels: usize) -> [Expr; 3] {
    [
        c(channels).cdiv(c(CONV_CHANNELS_PER_BLOCK)),
        t().cdiv(c(CONV_TOKENS_PER_THREAD)),
        b(),
    ]
}

/// Grid of both delta-rule kernels (`delta_rule_launch`).
pub fn delta_rule_grid(p: &TDelta) -> [Expr; 3] {
    [c(p.value_dim).cdiv(c(p.value_block)), c(p.value_heads), b()]
}

/// Grids of the chunk-parallel delta rule's passes `[prep, scan, out]`
/// (`delta_rule_cp_launches`).
pub fn delta_rule_cp_grids(p: &TDelta) -> [[Expr; 3]; 3] {
    let chunks = [t().cdiv(c(DELTA_TC_CHUNK)), c(p.value_heads), b()];
    [
        chunks.clone(),
        [c(p.value_dim).cdiv(c(p.scan_block)), c(p.value_heads), b()],
        chunks,
    ]
}

/// Set to `1`: programs launch the chunk-parallel delta rule's scan with the output pass
/// (`delta_rule_cp_scan_out_`, row sums through the workspace) in place of the scan where all
/// its blocks are resident, and leave the output pass's step out of those calls. Read when a
/// spec is compiled. Off by default: that exchange has not yet run on a GPU (its test and its
/// timing against the three passes are the next device call's, docs/PERFORMANCE.md).
pub const DELTA_SCAN_OUT_ENV: &str = "MODELC_DELTA_SCAN_OUT";

/// Whether [`DELTA_SCAN_OUT_ENV`] is `1`.
pub fn scan_out_in_programs() -> bool {
    std::env::var(DELTA_SCAN_OUT_ENV).is_ok_and(|v| v == "1")
}

/// f32 elements of the chunk-parallel delta rule's workspace (`delta_rule_cp_workspace_len`).
pub fn delta_rule_cp_workspace(p: &TDelta) -> Expr {
    b().times(c(p.value_heads))
        .times(t().cdiv(c(DELTA_TC_CHUNK)))
        .times(c(delta_rule_cp_workspace_per_chunk(p)))
}

/// Grid of `selective_scan` (`selective_scan_launch`).
pub fn scan_grid(d_inner: usize) -> [Expr; 3] {
    [c(d_inner).cdiv(c(SCAN_CHANNELS_PER_BLOCK)), c(1), b()]
}

/// Generates the kernels and launches of one core step.
pub fn core_code(graph: &Graph, plan: &FusionPlan, step: &Step, core: &Core) -> Result<CoreCode, CodegenError> {
    let n = core.node();
    let ins = graph.inputs(n);
    let input = |i: usize| -> Result<Value, CodegenError> {
        ins.get(i)
            .copied()
            .ok_or_else(|| CodegenError::Internal(format!("core {}: input {i} missing", n.index())))
    };
    // Template headers name ops without scopes: a template's body fixes what it fuses, so the
    // header (and the kernel) stays shared by every layer and sub-mixer using it.
    let fuses: Vec<String> = step.nodes.iter().map(|&m| describe_op(graph, m)).collect();
    let terr = template_err(graph, n);
    let _ = plan;
    match (core, &graph.node(n).op) {
        (Core::Attention { .. }, Op::Attention(p)) => {
            if !p.causal {
                return Err(CodegenError::Unsupported {
                    scope: graph.node(n).scope.clone(),
                    op: "attention".into(),
                    reason: "only causal attention has a template".into(),
                });
            }
            let tp = TAttention {
                heads: p.heads,
                kv_heads: p.kv_heads,
                head_dim: p.head_dim,
                window: p.window,
                scale: p.scale as f32,
            };
            let (q, k, v) = (input(0)?, input(1)?, input(2)?);
            let o = Value { node: n, output: 0 };
            let (kc, vc) = (state_name(graph, n, 3)?, state_name(graph, n, 4)?);
            let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
            let kv_len = match p.window {
                Some(w) => Expr::sym(Sym::Past).plus(t()).min(c(w)),
                None => Expr::sym(Sym::Past).plus(t()),
            };
            let qkv_bytes = rows().times(c((h + 2 * g) * dh * 2));
            let cache_read = b().times(kv_len.clone()).times(c(2 * g * dh * 2));
            let out_bytes = rows().times(c(h * dh * 2)).plus(rows().times(c(2 * g * dh * 2)));
            let flops = rows().times(kv_len.clone()).times(c(4 * h * dh));
            let pre = attention_prefill(&tp).map_err(&terr)?;
            let dec = attention_decode(&tp).map_err(&terr)?;
            let common = vec![
                KArg::Value(q),
                KArg::Stride(q),
                KArg::Value(k),
                KArg::Stride(k),
                KArg::Value(v),
                KArg::Stride(v),
                KArg::State(kc.clone()),
                KArg::State(vc.clone()),
                KArg::PastLen,
            ];
            // Decode split-K: one wave of resident blocks (`attention_decode_splits`).
            let splits = attention_decode_splits(&tp);
            let partial_elems = b().times(c(h)).times(splits.clone()).times(c(dh + 2));
            let workspace = KArg::Workspace {
                name: "attn_partial".into(),
                dtype: DType::F32,
                elements: partial_elems.clone(),
            };
            let mut pre_args = common.clone();
            pre_args.extend([
                KArg::Value(o),
                KArg::Stride(o),
                KArg::Int(t()),
                KArg::Int(Expr::sym(Sym::MaxLen)),
            ]);
            let mut dec_args = common;
            dec_args.extend([
                workspace.clone(),
                KArg::Int(Expr::sym(Sym::MaxLen)),
                KArg::Int(splits.clone()),
            ]);
            let combine_args = vec![workspace, KArg::Value(o), KArg::Stride(o), KArg::Int(splits.clone())];
            let dec_entries = dec.entries.clone();
            let (Some(dec0), Some(dec1)) = (dec_entries.first(), dec_entries.get(1)) else {
                return Err(CodegenError::Internal(
                    "attention decode template has two entries".into(),
                ));
            };
            let pre_entry = pre.name().to_string();
            let kernels = vec![
                kernel(
                    "attention_prefill",
                    pre,
                    &fuses,
                    qkv_bytes.clone().plus(cache_read.clone()),
                    out_bytes.clone(),
                    flops.clone(),
                ),
                kernel(
                    "attention_decode",
                    dec,
                    &fuses,
                    qkv_bytes.plus(cache_read).plus(partial_elems.clone().times(c(4))),
                    out_bytes.plus(partial_elems.times(c(4))),
                    flops,
                ),
            ];
            // The prefill's q/k/v tiles are dynamic shared memory (above 48 KiB for Dh > 128).
            let (pre_block, pre_smem) = block_smem(attention_prefill_launch(&tp, 1, 1));
            // On Hopper, the wgmma prefill (sm_90a only) in place of the mma.sync one.
            let mut kernels = kernels;
            let mut pre_variants = Vec::new();
            if wgmma_prefill(&tp) {
                // The TMA form where a call's k/v stay small enough for L2 (it is faster there),
                // else the cp.async form (faster at T8192 on an H200: docs/PERFORMANCE.md).
                let kv_rows = b().times(Expr::sym(Sym::Past).plus(t()));
                let forms = [
                    (
                        WgmmaVariant::PingPongTma,
                        Some(Cond::lt(kv_rows, c(ATTN_TMA_MAX_KEYS + 1))),
                        attention_prefill_tma_args(&tp, k, v, &kc, &vc),
                    ),
                    (ATTN_WGMMA_DEFAULT, None, Vec::new()),
                ];
                for (form, when, extra_args) in forms {
                    let wg = attention_prefill_wgmma_variant(&tp, form).map_err(&terr)?;
                    let (block, smem) = block_smem(attention_prefill_wgmma_variant_launch(&tp, form, 1, 1));
                    pre_variants.push(VariantSpec {
                        cc: Some(ComputeCapability::HOPPER),
                        when,
                        kernel: kernels.len(),
                        entry: wg.name().to_string(),
                        grid: attention_prefill_wgmma_grid(&tp),
                        block,
                        smem,
                        extra_args,
                    });
                    let mut k = kernels[0].clone();
                    k.kind = "attention_prefill_wgmma".into();
                    k.source = with_header(wg, &fuses, &k.bytes_loaded, &k.bytes_stored, &k.flops);
                    k.target = Some(HOPPER_TARGET.into());
                    kernels.push(k);
                }
            }
            let (dec_launch, combine_launch) = attention_decode_launch(&tp, 1, 1);
            let (dec_block, dec_smem) = block_smem(dec_launch);
            let (combine_block, combine_smem) = block_smem(combine_launch);
            let prefill = vec![CoreLaunch {
                kernel: 0,
                entry: pre_entry,
                grid: attention_prefill_grid(&tp),
                block: pre_block,
                smem: pre_smem,
                args: pre_args,
                variants: pre_variants,
                skip_when: None,
            }];
            let decode = vec![
                CoreLaunch {
                    kernel: 1,
                    entry: dec0.clone(),
                    grid: attention_decode_grids(&tp, splits.clone()).0,
                    block: dec_block,
                    smem: dec_smem,
                    args: dec_args,
                    variants: Vec::new(),
                    skip_when: None,
                },
                CoreLaunch {
                    kernel: 1,
                    entry: dec1.clone(),
                    grid: attention_decode_grids(&tp, splits).1,
                    block: combine_block,
                    smem: combine_smem,
                    args: combine_args,
                    variants: Vec::new(),
                    skip_when: None,
                },
            ];
            Ok(CoreCode {
                kernels,
                prefill,
                decode,
                demands: vec![],
            })
        }
        (Core::Conv { .. }, Op::CausalConv1d { kernel: kk, bias, silu }) => {
            let x = input(0)?;
            let chn = ch(graph, x);
            let tp = Conv1dParams {
                kernel_size: *kk,
                activation: if *silu {
                    ConvActivation::Silu
                } else {
                    ConvActivation::Identity
                },
                has_bias: *bias,
            };
            let (state_port, bias_arg) = if *bias {
                (3, weight(graph, input(2)?, DType::BF16)?)
            } else {
                (2, KArg::Null)
            };
            let st = state_name(graph, n, state_port)?;
            let y = Value { node: n, output: 0 };
            let src = conv1d(&tp).map_err(&terr)?;
            let entry = src.name().to_string();
            let state_bytes = b().times(c(chn * kk.saturating_sub(1) * 4));
            let loaded = rows()
                .times(c(chn * 2))
                .plus(c(chn * (kk + usize::from(*bias)) * 2))
                .plus(state_bytes.clone());
            let stored = rows().times(c(chn * 2)).plus(state_bytes);
            let flops = rows().times(c(chn * (2 * kk + 6)));
            let (block, smem) = block_smem(conv1d_launch(1, 1, chn));
            let launch = CoreLaunch {
                kernel: 0,
                entry,
                grid: conv_grid(chn),
                block,
                smem,
                args: vec![
                    KArg::Value(x),
                    KArg::Stride(x),
                    weight(graph, input(1)?, DType::BF16)?,
                    bias_arg,
                    KArg::State(st.clone()),
                    KArg::State(st),
                    KArg::Value(y),
                    KArg::Stride(y),
                    KArg::Int(t()),
                    KArg::Int(c(chn)),
                ],
                variants: Vec::new(),
                skip_when: None,
            };
            Ok(CoreCode {
                kernels: vec![kernel("conv1d", src, &fuses, loaded, stored, flops)],
                prefill: vec![launch.clone()],
                decode: vec![launch],
                demands: vec![],
            })
        }
        (
            Core::DeltaRule {
                q,
                k,
                qk_l2norm,
                scale,
                norm,
                out,
                ..
            },
            Op::DeltaRule(p),
        ) => {
            let gate = match p.decay {
                DecayKind::Scalar => DecayGate::Scalar,
                DecayKind::PerChannel => DecayGate::PerChannel,
            };
            let mut tp = TDelta::new(p.key_heads, p.value_heads, p.key_dim, p.value_dim, gate);
            tp.qk_l2norm = *qk_l2norm;
            tp.scale = *scale as f32;
            // The absorbed gated RMSNorm: the epilogue (one block per head) and its arguments.
            let mut norm_args = Vec::new();
            if let Some(m) = norm {
                tp = tp.with_gated_norm(GatedNormEpilogue {
                    eps: m.eps as f32,
                    act: m.act,
                });
                norm_args = vec![
                    KArg::Value(m.gate),
                    KArg::Stride(m.gate),
                    weight(graph, m.weight, DType::F32)?,
                ];
            }
            let (v, g, beta) = (input(2)?, input(3)?, input(4)?);
            let st = state_name(graph, n, 5)?;
            let o = *out;
            // Shapes the chunk-parallel form covers take it (three launches and a workspace);
            // the others the single-kernel chunked form.
            let chunk_parallel = delta_rule_chunk_parallel_supported(&tp);
            // Where it fits (and DELTA_SCAN_OUT_ENV asks for it), the module also carries the
            // scan with the output pass in one (row sums through the workspace), launched for
            // calls whose blocks fit the device at once.
            let scan_out = chunk_parallel && delta_rule_cp_scan_out_supported(&tp) && scan_out_in_programs();
            let pre = if scan_out {
                delta_rule_chunk_parallel_with_scan_out(&tp, ScanOutExchange::Global).map_err(&terr)?
            } else if chunk_parallel {
                delta_rule_chunk_parallel(&tp).map_err(&terr)?
            } else {
                delta_rule_chunked(&tp).map_err(&terr)?
            };
            let dec = delta_rule_recurrent(&tp).map_err(&terr)?;
            let (hk, hv, dk, dv) = (p.key_heads, p.value_heads, p.key_dim, p.value_dim);
            let gch = ch(graph, g);
            let state_bytes = b().times(c(hv * dk * dv * 4));
            // The epilogue reads the gate rows and the f32 weight, and costs about 10 FLOPs per
            // output (the glue kernel's estimate).
            let (norm_in, norm_w, norm_flops) = match norm {
                Some(_) => (hv * dv * 2, dv * 4, 10 * hv * dv),
                None => (0, 0, 0),
            };
            let loaded = rows()
                .times(c((2 * hk * dk + hv * dv) * 2 + (gch + hv) * 4 + norm_in))
                .plus(c(norm_w))
                .plus(state_bytes.clone());
            let stored = rows().times(c(hv * dv * 2)).plus(state_bytes);
            let rec_flops = rows().times(c(8 * hv * dk * dv + norm_flops));
            let chunk_flops = rec_flops.clone().plus(rows().times(c(4 * hv * tp.chunk * (dk + dv))));
            let mut args = vec![
                KArg::Value(*q),
                KArg::Stride(*q),
                KArg::Value(*k),
                KArg::Stride(*k),
                KArg::Value(v),
                KArg::Stride(v),
                KArg::Value(g),
                KArg::Value(beta),
                KArg::State(st.clone()),
                KArg::State(st),
                KArg::Value(o),
                KArg::Stride(o),
                KArg::Int(t()),
            ];
            args.extend(norm_args);
            let grid = delta_rule_grid(&tp);
            let (pre_block, pre_smem) = block_smem(delta_rule_chunked_launch(&tp, 1));
            let (dec_block, dec_smem) = block_smem(delta_rule_launch(&tp, 1, 0));
            let (pe, de) = (pre.name().to_string(), dec.name().to_string());
            // Wider scan blocks for calls of many sequences (entries of the same module): the
            // widest whose scan still has DELTA_CP_SCAN_BLOCKS blocks (measured on H200, KDA B8
            // T2048 H16: 0.175 ms at 64 against 0.404 at 16).
            let wide_scans: Vec<TDelta> = if chunk_parallel {
                delta_rule_cp_wide_scans(&tp)
                    .into_iter()
                    .map(|w| TDelta { scan_block: w, ..tp })
                    .collect()
            } else {
                Vec::new()
            };
            let prefill = if chunk_parallel {
                // prep, scan, out: the same arguments and one workspace, shared by every layer.
                let mut cp_args = args.clone();
                cp_args.push(KArg::Workspace {
                    name: "delta_cp".into(),
                    dtype: DType::F32,
                    elements: delta_rule_cp_workspace(&tp),
                });
                // Widest first: the first variant whose condition holds is launched. (The scan
                // over clusters, `delta_rule_chunk_parallel_with_cluster_scan`, is not a variant:
                // on an H100 it took 3x the plain scan's time, docs/PERFORMANCE.md.)
                // The scan with the output first, where one block an SM holds all its blocks
                // (the output pass's step is then left out), then the wide scans. (Its blocks
                // wait on each other through the workspace but take their places by ticket, so
                // larger grids would run correctly, in waves; one wave is the case it was built
                // for, docs/PERFORMANCE.md.)
                let blocks_per_seq = tp.value_heads * (tp.value_dim / tp.scan_block);
                let resident = Cond::lt(b().times(c(blocks_per_seq)), Expr::sym(Sym::Sms).plus(c(1)));
                let scan_out_variant = scan_out.then(|| {
                    let l = delta_rule_cp_scan_out_launch(&tp, 1);
                    VariantSpec {
                        cc: None,
                        when: Some(resident.clone()),
                        kernel: 0,
                        entry: pre.entries.last().cloned().unwrap_or_default(),
                        grid: delta_rule_cp_grids(&tp)[1].clone(),
                        block: [l.block.0, l.block.1, l.block.2],
                        smem: l.smem,
                        extra_args: Vec::new(),
                    }
                });
                let wide_variants = wide_scans
                    .iter()
                    .zip(pre.entries.iter().skip(3))
                    .rev()
                    .map(|(wide, entry)| {
                        let l = delta_rule_cp_launches(wide, 1, 1)[1];
                        let blocks_per_seq = wide.value_heads * (wide.value_dim / wide.scan_block);
                        VariantSpec {
                            cc: None,
                            when: Some(Cond::ge(b().times(c(blocks_per_seq)), c(DELTA_CP_SCAN_BLOCKS))),
                            kernel: 0,
                            entry: entry.clone(),
                            grid: delta_rule_cp_grids(wide)[1].clone(),
                            block: [l.block.0, l.block.1, l.block.2],
                            smem: l.smem,
                            extra_args: Vec::new(),
                        }
                    });
                let scan_variants: Vec<VariantSpec> = scan_out_variant.into_iter().chain(wide_variants).collect();
                pre.entries
                    .iter()
                    .zip(delta_rule_cp_grids(&tp))
                    .zip(delta_rule_cp_launches(&tp, 1, 1))
                    .enumerate()
                    .map(|(pass, ((entry, grid), l))| {
                        let (block, smem) = block_smem(l);
                        CoreLaunch {
                            kernel: 0,
                            entry: entry.clone(),
                            grid,
                            block,
                            smem,
                            args: cp_args.clone(),
                            variants: if pass == 1 { scan_variants.clone() } else { Vec::new() },
                            skip_when: (pass == 2 && scan_out).then(|| resident.clone()),
                        }
                    })
                    .collect()
            } else {
                vec![CoreLaunch {
                    kernel: 0,
                    entry: pe,
                    grid: grid.clone(),
                    block: pre_block,
                    smem: pre_smem,
                    args: args.clone(),
                    variants: Vec::new(),
                    skip_when: None,
                }]
            };
            // The workspace's round trip (about 7 bf16 rows of Dk or Dv per token, written and
            // read once) on top of the inputs and outputs.
            let (pre_loaded, pre_stored) = if chunk_parallel {
                let ws = delta_rule_cp_workspace(&tp).times(c(4));
                (loaded.clone().plus(ws.clone()), stored.clone().plus(ws))
            } else {
                (loaded.clone(), stored.clone())
            };
            let kernels = vec![
                kernel(
                    if chunk_parallel {
                        "delta_rule_chunk_parallel"
                    } else {
                        "delta_rule_chunked"
                    },
                    pre,
                    &fuses,
                    pre_loaded,
                    pre_stored,
                    chunk_flops,
                ),
                kernel("delta_rule_recurrent", dec, &fuses, loaded, stored, rec_flops),
            ];
            Ok(CoreCode {
                kernels,
                prefill,
                decode: vec![CoreLaunch {
                    kernel: 1,
                    entry: de,
                    grid,
                    block: dec_block,
                    smem: dec_smem,
                    args,
                    variants: Vec::new(),
                    skip_when: None,
                }],
                // The template reads g and beta as dense f32.
                demands: vec![(g, DType::F32), (beta, DType::F32)],
            })
        }
        (
            Core::Scan {
                delta,
                delta_bias,
                softplus,
                z,
                out,
                ..
            },
            Op::SelectiveScan { state_size },
        ) => {
            let nst = *state_size;
            let (u, bm, cm) = (input(0)?, input(3)?, input(4)?);
            let di = ch(graph, u);
            let gx = ch(graph, bm) / nst.max(1);
            let heads = di / nst.max(1);
            let tp = SelectiveScanParams {
                state_size: nst,
                heads_per_group: heads / gx.max(1),
                delta_bias: delta_bias.is_some(),
                delta_softplus: *softplus,
                has_d: true,
                has_z: z.is_some(),
            };
            let st = state_name(graph, n, 6)?;
            let src = selective_scan(&tp).map_err(&terr)?;
            let entry = src.name().to_string();
            let state_bytes = b().times(c(di * nst * 4));
            let per_row = di * (3 + usize::from(z.is_some())) + gx * nst;
            let loaded = rows()
                .times(c(per_row * 2))
                .plus(c(di * (nst + 2) * 4))
                .plus(state_bytes.clone());
            let stored = rows().times(c(di * 2)).plus(state_bytes);
            let flops = rows().times(c(di * (6 * nst + 12)));
            let (z_ptr, z_stride) = match z {
                Some(z) => (KArg::Value(*z), KArg::Stride(*z)),
                None => (KArg::Null, KArg::Int(c(0))),
            };
            let (block, smem) = block_smem(selective_scan_launch(1, di));
            let launch = CoreLaunch {
                kernel: 0,
                entry,
                grid: scan_grid(di),
                block,
                smem,
                args: vec![
                    KArg::Value(u),
                    KArg::Stride(u),
                    KArg::Value(*delta),
                    KArg::Stride(*delta),
                    weight(graph, input(2)?, DType::F32)?,
                    KArg::Value(bm),
                    KArg::Stride(bm),
                    KArg::Value(cm),
                    KArg::Stride(cm),
                    weight(graph, input(5)?, DType::F32)?,
                    match delta_bias {
                        Some(bv) => weight(graph, *bv, DType::F32)?,
                        None => KArg::Null,
                    },
                    z_ptr,
                    z_stride,
                    KArg::State(st.clone()),
                    KArg::State(st),
                    KArg::Value(*out),
                    KArg::Stride(*out),
                    KArg::Int(t()),
                    KArg::Int(c(di)),
                ],
                variants: Vec::new(),
                skip_when: None,
            };
            Ok(CoreCode {
                kernels: vec![kernel("selective_scan", src, &fuses, loaded, stored, flops)],
                prefill: vec![launch.clone()],
                decode: vec![launch],
                demands: vec![],
            })
        }
        _ => Err(CodegenError::Internal(format!(
            "core step {} does not match its node's op",
            n.index()
        ))),
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
                    let tp = TAttention {
                        heads: p.heads,
                        kv_heads: p.kv_heads,
                        head_dim: p.head_dim,
                        window: p.window,
                        scale: p.scale as f32,
                    };
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
                let wide = if super::scan_out_in_programs() {
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
