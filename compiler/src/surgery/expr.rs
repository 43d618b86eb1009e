//! Conversion plans (reference §4.2): one expression per target tensor, over source tensor keys.
//!
//! Plans compose by substitution (`p1.compose(&p2)`: A→B then B→C) and merge by disjoint union.
//! Unlike upstream, shapes are checked: every slice against the shape it slices, every concat
//! and reshape against its parts, and the whole plan against the declared target layout.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::init::InitKind;

/// A plan inconsistent with its sources, its target layout or itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("target `{target}`: source tensor `{key}` is not in the source checkpoint")]
    MissingSource { target: String, key: String },
    #[error(
        "target `{target}`: slice {start}..{stop} of dim {dim} is out of bounds for shape \
         {shape:?}{}",
        source_note(of)
    )]
    SliceOutOfBounds {
        target: String,
        /// The sliced source tensor, when the slice is directly on one.
        of: Option<String>,
        dim: usize,
        start: usize,
        stop: usize,
        shape: Vec<usize>,
    },
    #[error("target `{target}`: invalid slice: {message}")]
    BadSlice { target: String, message: String },
    #[error("target `{target}`: cannot concatenate shapes {shapes:?} along dim {dim}")]
    ConcatMismatch {
        target: String,
        dim: usize,
        shapes: Vec<Vec<usize>>,
    },
    #[error("target `{target}`: cannot reshape {from:?} ({} elements) to {to:?}", numel(from))]
    ReshapeMismatch {
        target: String,
        from: Vec<usize>,
        to: Vec<usize>,
    },
    #[error("target `{target}`: the plan produces shape {planned:?} but the target config declares {declared:?}")]
    ShapeMismatch {
        target: String,
        planned: Vec<usize>,
        declared: Vec<usize>,
    },
    #[error("target `{key}` is declared by the target config but the plan does not produce it")]
    Unplanned { key: String },
    #[error("the plan produces `{key}`, which the target config does not declare")]
    Undeclared { key: String },
    #[error("target `{key}` is produced twice (merged plans overlap)")]
    DuplicateTarget { key: String },
    #[error("target `{target}`: {message}")]
    BadInit { target: String, message: String },
    #[error("plan JSON at {path}: {message}")]
    Json { path: String, message: String },
}

fn source_note(of: &Option<String>) -> String {
    match of {
        Some(k) => format!(" (of source `{k}`)"),
        None => String::new(),
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// `(start, stop, step)` on one dimension; `None` start/stop are open ends, `None` step is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SliceRange {
    pub start: Option<usize>,
    pub stop: Option<usize>,
    pub step: Option<usize>,
}

impl SliceRange {
    /// `[start, stop)` with step 1.
    pub fn range(start: usize, stop: usize) -> SliceRange {
        SliceRange {
            start: Some(start),
            stop: Some(stop),
            step: None,
        }
    }

    /// The whole dimension.
    pub fn full() -> SliceRange {
        SliceRange::default()
    }

    /// Resolved `(start, stop, step)` and the resulting length, checked against `size`.
    pub fn resolve(&self, size: usize) -> Option<(usize, usize, usize, usize)> {
        let start = self.start.unwrap_or(0);
        let stop = self.stop.unwrap_or(size);
        let step = self.step.unwrap_or(1);
        if step == 0 || start > stop || stop > size {
            return None;
        }
        let len = (stop - start).div_ceil(step);
        Some((start, stop, step, len))
    }
}

/// An expression producing one tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The source tensor `key`.
    Ref { key: String },
    /// A slice of the leading dims (one range per dim; missing trailing dims are whole).
    Slice { expr: Box<Expr>, slices: Vec<SliceRange> },
    /// Concatenation along `dim`.
    Concat { exprs: Vec<Expr>, dim: usize },
    /// A new tensor; `seed_key` names its random stream (see `init.rs`).
    Init {
        shape: Vec<usize>,
        kind: InitKind,
        seed_key: String,
    },
    /// Same elements, new shape.
    Reshape { expr: Box<Expr>, shape: Vec<usize> },
}

impl Expr {
    pub fn reference(key: impl Into<String>) -> Expr {
        Expr::Ref { key: key.into() }
    }

