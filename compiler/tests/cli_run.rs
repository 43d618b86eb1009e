//! `modelc run --device cpu` on checkpoints the test writes (random weights, every mixer kind,
//! single-file and sharded): `--logits-out` equals the in-process reference, and bad checkpoints
//! give errors that name the tensor.

use std::path::{Path, PathBuf};
use std::process::Command;

use modelc::ir::lower::lower_model;
use modelc::passes::{placement::specialize, Placement};
use modelc::reference::{DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{self, layout, ModelSpec};
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::{write_safetensors, Checkpoint, SafetensorsFile, ShardedWriter, TensorSpec};

fn spec_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs").join(name)
}

fn layout_of(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect()
}

/// Writes `config.json` and bf16 weights; sharded when `max_shard` is given.
fn write_checkpoint(dir: &Path, spec: &ModelSpec, seed: u64, max_shard: Option<u64>, skip: Option<&str>) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let config = serde_json::to_string_pretty(&spec::to_config_json(spec)).expect("json");
    std::fs::write(dir.join("config.json"), config).expect("config");
    let store = WeightStore::random(&layout_of(spec), seed);
    let tensors: Vec<(String, HostTensor)> = store
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, a)| {
            (
                k.clone(),
                HostTensor::from_f64(a.shape.clone(), &a.data)
                    .expect("tensor")
                    .cast(DType::BF16),
            )
        })
        .collect();
    match max_shard {
        None => write_safetensors(&dir.join("model.safetensors"), &tensors).expect("write"),
        Some(max) => {
            let specs = tensors
                .iter()
                .map(|(k, t)| TensorSpec::new(k.clone(), t.dtype, t.shape.clone()))
                .collect();
            let mut w = ShardedWriter::new(dir, max, specs).expect("writer");
            for (k, t) in &tensors {
                w.write(k, &t.data).expect("write");
            }
            let files = w.finish().expect("finish");
            assert!(files.len() > 2, "expected several shards, got {files:?}");
        }
    }
}

fn modelc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(args)
        .output()
        .expect("runs modelc")
}

/// Reference logits of prompt + greedy steps, in-process, for comparison with the CLI.
fn reference(dir: &Path, placement: Option<&str>, prompt: &[u32], steps: usize) -> (Vec<f64>, Vec<f64>, Vec<u32>) {
    let spec = spec::load(dir).expect("spec");
    let ckpt = Checkpoint::open(dir).expect("ckpt");
    let weights = WeightStore::from_checkpoint(&ckpt, &layout_of(&spec)).expect("weights");
    let p = match placement {
        None => Placement::main(&spec),
        Some(name) => Placement::all(&spec, name).expect("placement"),
    };
    let graph = specialize(lower_model(&spec).expect("lower"), &p).expect("place");
    let opts = InterpOptions {
        precision: Precision::F64,
        delta_rule: DeltaRuleForm::Recurrent,
    };
    let mut s = Session::new(&graph, &weights, 1, opts).expect("session");
    let logits = s.forward(&[prompt.to_vec()]).expect("prefill");
    let v = logits.last_dim();
    let argmax = |row: &[f64]| {
        row.iter()
            .enumerate()
            .fold(0, |b, (i, x)| if *x > row[b] { i } else { b }) as u32
    };
    let mut next = argmax(&logits.data[logits.len() - v..]);
    let mut generated = vec![next];
    let mut decode = Vec::new();
    for _ in 1..steps {
        let l = s.forward(&[vec![next]]).expect("step");
        next = argmax(&l.data);
        generated.push(next);
        decode.extend(l.data);
    }
    (logits.data, decode, generated)
}

fn read_f32(file: &SafetensorsFile, key: &str) -> Vec<f64> {
    file.get(key).expect(key).to_f64_vec()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check_run(dir: &Path, placement: Option<&str>) {
    // Outside the checkpoint: modelc never writes into one.
    let out_dir = tempfile::tempdir().expect("tmp");
    let out_file = out_dir.path().join("logits.safetensors");
    let mut args = vec![
        "run",
        dir.to_str().expect("utf8"),
        "--device",
        "cpu",
        "--prompt-ids",
        "3,1,4,1,5,9",
        "--max-new-tokens",
        "4",
        "--precision",
        "f64",
        "--chunk",
        "0",
        "--logits-out",
        out_file.to_str().expect("utf8"),
    ];
    if let Some(p) = placement {
        args.extend(["--placement", p]);
    }
    let run = modelc(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (prompt, decode, generated) = reference(dir, placement, &[3, 1, 4, 1, 5, 9], 4);
    let file = SafetensorsFile::open(&out_file).expect("logits file");
    // The file stores f32: 1e-6 relative covers the one rounding of each logit.
    assert!(max_rel(&read_f32(&file, "prompt_logits"), &prompt) < 1e-6);
    assert!(max_rel(&read_f32(&file, "decode_logits"), &decode) < 1e-6);
    let ids: Vec<u32> = read_f32(&file, "generated_ids").iter().map(|&x| x as u32).collect();
    assert_eq!(ids, generated);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains(&format!("{generated:?}")), "{stdout}");
}

#[test]
fn run_on_a_hybrid_checkpoint_matches_the_in_process_reference() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = spec::load(&spec_path("tiny-hybrid.yaml")).expect("spec");
    let kinds: std::collections::BTreeSet<String> = spec.layers.iter().map(|l| l.mixer.kind().to_string()).collect();
    for k in ["attention", "sliding_window", "mamba", "gdn", "kda"] {
        assert!(kinds.contains(k), "tiny-hybrid lacks {k}");
    }
    let single = tmp.path().join("single");
    write_checkpoint(&single, &spec, 11, None, None);
    check_run(&single, None);
    let sharded = tmp.path().join("sharded");
    write_checkpoint(&sharded, &spec, 12, Some(40_000), None);
    assert!(sharded.join("model.safetensors.index.json").is_file());
    check_run(&sharded, None);
}

