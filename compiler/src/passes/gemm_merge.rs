//! Horizontal GEMM merge: Linear ops that read the same activation become one Linear over a
//! packed weight (their weights concatenated along the output dim), followed by one Slice per
//! original projection. cuBLAS then reads the activation once and runs one larger GEMM (KDA
//! q/k/v/f_a/beta/g_a, attention q/k/v, MLP gate/up, GDN qkvz/ba, Mamba in_proj/dt_in_proj).
//!
//! The packed weight is a new `Op::Weight` whose key names its parts
//! (`…mixer.q_proj+k_proj+v_proj.weight`); [`PackedWeight`] is the recipe the runtime uses to
//! build it from checkpoint tensors once, at load.

use std::collections::BTreeMap;

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::dce::dce;
use crate::ir::{Graph, IrError, Op, Port, Value};
use modelc_runtime::tensor::DType;

/// One checkpoint tensor inside a packed weight: rows `[row, row + rows)` of the packed tensor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackPart {
    pub key: String,
    pub row: usize,
    pub rows: usize,
}

/// A device tensor built by concatenating checkpoint tensors along dim 0 (output features).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackedWeight {
    /// The key of the packed `Op::Weight` in the merged graph.
    pub key: String,
    /// Shape of the packed tensor: `[Σ rows, in]` for a weight, `[Σ rows]` for a bias.
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub parts: Vec<PackPart>,
}

/// The merged graph and the recipes of the packed weights it introduced.
#[derive(Debug, Clone)]
pub struct Merged {
    pub graph: Graph,
    pub packs: Vec<PackedWeight>,
}

/// A mergeable Linear: its node, weight key/shape/dtype and optional bias key.
struct Cand {
    node: NodeIndex,
    w_key: String,
    out: usize,
    inp: usize,
    dtype: DType,
    bias_key: Option<String>,
}

fn weight_of(graph: &Graph, v: Value) -> Option<(String, Vec<usize>, DType)> {
    match &graph.node(v.node).op {
        Op::Weight { key, shape, dtype } => Some((key.clone(), shape.clone(), *dtype)),
        _ => None,
    }
}

/// `a.b.q_proj.weight` + `a.b.k_proj.weight` → `a.b.q_proj+k_proj.weight`: the common prefix
/// and suffix (at `.` boundaries) kept once, the differing middles joined by `+`.
pub fn packed_key(keys: &[String]) -> String {
    let split: Vec<Vec<&str>> = keys.iter().map(|k| k.split('.').collect()).collect();
    if split.is_empty() {
        return String::new();
    }
    let min_len = split.iter().map(Vec::len).min().unwrap_or(0);
    let mut pre = 0;
    while pre < min_len && split.iter().all(|s| s[pre] == split[0][pre]) {
        pre += 1;
    }
    let mut suf = 0;
    while suf < min_len - pre
        && split
            .iter()
            .all(|s| s[s.len() - 1 - suf] == split[0][split[0].len() - 1 - suf])
    {
        suf += 1;
    }
    let middles: Vec<String> = split.iter().map(|s| s[pre..s.len() - suf].join(".")).collect();
    let mut parts: Vec<String> = split[0][..pre].iter().map(|s| s.to_string()).collect();
    parts.push(middles.join("+"));
    parts.extend(split[0][split[0].len() - suf..].iter().map(|s| s.to_string()));
    parts.retain(|p| !p.is_empty());
    parts.join(".")
}

