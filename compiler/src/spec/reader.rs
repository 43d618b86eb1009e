//! Typed, located access to a [`Node`] tree: every read either yields a value of the expected type
//! and range or a [`SpecError`] that names the file, position, key path and what was expected.

use super::doc::{Key, Node, Pos, Value};
use super::error::{At, ErrorKind, SpecError};
use super::model::{NormSpec, RotarySpec};
use super::ParseOptions;

/// Largest single size accepted (2^24): hidden sizes, head counts, vocabularies.
pub(crate) const MAX_SIZE: usize = 1 << 24;

/// What every reader needs: the origin (for messages) and the parse options.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub opts: &'a ParseOptions,
}

impl Ctx<'_> {
    pub fn at(&self, pos: Option<Pos>, path: &str) -> At {
        At {
            file: self.file.to_string(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: path.to_string(),
        }
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub(crate) fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                *c,
                strsim::jaro_winkler(&lower, c),
                strsim::damerau_levenshtein(&lower, c),
            )
        })
        .filter(|(c, jw, dl)| *jw >= 0.85 || *dl <= (c.len().max(name.len()) / 4).max(1))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _, _)| c)
}

/// Names other configs (HF Llama/Mistral, older Apriel2) use for keys of this schema.
const SYNONYMS: &[(&str, &str)] = &[
    ("num_layers", "num_blocks"),
    ("num_hidden_layers", "num_blocks"),
    ("n_layers", "num_blocks"),
    ("num_attention_heads", "heads"),
    ("num_heads", "heads"),
    ("num_key_value_heads", "head_groups"),
    ("kv_heads", "head_groups"),
    ("head_dim", "head_size"),
    ("head_size", "head_dim"),
    ("rope_theta", "rotary"),
    ("sliding_window", "window_size"),
    ("rms_norm_eps", "epsilon"),
    ("eps", "epsilon"),
    ("layer_norm_eps", "epsilon"),
    ("hidden_act", "activation"),
    ("max_seq_len", "max_position_embeddings"),
    ("d_state", "state_size"),
    ("mixer_type", "type"),
];

/// " (did you mean `x`?)" or "".
pub(crate) fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    let synonym = SYNONYMS
        .iter()
        .find(|(from, to)| *from == name && candidates.contains(to))
        .map(|(_, to)| *to);
    synonym
        .or_else(|| suggest(name, candidates))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// "`a`, `b`, `c`".
pub(crate) fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// A value in the tree, with its key path and the position of the key that introduced it.
pub(crate) struct Field<'a> {
    pub ctx: &'a Ctx<'a>,
    pub node: &'a Node,
    pub path: String,
    /// Position of the key (for errors about the value as a whole); `None` for the root.
    pub key_pos: Option<Pos>,
}

