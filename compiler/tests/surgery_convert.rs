//! `modelc convert` end to end on disk: sources (Llama, Mistral, Qwen2, Llava, sharded
//! Apriel2), sharded output, dtypes, and the reliability contract: clear errors and nothing
//! left behind (the output path never appears, no temp dirs remain, the source is unchanged).

mod surgery_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use modelc::surgery::convert::{convert_checkpoint, ConvertOptions};
use modelc::surgery::SurgeryError;
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::Checkpoint;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use surgery_util::*;

/// Every file under `dir`: relative path → SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    Sha256::digest(&bytes).to_vec(),
                );
            }
        }
    }
    out
}

fn convert(
    src: &Path,
    out: &Path,
    texts: &[&str],
    opts: &ConvertOptions,
) -> Result<modelc::surgery::convert::ConvertReport, SurgeryError> {
    convert_checkpoint(src, out, &surgeries(texts), opts, &mut |_| {})
}

/// Runs a conversion expected to fail; checks nothing appeared and the source is unchanged.
#[track_caller]
fn expect_failure(root: &Path, src: &Path, texts: &[&str], opts: &ConvertOptions) -> String {
    let before = snapshot(root);
    let out = root.join("out");
    let err = match convert(src, &out, texts, opts) {
        Ok(_) => panic!("conversion unexpectedly succeeded (surgeries {texts:?})"),
        Err(e) => e.to_string(),
    };
    assert!(!out.exists(), "output left behind after: {err}");
    assert_eq!(snapshot(root), before, "files changed after a failed conversion: {err}");
    err
}

fn read_all(dir: &Path) -> BTreeMap<String, HostTensor> {
    let ck = Checkpoint::open(dir).unwrap();
    ck.keys()
        .map(|k| (k.to_string(), ck.get(k).unwrap().to_host()))
        .collect()
}

#[test]
fn llama_to_apriel2_copies_every_tensor_and_the_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    let tensors = make_llama(&src, DType::F32);
    std::fs::write(src.join("tokenizer.json"), "{\"tok\": 1}").unwrap();
    std::fs::write(src.join("tokenizer_config.json"), "{}").unwrap();
    let before = snapshot(&src);
    let out = tmp.path().join("apriel");
    let report = convert(&src, &out, &[], &ConvertOptions::default()).unwrap();
    assert_eq!(snapshot(&src), before, "the source was modified");
    assert_eq!(report.dtype, DType::F32);
    assert_eq!(report.tensors, tensors.len());
    let got = read_all(&out);
    for (k, t) in &tensors {
        let key = if let Some(rest) = k.strip_prefix("model.layers.") {
            format!("model.decoder.blocks.{}", rest.replacen("self_attn.", "mixer.", 1))
        } else {
            k.clone()
        };
        assert_eq!(got.get(&key), Some(t), "{k} → {key}");
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let spec = modelc::spec::from_json_value(&config, "out").unwrap();
    assert_eq!(spec, modelc::spec::from_json_value(&apriel_config(4), "want").unwrap());
    assert_eq!(
        std::fs::read_to_string(out.join("tokenizer.json")).unwrap(),
        "{\"tok\": 1}"
    );
    assert!(out.join("tokenizer_config.json").is_file());
    assert!(out.join("model.safetensors").is_file());
    // No temp dirs next to the output.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn sharded_output_and_sharded_apriel2_input() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    make_llama(&src, DType::BF16);
    let out = tmp.path().join("sharded");
    let opts = ConvertOptions {
        max_shard_size: 100_000,
        ..Default::default()
    };
    let report = convert(
        &src,
        &out,
        &[include_str!("../../specs/surgery/hybrid_kil.yaml")],
        &opts,
    )
    .unwrap();
    let names: Vec<String> = report
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let shards: Vec<&String> = names.iter().filter(|n| n.ends_with(".safetensors")).collect();
    assert!(shards.len() > 2, "{names:?}");
    assert!(shards
        .iter()
        .all(|n| n.starts_with("model-") && n.contains(&format!("-of-{:05}", shards.len()))));
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.safetensors.index.json")).unwrap()).unwrap();
    let all = read_all(&out);
    assert_eq!(index["weight_map"].as_object().unwrap().len(), all.len());
    // What was streamed (in pieces, across shards) is what the plan evaluates to in memory.
    let ck = Checkpoint::open(&src).unwrap();
    let mem = modelc::surgery::executor::execute_in_memory(&report.conversion.plan, &ck, DType::BF16, 0).unwrap();
    assert_eq!(mem.len(), all.len());
    for (k, t) in &mem {
        assert_eq!(&all[k], t, "{k}");
    }
    let total: u64 = all.values().map(|t| t.data.len() as u64).sum();
    assert_eq!(index["metadata"]["total_size"], json!(total));
    // The sharded Apriel2 checkpoint is itself a source: an identity conversion copies it.
    let again = tmp.path().join("again");
    convert(&out, &again, &[], &ConvertOptions::default()).unwrap();
    assert_eq!(read_all(&again), all);
    assert!(again.join("model.safetensors").is_file());
}

