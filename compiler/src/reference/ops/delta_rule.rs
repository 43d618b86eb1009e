//! The gated delta rule shared by GDN (scalar decay per head, §2.4) and KDA (per-channel decay,
//! §2.5): a per-token recurrent form and the chunked WY/UT form of §2.8 / kernels.md §4.3. The
//! two are the same function; the chunked one is the blueprint of the GPU prefill kernel.
//!
//! Inputs are already prepared by separate IR ops: q and k L2-normalised, q scaled, g the
//! log-space decay (≤ 0 in practice), beta the write strength (already σ'ed).

use super::{dims, ensure, expect_shape, OpError};
use crate::ir::{DecayKind, DeltaRuleParams};
use crate::reference::Array;

/// Validated sizes plus the inputs, with per-head accessors.
struct Problem<'a> {
    b: usize,
    t: usize,
    hk: usize,
    hv: usize,
    dk: usize,
    dv: usize,
    kind: DecayKind,
    q: &'a Array,
    k: &'a Array,
    v: &'a Array,
    g: &'a Array,
    beta: &'a Array,
}

/// One (batch, value head) slice of the inputs, as dense per-token vectors.
struct Head {
    q: Vec<Vec<f64>>,
    k: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    /// Per token, Dk log-decays (a scalar gate repeated Dk times).
    g: Vec<Vec<f64>>,
    beta: Vec<f64>,
}

impl<'a> Problem<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        op: &'static str,
        q: &'a Array,
        k: &'a Array,
        v: &'a Array,
        g: &'a Array,
        beta: &'a Array,
        state: &Array,
        cfg: &DeltaRuleParams,
    ) -> Result<Self, OpError> {
        let (hk, hv, dk, dv) = (cfg.key_heads, cfg.value_heads, cfg.key_dim, cfg.value_dim);
        ensure(hk > 0 && hv > 0 && dk > 0 && dv > 0, op, || {
            format!("key_heads {hk}, value_heads {hv}, key_dim {dk}, value_dim {dv} must be positive")
        })?;
        ensure(hv % hk == 0, op, || {
            format!("value_heads {hv} is not a multiple of key_heads {hk}")
        })?;
        let qd = dims(op, "q", q, 3)?;
        let (b, t) = (qd[0], qd[1]);
        expect_shape(op, "q", q, &[b, t, hk * dk])?;
        expect_shape(op, "k", k, &[b, t, hk * dk])?;
        expect_shape(op, "v", v, &[b, t, hv * dv])?;
        let gc = match cfg.decay {
            DecayKind::Scalar => hv,
            DecayKind::PerChannel => hv * dk,
        };
        expect_shape(op, "g", g, &[b, t, gc])?;
        expect_shape(op, "beta", beta, &[b, t, hv])?;
        expect_shape(op, "state", state, &[b, hv, dk, dv])?;
        Ok(Problem {
            b,
            t,
            hk,
            hv,
            dk,
            dv,
            kind: cfg.decay,
            q,
            k,
            v,
            g,
            beta,
        })
    }

    fn head(&self, bi: usize, vh: usize) -> Head {
        let (t, dk, dv) = (self.t, self.dk, self.dv);
        let kh = vh / (self.hv / self.hk);
        let tok = |ti: usize| bi * t + ti;
        let slice = |a: &Array, width: usize, off: usize, len: usize| -> Vec<Vec<f64>> {
            (0..t)
                .map(|ti| a.data[tok(ti) * width + off..tok(ti) * width + off + len].to_vec())
                .collect()
        };
        let g = match self.kind {
            DecayKind::Scalar => (0..t).map(|ti| vec![self.g.data[tok(ti) * self.hv + vh]; dk]).collect(),
            DecayKind::PerChannel => slice(self.g, self.hv * dk, vh * dk, dk),
        };
        Head {
            q: slice(self.q, self.hk * dk, kh * dk, dk),
            k: slice(self.k, self.hk * dk, kh * dk, dk),
            v: slice(self.v, self.hv * dv, vh * dv, dv),
            g,
            beta: (0..t).map(|ti| self.beta.data[tok(ti) * self.hv + vh]).collect(),
        }
    }

    /// Runs `per_head(head, S)` (S `[Dk][Dv]`, updated in place, returns per-token outputs) for
    /// every (batch, value head) and assembles (o, state_out).
    fn run(&self, state: &Array, per_head: impl Fn(&Head, &mut [Vec<f64>]) -> Vec<Vec<f64>>) -> (Array, Array) {
        let (b, t, hv, dk, dv) = (self.b, self.t, self.hv, self.dk, self.dv);
        let mut o = vec![0.0; b * t * hv * dv];
        let mut s_out = vec![0.0; b * hv * dk * dv];
        for bi in 0..b {
            for vh in 0..hv {
                let base = (bi * hv + vh) * dk * dv;
                let mut s: Vec<Vec<f64>> = state.data[base..base + dk * dv]
                    .chunks(dv)
                    .map(<[f64]>::to_vec)
                    .collect();
                let outs = per_head(&self.head(bi, vh), &mut s);
                for (ti, ov) in outs.iter().enumerate() {
                    let off = ((bi * t + ti) * hv + vh) * dv;
                    o[off..off + dv].copy_from_slice(ov);
                }
                for (i, row) in s.iter().enumerate() {
                    s_out[base + i * dv..base + (i + 1) * dv].copy_from_slice(row);
                }
            }
        }
        (
            Array {
                shape: vec![b, t, hv * dv],
                data: o,
            },
            Array {
                shape: vec![b, hv, dk, dv],
                data: s_out,
            },
        )
    }
}

