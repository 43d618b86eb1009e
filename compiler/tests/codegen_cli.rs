//! `modelc kernels` and the kernel outputs of `modelc build`.

mod codegen_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use codegen_common::repo;
use modelc::codegen::kernel::sha256_hex;

fn modelc(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(args)
        .output()
        .expect("runs modelc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn hybrid() -> String {
    repo()
        .join("tests/golden/specs/codegen-hybrid.yaml")
        .to_string_lossy()
        .to_string()
}

/// Module names in `modelc kernels --list` output.
fn listed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn kernels_filters_by_layer_and_mixer() {
    let spec = hybrid();
    let (ok, all, err) = modelc(&["kernels", &spec, "--list"]);
    assert!(ok, "{err}");
    let all = listed(&all);
    // Layer 3 is the KDA layer: its delta rule, not the attention of layer 0.
    let (ok, l3, err) = modelc(&["kernels", &spec, "--layer", "3", "--list"]);
    assert!(ok, "{err}");
    let l3 = listed(&l3);
    // Head dims of 32: the chunk-parallel prefill (listed by its first entry, the prep pass).
    assert!(l3.iter().any(|k| k.starts_with("delta_rule_cp_prep_")), "{l3:?}");
    assert!(
        l3.iter().any(|k| k.starts_with("silu_mul_")),
        "the layer's MLP belongs to it: {l3:?}"
    );
    assert!(!l3.iter().any(|k| k.starts_with("attn_")), "{l3:?}");
    assert!(l3.iter().all(|k| all.contains(k)));
    // --mixer kda: the mixer's kernels only (no MLP, no norms between blocks).
    let (ok, kda, err) = modelc(&["kernels", &spec, "--mixer", "kda", "--list"]);
    assert!(ok, "{err}");
    let kda = listed(&kda);
    // Decode runs the layer's one-kernel step; the output norm is the delta rule's epilogue
    // (prefill) and part of that step (decode): no glue kernel of its own.
    assert!(kda.iter().any(|k| k.starts_with("kda_decode_step_")), "{kda:?}");
    assert!(!kda.iter().any(|k| k.starts_with("delta_rule_recurrent_")), "{kda:?}");
    assert!(!kda.iter().any(|k| k.starts_with("gated_rms_norm_")), "{kda:?}");
    assert!(
        !kda.iter().any(|k| k.starts_with("silu_mul_") || k.starts_with("attn_")),
        "{kda:?}"
    );
    // The full source of a selection: every listed module, with its header.
    let (ok, src, err) = modelc(&["kernels", &spec, "--mixer", "mamba"]);
    assert!(ok, "{err}");
    assert!(
        src.contains("selective_scan(state_size=16)") && src.contains("extern \"C\" __global__"),
        "{src}"
    );
    let (ok, _, err) = modelc(&["kernels", &spec, "--mixer", "nosuch"]);
    assert!(!ok && err.contains("nosuch"), "{err}");
    let (ok, _, err) = modelc(&["kernels", &spec, "--layer", "99"]);
    assert!(!ok && err.contains("99"), "{err}");
}

#[test]
fn build_writes_kernels_program_and_table() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("hybrid");
    let (ok, stdout, err) = modelc(&["build", &hybrid(), "-o", out.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("bytes") && stdout.contains("launches"),
        "table not printed: {stdout}"
    );
    let program: modelc_runtime::program::Program =
        serde_json::from_str(&std::fs::read_to_string(out.join("program.json")).expect("program.json"))
            .expect("parses");
    program.validate().expect("valid");
    let files: Vec<String> = std::fs::read_dir(out.join("kernels"))
        .expect("kernels/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), program.kernels.len());
    for k in &program.kernels {
        let src = std::fs::read_to_string(out.join(&k.file)).expect("kernel file");
        assert_eq!(sha256_hex(&src), k.sha256, "{}", k.file);
    }
    let table = std::fs::read_to_string(out.join("kernels.txt")).expect("kernels.txt");
    for layer in 0..5 {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(&format!("{layer} "))),
            "layer {layer} row: {table}"
        );
    }
    assert!(out.join("plan.txt").is_file());
    assert!(!out.join("kernels.error.txt").exists());
}

