//! Lowering: a resolved [`ModelSpec`] into an IR [`Graph`].
//!
//! One file per mixer kind plus the MLP and the block/model skeleton. State is explicit: each
//! stateful op reads `state.<name>` inputs and writes `state.<name>` outputs, so the same graph
//! runs a prefill (past = 0) and decode steps (tokens = 1).

mod attention;
mod block;
mod delta_rule;
mod gdn;
mod kda;
mod mamba;
mod mlp;

use modelc_runtime::tensor::DType;
use petgraph::stable_graph::NodeIndex;

use super::dim::{Dim, Shape};
use super::graph::{Graph, Value};
use super::op::{Op, TensorType};
use super::IrError;
use crate::spec::ModelSpec;

/// Dtype of activations and weights on the compiled path.
pub const ACT: DType = DType::BF16;
/// Dtype of recurrent states, gates and decay parameters.
pub const STATE: DType = DType::F32;

/// Name of the token-id input `[batch, tokens]`.
pub const TOKENS_INPUT: &str = "tokens";
/// Name of the position input `[batch, tokens]` (absolute position of each token).
pub const POSITIONS_INPUT: &str = "positions";
/// Name of the logits output `[batch, tokens, vocab]`.
pub const LOGITS_OUTPUT: &str = "logits";
/// Prefix of state inputs and outputs.
pub const STATE_PREFIX: &str = "state.";

/// Lowers a whole model. Stochastic layers lower every sub-mixer behind a `route` node; a
/// placement (`passes::placement`) picks one per layer.
pub fn lower_model(spec: &ModelSpec) -> Result<Graph, IrError> {
    let mut graph = Graph::new();
    block::lower_model(&mut graph, spec)?;
    Ok(graph)
}

/// A lowering cursor: the graph, the scope new nodes get, and the shared inputs.
pub(crate) struct Ctx<'g> {
    pub g: &'g mut Graph,
    pub scope: String,
    pub layer: Option<usize>,
    pub positions: Value,
}

impl Ctx<'_> {
    /// Adds a single-output op.
    pub fn op(&mut self, op: Op, inputs: &[Value]) -> Result<Value, IrError> {
        let node = self.g.add(op, inputs, &self.scope, self.layer)?;
        Ok(Value { node, output: 0 })
    }

    /// Adds a multi-output op and returns its node.
    pub fn multi(&mut self, op: Op, inputs: &[Value]) -> Result<NodeIndex, IrError> {
        self.g.add(op, inputs, &self.scope, self.layer)
    }

    pub fn weight(&mut self, key: String, shape: &[usize]) -> Result<Value, IrError> {
        self.weight_typed(key, shape, ACT)
    }

    pub fn weight_typed(&mut self, key: String, shape: &[usize], dtype: DType) -> Result<Value, IrError> {
        self.op(
            Op::Weight {
                key,
                shape: shape.to_vec(),
                dtype,
            },
            &[],
        )
    }

    /// A state input `state.<name>`.
    pub fn state_in(&mut self, name: &str, dtype: DType, shape: Shape) -> Result<Value, IrError> {
        let ty = TensorType::new(dtype, shape);
        self.op(
            Op::Input {
                name: format!("{STATE_PREFIX}{name}"),
                ty,
            },
            &[],
        )
    }

    /// The matching state output.
    pub fn state_out(&mut self, name: &str, value: Value) -> Result<(), IrError> {
        self.g.add(
            Op::Output {
                name: format!("{STATE_PREFIX}{name}"),
            },
            &[value],
            &self.scope,
            self.layer,
        )?;
        Ok(())
    }

    pub fn linear(&mut self, x: Value, key_prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Value, IrError> {
        let w = self.weight(format!("{key_prefix}.weight"), &[out, inp])?;
        if bias {
            let b = self.weight(format!("{key_prefix}.bias"), &[out])?;
            self.op(Op::Linear { bias: true }, &[x, w, b])
        } else {
            self.op(Op::Linear { bias: false }, &[x, w])
        }
    }

    pub fn slice(&mut self, x: Value, start: usize, len: usize) -> Result<Value, IrError> {
        self.op(Op::Slice { start, len }, &[x])
    }

    /// A depthwise causal conv with its state `[batch, C, K−1]`; returns the output.
    pub fn conv(
        &mut self,
        x: Value,
        key: &str,
        channels: usize,
        kernel: usize,
        bias: bool,
        state: &str,
    ) -> Result<Value, IrError> {
        let w = self.weight(format!("{key}.weight"), &[channels, 1, kernel])?;
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(self.weight(format!("{key}.bias"), &[channels])?);
        }
        let s = self.state_in(state, ACT, vec![Dim::BATCH, Dim::c(channels), Dim::c(kernel - 1)])?;
        inputs.push(s);
        let node = self.multi(
            Op::CausalConv1d {
                kernel,
                bias,
                silu: true,
            },
            &inputs,
        )?;
        self.state_out(state, Value { node, output: 1 })?;
        Ok(Value { node, output: 0 })
    }
}
