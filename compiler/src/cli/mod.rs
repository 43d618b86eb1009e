//! Subcommands. Each file holds its clap `Args` and a `run(Args) -> anyhow::Result<()>`.

pub mod bench;
pub mod build;
pub mod common;
pub mod convert;
pub mod graph;
pub mod kernels;
pub mod plan;
pub mod run;
pub mod typed_crate;
