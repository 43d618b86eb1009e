//! Converters' exact values (reference §4.5, §4.7) on hand-made weights whose rows are
//! constant per head, so the head tiling is visible; geometry, bias and missing-converter
//! errors.

mod surgery_util;

use std::collections::HashMap;

use modelc::surgery::init::SLOW_DECAY;
use modelc::surgery::SurgeryError;
use modelc_runtime::tensor::HostTensor;
use serde_json::Value;
use surgery_util::*;

const P: &str = "model.decoder.blocks.0.mixer";

fn run(config: &Value, surgery: &[&str]) -> HashMap<String, HostTensor> {
    let tensors = head_constant_tensors(config);
    match convert_in_memory(config, &tensors, &surgeries(surgery), 5) {
        Ok((_, out)) => out,
        Err(e) => panic!("{e}"),
    }
}

fn source(config: &Value) -> HashMap<String, HostTensor> {
    head_constant_tensors(config).into_iter().collect()
}

fn get<'a>(m: &'a HashMap<String, HostTensor>, k: &str) -> &'a HostTensor {
    m.get(k)
        .unwrap_or_else(|| panic!("no tensor {k}; have {:?}", m.keys().collect::<Vec<_>>()))
}

/// Conv weights `[C, 1, K]`: zeros with the last tap 0.5.
fn assert_half_identity_conv(t: &HostTensor, channels: usize, k: usize) {
    assert_eq!(t.shape, vec![channels, 1, k]);
    for c in t.to_f32_vec().chunks(k) {
        let mut want = vec![0.0; k];
        want[k - 1] = 0.5;
        assert_eq!(c, want.as_slice());
    }
}

#[test]
fn kil_tiles_heads_by_modulo() {
    let cfg = apriel_config(2);
    let out = run(
        &cfg,
        &["decoder: {block: {mixer: {type: kda, convolution_layer: {kernel_size: 4}}}}"],
    );
    let src = source(&cfg);
    // GQA 4/2: P = 4·16 = Hq·Ds, so q is the source q; k and v heads are 0,1,0,1.
    assert_eq!(
        get(&out, &format!("{P}.q_proj.weight")),
        get(&src, &format!("{P}.q_proj.weight"))
    );
    assert_eq!(
        row_values(get(&out, &format!("{P}.k_proj.weight"))),
        runs(&[(20., 16), (21., 16), (20., 16), (21., 16)])
    );
    assert_eq!(
        row_values(get(&out, &format!("{P}.v_proj.weight"))),
        runs(&[(30., 16), (31., 16), (30., 16), (31., 16)])
    );
    assert_eq!(
        get(&out, &format!("{P}.o_proj.weight")),
        get(&src, &format!("{P}.o_proj.weight"))
    );
    for c in ["q_conv", "k_conv", "v_conv"] {
        assert_half_identity_conv(get(&out, &format!("{P}.{c}.weight")), 64, 4);
    }
    assert!(get(&out, &format!("{P}.A_log"))
        .to_f32_vec()
        .iter()
        .all(|&v| v == SLOW_DECAY as f32));
    assert!(get(&out, &format!("{P}.dt_bias"))
        .to_f32_vec()
        .iter()
        .all(|&v| v == 0.0));
    assert!(get(&out, &format!("{P}.norm.weight"))
        .to_f32_vec()
        .iter()
        .all(|&v| v == 1.0));
    let shapes: Vec<(&str, Vec<usize>)> = [
        ("f_a_proj", vec![16, 64]),
        ("f_b_proj", vec![64, 16]),
        ("g_a_proj", vec![16, 64]),
        ("g_b_proj", vec![64, 16]),
        ("beta_proj", vec![4, 64]),
    ]
    .into_iter()
    .collect();
    for (name, shape) in shapes {
        let t = get(&out, &format!("{P}.{name}.weight"));
        assert_eq!(t.shape, shape);
        let bound = 1.0 / (shape[1] as f32).sqrt();
        assert!(t.to_f32_vec().iter().all(|v| v.abs() <= bound) && t.to_f32_vec().iter().any(|&v| v != 0.0));
    }
    assert_eq!(out.keys().filter(|k| k.starts_with(&format!("{P}."))).count(), 15);
}

