//! The checkpoint tensor layout of a spec: every safetensors key of reference §5.1 with its shape
//! (§2.1 attention, §2.4 GDN, §2.5 KDA, §2.6 Mamba), in a deterministic order.

use super::model::*;

/// One checkpoint tensor: its exact key and its shape (`[out, in]` for linears).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightDecl {
    pub key: String,
    pub shape: Vec<usize>,
}

impl WeightDecl {
    fn new(key: String, shape: Vec<usize>) -> WeightDecl {
        WeightDecl { key, shape }
    }

    /// Number of elements (saturating: shapes are bounded by the parser, but a spec built in
    /// memory is not).
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }
}

fn linear(out: &mut Vec<WeightDecl>, prefix: &str, name: &str, rows: usize, cols: usize, bias: bool) {
    out.push(WeightDecl::new(format!("{prefix}.{name}.weight"), vec![rows, cols]));
    if bias {
        out.push(WeightDecl::new(format!("{prefix}.{name}.bias"), vec![rows]));
    }
}

fn norm(out: &mut Vec<WeightDecl>, prefix: &str, n: &NormSpec, dim: usize) {
    out.push(WeightDecl::new(format!("{prefix}.weight"), vec![dim]));
    if let NormSpec::LayerNorm { .. } = n {
        out.push(WeightDecl::new(format!("{prefix}.bias"), vec![dim]));
    }
}

fn mixer_into(out: &mut Vec<WeightDecl>, p: &str, mixer: &MixerSpec, d: usize) {
    let t = |name: &str| format!("{p}.{name}");
    match mixer {
        MixerSpec::Attention(a) => {
            let (q, kv) = (a.heads * a.head_size, a.head_groups * a.head_size);
            linear(out, p, "q_proj", q, d, a.bias.q);
            linear(out, p, "k_proj", kv, d, a.bias.k);
            linear(out, p, "v_proj", kv, d, a.bias.v);
            linear(out, p, "o_proj", d, q, a.bias.o);
        }
        MixerSpec::Mamba(m) => {
            let b = m.add_linear_biases;
            linear(out, p, "in_proj", 2 * m.d_inner + 2 * m.d_xb, d, b);
            linear(out, p, "dt_in_proj", m.dt_rank, d, b);
            linear(out, p, "dt_proj", m.d_inner, m.dt_rank, m.dt_proj_bias);
            let c = m.conv_channels();
            out.push(WeightDecl::new(t("conv1d.weight"), vec![c, 1, m.d_conv]));
            if m.conv_bias {
                out.push(WeightDecl::new(t("conv1d.bias"), vec![c]));
            }
            out.push(WeightDecl::new(t("A_log"), vec![m.d_inner, m.state_size]));
            out.push(WeightDecl::new(t("D"), vec![m.d_inner]));
            linear(out, p, "out_proj", d, m.d_inner, b);
        }
        MixerSpec::Gdn(g) => {
            let (k, v) = (g.key_heads * g.key_head_dim, g.value_heads * g.value_head_dim);
            linear(out, p, "in_proj_qkvz", 2 * k + 2 * v, d, false);
            linear(out, p, "in_proj_ba", 2 * g.value_heads, d, false);
            out.push(WeightDecl::new(
                t("convolution.weight"),
                vec![g.conv_dim(), 1, g.conv_kernel_size],
            ));
            out.push(WeightDecl::new(t("dt_bias"), vec![g.value_heads]));
            out.push(WeightDecl::new(t("A_log"), vec![g.value_heads]));
            out.push(WeightDecl::new(t("norm.weight"), vec![g.value_head_dim]));
            linear(out, p, "out_proj", d, v, false);
        }
        MixerSpec::Kda(k) => {
            let (h, dim) = (k.heads, k.head_dim);
            let pw = h * dim;
            for name in ["q_proj", "k_proj", "v_proj"] {
                linear(out, p, name, pw, d, false);
            }
            for name in ["q_conv", "k_conv", "v_conv"] {
                out.push(WeightDecl::new(
                    t(&format!("{name}.weight")),
                    vec![pw, 1, k.conv_kernel_size],
                ));
            }
            linear(out, p, "f_a_proj", dim, d, false);
            linear(out, p, "f_b_proj", pw, dim, false);
            linear(out, p, "g_a_proj", dim, d, false);
            linear(out, p, "g_b_proj", pw, dim, false);
            linear(out, p, "beta_proj", h, d, false);
            out.push(WeightDecl::new(t("A_log"), vec![h]));
            out.push(WeightDecl::new(t("dt_bias"), vec![pw]));
            out.push(WeightDecl::new(t("norm.weight"), vec![dim]));
            linear(out, p, "o_proj", d, pw, false);
        }
        MixerSpec::Stochastic(s) => {
            for (name, m) in &s.mixers {
                mixer_into(out, &format!("{p}.mixers.{name}"), m, d);
            }
        }
    }
}

