//! `modelc build`: parse, validate, lower, verify; write the IR, a summary, the kernels and the
//! program to DIR, which is also a Cargo crate of typed weights (`cli/typed_crate.rs`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::common::{load_spec, lower, place, placement, refuse_checkpoint_output, write_atomic};
use super::typed_crate::{self, CrateDeps, CrateOptions};
use modelc::ir::{dot::to_dot, summary::summarize, text::to_text};

/// Arguments of `modelc build`.
#[derive(clap::Args)]
pub struct Args {
    /// The spec: a YAML/JSON Apriel2 config, or a checkpoint directory with config.json.
    pub spec: PathBuf,
    /// Surgery YAMLs applied in order before building.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Output directory (default: build/<spec name>); never inside a checkpoint.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
    /// Name of the Cargo package written to DIR (default: DIR's name).
    #[arg(long)]
    pub crate_name: Option<String>,
    /// How that package depends on modelc: path dependencies on this checkout, or version
    /// dependencies.
    #[arg(long, value_enum, default_value = "path")]
    pub crate_deps: CrateDeps,
}

pub fn run(args: Args) -> Result<()> {
    // Codegen's settings, checked before anything is written.
    modelc::codegen::cores::scan_out_in_programs()?;
    let spec = load_spec(&args.spec, &args.surgeries)?;
    let lowered = lower(&spec)?;
    let placement = placement(&spec, args.placement.as_deref())?;
    let placed = place(lowered.clone(), &placement)?;
    let summary = summarize(&spec, &lowered, &placed);

    let stem = args
        .spec
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let out = args.out.unwrap_or_else(|| PathBuf::from("build").join(&stem));
    refuse_checkpoint_output(&out, &args.spec)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let config = serde_json::to_string_pretty(&modelc::spec::to_config_json(&spec))?;
    write_atomic(&out.join("config.json"), config.as_bytes())?;
    write_atomic(&out.join("ir.lowered.txt"), to_text(&lowered)?.as_bytes())?;
    write_atomic(&out.join("ir.lowered.dot"), to_dot(&lowered)?.as_bytes())?;
    write_atomic(&out.join("ir.placed.txt"), to_text(&placed)?.as_bytes())?;
    let text = summary.to_text();
    write_atomic(&out.join("summary.txt"), text.as_bytes())?;
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{}: {} layers, hidden {}, vocab {}",
        args.spec.display(),
        spec.layers.len(),
        spec.hidden_size,
        spec.vocab_size
    );
    print!("{text}");
    write_kernels(&spec, &placement, &stem, &out)?;
    let crate_opts = CrateOptions {
        spec_path: &args.spec,
        surgeries: &args.surgeries,
        name: args.crate_name.as_deref(),
        deps: args.crate_deps,
    };
    let package = typed_crate::write(&crate_opts, &spec, &out)?;
    println!("crate `{package}`: Cargo.toml, src/lib.rs, spec/, README.md (typed weights; see README.md)");
    println!("wrote {}", out.display());
    Ok(())
}

/// Fuses and generates the kernels: `kernels/<name>.cu`, `program.json`, `kernels.txt` (the
/// table: kernels, launches per layer per token, bytes per token against the minimum) and
/// `plan.txt` (the fusion plan). Every valid spec must get kernels, so a codegen failure (a
/// shape beyond a mixer-core template's limits, an op without a kernel) fails the build with the
/// layer/mixer scope and the constraint; the kernel outputs of an earlier build are removed
/// first, so that none is mistaken for this spec's.
fn write_kernels(
    spec: &modelc::spec::ModelSpec,
    placement: &modelc::passes::Placement,
    model: &str,
    out: &std::path::Path,
) -> Result<()> {
    use modelc::codegen::{compile, report};
    // `kernels.error.txt` is what older builds wrote instead of failing.
    for stale in ["kernels.error.txt", "program.json", "kernels.txt", "plan.txt"] {
        let path = out.join(stale);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    remove_kernel_sources(&out.join("kernels"))?;
    let (cg, program) = compile(spec, placement, model)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("generating the CUDA kernels of `{model}`"))?;
    let dir = out.join("kernels");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for k in &cg.kernels {
        write_atomic(&dir.join(format!("{}.cu", k.name)), k.source.as_bytes())?;
    }
    write_atomic(
        &out.join("program.json"),
        serde_json::to_string_pretty(&program)?.as_bytes(),
    )?;
    let table = report::table(&cg, &program, spec, placement, REPORT_PAST);
    write_atomic(&out.join("kernels.txt"), table.as_bytes())?;
    write_atomic(&out.join("plan.txt"), report::steps_text(&cg).as_bytes())?;
    print!("{table}");
    Ok(())
}

/// Removes the `.cu` files of an earlier build from `dir` (if it exists).
fn remove_kernel_sources(dir: &std::path::Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cu") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The context length at which the kernel table reports decode traffic.
const REPORT_PAST: u64 = 1024;
