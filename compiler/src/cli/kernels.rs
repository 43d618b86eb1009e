//! `modelc kernels`: the fused CUDA C of a spec, exactly as NVRTC compiles it, or (`--sass`) the
//! machine code NVRTC makes of it, disassembled by `cuobjdump`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::common::{load_spec, placement};
use modelc::codegen::kernel::Kernel;
use modelc::codegen::sass::{disassemble, find_cuobjdump, undefined_descriptors};
use modelc::codegen::{compile, kernels_of_steps, report::layer_runs};
use modelc_runtime::parallel::par_map;

/// Arguments of `modelc kernels`.
#[derive(clap::Args)]
pub struct Args {
    /// The spec: a YAML/JSON Apriel2 config, or a checkpoint directory with config.json.
    pub spec: PathBuf,
    /// Surgery YAMLs applied in order first.
    #[arg(short = 's', long = "surgery")]
    pub surgeries: Vec<PathBuf>,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
    /// Only the kernels layer N launches.
    #[arg(long, conflicts_with = "mixer")]
    pub layer: Option<usize>,
    /// Only the kernels of mixers of this kind (attention, sliding_window, gdn, kda, mamba).
    #[arg(long)]
    pub mixer: Option<String>,
    /// Names and fused ops only, no source.
    #[arg(long)]
    pub list: bool,
    /// Print the fusion plan (every step and the IR nodes it covers) instead of sources.
    #[arg(long)]
    pub steps: bool,
    /// Print the machine code (SASS) instead of sources: each module compiled to a CUBIN by
    /// NVRTC and disassembled by `cuobjdump -sass` (`MODELC_CUOBJDUMP`, else `cuobjdump` on PATH;
    /// it needs `nvdisasm` beside it or on PATH). No GPU needed.
    #[arg(long, conflicts_with_all = ["list", "steps"])]
    pub sass: bool,
    /// The real architecture `--sass` compiles for; modules built for one target only (the
    /// Hopper forms, `sm_90a`) are skipped for another.
    #[arg(long, default_value = "sm_90a", requires = "sass")]
    pub arch: String,
}

pub fn run(args: Args) -> Result<()> {
    let spec = load_spec(&args.spec, &args.surgeries)?;
    let placement = placement(&spec, args.placement.as_deref())?;
    let model = args
        .spec
        .file_stem()
        .map_or("model".to_string(), |s| s.to_string_lossy().to_string());
    let (cg, _) = compile(&spec, &placement, &model)?;
    if let Some(l) = args.layer {
        if l >= spec.layers.len() {
            bail!(
                "--layer {l}: the model has {} layers (0..{})",
                spec.layers.len(),
                spec.layers.len()
            );
        }
    }
    let keep = |step: &modelc::passes::fuse::Step| match (&args.layer, &args.mixer) {
        (Some(l), _) => step.layer == Some(*l),
        (None, Some(kind)) => {
            step.scope.contains(".mixer") && step.layer.is_some_and(|l| layer_runs(&spec, &placement, l, kind))
        }
        (None, None) => true,
    };
    if args.steps {
        print!("{}", modelc::codegen::report::steps_text_filtered(&cg, keep));
        return Ok(());
    }
    let selected = kernels_of_steps(&cg, keep);
    if selected.is_empty() {
        if let Some(kind) = &args.mixer {
            bail!("no layer runs a `{kind}` mixer (kinds: attention, sliding_window, gdn, kda, mamba)");
        }
    }
    if args.sass {
        let tool = find_cuobjdump()?;
        // Compiled and disassembled on every core, printed in order.
        let kernels: Vec<&Kernel> = selected.iter().map(|&k| &cg.kernels[k]).collect();
        let listings = par_map(&kernels, |kernel| sass_of(&tool, kernel, &args.arch));
        for (kernel, listing) in kernels.into_iter().zip(listings) {
            print_sass(kernel, &args.arch, listing?);
        }
        return Ok(());
    }
    for k in selected {
        let kernel = &cg.kernels[k];
        if args.list {
            println!(
                "{}  ({}; entries: {})",
                kernel.name,
                kernel.kind,
                kernel.entries.join(", ")
            );
        } else {
            println!("// ===== kernels/{}.cu =====", kernel.name);
            print!("{}", kernel.source);
            println!();
        }
    }
    Ok(())
}

/// The SASS of `kernel` for `arch`; `None` for a module built for another single target.
fn sass_of(cuobjdump: &Path, kernel: &Kernel, arch: &str) -> Result<Option<String>> {
    if kernel.target.as_deref().is_some_and(|t| t != arch) {
        return Ok(None);
    }
    Ok(Some(disassemble(cuobjdump, &kernel.source, &kernel.name, arch)?))
}

/// Prints `kernel`'s SASS listing for `arch` (or that it is built for another target only), and
/// warns on stderr of memory instructions that read a descriptor nothing writes
/// (`codegen::sass::undefined_descriptors`: such a kernel traps when it runs).
fn print_sass(kernel: &Kernel, arch: &str, listing: Option<String>) {
    let Some(listing) = listing else {
        let target = kernel.target.as_deref().unwrap_or_default();
        println!("// ===== {}: built for {target} only, not {arch} =====", kernel.name);
        return;
    };
    println!("// ===== kernels/{}.cu, SASS for {arch} =====", kernel.name);
    print!("{listing}");
    for bad in undefined_descriptors(&listing) {
        eprintln!("warning: kernels/{}.cu: {bad}", kernel.name);
    }
}
