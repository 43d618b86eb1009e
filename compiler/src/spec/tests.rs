//! Unit tests of the resolver: every key and default, both decoder forms, round trips through
//! `to_config_json`, the example specs.

use std::path::Path;

use super::*;

fn yaml(src: &str) -> ModelSpec {
    parse_str(src, "t.yaml", Format::Yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn yaml_err(src: &str) -> SpecError {
    match parse_str(src, "t.yaml", Format::Yaml) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

/// A spec whose single fixed block has the given mixer (YAML flow mapping) and a plain MLP.
fn with_mixer(mixer: &str) -> String {
    format!(
        "hidden_size: 64\ndecoder:\n  num_blocks: 1\n  block:\n    mixer: {mixer}\n    mlp: {{intermediate_size: 32}}\n"
    )
}

const ROPE: &str = "rotary: {type: mistral_1d, theta: 10000}";

fn attn(extra: &str) -> String {
    with_mixer(&format!("{{heads: 4, head_size: 16, {ROPE}{extra}}}"))
}

fn only_mixer(s: &ModelSpec) -> &MixerSpec {
    &s.layers[0].mixer
}

fn round_trip(s: &ModelSpec) {
    let j = to_config_json(s);
    let back = from_json_value(&j, "round-trip").unwrap_or_else(|e| panic!("{e}\n{j:#}"));
    assert_eq!(&back, s, "round trip changed the spec:\n{j:#}");
    // Through text as well: JSON serialisation of floats must be exact.
    let text = serde_json::to_string_pretty(&j).unwrap_or_default();
    let back = parse_str(&text, "round-trip.json", Format::Json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&back, s);
}

const EXAMPLE_1_7: &str = r#"
model_type: apriel2_text
hidden_size: 64
vocab_size: 100
tie_word_embeddings: false
embeddings: {max_position_embeddings: 2048}
head: {normalization: {type: rms_norm, epsilon: 1.0e-5}}
decoder:
  type: pattern
  num_blocks: 4
  pattern: [attn, kda_block]
  blocks:
    attn:
      mixer: {type: attention, heads: 4, head_groups: 2, head_size: 16,
              rotary: {type: mistral_1d, theta: 10000.0}}
      mlp: {type: mlp, intermediate_size: 256, gated: true}
      normalization: {type: rms_norm, epsilon: 1.0e-5}
    kda_block:
      mixer: {type: kda, heads: 4, head_dim: 16, convolution_layer: {kernel_size: 4},
              normalization: {epsilon: 1.0e-5}}
      mlp: {type: mlp, intermediate_size: 256, gated: true}
      normalization: {type: rms_norm, epsilon: 1.0e-5}
"#;

#[test]
fn reference_example_parses() {
    let s = yaml(EXAMPLE_1_7);
    assert_eq!(s.model_type, "apriel2_text");
    assert_eq!(
        (s.hidden_size, s.vocab_size, s.max_position_embeddings),
        (64, 100, 2048)
    );
    assert_eq!(
        s.decoder_form,
        DecoderForm::Pattern(vec!["attn".into(), "kda_block".into()])
    );
    let names: Vec<&str> = s.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["attn", "kda_block", "attn", "kda_block"]);
    let MixerSpec::Attention(a) = &s.layers[2].mixer else {
        panic!("{:?}", s.layers[2])
    };
    assert_eq!(
        (a.heads, a.head_groups, a.head_size, a.rotary.theta),
        (4, 2, 16, 10000.0)
    );
    let MixerSpec::Kda(k) = &s.layers[3].mixer else {
        panic!("{:?}", s.layers[3])
    };
    assert_eq!(
        *k,
        KdaSpec {
            heads: 4,
            head_dim: 16,
            conv_kernel_size: 4,
            norm_eps: 1e-5,
            norm_activation: GateActivation::Silu
        }
    );
    assert!(s.layers.iter().all(|l| l.mlp.gated && l.mlp.intermediate_size == 256));
    round_trip(&s);
}

#[test]
fn top_level_defaults() {
    let s = yaml(&attn(""));
    assert_eq!(s.model_type, "apriel2_text");
    assert_eq!(s.vocab_size, 32000);
    assert_eq!(s.max_position_embeddings, 2048);
    assert_eq!(s.head_norm, NormSpec::RmsNorm { eps: 1e-5 });
    assert!(!s.tie_word_embeddings);
    assert_eq!(
        (s.bos_token_id, s.eos_token_id, s.pad_token_id),
        (Some(1), Some(2), None)
    );
    assert_eq!(s.decoder_form, DecoderForm::Fixed);
    assert_eq!(s.layers[0].name, "block");
    assert_eq!(s.layers[0].normalization, NormSpec::RmsNorm { eps: 1e-5 });
    let no_hidden = "decoder: {num_blocks: 1, block: {mixer: {heads: 2, head_size: 8, rotary: {type: mistral_1d, theta: 10000.0}}, mlp: {intermediate_size: 8}}}";
    assert_eq!(yaml(no_hidden).hidden_size, 4096);
}

#[test]
fn top_level_keys_are_read() {
    let src = format!(
        "model_type: apriel2\nvocab_size: 7\nembeddings: {{max_position_embeddings: 99}}\n\
         head: {{normalization: {{type: layer_norm, epsilon: 1.0e-6}}}}\ntie_word_embeddings: true\n\
         bos_token_id: null\neos_token_id: 5\npad_token_id: 0\nuse_cache: false\n\
         architectures: [Apriel2ForConditionalGeneration]\nauto_map: {{AutoConfig: x.Y}}\n\
         transformers_version: 4.57.1\ntorch_dtype: bfloat16\ndtype: bfloat16\n\
         vision_encoder: null\nimage_token_index: 10\n_name_or_path: somewhere\n{}",
        attn("")
    );
    let s = yaml(&src);
    assert_eq!(s.model_type, "apriel2");
    assert_eq!((s.vocab_size, s.max_position_embeddings), (7, 99));
    assert_eq!(s.head_norm, NormSpec::LayerNorm { eps: 1e-6 });
    assert!(s.tie_word_embeddings);
    assert_eq!(
        (s.bos_token_id, s.eos_token_id, s.pad_token_id),
        (None, Some(5), Some(0))
    );
    round_trip(&s);
}

#[test]
fn attention_keys_and_defaults() {
    let s = yaml(&attn(""));
    let MixerSpec::Attention(a) = only_mixer(&s) else {
        panic!()
    };
    assert_eq!(a.head_groups, 4, "head_groups defaults to heads");
    assert!(a.causal);
    assert_eq!(a.window_size, None);
    assert_eq!(
        a.bias,
        AttentionBiases {
            q: false,
            k: false,
            v: false,
            o: false
        }
    );
    assert_eq!(only_mixer(&s).kind(), MixerKind::Attention);

    let s = yaml(&attn(", type: attention, head_groups: 1, causal: false, window_size: 8, cross_document_attention: true, add_linear_biases: true"));
    let MixerSpec::Attention(a) = only_mixer(&s) else {
        panic!()
    };
    assert_eq!((a.head_groups, a.causal, a.window_size), (1, false, Some(8)));
    assert_eq!(
        a.bias,
        AttentionBiases {
            q: true,
            k: true,
            v: true,
            o: true
        }
    );
    assert_eq!(only_mixer(&s).kind(), MixerKind::SlidingWindow);
    round_trip(&s);

    // Qwen2 style: per-projection flags override the default.
    let s = yaml(&attn(", query_layer: {bias: {enabled: true}}, key_layer: {bias: {enabled: true}}, value_layer: {bias: {enabled: true}}"));
    let MixerSpec::Attention(a) = only_mixer(&s) else {
        panic!()
    };
    assert_eq!(
        a.bias,
        AttentionBiases {
            q: true,
            k: true,
            v: true,
            o: false
        }
    );
    round_trip(&s);
    let s = yaml(&attn(
        ", add_linear_biases: true, dense_layer: {bias: {enabled: false}}",
    ));
    let MixerSpec::Attention(a) = only_mixer(&s) else {
        panic!()
    };
    assert_eq!(
        a.bias,
        AttentionBiases {
            q: true,
            k: true,
            v: true,
            o: false
        }
    );
}

#[test]
fn unsupported_rotary_types_are_named() {
    for t in ["llama3", "yarn", "default", "pixtral_2d"] {
        let e = yaml_err(&with_mixer(&format!(
            "{{heads: 4, head_size: 16, rotary: {{type: {t}, theta: 10000.0}}}}"
        )));
        assert_eq!(e.kind(), Some(ErrorKind::Unsupported), "{e}");
        assert!(e.to_string().contains(&format!("`{t}`")), "{e}");
        assert_eq!(e.key_path(), Some("decoder.block.mixer.rotary.type"));
    }
}

#[test]
fn mamba_keys_and_defaults() {
    let s = yaml(&with_mixer("{type: mamba, conv_bias: true, dt_proj_bias: false}"));
    let MixerSpec::Mamba(m) = only_mixer(&s) else { panic!() };
    let want = MambaSpec {
        state_size: 16,
        d_inner: 128,
        d_xb: 64,
        d_conv: 4,
        dt_rank: 4,
        repeat_kv_before_conv: true,
        conv_bias: true,
        dt_proj_bias: false,
        add_linear_biases: false,
        dt_min: 0.001,
        dt_max: 0.1,
        dt_init_floor: 1e-4,
        dt_scale: 1.0,
    };
    assert_eq!(*m, want);
    round_trip(&s);

    let s = yaml(&with_mixer(
        "{type: mamba, d_state: 8, expand: 3, d_xb: 16, d_conv: 3, dt_rank: auto, dt_min: 0.01, dt_max: 0.2, dt_init: constant, dt_scale: 2.0, dt_init_floor: 0.001, repeat_kv_before_conv: false, conv_bias: false, dt_proj_bias: true, add_linear_biases: true}",
    ));
    let MixerSpec::Mamba(m) = only_mixer(&s) else { panic!() };
    assert_eq!(
        (m.state_size, m.d_inner, m.d_xb, m.d_conv, m.dt_rank),
        (8, 192, 16, 3, 4)
    );
    assert_eq!(
        (m.dt_min, m.dt_max, m.dt_scale, m.dt_init_floor),
        (0.01, 0.2, 2.0, 0.001)
    );
    assert!(!m.repeat_kv_before_conv && !m.conv_bias && m.dt_proj_bias && m.add_linear_biases);
    assert_eq!(m.conv_channels(), 16);
    round_trip(&s);

    // Both spellings of N: equal is fine, different is an error at d_state.
    let s = yaml(&with_mixer(
        "{type: mamba, state_size: 32, d_state: 32, d_inner: 128, d_xb: 32, conv_bias: true, dt_proj_bias: true}",
    ));
    let MixerSpec::Mamba(m) = only_mixer(&s) else { panic!() };
    assert_eq!(m.state_size, 32);
    let e = yaml_err(&with_mixer(
        "{type: mamba, state_size: 32, d_state: 16, conv_bias: true, dt_proj_bias: true}",
    ));
    assert_eq!(e.key_path(), Some("decoder.block.mixer.d_state"));
    // dt_rank auto rounds up.
    let s = yaml(
        &with_mixer("{type: mamba, d_inner: 64, d_xb: 32, conv_bias: true, dt_proj_bias: true}")
            .replace("hidden_size: 64", "hidden_size: 72"),
    );
    let MixerSpec::Mamba(m) = only_mixer(&s) else { panic!() };
    assert_eq!(m.dt_rank, 5);
}

#[test]
fn gdn_keys_and_defaults() {
    let s = yaml(&with_mixer("{type: gdn, convolution_layer: {kernel_size: 4}}"));
    let MixerSpec::Gdn(g) = only_mixer(&s) else { panic!() };
    let want = GdnSpec {
        value_heads: 32,
        key_heads: 8,
        key_head_dim: 64,
        value_head_dim: 64,
        conv_kernel_size: 4,
        conv_activation: Activation::Silu,
        norm_eps: 1e-5,
    };
    assert_eq!(*g, want);
    let s = yaml(&with_mixer(
        "{type: gdn, value_heads: 6, key_heads: 3, key_head_dim: 8, value_head_dim: 4, convolution_layer: {kernel_size: 2, activation: identity}, norm_eps: 1.0e-6}",
    ));
    let MixerSpec::Gdn(g) = only_mixer(&s) else { panic!() };
    assert_eq!(
        (g.value_heads, g.key_heads, g.key_head_dim, g.value_head_dim),
        (6, 3, 8, 4)
    );
    assert_eq!(
        (g.conv_kernel_size, g.conv_activation, g.norm_eps),
        (2, Activation::Identity, 1e-6)
    );
    round_trip(&s);
    let e = yaml_err(&with_mixer("{type: gdn}"));
    assert_eq!(e.kind(), Some(ErrorKind::Missing));
    assert_eq!(e.key_path(), Some("decoder.block.mixer.convolution_layer"));
}

#[test]
fn kda_keys_and_defaults() {
    let s = yaml(&with_mixer("{type: kda}"));
    let MixerSpec::Kda(k) = only_mixer(&s) else { panic!() };
    assert_eq!(
        *k,
        KdaSpec {
            heads: 32,
            head_dim: 64,
            conv_kernel_size: 4,
            norm_eps: 1e-5,
            norm_activation: GateActivation::Silu
        }
    );
    let s = yaml(&with_mixer("{type: kda, heads: 2, head_dim: 8, convolution_layer: {kernel_size: 3}, normalization: {epsilon: 1.0e-6, activation: sigmoid}}"));
    let MixerSpec::Kda(k) = only_mixer(&s) else { panic!() };
    assert_eq!((k.heads, k.head_dim, k.conv_kernel_size, k.norm_eps), (2, 8, 3, 1e-6));
    assert_eq!(k.norm_activation, GateActivation::Sigmoid);
    round_trip(&s);
    let e = yaml_err(&with_mixer("{type: kda, convolution_layer: {activation: gelu}}"));
    assert_eq!(e.kind(), Some(ErrorKind::Unsupported));
}

const STOCH: &str = "{type: stochastic, mixers: {k: {type: kda, heads: 2, head_dim: 8}, a: {heads: 2, head_size: 8, rotary: {type: mistral_1d, theta: 100}}}";

#[test]
fn stochastic_keys_and_defaults() {
    let s = yaml(&with_mixer(&format!("{STOCH}}}")));
    let MixerSpec::Stochastic(st) = only_mixer(&s) else {
        panic!()
    };
    let names: Vec<&str> = st.mixers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["k", "a"], "config order is kept");
    assert_eq!(st.main_mixer_name, "k", "main defaults to the first key");
    assert_eq!(st.sampling, SamplingStrategy::Uniform);
    assert_eq!(st.main().kind(), MixerKind::Kda);
    round_trip(&s);

    let s = yaml(&with_mixer(&format!(
        "{STOCH}, main_mixer_name: a, sampling_strategy: weighted, sampling_weights: {{a: 3}}}}"
    )));
    let MixerSpec::Stochastic(st) = only_mixer(&s) else {
        panic!()
    };
    assert_eq!(st.main_mixer_name, "a");
    // Missing names weigh 1.0 before normalising: k = 1/4, a = 3/4.
    assert_eq!(
        st.sampling,
        SamplingStrategy::Weighted(vec![("k".into(), 0.25), ("a".into(), 0.75)])
    );
    round_trip(&s);

    let s = yaml(&with_mixer(&format!(
        "{STOCH}, sampling_strategy: weighted, sampling_weights: {{k: 0.1, a: 0.2}}}}"
    )));
    round_trip(&s);
}

#[test]
fn mlp_keys_and_defaults() {
    let s = yaml(&attn(""));
    assert_eq!(
        s.layers[0].mlp,
        MlpSpec {
            intermediate_size: 32,
            activation: Activation::Silu,
            gated: false,
            up_bias: false,
            down_bias: false
        }
    );
    for (name, act) in [
        ("swish", Activation::Silu),
        ("gelu", Activation::Gelu),
        ("gelu_pytorch_tanh", Activation::GeluTanh),
        ("gelu_new", Activation::GeluTanh),
        ("gelu_fast", Activation::GeluTanh),
        ("relu", Activation::Relu),
        ("sigmoid", Activation::Sigmoid),
        ("identity", Activation::Identity),
        ("linear", Activation::Identity),
    ] {
        let s = yaml(&attn("").replace(
            "{intermediate_size: 32}",
            &format!("{{type: mlp, intermediate_size: 32, activation: {name}}}"),
        ));
        assert_eq!(s.layers[0].mlp.activation, act, "{name}");
    }
    let s = yaml(&attn("").replace(
        "{intermediate_size: 32}",
        "{intermediate_size: 32, add_linear_biases: true, layer_2: {bias: {enabled: false}}}",
    ));
    assert!(s.layers[0].mlp.up_bias && !s.layers[0].mlp.down_bias);
    round_trip(&s);
    let s = yaml(&attn("").replace(
        "{intermediate_size: 32}",
        "{intermediate_size: 32, layer_1: {bias: {enabled: true}}}",
    ));
    assert!(s.layers[0].mlp.up_bias && !s.layers[0].mlp.down_bias);
    // A gated MLP may say add_linear_biases: true if both layers turn it off again.
    let s = yaml(&attn("").replace(
        "{intermediate_size: 32}",
        "{intermediate_size: 32, gated: true, add_linear_biases: true, layer_1: {bias: {enabled: false}}, layer_2: {bias: {enabled: false}}}",
    ));
    assert!(s.layers[0].mlp.gated && !s.layers[0].mlp.up_bias);
    let e = yaml_err(&attn("").replace(
        "{intermediate_size: 32}",
        "{intermediate_size: 32, gated: true, layer_2: {bias: {enabled: true}}}",
    ));
    assert_eq!(e.key_path(), Some("decoder.block.mlp.layer_2.bias.enabled"));
    assert!(e.to_string().contains("gated MLP has no biases"), "{e}");
}

#[test]
fn block_norm_is_per_block() {
    let src = attn("").replace(
        "    mlp:",
        "    normalization: {type: layer_norm, epsilon: 1.0e-3}\n    mlp:",
    );
    let s = yaml(&src);
    assert_eq!(s.layers[0].normalization, NormSpec::LayerNorm { eps: 1e-3 });
    assert_eq!(
        s.head_norm,
        NormSpec::RmsNorm { eps: 1e-5 },
        "the head epsilon is separate"
    );
    round_trip(&s);
}

#[test]
fn pattern_layers_cycle_and_truncate() {
    let src = r#"
hidden_size: 32
decoder:
  type: pattern
  num_blocks: 5
  pattern: [a, b, b]
  blocks:
    a: {mixer: {type: kda, heads: 2, head_dim: 8}, mlp: {intermediate_size: 8}}
    b: {mixer: {type: gdn, value_heads: 2, key_heads: 1, key_head_dim: 8, value_head_dim: 8, convolution_layer: {kernel_size: 4}}, mlp: {intermediate_size: 8}}
    unused: {mixer: {type: kda}, mlp: {intermediate_size: 8}}
"#;
    let s = yaml(src);
    let kinds: Vec<MixerKind> = s.layers.iter().map(|l| l.mixer.kind()).collect();
    use MixerKind::*;
    assert_eq!(kinds, [Kda, Gdn, Gdn, Kda, Gdn]);
    round_trip(&s);
    // Pattern entries beyond num_blocks are never used and are dropped.
    let s = yaml(&src.replace("num_blocks: 5", "num_blocks: 2"));
    assert_eq!(s.decoder_form, DecoderForm::Pattern(vec!["a".into(), "b".into()]));
    round_trip(&s);
    // ... but still checked.
    let e = yaml_err(
        &src.replace("num_blocks: 5", "num_blocks: 1")
            .replace("[a, b, b]", "[a, b, c]"),
    );
    assert!(e.to_string().contains("`c`"), "{e}");
}

#[test]
fn edited_specs_write_back_consistently() {
    // A fixed spec whose layers were changed in memory is written as a pattern.
    let mut s = yaml(&attn("").replace("num_blocks: 1", "num_blocks: 3"));
    if let MixerSpec::Attention(a) = &mut s.layers[1].mixer {
        a.window_size = Some(4);
    }
    let back = from_json_value(&to_config_json(&s), "x").unwrap_or_else(|e| panic!("{e}"));
    let strip = |v: &[BlockSpec]| {
        v.iter()
            .map(|b| (b.mixer.clone(), b.mlp.clone(), b.normalization))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&back.layers), strip(&s.layers));
    assert_eq!(back.layers[0].name, back.layers[2].name);
    assert_ne!(back.layers[0].name, back.layers[1].name);
}

