//! Evaluating one plan expression over source tensors, in the output dtype.
//!
//! Results are lists of byte pieces in row-major order. A `Ref` in the output dtype, and any
//! slice of leading rows of it, stays a borrow of the (memory-mapped) source, so passthrough
//! copies nothing until the writer; other nodes own just their own result. Values are exact
//! copies or one rounding to the output dtype: evaluation never does arithmetic on elements.

use std::borrow::Cow;
use std::collections::HashMap;

use modelc_runtime::tensor::{DType, HostTensor, TensorView};
use modelc_runtime::weights::Checkpoint;

use super::error::SurgeryError;
use super::expr::{Expr, PlanError, SliceRange};
use super::init;

/// Where source tensors come from: a checkpoint, or tensors in memory (tests, composed runs).
pub trait TensorSource {
    /// Dtype and shape of `key`, if present.
    fn info(&self, key: &str) -> Option<(DType, Vec<usize>)>;
    /// A view of `key`'s data.
    fn view(&self, key: &str) -> Result<TensorView<'_>, SurgeryError>;
    /// Every tensor key.
    fn keys(&self) -> Vec<String>;
    /// A hint that `keys` will not be read again (lets a memory-mapped source drop its pages).
    fn release(&self, _keys: &[String]) {}
}

impl TensorSource for Checkpoint {
    fn info(&self, key: &str) -> Option<(DType, Vec<usize>)> {
        Checkpoint::info(self, key).map(|(d, s)| (d, s.to_vec()))
    }
    fn view(&self, key: &str) -> Result<TensorView<'_>, SurgeryError> {
        Ok(self.get(key)?)
    }
    fn keys(&self) -> Vec<String> {
        Checkpoint::keys(self).map(str::to_string).collect()
    }
    fn release(&self, keys: &[String]) {
        for k in keys {
            Checkpoint::release(self, k);
        }
    }
}

/// Tensors held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    pub tensors: HashMap<String, HostTensor>,
}

impl MemorySource {
    pub fn new(tensors: impl IntoIterator<Item = (String, HostTensor)>) -> MemorySource {
        MemorySource {
            tensors: tensors.into_iter().collect(),
        }
    }
}

impl TensorSource for MemorySource {
    fn info(&self, key: &str) -> Option<(DType, Vec<usize>)> {
        self.tensors.get(key).map(|t| (t.dtype, t.shape.clone()))
    }
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.tensors.keys().cloned().collect();
        k.sort();
        k
    }
    fn view(&self, key: &str) -> Result<TensorView<'_>, SurgeryError> {
        self.tensors
            .get(key)
            .map(HostTensor::view)
            .ok_or_else(|| SurgeryError::Checkpoint(format!("tensor `{key}` is not in the source")))
    }
}

/// An evaluated expression: shape and row-major bytes in pieces.
#[derive(Debug)]
pub struct Evaluated<'a> {
    pub shape: Vec<usize>,
    pub pieces: Vec<Cow<'a, [u8]>>,
}

impl<'a> Evaluated<'a> {
    /// Total bytes.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One contiguous buffer (borrowed when there is a single piece).
    pub fn contiguous(self) -> Cow<'a, [u8]> {
        if self.pieces.len() == 1 {
            if let Some(p) = self.pieces.into_iter().next() {
                return p;
            }
            return Cow::Owned(Vec::new());
        }
        let mut out = Vec::with_capacity(self.len());
        for p in &self.pieces {
            out.extend_from_slice(p);
        }
        Cow::Owned(out)
    }

    /// Bytes `[start, end)` across the pieces, borrowing where the pieces are borrowed.
    fn byte_range(self, start: usize, end: usize) -> Vec<Cow<'a, [u8]>> {
        let mut out = Vec::new();
        let mut pos = 0;
        for p in self.pieces {
            let len = p.len();
            let (a, b) = (start.max(pos), end.min(pos + len));
            if a < b {
                let (lo, hi) = (a - pos, b - pos);
                out.push(match p {
                    Cow::Borrowed(s) => Cow::Borrowed(s.get(lo..hi).unwrap_or_default()),
                    Cow::Owned(v) if lo == 0 && hi == len => Cow::Owned(v),
                    Cow::Owned(v) => Cow::Owned(v.get(lo..hi).unwrap_or_default().to_vec()),
                });
            }
            pos += len;
            if pos >= end {
                break;
            }
        }
        out
    }
}

fn internal(target: &str) -> SurgeryError {
    SurgeryError::Checkpoint(format!("target `{target}`: a sliced tensor is shorter than its shape"))
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Evaluates `expr` for target `target` in `dtype`; `seed` drives `Init` nodes.
pub fn evaluate<'a>(
    expr: &Expr,
    source: &'a dyn TensorSource,
    dtype: DType,
    seed: u64,
    target: &str,
) -> Result<Evaluated<'a>, SurgeryError> {
    // Shapes are checked up front so the byte arithmetic below is in bounds.
    let shape_of = |k: &str| source.info(k).map(|(_, s)| s);
    expr.shape(&shape_of, target)?;
    eval(expr, source, dtype, seed, target)
}

