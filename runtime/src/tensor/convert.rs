//! Element codecs: little-endian bytes of any [`DType`] to and from f32/f64/i64.
//!
//! Narrowing float conversions round to nearest, ties to even. `half`'s own `from_f64` drops
//! the low 32 mantissa bits before rounding (so it can round a value just above a tie down);
//! we go f64 -> f32 with round-to-odd, then f32 -> f16/bf16 with `half`'s correct RNE, which
//! is exact double rounding because f32 keeps at least 2p+2 bits of either half format.

use half::{bf16, f16};

use super::DType;

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

/// Decodes every whole element of `bytes` to f64 (exact for all float types and for integers
/// of magnitude up to 2^53).
pub(crate) fn decode_f64(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    match dtype {
        DType::F64 => chunks::<8>(bytes).map(f64::from_le_bytes).collect(),
        DType::F32 => chunks::<4>(bytes).map(|b| f64::from(f32::from_le_bytes(b))).collect(),
        DType::F16 => chunks::<2>(bytes).map(|b| f16::from_le_bytes(b).to_f64()).collect(),
        DType::BF16 => chunks::<2>(bytes).map(|b| bf16::from_le_bytes(b).to_f64()).collect(),
        DType::I64 => chunks::<8>(bytes).map(|b| i64::from_le_bytes(b) as f64).collect(),
        DType::I32 => chunks::<4>(bytes).map(|b| f64::from(i32::from_le_bytes(b))).collect(),
        DType::U8 => bytes.iter().map(|&b| f64::from(b)).collect(),
    }
}

/// Decodes every whole element of `bytes` to f32 (one rounding, to nearest even, from f64 and
/// large integers; exact from f32/f16/bf16).
pub(crate) fn decode_f32(dtype: DType, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        DType::F64 => chunks::<8>(bytes).map(|b| f64::from_le_bytes(b) as f32).collect(),
        DType::F32 => chunks::<4>(bytes).map(f32::from_le_bytes).collect(),
        DType::F16 => chunks::<2>(bytes).map(|b| f16::from_le_bytes(b).to_f32()).collect(),
        DType::BF16 => chunks::<2>(bytes).map(|b| bf16::from_le_bytes(b).to_f32()).collect(),
        DType::I64 => chunks::<8>(bytes).map(|b| i64::from_le_bytes(b) as f32).collect(),
        DType::I32 => chunks::<4>(bytes).map(|b| i32::from_le_bytes(b) as f32).collect(),
        DType::U8 => bytes.iter().map(|&b| f32::from(b)).collect(),
    }
}

/// Decodes an integer dtype exactly; floats convert like Rust `as` (toward zero, saturating,
/// NaN to 0).
fn decode_i64(dtype: DType, bytes: &[u8]) -> Vec<i64> {
    match dtype {
        DType::I64 => chunks::<8>(bytes).map(i64::from_le_bytes).collect(),
        DType::I32 => chunks::<4>(bytes).map(|b| i64::from(i32::from_le_bytes(b))).collect(),
        DType::U8 => bytes.iter().map(|&b| i64::from(b)).collect(),
        DType::F64 | DType::F32 | DType::F16 | DType::BF16 => {
            decode_f64(dtype, bytes).into_iter().map(|x| x as i64).collect()
        }
    }
}

/// f64 -> f32 rounding to odd: truncate toward zero, and set the last bit if inexact.
fn f64_to_f32_round_odd(x: f64) -> f32 {
    let nearest = x as f32;
    if nearest.is_nan() || f64::from(nearest) == x {
        return nearest;
    }
    let mut bits = nearest.to_bits();
    if f64::from(nearest).abs() > x.abs() {
        // Rounded away from zero (possibly to infinity): step one ulp back toward zero.
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

/// f64 -> bf16, round to nearest even.
pub(crate) fn f64_to_bf16(x: f64) -> bf16 {
    bf16::from_f32(f64_to_f32_round_odd(x))
}

/// f64 -> f16, round to nearest even.
pub(crate) fn f64_to_f16(x: f64) -> f16 {
    f16::from_f32(f64_to_f32_round_odd(x))
}

fn encode<T, const N: usize>(values: impl Iterator<Item = T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.size_hint().0 * N);
    for v in values {
        out.extend_from_slice(&f(v));
    }
    out
}

/// Converts little-endian elements of `from` into little-endian elements of `to`.
///
/// Floats narrow with round-to-nearest-even; floats to integers go like Rust `as` (toward
/// zero, saturating, NaN to 0); integers narrow by saturating at the target's range.
pub(crate) fn cast_bytes(from: DType, bytes: &[u8], to: DType) -> Vec<u8> {
    if from == to {
        let whole = bytes.len() - bytes.len() % from.size();
        return bytes.get(..whole).unwrap_or_default().to_vec();
    }
    match to {
        DType::F64 => encode(decode_f64(from, bytes).into_iter(), f64::to_le_bytes),
        DType::F32 => encode(decode_f32(from, bytes).into_iter(), f32::to_le_bytes),
        DType::BF16 if from == DType::F32 || from == DType::F16 => {
            encode(decode_f32(from, bytes).into_iter(), |x| bf16::from_f32(x).to_le_bytes())
        }
        DType::F16 if from == DType::F32 || from == DType::BF16 => {
            encode(decode_f32(from, bytes).into_iter(), |x| f16::from_f32(x).to_le_bytes())
        }
        DType::BF16 => encode(decode_f64(from, bytes).into_iter(), |x| f64_to_bf16(x).to_le_bytes()),
        DType::F16 => encode(decode_f64(from, bytes).into_iter(), |x| f64_to_f16(x).to_le_bytes()),
        DType::I64 => encode(decode_i64(from, bytes).into_iter(), i64::to_le_bytes),
        DType::I32 => encode(decode_i64(from, bytes).into_iter(), |x| {
            (x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32).to_le_bytes()
        }),
        DType::U8 => encode(decode_i64(from, bytes).into_iter(), |x| {
            [x.clamp(0, i64::from(u8::MAX)) as u8]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_odd_then_rne_breaks_ties_using_low_bits() {
        // 1 + 2^-8 is the exact midpoint between bf16 neighbours 1 and 1 + 2^-7; a tiny excess
        // below f32 precision must still round up.
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(f64_to_bf16(x).to_f64(), 1.0 + 2f64.powi(-7));
        // The exact midpoint ties to even (1.0).
        assert_eq!(f64_to_bf16(1.0 + 2f64.powi(-8)).to_f64(), 1.0);
        // Same for f16 (10 mantissa bits): midpoint 1 + 2^-11.
        let y = 1.0 + 2f64.powi(-11) + 2f64.powi(-45);
        assert_eq!(f64_to_f16(y).to_f64(), 1.0 + 2f64.powi(-10));
        assert_eq!(f64_to_f16(1.0 + 2f64.powi(-11)).to_f64(), 1.0);
        // Beyond range and special values.
        assert!(f64_to_bf16(1e300).to_f32().is_infinite());
        assert!(f64_to_f16(-1e10).to_f32().is_infinite());
        assert!(f64_to_bf16(f64::NAN).is_nan());
        assert_eq!(f64_to_bf16(1e-300).to_f32(), 0.0);
        assert!(f64_to_f16(-1e-300).is_sign_negative());
    }
}
