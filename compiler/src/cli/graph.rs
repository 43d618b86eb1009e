//! `modelc graph`: the IR as deterministic text or Graphviz.

use std::path::PathBuf;

use anyhow::Result;

use super::common::{load_spec, lower, place, placement};
use modelc::ir::{dot::to_dot, text::to_text};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Stage {
    /// Straight out of lowering: every sub-mixer of stochastic layers.
    Lowered,
    /// Specialised to a placement (one sub-mixer per stochastic layer).
    Placed,
}

/// Arguments of `modelc graph`.
#[derive(clap::Args)]
pub struct Args {
    /// The spec: a YAML/JSON Apriel2 config, or a checkpoint directory with config.json.
    pub spec: PathBuf,
    /// Surgery YAMLs applied in order first.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Which IR: as lowered (every sub-mixer) or specialised to a placement.
    #[arg(long, value_enum, default_value = "lowered")]
    pub stage: Stage,
    /// Placement for `--stage placed`: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
    /// Graphviz output instead of text.
    #[arg(long)]
    pub dot: bool,
}

pub fn run(args: Args) -> Result<()> {
    let spec = load_spec(&args.spec, &args.surgeries)?;
    let mut graph = lower(&spec)?;
    if let Stage::Placed = args.stage {
        graph = place(graph, &placement(&spec, args.placement.as_deref())?)?;
    }
    let out = if args.dot { to_dot(&graph)? } else { to_text(&graph)? };
    print!("{out}");
    Ok(())
}
