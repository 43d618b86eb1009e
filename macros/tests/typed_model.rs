//! The code `model!` and `converter!` generate, used as an application would: layouts equal to
//! the spec's checkpoint layout, save/load round trips, load errors naming the key, validation
//! of edited models, and typed converters (KIL, DIL, MIL, random init) giving the same tensors
//! as `modelc convert`.

use std::path::Path;

use modelc::reference::WeightStore;
use modelc::spec::layout;
use modelc::surgery::{convert_checkpoint, ConvertOptions, SurgeryFile};
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::typed::{TensorDecl, TypedError, TypedModel};
use modelc_runtime::weights::{write_safetensors, Checkpoint};

modelc_macros::model! {
    /// One layer of each mixer kind.
    pub mod hybrid { spec: "../specs/tiny-hybrid.yaml" }
}

modelc_macros::model! {
    pub mod supernet { spec: "../specs/tiny-supernet.yaml", dtype: f32 }
}

modelc_macros::model! {
    pub mod attention { spec: "../specs/tiny-attention.yaml" }
}

modelc_macros::model! {
    pub mod kil { spec: "../specs/tiny-attention.yaml", surgeries: ["../specs/surgery/hybrid_kil.yaml"] }
}

modelc_macros::model! {
    pub mod dil { spec: "../specs/tiny-attention.yaml", surgeries: ["../specs/surgery/hybrid_dil.yaml"] }
}

modelc_macros::model! {
    pub mod mil { spec: "../specs/tiny-attention.yaml", surgeries: ["../specs/surgery/hybrid_mil.yaml"] }
}

modelc_macros::model! {
    /// Every layer's mixer replaced by a randomly initialised KDA, then the depth cut to one.
    pub mod random_kda {
        spec: "../specs/tiny-attention.yaml",
        surgeries: [
            yaml("decoder: {block: {mixer: {type: kda, init: random, convolution_layer: {kernel_size: 4}}}}"),
            yaml("decoder: {num_blocks: 1}"),
        ],
        dtype: f32,
    }
}

modelc_macros::model! {
    pub mod inline {
        spec: yaml("
hidden_size: 32
vocab_size: 16
tie_word_embeddings: true
decoder:
  num_blocks: 2
  block:
    mixer: {type: gdn, value_heads: 2, key_heads: 2, key_head_dim: 8, value_head_dim: 8, convolution_layer: {kernel_size: 4}}
    mlp: {intermediate_size: 48, gated: false, add_linear_biases: true}
    normalization: {type: layer_norm}
"),
    }
}

modelc_macros::converter! {
    pub fn to_kil(attention::Model) -> kil::Model {
        source: "../specs/tiny-attention.yaml",
        surgeries: ["../specs/surgery/hybrid_kil.yaml"],
    }
}

modelc_macros::converter! {
    pub fn to_dil(attention::Model) -> dil::Model {
        source: "../specs/tiny-attention.yaml",
        surgeries: ["../specs/surgery/hybrid_dil.yaml"],
    }
}

modelc_macros::converter! {
    pub fn to_mil(attention::Model) -> mil::Model {
        source: "../specs/tiny-attention.yaml",
        surgeries: ["../specs/surgery/hybrid_mil.yaml"],
    }
}

modelc_macros::converter! {
    pub fn to_random_kda(attention::Model) -> random_kda::Model {
        source: "../specs/tiny-attention.yaml",
        surgeries: [
            yaml("decoder: {block: {mixer: {type: kda, init: random, convolution_layer: {kernel_size: 4}}}}"),
            yaml("decoder: {num_blocks: 1}"),
        ],
    }
}

fn spec_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs").join(name)
}

/// Plausible random weights (the reference interpreter's), in each declaration's dtype.
fn random<M: TypedModel>(seed: u64) -> M {
    let decls = M::layout();
    let pairs: Vec<(String, Vec<usize>)> = decls.iter().map(|d| (d.key.clone(), d.shape.clone())).collect();
    let store = WeightStore::random(&pairs, seed);
    M::from_fn(|d: &TensorDecl| {
        let a = store.get(&d.key).expect("declared");
        HostTensor::from_f64(a.shape.clone(), &a.data)
            .expect("tensor")
            .cast(d.dtype)
    })
    .expect("random model")
}