/// Merges every set of ≥ 2 Linear ops that read the same value, have weights (and biases, all
/// or none) that are checkpoint tensors of one dtype and the same input width.
pub fn gemm_merge(mut graph: Graph) -> Result<Merged, IrError> {
    // Group candidates by (input value, has bias); BTreeMap keeps the order deterministic.
    let mut groups: BTreeMap<(usize, usize, bool), Vec<Cand>> = BTreeMap::new();
    let mut nodes: Vec<NodeIndex> = graph.g.node_indices().collect();
    nodes.sort_by_key(|n| n.index());
    for n in nodes {
        let Op::Linear { bias } = graph.node(n).op else {
            continue;
        };
        let ins = graph.inputs(n);
        let (Some(x), Some(w)) = (ins.first(), ins.get(1)) else {
            continue;
        };
        let Some((w_key, w_shape, dtype)) = weight_of(&graph, *w) else {
            continue;
        };
        let [out, inp] = w_shape[..] else { continue };
        let bias_key = if bias {
            match ins.get(2).and_then(|b| weight_of(&graph, *b)) {
                Some((k, s, d)) if s == [out] && d == dtype => Some(k),
                _ => continue,
            }
        } else {
            None
        };
        groups.entry((x.node.index(), x.output, bias)).or_default().push(Cand {
            node: n,
            w_key,
            out,
            inp,
            dtype,
            bias_key,
        });
    }

    let mut packs = Vec::new();
    for ((xn, xo, bias), cands) in groups {
        // Only same-dtype, same-width weights pack into one tensor.
        let mut by_kind: BTreeMap<(String, usize), Vec<Cand>> = BTreeMap::new();
        for c in cands {
            by_kind.entry((c.dtype.to_string(), c.inp)).or_default().push(c);
        }
        for (_, cands) in by_kind {
            if cands.len() < 2 {
                continue;
            }
            let x = Value {
                node: NodeIndex::new(xn),
                output: xo,
            };
            packs.extend(merge_one(&mut graph, x, bias, &cands)?);
        }
    }
    let graph = dce(graph)?;
    Ok(Merged { graph, packs })
}

fn merge_one(graph: &mut Graph, x: Value, bias: bool, cands: &[Cand]) -> Result<Vec<PackedWeight>, IrError> {
    let first = graph.node(cands[0].node).clone();
    let (scope, layer) = (first.scope.clone(), first.layer);
    let total: usize = cands.iter().map(|c| c.out).sum();
    let inp = cands[0].inp;
    let dtype = cands[0].dtype;
    let mut parts = Vec::with_capacity(cands.len());
    let mut row = 0;
    for c in cands {
        parts.push(PackPart {
            key: c.w_key.clone(),
            row,
            rows: c.out,
        });
        row += c.out;
    }
    let keys: Vec<String> = cands.iter().map(|c| c.w_key.clone()).collect();
    let w_pack = PackedWeight {
        key: packed_key(&keys),
        shape: vec![total, inp],
        dtype,
        parts,
    };
    let w = graph.add(
        Op::Weight {
            key: w_pack.key.clone(),
            shape: w_pack.shape.clone(),
            dtype,
        },
        &[],
        &scope,
        layer,
    )?;
    let mut inputs = vec![x, Value { node: w, output: 0 }];
    let mut packs = vec![w_pack];
    if bias {
        let bkeys: Vec<String> = cands.iter().filter_map(|c| c.bias_key.clone()).collect();
        let mut parts = Vec::with_capacity(cands.len());
        let mut row = 0;
        for c in cands {
            parts.push(PackPart {
                key: c.bias_key.clone().unwrap_or_default(),
                row,
                rows: c.out,
            });
            row += c.out;
        }
        let b_pack = PackedWeight {
            key: packed_key(&bkeys),
            shape: vec![total],
            dtype,
            parts,
        };
        let b = graph.add(
            Op::Weight {
                key: b_pack.key.clone(),
                shape: b_pack.shape.clone(),
                dtype,
            },
            &[],
            &scope,
            layer,
        )?;
        inputs.push(Value { node: b, output: 0 });
        packs.push(b_pack);
    }
    let merged = graph.add(Op::Linear { bias }, &inputs, &scope, layer)?;
    let mut start = 0;
    for c in cands {
        let node = graph.node(c.node).clone();
        let slice = graph.add(
            Op::Slice { start, len: c.out },
            &[Value {
                node: merged,
                output: 0,
            }],
            &node.scope,
            node.layer,
        )?;
        start += c.out;
        let users: Vec<(NodeIndex, Port)> = graph
            .g
            .edges_directed(c.node, Direction::Outgoing)
            .map(|e| (e.target(), *e.weight()))
            .collect();
        for (t, p) in users {
            graph.g.add_edge(
                slice,
                t,
                Port {
                    output: 0,
                    input: p.input,
                },
            );
        }
        graph.g.remove_node(c.node);
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_keep_common_prefix_and_suffix() {
        let k = |v: &[&str]| packed_key(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            k(&["m.b.0.mixer.q_proj.weight", "m.b.0.mixer.k_proj.weight"]),
            "m.b.0.mixer.q_proj+k_proj.weight"
        );
        assert_eq!(k(&["a.x.w", "a.y.z.w"]), "a.x+y.z.w");
        assert_eq!(k(&["p", "q"]), "p+q");
    }
}
