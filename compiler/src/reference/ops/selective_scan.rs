//! Mamba-1 selective scan, M1 grouped-x/B variant (§2.6 step 5). z-gating happens outside.

use super::{dims, ensure, expect_shape, OpError};
use crate::reference::Array;

/// u, delta (already softplus'ed), c `[B, T, Di]`; a_log `[Di, N]`; b `[B, T, Gx·N]`; d `[Di]`;
/// state `[B, Di, N]` → (y `[B, T, Di]`, state_out). Channel `ch` is in head `h = ch / N`
/// (`Hc = Di / N` heads, `r = Hc / Gx`), reads `B_h = b[(h/r)·N ..+N]` and `C_h = c[h·N ..+N]`;
/// `s ← exp(Δ·A) ⊙ s + Δ·u·B_h`, `y = ⟨s, C_h⟩ + D·u` with `A = −exp(a_log)`.
#[allow(clippy::too_many_arguments)]
pub fn selective_scan(
    u: &Array,
    delta: &Array,
    a_log: &Array,
    b: &Array,
    c: &Array,
    d: &Array,
    state: &Array,
    n: usize,
) -> Result<(Array, Array), OpError> {
    const OP: &str = "selective_scan";
    let ud = dims(OP, "u", u, 3)?;
    let (bs, t, di) = (ud[0], ud[1], ud[2]);
    ensure(n > 0, OP, || "state size N is 0".into())?;
    ensure(di % n == 0, OP, || {
        format!("inner size {di} is not a multiple of the state size {n}")
    })?;
    let hc = di / n;
    let bd = dims(OP, "b", b, 3)?;
    let bc = bd[2];
    ensure(bc % n == 0 && bc > 0 && hc.is_multiple_of(bc / n), OP, || {
        format!("b has {bc} channels: need Gx·N with Gx dividing the {hc} heads (N = {n})")
    })?;
    let gx = bc / n;
    let r = hc / gx;
    expect_shape(OP, "delta", delta, &[bs, t, di])?;
    expect_shape(OP, "a_log", a_log, &[di, n])?;
    expect_shape(OP, "b", b, &[bs, t, bc])?;
    expect_shape(OP, "c", c, &[bs, t, di])?;
    expect_shape(OP, "d", d, &[di])?;
    expect_shape(OP, "state", state, &[bs, di, n])?;

    let a: Vec<f64> = a_log.data.iter().map(|x| -x.exp()).collect();
    let mut s = state.data.clone();
    let mut y = vec![0.0; bs * t * di];
    for bi in 0..bs {
        for ti in 0..t {
            let tok = bi * t + ti;
            for ch in 0..di {
                let h = ch / n;
                let bh = &b.data[tok * bc + (h / r) * n..tok * bc + (h / r + 1) * n];
                let chh = &c.data[tok * di + h * n..tok * di + (h + 1) * n];
                let (uv, dt) = (u.data[tok * di + ch], delta.data[tok * di + ch]);
                let sc = &mut s[(bi * di + ch) * n..(bi * di + ch + 1) * n];
                let mut acc = 0.0;
                for j in 0..n {
                    sc[j] = (dt * a[ch * n + j]).exp() * sc[j] + dt * uv * bh[j];
                    acc += sc[j] * chh[j];
                }
                y[tok * di + ch] = acc + d.data[ch] * uv;
            }
        }
    }
    Ok((
        Array {
            shape: vec![bs, t, di],
            data: y,
        },
        Array {
            shape: vec![bs, di, n],
            data: s,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{rng, time_slice, uniform};
    use super::*;

    struct Inputs {
        u: Array,
        delta: Array,
        a_log: Array,
        b: Array,
        c: Array,
        d: Array,
        s0: Array,
    }

    /// Di = 12, N = 3 ⇒ Hc = 4 heads; Gx = 2 ⇒ r = 2.
    const DI: usize = 12;
    const N: usize = 3;
    const GX: usize = 2;

    fn inputs(seed: u64, bs: usize, t: usize) -> Inputs {
        let mut r = rng(seed);
        Inputs {
            u: uniform(&mut r, &[bs, t, DI], -1.0, 1.0),
            delta: uniform(&mut r, &[bs, t, DI], 0.01, 1.5),
            a_log: uniform(&mut r, &[DI, N], -1.0, 1.5),
            b: uniform(&mut r, &[bs, t, GX * N], -1.0, 1.0),
            c: uniform(&mut r, &[bs, t, DI], -1.0, 1.0),
            d: uniform(&mut r, &[DI], -1.0, 1.0),
            s0: uniform(&mut r, &[bs, DI, N], -1.0, 1.0),
        }
    }

    fn run(x: &Inputs) -> (Array, Array) {
        selective_scan(&x.u, &x.delta, &x.a_log, &x.b, &x.c, &x.d, &x.s0, N).unwrap()
    }

    /// Independent per-element loop: state indexed [b][channel][n] as nested vectors, the
    /// B/C heads located by explicit group arithmetic (Hc = 4 heads, heads 0,1 → B group 0,
    /// heads 2,3 → B group 1).
    #[test]
    fn matches_direct_loop() {
        let (bs, t) = (2, 6);
        let x = inputs(500, bs, t);
        let (y, s_out) = run(&x);
        let heads_per_group = (DI / N) / GX;
        for bi in 0..bs {
            for ch in 0..DI {
                let head = ch / N;
                let bgroup = head / heads_per_group;
                let mut st: Vec<f64> = (0..N).map(|j| x.s0.data[(bi * DI + ch) * N + j]).collect();
                for ti in 0..t {
                    let at = |a: &Array, w: usize, i: usize| a.data[(bi * t + ti) * w + i];
                    let dt = at(&x.delta, DI, ch);
                    let uu = at(&x.u, DI, ch);
                    let mut out = x.d.data[ch] * uu;
                    for (j, sj) in st.iter_mut().enumerate() {
                        let aa = -x.a_log.data[ch * N + j].exp();
                        *sj = *sj * (aa * dt).exp() + dt * at(&x.b, GX * N, bgroup * N + j) * uu;
                        out += *sj * at(&x.c, DI, head * N + j);
                    }
                    // Same arithmetic, different accumulation order ⇒ a few ulp.
                    let got = y.data[(bi * t + ti) * DI + ch];
                    assert!((got - out).abs() < 1e-14, "b{bi} t{ti} ch{ch}");
                }
                for (j, sj) in st.iter().enumerate() {
                    assert!((s_out.data[(bi * DI + ch) * N + j] - sj).abs() < 1e-14);
                }
            }
        }
    }

    #[test]
    fn split_invariance() {
        let t = 11;
        let x = inputs(501, 2, t);
        let (y_all, s_all) = run(&x);
        for a in [1, 4, 10] {
            let part = |lo, hi, s0: Array| Inputs {
                u: time_slice(&x.u, lo, hi),
                delta: time_slice(&x.delta, lo, hi),
                a_log: x.a_log.clone(),
                b: time_slice(&x.b, lo, hi),
                c: time_slice(&x.c, lo, hi),
                d: x.d.clone(),
                s0,
            };
            let (y1, s1) = run(&part(0, a, x.s0.clone()));
            let (y2, s2) = run(&part(a, t, s1));
            // Identical operations in identical order ⇒ bit-exact.
            assert_eq!(y1, time_slice(&y_all, 0, a));
            assert_eq!(y2, time_slice(&y_all, a, t));
            assert_eq!(s2, s_all);
        }
        // Sanity that the comparison is not vacuous: the state does carry information.
        let (y_cold, _) = run(&Inputs {
            s0: Array::zeros(vec![2, DI, N]),
            ..inputs(501, 2, t)
        });
        let diff = y_cold.data.iter().zip(&y_all.data).any(|(a, b)| (a - b).abs() > 1e-6);
        assert!(diff);
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = inputs(502, 1, 2);
        assert!(matches!(
            selective_scan(&x.u, &x.delta, &x.a_log, &x.b, &x.c, &x.d, &x.s0, 5),
            Err(OpError::Param { .. })
        ));
        let b3 = Array::zeros(vec![1, 2, 3 * N]);
        assert!(matches!(
            selective_scan(&x.u, &x.delta, &x.a_log, &b3, &x.c, &x.d, &x.s0, N),
            Err(OpError::Param { .. })
        ));
        assert!(matches!(
            selective_scan(&x.u, &x.delta, &x.a_log, &x.b, &x.c, &x.d, &x.u, N),
            Err(OpError::Shape { input: "state", .. })
        ));
    }
}