fn eval<'a>(
    expr: &Expr,
    source: &'a dyn TensorSource,
    dtype: DType,
    seed: u64,
    target: &str,
) -> Result<Evaluated<'a>, SurgeryError> {
    let esize = dtype.size();
    match expr {
        Expr::Ref { key } => {
            let view = source.view(key).map_err(|_| PlanError::MissingSource {
                target: target.to_string(),
                key: key.clone(),
            })?;
            view.check()
                .map_err(|e| SurgeryError::Checkpoint(format!("source tensor `{key}`: {e}")))?;
            let piece = if view.dtype == dtype {
                Cow::Borrowed(view.data)
            } else {
                Cow::Owned(view.cast(dtype).data)
            };
            Ok(Evaluated {
                shape: view.shape.to_vec(),
                pieces: vec![piece],
            })
        }
        Expr::Slice { expr, slices } => {
            let inner = eval(expr, source, dtype, seed, target)?;
            slice(inner, slices, esize, target)
        }
        Expr::Concat { exprs, dim } => {
            let parts = exprs
                .iter()
                .map(|e| eval(e, source, dtype, seed, target))
                .collect::<Result<Vec<_>, _>>()?;
            concat(parts, *dim, esize)
        }
        Expr::Reshape { expr, shape } => {
            let inner = eval(expr, source, dtype, seed, target)?;
            Ok(Evaluated {
                shape: shape.clone(),
                pieces: inner.pieces,
            })
        }
        Expr::Init { shape, kind, seed_key } => {
            let t = init::generate(kind, shape, seed, seed_key, dtype).map_err(|message| PlanError::BadInit {
                target: target.to_string(),
                message,
            })?;
            Ok(Evaluated {
                shape: t.shape,
                pieces: vec![Cow::Owned(t.data)],
            })
        }
    }
}

fn slice<'a>(
    inner: Evaluated<'a>,
    slices: &[SliceRange],
    esize: usize,
    target: &str,
) -> Result<Evaluated<'a>, SurgeryError> {
    let shape = inner.shape.clone();
    let mut ranges = Vec::with_capacity(shape.len());
    for (dim, &size) in shape.iter().enumerate() {
        let s = slices.get(dim).copied().unwrap_or_default();
        let r = s.resolve(size).ok_or_else(|| PlanError::SliceOutOfBounds {
            target: target.to_string(),
            of: None,
            dim,
            start: s.start.unwrap_or(0),
            stop: s.stop.unwrap_or(size),
            shape: shape.clone(),
        })?;
        ranges.push(r);
    }
    let out_shape: Vec<usize> = ranges.iter().map(|r| r.3).collect();
    // Leading rows only: a byte range of the pieces, borrowed where they are.
    let rows_only = ranges.iter().enumerate().all(|(d, &(start, stop, step, _))| {
        if d == 0 {
            step == 1
        } else {
            start == 0 && stop == shape[d] && step == 1
        }
    });
    if rows_only {
        let row_bytes = numel(shape.get(1..).unwrap_or(&[])) * esize;
        let (start, stop) = ranges.first().map_or((0, 1), |r| (r.0, r.1));
        let pieces = inner.byte_range(start * row_bytes, stop * row_bytes);
        return Ok(Evaluated {
            shape: out_shape,
            pieces,
        });
    }
    // General case: gather element runs along the last dim.
    let src = inner.contiguous();
    let rank = shape.len();
    let mut strides = vec![esize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let total = numel(&out_shape);
    let mut out = Vec::with_capacity(total * esize);
    for flat in 0..total {
        let mut rem = flat;
        let mut off = 0;
        for d in (0..rank).rev() {
            let (start, _, step, len) = ranges[d];
            let i = rem % len.max(1);
            rem /= len.max(1);
            off += (start + i * step) * strides[d];
        }
        let elem = src.get(off..off + esize).ok_or_else(|| internal(target))?;
        out.extend_from_slice(elem);
    }
    Ok(Evaluated {
        shape: out_shape,
        pieces: vec![Cow::Owned(out)],
    })
}

fn concat<'a>(parts: Vec<Evaluated<'a>>, dim: usize, esize: usize) -> Result<Evaluated<'a>, SurgeryError> {
    let Some(first) = parts.first() else {
        return Ok(Evaluated {
            shape: vec![0],
            pieces: Vec::new(),
        });
    };
    let mut shape = first.shape.clone();
    if let Some(s) = shape.get_mut(dim) {
        *s = parts.iter().map(|p| p.shape.get(dim).copied().unwrap_or(0)).sum();
    }
    if dim == 0 {
        let pieces = parts.into_iter().flat_map(|p| p.pieces).collect();
        return Ok(Evaluated { shape, pieces });
    }
    // Interleave: for each index of the dims before `dim`, one block of every part.
    let outer = numel(shape.get(..dim).unwrap_or(&[]));
    let blocks: Vec<(usize, Cow<'a, [u8]>)> = parts
        .into_iter()
        .map(|p| (numel(p.shape.get(dim..).unwrap_or(&[])) * esize, p.contiguous()))
        .collect();
    let mut out = Vec::with_capacity(numel(&shape) * esize);
    for o in 0..outer {
        for (block, data) in &blocks {
            let part = data
                .get(o * block..(o + 1) * block)
                .ok_or_else(|| SurgeryError::Checkpoint("concat: a part is shorter than its shape".into()))?;
            out.extend_from_slice(part);
        }
    }
    Ok(Evaluated {
        shape,
        pieces: vec![Cow::Owned(out)],
    })
}

/// Evaluates `expr` into an owned tensor.
pub fn evaluate_owned(
    expr: &Expr,
    source: &dyn TensorSource,
    dtype: DType,
    seed: u64,
    target: &str,
) -> Result<HostTensor, SurgeryError> {
    let e = evaluate(expr, source, dtype, seed, target)?;
    let shape = e.shape.clone();
    let data = e.contiguous().into_owned();
    HostTensor::new(dtype, shape, data).map_err(|err| SurgeryError::Checkpoint(format!("target `{target}`: {err}")))
}
