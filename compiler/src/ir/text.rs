//! The deterministic text form of the IR (`modelc graph`): one line per node in topological order,
//! values renumbered densely (`%7`, `%7.1` for a second output).

use std::collections::HashMap;
use std::fmt::Write;

use petgraph::stable_graph::NodeIndex;

use super::graph::{Graph, Value};
use super::op::Op;
use super::IrError;

/// Dense numbering of nodes in topological order.
pub fn numbering(graph: &Graph) -> Result<(Vec<NodeIndex>, HashMap<NodeIndex, usize>), IrError> {
    let order = graph.topo_order()?;
    let ids = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    Ok((order, ids))
}

fn value_name(ids: &HashMap<NodeIndex, usize>, v: Value) -> String {
    let id = ids.get(&v.node).copied().unwrap_or(usize::MAX);
    if v.output == 0 {
        format!("%{id}")
    } else {
        format!("%{id}.{}", v.output)
    }
}

/// Renders the whole graph.
pub fn to_text(graph: &Graph) -> Result<String, IrError> {
    let (order, ids) = numbering(graph)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# modelc IR: {} nodes, {} weights, {} inputs, {} outputs",
        graph.node_count(),
        graph.weights().len(),
        graph.graph_inputs().len(),
        graph.graph_outputs().len()
    );
    let mut scope = None::<&str>;
    for n in order {
        let node = graph.node(n);
        if scope != Some(node.scope.as_str()) {
            scope = Some(node.scope.as_str());
            let _ = writeln!(out, "\n# {}", if node.scope.is_empty() { "model" } else { &node.scope });
        }
        let args: Vec<String> = graph.inputs(n).into_iter().map(|v| value_name(&ids, v)).collect();
        let id = ids[&n];
        match &node.op {
            Op::Output { name } => {
                let _ = writeln!(out, "output {name} = {}", args.join(", "));
            }
            op => {
                let params = op.params();
                let head = match (&node.op, params.is_empty()) {
                    (Op::Input { .. } | Op::Weight { .. }, _) => format!("{} {params}", op.name()),
                    (_, true) => format!("{}({})", op.name(), args.join(", ")),
                    (_, false) => format!("{}[{params}]({})", op.name(), args.join(", ")),
                };
                let types: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
                let ty = if types.len() == 1 {
                    types[0].clone()
                } else {
                    format!("({})", types.join(", "))
                };
                let _ = writeln!(out, "%{id} = {head} : {ty}");
            }
        }
    }
    Ok(out)
}
