//! Surgery YAML (or JSON) files: read with positions, so that errors point at the line and
//! column of the offending key.

use std::path::Path;

use serde_json::{Map, Number, Value};

use crate::spec::doc::{Node, Value as DocValue};

use super::error::SurgeryError;

/// A loaded surgery: its name (the path as given), its value, and its spanned tree.
#[derive(Debug, Clone)]
pub struct SurgeryFile {
    pub name: String,
    pub value: Value,
    node: Option<Node>,
}

impl SurgeryFile {
    /// A surgery from text; `name` names it in errors. YAML unless `name` ends in `.json`
    /// (YAML parses JSON too, but JSON errors read better from the JSON parser).
    pub fn parse(src: &str, name: &str) -> Result<SurgeryFile, SurgeryError> {
        Self::parse_as(src, name, Role::Surgery)
    }

    /// A source config from text (`modelc plan CONFIG`): errors call it the source config.
    pub fn parse_source(src: &str, name: &str) -> Result<SurgeryFile, SurgeryError> {
        Self::parse_as(src, name, Role::Source)
    }

    fn parse_as(src: &str, name: &str, role: Role) -> Result<SurgeryFile, SurgeryError> {
        let parsed = if name.to_ascii_lowercase().ends_with(".json") {
            crate::spec::json::parse(src, name)
        } else {
            crate::spec::yaml::parse(src, name)
        }
        .map_err(SurgeryError::SurgeryFile)?;
        let value = match &parsed {
            None => Value::Object(Map::new()),
            Some(n) => to_json(n, name, "")?,
        };
        let value = match value {
            Value::Null => Value::Object(Map::new()),
            v @ Value::Object(_) => v,
            other => {
                return Err(SurgeryError::Config {
                    origin: name.to_string(),
                    pos: parsed.as_ref().and_then(|n| n.pos).map(|p| (p.line, p.column)),
                    path: String::new(),
                    message: format!(
                        "{} is a mapping ({}), found {}",
                        role.noun(),
                        role.content(),
                        kind(&other)
                    ),
                })
            }
        };
        super::algebra::check_init_fields(&value, name).map_err(|e| locate_in(e, name, parsed.as_ref()))?;
        Ok(SurgeryFile {
            name: name.to_string(),
            value,
            node: parsed,
        })
    }

    /// Reads a surgery file.
    pub fn load(path: &Path) -> Result<SurgeryFile, SurgeryError> {
        Self::load_as(path, Role::Surgery)
    }

    /// Reads a source config file (see [`SurgeryFile::parse_source`]).
    pub fn load_source(path: &Path) -> Result<SurgeryFile, SurgeryError> {
        Self::load_as(path, Role::Source)
    }

    fn load_as(path: &Path, role: Role) -> Result<SurgeryFile, SurgeryError> {
        let src = std::fs::read_to_string(path).map_err(|source| SurgeryError::Io {
            path: path.to_path_buf(),
            action: role.read_action(),
            source,
        })?;
        SurgeryFile::parse_as(&src, &path.display().to_string(), role)
    }

    /// Adds this file's line and column to a config error about it.
    pub fn locate(&self, err: SurgeryError) -> SurgeryError {
        locate_in(err, &self.name, self.node.as_ref())
    }
}

/// What a loaded file is, for its error messages.
#[derive(Clone, Copy)]
enum Role {
    Surgery,
    Source,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Role::Surgery => "a surgery",
            Role::Source => "a source config",
        }
    }

    fn content(self) -> &'static str {
        match self {
            Role::Surgery => "a partial Apriel2 config",
            Role::Source => "an Apriel2 or Hugging Face config",
        }
    }

    fn read_action(self) -> &'static str {
        match self {
            Role::Surgery => "cannot read the surgery",
            Role::Source => "cannot read the source config",
        }
    }
}

/// Loads surgery files as `(name, value)` pairs for [`super::algebra::surgery_chain`].
pub fn load_surgeries(paths: &[impl AsRef<Path>]) -> Result<Vec<SurgeryFile>, SurgeryError> {
    paths.iter().map(|p| SurgeryFile::load(p.as_ref())).collect()
}

/// Adds positions to config errors that name one of `files`.
pub fn locate_all(err: SurgeryError, files: &[SurgeryFile]) -> SurgeryError {
    match err {
        SurgeryError::InSurgery { origin, source } => SurgeryError::InSurgery {
            origin,
            source: Box::new(locate_all(*source, files)),
        },
        SurgeryError::Config { ref origin, .. } => match files.iter().find(|f| f.name == *origin) {
            Some(f) => f.locate(err),
            None => err,
        },
        other => other,
    }
}

fn locate_in(err: SurgeryError, name: &str, node: Option<&Node>) -> SurgeryError {
    match err {
        SurgeryError::Config {
            origin,
            pos: None,
            path,
            message,
        } if origin == name => {
            let pos = node.and_then(|n| find(n, &path)).map(|p| (p.line, p.column));
            SurgeryError::Config {
                origin,
                pos,
                path,
                message,
            }
        }
        other => other,
    }
}

/// The position of the key at a dotted path (`a.b[2].c`): the key's own position when it is a
/// mapping key, else the value's.
fn find(root: &Node, path: &str) -> Option<crate::spec::doc::Pos> {
    if path.is_empty() {
        return root.pos;
    }
    let mut node = root;
    let mut pos = root.pos;
    for seg in path.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            let DocValue::Map(entries) = &node.value else {
                return pos;
            };
            let (k, v) = entries.iter().find(|(k, _)| k.name == name)?;
            pos = k.pos.or(v.pos);
            node = v;
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let i: usize = idx.trim_end_matches(']').parse().ok()?;
            let DocValue::Seq(items) = &node.value else {
                return pos;
            };
            node = items.get(i)?;
            pos = node.pos;
        }
    }
    pos
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn to_json(n: &Node, file: &str, path: &str) -> Result<Value, SurgeryError> {
    Ok(match &n.value {
        DocValue::Null => Value::Null,
        DocValue::Bool(b) => Value::Bool(*b),
        DocValue::Int(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Value::from(v)
            } else if let Ok(v) = u64::try_from(*i) {
                Value::from(v)
            } else {
                return Err(SurgeryError::Config {
                    origin: file.to_string(),
                    pos: n.pos.map(|p| (p.line, p.column)),
                    path: path.to_string(),
                    message: format!("integer {i} is out of range"),
                });
            }
        }
        DocValue::Float(x) => match Number::from_f64(*x) {
            Some(num) => Value::Number(num),
            None => {
                return Err(SurgeryError::Config {
                    origin: file.to_string(),
                    pos: n.pos.map(|p| (p.line, p.column)),
                    path: path.to_string(),
                    message: format!("{x} is not a finite number"),
                })
            }
        },
        DocValue::Str(s) => Value::String(s.clone()),
        DocValue::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, it)| to_json(it, file, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        DocValue::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let p = super::algebra::join(path, &k.name);
                m.insert(k.name.clone(), to_json(v, file, &p)?);
            }
            Value::Object(m)
        }
    })
}