/// Per-token gated delta rule: `S ← diag(exp g_t)·S`; `S ← S + β_t k_t ⊗ (v_t − Sᵀk_t)`;
/// `o_t = Sᵀq_t`. q, k `[B, T, Hk·Dk]`, v `[B, T, Hv·Dv]`, g `[B, T, Hv]` or `[B, T, Hv·Dk]`,
/// beta `[B, T, Hv]`, state `[B, Hv, Dk, Dv]` → (o `[B, T, Hv·Dv]`, state_out).
pub fn delta_rule_recurrent(
    q: &Array,
    k: &Array,
    v: &Array,
    g: &Array,
    beta: &Array,
    state: &Array,
    cfg: &DeltaRuleParams,
) -> Result<(Array, Array), OpError> {
    let p = Problem::new("delta_rule_recurrent", q, k, v, g, beta, state, cfg)?;
    Ok(p.run(state, |h, s| {
        let dv = p.dv;
        let mut outs = Vec::with_capacity(p.t);
        for ti in 0..p.t {
            for (row, gi) in s.iter_mut().zip(&h.g[ti]) {
                let a = gi.exp();
                row.iter_mut().for_each(|x| *x *= a);
            }
            let (kt, vt) = (&h.k[ti], &h.v[ti]);
            let delta: Vec<f64> = (0..dv)
                .map(|e| {
                    let sk: f64 = kt.iter().zip(s.iter()).map(|(ki, row)| ki * row[e]).sum();
                    h.beta[ti] * (vt[e] - sk)
                })
                .collect();
            for (row, ki) in s.iter_mut().zip(kt) {
                row.iter_mut().zip(&delta).for_each(|(x, d)| *x += ki * d);
            }
            outs.push(transpose_times(s, &h.q[ti], dv));
        }
        outs
    }))
}

