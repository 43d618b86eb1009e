//! A running sequence batch on the reference interpreter: holds the state between calls and
//! tracks positions per sequence (never read off layer 0, unlike upstream §7.2.10).

use std::collections::BTreeMap;

use super::interpreter::{execute, InterpOptions};
use super::weights::WeightStore;
use super::{Array, RefError};
use crate::ir::dim::{eval_shape, DimEnv};
use crate::ir::lower::{LOGITS_OUTPUT, POSITIONS_INPUT, STATE_PREFIX, TOKENS_INPUT};
use crate::ir::{Graph, Op};

/// Prefill and decode over one placement-specialised graph.
pub struct Session<'a> {
    graph: &'a Graph,
    weights: &'a WeightStore,
    opts: InterpOptions,
    batch: usize,
    /// Tokens seen so far (every sequence of the batch has the same length).
    past: usize,
    /// State by name (without the `state.` prefix).
    state: BTreeMap<String, Array>,
}

impl<'a> Session<'a> {
    /// A fresh session: every state zero, with the shapes a past of 0 gives.
    pub fn new(
        graph: &'a Graph,
        weights: &'a WeightStore,
        batch: usize,
        opts: InterpOptions,
    ) -> Result<Self, RefError> {
        let env = DimEnv {
            batch,
            tokens: 0,
            past: 0,
        };
        let mut state = BTreeMap::new();
        for (_, name, ty) in graph.graph_inputs() {
            if let Some(s) = name.strip_prefix(STATE_PREFIX) {
                state.insert(s.to_string(), Array::zeros(eval_shape(&ty.shape, &env)));
            }
        }
        Ok(Session {
            graph,
            weights,
            opts,
            batch,
            past: 0,
            state,
        })
    }

    pub fn past(&self) -> usize {
        self.past
    }

    pub fn state(&self) -> &BTreeMap<String, Array> {
        &self.state
    }

    /// Runs `tokens` (one row per sequence, all the same length ≥ 1) and returns the logits
    /// `[batch, tokens, vocab]`, advancing the state.
    pub fn forward(&mut self, tokens: &[Vec<u32>]) -> Result<Array, RefError> {
        let t = tokens.first().map_or(0, Vec::len);
        if tokens.len() != self.batch || t == 0 || tokens.iter().any(|r| r.len() != t) {
            return Err(RefError::BadBatch {
                expected: self.batch,
                got: tokens.iter().map(Vec::len).collect(),
            });
        }
        let ids: Vec<f64> = tokens.iter().flatten().map(|&x| f64::from(x)).collect();
        let pos: Vec<f64> = (0..self.batch)
            .flat_map(|_| (0..t).map(|i| (self.past + i) as f64))
            .collect();
        let mut inputs = BTreeMap::new();
        inputs.insert(TOKENS_INPUT.to_string(), Array::new(vec![self.batch, t], ids));
        inputs.insert(POSITIONS_INPUT.to_string(), Array::new(vec![self.batch, t], pos));
        for (name, value) in &self.state {
            inputs.insert(format!("{STATE_PREFIX}{name}"), value.clone());
        }
        let env = DimEnv {
            batch: self.batch,
            tokens: t,
            past: self.past,
        };
        let mut out = execute(self.graph, self.weights, &inputs, env, self.opts)?;
        for (_, name) in self.graph.graph_outputs() {
            if let Some(s) = name.strip_prefix(STATE_PREFIX) {
                let v = out
                    .remove(name)
                    .ok_or_else(|| RefError::MissingInput(name.to_string()))?;
                self.state.insert(s.to_string(), v);
            }
        }
        self.past += t;
        out.remove(LOGITS_OUTPUT)
            .ok_or_else(|| RefError::MissingInput(LOGITS_OUTPUT.to_string()))
    }
}

/// Whether a graph still holds unresolved stochastic routes.
pub fn has_routes(graph: &Graph) -> bool {
    graph.g.node_weights().any(|n| matches!(n.op, Op::Route { .. }))
}