fn keys_and_shapes(decls: &[TensorDecl]) -> Vec<(String, Vec<usize>)> {
    decls.iter().map(|d| (d.key.clone(), d.shape.clone())).collect()
}

#[test]
fn layouts_are_the_specs_checkpoint_layouts() {
    for (decls, spec, dtype) in [
        (hybrid::Model::layout(), "tiny-hybrid.yaml", DType::BF16),
        (supernet::Model::layout(), "tiny-supernet.yaml", DType::F32),
        (attention::Model::layout(), "tiny-attention.yaml", DType::BF16),
    ] {
        let s = modelc::spec::load(&spec_path(spec)).expect("spec");
        let want: Vec<(String, Vec<usize>)> = layout::weights(&s).into_iter().map(|w| (w.key, w.shape)).collect();
        assert_eq!(keys_and_shapes(&decls), want, "{spec}");
        assert!(decls.iter().all(|d| d.dtype == dtype), "{spec}");
    }
    // The macro's view of a model after surgery is the planner's.
    let plan = SurgeryFile::load(&spec_path("surgery/hybrid_kil.yaml")).expect("surgery");
    let source = modelc::spec::load(&spec_path("tiny-attention.yaml")).expect("spec");
    let conv = modelc::surgery::plan_config(
        &modelc::spec::to_config_json(&source),
        None,
        None,
        &[(plan.name.clone(), plan.value.clone())],
    )
    .expect("plans");
    let want: Vec<(String, Vec<usize>)> = layout::weights(&conv.spec)
        .into_iter()
        .map(|w| (w.key, w.shape))
        .collect();
    assert_eq!(keys_and_shapes(&kil::Model::layout()), want);
    assert_eq!(
        kil::CONFIG_JSON,
        serde_json_pretty(&modelc::spec::to_config_json(&conv.spec))
    );

    let inline = inline::Model::layout();
    assert!(inline
        .iter()
        .any(|d| d.key == "model.decoder.blocks.1.mlp.up_proj.bias"));
    assert!(inline.iter().all(|d| d.key != "lm_head.weight"), "tied embeddings");
}

fn serde_json_pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("json")
}

#[test]
fn layers_are_an_enum_over_the_mixer_kinds_present() {
    let m: hybrid::Model = random(1);
    let kinds: Vec<&str> = m.layers.iter().map(|l| l.kind().mixer()).collect();
    assert_eq!(kinds, ["attention", "sliding_window", "gdn", "kda", "mamba"]);
    let hybrid::Layer::Kda(kda) = &m.layers[3] else {
        panic!("layer 3 is {:?}", m.layers[3].kind())
    };
    assert_eq!(kda.mixer.q_conv_weight.shape, [64, 1, 4]);
    assert_eq!(kda.mixer.a_log.shape, [4]);
    // Attention and sliding-window layers share the `Attention` struct.
    let (hybrid::Layer::Attention(a), hybrid::Layer::SlidingWindow(s)) = (&m.layers[0], &m.layers[1]) else {
        panic!("layers 0 and 1")
    };
    let _same_type: [&hybrid::Attention; 2] = [&a.mixer, &s.mixer];

    // A stochastic layer holds every sub-mixer, each under `mixers.<name>`.
    let s: supernet::Model = random(2);
    // Every layer is stochastic: the enum has one variant.
    let supernet::Layer::Stochastic(b) = &s.layers[1];
    assert_eq!(supernet::Stochastic::MAIN_MIXER, "attention");
    assert_eq!(b.mixer.attention.q_proj_weight.dtype, DType::F32);
    assert_eq!(b.mixer.mamba.conv1d_weight.shape.len(), 3);
    let keys: Vec<String> = s.tensors().into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"model.decoder.blocks.1.mixer.mixers.kda.beta_proj.weight".to_string()));
}

