//! Horizontal conv merge: depthwise causal convs (same kernel size, bias and activation) that
//! read adjacent column windows of one value become one conv over the union window, with their
//! weights, biases and states packed along the channel dim. A depthwise conv treats every
//! channel alone, so this is exact. KDA's q/k/v convs read the q|k|v columns of the merged
//! projection GEMM: one launch instead of three, prefill and decode alike.
//!
//! The packed state is a new `state.<name>` input/output pair named after its parts
//! (`layers.3.conv_q+conv_k+conv_v`); [`StatePack`] records which channels hold which original
//! state, so a host can move states between this layout and the per-conv one.

use std::collections::BTreeMap;

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::dce::dce;
use super::gemm_merge::{packed_key, PackPart, PackedWeight};
use crate::ir::lower::STATE_PREFIX;
use crate::ir::{Graph, IrError, Op, Port, TensorType, Value};

/// A packed state: channels `[row, row + rows)` of `name` hold state `parts[i].key`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatePack {
    pub name: String,
    pub parts: Vec<PackPart>,
}

/// The rewritten graph, the packed weights and the packed states.
#[derive(Debug, Clone)]
pub struct ConvMerged {
    pub graph: Graph,
    pub packs: Vec<PackedWeight>,
    pub states: Vec<StatePack>,
}

/// One mergeable conv.
struct Cand {
    node: NodeIndex,
    start: usize,
    len: usize,
    weight: (String, Vec<usize>),
    bias: Option<String>,
    /// The state input node, its name (without `state.`) and the state output node.
    state_in: NodeIndex,
    state_name: String,
    state_out: NodeIndex,
}

/// Convs merge when they agree on (base node, base output, kernel, bias, silu, input dtype).
type GroupKey = (usize, usize, usize, bool, bool, String);

fn weight(graph: &Graph, v: Value) -> Option<(String, Vec<usize>)> {
    match &graph.node(v.node).op {
        Op::Weight { key, shape, .. } => Some((key.clone(), shape.clone())),
        _ => None,
    }
}

fn candidate(graph: &Graph, n: NodeIndex) -> Option<(GroupKey, Cand)> {
    let Op::CausalConv1d { kernel, bias, silu } = graph.node(n).op else {
        return None;
    };
    let ins = graph.inputs(n);
    let x = *ins.first()?;
    let Op::Slice { start, len } = graph.node(x.node).op else {
        return None;
    };
    let base = *graph.inputs(x.node).first()?;
    let w = weight(graph, *ins.get(1)?)?;
    let b = if bias {
        Some(weight(graph, *ins.get(2)?)?.0)
    } else {
        None
    };
    let st = *ins.get(2 + usize::from(bias))?;
    let Op::Input { name, .. } = &graph.node(st.node).op else {
        return None;
    };
    let state_name = name.strip_prefix(STATE_PREFIX)?.to_string();
    // The state input feeds only this conv, and state output 1 only its `state.` output.
    if graph.users(st.node).len() != 1 {
        return None;
    }
    let outs: Vec<(NodeIndex, Port)> = graph.users(n).into_iter().filter(|(_, p)| p.output == 1).collect();
    let [(state_out, _)] = outs.as_slice() else { return None };
    if !matches!(&graph.node(*state_out).op, Op::Output { name: o } if *o == *name) {
        return None;
    }
    let dtype = graph.ty(x).dtype.to_string();
    let key = (base.node.index(), base.output, kernel, bias, silu, dtype);
    Some((
        key,
        Cand {
            node: n,
            start,
            len,
            weight: w,
            bias: b,
            state_in: st.node,
            state_name,
            state_out: *state_out,
        },
    ))
}

/// Merges runs of ≥ 2 convs over adjacent windows of one value.
pub fn conv_merge(mut graph: Graph) -> Result<ConvMerged, IrError> {
    let mut groups: BTreeMap<GroupKey, Vec<Cand>> = BTreeMap::new();
    let mut nodes: Vec<NodeIndex> = graph.g.node_indices().collect();
    nodes.sort_by_key(|n| n.index());
    for n in nodes {
        if let Some((key, c)) = candidate(&graph, n) {
            groups.entry(key).or_default().push(c);
        }
    }
    let mut packs = Vec::new();
    let mut states = Vec::new();
    for ((bn, bo, kernel, bias, silu, _), mut cands) in groups {
        cands.sort_by_key(|c| (c.start, c.node.index()));
        // Maximal runs of adjacent windows.
        let mut runs: Vec<Vec<Cand>> = Vec::new();
        for c in cands {
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|p| p.start + p.len == c.start) => run.push(c),
                _ => runs.push(vec![c]),
            }
        }
        for run in runs.into_iter().filter(|r| r.len() >= 2) {
            let base = Value {
                node: NodeIndex::new(bn),
                output: bo,
            };
            let (p, s) = merge_run(&mut graph, base, kernel, bias, silu, &run)?;
            packs.extend(p);
            states.push(s);
        }
    }
    Ok(ConvMerged {
        graph: dce(graph)?,
        packs,
        states,
    })
}

