//! The CPU reference interpreter: runs the unfused IR in f64 (or f32-rounded) arithmetic.
//! It is the oracle for every fusion and GPU kernel, and the `--device cpu` backend.

pub mod array;
pub mod ops;

pub use array::Array;
