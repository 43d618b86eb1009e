//! Shared helpers of the surgery tests: tiny configs and checkpoints built by hand.
#![allow(dead_code)]

use std::path::Path;

use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::write_safetensors;
use serde_json::{json, Value};

/// A tiny Llama config: hidden 64, 4 layers, 4 query heads, 2 KV heads (head 16), MLP 96,
/// vocab 50.
pub fn llama_config() -> Value {
    json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 50,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 256,
        "hidden_act": "silu",
        "tie_word_embeddings": false,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32"
    })
}

/// The Apriel2 equivalent of [`llama_config`] (what the llama importer must produce, up to
/// key order).
pub fn apriel_config(num_blocks: usize) -> Value {
    json!({
        "model_type": "apriel2_text",
        "architectures": ["Apriel2ForCausalLM"],
        "hidden_size": 64,
        "vocab_size": 50,
        "tie_word_embeddings": false,
        "embeddings": {"max_position_embeddings": 256},
        "head": {"normalization": {"type": "rms_norm", "epsilon": 1e-5}},
        "decoder": {
            "type": "fixed",
            "num_blocks": num_blocks,
            "block": {
                "mixer": {
                    "type": "attention", "heads": 4, "head_groups": 2, "head_size": 16,
                    "rotary": {"type": "mistral_1d", "theta": 10000.0},
                    "add_linear_biases": false
                },
                "mlp": {"type": "mlp", "intermediate_size": 96, "activation": "silu", "gated": true},
                "normalization": {"type": "rms_norm", "epsilon": 1e-5}
            }
        },
        "bos_token_id": 1,
        "eos_token_id": 2
    })
}

/// A deterministic pseudo-random value in [-0.5, 0.5) for element `i` of tensor `key`.
pub fn noise(key: &str, i: usize) -> f32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^= (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    ((h >> 40) as f32) / ((1u64 << 24) as f32) - 0.5
}

/// A tensor whose elements are `noise(key, i)`.
pub fn noise_tensor(key: &str, shape: &[usize], dtype: DType) -> HostTensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| noise(key, i)).collect();
    HostTensor::from_f32(shape.to_vec(), &v)
        .expect("consistent tensor")
        .cast(dtype)
}

/// Every tensor name and shape of a Llama checkpoint of [`llama_config`] geometry (`layers`
/// layers), HF names.
pub fn llama_tensor_shapes(layers: usize) -> Vec<(String, Vec<usize>)> {
    let (d, i, v) = (64, 96, 50);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), vec![d]));
        out.push((format!("{p}.self_attn.q_proj.weight"), vec![64, d]));
        out.push((format!("{p}.self_attn.k_proj.weight"), vec![32, d]));
        out.push((format!("{p}.self_attn.v_proj.weight"), vec![32, d]));
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![d, 64]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        out.push((format!("{p}.mlp.gate_proj.weight"), vec![i, d]));
        out.push((format!("{p}.mlp.up_proj.weight"), vec![i, d]));
        out.push((format!("{p}.mlp.down_proj.weight"), vec![d, i]));
    }
    out.push(("model.norm.weight".into(), vec![d]));
    out.push(("lm_head.weight".into(), vec![v, d]));
    out
}

/// Writes `config.json` and one `model.safetensors` of `tensors` into `dir`.
pub fn write_checkpoint(dir: &Path, config: &Value, tensors: &[(String, HostTensor)]) {
    std::fs::create_dir_all(dir).expect("create checkpoint dir");
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config).expect("config json"),
    )
    .expect("write config");
    write_safetensors(&dir.join("model.safetensors"), tensors).expect("write safetensors");
}

/// A tiny Llama checkpoint with noise weights in `dtype`.
pub fn make_llama(dir: &Path, dtype: DType) -> Vec<(String, HostTensor)> {
    let tensors: Vec<(String, HostTensor)> = llama_tensor_shapes(4)
        .into_iter()
        .map(|(k, s)| {
            let t = noise_tensor(&k, &s, dtype);
            (k, t)
        })
        .collect();
    write_checkpoint(dir, &llama_config(), &tensors);
    tensors
}

/// Parses YAML into JSON.
pub fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

/// `(name, value)` surgeries from YAML texts.
pub fn surgeries(texts: &[&str]) -> Vec<(String, Value)> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("surgery {}", i + 1), yaml(t)))
        .collect()
}

/// Hand-made attention weights with per-head constant rows (so tiling shows): `q_proj` head `h`
/// rows are all `10 + h`, `k_proj` head `g` rows `20 + g`, `v_proj` `30 + g`; `o_proj` column
/// block `h` is `40 + h`. Everything else of the Apriel2 layout of `config` is noise.
pub fn head_constant_tensors(config: &Value) -> Vec<(String, HostTensor)> {
    let spec = modelc::spec::from_json_value(config, "test").expect("valid config");
    modelc::spec::layout::weights(&spec)
        .into_iter()
        .map(|w| {
            let t = match w.key.rsplit('.').nth(1) {
                Some(p @ ("q_proj" | "k_proj" | "v_proj")) if w.key.ends_with("weight") && w.shape.len() == 2 => {
                    let base = match p {
                        "q_proj" => 10.0,
                        "k_proj" => 20.0,
                        _ => 30.0,
                    };
                    let (rows, cols) = (w.shape[0], w.shape[1]);
                    let v: Vec<f32> = (0..rows * cols).map(|i| base + ((i / cols) / 16) as f32).collect();
                    HostTensor::from_f32(w.shape.clone(), &v).expect("tensor")
                }
                Some("o_proj") if w.key.ends_with("weight") => {
                    let (rows, cols) = (w.shape[0], w.shape[1]);
                    let v: Vec<f32> = (0..rows * cols).map(|i| 40.0 + ((i % cols) / 16) as f32).collect();
                    HostTensor::from_f32(w.shape.clone(), &v).expect("tensor")
                }
                _ => noise_tensor(&w.key, &w.shape, DType::F32),
            };
            (w.key, t)
        })
        .collect()
}

/// Plans `surgeries` on an Apriel2 `config` and evaluates the plan over `tensors` in f32.
pub fn convert_in_memory(
    config: &Value,
    tensors: &[(String, HostTensor)],
    surgeries: &[(String, Value)],
    seed: u64,
) -> Result<
    (
        modelc::surgery::Conversion,
        std::collections::HashMap<String, HostTensor>,
    ),
    modelc::surgery::SurgeryError,
> {
    use modelc::surgery::sources::{import, SourceFormat};
    let imported = import(SourceFormat::Apriel2, config, None)?;
    let conv = modelc::surgery::build_conversion(imported, surgeries)?;
    let src = modelc::surgery::eval::MemorySource::new(tensors.iter().cloned());
    let out = modelc::surgery::executor::execute_in_memory(&conv.plan, &src, DType::F32, seed)?;
    Ok((conv, out.into_iter().collect()))
}

/// The value of each row of a 2-D tensor, asserting each row is constant.
pub fn row_values(t: &HostTensor) -> Vec<f32> {
    let v = t.to_f32_vec();
    let cols = t.shape[1];
    v.chunks(cols)
        .map(|r| {
            assert!(r.iter().all(|&x| x == r[0]), "row not constant: {r:?}");
            r[0]
        })
        .collect()
}

/// `[a; n]` repeated per value: `runs(&[(10., 16), (11., 16)])`.
pub fn runs(parts: &[(f32, usize)]) -> Vec<f32> {
    parts.iter().flat_map(|&(v, n)| std::iter::repeat_n(v, n)).collect()
}