#[test]
fn output_dtype_defaults_to_the_source_and_mixed_sources_need_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("mixed");
    let mut tensors = make_llama(&src, DType::F32);
    tensors[1].1 = tensors[1].1.cast(DType::BF16);
    write_checkpoint(&src, &llama_config(), &tensors);
    let err = expect_failure(tmp.path(), &src, &[], &ConvertOptions::default());
    assert!(
        err.contains("--dtype") && err.contains("bf16") && err.contains("f32"),
        "{err}"
    );
    let out = tmp.path().join("out");
    let opts = ConvertOptions {
        dtype: Some(DType::BF16),
        ..Default::default()
    };
    let report = convert(&src, &out, &[], &opts).unwrap();
    assert_eq!(report.dtype, DType::BF16);
    let got = read_all(&out);
    assert!(got.values().all(|t| t.dtype == DType::BF16));
    assert_eq!(got["model.embed_tokens.weight"], tensors[0].1.cast(DType::BF16));
}

fn qwen2_checkpoint(dir: &Path) -> Vec<(String, HostTensor)> {
    let mut cfg = llama_config();
    cfg["model_type"] = json!("qwen2");
    cfg["architectures"] = json!(["Qwen2ForCausalLM"]);
    cfg["sliding_window"] = json!(32);
    cfg["use_sliding_window"] = json!(false);
    let mut shapes = llama_tensor_shapes(4);
    for l in 0..4 {
        for (p, n) in [("q", 64), ("k", 32), ("v", 32)] {
            shapes.push((format!("model.layers.{l}.self_attn.{p}_proj.bias"), vec![n]));
        }
    }
    let tensors: Vec<(String, HostTensor)> = shapes
        .into_iter()
        .map(|(k, s)| {
            let t = noise_tensor(&k, &s, DType::F32);
            (k, t)
        })
        .collect();
    write_checkpoint(dir, &cfg, &tensors);
    tensors
}

#[test]
fn qwen2_biases_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("qwen");
    let tensors = qwen2_checkpoint(&src);
    let out = tmp.path().join("out");
    let report = convert(&src, &out, &[], &ConvertOptions::default()).unwrap();
    let a = &report.conversion.spec.layers[0].mixer;
    let modelc::spec::MixerSpec::Attention(att) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        (att.bias.q, att.bias.k, att.bias.v, att.bias.o),
        (true, true, true, false)
    );
    assert_eq!(
        att.window_size, None,
        "an unused sliding_window must not become a window"
    );
    let got = read_all(&out);
    let qb = tensors
        .iter()
        .find(|(k, _)| k == "model.layers.2.self_attn.q_proj.bias")
        .unwrap();
    assert_eq!(got["model.decoder.blocks.2.mixer.q_proj.bias"], qb.1);
    // A later supernet surgery keeps the biases on the attention sub-mixer.
    let out2 = tmp.path().join("supernet");
    convert(
        &src,
        &out2,
        &[include_str!("../../specs/surgery/stochastic_supernet.yaml")],
        &ConvertOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read_all(&out2)["model.decoder.blocks.2.mixer.mixers.sliding_window.q_proj.bias"],
        qb.1
    );
}

