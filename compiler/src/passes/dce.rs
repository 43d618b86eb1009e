//! Dead-code elimination: drops nodes no graph output depends on.

use std::collections::HashSet;

use petgraph::Direction;

use crate::ir::{Graph, IrError, Op};

pub fn dce(mut graph: Graph) -> Result<Graph, IrError> {
    let mut live = HashSet::new();
    let mut stack: Vec<_> = graph
        .g
        .node_indices()
        .filter(|&n| matches!(graph.g[n].op, Op::Output { .. }))
        .collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(graph.g.neighbors_directed(n, Direction::Incoming));
        }
    }
    graph.g.retain_nodes(|_, n| live.contains(&n));
    Ok(graph)
}
