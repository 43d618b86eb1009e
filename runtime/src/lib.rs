//! modelc-runtime: tensors, safetensors I/O, and the CUDA executor.
//!
//! Depends on no other modelc crate: the compiler and generated crates depend on it.

pub mod cpu;
pub mod cuda;
pub mod parallel;
pub mod program;
pub mod tensor;
pub mod typed;
pub mod weights;

pub use tensor::{DType, HostTensor, TensorView};
pub use weights::{Checkpoint, WeightsError};
