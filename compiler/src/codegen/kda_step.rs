//! Decode: one kernel per KDA layer ([`kda_decode_step`]) instead of five.
//!
//! A KDA delta-rule core whose inputs are made by exactly the steps KDA's decode needs (the
//! merged q/k/v conv, the `f_b` GEMM and the decay gate, β's sigmoid, the `g_b` GEMM of the
//! gated norm) gets one decode launch that computes them all from the projection's rows. Those
//! steps keep their prefill launches and have none in decode (`StepCode::decode_absorbed_by`).
//! Anything else about the layer (other readers of an intermediate, a different gate, shapes
//! the template does not hold) keeps the unfused decode.
//!
//! On Hopper the launch has a variant: the kernel's cluster form, each head split over
//! [`kda_decode_step_cluster_size`] CTAs (where that leaves each at least 16 value columns).

use std::collections::{HashMap, HashSet};

use petgraph::stable_graph::NodeIndex;

use super::cores::{b, ch, kernel, state_name, t, template_err, weight, CoreKernel, CoreLaunch};
use super::glue::describe_op;
use super::kernel::{c, rows, KArg, VariantSpec};
use super::templates::kda_decode_step::{
    kda_decode_step, kda_decode_step_cluster_size, kda_decode_step_cluster_threads, kda_decode_step_cluster_with,
    kda_decode_step_supported, ClusterExchange, KdaDecodeStepParams,
};
use super::CodegenError;
use crate::ir::{DecayKind, Graph, Op, UnaryFn, Value};
use crate::passes::fuse::{Core, FusionPlan, StepKind};
use modelc_runtime::cuda::nvrtc::HOPPER_TARGET;
use modelc_runtime::program::{ComputeCapability, Cond, Expr, Sym};
use modelc_runtime::tensor::DType;

/// The decode kernel of one KDA layer and the plan steps it absorbs.
#[derive(Debug, Clone)]
pub struct KdaStep {
    /// Plan steps (besides the core's) the kernel computes, in plan order.
    pub absorbed: Vec<usize>,
    /// The kernel (`kernels[0]`, any device) and, where the head splits over a cluster, its
    /// Hopper form (`kernels[1]`, an sm_90a module).
    pub kernels: Vec<CoreKernel>,
    /// Its launch (`kernel: 0`), with the cluster form as a variant for compute capability 9.0.
    pub launch: CoreLaunch,
    /// Values the kernel reads in place of the absorbed steps' outputs: their buffers must stay
    /// live until the core's step.
    pub reads: Vec<Value>,
}

/// A linear step without bias or residual: (step, x, weight `[N, K]`).
fn plain_linear(
    graph: &Graph,
    plan: &FusionPlan,
    owner: &HashMap<NodeIndex, usize>,
    y: Value,
) -> Option<(usize, Value, Value)> {
    let s = *owner.get(&y.node)?;
    match &plan.steps[s].kind {
        StepKind::Gemm { linear, residual: None } if *linear == y.node && y.output == 0 => {}
        _ => return None,
    }
    if graph.node(y.node).op != (Op::Linear { bias: false }) {
        return None;
    }
    match graph.inputs(y.node)[..] {
        [x, w] if matches!(graph.node(w.node).op, Op::Weight { dtype: DType::BF16, .. }) => Some((s, x, w)),
        _ => None,
    }
}

/// Shape of a weight value, if it is one of `dtype`.
fn weight_shape(graph: &Graph, v: Value, dtype: DType) -> Option<Vec<usize>> {
    match &graph.node(v.node).op {
        Op::Weight { shape, dtype: d, .. } if *d == dtype => Some(shape.clone()),
        _ => None,
    }
}

/// The KDA decode step of plan step `i`, if it is a KDA core the kernel can replace together
/// with the steps feeding it.
pub fn find(
    graph: &Graph,
    plan: &FusionPlan,
    owner: &HashMap<NodeIndex, usize>,
    i: usize,
) -> Result<Option<KdaStep>, CodegenError> {
    Ok(match_layer(graph, plan, owner, i)
        .map(|m| build(graph, plan, i, m))
        .transpose()?
        .flatten())
}

/// What [`match_layer`] found.
struct Matched {
    conv: NodeIndex,
    conv_step: usize,
    f_step: usize,
    fa: Value,
    fb: Value,
    decay_step: usize,
    a_log: Value,
    dt_bias: Value,
    beta_step: usize,
    braw: Value,
    z_step: usize,
    ga: Value,
    gb: Value,
    params: KdaDecodeStepParams,
}