#[test]
fn kil_tiles_queries_when_the_width_changes() {
    // 2 KDA heads of 16 from 4 heads: P = 32 ≠ 64, but o_proj must stay [64, 64] — refused.
    let cfg = apriel_config(1);
    let tensors = head_constant_tensors(&cfg);
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {type: kda, heads: 2}}}"]),
        0,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("layer 0") && msg.contains("o_proj") && msg.contains("2·16"),
        "{msg}"
    );
    // 8 heads of 8: q tiles heads 0..3 twice, 8 rows each.
    let out = run(&cfg, &["decoder: {block: {mixer: {type: kda, heads: 8, head_dim: 8}}}"]);
    let q = row_values(get(&out, &format!("{P}.q_proj.weight")));
    assert_eq!(
        q,
        get(&source(&cfg), &format!("{P}.q_proj.weight"))
            .to_f32_vec()
            .chunks(64)
            .map(|r| r[0])
            .collect::<Vec<_>>(),
        "Hq·Ds = P: q passes through"
    );
    let k = row_values(get(&out, &format!("{P}.k_proj.weight")));
    assert_eq!(
        k,
        runs(&[
            (20., 8),
            (21., 8),
            (20., 8),
            (21., 8),
            (20., 8),
            (21., 8),
            (20., 8),
            (21., 8)
        ])
    );
}

#[test]
fn dil_builds_qkvz_with_zero_z_and_zero_beta_logits() {
    let cfg = apriel_config(1);
    let out = run(
        &cfg,
        &["decoder: {block: {mixer: {type: gdn, convolution_layer: {kernel_size: 4}}}}"],
    );
    // Hk = 2, Hv = 4, Dk = Dv = 16: [Q0 Q1 | K0 K1 | V0 V1 V0 V1 | Z (64 rows of 0)].
    let qkvz = get(&out, &format!("{P}.in_proj_qkvz.weight"));
    assert_eq!(qkvz.shape, vec![2 * 2 * 16 + 2 * 4 * 16, 64]);
    assert_eq!(
        row_values(qkvz),
        runs(&[
            (10., 16),
            (11., 16),
            (20., 16),
            (21., 16),
            (30., 16),
            (31., 16),
            (30., 16),
            (31., 16),
            (0., 64)
        ])
    );
    let ba = get(&out, &format!("{P}.in_proj_ba.weight"));
    assert_eq!(ba.shape, vec![8, 64]);
    assert!(
        ba.to_f32_vec().iter().all(|&v| v == 0.0),
        "beta logits (and a) must be zero"
    );
    assert_half_identity_conv(get(&out, &format!("{P}.convolution.weight")), 2 * 2 * 16 + 4 * 16, 4);
    let a = get(&out, &format!("{P}.A_log")).to_f32_vec();
    assert_eq!(a, vec![(0.1f64.ln()) as f32; 4]);
    assert_eq!(get(&out, &format!("{P}.dt_bias")).to_f32_vec(), vec![0.0; 4]);
    assert_eq!(get(&out, &format!("{P}.norm.weight")).to_f32_vec(), vec![1.0; 16]);
    assert_eq!(
        get(&out, &format!("{P}.out_proj.weight")),
        get(&source(&cfg), &format!("{P}.o_proj.weight"))
    );
}

#[test]
fn mil_slices_v_k_q_into_in_proj() {
    let cfg = apriel_config(1);
    let out = run(&cfg, &["decoder: {block: {mixer: {type: mamba, d_inner: 64, d_xb: 16, dt_rank: 4, d_state: 8, d_conv: 3, conv_bias: true, dt_proj_bias: true}}}"]);
    let inp = get(&out, &format!("{P}.in_proj.weight"));
    assert_eq!(inp.shape, vec![2 * 64 + 2 * 16, 64]);
    let v = inp.to_f32_vec();
    let rows: Vec<&[f32]> = v.chunks(64).collect();
    // z: kaiming, U(-1/8, 1/8); then x = V[0:16], B = K[0:16], C = Q[0:64].
    assert!(rows[..64].iter().flat_map(|r| r.iter()).all(|x| x.abs() <= 0.125));
    assert!(rows[..64].iter().any(|r| r[0] != r[1]));
    let tail: Vec<f32> = rows[64..].iter().map(|r| r[0]).collect();
    assert_eq!(
        tail,
        runs(&[(30., 16), (20., 16), (10., 16), (11., 16), (12., 16), (13., 16)])
    );
    assert_eq!(
        get(&out, &format!("{P}.out_proj.weight")),
        get(&source(&cfg), &format!("{P}.o_proj.weight"))
    );
    let a_log = get(&out, &format!("{P}.A_log"));
    assert_eq!(a_log.shape, vec![64, 8]);
    for row in a_log.to_f32_vec().chunks(8) {
        let want: Vec<f32> = (1..=8).map(|n| (n as f64).ln() as f32).collect();
        assert_eq!(row, want.as_slice());
    }
    assert_eq!(get(&out, &format!("{P}.D")).to_f32_vec(), vec![1.0; 64]);
    assert_eq!(get(&out, &format!("{P}.conv1d.bias")).to_f32_vec(), vec![0.0; 64]);
    assert_eq!(get(&out, &format!("{P}.conv1d.weight")).shape, vec![64, 1, 3]);
    // dt bias: softplus(b) ∈ [dt_min, dt_max] (f32 rounding: 1e-6 relative slack).
    for b in get(&out, &format!("{P}.dt_proj.bias")).to_f32_vec() {
        let dt = (b as f64).exp().ln_1p();
        assert!((0.001 * 0.999_999..=0.1 * 1.000_001).contains(&dt), "{dt}");
    }
}