/// The tensors of one mixer under `prefix` (e.g. `model.decoder.blocks.3.mixer`); a stochastic
/// mixer lists every sub-mixer under `<prefix>.mixers.<name>`, in config order.
pub fn mixer_weights(prefix: &str, mixer: &MixerSpec, hidden: usize) -> Vec<WeightDecl> {
    let mut out = Vec::new();
    mixer_into(&mut out, prefix, mixer, hidden);
    out
}

/// The tensors of an MLP under `prefix` (e.g. `model.decoder.blocks.3.mlp`).
pub fn mlp_weights(prefix: &str, mlp: &MlpSpec, hidden: usize) -> Vec<WeightDecl> {
    let mut out = Vec::new();
    let i = mlp.intermediate_size;
    if mlp.gated {
        linear(&mut out, prefix, "gate_proj", i, hidden, false);
    }
    linear(&mut out, prefix, "up_proj", i, hidden, mlp.up_bias && !mlp.gated);
    linear(&mut out, prefix, "down_proj", hidden, i, mlp.down_bias && !mlp.gated);
    out
}

/// The tensors of decoder layer `i`: input_layernorm, mixer, post_attention_layernorm, mlp.
pub fn block_weights(i: usize, block: &BlockSpec, hidden: usize) -> Vec<WeightDecl> {
    let p = format!("model.decoder.blocks.{i}");
    let mut out = Vec::new();
    norm(&mut out, &format!("{p}.input_layernorm"), &block.normalization, hidden);
    mixer_into(&mut out, &format!("{p}.mixer"), &block.mixer, hidden);
    norm(
        &mut out,
        &format!("{p}.post_attention_layernorm"),
        &block.normalization,
        hidden,
    );
    out.extend(mlp_weights(&format!("{p}.mlp"), &block.mlp, hidden));
    out
}

/// Every checkpoint tensor: embeddings, each layer in order, the final norm, `lm_head` (unless
/// tied to the embeddings).
pub fn weights(spec: &ModelSpec) -> Vec<WeightDecl> {
    let d = spec.hidden_size;
    let mut out = vec![WeightDecl::new(
        "model.embed_tokens.weight".into(),
        vec![spec.vocab_size, d],
    )];
    for (i, b) in spec.layers.iter().enumerate() {
        out.extend(block_weights(i, b, d));
    }
    norm(&mut out, "model.norm", &spec.head_norm, d);
    if !spec.tie_word_embeddings {
        out.push(WeightDecl::new("lm_head.weight".into(), vec![spec.vocab_size, d]));
    }
    out
}

