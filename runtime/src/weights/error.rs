//! Errors of checkpoint reading and writing; each names the file and/or tensor involved.

use std::path::PathBuf;

use crate::tensor::{DType, TensorError};

/// Everything that can go wrong opening, reading or writing safetensors checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint directory {dir} has no config.json")]
    MissingConfig { dir: PathBuf },
    #[error("{path} is not a valid config: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error(
        "checkpoint directory {dir} has no weights: expected model.safetensors, \
         model.safetensors.index.json or some *.safetensors file"
    )]
    NoWeights { dir: PathBuf },
    #[error("{path} is not a valid safetensors index: {reason}")]
    InvalidIndex { path: PathBuf, reason: String },
    #[error("{index} maps tensor `{key}` to shard {shard}, which does not exist")]
    MissingShard {
        index: PathBuf,
        shard: PathBuf,
        key: String,
    },
    #[error("{index} maps tensor `{key}` to {shard}, but that file does not contain it")]
    IndexKeyMissing {
        index: PathBuf,
        key: String,
        shard: PathBuf,
    },
    #[error("tensor `{key}` appears in both {first} and {second}")]
    DuplicateKey {
        key: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path} is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path} has a corrupt safetensors header: {detail}")]
    CorruptHeader { path: PathBuf, detail: String },
    #[error(
        "{path}: tensor `{key}` has dtype {dtype}, which modelc does not support \
         (supported: F64, F32, F16, BF16, I64, I32, U8)"
    )]
    UnsupportedDtype { path: PathBuf, key: String, dtype: String },
    #[error("no tensor `{key}` in {location}")]
    KeyNotFound { key: String, location: String },
    #[error("tensor `{key}`: {source}")]
    InvalidTensor {
        key: String,
        #[source]
        source: TensorError,
    },
    #[error("tensor `{key}` is declared twice in the output plan for {dir}")]
    DuplicateDeclared { key: String, dir: PathBuf },
    #[error("tensor `{key}` written out of order to {dir}: expected `{expected}` next")]
    OutOfOrder {
        key: String,
        expected: String,
        dir: PathBuf,
    },
    #[error("tensor `{key}` was not declared in the output plan for {dir}")]
    Undeclared { key: String, dir: PathBuf },
    #[error("tensor `{key}` written to {dir}, but every declared tensor was already written")]
    UnexpectedWrite { key: String, dir: PathBuf },
    #[error("tensor `{key}` ({dtype}, shape {shape:?}) needs {expected} bytes, got {found}")]
    WrongByteCount {
        key: String,
        dtype: DType,
        shape: Vec<usize>,
        expected: u64,
        found: u64,
    },
    #[error(
        "tensor `{key}` declared as {expected_dtype} {expected_shape:?} but written as {found_dtype} {found_shape:?}"
    )]
    WrongTensor {
        key: String,
        expected_dtype: DType,
        expected_shape: Vec<usize>,
        found_dtype: DType,
        found_shape: Vec<usize>,
    },
    #[error("output {dir} is incomplete: {missing} declared tensor(s) never written, first `{first}`")]
    Incomplete {
        dir: PathBuf,
        missing: usize,
        first: String,
    },
    #[error("the writer for {dir} failed earlier and cannot continue")]
    WriterFailed { dir: PathBuf },
    #[error("{path} already exists (pass --force to replace it)")]
    AlreadyExists { path: PathBuf },
}

impl WeightsError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WeightsError {
        let path = path.into();
        move |source| WeightsError::Io { path, source }
    }
}
