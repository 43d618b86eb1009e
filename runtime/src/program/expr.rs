//! Expressions over a call's symbols ([`Sym`]: batch, tokens, past, ...): sizes, grids and
//! launch conditions, written as text in `program.json` and evaluated per call.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProgramError;

/// The symbols a size or launch dimension may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sym {
    /// Sequences in this call.
    Batch,
    /// Tokens per sequence in this call (1 in decode).
    Tokens,
    /// Tokens already seen (the largest over the batch).
    Past,
    /// KV-cache capacity in tokens per sequence (fixed when the program is instantiated).
    MaxLen,
    /// Number of sequence slots of the state buffers (fixed when instantiated).
    Slots,
    /// First sequence slot this call addresses.
    Slot,
    /// Streaming multiprocessors of the device.
    Sms,
}

impl Sym {
    pub const ALL: [Sym; 7] = [
        Sym::Batch,
        Sym::Tokens,
        Sym::Past,
        Sym::MaxLen,
        Sym::Slots,
        Sym::Slot,
        Sym::Sms,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sym::Batch => "batch",
            Sym::Tokens => "tokens",
            Sym::Past => "past",
            Sym::MaxLen => "max_len",
            Sym::Slots => "slots",
            Sym::Slot => "slot",
            Sym::Sms => "sms",
        }
    }
}

/// Values of the symbols for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Env {
    pub batch: u64,
    pub tokens: u64,
    pub past: u64,
    pub max_len: u64,
    pub slots: u64,
    pub slot: u64,
    pub sms: u64,
}

impl Env {
    pub fn get(&self, s: Sym) -> u64 {
        match s {
            Sym::Batch => self.batch,
            Sym::Tokens => self.tokens,
            Sym::Past => self.past,
            Sym::MaxLen => self.max_len,
            Sym::Slots => self.slots,
            Sym::Slot => self.slot,
            Sym::Sms => self.sms,
        }
    }
}

