//! Scaled dot-product attention with GQA, causal/sliding-window masks and a KV cache (§2.1, §3).
//!
//! Positions are relative: the first new token sits at offset 0, cache token `i` of `P` at
//! `i − P` (the cache holds the contiguous tokens just before the new ones). The windowed cache
//! keeps only what a future query can still see (W − 1 tokens), but the current call always
//! uses every new key, so a prefill longer than W is exact (unlike upstream, §7.2.5).

use super::{dims, ensure, expect_shape, OpError};
use crate::ir::AttentionParams;
use crate::reference::Array;

/// Attention of the new tokens over cache ++ new keys.
///
/// q `[B, T, H·Dh]`, k, v `[B, T, G·Dh]`, caches `[B, G, P, Dh]` →
/// (o `[B, T, H·Dh]`, k_cache_out, v_cache_out). Cache out: all P + T tokens for full
/// attention; the last `min(P + T, W − 1)` tokens with a causal window W.
pub fn attention(
    q: &Array,
    k: &Array,
    v: &Array,
    k_cache: &Array,
    v_cache: &Array,
    cfg: &AttentionParams,
) -> Result<(Array, Array, Array), OpError> {
    const OP: &str = "attention";
    let (h, g, dh) = (cfg.heads, cfg.kv_heads, cfg.head_dim);
    ensure(h > 0 && g > 0 && dh > 0, OP, || {
        format!("heads {h}, kv_heads {g} and head_dim {dh} must be positive")
    })?;
    ensure(h % g == 0, OP, || {
        format!("heads {h} is not a multiple of kv_heads {g}")
    })?;
    ensure(cfg.window != Some(0), OP, || "window size 0".into())?;
    let qd = dims(OP, "q", q, 3)?;
    let (b, t) = (qd[0], qd[1]);
    expect_shape(OP, "q", q, &[b, t, h * dh])?;
    expect_shape(OP, "k", k, &[b, t, g * dh])?;
    expect_shape(OP, "v", v, &[b, t, g * dh])?;
    let cd = dims(OP, "k_cache", k_cache, 4)?;
    let p = cd[2];
    expect_shape(OP, "k_cache", k_cache, &[b, g, p, dh])?;
    expect_shape(OP, "v_cache", v_cache, &[b, g, p, dh])?;

    // Keys and values per (batch, kv head): [P + T, Dh], cache first.
    let n = p + t;
    let gather = |cache: &Array, new: &Array, bi: usize, gi: usize| -> Vec<f64> {
        let mut out = Vec::with_capacity(n * dh);
        let base = (bi * g + gi) * p * dh;
        out.extend_from_slice(&cache.data[base..base + p * dh]);
        for ti in 0..t {
            let off = (bi * t + ti) * g * dh + gi * dh;
            out.extend_from_slice(&new.data[off..off + dh]);
        }
        out
    };
    let keys: Vec<Vec<f64>> = (0..b * g).map(|i| gather(k_cache, k, i / g, i % g)).collect();
    let vals: Vec<Vec<f64>> = (0..b * g).map(|i| gather(v_cache, v, i / g, i % g)).collect();

    let rep = h / g;
    let mut o = vec![0.0; b * t * h * dh];
    let mut scores = vec![0.0; n];
    for bi in 0..b {
        for hi in 0..h {
            let gi = hi / rep;
            let (kk, vv) = (&keys[bi * g + gi], &vals[bi * g + gi]);
            for ti in 0..t {
                let qoff = (bi * t + ti) * h * dh + hi * dh;
                let qv = &q.data[qoff..qoff + dh];
                // Key j (index into cache ++ new) sits at relative position j − P; the query at ti.
                let visible = |j: usize| -> bool {
                    if !cfg.causal {
                        return true;
                    }
                    let (qpos, kpos) = (ti + p, j); // both shifted by +P
                    kpos <= qpos && cfg.window.is_none_or(|w| qpos - kpos < w)
                };
                let mut max = f64::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = if visible(j) {
                        let kr = &kk[j * dh..(j + 1) * dh];
                        qv.iter().zip(kr).map(|(a, c)| a * c).sum::<f64>() * cfg.scale
                    } else {
                        f64::NEG_INFINITY
                    };
                    max = max.max(*s);
                }
                // Causal queries always see themselves; a non-causal call has n ≥ t ≥ 1 keys.
                let mut denom = 0.0;
                for s in scores.iter_mut() {
                    *s = if *s == f64::NEG_INFINITY { 0.0 } else { (*s - max).exp() };
                    denom += *s;
                }
                let out = &mut o[qoff..qoff + dh];
                for (j, &wgt) in scores.iter().enumerate() {
                    if wgt != 0.0 {
                        let vr = &vv[j * dh..(j + 1) * dh];
                        for (ov, x) in out.iter_mut().zip(vr) {
                            *ov += wgt / denom * x;
                        }
                    }
                }
            }
        }
    }

    let keep = match (cfg.causal, cfg.window) {
        (true, Some(w)) => n.min(w - 1),
        _ => n,
    };
    let to_cache = |all: &[Vec<f64>]| -> Array {
        let mut data = Vec::with_capacity(b * g * keep * dh);
        for kv in all {
            data.extend_from_slice(&kv[(n - keep) * dh..]);
        }
        Array {
            shape: vec![b, g, keep, dh],
            data,
        }
    };
    Ok((
        Array {
            shape: vec![b, t, h * dh],
            data: o,
        },
        to_cache(&keys),
        to_cache(&vals),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, rng, time_concat, time_slice, uniform};
    use super::*;

    /// Dense reference: absolute positions (cache 0..P, new P..P+T), an explicit additive mask
    /// matrix, `softmax(QKᵀ·scale + mask)·V` per (batch, query head).
    #[allow(clippy::needless_range_loop)] // index notation mirrors the formula
    fn dense(q: &Array, k: &Array, v: &Array, kc: &Array, vc: &Array, cfg: &AttentionParams) -> Array {
        let (b, t) = (q.shape[0], q.shape[1]);
        let (h, g, dh) = (cfg.heads, cfg.kv_heads, cfg.head_dim);
        let p = kc.shape[2];
        let n = p + t;
        let mut o = Array::zeros(vec![b, t, h * dh]);
        for bi in 0..b {
            for hi in 0..h {
                let gi = hi * g / h;
                // K, V as dense n × dh matrices.
                let mut km = vec![vec![0.0; dh]; n];
                let mut vm = vec![vec![0.0; dh]; n];
                for j in 0..n {
                    for d in 0..dh {
                        if j < p {
                            km[j][d] = kc.data[((bi * g + gi) * p + j) * dh + d];
                            vm[j][d] = vc.data[((bi * g + gi) * p + j) * dh + d];
                        } else {
                            km[j][d] = k.data[(bi * t + j - p) * g * dh + gi * dh + d];
                            vm[j][d] = v.data[(bi * t + j - p) * g * dh + gi * dh + d];
                        }
                    }
                }
                for ti in 0..t {
                    let qpos = (p + ti) as i64;
                    let mut logits = vec![0.0; n];
                    for (j, l) in logits.iter_mut().enumerate() {
                        let jp = j as i64;
                        let allowed = !cfg.causal || (jp <= qpos && cfg.window.is_none_or(|w| jp > qpos - w as i64));
                        let mask = if allowed { 0.0 } else { f64::NEG_INFINITY };
                        let mut s = 0.0;
                        for d in 0..dh {
                            s += q.data[(bi * t + ti) * h * dh + hi * dh + d] * km[j][d];
                        }
                        *l = s * cfg.scale + mask;
                    }
                    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..dh {
                        let val: f64 = (0..n).map(|j| e[j] / z * vm[j][d]).sum();
                        o.data[(bi * t + ti) * h * dh + hi * dh + d] = val;
                    }
                }
            }
        }
        o
    }

    struct Inputs {
        q: Array,
        k: Array,
        v: Array,
        kc: Array,
        vc: Array,
    }

    fn inputs(seed: u64, b: usize, t: usize, p: usize, cfg: &AttentionParams) -> Inputs {
        let mut r = rng(seed);
        let (h, g, dh) = (cfg.heads, cfg.kv_heads, cfg.head_dim);
        Inputs {
            q: uniform(&mut r, &[b, t, h * dh], -1.5, 1.5),
            k: uniform(&mut r, &[b, t, g * dh], -1.5, 1.5),
            v: uniform(&mut r, &[b, t, g * dh], -1.0, 1.0),
            kc: uniform(&mut r, &[b, g, p, dh], -1.5, 1.5),
            vc: uniform(&mut r, &[b, g, p, dh], -1.0, 1.0),
        }
    }

    fn cfg(heads: usize, kv_heads: usize, causal: bool, window: Option<usize>) -> AttentionParams {
        AttentionParams {
            heads,
            kv_heads,
            head_dim: 4,
            causal,
            window,
            scale: 0.5,
        }
    }

    #[test]
    fn matches_dense_masked_softmax() {
        let cases = [
            ("MHA causal", cfg(4, 4, true, None), 0),
            ("MHA causal with cache", cfg(4, 4, true, None), 5),
            ("GQA causal", cfg(6, 2, true, None), 3),
            ("MQA causal", cfg(4, 1, true, None), 2),
            ("GQA window, P>0, T>W", cfg(4, 2, true, Some(3)), 2),
            ("MQA window 1", cfg(2, 1, true, Some(1)), 4),
            ("window larger than everything", cfg(2, 2, true, Some(50)), 3),
            ("non-causal", cfg(4, 2, false, None), 3),
            ("non-causal ignores window", cfg(4, 2, false, Some(2)), 3),
        ];
        for (i, (name, c, p)) in cases.iter().enumerate() {
            let x = inputs(40 + i as u64, 2, 7, *p, c);
            let (o, kc, vc) = attention(&x.q, &x.k, &x.v, &x.kc, &x.vc, c).unwrap();
            // Same f64 math in a different order ⇒ ~1e-15; 1e-12 leaves margin for exp.
            assert_close(&o, &dense(&x.q, &x.k, &x.v, &x.kc, &x.vc, c), 1e-12, name);
            let keep = match (c.causal, c.window) {
                (true, Some(w)) => (p + 7).min(w - 1),
                _ => p + 7,
            };
            assert_eq!(kc.shape, vec![2, c.kv_heads, keep, 4], "{name}");
            assert_eq!(vc.shape, kc.shape, "{name}");
        }
    }

    #[test]
    fn window_cache_holds_the_last_tokens() {
        let c = cfg(2, 2, true, Some(4));
        let x = inputs(50, 1, 5, 2, &c);
        let (_, kc, vc) = attention(&x.q, &x.k, &x.v, &x.kc, &x.vc, &c).unwrap();
        // W − 1 = 3 tokens: new tokens 2, 3, 4 (k is [1, 5, G·Dh], cache is [1, G, 3, Dh]).
        assert_eq!(kc.shape, vec![1, 2, 3, 4]);
        for gi in 0..2 {
            for (slot, ti) in (2..5).enumerate() {
                for d in 0..4 {
                    assert_eq!(kc.data[(gi * 3 + slot) * 4 + d], x.k.data[ti * 8 + gi * 4 + d]);
                    assert_eq!(vc.data[(gi * 3 + slot) * 4 + d], x.v.data[ti * 8 + gi * 4 + d]);
                }
            }
        }
        // With T = 1 and a small cache, the old tokens survive in order.
        let y = inputs(51, 1, 1, 1, &c);
        let (_, kc, _) = attention(&y.q, &y.k, &y.v, &y.kc, &y.vc, &c).unwrap();
        assert_eq!(kc.shape, vec![1, 2, 2, 4]);
        assert_eq!(&kc.data[0..4], &y.kc.data[0..4]);
        assert_eq!(&kc.data[4..8], &y.k.data[0..4]);
    }

    /// prefill(T) == prefill(T − k) followed by k single-token decode steps, through the cache.
    #[test]
    fn prefill_equals_prefill_then_decode() {
        let cases = [
            ("full", cfg(4, 2, true, None), 9, 3),
            ("window, first prefill longer than W", cfg(4, 2, true, Some(4)), 10, 3),
            ("window, prefill shorter than W", cfg(2, 1, true, Some(6)), 8, 6),
            ("window 1", cfg(2, 2, true, Some(1)), 5, 2),
        ];
        for (i, (name, c, t, k)) in cases.iter().enumerate() {
            let x = inputs(60 + i as u64, 2, *t, 0, c);
            let empty = Array::zeros(vec![2, c.kv_heads, 0, 4]);
            let (o_all, kc_all, vc_all) = attention(&x.q, &x.k, &x.v, &empty, &empty, c).unwrap();
            let pre = t - k;
            let sl = |a: &Array, lo, hi| time_slice(a, lo, hi);
            let (o_pre, mut kc, mut vc) = attention(
                &sl(&x.q, 0, pre),
                &sl(&x.k, 0, pre),
                &sl(&x.v, 0, pre),
                &empty,
                &empty,
                c,
            )
            .unwrap();
            let mut outs = vec![o_pre];
            for s in pre..*t {
                let (o, nk, nv) = attention(
                    &sl(&x.q, s, s + 1),
                    &sl(&x.k, s, s + 1),
                    &sl(&x.v, s, s + 1),
                    &kc,
                    &vc,
                    c,
                )
                .unwrap();
                outs.push(o);
                kc = nk;
                vc = nv;
            }
            let o_steps = time_concat(&outs.iter().collect::<Vec<_>>());
            // Identical keys and masks; only the number of (masked-out) zero terms differs.
            assert_close(&o_steps, &o_all, 1e-13, name);
            assert_eq!(kc, kc_all, "{name}: k cache");
            assert_eq!(vc, vc_all, "{name}: v cache");
        }
    }

    #[test]
    fn rejects_bad_configs_and_shapes() {
        let c = cfg(4, 2, true, None);
        let x = inputs(70, 1, 3, 2, &c);
        let run = |c: &AttentionParams| attention(&x.q, &x.k, &x.v, &x.kc, &x.vc, c);
        assert!(matches!(run(&cfg(4, 3, true, None)), Err(OpError::Param { .. })));
        assert!(matches!(run(&cfg(4, 2, true, Some(0))), Err(OpError::Param { .. })));
        assert!(matches!(
            run(&cfg(2, 2, true, None)),
            Err(OpError::Shape { input: "q", .. })
        ));
        let bad_cache = Array::zeros(vec![1, 2, 2, 5]);
        assert!(matches!(
            attention(&x.q, &x.k, &x.v, &bad_cache, &x.vc, &c),
            Err(OpError::Shape { input: "k_cache", .. })
        ));
        assert!(matches!(
            attention(&x.q, &x.k, &x.v, &x.kc, &bad_cache, &c),
            Err(OpError::Shape { input: "v_cache", .. })
        ));
    }
}
