//! Safetensors I/O: memory-mapped checkpoints ([`Checkpoint`], [`SafetensorsFile`]), layout
//! checks, a streaming sharded writer and atomic output directories.

mod checkpoint;
mod error;
mod file;

pub use checkpoint::Checkpoint;
pub use error::WeightsError;
pub use file::SafetensorsFile;
mod layout;

pub use layout::{check_entries, check_entries_dtype, check_layout, LayoutError, LayoutProblem};
mod writer;

pub use writer::{write_safetensors, ShardedWriter, TensorSpec, INDEX_FILE, SINGLE_FILE};
mod atomic;

pub use atomic::{canonical_target, remove_live_temps, remove_stale_temps, write_file_atomic, AtomicDir};
