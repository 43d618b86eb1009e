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
        let file = SurgeryFile::load_source(&source.join("config.json"))?;
        return plan_config(&file.value, format, None, surgeries);
    }
    let file = SurgeryFile::load_source(source)?;
    plan_config(&file.value, format, None, surgeries)
}

/// An Apriel2 source is parsed as a spec first, so that its errors carry the file, line and
/// column (the plan reads the config as a plain value).
fn check_apriel2_source(source: &Path, format: Option<SourceFormat>) -> Result<()> {
    let file = if source.is_dir() {
        source.join("config.json")
    } else {
        source.to_path_buf()
    };
    // What cannot be read is reported by the plan itself.
    let Ok(config) = SurgeryFile::load_source(&file) else {
        return Ok(());
    };
    let format = format.map_or_else(|| SourceFormat::detect(&config.value).ok(), Some);
    if format == Some(SourceFormat::Apriel2) {
        modelc::spec::load(source)?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let format = args.format.as_deref().map(SourceFormat::from_name).transpose()?;
    check_apriel2_source(&args.source, format)
        .with_context(|| format!("planning the conversion of {}", args.source.display()))?;
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