/// A non-negative integer expression over [`Sym`]s. Serialised as its text, e.g.
/// `2048*batch*tokens`, `cdiv(tokens, 16)`, `fdiv(2*sms, batch)`, `min(past+tokens, 4095)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    Const(u64),
    Sym(Sym),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Min(Box<Expr>, Box<Expr>),
    Max(Box<Expr>, Box<Expr>),
    /// `ceil(a / b)`.
    CeilDiv(Box<Expr>, Box<Expr>),
    /// `floor(a / b)`.
    FloorDiv(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn c(n: u64) -> Expr {
        Expr::Const(n)
    }

    pub fn sym(s: Sym) -> Expr {
        Expr::Sym(s)
    }

    /// `a + b`, flattening sums, folding constants and collecting like terms (`2*x + 3*x` is
    /// `5*x`).
    pub fn plus(self, other: Expr) -> Expr {
        let mut terms: Vec<(u64, Expr)> = Vec::new();
        let mut k = 0u64;
        let mut push = |t: Expr, terms: &mut Vec<(u64, Expr)>| {
            let (coef, rest) = t.split_coef();
            match rest {
                None => k = k.saturating_add(coef),
                Some(r) => match terms.iter_mut().find(|(_, x)| *x == r) {
                    Some((c, _)) => *c = c.saturating_add(coef),
                    None => terms.push((coef, r)),
                },
            }
        };
        for e in [self, other] {
            match e {
                Expr::Add(ts) => ts.into_iter().for_each(|t| push(t, &mut terms)),
                t => push(t, &mut terms),
            }
        }
        let mut out: Vec<Expr> = terms
            .into_iter()
            .filter(|(c, _)| *c != 0)
            .map(|(c, r)| Expr::Const(c).times(r))
            .collect();
        if k != 0 || out.is_empty() {
            out.push(Expr::Const(k));
        }
        if out.len() == 1 {
            out.pop().unwrap_or(Expr::Const(0))
        } else {
            Expr::Add(out)
        }
    }

    /// Splits `k*rest` into `(k, Some(rest))`, a constant into `(k, None)`.
    fn split_coef(self) -> (u64, Option<Expr>) {
        match self {
            Expr::Const(c) => (c, None),
            Expr::Mul(mut fs) => match fs.first() {
                Some(Expr::Const(c)) => {
                    let c = *c;
                    fs.remove(0);
                    let rest = if fs.len() == 1 {
                        fs.pop().unwrap_or(Expr::Const(1))
                    } else {
                        Expr::Mul(fs)
                    };
                    (c, Some(rest))
                }
                _ => (1, Some(Expr::Mul(fs))),
            },
            e => (1, Some(e)),
        }
    }

    /// `a · b`, flattening products and folding constants (the constant goes first, then the
    /// factors in a canonical order).
    pub fn times(self, other: Expr) -> Expr {
        let mut factors = Vec::new();
        let mut k = 1u64;
        for e in [self, other] {
            match e {
                Expr::Mul(fs) => factors.extend(fs),
                f => factors.push(f),
            }
        }
        factors.retain(|f| match f {
            Expr::Const(c) => {
                k = k.saturating_mul(*c);
                false
            }
            _ => true,
        });
        if k == 0 {
            return Expr::Const(0);
        }
        factors.sort_by_cached_key(|f| f.sort_key());
        if k != 1 || factors.is_empty() {
            factors.insert(0, Expr::Const(k));
        }
        if factors.len() == 1 {
            factors.pop().unwrap_or(Expr::Const(1))
        } else {
            Expr::Mul(factors)
        }
    }

    /// Canonical order of factors: symbols in [`Sym::ALL`] order, then compound terms by text.
    fn sort_key(&self) -> (usize, String) {
        match self {
            Expr::Sym(s) => (Sym::ALL.iter().position(|x| x == s).unwrap_or(0), String::new()),
            e => (Sym::ALL.len(), e.to_string()),
        }
    }

    pub fn min(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::Const(a), Expr::Const(b)) => Expr::Const(a.min(b)),
            (a, b) if a == b => a,
            (a, b) => Expr::Min(Box::new(a), Box::new(b)),
        }
    }

    pub fn max(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::Const(a), Expr::Const(b)) => Expr::Const(a.max(b)),
            (Expr::Const(0), b) | (b, Expr::Const(0)) => b,
            (a, b) if a == b => a,
            (a, b) => Expr::Max(Box::new(a), Box::new(b)),
        }
    }

    pub fn cdiv(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::Const(a), Expr::Const(b)) if b > 0 => Expr::Const(a.div_ceil(b)),
            (a, Expr::Const(1)) => a,
            (a, b) => Expr::CeilDiv(Box::new(a), Box::new(b)),
        }
    }

    /// `floor(a / b)`.
    pub fn fdiv(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::Const(a), Expr::Const(b)) if b > 0 => Expr::Const(a / b),
            (a, Expr::Const(1)) => a,
            (a, b) => Expr::FloorDiv(Box::new(a), Box::new(b)),
        }
    }

    pub fn as_const(&self) -> Option<u64> {
        match self {
            Expr::Const(c) => Some(*c),
            _ => None,
        }
    }

    /// Evaluates with checked arithmetic: overflow and division by zero are errors.
    pub fn eval(&self, env: &Env) -> Result<u64, ProgramError> {
        let err = |reason: &str| ProgramError::Eval {
            expr: self.to_string(),
            reason: reason.to_string(),
        };
        Ok(match self {
            Expr::Const(c) => *c,
            Expr::Sym(s) => env.get(*s),
            Expr::Add(ts) => {
                let mut acc = 0u64;
                for t in ts {
                    acc = acc.checked_add(t.eval(env)?).ok_or_else(|| err("overflow"))?;
                }
                acc
            }
            Expr::Mul(fs) => {
                let mut acc = 1u64;
                for f in fs {
                    acc = acc.checked_mul(f.eval(env)?).ok_or_else(|| err("overflow"))?;
                }
                acc
            }
            Expr::Min(a, b) => a.eval(env)?.min(b.eval(env)?),
            Expr::Max(a, b) => a.eval(env)?.max(b.eval(env)?),
            Expr::CeilDiv(a, b) => {
                let d = b.eval(env)?;
                if d == 0 {
                    return Err(err("division by zero"));
                }
                a.eval(env)?.div_ceil(d)
            }
            Expr::FloorDiv(a, b) => {
                let d = b.eval(env)?;
                if d == 0 {
                    return Err(err("division by zero"));
                }
                a.eval(env)? / d
            }
        })
    }

    /// Whether the expression mentions `s`.
    pub fn uses(&self, s: Sym) -> bool {
        match self {
            Expr::Const(_) => false,
            Expr::Sym(t) => *t == s,
            Expr::Add(v) | Expr::Mul(v) => v.iter().any(|e| e.uses(s)),
            Expr::Min(a, b) | Expr::Max(a, b) | Expr::CeilDiv(a, b) | Expr::FloorDiv(a, b) => a.uses(s) || b.uses(s),
        }
    }
}

