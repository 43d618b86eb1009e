//! What several subcommands share: loading a spec (with surgeries), lowering, placement.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use modelc::ir::{lower::lower_model, Graph};
use modelc::passes::{self, placement::specialize, Placement};
use modelc::spec::{self, ModelSpec};
use modelc::surgery::algebra::apply_surgeries;
use modelc::surgery::load::{load_surgeries, locate_all};

/// A spec file, or a checkpoint directory holding `config.json`.
pub fn load_spec(path: &Path, surgeries: &[PathBuf]) -> Result<ModelSpec> {
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

/// Writes a file atomically: a temp file beside it, then a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
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