    /// Rows `[start, stop)` of dim 0.
    pub fn rows(self, start: usize, stop: usize) -> Expr {
        Expr::Slice {
            expr: Box::new(self),
            slices: vec![SliceRange::range(start, stop)],
        }
    }

    pub fn concat(exprs: Vec<Expr>, dim: usize) -> Expr {
        Expr::Concat { exprs, dim }
    }

    pub fn init(shape: Vec<usize>, kind: InitKind, seed_key: impl Into<String>) -> Expr {
        Expr::Init {
            shape,
            kind,
            seed_key: seed_key.into(),
        }
    }

    /// Every source key this expression reads.
    pub fn refs(&self, out: &mut BTreeSet<String>) {
        match self {
            Expr::Ref { key } => {
                out.insert(key.clone());
            }
            Expr::Slice { expr, .. } | Expr::Reshape { expr, .. } => expr.refs(out),
            Expr::Concat { exprs, .. } => exprs.iter().for_each(|e| e.refs(out)),
            Expr::Init { .. } => {}
        }
    }

    /// Replaces every `Ref(k)` bound in `plan` by `plan[k]`; unbound refs stay.
    pub fn substitute(&self, plan: &Plan) -> Expr {
        match self {
            Expr::Ref { key } => plan.get(key).cloned().unwrap_or_else(|| self.clone()),
            Expr::Slice { expr, slices } => Expr::Slice {
                expr: Box::new(expr.substitute(plan)),
                slices: slices.clone(),
            },
            Expr::Concat { exprs, dim } => Expr::Concat {
                exprs: exprs.iter().map(|e| e.substitute(plan)).collect(),
                dim: *dim,
            },
            Expr::Reshape { expr, shape } => Expr::Reshape {
                expr: Box::new(expr.substitute(plan)),
                shape: shape.clone(),
            },
            Expr::Init { .. } => self.clone(),
        }
    }

