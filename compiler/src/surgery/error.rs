//! Surgery errors. Every message names what it is about: the surgery and key path, the layer and
//! mixer types, the tensor key and the shapes or bounds that disagree, or the file.

use std::path::PathBuf;

use crate::spec::{MixerKind, SpecError};

/// An error composing configs, planning, or converting a checkpoint. Never a panic.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// A surgery (or config) whose structure the algebra cannot use.
    #[error("{origin}{}: {}{message}", pos_suffix(pos), path_prefix(path))]
    Config {
        /// The surgery file, or `surgery N` for in-memory values.
        origin: String,
        /// 1-based line and column in the surgery file, when known.
        pos: Option<(usize, usize)>,
        /// Dotted key path (`decoder.blocks.attn.mixer.init`); empty for the document.
        path: String,
        message: String,
    },

    /// A file that could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A resolved config (source or the result of a surgery step) that the spec front end
    /// rejects; `context` is also the origin the spec error starts with.
    #[error("{source}")]
    Spec {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A transfer between two mixer types that has no converter.
    #[error(
        "layer {layer}{}: no converter from {from} to {to}; give the {} `init: random` in the \
         surgery to initialise it randomly",
        sub_label(sub_mixer),
        if sub_mixer.is_some() { "sub-mixer" } else { "mixer" }
    )]
    NoConverter {
        layer: usize,
        sub_mixer: Option<String>,
        from: MixerKind,
        to: MixerKind,
    },

    /// A transfer that is possible in principle but not with these sizes or flags.
    #[error("layer {layer}{}: {message}", sub_label(sub_mixer))]
    Transfer {
        layer: usize,
        sub_mixer: Option<String>,
        message: String,
    },

    /// A plan that is inconsistent with its source tensors or its target layout.
    #[error("{0}")]
    Plan(#[from] crate::surgery::expr::PlanError),

    /// The source checkpoint's format could not be told or is not supported.
    #[error("{0}")]
    Source(String),

    /// An error of one surgery step, named by its surgery.
    #[error("{origin}: {source}")]
    InSurgery {
        origin: String,
        #[source]
        source: Box<SurgeryError>,
    },

    /// A surgery file that is not valid YAML or not a surgery.
    #[error("{0}")]
    SurgeryFile(SpecError),

    /// Several source tensors with different dtypes and no `--dtype` to reconcile them.
    #[error(
        "the source tensors have several dtypes ({}); pass --dtype to choose the output dtype",
        found.join(", ")
    )]
    MixedDtypes { found: Vec<String> },

    /// Reading or writing checkpoint tensors failed.
    #[error("{0}")]
    Checkpoint(String),

    /// The runtime's safetensors I/O failed.
    #[error(transparent)]
    Weights(#[from] modelc_runtime::weights::WeightsError),
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn pos_suffix(pos: &Option<(usize, usize)>) -> String {
    match pos {
        Some((l, c)) => format!(":{l}:{c}"),
        None => String::new(),
    }
}

fn sub_label(sub: &Option<String>) -> String {
    match sub {
        Some(name) => format!(" (sub-mixer `{name}`)"),
        None => String::new(),
    }
}

impl SurgeryError {
    pub(crate) fn config(origin: &str, path: &str, message: impl Into<String>) -> SurgeryError {
        SurgeryError::Config {
            origin: origin.to_string(),
            pos: None,
            path: path.to_string(),
            message: message.into(),
        }
    }
}
