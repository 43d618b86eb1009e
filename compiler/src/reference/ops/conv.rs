//! Causal depthwise conv1d with a carried state (§2.2), shared by Mamba, GDN and KDA.

use super::{dims, expect_shape, sigmoid, OpError};
use crate::reference::Array;

/// `y[c,t] = act(b[c] + Σ_j w[c,0,j]·x[c, t−(K−1)+j])` over x `[B, T, C]` (channels last), with
/// w `[C, 1, K]`, optional bias `[C]` and state `[B, C, K−1]` supplying the inputs before t = 0
/// (`state[.., K−2]` is the most recent). `act` is SiLU when `silu`, else identity.
/// Returns (y `[B, T, C]`, state_out = the last K−1 inputs of state ++ x, same layout).
pub fn causal_conv1d(
    x: &Array,
    w: &Array,
    bias: Option<&Array>,
    state: &Array,
    silu: bool,
) -> Result<(Array, Array), OpError> {
    const OP: &str = "causal_conv1d";
    let xd = dims(OP, "x", x, 3)?;
    let (b, t, c) = (xd[0], xd[1], xd[2]);
    let wd = dims(OP, "w", w, 3)?;
    let k = wd[2];
    if wd[0] != c || wd[1] != 1 || k == 0 {
        return Err(OpError::Shape {
            op: OP,
            input: "w",
            expected: format!("[{c}, 1, K ≥ 1] (x has {c} channels)"),
            got: w.shape.clone(),
        });
    }
    if let Some(bv) = bias {
        expect_shape(OP, "bias", bv, &[c])?;
    }
    let km1 = k - 1;
    expect_shape(OP, "state", state, &[b, c, km1])?;

    // Input history of channel ch in batch bi: index i < K−1 is state, i ≥ K−1 is x[t = i−(K−1)].
    let hist = |bi: usize, ch: usize, i: usize| -> f64 {
        if i < km1 {
            state.data[(bi * c + ch) * km1 + i]
        } else {
            x.data[(bi * t + (i - km1)) * c + ch]
        }
    };
    let mut y = vec![0.0; b * t * c];
    for bi in 0..b {
        for ti in 0..t {
            for ch in 0..c {
                let taps = &w.data[ch * k..(ch + 1) * k];
                // Output t reads history indices t .. t + K − 1 (the last one is x[t]).
                let mut acc = bias.map_or(0.0, |bv| bv.data[ch]);
                for (j, wj) in taps.iter().enumerate() {
                    acc += wj * hist(bi, ch, ti + j);
                }
                y[(bi * t + ti) * c + ch] = if silu { acc * sigmoid(acc) } else { acc };
            }
        }
    }
    let mut s = vec![0.0; b * c * km1];
    for bi in 0..b {
        for ch in 0..c {
            for i in 0..km1 {
                s[(bi * c + ch) * km1 + i] = hist(bi, ch, t + i);
            }
        }
    }
    Ok((
        Array {
            shape: vec![b, t, c],
            data: y,
        },
        Array {
            shape: vec![b, c, km1],
            data: s,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, rng, time_concat, time_slice, uniform};
    use super::*;

    /// Direct formula: zero-padded input `xp[c, τ]` for τ ∈ [−(K−1), T), the state filling the
    /// padding; `y[c,t] = act(b + Σ_j w[c,j]·xp[c, t−(K−1)+j])`.
    fn direct(x: &Array, w: &Array, bias: Option<&Array>, state: &Array, silu: bool) -> Array {
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2]);
        let k = w.shape[2];
        let mut y = Array::zeros(vec![b, t, c]);
        for bi in 0..b {
            for ch in 0..c {
                let xp = |tau: i64| -> f64 {
                    if tau >= 0 {
                        x.data[(bi * t + tau as usize) * c + ch]
                    } else {
                        // τ = −1 is state[K−2], τ = −(K−1) is state[0].
                        let idx = (k as i64 - 1 + tau) as usize;
                        state.data[(bi * c + ch) * (k - 1) + idx]
                    }
                };
                for ti in 0..t {
                    let mut acc = bias.map_or(0.0, |bb| bb.data[ch]);
                    for j in 0..k {
                        acc += w.data[ch * k + j] * xp(ti as i64 - (k as i64 - 1) + j as i64);
                    }
                    y.data[(bi * t + ti) * c + ch] = if silu { acc / (1.0 + (-acc).exp()) } else { acc };
                }
            }
        }
        y
    }

    #[test]
    fn matches_direct_formula() {
        let mut r = rng(80);
        for (k, t, silu, with_bias, zero_state) in [
            (4, 9, true, false, true),
            (4, 9, false, true, false),
            (3, 2, true, true, false),
            (1, 5, true, true, false),
            (5, 1, false, false, false),
        ] {
            let x = uniform(&mut r, &[2, t, 3], -2.0, 2.0);
            let w = uniform(&mut r, &[3, 1, k], -1.0, 1.0);
            let bias = uniform(&mut r, &[3], -1.0, 1.0);
            let state = if zero_state {
                Array::zeros(vec![2, 3, k - 1])
            } else {
                uniform(&mut r, &[2, 3, k - 1], -2.0, 2.0)
            };
            let bias = with_bias.then_some(&bias);
            let (y, _) = causal_conv1d(&x, &w, bias, &state, silu).unwrap();
            // Same sums in the same order; silu's form differs ⇒ a few ulp.
            assert_close(&y, &direct(&x, &w, bias, &state, silu), 1e-14, "direct");
        }
    }

    #[test]
    fn single_steps_equal_one_call_and_short_inputs_keep_state() {
        let mut r = rng(81);
        let (k, t) = (4, 7);
        let x = uniform(&mut r, &[2, t, 5], -2.0, 2.0);
        let w = uniform(&mut r, &[5, 1, k], -1.0, 1.0);
        let bias = uniform(&mut r, &[5], -1.0, 1.0);
        let s0 = uniform(&mut r, &[2, 5, k - 1], -1.0, 1.0);
        let (y_all, s_all) = causal_conv1d(&x, &w, Some(&bias), &s0, true).unwrap();
        let mut s = s0.clone();
        let mut ys = Vec::new();
        for ti in 0..t {
            let (y, ns) = causal_conv1d(&time_slice(&x, ti, ti + 1), &w, Some(&bias), &s, true).unwrap();
            ys.push(y);
            s = ns;
        }
        // Bit-identical: each output is the same sum in the same order.
        assert_eq!(time_concat(&ys.iter().collect::<Vec<_>>()), y_all);
        assert_eq!(s, s_all);
        // Chunks shorter than K − 1 (T = 2 then T = 1 then the rest) also chain exactly.
        let (y1, s1) = causal_conv1d(&time_slice(&x, 0, 2), &w, Some(&bias), &s0, true).unwrap();
        let (y2, s2) = causal_conv1d(&time_slice(&x, 2, 3), &w, Some(&bias), &s1, true).unwrap();
        let (y3, s3) = causal_conv1d(&time_slice(&x, 3, t), &w, Some(&bias), &s2, true).unwrap();
        assert_eq!(time_concat(&[&y1, &y2, &y3]), y_all);
        assert_eq!(s3, s_all);
        // With T = 2 < K − 1 = 3 the state shifts by two: [s0[2], x0, x1] per channel.
        for bi in 0..2 {
            for ch in 0..5 {
                let row = &s1.data[(bi * 5 + ch) * 3..(bi * 5 + ch) * 3 + 3];
                assert_eq!(row[0], s0.data[(bi * 5 + ch) * 3 + 2]);
                assert_eq!(row[1], x.data[(bi * t) * 5 + ch]);
                assert_eq!(row[2], x.data[(bi * t + 1) * 5 + ch]);
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = Array::zeros(vec![1, 3, 2]);
        let w = Array::zeros(vec![2, 1, 3]);
        let s = Array::zeros(vec![1, 2, 2]);
        assert!(causal_conv1d(&x, &w, None, &s, true).is_ok());
        assert!(matches!(
            causal_conv1d(&x, &Array::zeros(vec![3, 1, 3]), None, &s, true),
            Err(OpError::Shape { input: "w", .. })
        ));
        assert!(matches!(
            causal_conv1d(&x, &Array::zeros(vec![2, 1, 0]), None, &s, true),
            Err(OpError::Shape { input: "w", .. })
        ));
        assert!(matches!(
            causal_conv1d(&x, &w, None, &Array::zeros(vec![1, 2, 3]), true),
            Err(OpError::Shape { input: "state", .. })
        ));
    }
}
