//! Placement: which sub-mixer each stochastic layer runs. Specialising a graph to a placement
//! replaces each `route` by its chosen input and removes the other sub-mixers (their nodes, state
//! inputs and state outputs).

use std::collections::BTreeMap;

use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::dce::dce;
use crate::ir::{Graph, IrError, Op, Port};
use crate::spec::{MixerSpec, ModelSpec};

/// Layer index → sub-mixer name, for stochastic layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub choices: BTreeMap<usize, String>,
}

impl Placement {
    /// Every stochastic layer runs its `main_mixer_name`.
    pub fn main(spec: &ModelSpec) -> Placement {
        let choices = spec
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match &b.mixer {
                MixerSpec::Stochastic(s) => Some((i, s.main_mixer_name.clone())),
                _ => None,
            })
            .collect();
        Placement { choices }
    }

    /// Every stochastic layer runs the sub-mixer called `name` (e.g. `--placement kda`).
    pub fn all(spec: &ModelSpec, name: &str) -> Result<Placement, IrError> {
        Placement::main(spec).with_overrides(spec, &format!("*={name}"))
    }

    /// Applies `LAYER=NAME[,LAYER=NAME...]` (`*` for every stochastic layer) over this placement,
    /// checking each layer is stochastic and has that sub-mixer.
    pub fn with_overrides(mut self, spec: &ModelSpec, text: &str) -> Result<Placement, IrError> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (layer, name) = part
                .split_once('=')
                .ok_or_else(|| IrError::Placement(format!("`{part}`: expected LAYER=NAME, e.g. 3=kda or *=gdn")))?;
            let layers: Vec<usize> = if layer.trim() == "*" {
                self.choices.keys().copied().collect()
            } else {
                vec![layer
                    .trim()
                    .parse()
                    .map_err(|_| IrError::Placement(format!("`{part}`: `{layer}` is not a layer index")))?]
            };
            for l in layers {
                let block = spec.layers.get(l).ok_or_else(|| {
                    IrError::Placement(format!(
                        "layer {l} does not exist (the model has {})",
                        spec.layers.len()
                    ))
                })?;
                let MixerSpec::Stochastic(s) = &block.mixer else {
                    return Err(IrError::Placement(format!(
                        "layer {l} is a {} layer, not stochastic",
                        block.mixer.kind()
                    )));
                };
                if s.get(name.trim()).is_none() {
                    let names: Vec<&str> = s.mixers.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(IrError::Placement(format!(
                        "layer {l} has no sub-mixer `{}` (it has: {})",
                        name.trim(),
                        names.join(", ")
                    )));
                }
                self.choices.insert(l, name.trim().to_string());
            }
        }
        Ok(self)
    }
}

/// Resolves every `route` node to the placement's choice and drops the unused sub-mixers.
pub fn specialize(mut graph: Graph, placement: &Placement) -> Result<Graph, IrError> {
    let routes: Vec<_> = graph
        .g
        .node_indices()
        .filter(|&n| matches!(graph.g[n].op, Op::Route { .. }))
        .collect();
    let mut dead_scopes = Vec::new();
    for r in routes {
        let Op::Route { layer, names } = graph.g[r].op.clone() else {
            continue;
        };
        let chosen = placement
            .choices
            .get(&layer)
            .ok_or_else(|| IrError::Placement(format!("no sub-mixer chosen for stochastic layer {layer}")))?;
        let idx = names.iter().position(|n| n == chosen).ok_or_else(|| {
            IrError::Placement(format!(
                "layer {layer} has no sub-mixer `{chosen}` (it has: {})",
                names.join(", ")
            ))
        })?;
        let src = graph.inputs(r)[idx];
        let users: Vec<_> = graph
            .g
            .edges_directed(r, Direction::Outgoing)
            .map(|e| (e.target(), *e.weight()))
            .collect();
        for (t, p) in users {
            graph.g.add_edge(
                src.node,
                t,
                Port {
                    output: src.output,
                    input: p.input,
                },
            );
        }
        let scope = graph.g[r].scope.clone();
        dead_scopes.extend(
            names
                .iter()
                .filter(|n| *n != chosen)
                .map(|n| format!("{scope}.mixers.{n}")),
        );
        graph.g.remove_node(r);
    }
    // Unused sub-mixers' state outputs would keep them alive: drop those outputs first.
    graph.g.retain_nodes(|g, n| {
        let node = &g[n];
        !(matches!(node.op, Op::Output { .. })
            && dead_scopes
                .iter()
                .any(|s| node.scope == *s || node.scope.starts_with(&format!("{s}."))))
    });
    dce(graph)
}
