//! The decoder-only Hugging Face text config shared by Llama, Mistral, Qwen2 and the language
//! model of Llava: into an Apriel2 config, and the renaming plan of its tensors.

use serde_json::{json, Map, Value};

use crate::surgery::error::SurgeryError;
use crate::surgery::expr::{Expr, Plan};

/// Per-format defaults and bias layout.
pub struct HfDefaults {
    pub format: &'static str,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: u64,
    /// Biases on q/k/v and o regardless of config (Qwen2: q/k/v yes, o no); `None` reads
    /// Llama's `attention_bias`.
    pub fixed_biases: Option<(bool, bool)>,
}

fn err(format: &str, message: String) -> SurgeryError {
    SurgeryError::Source(format!("{format} config.json: {message}"))
}

fn req_u64(cfg: &Map<String, Value>, key: &str, format: &str) -> Result<u64, SurgeryError> {
    match cfg.get(key) {
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .ok_or_else(|| err(format, format!("`{key}` must be a positive integer, found {v}"))),
        None => Err(err(format, format!("`{key}` is missing"))),
    }
}

fn opt_f64(cfg: &Map<String, Value>, key: &str, default: f64, format: &str) -> Result<f64, SurgeryError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| err(format, format!("`{key}` must be a number, found {v}"))),
    }
}

fn token(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Array(a) => a.first().cloned(),
        other => Some(other.clone()),
    }
}

/// The Apriel2 config of a text decoder config (`cfg` is the text config object).
pub fn to_apriel2(cfg: &Map<String, Value>, d: &HfDefaults) -> Result<Value, SurgeryError> {
    let f = d.format;
    let hidden = req_u64(cfg, "hidden_size", f)?;
    let layers = req_u64(cfg, "num_hidden_layers", f)?;
    let heads = req_u64(cfg, "num_attention_heads", f)?;
    let vocab = req_u64(cfg, "vocab_size", f)?;
    let inter = req_u64(cfg, "intermediate_size", f)?;
    let kv = match cfg.get("num_key_value_heads") {
        None | Some(Value::Null) => heads,
        Some(_) => req_u64(cfg, "num_key_value_heads", f)?,
    };
    let head_dim = match cfg.get("head_dim") {
        None | Some(Value::Null) => {
            if hidden % heads != 0 {
                return Err(err(
                    f,
                    format!("hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and there is no head_dim"),
                ));
            }
            hidden / heads
        }
        Some(_) => req_u64(cfg, "head_dim", f)?,
    };
    let rope_params = cfg.get("rope_parameters").and_then(Value::as_object);
    let theta = match (cfg.get("rope_theta"), rope_params.and_then(|p| p.get("rope_theta"))) {
        (Some(v), _) if !v.is_null() => opt_f64(cfg, "rope_theta", d.rope_theta, f)?,
        (_, Some(v)) => v
            .as_f64()
            .ok_or_else(|| err(f, format!("`rope_parameters.rope_theta` must be a number, found {v}")))?,
        _ => d.rope_theta,
    };
    let scaling = cfg.get("rope_scaling").filter(|v| !v.is_null()).or_else(|| {
        rope_params
            .and_then(|p| p.get("rope_type"))
            .filter(|t| t.as_str() != Some("default"))
    });
    if let Some(s) = scaling {
        return Err(err(
            f,
            format!("RoPE scaling ({s}) is not supported: Apriel2 text models use plain mistral_1d RoPE"),
        ));
    }
    let eps = opt_f64(cfg, "rms_norm_eps", d.rms_norm_eps, f)?;
    let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    let max_pos = cfg
        .get("max_position_embeddings")
        .and_then(Value::as_u64)
        .unwrap_or(d.max_position_embeddings);
    if cfg.get("mlp_bias").and_then(Value::as_bool) == Some(true) {
        return Err(err(
            f,
            "`mlp_bias: true` is not supported: the gated MLP of Apriel2 has no biases".into(),
        ));
    }
    let (qkv_bias, o_bias) = match d.fixed_biases {
        Some(b) => b,
        None => {
            let b = cfg.get("attention_bias").and_then(Value::as_bool).unwrap_or(false);
            (b, b)
        }
    };
    let mut mixer = json!({
        "type": "attention",
        "heads": heads,
        "head_groups": kv,
        "head_size": head_dim,
        "rotary": {"type": "mistral_1d", "theta": theta},
        "add_linear_biases": false,
    });
    if let Some(m) = mixer.as_object_mut() {
        for (key, on) in [
            ("query_layer", qkv_bias),
            ("key_layer", qkv_bias),
            ("value_layer", qkv_bias),
            ("dense_layer", o_bias),
        ] {
            if on {
                m.insert(key.into(), json!({"bias": {"enabled": true}}));
            }
        }
        if let Some(w) = cfg.get("sliding_window").and_then(Value::as_u64) {
            m.insert("window_size".into(), Value::from(w));
        }
    }
    let norm = json!({"type": "rms_norm", "epsilon": eps});
    let mut out = json!({
        "model_type": "apriel2_text",
        "architectures": ["Apriel2ForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_apriel2.Apriel2TextConfig",
            "AutoModel": "modeling_apriel2.Apriel2TextModel",
            "AutoModelForCausalLM": "modeling_apriel2.Apriel2ForCausalLM",
        },
        "hidden_size": hidden,
        "vocab_size": vocab,
        "tie_word_embeddings": cfg.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        "embeddings": {"max_position_embeddings": max_pos},
        "head": {"normalization": norm.clone()},
        "decoder": {
            "type": "fixed",
            "num_blocks": layers,
            "block": {
                "mixer": mixer,
                "mlp": {"type": "mlp", "intermediate_size": inter, "activation": act, "gated": true},
                "normalization": norm,
            }
        }
    });
    if let Some(m) = out.as_object_mut() {
        for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
            if let Some(v) = token(cfg.get(key)) {
                m.insert(key.into(), v);
            }
        }
    }
    Ok(out)
}