impl<'a> Field<'a> {
    pub fn root(ctx: &'a Ctx<'a>, node: &'a Node) -> Field<'a> {
        Field {
            ctx,
            node,
            path: String::new(),
            key_pos: None,
        }
    }

    /// An error located at the value.
    pub fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.ctx.at(self.node.pos.or(self.key_pos), &self.path), kind, msg)
    }

    /// An error located at the key (falling back to the value).
    pub fn err_at_key(&self, kind: ErrorKind, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.ctx.at(self.key_pos.or(self.node.pos), &self.path), kind, msg)
    }

    fn wrong(&self, expected: &str) -> SpecError {
        self.err(
            ErrorKind::WrongType,
            format!("expected {expected}, found {}", self.node.value.describe()),
        )
    }

    pub fn is_null(&self) -> bool {
        self.node.value == Value::Null
    }

    pub fn obj(&self) -> Result<Obj<'a>, SpecError> {
        match &self.node.value {
            Value::Map(entries) => Ok(Obj {
                ctx: self.ctx,
                entries,
                path: self.path.clone(),
                pos: self.key_pos.or(self.node.pos),
            }),
            _ => Err(self.wrong("a mapping")),
        }
    }

    pub fn seq(&self) -> Result<Vec<Field<'a>>, SpecError> {
        match &self.node.value {
            Value::Seq(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, n)| Field {
                    ctx: self.ctx,
                    node: n,
                    path: format!("{}[{i}]", self.path),
                    key_pos: n.pos,
                })
                .collect()),
            _ => Err(self.wrong("a list")),
        }
    }

    pub fn bool(&self) -> Result<bool, SpecError> {
        match self.node.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.wrong("a boolean (true or false)")),
        }
    }

    pub fn str(&self) -> Result<&'a str, SpecError> {
        match &self.node.value {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong("a string")),
        }
    }

    pub fn int(&self, what: &str) -> Result<i128, SpecError> {
        match self.node.value {
            Value::Int(i) => Ok(i),
            _ => Err(self.wrong(&format!("an integer ({what})"))),
        }
    }

    pub fn i64(&self, what: &str) -> Result<i64, SpecError> {
        let i = self.int(what)?;
        i64::try_from(i).map_err(|_| self.err(ErrorKind::InvalidValue, format!("{i} does not fit in 64 bits ({what})")))
    }

    /// A size: an integer in `1..=MAX_SIZE` (the cap keeps every weight's element count far from
    /// overflowing `usize` once sizes are multiplied together).
    pub fn size(&self, what: &str) -> Result<usize, SpecError> {
        self.size_max(what, MAX_SIZE)
    }

    /// An integer in `1..=max`.
    pub fn size_max(&self, what: &str, max: usize) -> Result<usize, SpecError> {
        let i = self.int(&format!("{what}, > 0"))?;
        if i <= 0 {
            return Err(self.err(ErrorKind::InvalidValue, format!("must be > 0 ({what}), found {i}")));
        }
        match usize::try_from(i) {
            Ok(u) if u <= max => Ok(u),
            _ => Err(self.err(
                ErrorKind::InvalidValue,
                format!("{i} is larger than any supported value ({what}, at most {max})"),
            )),
        }
    }

    /// A finite number (integers accepted).
    pub fn f64(&self, what: &str) -> Result<f64, SpecError> {
        let x = match self.node.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => return Err(self.wrong(&format!("a number ({what})"))),
        };
        if !x.is_finite() {
            return Err(self.err(ErrorKind::InvalidValue, format!("must be finite ({what}), found {x}")));
        }
        Ok(x)
    }

    pub fn positive_f64(&self, what: &str) -> Result<f64, SpecError> {
        let x = self.f64(what)?;
        if x <= 0.0 {
            return Err(self.err(ErrorKind::InvalidValue, format!("must be > 0 ({what}), found {x}")));
        }
        Ok(x)
    }

    /// A norm epsilon (see [`NormSpec::epsilon_problem`]).
    pub fn norm_epsilon(&self, what: &str) -> Result<f64, SpecError> {
        let x = self.f64(what)?;
        match NormSpec::epsilon_problem(x, what) {
            Some(problem) => Err(self.err(ErrorKind::InvalidValue, problem)),
            None => Ok(x),
        }
    }

    /// A RoPE base θ (see [`RotarySpec::theta_problem`]).
    pub fn rope_theta(&self) -> Result<f64, SpecError> {
        let x = self.f64("the RoPE base θ")?;
        match RotarySpec::theta_problem(x) {
            Some(problem) => Err(self.err(ErrorKind::InvalidValue, problem)),
            None => Ok(x),
        }
    }

    pub fn nonneg_f64(&self, what: &str) -> Result<f64, SpecError> {
        let x = self.f64(what)?;
        if x < 0.0 {
            return Err(self.err(ErrorKind::InvalidValue, format!("must be >= 0 ({what}), found {x}")));
        }
        Ok(x)
    }

    /// A string among `valid`, with a did-you-mean on a near miss.
    pub fn one_of(&self, what: &str, valid: &[&'static str]) -> Result<&'static str, SpecError> {
        let s = match &self.node.value {
            Value::Str(s) => s.as_str(),
            _ => return Err(self.wrong(&format!("a string ({what}: one of {})", list(valid)))),
        };
        valid.iter().copied().find(|v| *v == s).ok_or_else(|| {
            self.err(
                ErrorKind::InvalidValue,
                format!("unknown {what} `{s}`{}; valid: {}", did_you_mean(s, valid), list(valid)),
            )
        })
    }
}

/// A mapping being read.
pub(crate) struct Obj<'a> {
    pub ctx: &'a Ctx<'a>,
    pub entries: &'a [(Key, Node)],
    pub path: String,
    /// Where to point for errors about the mapping as a whole (its key, else its start).
    pub pos: Option<Pos>,
}

