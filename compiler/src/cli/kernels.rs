//! `modelc kernels`: the fused CUDA C of a spec, exactly as NVRTC compiles it, or (`--sass`) the
//! machine code NVRTC makes of it, disassembled by `cuobjdump`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::common::{load_spec, placement};
use modelc::codegen::{compile, kernels_of_steps, report::layer_runs};

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
    let cuobjdump = if args.sass { Some(find_cuobjdump()?) } else { None };
    for k in selected {
        let kernel = &cg.kernels[k];
        if let Some(tool) = &cuobjdump {
            print_sass(tool, kernel, &args.arch)?;
        } else if args.list {
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

/// `MODELC_CUOBJDUMP`, else the first `cuobjdump` on PATH.
fn find_cuobjdump() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MODELC_CUOBJDUMP") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("MODELC_CUOBJDUMP={}: no such file", p.display());
        }
        return Ok(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("cuobjdump"))
                .find(|p| p.is_file())
        })
        .context(
            "--sass needs cuobjdump (and nvdisasm): neither MODELC_CUOBJDUMP nor PATH has it; the PyPI wheels \
             nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm hold both (in nvidia/cu13/bin)",
        )
}

/// Compiles `kernel` to a CUBIN for `arch` and prints `cuobjdump -sass` of it (a module built for
/// another single target is named and skipped).
fn print_sass(cuobjdump: &Path, kernel: &modelc::codegen::kernel::Kernel, arch: &str) -> Result<()> {
    use modelc_runtime::cuda::nvrtc::{compile_cubin, default_include_dirs};
    if let Some(target) = kernel.target.as_deref().filter(|t| *t != arch) {
        println!("// ===== {}: built for {target} only, not {arch} =====", kernel.name);
        return Ok(());
    }
    let cubin = compile_cubin(&kernel.source, &kernel.name, arch, &default_include_dirs())
        .with_context(|| format!("compiling {} for {arch}", kernel.name))?;
    let dir = std::env::temp_dir().join(format!("modelc-sass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!("{}.cubin", kernel.name));
    std::fs::write(&file, cubin.bytes()).with_context(|| format!("writing {}", file.display()))?;
    // cuobjdump runs nvdisasm: look beside cuobjdump first (the wheels put both in one folder).
    let mut path = cuobjdump
        .parent()
        .map(Path::to_path_buf)
        .into_iter()
        .collect::<Vec<_>>();
    path.extend(std::env::var_os("PATH").iter().flat_map(std::env::split_paths));
    let out = Command::new(cuobjdump)
        .arg("-sass")
        .arg(&file)
        .env("PATH", std::env::join_paths(path)?)
        .output()
        .with_context(|| format!("running {}", cuobjdump.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        bail!(
            "{} -sass failed on {}: {}",
            cuobjdump.display(),
            kernel.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("// ===== kernels/{}.cu, SASS for {arch} =====", kernel.name);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
