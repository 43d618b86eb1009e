//! The IR verifier: structure and types, re-derived from scratch.

use std::collections::HashSet;

use crate::ir::{Graph, IrError, Op, TensorType};

/// Checks that the graph is acyclic, every node has exactly its inputs wired once each from an
/// existing output, stored output types equal re-inferred ones, and names/keys are unique.
pub fn verify(graph: &Graph) -> Result<(), IrError> {
    let order = graph.topo_order()?;
    let fail = |msg: String| Err(IrError::Verify(msg));
    let mut outputs = HashSet::new();
    let mut inputs = HashSet::new();
    let mut weights = HashSet::new();
    for n in order {
        let node = graph.node(n);
        let wired = graph.inputs(n);
        let ports: Vec<usize> = graph
            .g
            .edges_directed(n, petgraph::Direction::Incoming)
            .map(|e| e.weight().input)
            .collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        if sorted != (0..ports.len()).collect::<Vec<_>>() {
            return fail(format!(
                "node {} ({}) in {}: input ports {sorted:?} are not 0..{}",
                n.index(),
                node.op.name(),
                node.scope,
                ports.len()
            ));
        }
        let mut types: Vec<TensorType> = Vec::with_capacity(wired.len());
        for v in &wired {
            let src = graph.node(v.node);
            match src.outputs.get(v.output) {
                Some(t) => types.push(t.clone()),
                None => {
                    return fail(format!(
                        "node {} ({}) reads output {} of a {} with {} outputs",
                        n.index(),
                        node.op.name(),
                        v.output,
                        src.op.name(),
                        src.outputs.len()
                    ))
                }
            }
        }
        let inferred = node
            .op
            .infer(&types)
            .map_err(|e| IrError::Verify(format!("node {} in {}: {e}", n.index(), node.scope)))?;
        if inferred != node.outputs {
            return fail(format!(
                "node {} ({}) in {}: stored types differ from inferred ones",
                n.index(),
                node.op.name(),
                node.scope
            ));
        }
        match &node.op {
            Op::Output { name } if !outputs.insert(name.clone()) => return fail(format!("duplicate output `{name}`")),
            Op::Input { name, .. } if !inputs.insert(name.clone()) => return fail(format!("duplicate input `{name}`")),
            Op::Weight { key, .. } if !weights.insert(key.clone()) => return fail(format!("duplicate weight `{key}`")),
            _ => {}
        }
    }
    Ok(())
}
