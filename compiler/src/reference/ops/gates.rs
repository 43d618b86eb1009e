//! Small per-channel gate computations of the recurrent mixers: the log-space decay gate of
//! GDN/KDA (§2.4 step 4, §2.5 step 2) and Mamba's x/B group repeat (§2.6 step 2).

use super::{dims, ensure, expect_shape, softplus, OpError};
use crate::reference::Array;

/// `g[h, i] = −exp(a_log[h]) · softplus(f[h, i] + dt_bias[h·G + i])` over f `[B, T, H·G]`,
/// a_log `[H]`, dt_bias `[H·G]`. KDA: G = head dim (per-channel decay); GDN: G = 1.
pub fn decay_gate(f: &Array, a_log: &Array, dt_bias: &Array, group: usize) -> Result<Array, OpError> {
    const OP: &str = "decay_gate";
    let fd = dims(OP, "f", f, 3)?;
    let c = fd[2];
    ensure(group > 0, OP, || "group size is 0".into())?;
    ensure(c % group == 0, OP, || {
        format!("f has {c} channels, not a multiple of the group size {group}")
    })?;
    expect_shape(OP, "a_log", a_log, &[c / group])?;
    expect_shape(OP, "dt_bias", dt_bias, &[c])?;
    let data = f
        .data
        .iter()
        .enumerate()
        .map(|(idx, &fv)| {
            let ch = idx % c;
            -a_log.data[ch / group].exp() * softplus(fv + dt_bias.data[ch])
        })
        .collect();
    Ok(Array {
        shape: f.shape.clone(),
        data,
    })
}

/// Repeats each group of `n` channels `repeats` times: x `[B, T, Gx·n]` → `[B, T, Gx·r·n]`,
/// output channel `h·n + j` taking `x[(h / r)·n + j]`.
pub fn repeat_groups(x: &Array, n: usize, repeats: usize) -> Result<Array, OpError> {
    const OP: &str = "repeat_groups";
    let xd = dims(OP, "x", x, 3)?;
    let c = xd[2];
    ensure(n > 0, OP, || "group size n is 0".into())?;
    ensure(c % n == 0, OP, || {
        format!("x has {c} channels, not a multiple of the group size {n}")
    })?;
    let mut data = Vec::with_capacity(x.data.len() * repeats);
    if c > 0 {
        for row in x.data.chunks(c) {
            for group in row.chunks(n) {
                for _ in 0..repeats {
                    data.extend_from_slice(group);
                }
            }
        }
    }
    Ok(Array {
        shape: vec![xd[0], xd[1], c * repeats],
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{rng, uniform};
    use super::*;

    #[test]
    fn decay_gate_formula_per_channel_and_scalar() {
        let mut r = rng(90);
        for (h, g) in [(3, 4), (5, 1)] {
            let f = uniform(&mut r, &[2, 3, h * g], -30.0, 30.0);
            let a_log = uniform(&mut r, &[h], -1.0, 2.0);
            let dt = uniform(&mut r, &[h * g], -1.0, 1.0);
            let out = decay_gate(&f, &a_log, &dt, g).unwrap();
            for (idx, &o) in out.data.iter().enumerate() {
                let ch = idx % (h * g);
                let z = f.data[idx] + dt.data[ch];
                // Invert the gate: sp = −g / exp(a_log) must satisfy e^sp − 1 = e^z (the defining
                // identity of ln(1 + e^z)), or sp = z above PyTorch's threshold 20.
                let sp = -o / a_log.data[ch / g].exp();
                if z > 20.0 {
                    assert!((sp - z).abs() <= 1e-14 * z, "{idx}: threshold branch");
                } else {
                    // Relative error of expm1(sp) ≈ (1 + sp)·ε-level ⇒ 1e-13 for sp ≤ 21.
                    assert!((sp.exp_m1() - z.exp()).abs() <= 1e-13 * z.exp(), "{idx}: z = {z}");
                }
                assert!(o <= 0.0);
            }
        }
        let f = Array::zeros(vec![1, 1, 6]);
        assert!(decay_gate(&f, &Array::zeros(vec![2]), &Array::zeros(vec![6]), 4).is_err());
        assert!(matches!(
            decay_gate(&f, &Array::zeros(vec![3]), &Array::zeros(vec![3]), 2),
            Err(OpError::Shape { input: "dt_bias", .. })
        ));
    }

    #[test]
    fn repeat_groups_follows_the_index_rule() {
        let mut r = rng(91);
        let (gx, n, rep) = (2, 3, 3);
        let x = uniform(&mut r, &[2, 4, gx * n], -1.0, 1.0);
        let y = repeat_groups(&x, n, rep).unwrap();
        let co = gx * rep * n;
        assert_eq!(y.shape, vec![2, 4, co]);
        for tok in 0..8 {
            for h in 0..gx * rep {
                for j in 0..n {
                    assert_eq!(y.data[tok * co + h * n + j], x.data[tok * gx * n + (h / rep) * n + j]);
                }
            }
        }
        assert!(repeat_groups(&x, 4, 2).is_err());
    }
}
