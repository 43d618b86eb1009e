//! The decoder-only Hugging Face text config shared by Llama, Mistral, Qwen2 and the language
//! model of Llava: into an Apriel2 config, and the renaming plan of its tensors.

use serde_json::{json, Map, Value};

use crate::spec::{NormSpec, RotarySpec};
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

/// An optional boolean: absent or null is `default`; anything but true/false is an error (a
/// string such as `"yes"` must not read as false).
pub(super) fn opt_bool(cfg: &Map<String, Value>, key: &str, default: bool, format: &str) -> Result<bool, SurgeryError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(err(format, format!("`{key}` must be true or false, found {v}"))),
    }
}

/// An optional positive integer (absent or null: `None`).
fn opt_u64(cfg: &Map<String, Value>, key: &str, format: &str) -> Result<Option<u64>, SurgeryError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => req_u64(cfg, key, format).map(Some),
    }
}

/// An optional string (absent or null: `default`).
fn opt_str<'a>(
    cfg: &'a Map<String, Value>,
    key: &str,
    default: &'a str,
    format: &str,
) -> Result<&'a str, SurgeryError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(err(format, format!("`{key}` must be a string, found {v}"))),
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
    let kv = opt_u64(cfg, "num_key_value_heads", f)?.unwrap_or(heads);
    let head_dim = match opt_u64(cfg, "head_dim", f)? {
        None => {
            if hidden % heads != 0 {
                return Err(err(
                    f,
                    format!("hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and there is no head_dim"),
                ));
            }
            hidden / heads
        }
        Some(d) => d,
    };
    let rope_params = cfg.get("rope_parameters").and_then(Value::as_object);
    let theta = match (cfg.get("rope_theta"), rope_params.and_then(|p| p.get("rope_theta"))) {
        (Some(v), _) if !v.is_null() => opt_f64(cfg, "rope_theta", d.rope_theta, f)?,
        (_, Some(v)) => v
            .as_f64()
            .ok_or_else(|| err(f, format!("`rope_parameters.rope_theta` must be a number, found {v}")))?,
        _ => d.rope_theta,
    };
    if let Some(problem) = RotarySpec::theta_problem(theta) {
        return Err(err(f, format!("`rope_theta` {problem}")));
    }
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
    if let Some(problem) = NormSpec::epsilon_problem(eps, "the RMS norm epsilon") {
        return Err(err(f, format!("`rms_norm_eps` {problem}")));
    }
    let act = opt_str(cfg, "hidden_act", "silu", f)?;
    let max_pos = opt_u64(cfg, "max_position_embeddings", f)?.unwrap_or(d.max_position_embeddings);
    if opt_bool(cfg, "mlp_bias", false, f)? {
        return Err(err(
            f,
            "`mlp_bias: true` is not supported: the gated MLP of Apriel2 has no biases".into(),
        ));
    }
    let (qkv_bias, o_bias) = match d.fixed_biases {
        Some(b) => b,
        None => {
            let b = opt_bool(cfg, "attention_bias", false, f)?;
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
        if let Some(w) = opt_u64(cfg, "sliding_window", f)? {
            m.insert("window_size".into(), Value::from(w));
        }
    }
    let tie = opt_bool(cfg, "tie_word_embeddings", false, f)?;
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
        "tie_word_embeddings": tie,
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
