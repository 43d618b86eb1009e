//! `modelc plan`: print the conversion plan of a source (and surgeries) as a tree, then the
//! resulting config. Writes nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use modelc::surgery::load::{load_surgeries, locate_all, SurgeryFile};
use modelc::surgery::sources::SourceFormat;
use modelc::surgery::{plan_checkpoint, plan_config, render_tree, Conversion, SurgeryError};
use modelc_runtime::weights::{Checkpoint, WeightsError};

/// Arguments of `modelc plan`.
#[derive(clap::Args)]
pub struct Args {
    /// The source: a checkpoint directory (config.json, safetensors optional) or a config file
    /// (.json, .yaml).
    pub source: PathBuf,
    /// Surgery YAMLs applied in order.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Source format (apriel2, qwen2, llava, llama, mistral); detected from the config if absent.
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Print the plan as JSON instead of a tree (the config is not printed).
    #[arg(long)]
    pub json: bool,
}

/// Plans from a checkpoint directory (using its tensor names when it has weights) or a config.
fn plan(
    source: &Path,
    format: Option<SourceFormat>,
    surgeries: &[(String, serde_json::Value)],
) -> Result<Conversion, SurgeryError> {
    if source.is_dir() {
        match Checkpoint::open(source) {
            Ok(ckpt) => return plan_checkpoint(&ckpt, format, surgeries),
            Err(WeightsError::NoWeights { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let file = SurgeryFile::load(&source.join("config.json"))?;
        return plan_config(&file.value, format, None, surgeries);
    }
    let file = SurgeryFile::load(source)?;
    plan_config(&file.value, format, None, surgeries)
}

pub fn run(args: Args) -> Result<()> {
    let format = args.format.as_deref().map(SourceFormat::from_name).transpose()?;
    let files = load_surgeries(&args.surgeries)?;
    let named: Vec<_> = files.iter().map(|f| (f.name.clone(), f.value.clone())).collect();
    let conv = plan(&args.source, format, &named)
        .map_err(|e| locate_all(e, &files))
        .with_context(|| format!("planning the conversion of {}", args.source.display()))?;
    for note in &conv.notes {
        eprintln!("note: {note}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&conv.plan.to_json())?);
        return Ok(());
    }
    print!("{}", render_tree(&conv.plan));
    println!();
    println!("config:");
    println!("{}", serde_json::to_string_pretty(&conv.config)?);
    Ok(())
}
