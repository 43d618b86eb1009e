//! Spec errors: every one names the file, the position (line:column, 1-based, where the spec came
//! from text), the key path (`decoder.blocks.attn.mixer.heads`) and what was expected.

use std::fmt;
use std::path::PathBuf;

use super::doc::Pos;

/// What went wrong, for callers that branch on it (the message says the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not valid YAML / JSON.
    Syntax,
    /// The file holds no document (or only `null`).
    Empty,
    /// A value of the wrong type (a string where an integer belongs, ...).
    WrongType,
    /// A required key is absent.
    Missing,
    /// A key the schema does not have.
    UnknownKey,
    /// A value of the right type outside its domain (zero sizes, unknown type names, ...).
    InvalidValue,
    /// Sizes that do not fit together (`heads % head_groups != 0`, ...).
    Constraint,
    /// Valid upstream, but not (yet) supported by modelc (vision encoder, llama3 rotary, ...).
    Unsupported,
}

/// Where in a spec an error is: file, optional text position, key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The file (or the origin string given by the caller).
    pub file: String,
    /// 1-based line, when the spec came from text.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the spec came from text.
    pub column: Option<usize>,
    /// Dotted key path (`decoder.blocks.attn.mixer.heads`, `decoder.pattern[2]`); empty for the
    /// document itself.
    pub path: String,
}

impl At {
    /// A place in a spec's text (1-based line and column), before any key path is known.
    pub(crate) fn text(file: &str, pos: Pos) -> At {
        At {
            file: file.to_string(),
            line: Some(pos.line),
            column: Some(pos.column),
            path: String::new(),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        Ok(())
    }
}

/// An error reading or resolving a spec. Never a panic: every malformed input ends here.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read the spec: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: not a spec: expected a .yaml, .yml or .json file, or a checkpoint directory holding config.json",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    #[error("{at}: {message}")]
    Invalid { at: At, kind: ErrorKind, message: String },
}

impl SpecError {
    pub(crate) fn new(at: At, kind: ErrorKind, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            at,
            kind,
            message: message.into(),
        }
    }

    /// The error's kind; `None` for I/O and format errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            SpecError::Invalid { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Where the error is, for errors about the content.
    pub fn at(&self) -> Option<&At> {
        match self {
            SpecError::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }

    /// `(line, column)`, 1-based, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        let at = self.at()?;
        Some((at.line?, at.column?))
    }

    /// The dotted key path, for errors about the content.
    pub fn key_path(&self) -> Option<&str> {
        self.at().map(|a| a.path.as_str())
    }

    /// The message without the location prefix.
    pub fn message(&self) -> String {
        match self {
            SpecError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}
