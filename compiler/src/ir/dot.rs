//! Graphviz output of the IR (`modelc graph --dot`): one cluster per scope.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::graph::Graph;
use super::op::Op;
use super::text::numbering;
use super::IrError;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn to_dot(graph: &Graph) -> Result<String, IrError> {
    let (order, ids) = numbering(graph)?;
    let mut clusters: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for &n in &order {
        let node = graph.node(n);
        let label = match &node.op {
            Op::Weight { key, .. } => key
                .rsplit('.')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("."),
            Op::Input { name, .. } | Op::Output { name } => name.clone(),
            op => op.name(),
        };
        let shape = match &node.op {
            Op::Weight { .. } => "note",
            Op::Input { .. } | Op::Output { .. } => "ellipse",
            _ => "box",
        };
        let ty = node.outputs.first().map(|t| t.to_string()).unwrap_or_default();
        clusters.entry(node.scope.as_str()).or_default().push(format!(
            "    n{} [shape={shape}, label=\"%{}: {}\\n{}\"];",
            ids[&n],
            ids[&n],
            escape(&label),
            escape(&ty)
        ));
    }
    let mut out = String::from("digraph modelc {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n");
    for (i, (scope, lines)) in clusters.iter().enumerate() {
        if scope.is_empty() {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        } else {
            let _ = writeln!(out, "  subgraph cluster_{i} {{\n    label=\"{}\";", escape(scope));
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = writeln!(out, "  }}");
        }
    }
    for &n in &order {
        for v in graph.inputs(n) {
            let _ = writeln!(out, "  n{} -> n{};", ids[&v.node], ids[&n]);
        }
    }
    out.push_str("}\n");
    Ok(out)
}
