//! What `modelc build` reports about a model: layers and parameters by mixer kind, state bytes,
//! node counts. Parameters are counted from the weights the lowering declares.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::dim::{eval_shape, DimEnv};
use super::graph::Graph;
use super::lower::STATE_PREFIX;
use crate::spec::{MixerSpec, ModelSpec};

/// A past length far beyond any sliding window, to split state into per-sequence and per-token.
const LONG_PAST: usize = 1 << 24;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub layers: usize,
    /// Mixer kind → layer indices (stochastic layers listed under `stochastic`).
    pub layers_by_kind: BTreeMap<String, Vec<usize>>,
    /// Group (`embedding`, `head`, `norms`, `mlp`, or a mixer kind) → parameters.
    pub params_by_group: BTreeMap<String, usize>,
    pub params_total: usize,
    /// State bytes per sequence that do not grow with context (conv windows, recurrent states,
    /// full sliding-window caches), for the placement the graph was specialised to.
    pub state_bytes_per_sequence: usize,
    /// State bytes added per token of context (full-attention KV caches).
    pub state_bytes_per_token: usize,
    pub ir_nodes_lowered: usize,
    pub ir_nodes_placed: usize,
}

/// Which parameter group a weight belongs to, from its key and the spec.
fn group_of(spec: &ModelSpec, key: &str) -> String {
    let Some(rest) = key.strip_prefix("model.decoder.blocks.") else {
        return match key {
            "model.embed_tokens.weight" => "embedding".into(),
            _ => "head".into(),
        };
    };
    let mut parts = rest.split('.');
    let layer: Option<usize> = parts.next().and_then(|s| s.parse().ok());
    let part = parts.next().unwrap_or("");
    match (part, layer.and_then(|l| spec.layers.get(l))) {
        ("mlp", _) => "mlp".into(),
        ("mixer", Some(block)) => match &block.mixer {
            MixerSpec::Stochastic(s) => {
                let sub = rest
                    .split(".mixers.")
                    .nth(1)
                    .and_then(|r| r.split('.').next())
                    .unwrap_or("");
                s.get(sub).map_or("stochastic".to_string(), |m| m.kind().to_string())
            }
            m => m.kind().to_string(),
        },
        _ => "norms".into(),
    }
}

fn state_bytes(graph: &Graph, past: usize) -> usize {
    let env = DimEnv {
        batch: 1,
        tokens: 1,
        past,
    };
    graph
        .graph_inputs()
        .iter()
        .filter(|(_, name, _)| name.starts_with(STATE_PREFIX))
        .map(|(_, _, ty)| eval_shape(&ty.shape, &env).iter().product::<usize>() * ty.dtype.size())
        .sum()
}

/// Summarises a model from its lowered graph and the graph specialised to a placement.
pub fn summarize(spec: &ModelSpec, lowered: &Graph, placed: &Graph) -> Summary {
    let mut layers_by_kind: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, b) in spec.layers.iter().enumerate() {
        layers_by_kind.entry(b.mixer.kind().to_string()).or_default().push(i);
    }
    let mut params_by_group: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (_, key, shape) in lowered.weights() {
        if seen.insert(key) {
            *params_by_group.entry(group_of(spec, key)).or_default() += shape.iter().product::<usize>();
        }
    }
    let params_total = params_by_group.values().sum();
    let long = state_bytes(placed, LONG_PAST);
    let per_token = state_bytes(placed, LONG_PAST + 1) - long;
    Summary {
        layers: spec.layers.len(),
        layers_by_kind,
        params_by_group,
        params_total,
        state_bytes_per_sequence: long - per_token * LONG_PAST,
        state_bytes_per_token: per_token,
        ir_nodes_lowered: lowered.node_count(),
        ir_nodes_placed: placed.node_count(),
    }
}

/// Layer lists like `0-3, 8, 10-11` (`v` ascending).
pub(crate) fn ranges(v: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// `1.23 M` style counts.
pub fn human(n: usize) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} K", x / 1e3)
    } else {
        n.to_string()
    }
}

impl Summary {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "layers: {}", self.layers);
        for (kind, layers) in &self.layers_by_kind {
            let _ = writeln!(s, "  {kind:<15} {:>4}  (layers {})", layers.len(), ranges(layers));
        }
        let _ = writeln!(s, "parameters: {} ({})", human(self.params_total), self.params_total);
        for (group, n) in &self.params_by_group {
            let _ = writeln!(s, "  {group:<15} {:>10}  ({n})", human(*n));
        }
        let _ = writeln!(
            s,
            "state per sequence: {} bytes fixed + {} bytes per token of context",
            self.state_bytes_per_sequence, self.state_bytes_per_token
        );
        let _ = writeln!(
            s,
            "IR nodes: {} lowered, {} after placement",
            self.ir_nodes_lowered, self.ir_nodes_placed
        );
        s
    }
}
