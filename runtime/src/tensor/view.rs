//! A borrowed tensor: reads memory-mapped checkpoint data without copying it.

use super::convert::{cast_bytes, decode_f32, decode_f64};
use super::error::{checked_sizes, TensorError};
use super::{DType, HostTensor};

/// A tensor whose shape and little-endian bytes are borrowed (typically from an mmapped file).
///
/// The fields are public for cheap construction; [`TensorView::new`] checks that they agree.
/// Conversions decode whole elements only, so an inconsistent view never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// A view whose byte length matches `dtype` and `shape`.
    pub fn new(dtype: DType, shape: &'a [usize], data: &'a [u8]) -> Result<Self, TensorError> {
        let view = TensorView { dtype, shape, data };
        view.check()?;
        Ok(view)
    }

    /// Checks that the byte length matches dtype and shape.
    pub fn check(&self) -> Result<(), TensorError> {
        let (_, nbytes) = checked_sizes(self.dtype, self.shape)?;
        if nbytes != self.data.len() {
            return Err(TensorError::ByteLength {
                dtype: self.dtype,
                shape: self.shape.to_vec(),
                expected: nbytes,
                found: self.data.len(),
            });
        }
        Ok(())
    }

    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
    }

    /// Byte length of the data.
    pub fn nbytes(&self) -> usize {
        self.data.len()
    }

    /// Elements as f32: exact from f32/f16/bf16, rounded to nearest even from f64 and from
    /// integers beyond 2^24.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        decode_f32(self.dtype, self.data)
    }

    /// Elements as f64: exact from every float dtype and from integers up to 2^53.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        decode_f64(self.dtype, self.data)
    }

    /// A converted owned copy. Floats narrow with round-to-nearest-even; floats to integers
    /// go like Rust `as` (toward zero, saturating, NaN to 0); integers saturate.
    pub fn cast(&self, dtype: DType) -> HostTensor {
        HostTensor {
            dtype,
            shape: self.shape.to_vec(),
            data: cast_bytes(self.dtype, self.data, dtype),
        }
    }

    /// An owned copy with the same dtype.
    pub fn to_host(&self) -> HostTensor {
        HostTensor {
            dtype: self.dtype,
            shape: self.shape.to_vec(),
            data: self.data.to_vec(),
        }
    }
}