fn match_layer(graph: &Graph, plan: &FusionPlan, owner: &HashMap<NodeIndex, usize>, i: usize) -> Option<Matched> {
    let StepKind::Core(Core::DeltaRule {
        node,
        q,
        k,
        qk_l2norm,
        scale,
        norm: Some(norm),
        ..
    }) = &plan.steps[i].kind
    else {
        return None;
    };
    let Op::DeltaRule(p) = &graph.node(*node).op else {
        return None;
    };
    if p.decay != DecayKind::PerChannel || p.key_heads != p.value_heads {
        return None;
    }
    let (h, dk, dv) = (p.value_heads, p.key_dim, p.value_dim);
    let ins = graph.inputs(*node);
    let (v, g, beta) = (*ins.get(2)?, *ins.get(3)?, *ins.get(4)?);

    // q, k, v: windows of one conv's output, that conv a core step of its own.
    let (qv, kv, vv) = (plan.resolve(graph, *q), plan.resolve(graph, *k), plan.resolve(graph, v));
    let conv_out = qv.base;
    if kv.base != conv_out || vv.base != conv_out || conv_out.output != 0 {
        return None;
    }
    if (qv.len, kv.len, vv.len) != (h * dk, h * dk, h * dv) {
        return None;
    }
    let conv = conv_out.node;
    let Op::CausalConv1d {
        kernel: taps,
        bias,
        silu,
    } = graph.node(conv).op
    else {
        return None;
    };
    let conv_step = *owner.get(&conv)?;
    if !matches!(plan.steps[conv_step].kind, StepKind::Core(Core::Conv { .. })) {
        return None;
    }

    // g = decay_gate(f_a·f_bᵀ, A_log, dt_bias), in a glue step of decay gates and sigmoids.
    let Op::DecayGate { group } = graph.node(g.node).op else {
        return None;
    };
    let decay_step = *owner.get(&g.node)?;
    let [f, a_log, dt_bias] = graph.inputs(g.node)[..] else {
        return None;
    };
    let (f_step, fa, fb) = plain_linear(graph, plan, owner, f)?;
    // β = sigmoid(logits), in the same glue step or one of its own.
    if graph.node(beta.node).op != Op::Unary(UnaryFn::Sigmoid) {
        return None;
    }
    let beta_step = *owner.get(&beta.node)?;
    let [braw] = graph.inputs(beta.node)[..] else {
        return None;
    };
    // The gated norm's gate: g_a·g_bᵀ.
    let (z_step, ga, gb) = plain_linear(graph, plan, owner, norm.gate)?;
    for s in [decay_step, beta_step] {
        let glue_of_gates = plan.steps[s].kind == StepKind::Glue
            && plan.steps[s]
                .nodes
                .iter()
                .all(|&n| matches!(graph.node(n).op, Op::DecayGate { .. } | Op::Unary(UnaryFn::Sigmoid)));
        if !glue_of_gates {
            return None;
        }
    }

    // Shapes: the weights the kernel indexes, the activations it reads as bf16.
    let fb_shape = weight_shape(graph, fb, DType::BF16)?;
    let gb_shape = weight_shape(graph, gb, DType::BF16)?;
    if group != dk
        || fb_shape.first() != Some(&(h * dk))
        || gb_shape.first() != Some(&(h * dv))
        || weight_shape(graph, a_log, DType::F32)? != [h]
        || weight_shape(graph, dt_bias, DType::F32)? != [h * dk]
        || ch(graph, braw) != h
    {
        return None;
    }
    if [conv_out, fa, ga, braw]
        .iter()
        .any(|&x| graph.ty(x).dtype != DType::BF16)
    {
        return None;
    }

    // Every value the absorbed steps make is read by them or the core only (states aside).
    let absorbed: HashSet<usize> = [conv_step, f_step, decay_step, beta_step, z_step, i]
        .into_iter()
        .collect();
    let outputs: HashSet<Value> = graph
        .graph_outputs()
        .iter()
        .flat_map(|(n, _)| graph.inputs(*n))
        .collect();
    for &s in &absorbed {
        if s == i {
            continue;
        }
        for &made in &plan.steps[s].outputs {
            let is_state = made.node == conv && made.output == 1;
            if is_state {
                continue;
            }
            if outputs.contains(&made) {
                return None;
            }
            let foreign_reader = plan.steps.iter().enumerate().any(|(r, step)| {
                !absorbed.contains(&r) && step.inputs.iter().any(|&x| plan.resolve(graph, x).base == made)
            });
            if foreign_reader {
                return None;
            }
        }
    }

    let params = KdaDecodeStepParams {
        heads: h,
        key_dim: dk,
        value_dim: dv,
        conv_kernel: taps,
        conv_bias: bias,
        conv_silu: silu,
        conv_channels: ch(graph, conv_out),
        q_channel: qv.start,
        k_channel: kv.start,
        v_channel: vv.start,
        decay_rank: *fb_shape.get(1)?,
        gate_rank: *gb_shape.get(1)?,
        qk_l2norm: *qk_l2norm,
        scale: *scale as f32,
        norm_eps: norm.eps as f32,
        norm_act: norm.act,
    };
    if !kda_decode_step_supported(&params) {
        return None;
    }
    Some(Matched {
        conv,
        conv_step,
        f_step,
        fa,
        fb,
        decay_step,
        a_log,
        dt_bias,
        beta_step,
        braw,
        z_step,
        ga,
        gb,
        params,
    })
}