impl std::ops::Add for Expr {
    type Output = Expr;
    fn add(self, other: Expr) -> Expr {
        self.plus(other)
    }
}

impl std::ops::Mul for Expr {
    type Output = Expr;
    fn mul(self, other: Expr) -> Expr {
        self.times(other)
    }
}

impl Default for Expr {
    fn default() -> Self {
        Expr::Const(0)
    }
}

impl From<u64> for Expr {
    fn from(n: u64) -> Self {
        Expr::Const(n)
    }
}

impl From<usize> for Expr {
    fn from(n: usize) -> Self {
        Expr::Const(n as u64)
    }
}

impl From<Sym> for Expr {
    fn from(s: Sym) -> Self {
        Expr::Sym(s)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(c) => write!(f, "{c}"),
            Expr::Sym(s) => f.write_str(s.name()),
            Expr::Add(ts) => {
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" + ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Expr::Mul(fs) => {
                for (i, x) in fs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("*")?;
                    }
                    match x {
                        Expr::Add(_) => write!(f, "({x})")?,
                        _ => write!(f, "{x}")?,
                    }
                }
                Ok(())
            }
            Expr::Min(a, b) => write!(f, "min({a}, {b})"),
            Expr::Max(a, b) => write!(f, "max({a}, {b})"),
            Expr::CeilDiv(a, b) => write!(f, "cdiv({a}, {b})"),
            Expr::FloorDiv(a, b) => write!(f, "fdiv({a}, {b})"),
        }
    }
}

/// Recursive-descent parser of the text [`Expr`]'s `Display` writes.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, reason: &str) -> Result<T, ProgramError> {
        Err(ProgramError::Parse {
            text: self.text.to_string(),
            reason: format!("{reason} at byte {}", self.pos),
        })
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<Expr, ProgramError> {
        let mut e = self.term()?;
        while self.eat("+") {
            e = e.plus(self.term()?);
        }
        Ok(e)
    }

    fn term(&mut self) -> Result<Expr, ProgramError> {
        let mut e = self.atom()?;
        while self.eat("*") {
            e = e.times(self.atom()?);
        }
        Ok(e)
    }

    fn call2(&mut self) -> Result<(Expr, Expr), ProgramError> {
        let a = self.expr()?;
        if !self.eat(",") {
            return self.fail("expected `,`");
        }
        let b = self.expr()?;
        if !self.eat(")") {
            return self.fail("expected `)`");
        }
        Ok((a, b))
    }

    fn atom(&mut self) -> Result<Expr, ProgramError> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: u64 = match rest[..digits].parse() {
                Ok(n) => n,
                Err(_) => return self.fail("number out of range"),
            };
            self.pos += digits;
            return Ok(Expr::Const(n));
        }
        if self.eat("(") {
            let e = self.expr()?;
            if !self.eat(")") {
                return self.fail("expected `)`");
            }
            return Ok(e);
        }
        for (name, ctor) in [
            ("min(", Expr::min as fn(Expr, Expr) -> Expr),
            ("max(", Expr::max as fn(Expr, Expr) -> Expr),
            ("cdiv(", Expr::cdiv as fn(Expr, Expr) -> Expr),
            ("fdiv(", Expr::fdiv as fn(Expr, Expr) -> Expr),
        ] {
            if self.eat(name) {
                let (a, b) = self.call2()?;
                return Ok(ctor(a, b));
            }
        }
        let ident = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let word = &rest[..ident];
        match Sym::ALL.iter().find(|s| s.name() == word) {
            Some(s) => {
                self.pos += ident;
                Ok(Expr::Sym(*s))
            }
            None => self.fail(
                "expected a number, a symbol (batch, tokens, past, max_len, slots, slot, sms), min, max, cdiv or fdiv",
            ),
        }
    }
}

impl FromStr for Expr {
    type Err = ProgramError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Parser { text: s, pos: 0 };
        let e = p.expr()?;
        p.skip_ws();
        if p.pos != s.len() {
            return p.fail("unexpected text");
        }
        Ok(e)
    }
}