#[test]
fn run_on_a_supernet_checkpoint_with_each_placement() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = spec::load(&spec_path("tiny-supernet.yaml")).expect("spec");
    let dir = tmp.path().join("supernet");
    write_checkpoint(&dir, &spec, 13, None, None);
    for p in [None, Some("kda"), Some("mamba"), Some("gdn")] {
        check_run(&dir, p);
    }
}

#[test]
fn a_missing_tensor_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = spec::load(&spec_path("tiny-kda.yaml")).expect("spec");
    let dir = tmp.path().join("broken");
    write_checkpoint(
        &dir,
        &spec,
        1,
        None,
        Some("model.decoder.blocks.1.mixer.f_b_proj.weight"),
    );
    let run = modelc(&["run", dir.to_str().expect("utf8"), "--prompt-ids", "1,2"]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("model.decoder.blocks.1.mixer.f_b_proj.weight"), "{err}");
}

#[test]
fn a_misshaped_tensor_is_an_error_naming_it_and_both_shapes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut spec = spec::load(&spec_path("tiny-attention.yaml")).expect("spec");
    let dir = tmp.path().join("bad");
    // Write weights for a model with a larger MLP, then declare the original one.
    let good = spec.clone();
    for l in &mut spec.layers {
        l.mlp.intermediate_size += 8;
    }
    write_checkpoint(&dir, &spec, 2, None, None);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&spec::to_config_json(&good)).expect("json"),
    )
    .expect("config");
    let run = modelc(&["run", dir.to_str().expect("utf8"), "--prompt-ids", "1"]);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    let i = good.layers[0].mlp.intermediate_size;
    assert!(err.contains("model.decoder.blocks.0.mlp.up_proj.weight"), "{err}");
    assert!(
        err.contains(&i.to_string()) && err.contains(&(i + 8).to_string()),
        "{err}"
    );
}

#[test]
fn out_of_vocabulary_prompt_is_rejected() {
    let run = modelc(&[
        "run",
        spec_path("tiny-gdn.yaml").to_str().expect("utf8"),
        "--prompt-ids",
        "1,9999",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("9999"));
}

/// The CPU reference's own settings are refused with `--device cuda` (which would ignore them)
/// before anything runs, naming the flag.
#[test]
fn reference_settings_are_refused_on_the_gpu() {
    for flag in [["--precision", "f64"], ["--chunk", "0"]] {
        let spec = spec_path("tiny-gdn.yaml");
        let mut args = vec![
            "run",
            spec.to_str().expect("utf8"),
            "--device",
            "cuda",
            "--prompt-ids",
            "1,2",
        ];
        args.extend(flag);
        let run = modelc(&args);
        assert!(!run.status.success(), "{flag:?}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(flag[0]) && err.contains("--device cpu"), "{err}");
    }
}

#[test]
fn attention_biases_follow_the_checkpoint_not_the_config_default() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plain = spec::load(&spec_path("tiny-attention.yaml")).expect("spec");
    let mut biased = plain.clone();
    for l in &mut biased.layers {
        if let modelc::spec::MixerSpec::Attention(a) = &mut l.mixer {
            a.bias.q = true;
            a.bias.k = true;
            a.bias.v = true;
        }
    }
    let dir = tmp.path().join("qwen-like");
    write_checkpoint(&dir, &biased, 4, None, None);
    // The config omits the biases (HF reads that as "none"); the tensors say otherwise.
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&spec::to_config_json(&plain)).expect("json"),
    )
    .expect("config");
    let run = modelc(&[
        "run",
        dir.to_str().expect("utf8"),
        "--prompt-ids",
        "1,2",
        "--max-new-tokens",
        "1",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("model.decoder.blocks.0.mixer.q_proj.bias") && err.contains("following the checkpoint"),
        "{err}"
    );
}
