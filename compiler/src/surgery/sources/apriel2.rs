//! Apriel2 checkpoints: the identity plan (every declared tensor to itself).
//!
//! Bias flags follow the checkpoint (reference §7.2.2): HF reads a missing
//! `add_linear_biases` as false, Fast-LLM as true and omits it on export, so when the tensors
//! present disagree with the config, the config is corrected (per block, or per sub-mixer) and a
//! note says so. Layers sharing one block config must agree, else it is an error.

use serde_json::{json, Value};

use crate::spec::{MixerSpec, ModelSpec};
use crate::surgery::error::SurgeryError;
use crate::surgery::expr::{Expr, Plan};

use super::{Imported, SourceFormat};

fn resolve(config: &Value) -> Result<ModelSpec, SurgeryError> {
    crate::spec::from_json_value(config, "the source config").map_err(|e| SurgeryError::Spec {
        context: "the source config".into(),
        source: Box::new(e),
    })
}

/// One bias flag of one layer: JSON path of the component inside the block, the config key,
/// whether the config enables it, whether the tensor is present, and the tensor.
struct Fix {
    block: String,
    component: Vec<String>,
    key: &'static str,
    flag: bool,
    value: bool,
    tensor: String,
}

fn fixes(spec: &ModelSpec, has: &dyn Fn(&str) -> bool) -> Vec<Fix> {
    let mut out = Vec::new();
    for (i, block) in spec.layers.iter().enumerate() {
        let p = format!("model.decoder.blocks.{i}");
        let mut attns = Vec::new();
        match &block.mixer {
            MixerSpec::Attention(a) => attns.push((vec!["mixer".to_string()], format!("{p}.mixer"), a)),
            MixerSpec::Stochastic(s) => {
                for (name, m) in &s.mixers {
                    if let MixerSpec::Attention(a) = m {
                        attns.push((
                            vec!["mixer".into(), "mixers".into(), name.clone()],
                            format!("{p}.mixer.mixers.{name}"),
                            a,
                        ));
                    }
                }
            }
            _ => {}
        }
        let mut check = |component: &Vec<String>, key: &'static str, flag: bool, tensor: String| {
            out.push(Fix {
                block: block.name.clone(),
                component: component.clone(),
                key,
                flag,
                value: has(&tensor),
                tensor,
            });
        };
        for (component, prefix, a) in attns {
            check(&component, "query_layer", a.bias.q, format!("{prefix}.q_proj.bias"));
            check(&component, "key_layer", a.bias.k, format!("{prefix}.k_proj.bias"));
            check(&component, "value_layer", a.bias.v, format!("{prefix}.v_proj.bias"));
            check(&component, "dense_layer", a.bias.o, format!("{prefix}.o_proj.bias"));
        }
        if !block.mlp.gated {
            let c = vec!["mlp".to_string()];
            check(&c, "layer_1", block.mlp.up_bias, format!("{p}.mlp.up_proj.bias"));
            check(&c, "layer_2", block.mlp.down_bias, format!("{p}.mlp.down_proj.bias"));
        }
    }
    out
}

/// Applies the fixes to the config JSON; returns the notes.
fn align_biases(config: &mut Value, spec: &ModelSpec, has: &dyn Fn(&str) -> bool) -> Result<Vec<String>, SurgeryError> {
    let fixed = matches!(spec.decoder_form, crate::spec::DecoderForm::Fixed);
    let mut notes = Vec::new();
    let mut decided: Vec<(String, Vec<String>, &'static str, bool, String)> = Vec::new();
    for f in fixes(spec, has) {
        if let Some((.., v, t)) = decided
            .iter()
            .find(|(b, c, k, ..)| *b == f.block && *c == f.component && *k == f.key)
        {
            if *v != f.value {
                return Err(SurgeryError::Checkpoint(format!(
                    "the checkpoint has `{}` but not `{}`, yet both layers use block `{}`; their \
                     bias flags cannot be told from the config",
                    if *v { t } else { &f.tensor },
                    if *v { &f.tensor } else { t },
                    f.block
                )));
            }
            continue;
        }
        decided.push((f.block.clone(), f.component.clone(), f.key, f.value, f.tensor.clone()));
        if f.value == f.flag {
            continue;
        }
        let block_path: Vec<String> = if fixed {
            vec!["decoder".into(), "block".into()]
        } else {
            vec!["decoder".into(), "blocks".into(), f.block.clone()]
        };
        let mut node = &mut *config;
        for seg in block_path.iter().chain(&f.component) {
            node = match node.get_mut(seg.as_str()) {
                Some(n) => n,
                None => {
                    return Err(SurgeryError::Checkpoint(format!(
                        "cannot align bias flags: the config has no `{}`",
                        block_path
                            .iter()
                            .chain(&f.component)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(".")
                    )))
                }
            };
        }
        if let Some(m) = node.as_object_mut() {
            m.insert(f.key.to_string(), json!({"bias": {"enabled": f.value}}));
        }
        notes.push(format!(
            "{}: the config says bias={}, the checkpoint {} it; following the checkpoint",
            f.tensor,
            !f.value,
            if f.value { "has" } else { "lacks" }
        ));
    }
    Ok(notes)
}

pub fn import(config: &Value, has_key: Option<&dyn Fn(&str) -> bool>) -> Result<Imported, SurgeryError> {
    let mut config = config.clone();
    let mut spec = resolve(&config)?;
    let mut notes = Vec::new();
    if let Some(has) = has_key {
        notes = align_biases(&mut config, &spec, has)?;
        if !notes.is_empty() {
            spec = resolve(&config)?;
        }
    }
    let mut plan = Plan::new("apriel2", "apriel2");
    for w in crate::spec::layout::weights(&spec) {
        plan.insert(w.key.clone(), Expr::reference(w.key))?;
    }
    Ok(Imported {
        format: SourceFormat::Apriel2,
        config,
        plan,
        ignorable_prefixes: Vec::new(),
        notes,
    })
}
