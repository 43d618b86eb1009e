//! The GPU scripts name tests of the GPU test binaries (`"$BIN/gpu_kernels" --exact
//! delta::name`, `--ignored bench_kernels`); they run only on a device, so a renamed or moved
//! test would first show there. This checks every such name against the test sources here.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The sources of test binary `bin` (`tests/bin.rs`, or `tests/bin/*.rs` keyed by module:
/// `main.rs` is the root), as (module path prefix, text).
fn binary_sources(bin: &str) -> Vec<(String, String)> {
    let tests = repo().join("compiler/tests");
    let single = tests.join(format!("{bin}.rs"));
    if single.is_file() {
        return vec![(String::new(), std::fs::read_to_string(&single).unwrap())];
    }
    let dir = tests.join(bin);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no test binary `{bin}` ({}): {e}", dir.display())) {
        let path = e.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let prefix = if stem == "main" {
            String::new()
        } else {
            format!("{stem}::")
        };
        out.push((prefix, std::fs::read_to_string(&path).unwrap()));
    }
    out
}

/// The full names (`module::fn`) of the `#[test]` functions in `bin`.
fn test_names(bin: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (prefix, text) in binary_sources(bin) {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "#[test]" {
                continue;
            }
            // The fn follows the attribute, after any further attributes.
            let f = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.starts_with("#["));
            if let Some(name) = f.and_then(|l| l.strip_prefix("fn ")).and_then(|l| l.split('(').next()) {
                names.push(format!("{prefix}{name}"));
            }
        }
    }
    names
}

#[test]
fn gpu_scripts_name_tests_that_exist() {
    let mut checked = 0;
    for script in ["scripts/gpu_acceptance.sh"] {
        let text = std::fs::read_to_string(repo().join(script)).unwrap();
        for (n, line) in text.lines().enumerate() {
            // `"$BIN/<binary>" [--ignored|--exact] <name>`
            let Some(rest) = line.split("\"$BIN/").nth(1) else {
                continue;
            };
            let Some((bin, args)) = rest.split_once('"') else {
                continue;
            };
            let words: Vec<&str> = args.split_whitespace().collect();
            for (flag, exact) in [("--exact", true), ("--ignored", false)] {
                let Some(i) = words.iter().position(|w| *w == flag) else {
                    continue;
                };
                let Some(name) = words.get(i + 1).filter(|w| !w.starts_with('-') && !w.starts_with('|')) else {
                    continue;
                };
                let names = test_names(bin);
                let found = if exact {
                    names.iter().any(|t| t == name)
                } else {
                    names.iter().any(|t| t.contains(name))
                };
                assert!(
                    found,
                    "{script}:{}: `{bin} {flag} {name}` matches no test of `{bin}`",
                    n + 1
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} test names found in the scripts");
}

/// The parser itself: a module's tests carry its path, attributes between `#[test]` and the fn
/// are skipped.
#[test]
fn test_names_carry_their_module() {
    let names = test_names("gpu_kernels");
    assert!(
        names
            .iter()
            .any(|t| t == "delta::delta_rule_scan_out_matches_reference"),
        "{names:?}"
    );
    assert!(names.iter().any(|t| t == "bench::bench_kernels"), "{names:?}");
    assert!(!names.iter().any(|t| t == "delta_rule_scan_out_matches_reference"));
}
