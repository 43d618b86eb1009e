//! Streaming execution: checks a source checkpoint against the conversion, then writes every
//! target tensor in plan order into a [`ShardedWriter`], holding about one tensor at a time
//! (sources are memory-mapped; a passthrough tensor goes from the map to the file uncopied).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::{ShardedWriter, TensorSpec};

use super::conversion::{layout_of, Conversion};
use super::error::SurgeryError;
use super::eval::{evaluate, evaluate_owned, TensorSource};
use super::expr::Plan;

/// Progress after each tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    pub key: &'a str,
    pub tensors_done: usize,
    pub tensors_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// NaN or ±Inf values in this tensor (as written, in the output dtype).
    pub non_finite: usize,
}

/// Source tensors a plan never reads that may stay unread: RoPE buffers some checkpoints save.
fn always_ignorable(key: &str) -> bool {
    key.ends_with("rotary_emb.inv_freq")
}

/// Checks the checkpoint against the source side of a conversion: every tensor the source
/// config declares is present with its declared shape and a float dtype, and the checkpoint
/// holds nothing the config does not declare (e.g. biases the config does not enable), except
/// the format's ignorable tensors.
pub fn check_source(conv: &Conversion, source: &dyn TensorSource) -> Result<(), SurgeryError> {
    let declared: HashMap<String, Vec<usize>> = layout_of(&conv.source_spec).into_iter().collect();
    let mut read = std::collections::HashSet::new();
    for (apriel_key, expr) in conv.import_plan.iter() {
        let mut refs = Default::default();
        expr.refs(&mut refs);
        for key in refs {
            let (dtype, shape) = source.info(&key).ok_or_else(|| {
                SurgeryError::Checkpoint(format!(
                    "the checkpoint has no tensor `{key}`{}, which its config declares",
                    if key == apriel_key {
                        String::new()
                    } else {
                        format!(" (Apriel2 `{apriel_key}`)")
                    }
                ))
            })?;
            if let Some(want) = declared.get(apriel_key) {
                if *want != shape {
                    return Err(SurgeryError::Checkpoint(format!(
                        "checkpoint tensor `{key}` has shape {shape:?} but its config declares {want:?}"
                    )));
                }
            }
            if !dtype.is_float() {
                return Err(SurgeryError::Checkpoint(format!(
                    "checkpoint tensor `{key}` has dtype {dtype}; weights must be floating point"
                )));
            }
            read.insert(key);
        }
    }
    let tied = conv.source_spec.tie_word_embeddings;
    for key in &source.keys() {
        let ignorable = always_ignorable(key)
            || conv.ignorable_prefixes.iter().any(|p| key.starts_with(p.as_str()))
            || (tied && key.ends_with("lm_head.weight"));
        if !read.contains(key) && !ignorable {
            return Err(SurgeryError::Checkpoint(format!(
                "checkpoint tensor `{key}` is not declared by its config (a bias or a layer the \
                 config does not enable?); converting would silently drop it"
            )));
        }
    }
    Ok(())
}

/// The output dtype: `requested`, else the one dtype every source tensor the plan reads has.
pub fn output_dtype(plan: &Plan, source: &dyn TensorSource, requested: Option<DType>) -> Result<DType, SurgeryError> {
    if let Some(d) = requested {
        return Ok(d);
    }
    let mut seen: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut first = None;
    for key in plan.source_keys() {
        if let Some((d, _)) = source.info(&key) {
            first.get_or_insert(d);
            let e = seen.entry(d.to_string()).or_insert((0, key.clone()));
            e.0 += 1;
        }
    }
    if seen.len() > 1 {
        return Err(SurgeryError::MixedDtypes {
            found: seen
                .iter()
                .map(|(d, (n, k))| format!("{d}: {n} tensor(s), e.g. `{k}`"))
                .collect(),
        });
    }
    // A plan that reads nothing (all random) defaults to bf16.
    Ok(first.unwrap_or(DType::BF16))
}

/// Target shapes of `plan`, checked against the source tensors and, when given, the declared
/// target layout.
pub fn target_specs(
    plan: &Plan,
    source: &dyn TensorSource,
    dtype: DType,
    declared: Option<&[(String, Vec<usize>)]>,
) -> Result<Vec<TensorSpec>, SurgeryError> {
    let shape_of = |k: &str| source.info(k).map(|(_, s)| s);
    if let Some(declared) = declared {
        plan.check_layout(&shape_of, declared)?;
    }
    Ok(plan
        .shapes(&shape_of)?
        .into_iter()
        .map(|(k, s)| TensorSpec::new(k, dtype, s))
        .collect())
}

/// Streams every target tensor of `plan` into `dir` (`model.safetensors` or shards plus the
/// index). Returns the files written.
pub fn execute_to_dir(
    plan: &Plan,
    source: &dyn TensorSource,
    dir: &Path,
    specs: Vec<TensorSpec>,
    seed: u64,
    max_shard_size: u64,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<PathBuf>, SurgeryError> {
    let dtype = specs.first().map_or(DType::BF16, |s| s.dtype);
    let bytes_total: u64 = specs
        .iter()
        .map(|s| s.shape.iter().product::<usize>() as u64 * s.dtype.size() as u64)
        .sum();
    let tensors_total = specs.len();
    let mut writer = ShardedWriter::new(dir, max_shard_size, specs)?;
    let mut bytes_done = 0u64;
    for (i, (key, expr)) in plan.iter().enumerate() {
        let value = evaluate(expr, source, dtype, seed, key)?;
        let parts: Vec<&[u8]> = value.pieces.iter().map(|p| &**p).collect();
        let non_finite = parts.iter().map(|p| dtype.count_non_finite(p)).sum();
        writer.write_parts(key, &parts)?;
        bytes_done += value.len() as u64;
        drop(value);
        source.release(&plan_refs(expr));
        progress(Progress {
            key,
            tensors_done: i + 1,
            tensors_total,
            bytes_done,
            bytes_total,
            non_finite,
        });
    }
    Ok(writer.finish()?)
}

fn plan_refs(expr: &super::expr::Expr) -> Vec<String> {
    let mut refs = Default::default();
    expr.refs(&mut refs);
    refs.into_iter().collect()
}

/// Evaluates every target tensor into memory (tests, small models).
pub fn execute_in_memory(
    plan: &Plan,
    source: &dyn TensorSource,
    dtype: DType,
    seed: u64,
) -> Result<Vec<(String, HostTensor)>, SurgeryError> {
    plan.iter()
        .map(|(k, e)| Ok((k.to_string(), evaluate_owned(e, source, dtype, seed, k)?)))
        .collect()
}
