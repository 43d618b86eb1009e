//! Runs a (placement-specialised) IR graph on [`Array`]s, op by op, in topological order.
//!
//! Arithmetic is f64. `Precision::F32` rounds every op's outputs to f32, emulating f32 storage
//! between ops (the compiled path keeps f32 accumulators inside its kernels too).

use std::collections::{BTreeMap, HashMap};

use super::ops::attention::attention;
use super::ops::conv::causal_conv1d;
use super::ops::delta_rule::{delta_rule_chunked, delta_rule_recurrent};
use super::ops::elementwise::{add, mul, scale, unary};
use super::ops::gates::{decay_gate, repeat_groups};
use super::ops::linear::{embedding, linear};
use super::ops::norm::{gated_rms_norm, l2_norm, layer_norm, rms_norm};
use super::ops::rope::rope;
use super::ops::selective_scan::selective_scan;
use super::ops::{self};
use super::weights::WeightStore;
use super::{Array, RefError};
use crate::ir::dim::{eval_shape, DimEnv};
use crate::ir::{Graph, Op, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F64,
    F32,
}

/// Which form of the delta rule (GDN, KDA) runs; both compute the same function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaRuleForm {
    Recurrent,
    Chunked(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpOptions {
    pub precision: Precision,
    pub delta_rule: DeltaRuleForm,
}

impl Default for InterpOptions {
    fn default() -> Self {
        InterpOptions {
            precision: Precision::F64,
            delta_rule: DeltaRuleForm::Chunked(64),
        }
    }
}

/// Runs the graph. `inputs` holds every `Op::Input` by name; the result holds every
/// `Op::Output` by name. Every value's runtime shape is checked against its symbolic type.
pub fn execute(
    graph: &Graph,
    weights: &WeightStore,
    inputs: &BTreeMap<String, Array>,
    env: DimEnv,
    opts: InterpOptions,
) -> Result<BTreeMap<String, Array>, RefError> {
    let order = graph.topo_order()?;
    // Values are dropped after their last reader, so peak memory stays near one layer's worth.
    let mut remaining: HashMap<_, usize> = order.iter().map(|&n| (n, graph.users(n).len())).collect();
    let mut values: HashMap<_, Vec<Array>> = HashMap::new();
    let mut outputs = BTreeMap::new();
    for n in order {
        let node = graph.node(n);
        let args = graph.inputs(n);
        let get = |v: Value| -> &Array { &values[&v.node][v.output] };
        let a: Vec<&Array> = args.iter().map(|v| get(*v)).collect();
        let mut outs = match &node.op {
            Op::Input { name, .. } => {
                vec![inputs
                    .get(name)
                    .cloned()
                    .ok_or_else(|| RefError::MissingInput(name.clone()))?]
            }
            Op::Weight { key, .. } => vec![weights.get(key)?.clone()],
            Op::Output { name } => {
                outputs.insert(name.clone(), a[0].clone());
                vec![]
            }
            op => eval(op, &a, opts).map_err(|e| RefError::Op {
                scope: node.scope.clone(),
                op: op.name(),
                source: Box::new(e),
            })?,
        };
        for (i, (out, ty)) in outs.iter_mut().zip(&node.outputs).enumerate() {
            let want = eval_shape(&ty.shape, &env);
            if out.shape != want {
                return Err(RefError::ShapeMismatch {
                    what: format!(
                        "{} output {i} in {}",
                        node.op.name(),
                        if node.scope.is_empty() { "model" } else { &node.scope }
                    ),
                    expected: want,
                    got: out.shape.clone(),
                });
            }
            if opts.precision == Precision::F32 && !matches!(node.op, Op::Input { .. } | Op::Weight { .. }) {
                out.round_to_f32();
            }
        }
        for v in &args {
            if let Some(r) = remaining.get_mut(&v.node) {
                *r -= 1;
                if *r == 0 {
                    values.remove(&v.node);
                }
            }
        }
        values.insert(n, outs);
    }
    Ok(outputs)
}

/// One op's math: dispatches to `reference::ops`.
fn eval(op: &Op, a: &[&Array], opts: InterpOptions) -> Result<Vec<Array>, ops::OpError> {
    Ok(match op {
        Op::Embedding => vec![embedding(a[0], a[1])?],
        Op::Linear { bias } => vec![linear(a[0], a[1], if *bias { Some(a[2]) } else { None })?],
        Op::RmsNorm { eps, group } => vec![rms_norm(a[0], a[1], *eps, *group)?],
        Op::LayerNorm { eps } => vec![layer_norm(a[0], a[1], a[2], *eps)?],
        Op::GatedRmsNorm { eps, group, act } => {
            vec![gated_rms_norm(a[0], a[1], a[2], *eps, *group, *act)?]
        }
        Op::L2Norm { eps, group } => vec![l2_norm(a[0], *group, *eps)?],
        Op::Unary(f) => vec![unary(a[0], *f)],
        Op::Add => vec![add(a[0], a[1])?],
        Op::Mul => vec![mul(a[0], a[1])?],
        Op::Scale(c) => vec![scale(a[0], *c)],
        Op::Slice { start, len } => vec![slice_last(a[0], *start, *len)],
        Op::Concat => vec![concat_last(a)],
        Op::RepeatGroups { n, repeats } => vec![repeat_groups(a[0], *n, *repeats)?],
        Op::Rope { head_dim, theta } => vec![rope(a[0], a[1], *head_dim, *theta)?],
        Op::DecayGate { group } => vec![decay_gate(a[0], a[1], a[2], *group)?],
        Op::CausalConv1d { bias, silu, .. } => {
            let (b, s) = if *bias { (Some(a[2]), a[3]) } else { (None, a[2]) };
            let (y, st) = causal_conv1d(a[0], a[1], b, s, *silu)?;
            vec![y, st]
        }
        Op::Attention(p) => {
            let (o, k, v) = attention(a[0], a[1], a[2], a[3], a[4], p)?;
            vec![o, k, v]
        }
        Op::DeltaRule(cfg) => {
            let (o, s) = match opts.delta_rule {
                DeltaRuleForm::Recurrent => delta_rule_recurrent(a[0], a[1], a[2], a[3], a[4], a[5], cfg)?,
                DeltaRuleForm::Chunked(c) => delta_rule_chunked(a[0], a[1], a[2], a[3], a[4], a[5], cfg, c)?,
            };
            vec![o, s]
        }
        Op::SelectiveScan { state_size } => {
            let (y, s) = selective_scan(a[0], a[1], a[2], a[3], a[4], a[5], a[6], *state_size)?;
            vec![y, s]
        }
        Op::Route { .. } => {
            return Err(ops::OpError::Param {
                op: "route",
                detail: "a stochastic layer was not specialised to a placement before running".into(),
            })
        }
        Op::Input { .. } | Op::Weight { .. } | Op::Output { .. } => {
            return Err(ops::OpError::Param {
                op: "graph",
                detail: "inputs, weights and outputs are bound by `execute`, not evaluated".into(),
            })
        }
    })
}

fn slice_last(x: &Array, start: usize, len: usize) -> Array {
    let c = x.last_dim();
    let mut shape = x.shape.clone();
    if let Some(l) = shape.last_mut() {
        *l = len;
    }
    let data = x
        .data
        .chunks(c.max(1))
        .flat_map(|row| row[start..start + len].iter().copied())
        .collect();
    Array::new(shape, data)
}

fn concat_last(parts: &[&Array]) -> Array {
    let rows = parts[0].len() / parts[0].last_dim().max(1);
    let total: usize = parts.iter().map(|p| p.last_dim()).sum();
    let mut data = Vec::with_capacity(rows * total);
    for r in 0..rows {
        for p in parts {
            let c = p.last_dim();
            data.extend_from_slice(&p.data[r * c..(r + 1) * c]);
        }
    }
    let mut shape = parts[0].shape.clone();
    if let Some(l) = shape.last_mut() {
        *l = total;
    }
    Array::new(shape, data)
}
