//! A [`ModelSpec`] back into a complete HF `config.json`, every resolved value written explicitly
//! (so neither HF's nor Fast-LLM's differing defaults can change its meaning), the decoder in its
//! original fixed/pattern form.

use serde_json::{json, Map, Value};

use super::model::*;

fn norm(n: &NormSpec) -> Value {
    match *n {
        NormSpec::RmsNorm { eps } => json!({"type": "rms_norm", "epsilon": eps}),
        NormSpec::LayerNorm { eps } => json!({"type": "layer_norm", "epsilon": eps}),
    }
}

fn bias(enabled: bool) -> Value {
    json!({"bias": {"enabled": enabled}})
}

fn mlp(m: &MlpSpec) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("mlp"));
    o.insert("intermediate_size".into(), json!(m.intermediate_size));
    o.insert("activation".into(), json!(m.activation.hf_name()));
    o.insert("gated".into(), json!(m.gated));
    o.insert("add_linear_biases".into(), json!(m.up_bias && m.down_bias));
    if m.up_bias != m.down_bias {
        o.insert("layer_1".into(), bias(m.up_bias));
        o.insert("layer_2".into(), bias(m.down_bias));
    }
    Value::Object(o)
}

fn attention(a: &AttentionSpec) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("attention"));
    o.insert("heads".into(), json!(a.heads));
    o.insert("head_groups".into(), json!(a.head_groups));
    o.insert("head_size".into(), json!(a.head_size));
    o.insert("causal".into(), json!(a.causal));
    if let Some(w) = a.window_size {
        o.insert("window_size".into(), json!(w));
    }
    let b = a.bias;
    let all = b.q && b.k && b.v && b.o;
    o.insert("add_linear_biases".into(), json!(all));
    for (key, on) in [
        ("query_layer", b.q),
        ("key_layer", b.k),
        ("value_layer", b.v),
        ("dense_layer", b.o),
    ] {
        if on != all {
            o.insert(key.into(), bias(on));
        }
    }
    o.insert("rotary".into(), json!({"type": "mistral_1d", "theta": a.rotary.theta}));
    Value::Object(o)
}

fn mixer(m: &MixerSpec) -> Value {
    match m {
        MixerSpec::Attention(a) => attention(a),
        MixerSpec::Mamba(m) => json!({
            "type": "mamba",
            "state_size": m.state_size,
            "d_inner": m.d_inner,
            "d_xb": m.d_xb,
            "d_conv": m.d_conv,
            "dt_rank": m.dt_rank,
            "repeat_kv_before_conv": m.repeat_kv_before_conv,
            "conv_bias": m.conv_bias,
            "dt_proj_bias": m.dt_proj_bias,
            "add_linear_biases": m.add_linear_biases,
            "dt_min": m.dt_min,
            "dt_max": m.dt_max,
            "dt_init_floor": m.dt_init_floor,
            "dt_scale": m.dt_scale,
        }),
        MixerSpec::Gdn(g) => json!({
            "type": "gdn",
            "value_heads": g.value_heads,
            "key_heads": g.key_heads,
            "key_head_dim": g.key_head_dim,
            "value_head_dim": g.value_head_dim,
            "convolution_layer": {"kernel_size": g.conv_kernel_size, "activation": g.conv_activation.hf_name()},
            "norm_eps": g.norm_eps,
        }),
        MixerSpec::Kda(k) => json!({
            "type": "kda",
            "heads": k.heads,
            "head_dim": k.head_dim,
            "convolution_layer": {"kernel_size": k.conv_kernel_size},
            "normalization": {"epsilon": k.norm_eps, "activation": k.norm_activation.name()},
        }),
        MixerSpec::Stochastic(s) => {
            let mut o = Map::new();
            o.insert("type".into(), json!("stochastic"));
            let mixers: Map<String, Value> = s.mixers.iter().map(|(n, m)| (n.clone(), mixer(m))).collect();
            o.insert("mixers".into(), Value::Object(mixers));
            o.insert("main_mixer_name".into(), json!(s.main_mixer_name));
            match &s.sampling {
                SamplingStrategy::Uniform => {
                    o.insert("sampling_strategy".into(), json!("uniform"));
                }
                SamplingStrategy::Weighted(w) => {
                    o.insert("sampling_strategy".into(), json!("weighted"));
                    let w: Map<String, Value> = w.iter().map(|(n, x)| (n.clone(), json!(x))).collect();
                    o.insert("sampling_weights".into(), Value::Object(w));
                }
            }
            Value::Object(o)
        }
    }
}

