//! The IR: a petgraph graph of typed ops with symbolic dims (batch, tokens, past).
//!
//! Weights are named inputs carrying their checkpoint key; per-layer state (KV caches, conv
//! windows, recurrent states) is explicit graph input and output, so prefill and decode come from
//! one lowering.

pub mod dim;
pub mod dot;
pub mod graph;
pub mod lower;
pub mod op;
pub mod summary;
pub mod text;

pub use dim::{Dim, DimEnv, Shape, Sym};
pub use graph::{Graph, Node, Port, Value};
pub use op::{AttentionParams, DecayKind, DeltaRuleParams, Op, TensorType, UnaryFn};

/// Errors of IR construction, passes and verification.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("{op}: {msg}")]
    Shape { op: String, msg: String },
    #[error("in {scope}: {inner}")]
    InScope { scope: String, inner: Box<IrError> },
    #[error("the graph has a cycle")]
    Cycle,
    #[error("IR verification failed: {0}")]
    Verify(String),
    #[error("placement: {0}")]
    Placement(String),
}

impl IrError {
    pub(crate) fn in_scope(self, scope: &str) -> IrError {
        if scope.is_empty() {
            self
        } else {
            IrError::InScope {
                scope: scope.to_string(),
                inner: Box::new(self),
            }
        }
    }
}
