//! `modelc build`: parse, validate, lower, verify; write the IR and a summary to DIR.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::common::{load_spec, lower, place, placement, write_atomic};
use modelc::ir::{dot::to_dot, summary::summarize, text::to_text};

/// Arguments of `modelc build`.
#[derive(clap::Args)]
pub struct Args {
    /// The spec: a YAML/JSON Apriel2 config, or a checkpoint directory with config.json.
    pub spec: PathBuf,
    /// Surgery YAMLs applied in order before building.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Output directory (default: build/<spec name>).
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let spec = load_spec(&args.spec, &args.surgeries)?;
    let lowered = lower(&spec)?;
    let placement = placement(&spec, args.placement.as_deref())?;
    let placed = place(lowered.clone(), &placement)?;
    let summary = summarize(&spec, &lowered, &placed);

    let stem = args
        .spec
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let out = args.out.unwrap_or_else(|| PathBuf::from("build").join(stem));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let config = serde_json::to_string_pretty(&modelc::spec::to_config_json(&spec))?;
    write_atomic(&out.join("config.json"), config.as_bytes())?;
    write_atomic(&out.join("ir.lowered.txt"), to_text(&lowered)?.as_bytes())?;
    write_atomic(&out.join("ir.lowered.dot"), to_dot(&lowered)?.as_bytes())?;
    write_atomic(&out.join("ir.placed.txt"), to_text(&placed)?.as_bytes())?;
    let text = summary.to_text();
    write_atomic(&out.join("summary.txt"), text.as_bytes())?;
    write_atomic(&out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("{}: {} layers, hidden {}, vocab {}", args.spec.display(), spec.layers.len(), spec.hidden_size, spec.vocab_size);
    print!("{text}");
    println!("wrote {}", out.display());
    Ok(())
}
