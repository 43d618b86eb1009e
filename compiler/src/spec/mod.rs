//! Spec front end: Apriel2 configs (YAML or `config.json`) into a resolved [`ModelSpec`].
//!
//! Text is parsed into a spanned tree (`doc`, from `yaml` or `json`), then resolved (`parse`,
//! `block`, `mixer`) with defaults filled and every error located (`error`). `write` turns a spec
//! back into a `config.json`; `layout` lists its checkpoint tensors. The accepted keys, defaults
//! and the choices made where upstream is inconsistent are in `docs/spec.md`.

pub mod block;
pub mod doc;
pub mod error;
pub mod json;
pub mod layout;
pub mod mixer;
pub mod model;
pub mod names;
pub mod parse;
mod reader;
pub mod write;
pub mod yaml;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{At, ErrorKind, SpecError};
pub use layout::{parameter_count, WeightDecl};
pub use model::*;
pub use write::to_config_json;

use doc::{Node, Value};

/// Source text formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Options of the resolver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept (and ignore) the surgery key `init: transfer | random` on mixers, sub-mixers, MLPs
    /// and norms. Off for model specs, where `init` is an error.
    pub allow_init: bool,
}

/// Load a spec from a `.yaml` / `.yml` / `.json` file, or a checkpoint directory holding
/// `config.json`.
pub fn load(path: &Path) -> Result<ModelSpec, SpecError> {
    load_with(path, &ParseOptions::default())
}

/// [`load`] with options.
pub fn load_with(path: &Path, opts: &ParseOptions) -> Result<ModelSpec, SpecError> {
    let (file, format) = spec_file(path)?;
    let src = std::fs::read_to_string(&file).map_err(|source| SpecError::Io {
        path: file.clone(),
        source,
    })?;
    parse_str_with(&src, &file.display().to_string(), format, opts)
}

/// The file a spec path names (a checkpoint directory's `config.json`) and its format.
pub fn spec_file(path: &Path) -> Result<(std::path::PathBuf, Format), SpecError> {
    if path.is_dir() {
        return Ok((path.join("config.json"), Format::Json));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("yaml" | "yml") => Ok((path.to_path_buf(), Format::Yaml)),
        Some("json") => Ok((path.to_path_buf(), Format::Json)),
        _ => Err(SpecError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Parse a spec from text; `origin` names it in errors (usually the file path).
pub fn parse_str(src: &str, origin: &str, format: Format) -> Result<ModelSpec, SpecError> {
    parse_str_with(src, origin, format, &ParseOptions::default())
}

/// [`parse_str`] with options.
pub fn parse_str_with(src: &str, origin: &str, format: Format, opts: &ParseOptions) -> Result<ModelSpec, SpecError> {
    let root = match format {
        Format::Yaml => yaml::parse(src, origin)?,
        Format::Json => json::parse(src, origin)?,
    };
    resolve_node(root, origin, opts)
}

/// Resolve a config built in memory (e.g. by surgery); errors name the key path only.
pub fn from_json_value(v: &serde_json::Value, origin: &str) -> Result<ModelSpec, SpecError> {
    from_json_value_with(v, origin, &ParseOptions::default())
}

/// [`from_json_value`] with options.
pub fn from_json_value_with(v: &serde_json::Value, origin: &str, opts: &ParseOptions) -> Result<ModelSpec, SpecError> {
    resolve_node(Some(Node::from_json(v)), origin, opts)
}

fn resolve_node(root: Option<Node>, origin: &str, opts: &ParseOptions) -> Result<ModelSpec, SpecError> {
    let root = match root {
        Some(n) if n.value != Value::Null => n,
        other => {
            // Empty text points at its start; an in-memory null has no position.
            let pos = match other {
                None => Some(doc::Pos { line: 1, column: 1 }),
                Some(n) => n.pos,
            };
            return Err(SpecError::new(
                At {
                    file: origin.to_string(),
                    line: pos.map(|p| p.line),
                    column: pos.map(|p| p.column),
                    path: String::new(),
                },
                ErrorKind::Empty,
                "the spec is empty; expected an Apriel2 config (a mapping with at least `decoder`)",
            ));
        }
    };
    let ctx = reader::Ctx { file: origin, opts };
    parse::resolve(&root, &ctx)
}
