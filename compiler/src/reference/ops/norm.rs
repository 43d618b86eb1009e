//! Normalisations over groups of the last (channel) dim: RMSNorm, LayerNorm, gated RMSNorm,
//! L2 norm. A "group" is a contiguous run of channels (one head); `group = C` is a plain norm.

use super::{consistent, ensure, expect_shape, sigmoid, OpError};
use crate::reference::Array;
use crate::spec::GateActivation;

/// The gate activation of [`gated_rms_norm`] (§2.3): `g·σ(g)` or `σ(g)`.
fn activate(act: GateActivation, g: f64) -> f64 {
    match act {
        GateActivation::Silu => g * sigmoid(g),
        GateActivation::Sigmoid => sigmoid(g),
    }
}

/// Checks that the last dim of `x` is a positive multiple of `group`.
fn check_groups(op: &'static str, x: &Array, group: usize) -> Result<(), OpError> {
    consistent(op, "x", x)?;
    ensure(group > 0, op, || "group size is 0".into())?;
    let c = x.shape.last().copied();
    if c.is_none_or(|c| c % group != 0) {
        return Err(OpError::Shape {
            op,
            input: "x",
            expected: format!("[.., a multiple of the group size {group}]"),
            got: x.shape.clone(),
        });
    }
    Ok(())
}

/// `x · rsqrt(mean(x²) + eps) · w` over each group of `group` channels; w `[group]`.
pub fn rms_norm(x: &Array, w: &Array, eps: f64, group: usize) -> Result<Array, OpError> {
    const OP: &str = "rms_norm";
    check_groups(OP, x, group)?;
    expect_shape(OP, "w", w, &[group])?;
    let mut data = Vec::with_capacity(x.data.len());
    for g in x.data.chunks(group) {
        let r = rsqrt_mean_sq(g, eps);
        data.extend(g.iter().zip(&w.data).map(|(v, wv)| v * r * wv));
    }
    Ok(Array {
        shape: x.shape.clone(),
        data,
    })
}

/// `(x − mean) · rsqrt(var + eps) · w + b` over the last dim (biased variance, as PyTorch).
pub fn layer_norm(x: &Array, w: &Array, b: &Array, eps: f64) -> Result<Array, OpError> {
    const OP: &str = "layer_norm";
    let c = x.last_dim();
    check_groups(OP, x, c.max(1))?;
    expect_shape(OP, "w", w, &[c])?;
    expect_shape(OP, "b", b, &[c])?;
    let mut data = Vec::with_capacity(x.data.len());
    if c > 0 {
        for row in x.data.chunks(c) {
            let mean = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
            let r = 1.0 / (var + eps).sqrt();
            data.extend(
                row.iter()
                    .zip(w.data.iter().zip(&b.data))
                    .map(|(v, (wv, bv))| (v - mean) * r * wv + bv),
            );
        }
    }
    Ok(Array {
        shape: x.shape.clone(),
        data,
    })
}

/// `rmsnorm(x) · w · act(gate)` per group (§2.3); gate has x's shape, w `[group]` is shared
/// by all groups (heads).
pub fn gated_rms_norm(
    x: &Array,
    gate: &Array,
    w: &Array,
    eps: f64,
    group: usize,
    act: GateActivation,
) -> Result<Array, OpError> {
    const OP: &str = "gated_rms_norm";
    check_groups(OP, x, group)?;
    expect_shape(OP, "gate", gate, &x.shape)?;
    expect_shape(OP, "w", w, &[group])?;
    let mut data = Vec::with_capacity(x.data.len());
    for (g, z) in x.data.chunks(group).zip(gate.data.chunks(group)) {
        let r = rsqrt_mean_sq(g, eps);
        data.extend(
            g.iter()
                .zip(&w.data)
                .zip(z)
                .map(|((v, wv), zv)| v * r * wv * activate(act, *zv)),
        );
    }
    Ok(Array {
        shape: x.shape.clone(),
        data,
    })
}

/// `x · rsqrt(Σx² + eps)` per group (FLA's in-kernel q/k normalisation, eps 1e-6).
pub fn l2_norm(x: &Array, group: usize, eps: f64) -> Result<Array, OpError> {
    const OP: &str = "l2_norm";
    check_groups(OP, x, group)?;
    let mut data = Vec::with_capacity(x.data.len());
    for g in x.data.chunks(group) {
        let r = 1.0 / (g.iter().map(|v| v * v).sum::<f64>() + eps).sqrt();
        data.extend(g.iter().map(|v| v * r));
    }
    Ok(Array {
        shape: x.shape.clone(),
        data,
    })
}