/// A spec whose shapes a mixer-core template cannot take (a 264-wide attention head, beyond the
/// template's 256) fails the build: non-zero exit, an error naming the layer's mixer and the
/// limit, and nothing written: no folder where there was none, and an earlier build's files
/// untouched.
#[test]
fn build_fails_when_a_template_rejects_a_shape() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = tmp.path().join("wide-head.yaml");
    let rope = "rotary: {type: mistral_1d, theta: 10000.0}";
    let block = |mixer: &str| {
        format!(
            "      mixer: {mixer}\n      mlp: {{type: mlp, intermediate_size: 64, gated: true}}\n      \
             normalization: {{type: rms_norm, epsilon: 1.0e-5}}\n"
        )
    };
    let yaml = format!(
        "model_type: apriel2_text\nhidden_size: 64\nvocab_size: 128\n\
         head: {{normalization: {{type: rms_norm, epsilon: 1.0e-5}}}}\n\
         decoder:\n  type: pattern\n  num_blocks: 2\n  pattern: [small, wide]\n  blocks:\n    small:\n{}    wide:\n{}",
        block(&format!(
            "{{type: attention, heads: 2, head_groups: 1, head_size: 8, {rope}}}"
        )),
        block(&format!(
            "{{type: attention, heads: 1, head_groups: 1, head_size: 264, {rope}}}"
        )),
    );
    std::fs::write(&spec, yaml).expect("write spec");
    let out = tmp.path().join("out");
    // A failed build into a new folder leaves no folder behind.
    let (ok, _, err) = modelc(&["build", spec.to_str().expect("utf8"), "-o", out.to_str().expect("utf8")]);
    assert!(!ok, "the build must fail: {err}");
    for needle in ["layers.1.mixer", "attention_prefill", "head_dim 264", "limit of 256"] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    assert!(!out.exists(), "a failed build left {} behind", out.display());

    // Into the folder of an earlier successful build, it changes nothing there.
    let (ok, _, err) = modelc(&["build", &hybrid(), "-o", out.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    let before = folder_contents(&out);
    assert!(before.contains_key(Path::new("program.json")), "{:?}", before.keys());
    let (ok, _, err) = modelc(&["build", spec.to_str().expect("utf8"), "-o", out.to_str().expect("utf8")]);
    assert!(!ok, "the build must fail: {err}");
    assert!(err.contains("head_dim 264"), "{err}");
    let after = folder_contents(&out);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files added or removed"
    );
    for (rel, contents) in &before {
        assert!(after[rel] == *contents, "{} changed", rel.display());
    }
}

/// Every file under `dir` (relative path → contents), in path order.
fn folder_contents(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                files.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

/// Every spec in `specs/` builds with kernels (the tiny ones have head sizes 8 and 16 and value
/// dims below a warp).
#[test]
fn build_generates_kernels_for_every_tiny_spec() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("specs")).expect("specs/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if !name.starts_with("tiny-") || path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let out = tmp.path().join(&name);
        let (ok, _, err) = modelc(&["build", path.to_str().expect("utf8"), "-o", out.to_str().expect("utf8")]);
        assert!(ok, "{name}: {err}");
        let program: modelc_runtime::program::Program =
            serde_json::from_str(&std::fs::read_to_string(out.join("program.json")).expect("program.json"))
                .expect("parses");
        program.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!program.kernels.is_empty(), "{name}: no kernels");
        n += 1;
    }
    assert!(n >= 7, "only {n} tiny specs");
}

/// `modelc kernels --sass`: a missing cuobjdump is an error that says where to get it (always
/// checked); where NVRTC and cuobjdump are (CI installs both through `.ci/nvrtc.sh`), every
/// selected module is compiled and disassembled (a `Function :` line per entry), and a module
/// built for one target only (the KDA step's Hopper cluster form) is named and skipped for
/// another architecture.
#[test]
fn kernels_sass_disassembles_each_module() {
    let spec = hybrid();
    let sass = |arch: &str, envs: &[(&str, Option<&str>)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelc"));
        cmd.args(["kernels", &spec, "--mixer", "kda", "--sass", "--arch", arch]);
        for (k, v) in envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().expect("runs modelc");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = sass("sm_90a", &[("MODELC_CUOBJDUMP", Some("/nonexistent/cuobjdump"))]);
    assert!(
        !ok && err.contains("MODELC_CUOBJDUMP=/nonexistent/cuobjdump: no such file"),
        "{err}"
    );
    let (ok, _, err) = sass("sm_90a", &[("MODELC_CUOBJDUMP", None), ("PATH", Some(""))]);
    assert!(!ok && err.contains("nvidia-cuda-cuobjdump"), "{err}");

    let tool = std::env::var("MODELC_CUOBJDUMP")
        .ok()
        .filter(|p| std::path::Path::new(p).is_file());
    if tool.is_none() || !modelc_runtime::cuda::nvrtc::nvrtc_available() {
        eprintln!("NOTICE: skipping the SASS listing: no cuobjdump (MODELC_CUOBJDUMP) or no NVRTC");
        return;
    }
    let (ok, list, err) = modelc(&["kernels", &spec, "--mixer", "kda", "--list"]);
    assert!(ok, "{err}");
    // name, entries, whether the module is built for sm_90a only.
    let modules: Vec<(String, Vec<String>, bool)> = list
        .lines()
        .map(|l| {
            let name = l.split_whitespace().next().expect("a name").to_string();
            let entries = l.rsplit_once("entries: ").expect("entries").1.trim_end_matches(')');
            let hopper_only = name.starts_with("kda_decode_step_cluster_");
            (name, entries.split(", ").map(str::to_string).collect(), hopper_only)
        })
        .collect();
    assert!(modules.iter().any(|m| m.2), "the KDA step's cluster form is among them");
    for arch in ["sm_90a", "sm_80"] {
        let (ok, out, err) = sass(arch, &[]);
        assert!(ok, "{arch}: {err}");
        for (name, entries, hopper_only) in &modules {
            if *hopper_only && arch != "sm_90a" {
                assert!(out.contains(&format!("// ===== {name}: built for sm_90a only, not {arch} =====")));
                continue;
            }
            assert!(
                out.contains(&format!("// ===== kernels/{name}.cu, SASS for {arch} =====")),
                "{arch}: {name}"
            );
            for e in entries {
                assert!(out.contains(&format!("Function : {e}\n")), "{arch}: {e}");
            }
        }
    }
}
