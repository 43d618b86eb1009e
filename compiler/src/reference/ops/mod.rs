//! The math of each IR op on [`Array`]s, one file per op family.
//!
//! Everything is computed in f64 and written for clarity, not speed: these functions are the
//! oracle that fused passes and GPU kernels are checked against.

pub mod attention;
pub mod conv;
pub mod delta_rule;
pub mod elementwise;
pub mod gates;
pub mod linear;
pub mod norm;
pub mod rope;
pub mod selective_scan;

use super::Array;
use thiserror::Error;

/// Why an op refused its inputs. Every variant names the op so that an interpreter error can be
/// traced back to the node that produced it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OpError {
    /// An input has the wrong shape (rank or a dimension).
    #[error("{op}: input `{input}` has shape {got:?}, expected {expected}")]
    Shape {
        op: &'static str,
        input: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    /// An `Array` whose data length disagrees with its shape (its fields are public).
    #[error("{op}: input `{input}` has shape {shape:?} ({expected} elements) but {got} data values")]
    Inconsistent {
        op: &'static str,
        input: &'static str,
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    /// A scalar parameter (head count, chunk size, ...) is unusable.
    #[error("{op}: invalid parameter: {detail}")]
    Param { op: &'static str, detail: String },
    /// A token id that is not an integer in `[0, vocab)`.
    #[error("embedding: token id {id} is not an integer in [0, {vocab}) (vocabulary size {vocab})")]
    IdOutOfRange { id: f64, vocab: usize },
}

/// Checks that `a` is internally consistent and has rank `rank`; returns its dimensions.
pub(crate) fn dims<'a>(
    op: &'static str,
    input: &'static str,
    a: &'a Array,
    rank: usize,
) -> Result<&'a [usize], OpError> {
    consistent(op, input, a)?;
    if a.shape.len() != rank {
        return Err(OpError::Shape {
            op,
            input,
            expected: format!("rank {rank}"),
            got: a.shape.clone(),
        });
    }
    Ok(&a.shape)
}

/// Checks that `a` is internally consistent and has exactly the shape `expected`.
pub(crate) fn expect_shape(
    op: &'static str,
    input: &'static str,
    a: &Array,
    expected: &[usize],
) -> Result<(), OpError> {
    consistent(op, input, a)?;
    if a.shape != expected {
        return Err(OpError::Shape {
            op,
            input,
            expected: format!("{expected:?}"),
            got: a.shape.clone(),
        });
    }
    Ok(())
}

/// Checks that the data length equals the product of the shape (no overflow either).
pub(crate) fn consistent(op: &'static str, input: &'static str, a: &Array) -> Result<(), OpError> {
    let expected = a
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| OpError::Param {
            op,
            detail: format!("input `{input}` shape {:?} overflows usize", a.shape),
        })?;
    if expected != a.data.len() {
        return Err(OpError::Inconsistent {
            op,
            input,
            shape: a.shape.clone(),
            expected,
            got: a.data.len(),
        });
    }
    Ok(())
}

/// Returns an error unless `cond` holds.
pub(crate) fn ensure(cond: bool, op: &'static str, detail: impl FnOnce() -> String) -> Result<(), OpError> {
    if cond {
        Ok(())
    } else {
        Err(OpError::Param { op, detail: detail() })
    }
}

/// PyTorch's `softplus` with its default threshold: `x` above 20 (where `ln(1+eˣ) = x` in f32).
pub(crate) fn softplus(x: f64) -> f64 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Logistic sigmoid, written so that neither tail overflows.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Seeded random inputs and closeness checks shared by the op tests.
    use super::Array;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// Uniform values in `[lo, hi)`.
    pub fn uniform(rng: &mut ChaCha8Rng, shape: &[usize], lo: f64, hi: f64) -> Array {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        Array::new(shape.to_vec(), data)
    }

    /// Asserts `max |a − b| ≤ tol · max(1, max |b|)` and equal shapes.
    #[track_caller]
    pub fn assert_close(a: &Array, b: &Array, tol: f64, what: &str) {
        assert_eq!(a.shape, b.shape, "{what}: shapes differ");
        let scale = b.data.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let err = a
            .data
            .iter()
            .zip(&b.data)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err <= tol * scale,
            "{what}: max abs error {err:e} > {tol:e} × {scale:e}"
        );
    }

    /// Elements `[lo, hi)` of the time axis (axis 1) of a `[B, T, ...]` array.
    pub fn time_slice(a: &Array, lo: usize, hi: usize) -> Array {
        let b = a.shape[0];
        let t = a.shape[1];
        let inner: usize = a.shape[2..].iter().product();
        let mut data = Vec::with_capacity(b * (hi - lo) * inner);
        for bi in 0..b {
            data.extend_from_slice(&a.data[(bi * t + lo) * inner..(bi * t + hi) * inner]);
        }
        let mut shape = a.shape.clone();
        shape[1] = hi - lo;
        Array::new(shape, data)
    }

    /// Concatenates `[B, T_i, ...]` arrays along the time axis.
    pub fn time_concat(parts: &[&Array]) -> Array {
        let b = parts[0].shape[0];
        let inner: usize = parts[0].shape[2..].iter().product();
        let total: usize = parts.iter().map(|p| p.shape[1]).sum();
        let mut data = Vec::new();
        for bi in 0..b {
            for p in parts {
                let t = p.shape[1];
                data.extend_from_slice(&p.data[bi * t * inner..(bi + 1) * t * inner]);
            }
        }
        let mut shape = parts[0].shape.clone();
        shape[1] = total;
        Array::new(shape, data)
    }
}
