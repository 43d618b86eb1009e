//! `modelc build`: parse, validate, lower, verify; write the IR, a summary, the kernels and the
//! program to DIR, which is also a Cargo crate of typed weights (`cli/typed_crate.rs`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
    modelc::codegen::cores::scan_out_waves_in_programs()?;
    modelc::codegen::cores::attention_decode_fused_in_programs()?;
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
    // The directory exists before the crate is generated (its Cargo.toml's path dependencies
    // are relative to where it resolves); a failed build removes it again if it made it.
    let made = !out.exists();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let crate_opts = CrateOptions {
        spec_path: &args.spec,
        surgeries: &args.surgeries,
        name: args.crate_name.as_deref(),
        deps: args.crate_deps,
    };
    // Everything is generated before anything is written: a build that fails (a shape beyond
    // a template's limits, an unreadable spec copy) leaves the directory as it was.
    let generated = generate(&spec, &lowered, &placed, &summary, &placement, &stem)
        .and_then(|outputs| Ok((outputs, typed_crate::generate(&crate_opts, &spec, &out)?)));
    let (outputs, package) = match generated {
        Ok(generated) => generated,
        Err(e) => {
            if made {
                // Only an empty directory goes: this build wrote nothing into it.
                let _ = std::fs::remove_dir(&out);
            }
            return Err(e);
        }
    };
    println!(
        "{}: {} layers, hidden {}, vocab {}",
        args.spec.display(),
        spec.layers.len(),
        spec.hidden_size,
        spec.vocab_size
    );
    print!("{}", outputs.summary);
    print!("{}", outputs.table);
    let crate_files = package.files.into_iter().map(|(rel, text)| (rel, text.into_bytes()));
    let files: Vec<(PathBuf, Vec<u8>)> = outputs.files.into_iter().chain(crate_files).collect();
    write_outputs(&out, &files)?;
    println!(
        "crate `{}`: Cargo.toml, src/lib.rs, spec/, README.md (typed weights; see README.md)",
        package.name
    );
    println!("wrote {}", out.display());
    Ok(())
}

/// What `modelc build` writes besides the crate, generated in memory.
struct Outputs {
    /// Paths relative to the output directory, with their contents.
    files: Vec<(PathBuf, Vec<u8>)>,
    /// The summary and the kernel table, as printed.
    summary: String,
    table: String,
}

/// The config, the IR dumps, the summary, and the fused kernels: `kernels/<name>.cu`,
/// `program.json`, `kernels.txt` (the table: kernels, launches per layer per token, bytes per
/// token against the minimum) and `plan.txt` (the fusion plan). Every valid spec must get
/// kernels, so a codegen failure (a shape beyond a mixer-core template's limits, an op without a
/// kernel) fails the build with the layer/mixer scope and the constraint.
fn generate(
    spec: &modelc::spec::ModelSpec,
    lowered: &modelc::ir::Graph,
    placed: &modelc::ir::Graph,
    summary: &modelc::ir::summary::Summary,
    placement: &modelc::passes::Placement,
    model: &str,
) -> Result<Outputs> {
    use modelc::codegen::{compile, report};
    let config = serde_json::to_string_pretty(&modelc::spec::to_config_json(spec))?;
    let text = summary.to_text();
    let mut files = vec![
        ("config.json".into(), config.into_bytes()),
        ("ir.lowered.txt".into(), to_text(lowered)?.into_bytes()),
        ("ir.lowered.dot".into(), to_dot(lowered)?.into_bytes()),
        ("ir.placed.txt".into(), to_text(placed)?.into_bytes()),
        ("summary.txt".into(), text.clone().into_bytes()),
        (
            "summary.json".into(),
            serde_json::to_string_pretty(summary)?.into_bytes(),
        ),
    ];
    let (cg, program) = compile(spec, placement, model)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("generating the CUDA kernels of `{model}`"))?;
    for k in &cg.kernels {
        files.push((
            Path::new("kernels").join(format!("{}.cu", k.name)),
            k.source.clone().into_bytes(),
        ));
    }
    let table = report::table(&cg, &program, spec, placement, REPORT_PAST);
    files.push((
        "program.json".into(),
        serde_json::to_string_pretty(&program)?.into_bytes(),
    ));
    files.push(("kernels.txt".into(), table.clone().into_bytes()));
    files.push(("plan.txt".into(), report::steps_text(&cg).into_bytes()));
    Ok(Outputs {
        files,
        summary: text,
        table,
    })
}

/// Writes `files` into `out`, each atomically, after removing what an earlier build into the
/// same directory left that this one does not write and would be mistaken for its own: kernel
/// sources, spec copies, and `kernels.error.txt` (what older builds wrote instead of failing).
fn write_outputs(out: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let ours: HashSet<PathBuf> = files.iter().map(|(rel, _)| out.join(rel)).collect();
    remove_stale(
        &out.join("kernels"),
        |p| p.extension().is_some_and(|e| e == "cu"),
        &ours,
    )?;
    remove_stale(&out.join("spec"), Path::is_file, &ours)?;
    let old_error = out.join("kernels.error.txt");
    if old_error.exists() {
        std::fs::remove_file(&old_error).with_context(|| format!("removing {}", old_error.display()))?;
    }
    for (rel, contents) in files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomic(&path, contents)?;
    }
    Ok(())
}

/// Removes the files of `dir` (if it exists) that `earlier` selects and `ours` does not hold.
fn remove_stale(dir: &Path, earlier: impl Fn(&Path) -> bool, ours: &HashSet<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if earlier(&path) && !ours.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The context length at which the kernel table reports decode traffic.
const REPORT_PAST: u64 = 1024;