fn parts(run: &[Cand], key: impl Fn(&Cand) -> String) -> Vec<PackPart> {
    let mut row = 0;
    run.iter()
        .map(|c| {
            let p = PackPart {
                key: key(c),
                row,
                rows: c.len,
            };
            row += c.len;
            p
        })
        .collect()
}

fn merge_run(
    graph: &mut Graph,
    base: Value,
    kernel: usize,
    bias: bool,
    silu: bool,
    run: &[Cand],
) -> Result<(Vec<PackedWeight>, StatePack), IrError> {
    let first = graph.node(run[0].node).clone();
    let (scope, layer) = (first.scope.clone(), first.layer);
    let total: usize = run.iter().map(|c| c.len).sum();
    let x_dtype = graph
        .ty(Value {
            node: run[0].node,
            output: 0,
        })
        .dtype;
    let x = graph.add(
        Op::Slice {
            start: run[0].start,
            len: total,
        },
        &[base],
        &scope,
        layer,
    )?;
    let mut packs = Vec::new();
    let w_dtype = match graph.inputs(run[0].node).get(1).map(|w| &graph.node(w.node).op) {
        Some(Op::Weight { dtype, .. }) => *dtype,
        _ => x_dtype,
    };
    let w_inner: Vec<usize> = run[0].weight.1.iter().skip(1).copied().collect();
    let w_pack = PackedWeight {
        key: packed_key(&run.iter().map(|c| c.weight.0.clone()).collect::<Vec<_>>()),
        shape: std::iter::once(total).chain(w_inner).collect(),
        dtype: w_dtype,
        parts: parts(run, |c| c.weight.0.clone()),
    };
    let w = graph.add(
        Op::Weight {
            key: w_pack.key.clone(),
            shape: w_pack.shape.clone(),
            dtype: w_dtype,
        },
        &[],
        &scope,
        layer,
    )?;
    let mut inputs = vec![Value { node: x, output: 0 }, Value { node: w, output: 0 }];
    packs.push(w_pack);
    if bias {
        let keys: Vec<String> = run.iter().filter_map(|c| c.bias.clone()).collect();
        let b_pack = PackedWeight {
            key: packed_key(&keys),
            shape: vec![total],
            dtype: w_dtype,
            parts: parts(run, |c| c.bias.clone().unwrap_or_default()),
        };
        let b = graph.add(
            Op::Weight {
                key: b_pack.key.clone(),
                shape: b_pack.shape.clone(),
                dtype: w_dtype,
            },
            &[],
            &scope,
            layer,
        )?;
        inputs.push(Value { node: b, output: 0 });
        packs.push(b_pack);
    }
    let state = StatePack {
        name: packed_key(&run.iter().map(|c| c.state_name.clone()).collect::<Vec<_>>()),
        parts: parts(run, |c| c.state_name.clone()),
    };
    let st_ty = graph.node(run[0].state_in).outputs[0].clone();
    let mut st_shape = st_ty.shape.clone();
    if let Some(ch) = st_shape.get_mut(1) {
        *ch = crate::ir::Dim::c(total);
    }
    let st = graph.add(
        Op::Input {
            name: format!("{STATE_PREFIX}{}", state.name),
            ty: TensorType::new(st_ty.dtype, st_shape),
        },
        &[],
        &scope,
        layer,
    )?;
    inputs.push(Value { node: st, output: 0 });
    let conv = graph.add(Op::CausalConv1d { kernel, bias, silu }, &inputs, &scope, layer)?;
    graph.add(
        Op::Output {
            name: format!("{STATE_PREFIX}{}", state.name),
        },
        &[Value { node: conv, output: 1 }],
        &scope,
        layer,
    )?;
    let mut off = 0;
    for c in run {
        let node = graph.node(c.node).clone();
        let y = graph.add(
            Op::Slice { start: off, len: c.len },
            &[Value { node: conv, output: 0 }],
            &node.scope,
            node.layer,
        )?;
        off += c.len;
        let users: Vec<(NodeIndex, Port)> = graph
            .g
            .edges_directed(c.node, Direction::Outgoing)
            .filter(|e| e.weight().output == 0)
            .map(|e| (e.target(), *e.weight()))
            .collect();
        for (t, p) in users {
            graph.g.add_edge(
                y,
                t,
                Port {
                    output: 0,
                    input: p.input,
                },
            );
        }
        graph.g.remove_node(c.state_out);
        graph.g.remove_node(c.node);
        graph.g.remove_node(c.state_in);
    }
    Ok((packs, state))
}