#[test]
fn save_then_load_round_trips_every_tensor() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m: hybrid::Model = random(3);
    let dir = m.save(&tmp.path().join("ckpt")).expect("saves");
    let back = hybrid::Model::load(&dir).expect("loads");
    assert_eq!(back, m);
    let keys: Vec<String> = back.tensors().into_iter().map(|(k, _)| k).collect();
    let layout: Vec<String> = hybrid::Model::layout().into_iter().map(|d| d.key).collect();
    assert_eq!(keys, layout, "iteration follows the checkpoint order");
    // The saved config is the spec's, and the saved checkpoint runs on the untyped path too.
    let ckpt = Checkpoint::open(&dir).expect("opens");
    let spec = modelc::spec::load(&dir).expect("config.json parses");
    assert_eq!(spec, modelc::typed::spec::<hybrid::Model>().expect("embedded spec"));
    assert_eq!(ckpt.len(), layout.len());
    // Saving over an existing directory is refused.
    let err = m.save(&dir).expect_err("exists");
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// Writes `tensors` as a checkpoint with the attention model's config.
fn write_checkpoint(dir: &Path, tensors: Vec<(String, HostTensor)>) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("config.json"), attention::CONFIG_JSON).expect("config");
    write_safetensors(&dir.join("model.safetensors"), &tensors).expect("writes");
}

#[test]
fn loading_names_the_missing_or_mis_shaped_tensor() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m: attention::Model = random(4);
    let owned = || -> Vec<(String, HostTensor)> { m.tensors().into_iter().map(|(k, t)| (k, t.clone())).collect() };

    let missing = "model.decoder.blocks.1.mixer.k_proj.weight";
    let dir = tmp.path().join("missing");
    write_checkpoint(&dir, owned().into_iter().filter(|(k, _)| k != missing).collect());
    let err = attention::Model::load(&dir).expect_err("missing tensor").to_string();
    assert!(
        err.contains(&format!("missing     `{missing}` (expected shape [32, 64])")),
        "{err}"
    );

    let bad = "model.decoder.blocks.0.mlp.up_proj.weight";
    let dir = tmp.path().join("shape");
    let mut tensors = owned();
    for (k, t) in &mut tensors {
        if k == bad {
            *t = HostTensor::zeros(DType::BF16, vec![64, 128]).expect("zeros");
        }
    }
    write_checkpoint(&dir, tensors);
    let err = attention::Model::load(&dir).expect_err("mis-shaped").to_string();
    assert!(
        err.contains(&format!("wrong shape `{bad}`: expected [128, 64], found [64, 128]")),
        "{err}"
    );

    let dir = tmp.path().join("dtype");
    let mut tensors = owned();
    tensors[0].1 = tensors[0].1.cast(DType::F32);
    write_checkpoint(&dir, tensors);
    let err = attention::Model::load(&dir).expect_err("wrong dtype").to_string();
    assert!(
        err.contains("wrong dtype `model.embed_tokens.weight`: expected bf16, found f32"),
        "{err}"
    );

    // The same checks apply to tensors handed over in memory.
    let err = attention::Model::from_tensors(owned().into_iter().filter(|(k, _)| k != missing))
        .expect_err("missing")
        .to_string();
    assert!(err.contains(missing), "{err}");
}

