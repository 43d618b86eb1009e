//! Plain Hugging Face `LlamaForCausalLM` / `MistralForCausalLM` checkpoints (not in upstream):
//! `model.layers.{i}.self_attn.{q,k,v,o}_proj`, `mlp.{gate,up,down}_proj`, the two RMSNorms,
//! `model.embed_tokens`, `model.norm`, `lm_head`. Llama's `attention_bias` gives q/k/v/o biases;
//! Mistral's `sliding_window` becomes `window_size`.

use serde_json::Value;

use crate::surgery::error::SurgeryError;

use super::hf_text::{plan, to_apriel2, HfDefaults, HfKeys};
use super::{Imported, SourceFormat};

pub fn import(config: &Value) -> Result<Imported, SurgeryError> {
    let cfg = config
        .as_object()
        .ok_or_else(|| SurgeryError::Source("llama config.json: not a JSON object".into()))?;
    let mistral = cfg.get("model_type").and_then(Value::as_str) == Some("mistral");
    let defaults = HfDefaults {
        format: if mistral { "mistral" } else { "llama" },
        rope_theta: 10000.0,
        rms_norm_eps: if mistral { 1e-5 } else { 1e-6 },
        max_position_embeddings: 2048,
        fixed_biases: None,
    };
    let apriel = to_apriel2(cfg, &defaults)?;
    let keys = HfKeys {
        model: "model".into(),
        lm_head: "lm_head.weight".into(),
    };
    Ok(Imported {
        format: SourceFormat::Llama,
        plan: plan(defaults.format, &apriel, &keys)?,
        config: apriel,
        ignorable_prefixes: vec![],
        notes: Vec::new(),
    })
}