fn build(graph: &Graph, plan: &FusionPlan, i: usize, m: Matched) -> Result<Option<KdaStep>, CodegenError> {
    let StepKind::Core(Core::DeltaRule {
        node,
        norm: Some(norm),
        out,
        ..
    }) = &plan.steps[i].kind
    else {
        return Ok(None);
    };
    let p = m.params;
    let conv_ins = graph.inputs(m.conv);
    let (conv_x, conv_w) = (conv_ins[0], conv_ins[1]);
    let (conv_b, state_port) = if p.conv_bias {
        (weight(graph, conv_ins[2], DType::BF16)?, 3)
    } else {
        (KArg::Null, 2)
    };
    let conv_state = state_name(graph, m.conv, state_port)?;
    let rec_state = state_name(graph, *node, 5)?;
    let args = vec![
        KArg::Value(conv_x),
        KArg::Stride(conv_x),
        weight(graph, conv_w, DType::BF16)?,
        conv_b,
        KArg::State(conv_state),
        KArg::Value(m.fa),
        KArg::Stride(m.fa),
        weight(graph, m.fb, DType::BF16)?,
        weight(graph, m.a_log, DType::F32)?,
        weight(graph, m.dt_bias, DType::F32)?,
        KArg::Value(m.braw),
        KArg::Stride(m.braw),
        KArg::Value(m.ga),
        KArg::Stride(m.ga),
        weight(graph, m.gb, DType::BF16)?,
        weight(graph, norm.weight, DType::F32)?,
        KArg::State(rec_state),
        KArg::Value(*out),
        KArg::Stride(*out),
        KArg::Int(t()),
    ];
    let mut absorbed = vec![m.conv_step, m.f_step, m.decay_step, m.beta_step, m.z_step];
    absorbed.sort_unstable();
    absorbed.dedup();
    let fuses: Vec<String> = absorbed
        .iter()
        .chain(std::iter::once(&i))
        .flat_map(|&s| plan.steps[s].nodes.iter().map(|&n| describe_op(graph, n)))
        .collect();
    let src = kda_decode_step(&p).map_err(template_err(graph, *node))?;
    let (h, dk, dv, kk) = (p.heads, p.key_dim, p.value_dim, p.conv_kernel);
    let conv_ch = h * (2 * dk + dv);
    let (rf, rg) = (p.decay_rank, p.gate_rank);
    let weights = conv_ch * (kk + usize::from(p.conv_bias)) * 2 + h * (dk * rf + dv * rg) * 2 + (h + h * dk + dv) * 4;
    let states = b().times(c(conv_ch * (kk - 1) * 4 + h * dk * dv * 4));
    let loaded = rows()
        .times(c(conv_ch * 2 + (rf + rg + h) * 2))
        .plus(c(weights))
        .plus(states.clone());
    let stored = rows().times(c(h * dv * 2)).plus(states);
    let flops = rows().times(c(conv_ch * 2 * kk
        + 2 * h * (dk * rf + dv * rg)
        + 8 * h * dk * dv
        + 10 * h * dv));
    let entry = src.name().to_string();
    let mut kernels = vec![kernel(
        "kda_decode_step",
        src,
        &fuses,
        loaded.clone(),
        stored.clone(),
        flops.clone(),
    )];
    // On Hopper, each head on a cluster of CTAs (same arguments, same bytes and FLOPs), while
    // one block per (head, sequence) would leave more than half the SMs idle: measured on an
    // H200 (hybrid-1b, H = 16, clusters of 8) it is 7.6 against 9.4 µs a layer at batch 1 and
    // slower at batch 8, where the single-block grid already fills the device.
    let mut variants = Vec::new();
    if let Some(cl) = kda_decode_step_cluster_size(&p) {
        // The exchange between the cluster's CTAs: barriers, unless the trial switch names the
        // asynchronous stores (KDA_STEP_EXCHANGE_ENV).
        let src =
            kda_decode_step_cluster_with(&p, cl, ClusterExchange::from_env()).map_err(template_err(graph, *node))?;
        variants.push(VariantSpec {
            cc: Some(ComputeCapability::HOPPER),
            when: Some(Cond::lt(b().times(c(2 * h)), Expr::sym(Sym::Sms))),
            kernel: kernels.len(),
            entry: src.name().to_string(),
            grid: [c(h * cl), b(), c(1)],
            block: [kda_decode_step_cluster_threads(&p, cl) as u32, 1, 1],
            smem: 0,
            extra_args: Vec::new(),
        });
        let mut k = kernel("kda_decode_step_cluster", src, &fuses, loaded, stored, flops);
        k.target = Some(HOPPER_TARGET.into());
        kernels.push(k);
    }
    Ok(Some(KdaStep {
        absorbed,
        kernels,
        launch: CoreLaunch {
            kernel: 0,
            entry,
            grid: [c(h), b(), c(1)],
            block: [p.threads() as u32, 1, 1],
            smem: 0,
            args,
            variants,
            skip_when: None,
        },
        reads: vec![conv_x, m.fa, m.braw, m.ga],
    }))
}
