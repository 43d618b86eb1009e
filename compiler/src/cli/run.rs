//! `modelc run`: greedy continuation of a prompt on a checkpoint or a spec with random weights.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::common::{align_biases, load_spec, lower, place, placement};
use modelc::reference::{DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::layout;
use modelc_runtime::tensor::HostTensor;
use modelc_runtime::weights::{write_safetensors, Checkpoint};

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
        bail!("--device cuda: the GPU runtime is not available in this build yet; use --device cpu");
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
        let vocab = spec.vocab_size;
        let flat = |rows: &[Vec<f64>]| rows.iter().flatten().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut tensors = vec![
            (
                "prompt_logits".to_string(),
                HostTensor::from_f32(vec![result.prompt_logits.len(), vocab], &flat(&result.prompt_logits))?,
            ),
            (
                "prompt_ids".to_string(),
                HostTensor::from_i64(
                    vec![args.prompt_ids.len()],
                    &args.prompt_ids.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(),
                )?,
            ),
            (
                "generated_ids".to_string(),
                HostTensor::from_i64(
                    vec![result.generated.len()],
                    &result.generated.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(),
                )?,
            ),
        ];
        if !result.decode_logits.is_empty() {
            tensors.push((
                "decode_logits".to_string(),
                HostTensor::from_f32(vec![result.decode_logits.len(), vocab], &flat(&result.decode_logits))?,
            ));
        }
        write_safetensors(path, &tensors)?;
        println!("wrote {}", path.display());
    }
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

fn argmax(row: &[f64]) -> u32 {
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

fn weight_layout(spec: &modelc::spec::ModelSpec) -> Vec<(String, Vec<usize>)> {
    layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect()
}
