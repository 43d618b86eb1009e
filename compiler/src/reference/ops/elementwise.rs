//! Pointwise ops: activations, broadcast add/mul, scaling.

use super::{consistent, sigmoid, softplus, OpError};
use crate::ir::UnaryFn;
use crate::reference::Array;

/// Applies a pointwise function (an IR [`UnaryFn`]) to one value.
pub fn apply(op: UnaryFn, x: f64) -> f64 {
    match op {
        UnaryFn::Silu => x * sigmoid(x),
        UnaryFn::Gelu => gelu(x),
        UnaryFn::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
        UnaryFn::Relu => x.max(0.0),
        UnaryFn::Sigmoid => sigmoid(x),
        // PyTorch's softplus: `x` above 20, else `ln(1 + eˣ)`.
        UnaryFn::Softplus => softplus(x),
        UnaryFn::Exp => x.exp(),
        UnaryFn::Neg => -x,
        UnaryFn::Identity => x,
    }
}

/// Exact GELU. `Φ(x) = ½·erfc(−x/√2)` keeps full relative precision in the negative tail, where
/// `½(1 + erf(x/√2))` would cancel to zero.
fn gelu(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// Applies `op` to every element.
pub fn unary(x: &Array, op: UnaryFn) -> Array {
    Array {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&v| apply(op, v)).collect(),
    }
}

/// `x · c`.
pub fn scale(x: &Array, c: f64) -> Array {
    Array {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&v| v * c).collect(),
    }
}

/// `a + b`; `b` has `a`'s shape or a suffix of it (broadcast over the leading dims).
pub fn add(a: &Array, b: &Array) -> Result<Array, OpError> {
    broadcast("add", a, b, |x, y| x + y)
}

/// `a ⊙ b`; `b` has `a`'s shape or a suffix of it (broadcast over the leading dims).
pub fn mul(a: &Array, b: &Array) -> Result<Array, OpError> {
    broadcast("mul", a, b, |x, y| x * y)
}