#[test]
fn apriel2_bias_flags_follow_the_checkpoint() {
    // A Fast-LLM export omits `add_linear_biases` when true; HF reads that as false.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("apriel");
    let config = apriel_config(2);
    let mut with_bias = config.clone();
    with_bias["decoder"]["block"]["mixer"]["add_linear_biases"] = json!(true);
    let tensors = head_constant_tensors(&with_bias);
    assert!(tensors.iter().any(|(k, _)| k.ends_with("o_proj.bias")));
    write_checkpoint(&src, &config, &tensors);
    let out = tmp.path().join("kil");
    let report = convert(
        &src,
        &out,
        &[include_str!("../../specs/surgery/hybrid_kil.yaml")],
        &ConvertOptions::default(),
    )
    .unwrap();
    assert_eq!(report.conversion.notes.len(), 4, "{:?}", report.conversion.notes);
    assert!(
        report.conversion.notes[0].contains("q_proj.bias")
            && report.conversion.notes[0].contains("following the checkpoint")
    );
    let got = read_all(&out);
    let want = &tensors
        .iter()
        .find(|(k, _)| k == "model.decoder.blocks.0.mixer.o_proj.bias")
        .unwrap()
        .1;
    assert_eq!(&got["model.decoder.blocks.0.mixer.o_proj.bias"], want);
    // Layers sharing one block must agree.
    let partial: Vec<_> = tensors
        .iter()
        .filter(|(k, _)| k != "model.decoder.blocks.1.mixer.k_proj.bias")
        .cloned()
        .collect();
    write_checkpoint(&src, &config, &partial);
    let err = expect_failure(tmp.path(), &src, &[], &ConvertOptions::default());
    assert!(err.contains("k_proj.bias") && err.contains("block `block`"), "{err}");
}

#[test]
fn mistral_window_and_llava_text_side() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("mistral");
    let mut tensors = make_llama(&src, DType::F32);
    let mut cfg = llama_config();
    cfg["model_type"] = json!("mistral");
    cfg["architectures"] = json!(["MistralForCausalLM"]);
    cfg["sliding_window"] = json!(16);
    write_checkpoint(&src, &cfg, &tensors);
    let report = convert(&src, &tmp.path().join("m_out"), &[], &ConvertOptions::default()).unwrap();
    assert!(report
        .conversion
        .spec
        .layers
        .iter()
        .all(|l| l.mixer.kind() == modelc::spec::MixerKind::SlidingWindow));

    let llava = tmp.path().join("llava");
    let mut text = llama_config();
    text.as_object_mut().unwrap().remove("architectures");
    let cfg = json!({"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"], "text_config": text, "vision_config": {"hidden_size": 8}, "image_token_index": 10});
    let mut renamed: Vec<(String, HostTensor)> = tensors
        .drain(..)
        .map(|(k, t)| {
            let k = if k == "lm_head.weight" {
                "language_model.lm_head.weight".to_string()
            } else {
                format!("language_model.{k}")
            };
            (k, t)
        })
        .collect();
    renamed.push((
        "vision_tower.patch_conv.weight".into(),
        noise_tensor("v", &[8, 3, 2, 2], DType::F32),
    ));
    renamed.push((
        "multi_modal_projector.linear_1.weight".into(),
        noise_tensor("p", &[64, 8], DType::F32),
    ));
    write_checkpoint(&llava, &cfg, &renamed);
    let out = tmp.path().join("l_out");
    let report = convert(&llava, &out, &[], &ConvertOptions::default()).unwrap();
    assert_eq!(report.conversion.source_format.name(), "llava");
    let got = read_all(&out);
    assert_eq!(got.len(), renamed.len() - 2);
    assert_eq!(
        got["lm_head.weight"],
        renamed
            .iter()
            .find(|(k, _)| k == "language_model.lm_head.weight")
            .unwrap()
            .1
    );
    assert!(got.keys().all(|k| !k.contains("vision")));
}