    /// Flattens a `Concat` nested in a `Concat` along the same dim, and collapses
    /// `Reshape(Reshape(x))`. No other simplification (results stay bitwise identical).
    pub fn fuse(self) -> Expr {
        match self {
            Expr::Concat { exprs, dim } => {
                let mut flat = Vec::with_capacity(exprs.len());
                for e in exprs {
                    match e.fuse() {
                        Expr::Concat { exprs: inner, dim: d } if d == dim => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                Expr::Concat { exprs: flat, dim }
            }
            Expr::Reshape { expr, shape } => match expr.fuse() {
                Expr::Reshape { expr: inner, .. } => Expr::Reshape { expr: inner, shape },
                other => Expr::Reshape {
                    expr: Box::new(other),
                    shape,
                },
            },
            Expr::Slice { expr, slices } => Expr::Slice {
                expr: Box::new(expr.fuse()),
                slices,
            },
            other => other,
        }
    }

    /// The shape this expression produces, checking every slice, concat, reshape and init.
    /// `source_shape(key)` gives a source tensor's shape, `None` if it is missing; `target` names
    /// the tensor being planned, for messages.
    pub fn shape(
        &self,
        source_shape: &dyn Fn(&str) -> Option<Vec<usize>>,
        target: &str,
    ) -> Result<Vec<usize>, PlanError> {
        match self {
            Expr::Ref { key } => source_shape(key).ok_or_else(|| PlanError::MissingSource {
                target: target.to_string(),
                key: key.clone(),
            }),
            Expr::Slice { expr, slices } => {
                let inner = expr.shape(source_shape, target)?;
                if slices.len() > inner.len() {
                    return Err(PlanError::BadSlice {
                        target: target.to_string(),
                        message: format!(
                            "{} slice ranges for a tensor of rank {} ({inner:?})",
                            slices.len(),
                            inner.len()
                        ),
                    });
                }
                let mut out = inner.clone();
                for (dim, s) in slices.iter().enumerate() {
                    let size = inner[dim];
                    let (_, _, _, len) = s.resolve(size).ok_or_else(|| {
                        let of = match &**expr {
                            Expr::Ref { key } => Some(key.clone()),
                            _ => None,
                        };
                        if s.step == Some(0) {
                            PlanError::BadSlice {
                                target: target.to_string(),
                                message: format!("step 0 on dim {dim}"),
                            }
                        } else {
                            PlanError::SliceOutOfBounds {
                                target: target.to_string(),
                                of,
                                dim,
                                start: s.start.unwrap_or(0),
                                stop: s.stop.unwrap_or(size),
                                shape: inner.clone(),
                            }
                        }
                    })?;
                    out[dim] = len;
                }
                Ok(out)
            }
            Expr::Concat { exprs, dim } => {
                let shapes = exprs
                    .iter()
                    .map(|e| e.shape(source_shape, target))
                    .collect::<Result<Vec<_>, _>>()?;
                let mismatch = || PlanError::ConcatMismatch {
                    target: target.to_string(),
                    dim: *dim,
                    shapes: shapes.clone(),
                };
                let first = shapes.first().ok_or_else(mismatch)?;
                if *dim >= first.len() {
                    return Err(mismatch());
                }
                let mut out = first.clone();
                out[*dim] = 0;
                for s in &shapes {
                    let same_rest = s.len() == first.len()
                        && s.iter().zip(first).enumerate().all(|(i, (a, b))| i == *dim || a == b);
                    if !same_rest {
                        return Err(mismatch());
                    }
                    out[*dim] += s[*dim];
                }
                Ok(out)
            }
            Expr::Init { shape, kind, .. } => {
                kind.check_shape(shape).map_err(|message| PlanError::BadInit {
                    target: target.to_string(),
                    message,
                })?;
                Ok(shape.clone())
            }
            Expr::Reshape { expr, shape } => {
                let from = expr.shape(source_shape, target)?;
                if numel(&from) != numel(shape) {
                    return Err(PlanError::ReshapeMismatch {
                        target: target.to_string(),
                        from,
                        to: shape.clone(),
                    });
                }
                Ok(shape.clone())
            }
        }
    }

    /// The JSON form (`{"type": "ref", "key": ...}` and so on).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Expr::Ref { key } => {
                m.insert("type".into(), "ref".into());
                m.insert("key".into(), key.clone().into());
            }
            Expr::Slice { expr, slices } => {
                m.insert("type".into(), "slice".into());
                m.insert("expr".into(), expr.to_json());
                let s: Vec<Value> = slices
                    .iter()
                    .map(|r| {
                        let f = |x: Option<usize>| x.map_or(Value::Null, Value::from);
                        Value::Array(vec![f(r.start), f(r.stop), f(r.step)])
                    })
                    .collect();
                m.insert("slices".into(), Value::Array(s));
            }
            Expr::Concat { exprs, dim } => {
                m.insert("type".into(), "concat".into());
                m.insert("exprs".into(), Value::Array(exprs.iter().map(Expr::to_json).collect()));
                m.insert("dim".into(), Value::from(*dim));
            }
            Expr::Init { shape, kind, seed_key } => {
                m.insert("type".into(), "init".into());
                m.insert("shape".into(), Value::from(shape.clone()));
                m.insert("init_type".into(), kind.name().into());
                m.insert("init_params".into(), Value::Object(kind.params()));
                m.insert("seed_key".into(), seed_key.clone().into());
            }
            Expr::Reshape { expr, shape } => {
                m.insert("type".into(), "reshape".into());
                m.insert("expr".into(), expr.to_json());
                m.insert("shape".into(), Value::from(shape.clone()));
            }
        }
        Value::Object(m)
    }

    /// Parses [`Expr::to_json`]'s form; errors name the JSON path.
    pub fn from_json(v: &Value, path: &str) -> Result<Expr, PlanError> {
        let err = |p: &str, message: String| PlanError::Json {
            path: p.to_string(),
            message,
        };
        let m = v
            .as_object()
            .ok_or_else(|| err(path, format!("expected an expression object, found {v}")))?;
        let field = |k: &str| m.get(k).ok_or_else(|| err(path, format!("missing field `{k}`")));
        let usizes = |k: &str| -> Result<Vec<usize>, PlanError> {
            field(k)?
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| err(&format!("{path}.{k}"), "expected a list of sizes".into()))
        };
        let ty = field("type")?
            .as_str()
            .ok_or_else(|| err(path, "`type` must be a string".into()))?;
        let sub = |k: &str| Expr::from_json(field(k)?, &format!("{path}.{k}"));
        Ok(match ty {
            "ref" => Expr::Ref {
                key: field("key")?
                    .as_str()
                    .ok_or_else(|| err(path, "`key` must be a string".into()))?
                    .to_string(),
            },
            "slice" => {
                let raw = field("slices")?
                    .as_array()
                    .ok_or_else(|| err(path, "`slices` must be a list".into()))?;
                let mut slices = Vec::with_capacity(raw.len());
                for (i, r) in raw.iter().enumerate() {
                    let p = format!("{path}.slices[{i}]");
                    let parts = r
                        .as_array()
                        .filter(|a| a.len() == 3)
                        .ok_or_else(|| err(&p, "expected [start, stop, step]".into()))?;
                    let opt = |x: &Value| -> Result<Option<usize>, PlanError> {
                        if x.is_null() {
                            Ok(None)
                        } else {
                            x.as_u64()
                                .and_then(|x| usize::try_from(x).ok())
                                .map(Some)
                                .ok_or_else(|| err(&p, format!("expected a non-negative integer or null, found {x}")))
                        }
                    };
                    slices.push(SliceRange {
                        start: opt(&parts[0])?,
                        stop: opt(&parts[1])?,
                        step: opt(&parts[2])?,
                    });
                }
                Expr::Slice {
                    expr: Box::new(sub("expr")?),
                    slices,
                }
            }
            "concat" => {
                let raw = field("exprs")?
                    .as_array()
                    .ok_or_else(|| err(path, "`exprs` must be a list".into()))?;
                let exprs = raw
                    .iter()
                    .enumerate()
                    .map(|(i, e)| Expr::from_json(e, &format!("{path}.exprs[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let dim = match m.get("dim") {
                    None => 0,
                    Some(d) => d
                        .as_u64()
                        .and_then(|d| usize::try_from(d).ok())
                        .ok_or_else(|| err(path, "`dim` must be a non-negative integer".into()))?,
                };
                Expr::Concat { exprs, dim }
            }
            "init" => {
                let name = m.get("init_type").and_then(Value::as_str).unwrap_or("kaiming");
                let empty = Map::new();
                let params = m.get("init_params").and_then(Value::as_object).unwrap_or(&empty);
                Expr::Init {
                    shape: usizes("shape")?,
                    kind: InitKind::from_parts(name, params).map_err(|e| err(path, e))?,
                    seed_key: m
                        .get("seed_key")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                }
            }
            "reshape" => Expr::Reshape {
                expr: Box::new(sub("expr")?),
                shape: usizes("shape")?,
            },
            other => {
                return Err(err(
                    path,
                    format!("unknown expression type `{other}` (expected ref, slice, concat, init, reshape)"),
                ))
            }
        })
    }
}