#[test]
fn validate_catches_edits_that_break_the_layout() {
    let mut m: hybrid::Model = random(5);
    m.validate().expect("valid as built");
    let hybrid::Layer::Mamba(b) = &mut m.layers[4] else {
        panic!("layer 4")
    };
    b.mixer.d = HostTensor::zeros(DType::BF16, vec![3]).expect("zeros");
    let err = m.validate().expect_err("bad shape").to_string();
    assert!(
        err.contains("wrong shape `model.decoder.blocks.4.mixer.D`: expected [128], found [3]"),
        "{err}"
    );

    let mut m: hybrid::Model = random(5);
    m.layers.swap(0, 3);
    let err = m.validate().expect_err("layer kinds").to_string();
    assert!(
        err.contains("layer 0 is a Kda layer, but the spec declares Attention"),
        "{err}"
    );
    m.layers.truncate(2);
    let err = m.validate().expect_err("layer count").to_string();
    assert!(err.contains("2 layers, but the spec declares 5"), "{err}");

    let err =
        hybrid::Model::from_fn(|d| HostTensor::zeros(DType::F32, d.shape.clone()).expect("zeros")).expect_err("dtype");
    assert!(
        matches!(&err, TypedError::Mismatch { key, found_dtype: DType::F32, .. } if key == "model.embed_tokens.weight"),
        "{err}"
    );
}

/// The typed converter's output equals `modelc convert`'s on the same checkpoint and seed, tensor
/// for tensor, bit for bit.
fn same_as_modelc_convert<T: TypedModel>(typed: &T, source_dir: &Path, surgeries: &[(String, serde_json::Value)]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let opts = ConvertOptions {
        seed: 7,
        dtype: Some(T::DTYPE),
        ..ConvertOptions::default()
    };
    convert_checkpoint(source_dir, &out, surgeries, &opts, &mut |_| {}).expect("modelc convert");
    let untyped = T::load(&out).expect("the converted checkpoint loads as the target type");
    let a = typed.tensors();
    let b = untyped.tensors();
    assert_eq!(a.len(), b.len());
    for ((ka, ta), (kb, tb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(ta == tb, "{}: `{ka}` differs from modelc convert's", T::NAME);
    }
}

fn surgery(name: &str) -> Vec<(String, serde_json::Value)> {
    let f = SurgeryFile::load(&spec_path(&format!("surgery/{name}"))).expect("surgery");
    vec![(f.name, f.value)]
}

#[test]
fn typed_converters_equal_modelc_convert() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source: attention::Model = random(6);
    let dir = source.save(&tmp.path().join("source")).expect("saves");

    let k = to_kil(&source, 7).expect("KIL");
    same_as_modelc_convert(&k, &dir, &surgery("hybrid_kil.yaml"));
    // KIL keeps q and o, passes the attention sub-mixer through.
    let (attention::Layer::Attention(src), kil::Layer::Stochastic(dst)) = (&source.layers[1], &k.layers[1]) else {
        panic!("layer kinds")
    };
    assert_eq!(dst.mixer.kda.q_proj_weight, src.mixer.q_proj_weight);
    assert_eq!(dst.mixer.kda.o_proj_weight, src.mixer.o_proj_weight);
    assert_eq!(dst.mixer.attention.k_proj_weight, src.mixer.k_proj_weight);
    assert_eq!(dst.mixer.attention.v_proj_weight, src.mixer.v_proj_weight);

    same_as_modelc_convert(&to_dil(&source, 7).expect("DIL"), &dir, &surgery("hybrid_dil.yaml"));
    same_as_modelc_convert(&to_mil(&source, 7).expect("MIL"), &dir, &surgery("hybrid_mil.yaml"));

    let random_surgeries: Vec<(String, serde_json::Value)> = [
        "decoder: {block: {mixer: {type: kda, init: random, convolution_layer: {kernel_size: 4}}}}",
        "decoder: {num_blocks: 1}",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| {
        let f = SurgeryFile::parse(text, &format!("s{i}.yaml")).expect("parses");
        (f.name, f.value)
    })
    .collect();
    let r = to_random_kda(&source, 7).expect("random");
    same_as_modelc_convert(&r, &dir, &random_surgeries);
    // The seed drives the random tensors, and only those.
    let r2 = to_random_kda(&source, 8).expect("random");
    let (random_kda::Layer::Kda(a), random_kda::Layer::Kda(b)) = (&r.layers[0], &r2.layers[0]);
    assert_ne!(a.mixer.f_a_proj_weight, b.mixer.f_a_proj_weight);
    assert_eq!(a.mlp, b.mlp);
}
