//! Source checkpoint formats (reference §4.9, §5.2, §5.3): each turns its `config.json` into an
//! Apriel2 config and gives the plan from its tensor names to Apriel2's.
//!
//! Detection from `config.json`: `model_type` `llava` / `pixtral` or a `text_config` ⇒ llava
//! (text side only); `qwen2` ⇒ qwen2; `apriel2` / `apriel2_text` or a `decoder` ⇒ apriel2;
//! `llama` / `mistral`, or `architectures` naming `LlamaForCausalLM` / `MistralForCausalLM`
//! ⇒ llama. Anything else is an error that lists the formats and suggests `-f`.

mod apriel2;
mod hf_text;
mod llama;
mod llava;
mod qwen2;

use serde_json::Value;

use super::error::SurgeryError;
use super::expr::Plan;

/// A supported source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Apriel2,
    Qwen2,
    Llava,
    /// Plain Hugging Face `LlamaForCausalLM` / `MistralForCausalLM`.
    Llama,
}

/// Format names accepted by `-f`.
pub const FORMAT_NAMES: &[&str] = &["apriel2", "qwen2", "llava", "llama", "mistral"];

impl SourceFormat {
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Apriel2 => "apriel2",
            SourceFormat::Qwen2 => "qwen2",
            SourceFormat::Llava => "llava",
            SourceFormat::Llama => "llama",
        }
    }

    /// Parses a `-f` name (`mistral` is the llama format).
    pub fn from_name(name: &str) -> Result<SourceFormat, SurgeryError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "apriel2" | "apriel2_text" => SourceFormat::Apriel2,
            "qwen2" | "qwen2.5" => SourceFormat::Qwen2,
            "llava" | "pixtral" => SourceFormat::Llava,
            "llama" | "mistral" => SourceFormat::Llama,
            other => {
                return Err(SurgeryError::Source(format!(
                    "unknown source format `{other}`; valid: {}",
                    FORMAT_NAMES.join(", ")
                )))
            }
        })
    }

    /// Tells the format from a `config.json`.
    pub fn detect(config: &Value) -> Result<SourceFormat, SurgeryError> {
        let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or("");
        let archs: Vec<&str> = config
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |k: &str| config.get(k).is_some();
        if matches!(model_type, "llava" | "pixtral") || has("text_config") {
            Ok(SourceFormat::Llava)
        } else if model_type == "qwen2" || archs.contains(&"Qwen2ForCausalLM") {
            Ok(SourceFormat::Qwen2)
        } else if matches!(model_type, "apriel2" | "apriel2_text") || has("decoder") {
            Ok(SourceFormat::Apriel2)
        } else if matches!(model_type, "llama" | "mistral")
            || archs
                .iter()
                .any(|a| matches!(*a, "LlamaForCausalLM" | "MistralForCausalLM"))
        {
            Ok(SourceFormat::Llama)
        } else {
            let what = if model_type.is_empty() {
                "config.json has no `model_type`".to_string()
            } else {
                format!("model_type `{model_type}` is not a supported source format")
            };
            Err(SurgeryError::Source(format!(
                "{what}; supported: apriel2 (apriel2, apriel2_text), qwen2, llava (llava, \
                 pixtral: text side), llama (llama, mistral, LlamaForCausalLM, \
                 MistralForCausalLM); name the format with -f if the config does not say it"
            )))
        }
    }
}

/// A source read into Apriel2 terms.
#[derive(Debug, Clone)]
pub struct Imported {
    pub format: SourceFormat,
    /// The equivalent complete Apriel2 config.
    pub config: Value,
    /// Source tensor names → Apriel2 tensor names (renames only).
    pub plan: Plan,
    /// Source tensors that the conversion may leave unread (e.g. a llava's vision tower).
    pub ignorable_prefixes: Vec<String>,
    /// What the import changed or assumed (e.g. bias flags corrected from the tensors).
    pub notes: Vec<String>,
}

/// Reads a source config of `format`. `has_key` tells which tensors the checkpoint holds, when
/// known (it picks between key layouts that differ across transformers versions).
pub fn import(
    format: SourceFormat,
    config: &Value,
    has_key: Option<&dyn Fn(&str) -> bool>,
) -> Result<Imported, SurgeryError> {
    match format {
        SourceFormat::Apriel2 => apriel2::import(config, has_key),
        SourceFormat::Qwen2 => qwen2::import(config),
        SourceFormat::Llama => llama::import(config),
        SourceFormat::Llava => llava::import(config, has_key),
    }
}
