//! Slice canonicalisation: a slice of a slice becomes one slice of the original value, and a
//! slice that keeps every channel disappears. After [`super::gemm_merge`] this turns GDN's
//! `slice(slice(qkvz|ba))` into one column window of the merged GEMM's output, which later
//! stages read in place (a pointer offset and a row stride) instead of copying.

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::dce::dce;
use crate::ir::{Graph, IrError, Op, Port, Value};

/// Folds slice chains and drops identity slices.
pub fn fold_slices(mut graph: Graph) -> Result<Graph, IrError> {
    for n in graph.topo_order()? {
        let Op::Slice { start, len } = graph.node(n).op else {
            continue;
        };
        let Some(&src) = graph.inputs(n).first() else { continue };
        let (base, start) = match graph.node(src.node).op {
            Op::Slice { start: outer, .. } => match graph.inputs(src.node).first() {
                Some(&b) => (b, outer + start),
                None => continue,
            },
            _ => (src, start),
        };
        if graph.ty(base).channels() == Some(len) && start == 0 {
            redirect(&mut graph, n, base);
            continue;
        }
        if base != src {
            let node = graph.node(n).clone();
            let folded = graph.add(Op::Slice { start, len }, &[base], &node.scope, node.layer)?;
            redirect(
                &mut graph,
                n,
                Value {
                    node: folded,
                    output: 0,
                },
            );
        }
    }
    dce(graph)
}

/// Points every reader of `old`'s (only) output at `new` and removes `old`.
fn redirect(graph: &mut Graph, old: NodeIndex, new: Value) {
    let users: Vec<(NodeIndex, Port)> = graph
        .g
        .edges_directed(old, Direction::Outgoing)
        .map(|e| (e.target(), *e.weight()))
        .collect();
    for (t, p) in users {
        graph.g.add_edge(
            new.node,
            t,
            Port {
                output: new.output,
                input: p.input,
            },
        );
    }
    graph.g.remove_node(old);
}