#[test]
fn reliability_missing_wrong_shape_wrong_dtype_and_broken_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    let tensors = make_llama(&src, DType::F32);
    let opts = ConvertOptions::default();

    // Missing tensor.
    let missing: Vec<_> = tensors
        .iter()
        .filter(|(k, _)| k != "model.layers.2.mlp.up_proj.weight")
        .cloned()
        .collect();
    write_checkpoint(&src, &llama_config(), &missing);
    let err = expect_failure(root, &src, &[], &opts);
    assert!(
        err.contains("model.layers.2.mlp.up_proj.weight") && err.contains("no tensor"),
        "{err}"
    );

    // Wrong shape.
    let mut wrong = tensors.clone();
    wrong[2].1 = noise_tensor("x", &[32, 64], DType::F32);
    let key = wrong[2].0.clone();
    write_checkpoint(&src, &llama_config(), &wrong);
    let err = expect_failure(root, &src, &[], &opts);
    assert!(
        err.contains(&key) && err.contains("[32, 64]") && err.contains("[64, 64]"),
        "{err}"
    );

    // Wrong dtype: an integer tensor where a weight belongs.
    let mut ints = tensors.clone();
    ints[1].1 = HostTensor::from_i32(vec![64], &[1; 64]).unwrap();
    let key = ints[1].0.clone();
    write_checkpoint(&src, &llama_config(), &ints);
    let err = expect_failure(root, &src, &[], &opts);
    assert!(
        err.contains(&key) && err.contains("i32") && err.contains("floating point"),
        "{err}"
    );

    // A tensor the config does not declare (an attention bias with attention_bias false).
    let mut extra = tensors.clone();
    extra.push((
        "model.layers.0.self_attn.q_proj.bias".into(),
        noise_tensor("b", &[64], DType::F32),
    ));
    write_checkpoint(&src, &llama_config(), &extra);
    let err = expect_failure(root, &src, &[], &opts);
    assert!(err.contains("q_proj.bias") && err.contains("not declared"), "{err}");

    // Truncated file.
    write_checkpoint(&src, &llama_config(), &tensors);
    let file = src.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let err = expect_failure(root, &src, &[], &opts);
    assert!(err.contains("model.safetensors") && err.contains("truncated"), "{err}");

    // Corrupt header.
    let mut bad = bytes.clone();
    for b in bad.iter_mut().skip(8).take(20) {
        *b = b'#';
    }
    std::fs::write(&file, &bad).unwrap();
    let err = expect_failure(root, &src, &[], &opts);
    assert!(err.contains("model.safetensors") && err.contains("header"), "{err}");

    // Unknown source format.
    std::fs::write(&file, &bytes).unwrap();
    let mut cfg = llama_config();
    cfg["model_type"] = json!("gpt2");
    cfg["architectures"] = json!(["GPT2LMHeadModel"]);
    std::fs::write(src.join("config.json"), cfg.to_string()).unwrap();
    let err = expect_failure(root, &src, &[], &opts);
    assert!(err.contains("gpt2") && err.contains("-f"), "{err}");
    // ... unless named with -f.
    let named = ConvertOptions {
        format: Some(modelc::surgery::SourceFormat::Llama),
        ..Default::default()
    };
    convert(&src, &root.join("named"), &[], &named).unwrap();
}

