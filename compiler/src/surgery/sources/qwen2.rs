//! Qwen2 / Qwen2.5 (reference §5.3): q/k/v biases, no o bias, RoPE θ default 1e6, RMSNorm eps
//! default 1e-6, 32768 positions by default. Sliding-window layers are not supported.

use serde_json::Value;

use crate::surgery::error::SurgeryError;

use super::hf_text::{opt_bool, plan, to_apriel2, HfDefaults, HfKeys};
use super::{Imported, SourceFormat};

pub fn import(config: &Value) -> Result<Imported, SurgeryError> {
    let cfg = config
        .as_object()
        .ok_or_else(|| SurgeryError::Source("qwen2 config.json: not a JSON object".into()))?;
    if opt_bool(cfg, "use_sliding_window", false, "qwen2")? {
        return Err(SurgeryError::Source(
            "qwen2 config.json: `use_sliding_window: true` (per-layer windows) is not supported".into(),
        ));
    }
    // Qwen2 configs carry `sliding_window` even when unused; it must not become a window.
    let mut cfg = cfg.clone();
    cfg.remove("sliding_window");
    let defaults = HfDefaults {
        format: "qwen2",
        rope_theta: 1_000_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 32768,
        fixed_biases: Some((true, false)),
    };
    let apriel = to_apriel2(&cfg, &defaults)?;
    let keys = HfKeys {
        model: "model".into(),
        lm_head: "lm_head.weight".into(),
    };
    Ok(Imported {
        format: SourceFormat::Qwen2,
        plan: plan("qwen2", &apriel, &keys)?,
        config: apriel,
        ignorable_prefixes: vec![],
        notes: Vec::new(),
    })
}
