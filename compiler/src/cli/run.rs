//! `modelc run`: greedy continuation of a prompt on a checkpoint or a spec with random weights,
//! on the CPU reference interpreter or (`--device cuda`) the compiled program on the GPU.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::common::{align_biases, load_spec, lower, place, placement, refuse_checkpoint_output};
use modelc::reference::{DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{layout, ModelSpec};
use modelc_runtime::cuda::executor::{BoxError, ExecConfig, Executor, WeightTensor};
use modelc_runtime::cuda::{Gpu, KernelCache};
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::{check_layout, write_file_atomic, write_safetensors, Checkpoint, WeightsError};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PrecisionArg {
    F32,
    F64,
}

/// Arguments of `modelc run`.
#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint directory (config.json + safetensors), or a spec file (random weights).
    pub model: PathBuf,
    /// Where to run: the CPU reference interpreter, or the compiled kernels on the first GPU.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Prompt token ids, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub prompt_ids: Vec<u32>,
    /// Tokens to generate greedily after the prompt; prompt plus new tokens must fit the model's
    /// context (`embeddings.max_position_embeddings`).
    #[arg(long, default_value_t = 8)]
    pub max_new_tokens: usize,
    /// Write the logits of every prompt position and decode step to this safetensors file
    /// (written atomically; an existing file is refused unless --force; never inside a
    /// checkpoint).
    #[arg(long)]
    pub logits_out: Option<PathBuf>,
    /// Replace an existing --logits-out file.
    #[arg(long, requires = "logits_out")]
    pub force: bool,
    /// Seed of the random weights when MODEL is a spec.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
    /// Arithmetic of the CPU reference (f32 rounds every op's output to f32) [default: f32].
    /// Only with --device cpu.
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Delta-rule chunk size for GDN/KDA on the CPU (0: the recurrent form) [default: 64].
    /// Only with --device cpu.
    #[arg(long)]
    pub chunk: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    if args.device == Device::Cuda {
        // The GPU runs the compiled bf16 kernels; these choose how the CPU reference computes.
        for (flag, given) in [
            ("--precision", args.precision.is_some()),
            ("--chunk", args.chunk.is_some()),
        ] {
            if given {
                bail!("{flag} sets how the CPU reference computes; it applies with --device cpu only");
            }
        }
        return run_cuda(&args);
    }
    let mut spec = load_spec(&args.model, &[])?;
    check_request(&spec, &args, BYTES_PER_CPU_WEIGHT)?;
    let weights = if args.model.is_dir() {
        let ckpt = Checkpoint::open(&args.model)?;
        for note in align_biases(&mut spec, |k| ckpt.contains(k)) {
            eprintln!("note: {note}");
        }
        let expected = weight_layout(&spec);
        WeightStore::from_checkpoint(&ckpt, &expected).with_context(|| format!("loading {}", args.model.display()))?
    } else {
        WeightStore::random(&weight_layout(&spec), args.seed)
    };
    let graph = place(lower(&spec)?, &placement(&spec, args.placement.as_deref())?)?;
    let opts = InterpOptions {
        precision: match args.precision.unwrap_or(PrecisionArg::F32) {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        },
        delta_rule: match args.chunk.unwrap_or(64) {
            0 => DeltaRuleForm::Recurrent,
            n => DeltaRuleForm::Chunked(n),
        },
    };
    let keep_logits = args.logits_out.is_some();
    let result = generate(
        &graph,
        &weights,
        &args.prompt_ids,
        args.max_new_tokens,
        keep_logits,
        opts,
    )?;
    println!("prompt:       {:?}", args.prompt_ids);
    println!("continuation: {:?}", result.generated);
    println!(
        "cpu reference: prefill {} tokens in {:.3} s, decode {} tokens in {:.3} s",
        args.prompt_ids.len(),
        result.prefill_secs,
        result.generated.len().saturating_sub(1),
        result.decode_secs
    );
    if let Some(path) = &args.logits_out {
        let flat = |rows: &[Vec<f64>]| rows.iter().flatten().map(|&x| x as f32).collect::<Vec<f32>>();
        write_logits(
            path,
            args.force,
            spec.vocab_size,
            &args.prompt_ids,
            &result.generated,
            &flat(&result.prompt_logits),
            &flat(&result.decode_logits),
        )?;
    }
    Ok(())
}

