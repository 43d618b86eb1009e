//! `modelc build SPEC -s SURGERY -o DIR` writes a Cargo crate that an application depends on:
//! this test generates one from `specs/`, builds the example application `tests/typed-app/`
//! against it with Cargo and runs it (random checkpoint through the typed API, typed KIL
//! conversion checked against the plan's rows, logits equal to the model built at run time,
//! load errors naming the key).
//!
//! The nested build shares the target directory of the `trybuild` tests of modelc-macros
//! (`macros/tests/ui.rs`) and builds as trybuild does (`--target HOST`, no incremental
//! compilation), so the proc-macro and the modelc it links are compiled once for both, and both
//! are incremental across runs; if trybuild changes how it builds, this build is only slower. It
//! runs `--offline` with the workspace's `Cargo.lock`, so it fetches nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    let compiler = Path::new(env!("CARGO_MANIFEST_DIR"));
    compiler.parent().unwrap_or(compiler).to_path_buf()
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("runs rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

fn modelc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(args)
        .output()
        .expect("runs modelc");
    assert!(
        out.status.success(),
        "modelc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_application_builds_on_the_generated_crate_and_runs() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("typed-app");
    let generated = base.join("tiny-kil");
    let spec = root().join("specs/tiny-attention.yaml");
    let surgery = root().join("specs/surgery/hybrid_kil.yaml");
    let stdout = modelc(&[
        "build",
        spec.to_str().expect("utf8"),
        "-s",
        surgery.to_str().expect("utf8"),
        "-o",
        generated.to_str().expect("utf8"),
        "--crate-name",
        "tiny-kil",
    ]);
    assert!(stdout.contains("crate `tiny-kil`"), "{stdout}");
    // The crate's files, beside the compiler's outputs.
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        "spec/tiny-attention.yaml",
        "spec/hybrid_kil.yaml",
        "config.json",
        "kernels.txt",
        "program.json",
    ] {
        assert!(generated.join(f).is_file(), "{f} missing");
    }
    let manifest = std::fs::read_to_string(generated.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    let lib = std::fs::read_to_string(generated.join("src/lib.rs")).expect("lib.rs");
    assert!(lib.contains("modelc_macros::converter!"), "{lib}");

    // The application: its source stays in tests/typed-app/, its manifest is written here.
    let app = base.join("app");
    std::fs::create_dir_all(&app).expect("mkdir");
    let main = root().join("tests/typed-app/main.rs");
    let manifest = format!(
        "[package]\nname = \"typed-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [[bin]]\nname = \"typed-app\"\npath = {main:?}\n\n\
         [dependencies]\ntiny-kil = {{ path = {generated:?} }}\n\n[workspace]\n",
    );
    std::fs::write(app.join("Cargo.toml"), manifest).expect("app manifest");
    std::fs::copy(root().join("Cargo.lock"), app.join("Cargo.lock")).expect("Cargo.lock");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let work = base.join("work");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("tests/trybuild");
    let out = Command::new(cargo)
        .args(["run", "--quiet", "--offline", "--manifest-path"])
        .arg(app.join("Cargo.toml"))
        .args(["--target", &host_triple()])
        .arg("--")
        .arg(&generated)
        .arg(&work)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("runs cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the application failed:\n{stdout}\n{stderr}");
    for line in [
        "KIL projections equal the source rows their plan names",
        "logits equal those of the model built from the spec at run time",
        "broken checkpoints fail to load, naming the key",
        "typed-app: ok",
    ] {
        assert!(stdout.contains(line), "missing `{line}`:\n{stdout}");
    }
}
