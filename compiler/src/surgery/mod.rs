//! Surgery: config algebra, conversion plans, converters, sources and the streaming executor
//! (reference §4 and §5; `docs/surgery.md`).
//!
//! A surgery is a partial Apriel2 config whose mixers, sub-mixers, `mlp` and `normalization` may
//! carry `init: transfer | random`. [`algebra`] composes configs; [`planner`] turns a pair of
//! configs into a [`expr::Plan`] (one expression per target tensor); plans compose by
//! substitution; [`executor`] streams a checkpoint through a plan.

pub mod algebra;
pub mod conversion;
pub mod convert;
pub mod converters;
pub mod error;
pub mod eval;
pub mod executor;
pub mod expr;
pub mod init;
pub mod load;
pub mod planner;
pub mod render;
pub mod sources;

pub use algebra::{apply_surgeries, apply_surgery, compose_configs, finalize, strip_init};
pub use error::SurgeryError;