#[test]
fn reliability_impossible_surgeries_and_existing_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    make_llama(&src, DType::F32);
    let opts = ConvertOptions::default();
    // MIL whose slices would not fit (upstream clamps silently).
    let err = expect_failure(root, &src, &["decoder: {block: {mixer: {type: mamba, d_inner: 64, d_xb: 64, dt_rank: 4, conv_bias: true, dt_proj_bias: true}}}"], &opts);
    assert!(err.contains("d_xb (64)") && err.contains("layer 0"), "{err}");
    // No converter.
    let err = expect_failure(
        root,
        &src,
        &[
            "decoder: {block: {mixer: {type: kda}}}",
            "decoder: {block: {mixer: {type: gdn, convolution_layer: {kernel_size: 4}}}}",
        ],
        &opts,
    );
    assert!(
        err.contains("surgery 2") && err.contains("from kda to gdn") && err.contains("layer 0"),
        "{err}"
    );
    // A surgery producing an invalid config.
    let err = expect_failure(root, &src, &["decoder: {block: {mixer: {heads: 3}}}"], &opts);
    assert!(err.contains("heads"), "{err}");

    // Existing output: refused, untouched; replaced with force.
    let out = root.join("exists");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let err = convert(&src, &out, &[], &opts).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    assert!(out.join("keep.txt").is_file());
    convert(
        &src,
        &out,
        &[],
        &ConvertOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!out.join("keep.txt").exists() && out.join("model.safetensors").is_file());
    // The source itself (or a parent of it) is never an output, even with force.
    let err = convert(
        &src,
        &src,
        &[],
        &ConvertOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("never modified"), "{err}");
    let before = snapshot(&src);
    let err = convert(&src, &src.join("inside"), &[], &opts).unwrap_err().to_string();
    assert!(err.contains("inside it"), "{err}");
    assert_eq!(snapshot(&src), before);
    assert!(src.join("model.safetensors").is_file());
}

#[test]
fn hf_configs_are_type_and_range_checked() {
    let plan = |key: &str, value: Value| {
        let mut cfg = llama_config();
        cfg[key] = value;
        modelc::surgery::plan_config(&cfg, None, None, &[]).map(|c| c.config)
    };
    for (key, value, want) in [
        (
            "tie_word_embeddings",
            json!("yes"),
            "`tie_word_embeddings` must be true or false, found \"yes\"",
        ),
        ("attention_bias", json!(1), "`attention_bias` must be true or false"),
        ("mlp_bias", json!("false"), "`mlp_bias` must be true or false"),
        ("rms_norm_eps", json!(1e308), "`rms_norm_eps` must be in (0, 1)"),
        ("rms_norm_eps", json!(0), "`rms_norm_eps` must be in (0, 1)"),
        ("rope_theta", json!(0.5), "`rope_theta` must be > 1"),
        (
            "max_position_embeddings",
            json!("long"),
            "`max_position_embeddings` must be a positive integer",
        ),
        ("hidden_act", json!(3), "`hidden_act` must be a string"),
        (
            "sliding_window",
            json!(-1),
            "`sliding_window` must be a positive integer",
        ),
    ] {
        let err = plan(key, value.clone()).expect_err(key).to_string();
        assert!(
            err.contains("llama config.json") && err.contains(want),
            "{key}: {value}: {err}"
        );
    }
    // The valid forms still read as before; null is absent.
    assert_eq!(
        plan("tie_word_embeddings", json!(true)).unwrap()["tie_word_embeddings"],
        json!(true)
    );
    assert_eq!(
        plan("tie_word_embeddings", Value::Null).unwrap()["tie_word_embeddings"],
        json!(false)
    );
    assert!(
        plan("sliding_window", Value::Null).unwrap()["decoder"]["block"]["mixer"]
            .get("window_size")
            .is_none()
    );
}

#[test]
fn out_of_bounds_slices_are_caught_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_llama(&src, DType::F32);
    let ck = Checkpoint::open(&src).unwrap();
    let mut plan = modelc::surgery::Plan::new("llama", "apriel2");
    plan.insert(
        "x",
        modelc::surgery::Expr::reference("model.layers.0.self_attn.k_proj.weight").rows(16, 48),
    )
    .unwrap();
    let err = modelc::surgery::executor::target_specs(&plan, &ck, DType::F32, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("16..48") && err.contains("[32, 64]") && err.contains("k_proj"),
        "{err}"
    );
}

fn modelc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
}