fn rsqrt_mean_sq(g: &[f64], eps: f64) -> f64 {
    let ms = g.iter().map(|v| v * v).sum::<f64>() / g.len() as f64;
    1.0 / (ms + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{rng, uniform};
    use super::*;

    #[test]
    fn rms_norm_of_constant_groups_is_sign_times_weight() {
        let mut r = rng(20);
        let w = uniform(&mut r, &[4], 0.5, 2.0);
        // Two groups of 4 per row, each constant: rmsnorm(c·1) = c/sqrt(c²+eps) · w.
        let consts = [3.0, -0.5, 7.0, 1e-3];
        let data: Vec<f64> = consts.iter().flat_map(|&c| [c; 4]).collect();
        let x = Array::new(vec![2, 8], data);
        let eps = 1e-5;
        let y = rms_norm(&x, &w, eps, 4).unwrap();
        for (k, &c) in consts.iter().enumerate() {
            for i in 0..4 {
                let want = c / (c * c + eps).sqrt() * w.data[i];
                // A handful of roundings in f64 ⇒ 1e-14 relative.
                assert!((y.data[k * 4 + i] - want).abs() < 1e-14 * want.abs().max(1e-300));
            }
        }
        assert!(matches!(
            rms_norm(&x, &w, eps, 3),
            Err(OpError::Shape { op: "rms_norm", .. })
        ));
        assert!(matches!(
            rms_norm(&x, &w, eps, 8),
            Err(OpError::Shape { input: "w", .. })
        ));
        assert!(matches!(rms_norm(&x, &w, eps, 0), Err(OpError::Param { .. })));
    }

    #[test]
    fn rms_norm_output_has_unit_rms_with_unit_weight() {
        let mut r = rng(21);
        let x = uniform(&mut r, &[3, 2, 12], -4.0, 4.0);
        let y = rms_norm(&x, &Array::new(vec![6], vec![1.0; 6]), 0.0, 6).unwrap();
        for g in y.data.chunks(6) {
            let ms = g.iter().map(|v| v * v).sum::<f64>() / 6.0;
            assert!((ms - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn layer_norm_standardises() {
        let mut r = rng(22);
        let x = uniform(&mut r, &[2, 3, 10], -3.0, 5.0);
        let ones = Array::new(vec![10], vec![1.0; 10]);
        let zeros = Array::zeros(vec![10]);
        let y = layer_norm(&x, &ones, &zeros, 0.0).unwrap();
        for row in y.data.chunks(10) {
            let mean = row.iter().sum::<f64>() / 10.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 10.0;
            assert!(mean.abs() < 1e-14 && (var - 1.0).abs() < 1e-14);
        }
        let w = uniform(&mut r, &[10], -1.0, 1.0);
        let b = uniform(&mut r, &[10], -1.0, 1.0);
        let z = layer_norm(&x, &w, &b, 0.0).unwrap();
        for (i, (zv, yv)) in z.data.iter().zip(&y.data).enumerate() {
            assert!((zv - (yv * w.data[i % 10] + b.data[i % 10])).abs() < 1e-14);
        }
    }

    #[test]
    fn gated_norm_is_norm_times_activated_gate() {
        let mut r = rng(23);
        let x = uniform(&mut r, &[2, 3, 8], -2.0, 2.0);
        let gate = uniform(&mut r, &[2, 3, 8], -3.0, 3.0);
        let w = uniform(&mut r, &[4], 0.5, 1.5);
        let base = rms_norm(&x, &w, 1e-6, 4).unwrap();
        for (act, f) in [
            (
                GateActivation::Silu,
                (|g: f64| g / (1.0 + (-g).exp())) as fn(f64) -> f64,
            ),
            (GateActivation::Sigmoid, |g: f64| 1.0 / (1.0 + (-g).exp())),
        ] {
            let y = gated_rms_norm(&x, &gate, &w, 1e-6, 4, act).unwrap();
            for i in 0..y.data.len() {
                let want = base.data[i] * f(gate.data[i]);
                assert!((y.data[i] - want).abs() < 1e-14, "{act:?} at {i}");
            }
        }
        let short_gate = uniform(&mut r, &[2, 3, 4], 0.0, 1.0);
        assert!(matches!(
            gated_rms_norm(&x, &short_gate, &w, 1e-6, 4, GateActivation::Silu),
            Err(OpError::Shape { input: "gate", .. })
        ));
    }

    #[test]
    fn l2_norm_gives_unit_groups() {
        let mut r = rng(24);
        let x = uniform(&mut r, &[2, 5, 12], -3.0, 3.0);
        let y = l2_norm(&x, 4, 0.0).unwrap();
        for (g, xg) in y.data.chunks(4).zip(x.data.chunks(4)) {
            assert!((g.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-14);
            // Same direction: a positive multiple of the input.
            let ratio = g[0] / xg[0];
            assert!(ratio > 0.0 && g.iter().zip(xg).all(|(a, b)| (a - ratio * b).abs() < 1e-14));
        }
        // eps keeps a zero group finite (and zero).
        let z = l2_norm(&Array::zeros(vec![1, 4]), 4, 1e-6).unwrap();
        assert!(z.data.iter().all(|v| *v == 0.0));
    }
}