/// A block config.
pub fn block_config(b: &BlockSpec) -> Value {
    json!({
        "mixer": mixer(&b.mixer),
        "mlp": mlp(&b.mlp),
        "normalization": norm(&b.normalization),
    })
}

/// The decoder in its recorded form when the layers are consistent with it; otherwise (a spec
/// edited in memory) a pattern with one name per distinct block.
fn decoder(spec: &ModelSpec) -> Value {
    let layers = &spec.layers;
    let n = layers.len();
    match &spec.decoder_form {
        DecoderForm::Fixed => {
            if let Some(first) = layers.first() {
                if layers
                    .iter()
                    .all(|l| l.mixer == first.mixer && l.mlp == first.mlp && l.normalization == first.normalization)
                {
                    return json!({"type": "fixed", "num_blocks": n, "block": block_config(first)});
                }
            }
        }
        DecoderForm::Pattern(p) if !p.is_empty() && p.len() <= n => {
            // Each layer carries its pattern name, and all layers of one name are equal.
            let mut first: std::collections::HashMap<&str, &BlockSpec> = std::collections::HashMap::new();
            let consistent = layers
                .iter()
                .zip(p.iter().cycle())
                .all(|(l, name)| l.name == *name && **first.entry(name.as_str()).or_insert(l) == *l);
            if consistent {
                let mut blocks = Map::new();
                for l in layers {
                    if !blocks.contains_key(&l.name) {
                        blocks.insert(l.name.clone(), block_config(l));
                    }
                }
                return json!({"type": "pattern", "num_blocks": n, "pattern": p, "blocks": blocks});
            }
        }
        DecoderForm::Pattern(_) => {}
    }
    // Fallback: distinct blocks, named after their own name (suffixed where names collide).
    let mut distinct: Vec<(String, &BlockSpec)> = Vec::new();
    let mut pattern = Vec::with_capacity(n);
    for l in layers {
        let found = distinct
            .iter()
            .find(|(_, b)| b.mixer == l.mixer && b.mlp == l.mlp && b.normalization == l.normalization)
            .map(|(name, _)| name.clone());
        let name = match found {
            Some(name) => name,
            None => {
                let base = if l.name.is_empty() {
                    "block".to_string()
                } else {
                    l.name.clone()
                };
                let mut name = base.clone();
                let mut k = 2;
                while distinct.iter().any(|(d, _)| *d == name) {
                    name = format!("{base}_{k}");
                    k += 1;
                }
                distinct.push((name.clone(), l));
                name
            }
        };
        pattern.push(name);
    }
    let blocks: Map<String, Value> = distinct
        .iter()
        .map(|(name, b)| (name.clone(), block_config(b)))
        .collect();
    json!({"type": "pattern", "num_blocks": n, "pattern": pattern, "blocks": blocks})
}

/// A complete HF `config.json` for the spec.
pub fn to_config_json(spec: &ModelSpec) -> Value {
    let multimodal = spec.model_type == "apriel2";
    let (arch, config_class, model_class) = if multimodal {
        ("Apriel2ForConditionalGeneration", "Apriel2Config", "Apriel2Model")
    } else {
        ("Apriel2ForCausalLM", "Apriel2TextConfig", "Apriel2TextModel")
    };
    json!({
        "model_type": spec.model_type,
        "architectures": [arch],
        "auto_map": {
            "AutoConfig": format!("configuration_apriel2.{config_class}"),
            "AutoModel": format!("modeling_apriel2.{model_class}"),
            "AutoModelForCausalLM": format!("modeling_apriel2.{arch}"),
        },
        "hidden_size": spec.hidden_size,
        "vocab_size": spec.vocab_size,
        "embeddings": {"max_position_embeddings": spec.max_position_embeddings},
        "head": {"normalization": norm(&spec.head_norm)},
        "tie_word_embeddings": spec.tie_word_embeddings,
        "bos_token_id": spec.bos_token_id,
        "eos_token_id": spec.eos_token_id,
        "pad_token_id": spec.pad_token_id,
        "use_cache": true,
        "decoder": decoder(spec),
    })
}
