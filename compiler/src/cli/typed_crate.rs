//! The Cargo crate `modelc build` writes into its output directory (`modelc::typed::package`):
//! the spec and surgeries are copied under `spec/`, and `src/lib.rs` calls `modelc_macros` on
//! them, so the crate's types always match what was built.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use modelc::spec::ModelSpec;
use modelc::typed::package::{checkout_root, package_name, CopiedFile, Deps, Package};

/// How the generated crate depends on the modelc crates.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrateDeps {
    /// Path dependencies on the checkout this modelc was built from.
    Path,
    /// Version dependencies (`modelc-macros = "<this version>"`, ...).
    Version,
}

/// Options of the crate output.
pub struct CrateOptions<'a> {
    pub spec_path: &'a Path,
    pub surgeries: &'a [PathBuf],
    pub name: Option<&'a str>,
    pub deps: CrateDeps,
}

fn copied(file: &Path, name: String) -> Result<CopiedFile> {
    let contents = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(CopiedFile { name, contents })
}

/// `name`, or `<i>-name` when an earlier file took it.
fn unique(name: String, taken: &[String], index: usize) -> String {
    if taken.contains(&name) {
        format!("{index}-{name}")
    } else {
        name
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "spec.yaml".into())
}

/// The crate's files, relative to `out` (which exists), and its package name. Nothing is
/// written: `modelc build` writes them with its other outputs.
pub struct CrateFiles {
    pub name: String,
    pub files: Vec<(PathBuf, String)>,
}

/// Generates the crate files for `out`.
pub fn generate(opts: &CrateOptions<'_>, spec: &ModelSpec, out: &Path) -> Result<CrateFiles> {
    let (spec_file, _) = modelc::spec::spec_file(opts.spec_path)?;
    let spec_copy = copied(&spec_file, file_name(&spec_file))?;
    let mut taken = vec![spec_copy.name.clone()];
    let mut surgeries = Vec::with_capacity(opts.surgeries.len());
    for (i, s) in opts.surgeries.iter().enumerate() {
        let name = unique(file_name(s), &taken, i + 1);
        taken.push(name.clone());
        surgeries.push(copied(s, name)?);
    }
    let dir_name = out
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "model".into());
    let name = package_name(opts.name.unwrap_or(&dir_name));
    let deps = match opts.deps {
        CrateDeps::Path => Deps::Path(checkout_root()),
        CrateDeps::Version => Deps::Version(env!("CARGO_PKG_VERSION").to_string()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let package = Package {
        name: name.clone(),
        spec_file: spec_copy,
        surgeries,
        spec,
        deps,
        command: format!("modelc {}", args.join(" ")),
    };
    Ok(CrateFiles {
        name,
        files: package.files(out),
    })
}
