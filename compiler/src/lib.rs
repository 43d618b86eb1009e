//! modelc: a compiler for Apriel2 hybrid LLM architectures.
//!
//! Pipeline (one module per arrow, dependencies point one way):
//! `spec` (config → [`spec::ModelSpec`]) → `surgery` (spec + surgeries → target spec + plan) →
//! `ir` (lowering into a petgraph IR) → `passes` → `codegen` (CUDA C); `reference` is the CPU
//! interpreter of the IR, the oracle for everything else. `typed` is what the crates generated
//! from specs (`modelc_macros`, `modelc build`) use of the compiler at run time.

pub mod codegen;
pub mod ir;
pub mod passes;
pub mod reference;
pub mod spec;
pub mod surgery;
pub mod typed;