/// A conversion plan: target key → expression, in output order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub source_format: String,
    pub target_format: String,
    pub metadata: Map<String, Value>,
    mappings: Vec<(String, Expr)>,
    index: HashMap<String, usize>,
}

impl PartialEq for Plan {
    fn eq(&self, other: &Plan) -> bool {
        self.source_format == other.source_format
            && self.target_format == other.target_format
            && self.mappings == other.mappings
    }
}

impl Plan {
    pub fn new(source_format: impl Into<String>, target_format: impl Into<String>) -> Plan {
        Plan {
            source_format: source_format.into(),
            target_format: target_format.into(),
            ..Plan::default()
        }
    }

    /// Adds a mapping; a key already present is an error.
    pub fn insert(&mut self, key: impl Into<String>, expr: Expr) -> Result<(), PlanError> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(PlanError::DuplicateTarget { key });
        }
        self.index.insert(key.clone(), self.mappings.len());
        self.mappings.push((key, expr));
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Expr> {
        self.index.get(key).map(|&i| &self.mappings[i].1)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// Mappings in output order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Expr)> {
        self.mappings.iter().map(|(k, e)| (k.as_str(), e))
    }

    pub fn target_keys(&self) -> impl Iterator<Item = &str> {
        self.mappings.iter().map(|(k, _)| k.as_str())
    }

    /// Every source key some expression reads.
    pub fn source_keys(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, e) in &self.mappings {
            e.refs(&mut out);
        }
        out
    }

    /// `self` (A→B) then `next` (B→C): every ref of `next` bound in `self` is substituted, then
    /// fused. Associative on the expression trees.
    pub fn compose(&self, next: &Plan) -> Plan {
        let mut out = Plan::new(self.source_format.clone(), next.target_format.clone());
        out.metadata = self.metadata.clone();
        out.metadata
            .extend(next.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (k, e) in &next.mappings {
            out.index.insert(k.clone(), out.mappings.len());
            out.mappings.push((k.clone(), e.substitute(self).fuse()));
        }
        out
    }

    /// Disjoint union; a target in both is an error.
    pub fn merge(&self, other: &Plan) -> Result<Plan, PlanError> {
        let mut out = self.clone();
        for (k, e) in &other.mappings {
            out.insert(k.clone(), e.clone())?;
        }
        out.metadata
            .extend(other.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(out)
    }

    /// The same mappings in the order of `keys` (keys absent from the plan are skipped; mappings
    /// whose keys are not listed follow, in their old order).
    pub fn reordered<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Plan {
        let mut out = Plan::new(self.source_format.clone(), self.target_format.clone());
        out.metadata = self.metadata.clone();
        for k in keys {
            if let (Some(e), false) = (self.get(k), out.contains(k)) {
                let _ = out.insert(k.to_string(), e.clone());
            }
        }
        for (k, e) in &self.mappings {
            if !out.contains(k) {
                let _ = out.insert(k.clone(), e.clone());
            }
        }
        out
    }

    /// Checks every expression against the source shapes and returns the target shapes in order.
    pub fn shapes(
        &self,
        source_shape: &dyn Fn(&str) -> Option<Vec<usize>>,
    ) -> Result<Vec<(String, Vec<usize>)>, PlanError> {
        self.mappings
            .iter()
            .map(|(k, e)| Ok((k.clone(), e.shape(source_shape, k)?)))
            .collect()
    }

    /// Checks the plan against a declared layout (key, shape): the same keys, the same shapes.
    pub fn check_layout(
        &self,
        source_shape: &dyn Fn(&str) -> Option<Vec<usize>>,
        declared: &[(String, Vec<usize>)],
    ) -> Result<(), PlanError> {
        let declared_keys: HashMap<&str, &Vec<usize>> = declared.iter().map(|(k, s)| (k.as_str(), s)).collect();
        for (key, shape) in declared {
            let expr = self.get(key).ok_or_else(|| PlanError::Unplanned { key: key.clone() })?;
            let planned = expr.shape(source_shape, key)?;
            if planned != *shape {
                return Err(PlanError::ShapeMismatch {
                    target: key.clone(),
                    planned,
                    declared: shape.clone(),
                });
            }
        }
        if let Some((key, _)) = self
            .mappings
            .iter()
            .find(|(k, _)| !declared_keys.contains_key(k.as_str()))
        {
            return Err(PlanError::Undeclared { key: key.clone() });
        }
        Ok(())
    }

    /// `{"source_format", "target_format", "metadata", "mappings": {key: expr}}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("source_format".into(), self.source_format.clone().into());
        m.insert("target_format".into(), self.target_format.clone().into());
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        let mappings: Map<String, Value> = self.mappings.iter().map(|(k, e)| (k.clone(), e.to_json())).collect();
        m.insert("mappings".into(), Value::Object(mappings));
        Value::Object(m)
    }

    /// Parses [`Plan::to_json`]'s form.
    pub fn from_json(v: &Value) -> Result<Plan, PlanError> {
        let err = |path: &str, message: &str| PlanError::Json {
            path: path.to_string(),
            message: message.to_string(),
        };
        let m = v.as_object().ok_or_else(|| err("$", "expected an object"))?;
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut plan = Plan::new(s("source_format"), s("target_format"));
        if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
            plan.metadata = meta.clone();
        }
        let mappings = m
            .get("mappings")
            .and_then(Value::as_object)
            .ok_or_else(|| err("$.mappings", "expected an object of key → expression"))?;
        for (k, e) in mappings {
            plan.insert(k.clone(), Expr::from_json(e, &format!("$.mappings.{k}"))?)?;
        }
        Ok(plan)
    }
}