#[test]
fn outputs_inside_the_source_are_refused_however_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_llama(&root.join("src"), DType::F32);
    std::os::unix::fs::symlink(root.join("src"), root.join("link")).unwrap();
    let before = snapshot(root);
    // Relative, several new levels deep, through `.`, or through a symlink to the source.
    for out in ["src/a/b/out", "src/a/out", "./src/a/b/c/out", "link/a/b/out", "link"] {
        let res = modelc()
            .current_dir(root)
            .args(["convert", "src", out])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{out}: accepted");
        assert!(stderr.contains("never modified"), "{out}: {stderr}");
    }
    // `..` after a missing directory would create it inside the source: refused too.
    let res = modelc()
        .current_dir(root)
        .args(["convert", "src", "src/new/../../elsewhere"])
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("`..`"), "{res:?}");
    assert_eq!(snapshot(root), before, "something was written");
    assert!(!root.join("src/a").exists() && !root.join("src/new").exists());
}

#[test]
fn a_write_failing_midway_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    make_llama(&src, DType::F32);
    let before = snapshot(root);
    let out = root.join("out");
    // File size limit of 64 KiB (the checkpoint is ~0.5 MB): the shard write fails with EFBIG
    // part way (SIGXFSZ ignored so the write returns an error instead of killing the process).
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' convert '{}' '{}'",
        env!("CARGO_BIN_EXE_modelc"),
        src.display(),
        out.display()
    );
    let res = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success(),
        "conversion succeeded despite the limit: {stderr}"
    );
    assert!(
        stderr.contains("error:") && (stderr.contains("too large") || stderr.contains("File too large")),
        "{stderr}"
    );
    assert!(!out.exists());
    assert_eq!(snapshot(root), before, "left files behind");
}

#[test]
fn cli_plan_and_convert() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_llama(&src, DType::F32);
    let kil = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/surgery/hybrid_kil.yaml");
    let res = modelc().arg("plan").arg(&src).arg("-s").arg(kil).output().unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(stdout.starts_with("plan llama → apriel2"), "{stdout}");
    assert!(
        stdout.contains("blocks.[0, 3]") && stdout.contains("blocks.[1..2]"),
        "{stdout}"
    );
    assert!(stdout.contains("k_proj.weight ← concat(dim 0)"), "{stdout}");
    assert!(stdout.contains("\"type\": \"pattern\""), "{stdout}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "plan wrote something"
    );
    // JSON form parses back into a plan.
    let res = modelc()
        .arg("plan")
        .arg(&src)
        .arg("-s")
        .arg(kil)
        .arg("--json")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&res.stdout).unwrap();
    assert!(modelc::surgery::Plan::from_json(&v).unwrap().len() > 50);
    // A config file works as a source too.
    let res = modelc().arg("plan").arg(src.join("config.json")).output().unwrap();
    assert!(res.status.success());

    let out = tmp.path().join("out");
    let res = modelc()
        .args(["convert"])
        .arg(&src)
        .arg(&out)
        .args(["-s", kil, "--seed", "3", "--max-shard-size", "200KB", "--dtype", "bf16"])
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains("bf16") && stdout.contains("model.safetensors.index.json"),
        "{stdout}"
    );
    let res = modelc().args(["convert"]).arg(&src).arg(&out).output().unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("already exists"));
    // Located surgery errors.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "decoder:\n  block:\n    mixer: {type: kda, init: maybe}\n").unwrap();
    let res = modelc().arg("plan").arg(&src).arg("-s").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("bad.yaml:3:") && stderr.contains("init"), "{stderr}");
    // Same seed, same bytes; another seed, other random tensors.
    let out2 = tmp.path().join("out2");
    modelc()
        .args(["convert"])
        .arg(&src)
        .arg(&out2)
        .args(["-s", kil, "--seed", "3", "--dtype", "bf16"])
        .output()
        .unwrap();
    let out3 = tmp.path().join("out3");
    modelc()
        .args(["convert"])
        .arg(&src)
        .arg(&out3)
        .args(["-s", kil, "--seed", "4", "--dtype", "bf16"])
        .output()
        .unwrap();
    let (a, b, c) = (read_all(&out), read_all(&out2), read_all(&out3));
    assert_eq!(a, b);
    let f = "model.decoder.blocks.1.mixer.mixers.kda.f_a_proj.weight";
    assert_ne!(a[f], c[f]);
    let q = "model.decoder.blocks.1.mixer.mixers.kda.q_proj.weight";
    assert_eq!(a[q], c[q]);
}
