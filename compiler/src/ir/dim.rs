//! Symbolic dimensions: one lowering serves prefill and decode because the batch size, the
//! tokens of this call and the past length stay symbols until a program runs.

use std::fmt;

/// The symbols a shape may mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sym {
    /// Sequences in the batch.
    Batch,
    /// Tokens in this call (T: the prompt in a prefill, 1 in a decode step).
    Tokens,
    /// Tokens already in the cache before this call.
    Past,
}

/// A dimension: a constant or a small expression over [`Sym`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    Const(usize),
    Sym(Sym),
    Add(Box<Dim>, Box<Dim>),
    Min(Box<Dim>, Box<Dim>),
}

/// Values for the symbols, to evaluate a [`Dim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimEnv {
    pub batch: usize,
    pub tokens: usize,
    pub past: usize,
}

impl Dim {
    pub const BATCH: Dim = Dim::Sym(Sym::Batch);
    pub const TOKENS: Dim = Dim::Sym(Sym::Tokens);
    pub const PAST: Dim = Dim::Sym(Sym::Past);

    pub fn c(n: usize) -> Dim {
        Dim::Const(n)
    }

    /// `self + other`, folding constants.
    pub fn plus(self, other: Dim) -> Dim {
        match (self, other) {
            (Dim::Const(a), Dim::Const(b)) => Dim::Const(a + b),
            (a, Dim::Const(0)) | (Dim::Const(0), a) => a,
            (a, b) => Dim::Add(Box::new(a), Box::new(b)),
        }
    }

    /// `min(self, other)`, folding constants.
    pub fn min(self, other: Dim) -> Dim {
        match (self, other) {
            (Dim::Const(a), Dim::Const(b)) => Dim::Const(a.min(b)),
            (a, b) if a == b => a,
            (a, b) => Dim::Min(Box::new(a), Box::new(b)),
        }
    }

    pub fn as_const(&self) -> Option<usize> {
        match self {
            Dim::Const(n) => Some(*n),
            _ => None,
        }
    }

    pub fn eval(&self, env: &DimEnv) -> usize {
        match self {
            Dim::Const(n) => *n,
            Dim::Sym(Sym::Batch) => env.batch,
            Dim::Sym(Sym::Tokens) => env.tokens,
            Dim::Sym(Sym::Past) => env.past,
            Dim::Add(a, b) => a.eval(env) + b.eval(env),
            Dim::Min(a, b) => a.eval(env).min(b.eval(env)),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Const(n) => write!(f, "{n}"),
            Dim::Sym(Sym::Batch) => f.write_str("batch"),
            Dim::Sym(Sym::Tokens) => f.write_str("tokens"),
            Dim::Sym(Sym::Past) => f.write_str("past"),
            Dim::Add(a, b) => write!(f, "{a}+{b}"),
            Dim::Min(a, b) => write!(f, "min({a}, {b})"),
        }
    }
}

/// A shape of symbolic dims.
pub type Shape = Vec<Dim>;

/// Writes `[batch, tokens, 64]`.
pub fn fmt_shape(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Evaluates every dim of a shape.
pub fn eval_shape(shape: &[Dim], env: &DimEnv) -> Vec<usize> {
    shape.iter().map(|d| d.eval(env)).collect()
}