impl<'a> Obj<'a> {
    pub fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error about the mapping as a whole (e.g. a missing key), at the mapping's key.
    pub fn err(&self, key: &str, kind: ErrorKind, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.ctx.at(self.pos, &self.child_path(key)), kind, msg)
    }

    /// The entry, including an explicit `null`.
    pub fn raw(&self, key: &str) -> Option<Field<'a>> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(k, n)| Field {
            ctx: self.ctx,
            node: n,
            path: self.child_path(key),
            key_pos: k.pos,
        })
    }

    /// The entry; an explicit `null` reads as absent (the default applies).
    pub fn get(&self, key: &str) -> Option<Field<'a>> {
        self.raw(key).filter(|f| !f.is_null())
    }

    pub fn req(&self, key: &str, what: &str) -> Result<Field<'a>, SpecError> {
        self.get(key).ok_or_else(|| {
            let null = if self.raw(key).is_some() { " (it is null)" } else { "" };
            self.err(
                key,
                ErrorKind::Missing,
                format!("missing required key `{key}`{null}: {what}"),
            )
        })
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reject keys outside `allowed`. `init` (the surgery key) is accepted here only where
    /// `init_site` is true and the options allow it; its value must be `transfer` or `random`.
    pub fn check_keys(&self, allowed: &[&str], init_site: bool) -> Result<(), SpecError> {
        for (k, n) in self.entries {
            if allowed.contains(&k.name.as_str()) {
                continue;
            }
            let f = Field {
                ctx: self.ctx,
                node: n,
                path: self.child_path(&k.name),
                key_pos: k.pos,
            };
            if k.name == "init" && init_site {
                if !self.ctx.opts.allow_init {
                    return Err(f.err_at_key(
                        ErrorKind::UnknownKey,
                        "`init` is a surgery key (transfer or random initialisation); a model spec cannot carry it",
                    ));
                }
                f.one_of("init mode", &["transfer", "random"])?;
                continue;
            }
            let mut valid: Vec<&str> = allowed.to_vec();
            if init_site && self.ctx.opts.allow_init {
                valid.push("init");
            }
            return Err(f.err_at_key(
                ErrorKind::UnknownKey,
                format!(
                    "unknown key `{}`{}; valid keys here: {}",
                    k.name,
                    did_you_mean(&k.name, &valid),
                    list(&valid)
                ),
            ));
        }
        Ok(())
    }

    pub fn size_or(&self, key: &str, default: usize, what: &str) -> Result<usize, SpecError> {
        self.get(key).map_or(Ok(default), |f| f.size(what))
    }

    pub fn req_size(&self, key: &str, what: &str) -> Result<usize, SpecError> {
        self.req(key, &format!("{what}, an integer > 0"))?.size(what)
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, SpecError> {
        self.get(key).map_or(Ok(default), |f| f.bool())
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, SpecError> {
        self.get(key).map(|f| f.bool()).transpose()
    }

    pub fn req_bool(&self, key: &str, what: &str) -> Result<bool, SpecError> {
        self.req(key, &format!("{what}, true or false"))?.bool()
    }

    pub fn positive_f64_or(&self, key: &str, default: f64, what: &str) -> Result<f64, SpecError> {
        self.get(key).map_or(Ok(default), |f| f.positive_f64(what))
    }

    pub fn norm_epsilon_or(&self, key: &str, default: f64, what: &str) -> Result<f64, SpecError> {
        self.get(key).map_or(Ok(default), |f| f.norm_epsilon(what))
    }

    /// A nested mapping, or `None` when absent / null.
    pub fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, SpecError> {
        self.get(key).map(|f| f.obj()).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let keys = ["heads", "head_groups", "head_size", "window_size", "rotary"];
        assert_eq!(suggest("haeds", &keys), Some("heads"));
        assert_eq!(suggest("head_group", &keys), Some("head_groups"));
        assert_eq!(suggest("rotery", &keys), Some("rotary"));
        assert_eq!(suggest("num_blocks", &keys), None);
        assert_eq!(
            did_you_mean("num_layers", &["num_blocks", "type", "block"]),
            " (did you mean `num_blocks`?)"
        );
        assert_eq!(
            did_you_mean("head_dim", &["heads", "head_size"]),
            " (did you mean `head_size`?)"
        );
        assert_eq!(did_you_mean("zzz", &["heads", "head_size"]), "");
    }
}
