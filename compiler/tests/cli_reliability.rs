//! What a new user runs into (issue 7): outputs never replace a file or write into a checkpoint
//! unasked, requests the model cannot serve are refused before anything is allocated, non-finite
//! weights are reported, interrupted conversions leave no temps, and a Hugging Face checkpoint
//! is sent to `modelc convert`.

mod surgery_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use modelc::reference::WeightStore;
use modelc::spec::{self, layout, ModelSpec};
use modelc_runtime::tensor::{DType, HostTensor};
use serde_json::json;
use surgery_util::{llama_config, write_checkpoint};

fn spec_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs").join(name)
}

fn modelc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs modelc")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails unless `out` is a clean error (exit status 1, not a panic's 101 or a signal).
#[track_caller]
fn assert_refused(out: &Output, fragments: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "not a clean error: {err}");
    for f in fragments {
        assert!(err.contains(f), "missing {f:?} in: {err}");
    }
}

/// An Apriel2 checkpoint of `spec` with random bf16 weights, `edit` applied to each tensor.
fn apriel_checkpoint(dir: &Path, spec: &ModelSpec, edit: impl Fn(&str, &mut Vec<f64>)) {
    let shapes: Vec<(String, Vec<usize>)> = layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect();
    let store = WeightStore::random(&shapes, 1);
    let tensors: Vec<(String, HostTensor)> = store
        .iter()
        .map(|(k, a)| {
            let mut data = a.data.clone();
            edit(k, &mut data);
            let t = HostTensor::from_f64(a.shape.clone(), &data).expect("tensor");
            (k.clone(), t.cast(DType::BF16))
        })
        .collect();
    write_checkpoint(dir, &spec::to_config_json(spec), &tensors);
}

/// Names in `dir` that start with `.` (the temps of atomic outputs).
fn hidden_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn logits_out_refuses_an_existing_file_and_checkpoints() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let spec_file = spec_path("tiny-attention.yaml");
    let spec_arg = spec_file.to_str().expect("utf8");
    let logits = root.join("logits.safetensors");
    std::fs::write(&logits, "keep").expect("write");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", spec_arg, "--prompt-ids", "1,2", "--max-new-tokens", "2"];
        args.extend(extra);
        modelc(root, &args)
    };
    let out = run(&["--logits-out", "logits.safetensors"]);
    assert_refused(
        &out,
        &["logits.safetensors already exists (pass --force to replace it)"],
    );
    assert_eq!(std::fs::read_to_string(&logits).expect("read"), "keep");
    let out = run(&["--logits-out", "logits.safetensors", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = modelc_runtime::weights::SafetensorsFile::open(&logits).expect("a safetensors file");
    assert_eq!(file.get("generated_ids").expect("ids").shape, [2]);
    assert!(hidden_entries(root).is_empty(), "{:?}", hidden_entries(root));

    // Into a checkpoint: refused even with --force, its weights untouched.
    let spec = spec::load(&spec_file).expect("spec");
    let ckpt = root.join("ckpt");
    apriel_checkpoint(&ckpt, &spec, |_, _| {});
    let weights = std::fs::read(ckpt.join("model.safetensors")).expect("read");
    for target in ["ckpt/model.safetensors", "ckpt/new.safetensors"] {
        let out = run(&["--logits-out", target, "--force"]);
        assert_refused(&out, &["never writes into a checkpoint"]);
    }
    let out = modelc(
        root,
        &[
            "run",
            "ckpt",
            "--prompt-ids",
            "1",
            "--logits-out",
            "ckpt/sub/l.safetensors",
        ],
    );
    assert_refused(&out, &["never writes into a checkpoint"]);
    assert_eq!(std::fs::read(ckpt.join("model.safetensors")).expect("read"), weights);
    assert!(!ckpt.join("new.safetensors").exists() && !ckpt.join("sub").exists());
}

#[test]
fn max_new_tokens_is_bounded_by_the_context() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec_file = spec_path("tiny-gdn.yaml");
    let context = spec::load(&spec_file).expect("spec").max_position_embeddings;
    let just_over = (context - 2).to_string();
    for n in ["9223372036854775808", "1099511627776", "1000000", just_over.as_str()] {
        let out = modelc(
            tmp.path(),
            &[
                "run",
                spec_file.to_str().expect("utf8"),
                "--prompt-ids",
                "1,2,3",
                "--max-new-tokens",
                n,
            ],
        );
        let at_most = format!("at most {} new tokens fit", context - 3);
        assert_refused(&out, &["exceed the model's context", &at_most]);
    }
}