/// The same function computed chunk by chunk (WY representation / UT transform, §2.8). Chunks of
/// `chunk` tokens (≥ 1); the last one may be shorter. Within a chunk, with `G` the cumulative
/// log-decay from the chunk start, `M[c,i] = β_c Σ_d k_c,d k_i,d e^{G_c,d − G_i,d}` (i < c) and
/// `T = (I + M)⁻¹·diag(β)` by forward substitution; `w = T·(e^G ⊙ k)`, `u = T·v`;
/// `v' = u − w·S`; `o = (q ⊙ e^G)·S + (q kᵀ with decay, i ≤ c)·v'`;
/// `S ← e^{G_last} ⊙ S + (e^{G_last − G} ⊙ k)ᵀ·v'`. Only differences `G_c − G_i` (c ≥ i) and
/// `G_c` itself are exponentiated, all ≤ 0 for decays ≤ 0, so nothing overflows.
#[allow(clippy::too_many_arguments)]
pub fn delta_rule_chunked(
    q: &Array,
    k: &Array,
    v: &Array,
    g: &Array,
    beta: &Array,
    state: &Array,
    cfg: &DeltaRuleParams,
    chunk: usize,
) -> Result<(Array, Array), OpError> {
    const OP: &str = "delta_rule_chunked";
    ensure(chunk > 0, OP, || "chunk size is 0".into())?;
    let p = Problem::new(OP, q, k, v, g, beta, state, cfg)?;
    Ok(p.run(state, |h, s| {
        let mut outs = Vec::with_capacity(p.t);
        let mut start = 0;
        while start < p.t {
            let end = (start + chunk).min(p.t);
            outs.extend(chunk_step(h, start, end, s, p.dk, p.dv));
            start = end;
        }
        outs
    }))
}

/// Processes tokens `[lo, hi)` of one head, updating `s`; returns their outputs.
fn chunk_step(h: &Head, lo: usize, hi: usize, s: &mut [Vec<f64>], dk: usize, dv: usize) -> Vec<Vec<f64>> {
    let n = hi - lo;
    let (q, k, v, beta) = (&h.q[lo..hi], &h.k[lo..hi], &h.v[lo..hi], &h.beta[lo..hi]);
    // Cumulative log-decay within the chunk.
    let mut gcum: Vec<Vec<f64>> = Vec::with_capacity(n);
    let mut running = vec![0.0; dk];
    for gt in &h.g[lo..hi] {
        running.iter_mut().zip(gt).for_each(|(r, x)| *r += x);
        gcum.push(running.clone());
    }
    // Σ_d x_c,d · k_i,d · e^{G_c,d − G_i,d} (i ≤ c).
    let decayed_dot = |x: &[f64], c: usize, i: usize| -> f64 {
        (0..dk).map(|d| x[d] * k[i][d] * (gcum[c][d] - gcum[i][d]).exp()).sum()
    };
    // a = −M (strictly lower), then row-wise forward substitution
    // a[c,:c] += a[c,:c]·a[:c,:c] turns it into (I + M)⁻¹ − I.
    let mut a = vec![vec![0.0; n]; n];
    for c in 0..n {
        let row: Vec<f64> = (0..c).map(|i| -beta[c] * decayed_dot(&k[c], c, i)).collect();
        for j in 0..c {
            a[c][j] = row[j] + (j + 1..c).map(|i| row[i] * a[i][j]).sum::<f64>();
        }
    }
    // T = (a + I)·diag(β).
    let tmat = |c: usize, j: usize| -> f64 { (if c == j { 1.0 } else { a[c][j] }) * beta[j] };
    let mut w = vec![vec![0.0; dk]; n];
    let mut u = vec![vec![0.0; dv]; n];
    for c in 0..n {
        for j in 0..=c {
            let tcj = tmat(c, j);
            for d in 0..dk {
                w[c][d] += tcj * gcum[j][d].exp() * k[j][d];
            }
            for e in 0..dv {
                u[c][e] += tcj * v[j][e];
            }
        }
    }
    // v' = u − w·S.
    let vnew: Vec<Vec<f64>> = (0..n)
        .map(|c| {
            let ws = transpose_times(s, &w[c], dv);
            u[c].iter().zip(&ws).map(|(x, y)| x - y).collect()
        })
        .collect();
    let outs = (0..n)
        .map(|c| {
            let qg: Vec<f64> = (0..dk).map(|d| q[c][d] * gcum[c][d].exp()).collect();
            let mut o = transpose_times(s, &qg, dv);
            for (i, vi) in vnew.iter().enumerate().take(c + 1) {
                let aqk = decayed_dot(&q[c], c, i);
                o.iter_mut().zip(vi).for_each(|(x, y)| *x += aqk * y);
            }
            o
        })
        .collect();
    let last = n - 1;
    for d in 0..dk {
        let decay = gcum[last][d].exp();
        for e in 0..dv {
            let inflow: f64 = (0..n)
                .map(|i| (gcum[last][d] - gcum[i][d]).exp() * k[i][d] * vnew[i][e])
                .sum();
            s[d][e] = decay * s[d][e] + inflow;
        }
    }
    outs
}

