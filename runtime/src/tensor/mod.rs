//! Host tensors: a dtype, a shape and little-endian bytes.

mod dtype;

pub use dtype::DType;
