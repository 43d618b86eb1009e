//! What several subcommands share: loading a spec (with surgeries), lowering, placement.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use modelc::ir::{lower::lower_model, Graph};
use modelc::passes::{self, placement::specialize, Placement};
use modelc::spec::{self, ModelSpec};
use modelc::surgery::algebra::apply_surgeries;
use modelc::surgery::load::{load_surgeries, locate_all};
use modelc::surgery::SourceFormat;
use modelc_runtime::weights::{canonical_target, write_file_atomic, WeightsError, INDEX_FILE};

/// A spec file, or a checkpoint directory holding `config.json`.
pub fn load_spec(path: &Path, surgeries: &[PathBuf]) -> Result<ModelSpec> {
    refuse_foreign_config(path)?;
    let spec = spec::load(path)?;
    if surgeries.is_empty() {
        return Ok(spec);
    }
    let files = load_surgeries(surgeries)?;
    let values: Vec<serde_json::Value> = files.iter().map(|f| f.value.clone()).collect();
    let applied = apply_surgeries(&spec::to_config_json(&spec), &values).map_err(|e| locate_all(e, &files))?;
    spec::from_json_value(&applied, &format!("{} after surgery", path.display()))
        .with_context(|| "the config produced by the surgeries is invalid")
}

/// Refuses a Hugging Face config of another format (Llama, Mistral, Qwen2, Llava) with the
/// command that converts it, instead of a list of unknown keys. Anything unreadable or
/// undetectable is left to the spec parser, whose errors are located.
fn refuse_foreign_config(path: &Path) -> Result<()> {
    let file = if path.is_dir() {
        path.join("config.json")
    } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        path.to_path_buf()
    } else {
        return Ok(());
    };
    let Some(config) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return Ok(());
    };
    match SourceFormat::detect(&config) {
        Ok(SourceFormat::Apriel2) | Err(_) => Ok(()),
        Ok(format) => {
            let (what, source) = if path.is_dir() {
                ("checkpoint", path.display().to_string())
            } else {
                ("config", "CHECKPOINT_DIR".to_string())
            };
            bail!(
                "{} is a {} {what}, not an Apriel2 one; convert it first with `modelc convert {source} OUT_DIR` \
                 (then use OUT_DIR)",
                path.display(),
                format.name()
            )
        }
    }
}

/// Lowers and verifies.
pub fn lower(spec: &ModelSpec) -> Result<Graph> {
    let graph = lower_model(spec)?;
    passes::verify(&graph).context("the lowered IR does not verify")?;
    Ok(graph)
}

/// The placement: main sub-mixers, overridden by `--placement` (`kda`, or `3=kda,5=gdn`).
pub fn placement(spec: &ModelSpec, text: Option<&str>) -> Result<Placement> {
    let main = Placement::main(spec);
    Ok(match text {
        None => main,
        Some(t) if !t.contains('=') => Placement::all(spec, t)?,
        Some(t) => main.with_overrides(spec, t)?,
    })
}

/// Specialises to a placement and verifies.
pub fn place(graph: Graph, placement: &Placement) -> Result<Graph> {
    Ok(passes::run_verified("placement", graph, |g| specialize(g, placement))?)
}

/// Writes a file atomically (a synced temp beside it, then a rename), replacing an old one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_file_atomic(path, true, |tmp| {
        std::fs::write(tmp, contents).map_err(|source| WeightsError::Io {
            path: tmp.to_path_buf(),
            source,
        })
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Refuses to write into a checkpoint: an output directory `out` that is the model directory
/// `source` or lies inside it, or that is (or lies inside) any directory holding `config.json`
/// beside safetensors weights. Outputs write `config.json` and other files that would replace
/// the checkpoint's.
pub fn refuse_checkpoint_output(out: &Path, source: &Path) -> Result<()> {
    let target = canonical_target(out)?;
    let source_dir = match source.is_dir() {
        true => Some(
            source
                .canonicalize()
                .with_context(|| format!("resolving {}", source.display()))?,
        ),
        false => None,
    };
    let checkpoint = source_dir
        .filter(|dir| target.starts_with(dir))
        .or_else(|| target.ancestors().find(|dir| is_checkpoint(dir)).map(Path::to_path_buf));
    if let Some(checkpoint) = checkpoint {
        bail!(
            "the output {} is the checkpoint {} or lies inside it; modelc never writes into a \
             checkpoint: choose another output",
            out.display(),
            checkpoint.display()
        );
    }
    Ok(())
}

/// Whether `dir` holds `config.json` and safetensors weights.
fn is_checkpoint(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "safetensors") || e.file_name() == INDEX_FILE)
        })
}

/// Makes bias flags follow the checkpoint: a config that omits `add_linear_biases` means "no
/// bias" to HF but "bias" to Fast-LLM (reference §7.2.2), so the tensors present are the ground
/// truth. Returns one note per flag changed.
pub fn align_biases(spec: &mut ModelSpec, has: impl Fn(&str) -> bool) -> Vec<String> {
    use modelc::spec::MixerSpec;
    let mut notes = Vec::new();
    let fix = |flag: &mut bool, key: String, notes: &mut Vec<String>| {
        let present = has(&key);
        if *flag != present {
            notes.push(format!(
                "{key}: the config says bias={flag}, the checkpoint {} it; following the checkpoint",
                if present { "has" } else { "lacks" }
            ));
            *flag = present;
        }
    };
    for (i, block) in spec.layers.iter_mut().enumerate() {
        let prefix = format!("model.decoder.blocks.{i}.mixer");
        let mut attns: Vec<(String, &mut modelc::spec::AttentionSpec)> = Vec::new();
        match &mut block.mixer {
            MixerSpec::Attention(a) => attns.push((prefix.clone(), a)),
            MixerSpec::Stochastic(s) => {
                for (name, m) in &mut s.mixers {
                    if let MixerSpec::Attention(a) = m {
                        attns.push((format!("{prefix}.mixers.{name}"), a));
                    }
                }
            }
            _ => {}
        }
        for (p, a) in attns {
            fix(&mut a.bias.q, format!("{p}.q_proj.bias"), &mut notes);
            fix(&mut a.bias.k, format!("{p}.k_proj.bias"), &mut notes);
            fix(&mut a.bias.v, format!("{p}.v_proj.bias"), &mut notes);
            fix(&mut a.bias.o, format!("{p}.o_proj.bias"), &mut notes);
        }
        if !block.mlp.gated {
            let p = format!("model.decoder.blocks.{i}.mlp");
            fix(&mut block.mlp.up_bias, format!("{p}.up_proj.bias"), &mut notes);
            fix(&mut block.mlp.down_bias, format!("{p}.down_proj.bias"), &mut notes);
        }
    }
    notes
}
