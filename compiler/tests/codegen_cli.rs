//! `modelc kernels` and the kernel outputs of `modelc build`.

mod codegen_common;

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
    assert!(l3.iter().any(|k| k.starts_with("delta_rule_chunked_")), "{l3:?}");
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
    assert!(kda.iter().any(|k| k.starts_with("gated_rms_norm_")), "{kda:?}");
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
