//! Dense projections and the token embedding lookup.

use super::{consistent, dims, expect_shape, OpError};
use crate::reference::Array;

/// `y = x Wᵀ + b` over the last dim: x `[.., in]`, w `[out, in]` (PyTorch `nn.Linear` layout),
/// bias `[out]` → `[.., out]`.
pub fn linear(x: &Array, w: &Array, bias: Option<&Array>) -> Result<Array, OpError> {
    const OP: &str = "linear";
    consistent(OP, "x", x)?;
    let wd = dims(OP, "w", w, 2)?;
    let (out, inp) = (wd[0], wd[1]);
    if x.shape.last() != Some(&inp) {
        return Err(OpError::Shape {
            op: OP,
            input: "x",
            expected: format!("[.., {inp}] (w is [{out}, {inp}])"),
            got: x.shape.clone(),
        });
    }
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[out])?;
    }
    let rows = x
        .data
        .len()
        .checked_div(inp)
        .unwrap_or_else(|| x.shape[..x.shape.len() - 1].iter().product());
    let mut data = Vec::with_capacity(rows * out);
    for r in 0..rows {
        let xr = &x.data[r * inp..(r + 1) * inp];
        for o in 0..out {
            let wr = &w.data[o * inp..(o + 1) * inp];
            let dot: f64 = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
            data.push(dot + bias.map_or(0.0, |b| b.data[o]));
        }
    }
    let mut shape = x.shape.clone();
    if let Some(last) = shape.last_mut() {
        *last = out;
    }
    Ok(Array { shape, data })
}

/// `table[ids]`: ids (integers stored as f64, any shape, usually `[B, T]`), table `[V, d]` →
/// `ids.shape + [d]`. An id that is not an integer in `[0, V)` is an error, never a clamp.
pub fn embedding(ids: &Array, table: &Array) -> Result<Array, OpError> {
    const OP: &str = "embedding";
    consistent(OP, "ids", ids)?;
    let td = dims(OP, "table", table, 2)?;
    let (vocab, d) = (td[0], td[1]);
    let mut data = Vec::with_capacity(ids.data.len() * d);
    for &id in &ids.data {
        if !(id >= 0.0 && id.fract() == 0.0 && id < vocab as f64) {
            return Err(OpError::IdOutOfRange { id, vocab });
        }
        let row = id as usize;
        data.extend_from_slice(&table.data[row * d..(row + 1) * d]);
    }
    let mut shape = ids.shape.clone();
    shape.push(d);
    Ok(Array { shape, data })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, rng, uniform};
    use super::*;

    #[test]
    fn linear_matches_explicit_sum_and_is_linear() {
        let mut r = rng(10);
        let x = uniform(&mut r, &[2, 3, 5], -1.0, 1.0);
        let w = uniform(&mut r, &[4, 5], -1.0, 1.0);
        let b = uniform(&mut r, &[4], -1.0, 1.0);
        let y = linear(&x, &w, Some(&b)).unwrap();
        assert_eq!(y.shape, vec![2, 3, 4]);
        for row in 0..6 {
            for o in 0..4 {
                let mut s = b.data[o];
                for i in 0..5 {
                    s += x.data[row * 5 + i] * w.data[o * 5 + i];
                }
                // Same products, possibly different summation order ⇒ a few ulp.
                assert!((y.data[row * 4 + o] - s).abs() < 1e-14);
            }
        }
        // Linearity in x without bias: W(2x) = 2·Wx.
        let y1 = linear(&x, &w, None).unwrap();
        let y2 = linear(&super::super::elementwise::scale(&x, 2.0), &w, None).unwrap();
        assert_close(&y2, &super::super::elementwise::scale(&y1, 2.0), 1e-15, "linearity");
        assert!(matches!(
            linear(&x, &uniform(&mut r, &[4, 6], 0.0, 1.0), None),
            Err(OpError::Shape {
                op: "linear",
                input: "x",
                ..
            })
        ));
        assert!(matches!(
            linear(&x, &w, Some(&uniform(&mut r, &[5], 0.0, 1.0))),
            Err(OpError::Shape { input: "bias", .. })
        ));
    }

    #[test]
    fn embedding_looks_up_rows_and_rejects_bad_ids() {
        let mut r = rng(11);
        let table = uniform(&mut r, &[7, 3], -1.0, 1.0);
        let ids = Array::new(vec![2, 2], vec![0.0, 6.0, 3.0, 3.0]);
        let e = embedding(&ids, &table).unwrap();
        assert_eq!(e.shape, vec![2, 2, 3]);
        for (k, &id) in ids.data.iter().enumerate() {
            let id = id as usize;
            assert_eq!(&e.data[k * 3..k * 3 + 3], &table.data[id * 3..id * 3 + 3]);
        }
        for bad in [7.0, -1.0, 1.5, f64::NAN] {
            let ids = Array::new(vec![1, 1], vec![bad]);
            match embedding(&ids, &table) {
                Err(OpError::IdOutOfRange { vocab: 7, .. }) => {}
                other => panic!("id {bad}: {other:?}"),
            }
        }
    }
}
