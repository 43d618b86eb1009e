//! The CPU reference interpreter: runs the unfused IR in f64 (or f32-rounded) arithmetic.
//! It is the oracle for every fusion and GPU kernel, and the `--device cpu` backend.

pub mod array;
pub mod interpreter;
pub mod ops;
pub mod session;
pub mod weights;

pub use array::Array;
pub use interpreter::{execute, DeltaRuleForm, InterpOptions, Precision};
pub use session::Session;
pub use weights::WeightStore;

/// Errors of the reference interpreter.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(transparent)]
    Ir(#[from] crate::ir::IrError),
    #[error("in {scope}: {op}: {source}")]
    Op {
        scope: String,
        op: String,
        source: Box<ops::OpError>,
    },
    #[error("graph input `{0}` was not provided")]
    MissingInput(String),
    #[error("weight `{0}` is not loaded")]
    MissingWeight(String),
    #[error("{what}: shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("a batch of {expected} sequences of one common, non-zero length was expected; got lengths {got:?}")]
    BadBatch { expected: usize, got: Vec<usize> },
    #[error(transparent)]
    Layout(#[from] modelc_runtime::weights::LayoutError),
    #[error(transparent)]
    Weights(#[from] modelc_runtime::weights::WeightsError),
}