#[test]
fn mil_geometry_is_checked() {
    let cfg = apriel_config(1);
    let tensors = head_constant_tensors(&cfg);
    // Default d_inner = 2·hidden = 128 ≠ heads·head_size = 64.
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {type: mamba, conv_bias: true, dt_proj_bias: true}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("d_inner (128)"), "{err}");
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&[
            "decoder: {block: {mixer: {type: mamba, d_inner: 64, d_xb: 64, conv_bias: true, dt_proj_bias: true}}}",
        ]),
        0,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("d_xb (64)") && err.to_string().contains("2·16"),
        "{err}"
    );
}

#[test]
fn sliding_window_and_same_kind_transfers_are_bitwise_passthrough() {
    let cfg = apriel_config(2);
    let src = source(&cfg);
    let out = run(&cfg, &["decoder: {block: {mixer: {window_size: 8}}}"]);
    assert_eq!(out, src);
    // A model with every mixer kind: an identity surgery copies every tensor.
    let all = modelc::surgery::apply_surgeries(
        &apriel_config(16),
        &[yaml(include_str!("../../specs/surgery/comprehensive.yaml"))],
    )
    .unwrap();
    let tensors: Vec<(String, HostTensor)> = head_constant_tensors(&all);
    let (conv, out) = convert_in_memory(&all, &tensors, &surgeries(&["decoder: {num_blocks: 16}"]), 1).unwrap();
    assert_eq!(conv.spec.layers.len(), 16);
    let kinds: std::collections::BTreeSet<&str> = conv.spec.layers.iter().map(|l| l.mixer.kind().name()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["attention", "gdn", "kda", "mamba", "sliding_window", "stochastic"]
    );
    let src: HashMap<String, HostTensor> = tensors.into_iter().collect();
    assert_eq!(out, src);
}

#[test]
fn random_init_for_every_mixer_and_for_mlp_and_norms() {
    let cfg = apriel_config(1);
    let out = run(&cfg, &["decoder: {block: {mixer: {type: gdn, init: random, convolution_layer: {kernel_size: 2}}, mlp: {init: random}, normalization: {init: random}}}"]);
    let b = "model.decoder.blocks.0";
    assert!(get(&out, &format!("{P}.in_proj_ba.weight"))
        .to_f32_vec()
        .iter()
        .all(|&v| v == 0.0));
    assert_half_identity_conv(get(&out, &format!("{P}.convolution.weight")), 128, 2);
    let qkvz = get(&out, &format!("{P}.in_proj_qkvz.weight")).to_f32_vec();
    assert!(qkvz.iter().all(|v| v.abs() <= 0.125) && qkvz.iter().any(|&v| v != 0.0));
    assert_eq!(
        get(&out, &format!("{b}.input_layernorm.weight")).to_f32_vec(),
        vec![1.0; 64]
    );
    let up = get(&out, &format!("{b}.mlp.up_proj.weight"));
    assert!(up.to_f32_vec().iter().all(|v| v.abs() <= 0.125));
    assert_ne!(up, get(&source(&cfg), &format!("{b}.mlp.up_proj.weight")));
    // Random attention and KDA and Mamba too: shapes follow the config, tensors differ by key.
    for s in [
        "decoder: {block: {mixer: {init: random, heads: 2, head_groups: 1, head_size: 8}}}",
        "decoder: {block: {mixer: {type: kda, init: random, heads: 2, head_dim: 8}}}",
        "decoder: {block: {mixer: {type: mamba, init: random, d_inner: 32, d_xb: 8, dt_rank: 2, d_state: 4, conv_bias: false, dt_proj_bias: true, add_linear_biases: true}}}",
    ] {
        let out = run(&cfg, &[s]);
        let mixer: Vec<&String> = out.keys().filter(|k| k.starts_with(P)).collect();
        assert!(!mixer.is_empty());
        if s.contains("mamba") {
            assert_eq!(get(&out, &format!("{P}.in_proj.bias")).to_f32_vec(), vec![0.0; 80]);
            assert!(!out.contains_key(&format!("{P}.conv1d.bias")));
        }
    }
}