#[test]
fn a_model_too_large_for_memory_is_refused_before_allocating() {
    if std::fs::read_to_string("/proc/meminfo").is_err() {
        eprintln!("skipped: no /proc/meminfo to compare with");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let spec_file = tmp.path().join("huge.yaml");
    let text = std::fs::read_to_string(spec_path("tiny-attention.yaml"))
        .expect("read")
        .replace("hidden_size: 64", "hidden_size: 1000000")
        .replace("intermediate_size: 128", "intermediate_size: 1000000");
    assert!(text.contains("hidden_size: 1000000") && text.contains("intermediate_size: 1000000"));
    std::fs::write(&spec_file, text).expect("write");
    let out = modelc(tmp.path(), &["run", "huge.yaml", "--prompt-ids", "1"]);
    assert_refused(&out, &["GiB of host memory", "is available"]);
}

#[test]
fn non_finite_weights_are_reported_by_run_and_convert() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let spec = spec::load(&spec_path("tiny-attention.yaml")).expect("spec");
    apriel_checkpoint(&root.join("nan"), &spec, |key, data| {
        if key == "model.norm.weight" {
            data[3] = f64::NAN;
        }
    });
    let out = modelc(root, &["run", "nan", "--prompt-ids", "1,2"]);
    assert_refused(&out, &["logits of prompt position 0 are not finite", "NaN or Inf"]);
    let out = modelc(root, &["convert", "nan", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: tensor `model.norm.weight` has 1 non-finite value(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn build_never_writes_into_a_checkpoint() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let spec = spec::load(&spec_path("tiny-attention.yaml")).expect("spec");
    apriel_checkpoint(&root.join("ckpt"), &spec, |_, _| {});
    // A config-only directory is a checkpoint too when it is the source.
    std::fs::create_dir(root.join("config-only")).expect("mkdir");
    std::fs::copy(root.join("ckpt/config.json"), root.join("config-only/config.json")).expect("copy");
    let config = std::fs::read(root.join("ckpt/config.json")).expect("read");
    let spec_file = spec_path("tiny-attention.yaml");
    for (source, out) in [
        ("ckpt", "ckpt"),
        ("ckpt", "ckpt/build"),
        ("ckpt", "./ckpt/a/b"),
        (spec_file.to_str().expect("utf8"), "ckpt"),
        ("config-only", "config-only"),
    ] {
        let res = modelc(root, &["build", source, "-o", out]);
        assert_refused(&res, &["never writes into a checkpoint"]);
    }
    assert_eq!(std::fs::read(root.join("ckpt/config.json")).expect("read"), config);
    assert!(!root.join("ckpt/build").exists() && !root.join("ckpt/a").exists());
    let res = modelc(root, &["build", "ckpt", "-o", "fresh"]);
    assert!(res.status.success(), "{}", stderr(&res));
    // A build directory is not a checkpoint: building into it again is fine.
    let res = modelc(root, &["build", "ckpt", "-o", "fresh"]);
    assert!(res.status.success(), "{}", stderr(&res));
}

#[test]
fn hugging_face_checkpoints_are_sent_to_convert() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    surgery_util::make_llama(&root.join("llama"), DType::F32);
    let mut qwen = llama_config();
    qwen["model_type"] = json!("qwen2");
    std::fs::create_dir(root.join("qwen")).expect("mkdir");
    std::fs::write(root.join("qwen/config.json"), qwen.to_string()).expect("write");
    for (dir, name) in [("llama", "llama"), ("qwen", "qwen2")] {
        for cmd in [vec!["build", dir, "-o", "out"], vec!["run", dir, "--prompt-ids", "1"]] {
            let out = modelc(root, &cmd);
            let what = format!("{dir} is a {name} checkpoint");
            assert_refused(&out, &[&what, &format!("modelc convert {dir} OUT_DIR")]);
        }
    }
}

/// A Llama checkpoint of ~64 MB (one layer, hidden 1024, MLP 4096, f32 zeros): large enough that
/// converting it takes a while, so a signal can arrive while the output is being written.
fn large_llama(dir: &Path) {
    let mut config = llama_config();
    config["hidden_size"] = json!(1024);
    config["intermediate_size"] = json!(4096);
    config["num_hidden_layers"] = json!(1);
    config["num_attention_heads"] = json!(8);
    config["num_key_value_heads"] = json!(8);
    let (d, i, v) = (1024, 4096, 50);
    let shapes = [
        ("model.embed_tokens.weight", vec![v, d]),
        ("model.layers.0.input_layernorm.weight", vec![d]),
        ("model.layers.0.self_attn.q_proj.weight", vec![d, d]),
        ("model.layers.0.self_attn.k_proj.weight", vec![d, d]),
        ("model.layers.0.self_attn.v_proj.weight", vec![d, d]),
        ("model.layers.0.self_attn.o_proj.weight", vec![d, d]),
        ("model.layers.0.post_attention_layernorm.weight", vec![d]),
        ("model.layers.0.mlp.gate_proj.weight", vec![i, d]),
        ("model.layers.0.mlp.up_proj.weight", vec![i, d]),
        ("model.layers.0.mlp.down_proj.weight", vec![d, i]),
        ("model.norm.weight", vec![d]),
        ("lm_head.weight", vec![v, d]),
    ];
    let tensors: Vec<(String, HostTensor)> = shapes
        .into_iter()
        .map(|(k, s)| (k.to_string(), HostTensor::zeros(DType::F32, s).expect("zeros")))
        .collect();
    write_checkpoint(dir, &config, &tensors);
}

#[test]
fn an_interrupted_convert_removes_its_temp() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    large_llama(&root.join("src"));
    for signal in ["TERM", "INT"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .current_dir(root)
            .args(["convert", "src", "out"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Signal as soon as the hidden temp exists (it is being filled).
        let start = std::time::Instant::now();
        while !hidden_entries(root).iter().any(|n| n.starts_with(".out.tmp-")) {
            assert!(start.elapsed().as_secs() < 60, "no temp appeared");
            assert!(
                child.try_wait().expect("wait").is_none(),
                "convert ended before the signal"
            );
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let pid = child.id().to_string();
        let kill = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        assert!(kill.expect("kill").success());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(130), "SIG{signal}: {}", stderr(&out));
        assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
        assert!(
            hidden_entries(root).is_empty(),
            "SIG{signal} left {:?}",
            hidden_entries(root)
        );
        assert!(!root.join("out").exists());
    }
}

#[test]
fn stale_temps_of_dead_processes_are_removed_by_the_next_convert() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    surgery_util::make_llama(&root.join("src"), DType::F32);
    // What a SIGKILLed convert leaves (no process has an id above the kernel's pid_max,
    // 2^22), and the temp of a live process (this test's), which must stay.
    let dead = root.join(".out.tmp-99999999-0");
    std::fs::create_dir(&dead).expect("mkdir");
    std::fs::write(dead.join("model.safetensors"), vec![0u8; 1024]).expect("write");
    std::fs::write(root.join(".out.tmp-99999999-1.old"), "x").expect("write");
    let live = root.join(format!(".out.tmp-{}-0", std::process::id()));
    std::fs::create_dir(&live).expect("mkdir");
    let out = modelc(root, &["convert", "src", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut left = hidden_entries(root);
    left.sort();
    assert_eq!(left, [format!(".out.tmp-{}-0", std::process::id())]);
    assert!(root.join("out/model.safetensors").is_file());
}

#[test]
fn plan_errors_name_the_source_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    std::fs::write(root.join("list.yaml"), "- 1\n").expect("write");
    let bad = std::fs::read_to_string(spec_path("tiny-attention.yaml"))
        .expect("read")
        .replace("head_groups: 2", "head_groups: 3");
    assert!(bad.contains("head_groups: 3"));
    std::fs::write(root.join("bad.yaml"), &bad).expect("write");
    let line = bad.lines().position(|l| l.contains("head_groups: 3")).expect("line") + 1;
    for (source, want) in [
        (
            "missing.yaml",
            "missing.yaml: cannot read the source config".to_string(),
        ),
        ("list.yaml", "list.yaml:1:1: a source config is a mapping".to_string()),
        ("bad.yaml", format!("bad.yaml:{line}:")),
    ] {
        let out = modelc(root, &["plan", source]);
        assert_refused(&out, &[want.as_str()]);
        assert!(!stderr(&out).contains("surgery"), "{}", stderr(&out));
    }
}

#[test]
fn every_option_has_help_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    for cmd in ["build", "graph", "kernels", "run", "plan", "convert"] {
        let out = modelc(tmp.path(), &[cmd, "-h"]);
        let help = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = help.lines().collect();
        let mut options = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with('-') {
                continue;
            }
            options += 1;
            // `  -s, --surgery <SURGERIES>  Surgery YAMLs ...`, or (when clap wraps) the text on
            // the next line; `[default: ...]` alone is no help.
            let same_line = line.trim().split("  ").skip(1).map(str::trim).find(|t| !t.is_empty());
            let next_line = lines
                .get(i + 1)
                .map(|l| l.trim())
                .filter(|l| !l.is_empty() && !l.starts_with('-'));
            let text = same_line.or(next_line);
            assert!(
                text.is_some_and(|t| !t.starts_with('[')),
                "`modelc {cmd}`: no help for `{}`",
                line.trim()
            );
        }
        assert!(options > 1, "{cmd}: {help}");
    }
}
