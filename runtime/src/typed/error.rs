//! Errors of typed weights: every one names the model type and the tensor key involved.

use crate::tensor::{DType, TensorError};
use crate::weights::{LayoutError, WeightsError};

/// An error loading, building, checking, saving or converting a typed model.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    /// Tensors missing, unexpected, or of the wrong shape or dtype (all listed at once).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Reading or writing the checkpoint failed.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A tensor handed to a constructor does not match its declaration.
    #[error(
        "{model}: tensor `{key}` is {found_dtype} {found_shape:?}, but the layout declares \
         {expected_dtype} {expected_shape:?}"
    )]
    Mismatch {
        model: &'static str,
        key: String,
        expected_shape: Vec<usize>,
        expected_dtype: DType,
        found_shape: Vec<usize>,
        found_dtype: DType,
    },
    /// A tensor whose bytes disagree with its own dtype and shape.
    #[error("{model}: tensor `{key}`: {source}")]
    Tensor {
        model: &'static str,
        key: String,
        #[source]
        source: TensorError,
    },
    /// The layer list does not follow the spec (count, or a layer of the wrong kind).
    #[error("{model}: {message}")]
    Layers { model: &'static str, message: String },
    /// A typed converter failed to produce a target tensor.
    #[error("converting {from} into {to}: tensor `{key}`: {message}")]
    Convert {
        from: &'static str,
        to: &'static str,
        key: String,
        message: String,
    },
    /// The model's embedded config or plan could not be read back (a generated crate out of
    /// step with the modelc it links).
    #[error("{model}: {message}")]
    Embedded { model: &'static str, message: String },
}
