//! `modelc bench`: requests it cannot honour are refused before any GPU work; on a GPU, every
//! requested shape gets a row whose figures agree with each other.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `MODELC_REPO_ROOT` and `MODELC_BIN` locate the specs and the binary for a test binary run on
/// another machine (scripts/gpu_acceptance.sh).
fn spec_path(name: &str) -> PathBuf {
    let root = std::env::var_os("MODELC_REPO_ROOT")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."), PathBuf::from);
    root.join("specs").join(name)
}

fn bench(args: &[&str]) -> Output {
    let bin: PathBuf = std::env::var_os("MODELC_BIN").map_or_else(|| env!("CARGO_BIN_EXE_modelc").into(), Into::into);
    Command::new(bin)
        .arg("bench")
        .args(args)
        .output()
        .expect("running modelc bench")
}

#[test]
fn lengths_past_the_context_are_refused_before_the_gpu() {
    let spec = spec_path("tiny-hybrid.yaml");
    let out = bench(&[spec.to_str().unwrap(), "--prefill-tokens", "4096"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("tiny-hybrid.yaml") && err.contains("4096") && err.contains("context") && err.contains("2048"),
        "{err}"
    );
    // The decode side counts the past, the timed steps and the warm-up.
    let out = bench(&[
        spec.to_str().unwrap(),
        "--prefill-tokens",
        "8",
        "--decode-past",
        "2000",
        "--decode-steps",
        "64",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("2068"), "{err}");
    let out = bench(&[spec.to_str().unwrap(), "--decode-batch", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1"));
}

/// One table row: (phase, ms, tokens/s).
fn rows(stdout: &str) -> Vec<(String, f64, f64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("| prefill") || l.starts_with("| decode"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let num = |i: usize| cells[i].parse::<f64>().unwrap_or_else(|e| panic!("{l}: cell {i}: {e}"));
            (cells[1].to_string(), num(2), num(3))
        })
        .collect()
}

#[test]
fn every_requested_shape_is_timed_on_the_gpu() {
    if modelc_runtime::cuda::gpu_or_skip("modelc bench").is_none() {
        return;
    }
    let spec = spec_path("tiny-hybrid.yaml");
    let out = bench(&[
        spec.to_str().unwrap(),
        "--prefill-tokens",
        "37,64",
        "--decode-batch",
        "1,3",
        "--decode-past",
        "20",
        "--decode-steps",
        "5",
        "--runs",
        "2",
        "--profile",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rows(&stdout);
    let names: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "prefill, 37 tokens, all logits",
            "prefill, 37 tokens, last logits",
            "prefill, 64 tokens, all logits",
            "prefill, 64 tokens, last logits",
            "decode, batch 1, past 20",
            "decode, batch 3, past 20"
        ],
        "{stdout}"
    );
    // The floor and a decode profile per batch size, with the fused decode GEMMs.
    assert!(stdout.contains("decode floor: "), "{stdout}");
    // The settings in effect: every MODELC_* variable of the run (the GPU tests run with
    // MODELC_REQUIRE_GPU set where a GPU is required), or `none`.
    let settings = stdout
        .lines()
        .find_map(|l| l.strip_prefix("settings: "))
        .unwrap_or_else(|| panic!("no settings line: {stdout}"));
    let expected: Vec<String> = {
        let mut v: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("MODELC_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        v.sort();
        v
    };
    let expected = if expected.is_empty() {
        "none".to_string()
    } else {
        expected.join(", ")
    };
    assert_eq!(settings, expected, "{stdout}");
    for what in [
        "prefill, 37 tokens",
        "prefill, 64 tokens",
        "decode, batch 1",
        "decode, batch 3",
    ] {
        assert!(stdout.contains(&format!("{what}: step profile (")), "{stdout}");
    }
    assert!(
        stdout.contains("| gemm+rms_norm |") && stdout.contains("| gemm+silu_mul |"),
        "{stdout}"
    );
    // tokens/s = tokens per call / ms per call; the table rounds ms to 0.001 and tokens/s to 1.
    for ((name, ms, tps), tokens) in got.iter().zip([37.0, 37.0, 64.0, 64.0, 1.0, 3.0]) {
        assert!(*ms > 0.0 && ms.is_finite(), "{name}: {ms}");
        let want = tokens / ms * 1e3;
        assert!(
            (tps - want).abs() <= 0.5 + want * 0.0006 / ms,
            "{name}: {tps} vs {want}"
        );
    }
}
