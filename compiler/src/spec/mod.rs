//! Spec front end: Apriel2 configs (YAML or `config.json`) into a resolved [`ModelSpec`].

pub mod model;

pub use model::*;