/// Writes `prompt_logits` `[prompt, vocab]`, `prompt_ids`, `generated_ids` and (when there were
/// decode steps) `decode_logits` `[steps, vocab]`, all logits f32.
fn write_logits(
    path: &Path,
    force: bool,
    vocab: usize,
    prompt: &[u32],
    generated: &[u32],
    prompt_logits: &[f32],
    decode_logits: &[f32],
) -> Result<()> {
    let ids = |v: &[u32]| -> Result<HostTensor> {
        Ok(HostTensor::from_i64(
            vec![v.len()],
            &v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(),
        )?)
    };
    let rows = |v: &[f32]| v.len() / vocab.max(1);
    let mut tensors = vec![
        (
            "prompt_logits".to_string(),
            HostTensor::from_f32(vec![rows(prompt_logits), vocab], prompt_logits)?,
        ),
        ("prompt_ids".to_string(), ids(prompt)?),
        ("generated_ids".to_string(), ids(generated)?),
    ];
    if !decode_logits.is_empty() {
        tensors.push((
            "decode_logits".to_string(),
            HostTensor::from_f32(vec![rows(decode_logits), vocab], decode_logits)?,
        ));
    }
    write_file_atomic(path, force, |tmp| write_safetensors(tmp, &tensors))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The outcome of a greedy generation.
pub struct Generation {
    /// One row of logits per prompt position.
    pub prompt_logits: Vec<Vec<f64>>,
    /// One row per decode step (the logits of the step that consumed a generated token).
    pub decode_logits: Vec<Vec<f64>>,
    pub generated: Vec<u32>,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

/// The first index of the largest value (NaN never wins).
fn argmax<T: PartialOrd + Copy>(row: &[T]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Prefill the prompt, then `new_tokens` greedy steps (the last generated token is not fed back).
/// Decode logits are kept only when `keep_logits` (prompt logits always: the prefill makes them).
fn generate(
    graph: &modelc::ir::Graph,
    weights: &WeightStore,
    prompt: &[u32],
    new_tokens: usize,
    keep_logits: bool,
    opts: InterpOptions,
) -> Result<Generation> {
    let mut session = Session::new(graph, weights, 1, opts)?;
    let t0 = Instant::now();
    let logits = session.forward(&[prompt.to_vec()])?;
    let vocab = logits.last_dim();
    let prompt_logits: Vec<Vec<f64>> = logits.data.chunks(vocab).map(<[f64]>::to_vec).collect();
    for (position, row) in prompt_logits.iter().enumerate() {
        check_finite(row, || format!("prompt position {position}"))?;
    }
    let prefill_secs = t0.elapsed().as_secs_f64();
    let mut generated = Vec::new();
    let mut decode_logits = Vec::new();
    let t1 = Instant::now();
    let mut last = prompt_logits.last().map(|r| argmax(r)).unwrap_or(0);
    for step in 0..new_tokens {
        generated.push(last);
        if step + 1 == new_tokens {
            break;
        }
        let logits = session.forward(&[vec![last]])?;
        check_finite(&logits.data, || format!("decode step {}", step + 1))?;
        last = argmax(&logits.data);
        if keep_logits {
            decode_logits.push(logits.data);
        }
    }
    Ok(Generation {
        prompt_logits,
        decode_logits,
        generated,
        prefill_secs,
        decode_secs: t1.elapsed().as_secs_f64(),
    })
}

/// Host bytes per weight of the CPU reference (it computes in f64).
const BYTES_PER_CPU_WEIGHT: u64 = 8;

/// Refuses, before anything is loaded or allocated, what cannot run: an empty prompt, ids outside
/// the vocabulary, more positions than the model's context, an existing or checkpoint-inner
/// `--logits-out`, and weights (at `weight_bytes` each) plus kept logits beyond the memory
/// available.
fn check_request(spec: &ModelSpec, args: &Args, weight_bytes: u64) -> Result<()> {
    let prompt = args.prompt_ids.len();
    if prompt == 0 {
        bail!("--prompt-ids is empty");
    }
    if let Some(&bad) = args.prompt_ids.iter().find(|&&id| id as usize >= spec.vocab_size) {
        bail!(
            "prompt id {bad} is out of the vocabulary (vocab_size {})",
            spec.vocab_size
        );
    }
    let context = spec.max_position_embeddings;
    let positions = prompt.checked_add(args.max_new_tokens).filter(|&n| n <= context);
    let Some(positions) = positions else {
        bail!(
            "--max-new-tokens {}: the prompt ({prompt} tokens) plus the new tokens exceed the model's context \
             of {context} positions (embeddings.max_position_embeddings); at most {} new tokens fit",
            args.max_new_tokens,
            context.saturating_sub(prompt)
        );
    };
    if let Some(path) = &args.logits_out {
        if !args.force && std::fs::symlink_metadata(path).is_ok() {
            return Err(WeightsError::AlreadyExists { path: path.clone() }.into());
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        refuse_checkpoint_output(dir, &args.model).context("--logits-out")?;
    }
    let weights = (modelc::spec::parameter_count(spec) as u64).saturating_mul(weight_bytes);
    // Kept logits: f64 rows on the CPU, then an f32 copy for the file.
    let logits = match args.logits_out {
        Some(_) => (positions as u64)
            .saturating_mul(spec.vocab_size as u64)
            .saturating_mul(12),
        None => 0,
    };
    let needed = weights.saturating_add(logits);
    if let Some(available) = available_memory() {
        if needed > available {
            bail!(
                "{} needs about {:.1} GiB of host memory ({} parameters at {weight_bytes} bytes{}), but only {:.1} GiB \
                 is available",
                args.model.display(),
                needed as f64 / GIB,
                modelc::spec::parameter_count(spec),
                if logits > 0 { ", plus the kept logits" } else { "" },
                available as f64 / GIB
            );
        }
    }
    Ok(())
}

const GIB: f64 = (1u64 << 30) as f64;

/// `MemAvailable` of `/proc/meminfo`, in bytes (None where it cannot be read).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses logits with NaN or ±Inf (greedy decoding would pick token 0 forever), naming where.
fn check_finite<T: Copy + Into<f64>>(row: &[T], at: impl Fn() -> String) -> Result<()> {
    let bad = row.iter().filter(|&&x| !x.into().is_finite()).count();
    if bad > 0 {
        bail!(
            "the logits of {} are not finite ({bad} of {} values are NaN or Inf): the weights hold non-finite \
             values or the computation overflowed (`modelc convert` warns about non-finite tensors)",
            at(),
            row.len()
        );
    }
    Ok(())
}

fn weight_layout(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect()
}

/// A compiled program on the GPU with its weights loaded.
pub(super) struct CudaModel {
    pub exec: Executor,
    /// `name, arch` of the GPU.
    pub device: String,
}

/// Compiles `spec` (read from `model`, placement-specialised) to its program and kernels and
/// loads the weights onto the first GPU: checkpoint tensors through the mmap when `model` is a
/// checkpoint directory, else random ones drawn from `seed`. Prints a note on what was set up.
pub(super) fn load_cuda_model(
    model: &Path,
    mut spec: ModelSpec,
    placement_arg: Option<&str>,
    seed: u64,
    cfg: ExecConfig,
) -> Result<CudaModel> {
    let expected = weight_layout(&spec);
    let ckpt = if model.is_dir() {
        let ckpt = Checkpoint::open(model)?;
        for note in align_biases(&mut spec, |k| ckpt.contains(k)) {
            eprintln!("note: {note}");
        }
        let expected = weight_layout(&spec);
        check_layout(&ckpt, &expected).with_context(|| format!("loading {}", model.display()))?;
        Some(ckpt)
    } else {
        None
    };
    let name = model
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().to_string());
    let place = placement(&spec, placement_arg)?;
    let (cg, program) = modelc::codegen::compile(&spec, &place, &name)
        .with_context(|| format!("generating the GPU program of {}", model.display()))?;
    let sources: BTreeMap<String, String> = cg.kernels.iter().map(|k| (k.name.clone(), k.source.clone())).collect();

    let t_load = Instant::now();
    let gpu = Gpu::new(0).context("--device cuda needs a CUDA GPU")?;
    let device = format!("{}, {}", gpu.name(), gpu.arch());
    let cache = KernelCache::from_env()?;
    // Setting up takes seconds on a first run (kernels compiled, then cached) or a large model.
    // Cleared also when set-up fails and the spinner is dropped.
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_finish(indicatif::ProgressFinish::AndClear)
        .with_message(format!(
            "setting up on {device}: kernels (compiled on first use, cached in {}), weights",
            cache.dir().display()
        ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let exec = match &ckpt {
        Some(ckpt) => Executor::new(
            gpu,
            program,
            &sources,
            |k: &str| ckpt.get(k).map(WeightTensor::View).map_err(|e| Box::new(e) as BoxError),
            cfg,
            &cache,
        )?,
        None => {
            let needed: Vec<String> = program
                .weights
                .iter()
                .flat_map(|w| w.parts.iter().map(|p| p.key.clone()))
                .collect();
            let random = random_weights(&expected, &needed, seed)?;
            Executor::new(
                gpu,
                program,
                &sources,
                |k: &str| {
                    random
                        .get(k)
                        .map(|t| WeightTensor::View(t.view()))
                        .ok_or_else(|| format!("`{k}` is not in the layout of the spec").into())
                },
                cfg,
                &cache,
            )?
        }
    };
    spinner.finish_and_clear();
    let mem = exec.memory();
    eprintln!(
        "note: {device}: {} kernel modules; {} CUBINs compiled, {} from the cache at {} (the program's and the \
         runtime's own); weights {:.1} MiB, states {:.1} MiB, \
         buffers {:.1} MiB; set up in {:.2} s",
        exec.program().kernels.len(),
        cache.misses(),
        cache.hits(),
        cache.dir().display(),
        mem.weights as f64 / 1048576.0,
        mem.states as f64 / 1048576.0,
        mem.buffers as f64 / 1048576.0,
        t_load.elapsed().as_secs_f64()
    );
    Ok(CudaModel { exec, device })
}

/// `--device cuda`: the compiled program on the GPU ([`load_cuda_model`]) prefills the prompt and
/// decodes greedily, as the CPU path does.
fn run_cuda(args: &Args) -> Result<()> {
    let spec = load_spec(&args.model, &[])?;
    // Checkpoint weights go to the GPU through the mmap; random ones are drawn on the host.
    check_request(&spec, args, if args.model.is_dir() { 0 } else { 2 })?;
    let max_len = args.prompt_ids.len() + args.max_new_tokens.max(1);
    let cfg = ExecConfig::new(max_len, 1);
    let CudaModel { mut exec, device } = load_cuda_model(&args.model, spec, args.placement.as_deref(), args.seed, cfg)?;

    let vocab = exec.vocab();
    let t0 = Instant::now();
    // Every prompt position's logits only when they are written out.
    let prompt_logits = if args.logits_out.is_some() {
        exec.prefill(0, &args.prompt_ids)?
    } else {
        exec.prefill_last(0, &args.prompt_ids)?
    };
    for (position, row) in prompt_logits.chunks(vocab.max(1)).enumerate() {
        check_finite(row, || format!("prompt position {position}"))?;
    }
    let prefill_secs = t0.elapsed().as_secs_f64();
    let mut generated = Vec::new();
    let mut decode_logits: Vec<f32> = Vec::new();
    let mut last = prompt_logits
        .get(prompt_logits.len().saturating_sub(vocab)..)
        .map_or(0, argmax);
    let t1 = Instant::now();
    for step in 0..args.max_new_tokens {
        generated.push(last);
        if step + 1 == args.max_new_tokens {
            break;
        }
        let logits = exec.decode(&[last])?;
        check_finite(&logits, || format!("decode step {}", step + 1))?;
        last = argmax(&logits);
        if args.logits_out.is_some() {
            decode_logits.extend(logits);
        }
    }
    let decode_secs = t1.elapsed().as_secs_f64();
    let steps = generated.len().saturating_sub(1);
    println!("prompt:       {:?}", args.prompt_ids);
    println!("continuation: {generated:?}");
    let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    println!(
        "cuda ({device}): prefill {} tokens in {prefill_secs:.3} s ({:.1} tokens/s), decode {steps} tokens in \
         {decode_secs:.3} s ({:.1} tokens/s)",
        args.prompt_ids.len(),
        rate(args.prompt_ids.len(), prefill_secs),
        rate(steps, decode_secs),
    );
    if let Some(path) = &args.logits_out {
        write_logits(
            path,
            args.force,
            vocab,
            &args.prompt_ids,
            &generated,
            &prompt_logits,
            &decode_logits,
        )?;
    }
    Ok(())
}

/// The random weights `needed` (keys of `layout`), drawn from `seed` exactly as the CPU path
/// draws them (each tensor from its own stream, so drawing a subset gives the same values), and
/// stored as bf16 (they are bf16-representable). Drawn on every core: ~1B values take seconds.
fn random_weights(
    layout: &[(String, Vec<usize>)],
    needed: &[String],
    seed: u64,
) -> Result<HashMap<String, HostTensor>> {
    let shapes: HashMap<&str, &Vec<usize>> = layout.iter().map(|(k, s)| (k.as_str(), s)).collect();
    let mut todo: Vec<(String, Vec<usize>)> = Vec::new();
    for k in needed {
        let shape = shapes
            .get(k.as_str())
            .with_context(|| format!("the program needs `{k}`, which the spec's weight layout lacks"))?;
        if !todo.iter().any(|(t, _)| t == k) {
            todo.push((k.clone(), (*shape).clone()));
        }
    }
    // Largest first, dealt round-robin, so the threads finish together.
    todo.sort_by_key(|(_, s)| std::cmp::Reverse(s.iter().product::<usize>()));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(todo.len().max(1));
    let results: Vec<Result<Vec<(String, HostTensor)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<&(String, Vec<usize>)> = todo.iter().skip(t).step_by(threads).collect();
                scope.spawn(move || -> Result<Vec<(String, HostTensor)>> {
                    let mut out = Vec::with_capacity(mine.len());
                    for (k, shape) in mine {
                        let store = WeightStore::random(&[(k.clone(), shape.clone())], seed);
                        let a = store.get(k)?;
                        out.push((
                            k.clone(),
                            HostTensor::from_f64(shape.clone(), &a.data)?.cast(DType::BF16),
                        ));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a weight-drawing thread panicked")))
            })
            .collect()
    });
    let mut map = HashMap::new();
    for r in results {
        map.extend(r?);
    }
    Ok(map)
}
