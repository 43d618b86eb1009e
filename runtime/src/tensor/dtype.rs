use serde::{Deserialize, Serialize};

/// Element types that checkpoints and the runtime use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    U8,
}

impl DType {
    /// Every supported dtype, for exhaustive tests and error messages.
    pub const ALL: [DType; 7] = [
        DType::F64,
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::U8,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }

    /// The name safetensors uses (`F32`, `BF16`, ...).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U8 => "U8",
        }
    }

    /// Inverse of [`DType::safetensors_name`]; `None` for dtypes the runtime does not support.
    pub fn from_safetensors_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.safetensors_name() == name)
    }

    /// The `safetensors` crate's dtype.
    pub fn to_safetensors(self) -> safetensors::Dtype {
        match self {
            DType::F64 => safetensors::Dtype::F64,
            DType::F32 => safetensors::Dtype::F32,
            DType::F16 => safetensors::Dtype::F16,
            DType::BF16 => safetensors::Dtype::BF16,
            DType::I64 => safetensors::Dtype::I64,
            DType::I32 => safetensors::Dtype::I32,
            DType::U8 => safetensors::Dtype::U8,
        }
    }

    /// From the `safetensors` crate's dtype; `None` for dtypes the runtime does not support
    /// (bool, 8-bit floats, unsigned 16/32/64-bit, ...).
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.to_safetensors() == dtype)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }

    /// How many whole elements of little-endian `bytes` are NaN or ±Inf (all exponent bits
    /// set); 0 for integer dtypes. Reads the bits, so it allocates nothing.
    pub fn count_non_finite(self, bytes: &[u8]) -> usize {
        fn count<const N: usize>(bytes: &[u8], exponent: u64) -> usize {
            bytes
                .chunks_exact(N)
                .filter(|c| {
                    let bits = c.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                    bits & exponent == exponent
                })
                .count()
        }
        match self {
            DType::F64 => count::<8>(bytes, 0x7ff0_0000_0000_0000),
            DType::F32 => count::<4>(bytes, 0x7f80_0000),
            DType::F16 => count::<2>(bytes, 0x7c00),
            DType::BF16 => count::<2>(bytes, 0x7f80),
            DType::I64 | DType::I32 | DType::U8 => 0,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U8 => "u8",
        })
    }
}