fn broadcast(op: &'static str, a: &Array, b: &Array, f: impl Fn(f64, f64) -> f64) -> Result<Array, OpError> {
    consistent(op, "a", a)?;
    consistent(op, "b", b)?;
    if !a.shape.ends_with(&b.shape) {
        return Err(OpError::Shape {
            op,
            input: "b",
            expected: format!("a suffix of a's shape {:?}", a.shape),
            got: b.shape.clone(),
        });
    }
    let n = b.data.len();
    // An empty `b` is only a suffix of an empty `a`, so the zip below covers `a` exactly.
    let data = if n == 0 {
        Vec::new()
    } else {
        a.data
            .chunks(n)
            .flat_map(|row| row.iter().zip(&b.data).map(|(&x, &y)| f(x, y)))
            .collect()
    };
    Ok(Array {
        shape: a.shape.clone(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, rng, uniform};
    use super::*;

    /// Reference values from CPython's `math.erf` (glibc, < 1 ulp), printed with 17 digits.
    #[test]
    fn gelu_matches_erf_values() {
        // gelu(x) = x/2 · (1 + erf(x/√2)); right-hand values: python3 -c "import math; ..."
        let cases = [
            (0.5, 0.5 * 0.5 * (1.0 + 0.3829249225480262)),
            (-1.0, -0.5 * (1.0 - 0.6826894921370859)),
            (2.0, 0.5 * 2.0 * (1.0 + 0.9544997361036416)),
        ];
        for (x, want) in cases {
            let got = apply(UnaryFn::Gelu, x);
            // 4 ulp: the reference itself is one rounded erf plus two multiplications.
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "gelu({x}) = {got}, want {want}"
            );
        }
        // Negative tail: x·Φ(x) with Φ(−10) = 7.619853024160593e-24 (math.erfc(10/√2)/2).
        let got = apply(UnaryFn::Gelu, -10.0);
        let want = -10.0 * 7.619853024160593e-24;
        assert!((got - want).abs() <= 1e-13 * want.abs(), "gelu(-10) = {got:e}");
    }

    #[test]
    fn activations_satisfy_identities() {
        let mut r = rng(1);
        let x = uniform(&mut r, &[3, 4, 5], -6.0, 6.0);
        for &v in &x.data {
            let s = apply(UnaryFn::Sigmoid, v);
            // σ(x) + σ(−x) = 1 and silu = x·σ; f64 rounding only ⇒ 1e-15.
            assert!((s + apply(UnaryFn::Sigmoid, -v) - 1.0).abs() < 1e-15);
            assert!((apply(UnaryFn::Silu, v) - v * s).abs() < 1e-15 * (1.0 + v.abs()));
            // softplus(x) − softplus(−x) = x; ln(σ(x)) = −softplus(−x).
            let sp = apply(UnaryFn::Softplus, v);
            assert!((sp - apply(UnaryFn::Softplus, -v) - v).abs() < 1e-14);
            assert!((s.ln() + apply(UnaryFn::Softplus, -v)).abs() < 1e-14);
            // gelu(x) − gelu(−x) = x (Φ(x) + Φ(−x) = 1); tanh-GELU shares the identity.
            assert!((apply(UnaryFn::Gelu, v) - apply(UnaryFn::Gelu, -v) - v).abs() < 1e-14);
            assert!((apply(UnaryFn::GeluTanh, v) - apply(UnaryFn::GeluTanh, -v) - v).abs() < 1e-14);
            // The tanh approximation is within 1e-3 of the exact GELU (|error| ≤ ~2e-4 known).
            assert!((apply(UnaryFn::GeluTanh, v) - apply(UnaryFn::Gelu, v)).abs() < 1e-3);
            assert_eq!(apply(UnaryFn::Relu, v), if v > 0.0 { v } else { 0.0 });
            assert_eq!(apply(UnaryFn::Neg, v), -v);
            assert_eq!(apply(UnaryFn::Identity, v), v);
            assert_eq!(apply(UnaryFn::Exp, v), v.exp());
        }
        // The softplus threshold is PyTorch's: exact identity above 20.
        assert_eq!(apply(UnaryFn::Softplus, 25.0), 25.0);
        assert_eq!(apply(UnaryFn::Sigmoid, -800.0), 0.0);
        assert_eq!(apply(UnaryFn::Sigmoid, 800.0), 1.0);
        let y = unary(&x, UnaryFn::Silu);
        assert_eq!(y.shape, x.shape);
    }

    #[test]
    fn broadcast_add_mul() {
        let mut r = rng(2);
        let a = uniform(&mut r, &[2, 3, 4], -1.0, 1.0);
        let b = uniform(&mut r, &[4], -1.0, 1.0);
        let s = add(&a, &b).unwrap();
        let p = mul(&a, &b).unwrap();
        for i in 0..24 {
            assert_eq!(s.data[i], a.data[i] + b.data[i % 4]);
            assert_eq!(p.data[i], a.data[i] * b.data[i % 4]);
        }
        let same = uniform(&mut r, &[2, 3, 4], -1.0, 1.0);
        let s2 = add(&a, &same).unwrap();
        let diff = add(&s2, &scale(&same, -1.0)).unwrap();
        // (a + b) − b = a up to one rounding per element.
        assert_close(&diff, &a, 1e-15, "add then subtract");
        let scalar = Array::new(vec![], vec![2.0]);
        assert_eq!(mul(&a, &scalar).unwrap(), scale(&a, 2.0));
        let bad = uniform(&mut r, &[3], -1.0, 1.0);
        assert!(matches!(add(&a, &bad), Err(OpError::Shape { op: "add", .. })));
        let broken = Array {
            shape: vec![4],
            data: vec![1.0],
        };
        assert!(matches!(mul(&a, &broken), Err(OpError::Inconsistent { .. })));
    }
}
