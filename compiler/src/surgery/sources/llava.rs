//! Llava / Pixtral (reference §5.2), text side only: `text_config` becomes an Apriel2 text
//! model; tensors live under `language_model.model.*` and `language_model.lm_head` (or, as
//! newer transformers save them, `model.language_model.*` and `lm_head`). The vision tower and
//! projector are left unread.

use serde_json::Value;

use crate::surgery::error::SurgeryError;

use super::hf_text::{plan, to_apriel2, HfDefaults, HfKeys};
use super::{Imported, SourceFormat};

pub fn import(config: &Value, has_key: Option<&dyn Fn(&str) -> bool>) -> Result<Imported, SurgeryError> {
    let text = config
        .get("text_config")
        .and_then(Value::as_object)
        .ok_or_else(|| SurgeryError::Source("llava config.json: no `text_config` object".into()))?;
    let defaults = HfDefaults {
        format: "llava",
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 4096,
        fixed_biases: None,
    };
    let mut text = text.clone();
    // The tie flag of a Llava sits at the top level in older configs.
    if !text.contains_key("tie_word_embeddings") {
        if let Some(t) = config.get("tie_word_embeddings") {
            text.insert("tie_word_embeddings".into(), t.clone());
        }
    }
    let apriel = to_apriel2(&text, &defaults)?;
    let legacy = HfKeys {
        model: "language_model.model".into(),
        lm_head: "language_model.lm_head.weight".into(),
    };
    let modern = HfKeys {
        model: "model.language_model".into(),
        lm_head: "lm_head.weight".into(),
    };
    let keys = match has_key {
        Some(has)
            if !has("language_model.model.embed_tokens.weight") && has("model.language_model.embed_tokens.weight") =>
        {
            modern
        }
        _ => legacy,
    };
    Ok(Imported {
        format: SourceFormat::Llava,
        plan: plan("llava", &apriel, &keys)?,
        config: apriel,
        ignorable_prefixes: vec![
            "vision_tower.".into(),
            "multi_modal_projector.".into(),
            "model.vision_tower.".into(),
            "model.multi_modal_projector.".into(),
        ],
        notes: Vec::new(),
    })
}
