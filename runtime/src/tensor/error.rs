//! Errors from building host tensors out of inconsistent parts.

use super::DType;

/// A tensor's parts disagree: shape, element count and byte length must match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {found} values were given")]
    ElementCount {
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("a {dtype} tensor of shape {shape:?} takes {expected} bytes but {found} bytes were given")]
    ByteLength {
        dtype: DType,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("shape {shape:?} of a {dtype} tensor overflows the address space")]
    Overflow { dtype: DType, shape: Vec<usize> },
}

/// Element count and byte size of a shape, or an overflow error.
pub(crate) fn checked_sizes(dtype: DType, shape: &[usize]) -> Result<(usize, usize), TensorError> {
    let overflow = || TensorError::Overflow {
        dtype,
        shape: shape.to_vec(),
    };
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let nbytes = numel.checked_mul(dtype.size()).ok_or_else(overflow)?;
    Ok((numel, nbytes))
}
