//! Golden snapshots of the emitted CUDA C and fusion plan of the tiny specs in `specs/` and the
//! codegen specs in `tests/golden/specs/`: `tests/golden/<spec>.cu` (every kernel, as
//! `modelc kernels` prints them) and `tests/golden/<spec>.plan.txt`. A spec whose shapes a
//! mixer-core template rejects snapshots the error instead (`<spec>.error.txt`).
//!
//! `MODELC_BLESS=1 cargo test -p modelc --test codegen_golden` rewrites the snapshots; review the
//! diff before committing it.

mod codegen_common;

use std::fmt::Write;
use std::path::Path;

use codegen_common::{codegen_specs, placed, repo, tiny_specs};
use modelc::codegen::{generate, report};
use modelc::passes::Placement;

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

/// Compares `got` with the snapshot at `path`, or writes it when blessing. Returns a mismatch.
fn compare(path: &Path, got: &str, bless: bool) -> Option<String> {
    if bless {
        std::fs::write(path, got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    let want = match std::fs::read_to_string(path) {
        Ok(w) => w,
        Err(_) => return Some(format!("{}: missing (run with MODELC_BLESS=1)", path.display())),
    };
    if want == got {
        return None;
    }
    let line = want
        .lines()
        .zip(got.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(want.lines().count().min(got.lines().count()));
    Some(format!(
        "{}: differs from the emitted text at line {} (MODELC_BLESS=1 rewrites it)\n  snapshot: {:?}\n  emitted:  {:?}",
        path.display(),
        line + 1,
        want.lines().nth(line).unwrap_or("<end>"),
        got.lines().nth(line).unwrap_or("<end>")
    ))
}

#[test]
fn emitted_kernels_match_the_snapshots() {
    let bless = std::env::var("MODELC_BLESS").is_ok_and(|v| v == "1");
    let dir = repo().join("tests/golden");
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for (name, spec) in tiny_specs().into_iter().chain(codegen_specs()) {
        let p = Placement::main(&spec);
        let mut files: Vec<(String, String)> = Vec::new();
        match generate(placed(&spec, &p)) {
            Ok(cg) => {
                let mut cu = String::new();
                for k in &cg.kernels {
                    let _ = writeln!(cu, "// ===== kernels/{}.cu =====", k.name);
                    cu.push_str(&k.source);
                    cu.push('\n');
                }
                files.push((format!("{name}.cu"), cu));
                files.push((format!("{name}.plan.txt"), report::steps_text(&cg)));
            }
            Err(e) => files.push((format!("{name}.error.txt"), format!("{}\n", chain(&e)))),
        }
        for (file, text) in files {
            expected_files.push(file.clone());
            if let Some(f) = compare(&dir.join(&file), &text, bless) {
                failures.push(f);
            }
        }
    }
    // Snapshots of a spec that now has another outcome (or no longer exists) are stale.
    for entry in std::fs::read_dir(&dir).expect("tests/golden") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        if path.is_file() && !expected_files.contains(&file) {
            if bless {
                std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            } else {
                failures.push(format!(
                    "{}: stale snapshot (MODELC_BLESS=1 removes it)",
                    path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