/// Total number of parameters (elements of every checkpoint tensor).
pub fn parameter_count(spec: &ModelSpec) -> usize {
    weights(spec).iter().fold(0usize, |a, w| a.saturating_add(w.numel()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{parse_str, Format};

    fn spec(src: &str) -> ModelSpec {
        parse_str(src, "t.yaml", Format::Yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn one(mixer: &str) -> Vec<(String, Vec<usize>)> {
        let s = spec(&format!(
            "hidden_size: 64\ndecoder: {{num_blocks: 1, block: {{mixer: {mixer}, mlp: {{intermediate_size: 32}}}}}}\n"
        ));
        mixer_weights("m", &s.layers[0].mixer, 64)
            .into_iter()
            .map(|w| (w.key, w.shape))
            .collect()
    }

    fn kv(list: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        list.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect()
    }

    const ROPE: &str = "rotary: {type: mistral_1d, theta: 10000}";

    #[test]
    fn attention_shapes() {
        let w = one(&format!("{{heads: 4, head_groups: 2, head_size: 16, {ROPE}}}"));
        assert_eq!(
            w,
            kv(&[
                ("m.q_proj.weight", &[64, 64]),
                ("m.k_proj.weight", &[32, 64]),
                ("m.v_proj.weight", &[32, 64]),
                ("m.o_proj.weight", &[64, 64]),
            ])
        );
        let w = one(&format!(
            "{{heads: 2, head_groups: 1, head_size: 8, {ROPE}, query_layer: {{bias: {{enabled: true}}}}, value_layer: {{bias: {{enabled: true}}}}}}"
        ));
        assert_eq!(
            w,
            kv(&[
                ("m.q_proj.weight", &[16, 64]),
                ("m.q_proj.bias", &[16]),
                ("m.k_proj.weight", &[8, 64]),
                ("m.v_proj.weight", &[8, 64]),
                ("m.v_proj.bias", &[8]),
                ("m.o_proj.weight", &[64, 16]),
            ])
        );
    }

    #[test]
    fn mamba_shapes() {
        let w = one("{type: mamba, state_size: 16, d_inner: 128, d_xb: 32, d_conv: 4, dt_rank: 4, conv_bias: true, dt_proj_bias: true}");
        assert_eq!(
            w,
            kv(&[
                ("m.in_proj.weight", &[2 * 128 + 2 * 32, 64]),
                ("m.dt_in_proj.weight", &[4, 64]),
                ("m.dt_proj.weight", &[128, 4]),
                ("m.dt_proj.bias", &[128]),
                ("m.conv1d.weight", &[128, 1, 4]),
                ("m.conv1d.bias", &[128]),
                ("m.A_log", &[128, 16]),
                ("m.D", &[128]),
                ("m.out_proj.weight", &[64, 128]),
            ])
        );
        // Conv over d_xb when x is repeated after it; linear biases when asked.
        let w = one("{type: mamba, state_size: 16, d_inner: 128, d_xb: 32, d_conv: 2, dt_rank: 4, repeat_kv_before_conv: false, conv_bias: false, dt_proj_bias: false, add_linear_biases: true}");
        assert_eq!(
            w,
            kv(&[
                ("m.in_proj.weight", &[320, 64]),
                ("m.in_proj.bias", &[320]),
                ("m.dt_in_proj.weight", &[4, 64]),
                ("m.dt_in_proj.bias", &[4]),
                ("m.dt_proj.weight", &[128, 4]),
                ("m.conv1d.weight", &[32, 1, 2]),
                ("m.A_log", &[128, 16]),
                ("m.D", &[128]),
                ("m.out_proj.weight", &[64, 128]),
                ("m.out_proj.bias", &[64]),
            ])
        );
    }

    #[test]
    fn gdn_shapes() {
        let w = one("{type: gdn, value_heads: 4, key_heads: 2, key_head_dim: 16, value_head_dim: 8, convolution_layer: {kernel_size: 4}}");
        assert_eq!(
            w,
            kv(&[
                ("m.in_proj_qkvz.weight", &[2 * 32 + 2 * 32, 64]),
                ("m.in_proj_ba.weight", &[8, 64]),
                ("m.convolution.weight", &[2 * 32 + 32, 1, 4]),
                ("m.dt_bias", &[4]),
                ("m.A_log", &[4]),
                ("m.norm.weight", &[8]),
                ("m.out_proj.weight", &[64, 32]),
            ])
        );
    }

    #[test]
    fn kda_shapes() {
        let w = one("{type: kda, heads: 4, head_dim: 16, convolution_layer: {kernel_size: 3}}");
        assert_eq!(w.len(), 15);
        assert_eq!(
            w,
            kv(&[
                ("m.q_proj.weight", &[64, 64]),
                ("m.k_proj.weight", &[64, 64]),
                ("m.v_proj.weight", &[64, 64]),
                ("m.q_conv.weight", &[64, 1, 3]),
                ("m.k_conv.weight", &[64, 1, 3]),
                ("m.v_conv.weight", &[64, 1, 3]),
                ("m.f_a_proj.weight", &[16, 64]),
                ("m.f_b_proj.weight", &[64, 16]),
                ("m.g_a_proj.weight", &[16, 64]),
                ("m.g_b_proj.weight", &[64, 16]),
                ("m.beta_proj.weight", &[4, 64]),
                ("m.A_log", &[4]),
                ("m.dt_bias", &[64]),
                ("m.norm.weight", &[16]),
                ("m.o_proj.weight", &[64, 64]),
            ])
        );
    }

    #[test]
    fn stochastic_lists_every_sub_mixer_under_its_name() {
        let w = one(&format!(
            "{{type: stochastic, main_mixer_name: b, mixers: {{a: {{type: kda, heads: 2, head_dim: 8}}, b: {{heads: 2, head_size: 8, {ROPE}}}}}}}"
        ));
        let keys: Vec<&str> = w.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 15 + 4);
        assert!(keys[..15].iter().all(|k| k.starts_with("m.mixers.a.")), "{keys:?}");
        assert_eq!(
            &keys[15..],
            [
                "m.mixers.b.q_proj.weight",
                "m.mixers.b.k_proj.weight",
                "m.mixers.b.v_proj.weight",
                "m.mixers.b.o_proj.weight"
            ]
        );
    }

    #[test]
    fn model_order_and_count() {
        let s = spec(&format!(
            "hidden_size: 64\nvocab_size: 128\ndecoder: {{num_blocks: 2, block: {{mixer: {{heads: 4, head_groups: 2, head_size: 16, {ROPE}}}, mlp: {{intermediate_size: 128, gated: true}}}}}}\n"
        ));
        let w = weights(&s);
        let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
        let mut want = vec!["model.embed_tokens.weight".to_string()];
        for i in 0..2 {
            for k in [
                "input_layernorm.weight",
                "mixer.q_proj.weight",
                "mixer.k_proj.weight",
                "mixer.v_proj.weight",
                "mixer.o_proj.weight",
                "post_attention_layernorm.weight",
                "mlp.gate_proj.weight",
                "mlp.up_proj.weight",
                "mlp.down_proj.weight",
            ] {
                want.push(format!("model.decoder.blocks.{i}.{k}"));
            }
        }
        want.push("model.norm.weight".into());
        want.push("lm_head.weight".into());
        assert_eq!(keys, want);
        // By hand: embed + lm_head 2·128·64; per layer norms 2·64, attention 64·64·2 + 32·64·2,
        // MLP 3·128·64; final norm 64.
        let per_layer = 2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64;
        assert_eq!(parameter_count(&s), 2 * 128 * 64 + 2 * per_layer + 64);

        let mut tied = s.clone();
        tied.tie_word_embeddings = true;
        assert!(weights(&tied).iter().all(|w| w.key != "lm_head.weight"));
        assert_eq!(parameter_count(&tied), parameter_count(&s) - 128 * 64);
    }

    #[test]
    fn layer_norms_and_plain_mlp_biases() {
        let s = spec(&format!(
            "hidden_size: 8\nvocab_size: 4\nhead: {{normalization: {{type: layer_norm}}}}\ndecoder: {{num_blocks: 1, block: {{mixer: {{heads: 1, head_size: 8, {ROPE}}}, mlp: {{intermediate_size: 16, add_linear_biases: true}}, normalization: {{type: layer_norm}}}}}}\n"
        ));
        let w: Vec<(String, Vec<usize>)> = weights(&s).into_iter().map(|w| (w.key, w.shape)).collect();
        let has = |k: &str, shape: &[usize]| w.iter().any(|(key, s)| key == k && s == shape);
        assert!(has("model.decoder.blocks.0.input_layernorm.bias", &[8]));
        assert!(has("model.decoder.blocks.0.post_attention_layernorm.bias", &[8]));
        assert!(has("model.norm.bias", &[8]));
        assert!(has("model.decoder.blocks.0.mlp.up_proj.bias", &[16]));
        assert!(has("model.decoder.blocks.0.mlp.down_proj.bias", &[8]));
        assert!(!w.iter().any(|(k, _)| k.contains("gate_proj")));
    }
}
