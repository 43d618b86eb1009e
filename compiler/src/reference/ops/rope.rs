//! Rotary position embedding, `mistral_1d` rotate-half layout (§2.1 step 2).

use super::{dims, ensure, expect_shape, OpError};
use crate::reference::Array;

/// Rotates every head of x `[B, T, H·Dh]` by its token's position (positions `[B, T]`):
/// `inv_freq[i] = θ^(−2i/Dh)`, `a = pos·inv_freq[i]`, and for `i < Dh/2`
/// `out[i] = x[i]·cos a − x[i+Dh/2]·sin a`, `out[i+Dh/2] = x[i+Dh/2]·cos a + x[i]·sin a`.
pub fn rope(x: &Array, positions: &Array, head_dim: usize, theta: f64) -> Result<Array, OpError> {
    const OP: &str = "rope";
    let xd = dims(OP, "x", x, 3)?;
    let (b, t, c) = (xd[0], xd[1], xd[2]);
    ensure(head_dim > 0 && head_dim.is_multiple_of(2), OP, || {
        format!("head_dim {head_dim} must be even and positive")
    })?;
    ensure(c % head_dim == 0, OP, || {
        format!("channel count {c} of x is not a multiple of head_dim {head_dim}")
    })?;
    ensure(theta > 0.0, OP, || format!("theta {theta} must be positive"))?;
    expect_shape(OP, "positions", positions, &[b, t])?;
    let half = head_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| theta.powf(-2.0 * i as f64 / head_dim as f64))
        .collect();
    let mut out = x.data.clone();
    for (tok, &pos) in positions.data.iter().enumerate() {
        let (sin, cos): (Vec<f64>, Vec<f64>) = inv_freq.iter().map(|f| (pos * f).sin_cos()).unzip();
        let row = &mut out[tok * c..(tok + 1) * c];
        for head in row.chunks_mut(head_dim) {
            for i in 0..half {
                let (a, bb) = (head[i], head[i + half]);
                head[i] = a * cos[i] - bb * sin[i];
                head[i + half] = bb * cos[i] + a * sin[i];
            }
        }
    }
    Ok(Array {
        shape: x.shape.clone(),
        data: out,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{rng, uniform};
    use super::*;

    const DH: usize = 8;

    #[test]
    fn rotation_preserves_pair_norms_and_position_zero_is_identity() {
        let mut r = rng(30);
        let x = uniform(&mut r, &[2, 3, 2 * DH], -1.0, 1.0);
        let pos = uniform(&mut r, &[2, 3], 0.0, 500.0);
        let y = rope(&x, &pos, DH, 10000.0).unwrap();
        for (hx, hy) in x.data.chunks(DH).zip(y.data.chunks(DH)) {
            for i in 0..DH / 2 {
                let nx = hx[i].hypot(hx[i + DH / 2]);
                let ny = hy[i].hypot(hy[i + DH / 2]);
                // A 2×2 rotation in f64 ⇒ a few ulp.
                assert!((nx - ny).abs() < 1e-14);
            }
        }
        let zero = rope(&x, &Array::zeros(vec![2, 3]), DH, 10000.0).unwrap();
        assert_eq!(zero, x);
        // The first pair rotates by exactly pos radians (inv_freq[0] = 1).
        let p = pos.data[0];
        let (s, c) = p.sin_cos();
        assert!((y.data[0] - (x.data[0] * c - x.data[DH / 2] * s)).abs() < 1e-15);
    }

    #[test]
    fn dot_product_depends_only_on_relative_position() {
        let mut r = rng(31);
        let q = uniform(&mut r, &[1, 1, DH], -1.0, 1.0);
        let k = uniform(&mut r, &[1, 1, DH], -1.0, 1.0);
        let dot = |m: f64, n: f64| {
            let qm = rope(&q, &Array::new(vec![1, 1], vec![m]), DH, 500.0).unwrap();
            let kn = rope(&k, &Array::new(vec![1, 1], vec![n]), DH, 500.0).unwrap();
            qm.data.iter().zip(&kn.data).map(|(a, b)| a * b).sum::<f64>()
        };
        for (m, n, shift) in [(5.0, 2.0, 17.0), (0.0, 9.0, 100.0), (40.0, 40.0, 3.0)] {
            let a = dot(m, n);
            let b = dot(m + shift, n + shift);
            // Angles up to ~140 rad lose ~1e-14 absolute in sin/cos argument rounding.
            assert!((a - b).abs() < 1e-12, "m={m} n={n}: {a} vs {b}");
        }
        // And it does depend on m − n (the property is not vacuous).
        assert!((dot(5.0, 2.0) - dot(5.0, 3.0)).abs() > 1e-6);
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = Array::zeros(vec![1, 2, 12]);
        let pos = Array::zeros(vec![1, 2]);
        assert!(rope(&x, &pos, 8, 1e4).is_err());
        assert!(rope(&x, &pos, 3, 1e4).is_err());
        assert!(matches!(
            rope(&x, &Array::zeros(vec![2, 1]), 6, 1e4),
            Err(OpError::Shape { input: "positions", .. })
        ));
    }
}