#[test]
fn init_needs_the_option() {
    let src = attn(", init: transfer").replace("{intermediate_size: 32}", "{intermediate_size: 32, init: random}");
    let e = yaml_err(&src);
    assert_eq!(e.kind(), Some(ErrorKind::UnknownKey));
    assert!(e.to_string().contains("surgery"), "{e}");
    let opts = ParseOptions { allow_init: true };
    let s = parse_str_with(&src, "t.yaml", Format::Yaml, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s, yaml(&attn("")));
    let e = parse_str_with(&attn(", init: copy"), "t.yaml", Format::Yaml, &opts).unwrap_err();
    assert!(e.to_string().contains("`transfer`"), "{e}");
}

#[test]
fn vision_encoder_is_rejected_where_it_is() {
    let src = format!("model_type: apriel2\nvision_encoder:\n  hidden_size: 32\n{}", attn(""));
    let e = yaml_err(&src);
    assert_eq!(e.kind(), Some(ErrorKind::Unsupported));
    assert_eq!(e.position(), Some((2, 1)));
    assert!(e.to_string().contains("vision encoder is not supported yet"), "{e}");
}

#[test]
fn json_and_yaml_agree() {
    let s = yaml(EXAMPLE_1_7);
    let text = serde_json::to_string(&to_config_json(&s)).unwrap_or_default();
    let j = parse_str(&text, "c.json", Format::Json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(j, s);
}

#[test]
fn yaml_anchors_share_blocks() {
    let src = r#"
hidden_size: 32
decoder:
  type: pattern
  num_blocks: 2
  pattern: [a, b]
  blocks:
    a: &base
      mixer: {heads: 2, head_size: 8, rotary: {type: mistral_1d, theta: 10.0}}
      mlp: {intermediate_size: 8}
    b:
      <<: *base
      normalization: {epsilon: 1.0e-6}
"#;
    let s = yaml(src);
    assert_eq!(s.layers[0].mixer, s.layers[1].mixer);
    assert_eq!(s.layers[1].normalization, NormSpec::RmsNorm { eps: 1e-6 });
}

#[test]
fn example_specs_load_and_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let a = load(&dir.join("tiny-attention.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((a.hidden_size, a.vocab_size, a.layers.len()), (64, 128, 2));
    let h = load(&dir.join("tiny-hybrid.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<MixerKind> = h.layers.iter().map(|l| l.mixer.kind()).collect();
    use MixerKind::*;
    assert_eq!(kinds, [Attention, SlidingWindow, Gdn, Kda, Mamba]);
    let n = load(&dir.join("tiny-supernet.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let MixerSpec::Stochastic(st) = &n.layers[1].mixer else {
        panic!()
    };
    assert_eq!(st.mixers.len(), 5);
    assert_eq!(st.main().kind(), Attention);
    for s in [&a, &h, &n] {
        round_trip(s);
    }
}

#[test]
fn load_reads_checkpoint_dirs_and_rejects_unknown_files() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = yaml(EXAMPLE_1_7);
    let text = serde_json::to_string_pretty(&to_config_json(&s)).unwrap_or_default();
    std::fs::write(tmp.path().join("config.json"), text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(load(tmp.path()).unwrap_or_else(|e| panic!("{e}")), s);
    let txt = tmp.path().join("spec.txt");
    std::fs::write(&txt, "x").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(load(&txt), Err(SpecError::UnknownFormat { .. })));
    assert!(matches!(
        load(&tmp.path().join("missing.yaml")),
        Err(SpecError::Io { .. })
    ));
}

#[test]
fn in_memory_errors_name_the_path() {
    let mut v = to_config_json(&yaml(EXAMPLE_1_7));
    v["decoder"]["blocks"]["attn"]["mixer"]["heads"] = serde_json::json!("four");
    let e = from_json_value(&v, "surgery").unwrap_err();
    assert_eq!(e.position(), None);
    assert_eq!(e.key_path(), Some("decoder.blocks.attn.mixer.heads"));
    assert!(
        e.to_string()
            .starts_with("surgery: decoder.blocks.attn.mixer.heads: expected an integer"),
        "{e}"
    );
}

#[test]
fn every_shipped_spec_loads_and_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_default();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
        round_trip(&s);
        assert_eq!(
            layout::parameter_count(&s),
            layout::weights(&s)
                .iter()
                .map(|w| w.shape.iter().product::<usize>())
                .sum::<usize>()
        );
        n += 1;
    }
    assert!(n >= 3, "expected the example specs in {}", dir.display());
}