serde_as_text!(Expr);

/// A comparison of two expressions over the call's symbols, written `lhs >= rhs` or
/// `lhs < rhs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub lhs: Expr,
    pub cmp: Cmp,
    pub rhs: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Ge,
    Lt,
}

impl Cond {
    pub fn ge(lhs: Expr, rhs: Expr) -> Cond {
        Cond { lhs, cmp: Cmp::Ge, rhs }
    }

    pub fn lt(lhs: Expr, rhs: Expr) -> Cond {
        Cond { lhs, cmp: Cmp::Lt, rhs }
    }

    pub fn holds(&self, env: &Env) -> Result<bool, ProgramError> {
        let (a, b) = (self.lhs.eval(env)?, self.rhs.eval(env)?);
        Ok(match self.cmp {
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
        })
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.cmp {
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
        };
        write!(f, "{} {op} {}", self.lhs, self.rhs)
    }
}

impl FromStr for Cond {
    type Err = ProgramError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lhs, cmp, rhs) = if let Some((a, b)) = s.split_once(">=") {
            (a, Cmp::Ge, b)
        } else if let Some((a, b)) = s.split_once('<') {
            (a, Cmp::Lt, b)
        } else {
            return Err(ProgramError::Parse {
                text: s.to_string(),
                reason: "a condition is `EXPR >= EXPR` or `EXPR < EXPR`".into(),
            });
        };
        Ok(Cond {
            lhs: lhs.trim().parse()?,
            cmp,
            rhs: rhs.trim().parse()?,
        })
    }
}

serde_as_text!(Cond);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_round_trip_through_text() {
        let b = || Expr::sym(Sym::Batch);
        let t = || Expr::sym(Sym::Tokens);
        let cases = [
            b().times(t()).times(Expr::c(2048)),
            b().times(t()).plus(Expr::c(7)).times(Expr::c(3)),
            t().times(b())
                .times(Expr::c(2))
                .plus(b().times(t()).times(Expr::c(3)))
                .plus(Expr::c(4)),
            Expr::sym(Sym::Past).plus(t()).min(Expr::c(4095)),
            t().cdiv(Expr::c(16)).max(Expr::c(1)),
            Expr::c(5),
        ];
        for e in cases {
            let text = e.to_string();
            let back: Expr = text.parse().unwrap();
            assert_eq!(back, e, "{text}");
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), e);
        }
        assert_eq!(b().times(t()).times(Expr::c(2048)).to_string(), "2048*batch*tokens");
        // Like terms collect whatever the factor order.
        let sum = t()
            .times(b())
            .times(Expr::c(2))
            .plus(b().times(t()).times(Expr::c(3)))
            .plus(Expr::c(4));
        assert_eq!(sum.to_string(), "5*batch*tokens + 4");
    }

    #[test]
    fn evaluation_folds_and_checks() {
        let env = Env {
            batch: 2,
            tokens: 5,
            past: 10,
            max_len: 64,
            slots: 4,
            slot: 1,
            sms: 132,
        };
        let e: Expr = "cdiv(batch*tokens, 4) + min(past+tokens, 12)*2".parse().unwrap();
        assert_eq!(e.eval(&env).unwrap(), 3 + 24);
        let div0: Expr = "cdiv(1, slot*0)".parse().unwrap();
        assert_eq!(div0, Expr::CeilDiv(Box::new(Expr::c(1)), Box::new(Expr::c(0))));
        assert!(div0.eval(&env).is_err());
        let floor: Expr = "fdiv(2*sms, 3*batch) + fdiv(past, 1)".parse().unwrap();
        assert_eq!(floor.to_string(), "fdiv(2*sms, 3*batch) + past");
        assert_eq!(floor.eval(&env).unwrap(), 264 / 6 + 10);
        assert!("fdiv(1, slot*0)".parse::<Expr>().unwrap().eval(&env).is_err());
        let big = Expr::c(u64::MAX).times(Expr::sym(Sym::Batch));
        assert!(big.eval(&env).is_err());
        assert!("batch +".parse::<Expr>().is_err());
        assert!("bach".parse::<Expr>().is_err());
        assert!("min(1 2)".parse::<Expr>().is_err());
    }
}