/// `Sᵀx` for S `[Dk][Dv]` and x `[Dk]`.
fn transpose_times(s: &[Vec<f64>], x: &[f64], dv: usize) -> Vec<f64> {
    (0..dv)
        .map(|e| s.iter().zip(x).map(|(row, xi)| row[e] * xi).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::norm::l2_norm;
    use super::super::test_util::{assert_close, rng, time_slice, uniform};
    use super::*;

    struct Inputs {
        q: Array,
        k: Array,
        v: Array,
        g: Array,
        beta: Array,
        s0: Array,
    }

    /// q, k unit per key head (q scaled by Dk^−½ as the IR does), decays in `[glo, ghi)`.
    fn inputs(seed: u64, b: usize, t: usize, cfg: &DeltaRuleParams, glo: f64, ghi: f64) -> Inputs {
        let mut r = rng(seed);
        let (hk, hv, dk, dv) = (cfg.key_heads, cfg.value_heads, cfg.key_dim, cfg.value_dim);
        let q = l2_norm(&uniform(&mut r, &[b, t, hk * dk], -1.0, 1.0), dk, 1e-6).unwrap();
        let q = super::super::elementwise::scale(&q, (dk as f64).powf(-0.5));
        let k = l2_norm(&uniform(&mut r, &[b, t, hk * dk], -1.0, 1.0), dk, 1e-6).unwrap();
        let gc = match cfg.decay {
            DecayKind::Scalar => hv,
            DecayKind::PerChannel => hv * dk,
        };
        Inputs {
            q,
            k,
            v: uniform(&mut r, &[b, t, hv * dv], -1.0, 1.0),
            g: uniform(&mut r, &[b, t, gc], glo, ghi),
            beta: uniform(&mut r, &[b, t, hv], 0.05, 1.0),
            s0: uniform(&mut r, &[b, hv, dk, dv], -1.0, 1.0),
        }
    }

    const GDN: DeltaRuleParams = DeltaRuleParams {
        key_heads: 2,
        value_heads: 4,
        key_dim: 5,
        value_dim: 3,
        decay: DecayKind::Scalar,
    };
    const KDA: DeltaRuleParams = DeltaRuleParams {
        key_heads: 3,
        value_heads: 3,
        key_dim: 4,
        value_dim: 4,
        decay: DecayKind::PerChannel,
    };
    /// Grouped value heads with a per-channel gate (FLA allows HV a multiple of H for KDA).
    const KDA_GROUPED: DeltaRuleParams = DeltaRuleParams {
        key_heads: 1,
        value_heads: 2,
        key_dim: 3,
        value_dim: 5,
        decay: DecayKind::PerChannel,
    };

    fn slice_all(x: &Inputs, lo: usize, hi: usize, s0: Array) -> Inputs {
        Inputs {
            q: time_slice(&x.q, lo, hi),
            k: time_slice(&x.k, lo, hi),
            v: time_slice(&x.v, lo, hi),
            g: time_slice(&x.g, lo, hi),
            beta: time_slice(&x.beta, lo, hi),
            s0,
        }
    }

    fn rec(x: &Inputs, cfg: &DeltaRuleParams) -> (Array, Array) {
        delta_rule_recurrent(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.s0, cfg).unwrap()
    }

    fn chk(x: &Inputs, cfg: &DeltaRuleParams, c: usize) -> (Array, Array) {
        delta_rule_chunked(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.s0, cfg, c).unwrap()
    }

    /// Chunked vs recurrent: a different algorithm (triangular solve of I + M with |M| ≲ 1 over
    /// ≤ 64 rows) in f64; observed errors are < 1e-14, 1e-10 relative leaves wide margin.
    #[test]
    fn chunked_matches_recurrent() {
        let mut seed = 100;
        for (name, cfg) in [("gdn", GDN), ("kda", KDA), ("kda grouped", KDA_GROUPED)] {
            for t in [1, 5, 17, 70] {
                let x = inputs(seed, 2, t, &cfg, -0.6, -0.01);
                seed += 1;
                let (o_r, s_r) = rec(&x, &cfg);
                for c in [1, 3, 4, 16, 64] {
                    let (o_c, s_c) = chk(&x, &cfg, c);
                    let what = format!("{name} T={t} chunk={c}");
                    assert_close(&o_c, &o_r, 1e-10, &format!("{what} output"));
                    assert_close(&s_c, &s_r, 1e-10, &format!("{what} state"));
                }
            }
        }
    }

    /// Strong decays (cumulative log-decay down to −1300 in a 64-chunk): the chunked form must
    /// stay finite and exact, which needs exp of differences, never of −G alone.
    #[test]
    fn chunked_is_safe_under_strong_decay() {
        for (i, cfg) in [GDN, KDA].iter().enumerate() {
            let x = inputs(150 + i as u64, 1, 70, cfg, -20.0, -5.0);
            let (o_r, s_r) = rec(&x, cfg);
            let (o_c, s_c) = chk(&x, cfg, 64);
            assert!(o_c.data.iter().chain(&s_c.data).all(|v| v.is_finite()));
            assert_close(&o_c, &o_r, 1e-10, "strong decay output");
            assert_close(&s_c, &s_r, 1e-10, "strong decay state");
        }
    }

    /// The recurrence in closed matrix form, written independently with dense matrices:
    /// `S_t = (I − β k kᵀ)·Diag(α_t)·S_{t−1} + β k vᵀ`, `o_t = S_tᵀ q_t`.
    #[test]
    #[allow(clippy::needless_range_loop)] // index notation mirrors the formula
    fn recurrent_matches_closed_matrix_form() {
        for (i, cfg) in [GDN, KDA, KDA_GROUPED].iter().enumerate() {
            let (b, t) = (2, 9);
            let x = inputs(200 + i as u64, b, t, cfg, -0.8, 0.0);
            let (o, s_final) = rec(&x, cfg);
            let (hk, hv, dk, dv) = (cfg.key_heads, cfg.value_heads, cfg.key_dim, cfg.value_dim);
            for bi in 0..b {
                for vh in 0..hv {
                    let kh = vh * hk / hv;
                    let mut s: Vec<Vec<f64>> = (0..dk)
                        .map(|r| (0..dv).map(|c| x.s0.data[((bi * hv + vh) * dk + r) * dv + c]).collect())
                        .collect();
                    for ti in 0..t {
                        let tok = bi * t + ti;
                        let kv: Vec<f64> = (0..dk).map(|d| x.k.data[tok * hk * dk + kh * dk + d]).collect();
                        let qv: Vec<f64> = (0..dk).map(|d| x.q.data[tok * hk * dk + kh * dk + d]).collect();
                        let vv: Vec<f64> = (0..dv).map(|e| x.v.data[tok * hv * dv + vh * dv + e]).collect();
                        let bt = x.beta.data[tok * hv + vh];
                        let alpha: Vec<f64> = (0..dk)
                            .map(|d| match cfg.decay {
                                DecayKind::Scalar => x.g.data[tok * hv + vh].exp(),
                                DecayKind::PerChannel => x.g.data[tok * hv * dk + vh * dk + d].exp(),
                            })
                            .collect();
                        // P = I − β k kᵀ; S' = P·Diag(α)·S + β k vᵀ.
                        let pm: Vec<Vec<f64>> = (0..dk)
                            .map(|r| {
                                (0..dk)
                                    .map(|c| f64::from(u8::from(r == c)) - bt * kv[r] * kv[c])
                                    .collect()
                            })
                            .collect();
                        let ds: Vec<Vec<f64>> = (0..dk).map(|r| s[r].iter().map(|x| alpha[r] * x).collect()).collect();
                        s = (0..dk)
                            .map(|r| {
                                (0..dv)
                                    .map(|c| (0..dk).map(|m| pm[r][m] * ds[m][c]).sum::<f64>() + bt * kv[r] * vv[c])
                                    .collect()
                            })
                            .collect();
                        for e in 0..dv {
                            let want: f64 = (0..dk).map(|d| s[d][e] * qv[d]).sum();
                            let got = o.data[tok * hv * dv + vh * dv + e];
                            // Algebraically equal, different association ⇒ ~1e-15; 1e-12 margin.
                            assert!((got - want).abs() < 1e-12, "cfg {i} b{bi} h{vh} t{ti}: {got} vs {want}");
                        }
                    }
                    for (r, row) in s.iter().enumerate() {
                        for (c, want) in row.iter().enumerate() {
                            let got = s_final.data[((bi * hv + vh) * dk + r) * dv + c];
                            assert!((got - want).abs() < 1e-12);
                        }
                    }
                }
            }
        }
    }

    /// run(T) == run(a) then run(T − a) from the carried state, for both forms.
    #[test]
    fn split_invariance() {
        for (i, cfg) in [GDN, KDA].iter().enumerate() {
            let t = 23;
            let x = inputs(300 + i as u64, 2, t, cfg, -0.5, -0.01);
            let (o_all, s_all) = rec(&x, cfg);
            for a in [1, 7, 16, 22] {
                let first = slice_all(&x, 0, a, x.s0.clone());
                let (o1, s1) = rec(&first, cfg);
                let (o2, s2) = rec(&slice_all(&x, a, t, s1), cfg);
                // Same operations in the same order ⇒ bit-identical.
                assert_eq!(time_slice(&o_all, 0, a), o1);
                assert_eq!(time_slice(&o_all, a, t), o2);
                assert_eq!(s2, s_all);
                // Chunked, split off chunk boundaries (chunk 4, a not a multiple of 4 mostly).
                let (c1, cs1) = chk(&first, cfg, 4);
                let (c2, cs2) = chk(&slice_all(&x, a, t, cs1), cfg, 4);
                assert_close(&c1, &time_slice(&o_all, 0, a), 1e-10, "chunked first part");
                assert_close(&c2, &time_slice(&o_all, a, t), 1e-10, "chunked second part");
                assert_close(&cs2, &s_all, 1e-10, "chunked final state");
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = inputs(400, 1, 3, &GDN, -0.5, 0.0);
        let bad_cfg = DeltaRuleParams { key_heads: 3, ..GDN };
        assert!(matches!(
            delta_rule_recurrent(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.s0, &bad_cfg),
            Err(OpError::Param { .. })
        ));
        let kda_gate = DeltaRuleParams {
            decay: DecayKind::PerChannel,
            ..GDN
        };
        assert!(matches!(
            delta_rule_recurrent(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.s0, &kda_gate),
            Err(OpError::Shape { input: "g", .. })
        ));
        assert!(matches!(
            delta_rule_chunked(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.s0, &GDN, 0),
            Err(OpError::Param { .. })
        ));
        assert!(matches!(
            delta_rule_chunked(&x.q, &x.k, &x.v, &x.g, &x.beta, &x.v, &GDN, 2),
            Err(OpError::Shape { input: "state", .. })
        ));
    }
}
