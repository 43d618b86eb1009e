//! `modelc convert`: stream a checkpoint through surgeries into a new checkpoint directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use modelc::surgery::convert::{convert_checkpoint, ConvertOptions, DEFAULT_MAX_SHARD_SIZE};
use modelc::surgery::load::{load_surgeries, locate_all};
use modelc::surgery::sources::SourceFormat;
use modelc_runtime::tensor::DType;

/// Arguments of `modelc convert`.
#[derive(clap::Args)]
pub struct Args {
    /// The source checkpoint directory (config.json + safetensors); only read.
    pub source: PathBuf,
    /// The output directory; must not exist unless --force.
    pub out: PathBuf,
    /// Surgery YAMLs applied in order.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Source format (apriel2, qwen2, llava, llama, mistral); detected from config.json if absent.
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Seed of random initialisations (each tensor's stream depends on it and its key).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest shard, in bytes (suffixes KB, MB, GB, KiB, MiB, GiB accepted). Default 5GiB.
    #[arg(long)]
    pub max_shard_size: Option<String>,
    /// Output dtype (bf16, f16, f32, f64); default: the source's.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Replace an existing output directory (only once the new one is complete).
    #[arg(long)]
    pub force: bool,
}

/// `123`, `5GB`, `512MiB`, ...
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{text}` is not a size (an integer with an optional unit)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => bail!("unknown size unit `{other}` in `{text}` (use B, KB, MB, GB, KiB, MiB, GiB)"),
    };
    let size = n
        .checked_mul(mult)
        .with_context(|| format!("size `{text}` is too large"))?;
    if size == 0 {
        bail!("--max-shard-size must be positive");
    }
    Ok(size)
}

/// `bf16`, `f16`, `f32`, `f64` (and torch names).
pub fn parse_dtype(text: &str) -> Result<DType> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "bf16" | "bfloat16" => DType::BF16,
        "f16" | "fp16" | "float16" | "half" => DType::F16,
        "f32" | "fp32" | "float32" | "float" => DType::F32,
        "f64" | "fp64" | "float64" | "double" => DType::F64,
        other => bail!("unknown dtype `{other}` (valid: bf16, f16, f32, f64)"),
    })
}

pub fn run(args: Args) -> Result<()> {
    let opts = ConvertOptions {
        format: args.format.as_deref().map(SourceFormat::from_name).transpose()?,
        seed: args.seed,
        max_shard_size: match &args.max_shard_size {
            Some(s) => parse_size(s)?,
            None => DEFAULT_MAX_SHARD_SIZE,
        },
        dtype: args.dtype.as_deref().map(parse_dtype).transpose()?,
        force: args.force,
    };
    let files = load_surgeries(&args.surgeries)?;
    let named: Vec<_> = files.iter().map(|f| (f.name.clone(), f.value.clone())).collect();

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({binary_bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = convert_checkpoint(&args.source, &args.out, &named, &opts, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("tensors {}/{}", p.tensors_done, p.tensors_total));
    });
    bar.finish_and_clear();
    let report = result.map_err(|e| locate_all(e, &files)).with_context(|| {
        format!(
            "converting {} into {} (nothing was written there)",
            args.source.display(),
            args.out.display()
        )
    })?;
    for note in &report.conversion.notes {
        eprintln!("note: {note}");
    }
    warn_non_finite(&report.non_finite);
    println!(
        "wrote {} tensors ({} bytes, {}) from a {} checkpoint to {}",
        report.tensors,
        report.bytes,
        report.dtype,
        report.conversion.source_format.name(),
        report.out_dir.display()
    );
    for f in &report.files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// Warns about tensors written with NaN/Inf values (the conversion copies what it is given; a
/// model with them produces non-finite logits).
fn warn_non_finite(tensors: &[(String, usize)]) {
    const SHOWN: usize = 10;
    for (key, n) in tensors.iter().take(SHOWN) {
        eprintln!("warning: tensor `{key}` has {n} non-finite value(s) (NaN or Inf)");
    }
    if tensors.len() > SHOWN {
        eprintln!(
            "warning: ... and {} more tensor(s) with non-finite values",
            tensors.len() - SHOWN
        );
    }
}