#[test]
fn a_mixer_without_a_converter_is_a_clear_error() {
    let cfg = apriel_config(2);
    let tensors = head_constant_tensors(&cfg);
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {type: kda}}}", "decoder: {block: {mixer: {type: attention, heads: 4, head_size: 16, rotary: {type: mistral_1d, theta: 10000}}}}"]),
        0,
    )
    .unwrap_err();
    let SurgeryError::InSurgery { origin, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(origin, "surgery 2");
    assert!(
        matches!(
            **source,
            SurgeryError::NoConverter {
                layer: 0,
                from: modelc::spec::MixerKind::Kda,
                to: modelc::spec::MixerKind::Attention,
                ..
            }
        ),
        "{source:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("layer 0") && msg.contains("from kda to attention") && msg.contains("init: random"),
        "{msg}"
    );
    // With init: random it works.
    convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {type: kda}}}", "decoder: {block: {mixer: {type: attention, init: random, heads: 4, head_size: 16, rotary: {type: mistral_1d, theta: 10000}}}}"]),
        0,
    )
    .unwrap();
    // Inside a stochastic mixer the sub-mixer is named.
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {type: kda}}}", "decoder: {block: {mixer: {type: stochastic, main_mixer_name: g, mixers: {g: {type: gdn, convolution_layer: {kernel_size: 4}}}}}}"]),
        0,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("sub-mixer `g`") && err.to_string().contains("from kda to gdn"),
        "{err}"
    );
}

#[test]
fn bias_flags_must_agree_on_transfer() {
    let mut cfg = apriel_config(1);
    cfg["decoder"]["block"]["mixer"]["query_layer"] = serde_json::json!({"bias": {"enabled": true}});
    let out = run(&cfg, &["decoder: {block: {mixer: {window_size: 4}}}"]);
    assert_eq!(
        get(&out, &format!("{P}.q_proj.bias")),
        get(&source(&cfg), &format!("{P}.q_proj.bias"))
    );
    let tensors = head_constant_tensors(&cfg);
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {query_layer: {bias: {enabled: false}}}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("drop the source's `q_proj.bias`"), "{err}");
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {key_layer: {bias: {enabled: true}}}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`k_proj.bias`"), "{err}");
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mlp: {gated: false}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("gated MLP into a non-gated"), "{err}");
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {normalization: {type: layer_norm}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("rms_norm into a layer_norm"), "{err}");
    let err = convert_in_memory(
        &cfg,
        &tensors,
        &surgeries(&["decoder: {block: {mixer: {heads: 2, head_groups: 2}}}"]),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("geometry changed"), "{err}");
}

#[test]
fn depth_grows_by_cycling_and_shrinks_by_dropping() {
    let cfg = apriel_config(2);
    let src = source(&cfg);
    let out = run(&cfg, &["decoder: {num_blocks: 5}"]);
    for t in 0..5 {
        let s = t % 2;
        assert_eq!(
            get(&out, &format!("model.decoder.blocks.{t}.mlp.up_proj.weight")),
            get(&src, &format!("model.decoder.blocks.{s}.mlp.up_proj.weight"))
        );
    }
    let out = run(&cfg, &["decoder: {num_blocks: 1}"]);
    assert!(out.keys().all(|k| !k.contains("blocks.1.")));
}

#[test]
fn supernet_pruning_takes_weights_from_the_chosen_sub_mixers() {
    let cfg = apriel_config(4);
    let direct = run(
        &cfg,
        &["decoder: {block: {mixer: {type: gdn, convolution_layer: {kernel_size: 4}}}}"],
    );
    let pruned = run(
        &cfg,
        &[
            include_str!("../../specs/surgery/stochastic_supernet.yaml"),
            include_str!("../../specs/surgery/prune_supernet_step1.yaml"),
            include_str!("../../specs/surgery/prune_supernet_step2.yaml"),
        ],
    );
    // Layer 1 is the gdn block: its weights are DIL of layer 1's attention, as a direct DIL.
    for name in [
        "in_proj_qkvz.weight",
        "in_proj_ba.weight",
        "convolution.weight",
        "A_log",
        "out_proj.weight",
    ] {
        let k = format!("model.decoder.blocks.1.mixer.{name}");
        assert_eq!(get(&pruned, &k), get(&direct, &k), "{k}");
    }
    let src = source(&cfg);
    let q0 = "model.decoder.blocks.0.mixer.q_proj.weight";
    assert_eq!(get(&pruned, q0), get(&src, q0));
    let q3 = "model.decoder.blocks.3.mixer.q_proj.weight";
    assert_eq!(get(&pruned, q3), get(&src, q3));
    assert!(!pruned.keys().any(|k| k.contains(".mixers.")));
}