/// Where a text decoder's tensors live: `{model}.layers.{i}...`, `{model}.embed_tokens`,
/// `{model}.norm`, and `lm_head`.
pub struct HfKeys {
    pub model: String,
    pub lm_head: String,
}

/// Renames of every tensor of the Apriel2 config `apriel` (its attention biases included).
pub fn plan(format: &str, apriel: &Value, keys: &HfKeys) -> Result<Plan, SurgeryError> {
    let context = format!("the Apriel2 config made from the {format} config");
    let spec = crate::spec::from_json_value(apriel, &context).map_err(|e| SurgeryError::Spec {
        context: context.clone(),
        source: Box::new(e),
    })?;
    let mut p = Plan::new(format, "apriel2");
    for w in crate::spec::layout::weights(&spec) {
        let src = rename(&w.key, keys)
            .ok_or_else(|| SurgeryError::Source(format!("{format}: no source name for Apriel2 tensor `{}`", w.key)))?;
        p.insert(w.key, Expr::reference(src))?;
    }
    Ok(p)
}

fn rename(key: &str, keys: &HfKeys) -> Option<String> {
    let m = &keys.model;
    match key {
        "model.embed_tokens.weight" => return Some(format!("{m}.embed_tokens.weight")),
        "model.norm.weight" => return Some(format!("{m}.norm.weight")),
        "lm_head.weight" => return Some(keys.lm_head.clone()),
        _ => {}
    }
    let rest = key.strip_prefix("model.decoder.blocks.")?;
    let (layer, rest) = rest.split_once('.')?;
    let rest = if let Some(r) = rest.strip_prefix("mixer.") {
        format!("self_attn.{r}")
    } else {
        rest.to_string()
    };
    Some(format!("{m}.layers.{layer}.{rest}"))
}
