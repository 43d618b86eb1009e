//! `modelc run`: greedy continuation of a prompt on a checkpoint or a spec with random weights,
//! on the CPU reference interpreter or (`--device cuda`) the compiled program on the GPU.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::common::{align_biases, load_spec, lower, place, placement};
use modelc::reference::{DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{layout, ModelSpec};
use modelc_runtime::cuda::executor::{BoxError, ExecConfig, Executor, WeightTensor};
use modelc_runtime::cuda::{Gpu, KernelCache};
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::{check_layout, write_safetensors, Checkpoint};

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
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Prompt token ids, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub prompt_ids: Vec<u32>,
    /// Tokens to generate greedily after the prompt.
    #[arg(long, default_value_t = 8)]
    pub max_new_tokens: usize,
    /// Write the logits of every prompt position and decode step to this safetensors file.
    #[arg(long)]
    pub logits_out: Option<PathBuf>,
    /// Seed of the random weights when MODEL is a spec.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
    /// Arithmetic of the CPU reference (f32 rounds every op's output to f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Delta-rule chunk size for GDN/KDA on the CPU (0: the recurrent form).
    #[arg(long, default_value_t = 64)]
    pub chunk: usize,
}

pub fn run(args: Args) -> Result<()> {
    if args.device == Device::Cuda {
        return run_cuda(&args);
    }
    let mut spec = load_spec(&args.model, &[])?;
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
    if let Some(&bad) = args.prompt_ids.iter().find(|&&id| id as usize >= spec.vocab_size) {
        bail!(
            "prompt id {bad} is out of the vocabulary (vocab_size {})",
            spec.vocab_size
        );
    }
    let graph = place(lower(&spec)?, &placement(&spec, args.placement.as_deref())?)?;
    let opts = InterpOptions {
        precision: match args.precision {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        },
        delta_rule: if args.chunk == 0 {
            DeltaRuleForm::Recurrent
        } else {
            DeltaRuleForm::Chunked(args.chunk)
        },
    };
    let result = generate(&graph, &weights, &args.prompt_ids, args.max_new_tokens, opts)?;
    println!("prompt:       {:?}", args.prompt_ids);
    println!("continuation: {:?}", result.generated);
    println!(
        "cpu reference: prefill {} tokens in {:.3} s, decode {} tokens in {:.3} s",
        args.prompt_ids.len(),
        result.prefill_secs,
        result.decode_logits.len(),
        result.decode_secs
    );
    if let Some(path) = &args.logits_out {
        let flat = |rows: &[Vec<f64>]| rows.iter().flatten().map(|&x| x as f32).collect::<Vec<f32>>();
        write_logits(
            path,
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
    write_safetensors(path, &tensors)?;
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
fn generate(
    graph: &modelc::ir::Graph,
    weights: &WeightStore,
    prompt: &[u32],
    new_tokens: usize,
    opts: InterpOptions,
) -> Result<Generation> {
    if prompt.is_empty() {
        bail!("--prompt-ids is empty");
    }
    let mut session = Session::new(graph, weights, 1, opts)?;
    let t0 = Instant::now();
    let logits = session.forward(&[prompt.to_vec()])?;
    let vocab = logits.last_dim();
    let prompt_logits: Vec<Vec<f64>> = logits.data.chunks(vocab).map(<[f64]>::to_vec).collect();
    let prefill_secs = t0.elapsed().as_secs_f64();
    let mut generated = Vec::with_capacity(new_tokens);
    let mut decode_logits = Vec::new();
    let t1 = Instant::now();
    let mut last = prompt_logits.last().map(|r| argmax(r)).unwrap_or(0);
    for step in 0..new_tokens {
        generated.push(last);
        if step + 1 == new_tokens {
            break;
        }
        let logits = session.forward(&[vec![last]])?;
        last = argmax(&logits.data);
        decode_logits.push(logits.data);
    }
    Ok(Generation {
        prompt_logits,
        decode_logits,
        generated,
        prefill_secs,
        decode_secs: t1.elapsed().as_secs_f64(),
    })
}

fn weight_layout(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect()
}

/// `--device cuda`: compiles the spec (placement-specialised) to its program and kernels, loads
/// the weights onto the GPU (checkpoint tensors through the mmap, or random ones from the seed),
/// prefills the prompt and decodes greedily, as the CPU path does.
fn run_cuda(args: &Args) -> Result<()> {
    let mut spec = load_spec(&args.model, &[])?;
    let expected = weight_layout(&spec);
    let ckpt = if args.model.is_dir() {
        let ckpt = Checkpoint::open(&args.model)?;
        for note in align_biases(&mut spec, |k| ckpt.contains(k)) {
            eprintln!("note: {note}");
        }
        let expected = weight_layout(&spec);
        check_layout(&ckpt, &expected).with_context(|| format!("loading {}", args.model.display()))?;
        Some(ckpt)
    } else {
        None
    };
    if let Some(&bad) = args.prompt_ids.iter().find(|&&id| id as usize >= spec.vocab_size) {
        bail!(
            "prompt id {bad} is out of the vocabulary (vocab_size {})",
            spec.vocab_size
        );
    }
    if args.prompt_ids.is_empty() {
        bail!("--prompt-ids is empty");
    }
    let name = args
        .model
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().to_string());
    let place = placement(&spec, args.placement.as_deref())?;
    let (cg, program) = modelc::codegen::compile(&spec, &place, &name)
        .with_context(|| format!("generating the GPU program of {}", args.model.display()))?;
    let sources: BTreeMap<String, String> = cg.kernels.iter().map(|k| (k.name.clone(), k.source.clone())).collect();

    let t_load = Instant::now();
    let gpu = Gpu::new(0).context("--device cuda needs a CUDA GPU")?;
    let device = format!("{}, {}", gpu.name(), gpu.arch());
    let cache = KernelCache::from_env()?;
    let max_len = args.prompt_ids.len() + args.max_new_tokens.max(1);
    let cfg = ExecConfig::new(max_len, 1);
    let mut exec = match &ckpt {
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
            let random = random_weights(&expected, &needed, args.seed)?;
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
    let mem = exec.memory();
    eprintln!(
        "note: {device}: {} kernel modules ({} compiled, {} from the cache at {}); weights {:.1} MiB, states {:.1} MiB, \
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

    let vocab = exec.vocab();
    let t0 = Instant::now();
    // Every prompt position's logits only when they are written out.
    let prompt_logits = if args.logits_out.is_some() {
        exec.prefill(0, &args.prompt_ids)?
    } else {
        exec.prefill_last(0, &args.prompt_ids)?
    };
    let prefill_secs = t0.elapsed().as_secs_f64();
    let mut generated = Vec::with_capacity(args.max_new_tokens);
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
        last = argmax(&logits);
        decode_logits.extend(logits);
    }
    let decode_secs = t1.elapsed().as_secs_f64();
    let steps = decode_logits.len() / vocab.max(1);
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
