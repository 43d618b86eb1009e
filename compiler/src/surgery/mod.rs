//! Surgery: config algebra, conversion plans, converters, sources and the streaming executor
//! (reference §4 and §5; `docs/surgery.md`).
//!
//! A surgery is a partial Apriel2 config whose mixers, sub-mixers, `mlp` and `normalization` may
//! carry `init: transfer | random`. [`algebra`] composes configs; [`planner`] turns a pair of
//! configs into a [`expr::Plan`] (one expression per target tensor) using [`converters`];
//! [`conversion`] chains a source format's plan ([`sources`]) with one plan per surgery;
//! [`executor`] streams a checkpoint through the composed plan ([`eval`] evaluates one
//! expression, [`init`] fills new tensors); [`convert`] is the whole `modelc convert`.

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

pub use algebra::{apply_surgeries, apply_surgery, compose_configs, finalize, strip_init, surgery_chain};
pub use conversion::{build_conversion, Conversion};
pub use convert::{convert_checkpoint, plan_checkpoint, plan_config, ConvertOptions};
pub use error::SurgeryError;
pub use expr::{Expr, Plan, PlanError};
pub use load::SurgeryFile;
pub use planner::plan_surgery;
pub use render::render_tree;
pub use sources::SourceFormat;
