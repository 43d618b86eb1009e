//! `modelc convert` as a library call: open the source, plan, check, stream into a temporary
//! directory, write `config.json`, copy tokenizer files, and rename into place. On any error
//! nothing appears at the output path, and the source is only ever read.

use std::path::{Path, PathBuf};

use modelc_runtime::tensor::DType;
use modelc_runtime::weights::{canonical_target, AtomicDir, Checkpoint};
use serde_json::Value;

use super::conversion::{build_conversion, layout_of, Conversion};
use super::error::SurgeryError;
use super::executor::{check_source, execute_to_dir, output_dtype, target_specs, Progress};
use super::sources::{import, SourceFormat};

/// Files copied from the source directory when present.
pub const COPIED_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "generation_config.json",
    "configuration_apriel2.py",
    "modeling_apriel2.py",
];

/// Default shard size: 5 GiB, as upstream and Hugging Face.
pub const DEFAULT_MAX_SHARD_SIZE: u64 = 5 << 30;

/// Options of a conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The source format; detected from `config.json` when `None`.
    pub format: Option<SourceFormat>,
    pub seed: u64,
    pub max_shard_size: u64,
    /// Output dtype; when `None` the source's (all source tensors must share one).
    pub dtype: Option<DType>,
    /// Replace an existing output directory.
    pub force: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: None,
            seed: 0,
            max_shard_size: DEFAULT_MAX_SHARD_SIZE,
            dtype: None,
            force: false,
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct ConvertReport {
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub tensors: usize,
    pub bytes: u64,
    pub dtype: DType,
    pub conversion: Conversion,
    /// Tensors written with NaN or ±Inf values, and how many (in plan order).
    pub non_finite: Vec<(String, usize)>,
}

/// Opens a source checkpoint directory and plans the surgeries on it.
pub fn plan_checkpoint(
    checkpoint: &Checkpoint,
    format: Option<SourceFormat>,
    surgeries: &[(String, Value)],
) -> Result<Conversion, SurgeryError> {
    plan_config(
        checkpoint.config(),
        format,
        Some(&|k: &str| checkpoint.contains(k)),
        surgeries,
    )
}

/// Plans the surgeries on a source config alone (no tensors: `modelc plan` on a config file).
pub fn plan_config(
    config: &Value,
    format: Option<SourceFormat>,
    has_key: Option<&dyn Fn(&str) -> bool>,
    surgeries: &[(String, Value)],
) -> Result<Conversion, SurgeryError> {
    let format = match format {
        Some(f) => f,
        None => SourceFormat::detect(config)?,
    };
    let imported = import(format, config, has_key)?;
    build_conversion(imported, surgeries)
}

/// Converts `source_dir` into `out_dir` through `surgeries`.
pub fn convert_checkpoint(
    source_dir: &Path,
    out_dir: &Path,
    surgeries: &[(String, Value)],
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ConvertReport, SurgeryError> {
    let src_canon = source_dir.canonicalize().map_err(|source| SurgeryError::Io {
        path: source_dir.to_path_buf(),
        action: "cannot open the source checkpoint",
        source,
    })?;
    // Canonical through the nearest existing ancestor, so `SRC/a/b/out` (two new levels) or a
    // symlink into the source is still seen as inside it.
    let out_canon = canonical_target(out_dir)?;
    if src_canon.starts_with(&out_canon) || out_canon.starts_with(&src_canon) {
        return Err(SurgeryError::Source(format!(
            "the output {} is the source checkpoint, contains it or lies inside it; choose \
             another output directory (the source is never modified)",
            out_dir.display()
        )));
    }
    let checkpoint = Checkpoint::open(source_dir)?;
    let conversion = plan_checkpoint(&checkpoint, opts.format, surgeries)?;
    check_source(&conversion, &checkpoint)?;
    let dtype = output_dtype(&conversion.plan, &checkpoint, opts.dtype)?;
    if !dtype.is_float() {
        return Err(SurgeryError::Source(format!(
            "output dtype {dtype} is not a floating-point type"
        )));
    }
    let declared = layout_of(&conversion.spec);
    let specs = target_specs(&conversion.plan, &checkpoint, dtype, Some(&declared))?;
    let tensors = specs.len();

    let out = AtomicDir::create(out_dir, opts.force)?;
    let mut bytes = 0;
    let mut non_finite = Vec::new();
    let mut files = execute_to_dir(
        &conversion.plan,
        &checkpoint,
        out.path(),
        specs,
        opts.seed,
        opts.max_shard_size,
        &mut |p| {
            bytes = p.bytes_done;
            if p.non_finite > 0 {
                non_finite.push((p.key.to_string(), p.non_finite));
            }
            progress(p)
        },
    )?;

    let mut config = conversion.config.clone();
    if let Some(m) = config.as_object_mut() {
        if m.contains_key("torch_dtype") {
            m.insert("torch_dtype".into(), Value::from(torch_name(dtype)));
        }
    }
    let config_path = out.path().join("config.json");
    let mut text = serde_json::to_string_pretty(&config)
        .map_err(|e| SurgeryError::Checkpoint(format!("cannot serialize the output config: {e}")))?;
    text.push('\n');
    std::fs::write(&config_path, text).map_err(|source| SurgeryError::Io {
        path: config_path.clone(),
        action: "cannot write",
        source,
    })?;
    files.push(config_path);
    for name in COPIED_FILES {
        let from = source_dir.join(name);
        if from.is_file() {
            let to = out.path().join(name);
            std::fs::copy(&from, &to).map_err(|source| SurgeryError::Io {
                path: from.clone(),
                action: "cannot copy",
                source,
            })?;
            files.push(to);
        }
    }
    let temp = out.path().to_path_buf();
    let final_dir = out.commit()?;
    let files = files
        .into_iter()
        .map(|f| match f.strip_prefix(&temp) {
            Ok(rel) => final_dir.join(rel),
            Err(_) => f,
        })
        .collect();
    Ok(ConvertReport {
        out_dir: final_dir,
        files,
        tensors,
        bytes,
        dtype,
        conversion,
        non_finite,
    })
}

/// The `torch_dtype` name HF configs use.
pub fn torch_name(d: DType) -> &'static str {
    match d {
        DType::F64 => "float64",
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::U8 => "uint8",
    }
}
