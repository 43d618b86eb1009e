//! An owned host tensor: dtype, shape and little-endian bytes.

use half::{bf16, f16};

use super::error::{checked_sizes, TensorError};
use super::{DType, TensorView};

/// An owned tensor in host memory; `data` is little-endian, row-major.
///
/// Fields are public for easy construction; the constructors check that they agree, and
/// [`HostTensor::check`] re-checks a hand-built value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl HostTensor {
    /// A tensor from raw little-endian bytes, checking their length against dtype and shape.
    pub fn new(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<Self, TensorError> {
        let t = HostTensor { dtype, shape, data };
        t.check()?;
        Ok(t)
    }

    /// All-zero tensor (zero bits are 0 in every dtype).
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Self, TensorError> {
        let (_, nbytes) = checked_sizes(dtype, &shape)?;
        Ok(HostTensor {
            dtype,
            shape,
            data: vec![0; nbytes],
        })
    }

    fn from_elems<T: Copy, const N: usize>(
        dtype: DType,
        shape: Vec<usize>,
        values: &[T],
        to_le: impl Fn(T) -> [u8; N],
    ) -> Result<Self, TensorError> {
        let (numel, nbytes) = checked_sizes(dtype, &shape)?;
        if numel != values.len() {
            return Err(TensorError::ElementCount {
                shape,
                expected: numel,
                found: values.len(),
            });
        }
        let mut data = Vec::with_capacity(nbytes);
        for &v in values {
            data.extend_from_slice(&to_le(v));
        }
        Ok(HostTensor { dtype, shape, data })
    }

    pub fn from_f64(shape: Vec<usize>, values: &[f64]) -> Result<Self, TensorError> {
        Self::from_elems(DType::F64, shape, values, f64::to_le_bytes)
    }

    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<Self, TensorError> {
        Self::from_elems(DType::F32, shape, values, f32::to_le_bytes)
    }

    pub fn from_f16(shape: Vec<usize>, values: &[f16]) -> Result<Self, TensorError> {
        Self::from_elems(DType::F16, shape, values, f16::to_le_bytes)
    }

    pub fn from_bf16(shape: Vec<usize>, values: &[bf16]) -> Result<Self, TensorError> {
        Self::from_elems(DType::BF16, shape, values, bf16::to_le_bytes)
    }

    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Result<Self, TensorError> {
        Self::from_elems(DType::I64, shape, values, i64::to_le_bytes)
    }

    pub fn from_i32(shape: Vec<usize>, values: &[i32]) -> Result<Self, TensorError> {
        Self::from_elems(DType::I32, shape, values, i32::to_le_bytes)
    }

    pub fn from_u8(shape: Vec<usize>, values: &[u8]) -> Result<Self, TensorError> {
        Self::from_elems(DType::U8, shape, values, |v| [v])
    }

    /// Checks that the byte length matches dtype and shape.
    pub fn check(&self) -> Result<(), TensorError> {
        self.view().check()
    }

    /// A borrowed view of this tensor.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            dtype: self.dtype,
            shape: &self.shape,
            data: &self.data,
        }
    }

    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.view().numel()
    }

    /// Byte length of the data.
    pub fn nbytes(&self) -> usize {
        self.data.len()
    }

    /// See [`TensorView::to_f32_vec`].
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.view().to_f32_vec()
    }

    /// See [`TensorView::to_f64_vec`].
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.view().to_f64_vec()
    }

    /// See [`TensorView::cast`].
    pub fn cast(&self, dtype: DType) -> HostTensor {
        self.view().cast(dtype)
    }
}
