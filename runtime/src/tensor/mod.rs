//! Host tensors: a dtype, a shape and little-endian bytes, owned ([`HostTensor`]) or borrowed
//! from a memory-mapped file ([`TensorView`]).

mod convert;
mod dtype;
mod error;
mod host;
mod view;

pub use dtype::DType;
pub use error::TensorError;
pub use host::HostTensor;
pub use view::TensorView;
