//! `modelc bench`: warm whole-model timings of the compiled program on the GPU: prefill of T
//! tokens and decode steps at several batch sizes, each the median of repeated runs after a
//! warm-up (kernels loaded, GEMM algorithms chosen, decode graphs captured).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use super::common::load_spec;
use super::run::{load_cuda_model, CudaModel};
use modelc_runtime::cuda::executor::{ExecConfig, Phase};

/// Arguments of `modelc bench`.
#[derive(clap::Args)]
pub struct Args {
    /// A spec file (random weights) or a checkpoint directory.
    pub model: PathBuf,
    /// Prompt lengths to time prefill at, comma separated (each at most the model's context).
    #[arg(long, value_delimiter = ',', default_values_t = [512usize, 4096])]
    pub prefill_tokens: Vec<usize>,
    /// Batch sizes to time decode at, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    pub decode_batch: Vec<usize>,
    /// Tokens each decoding sequence holds before the timed steps.
    #[arg(long, default_value_t = 512)]
    pub decode_past: usize,
    /// Timed decode steps per batch size.
    #[arg(long, default_value_t = 64)]
    pub decode_steps: usize,
    /// Timed prefill runs per length (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seed of the random weights when MODEL is a spec.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Placement for stochastic layers: a sub-mixer name for all, or LAYER=NAME,...
    #[arg(long)]
    pub placement: Option<String>,
}

/// Decode steps run before timing: the first captures the CUDA graph of the batch size and picks
/// GEMM algorithms for its row count.
const DECODE_WARMUP: usize = 4;

/// One measured row.
struct Row {
    what: String,
    /// Median milliseconds per call (prefill) or per step (decode).
    ms: f64,
    tokens_per_s: f64,
    /// Weight bytes read per second (decode: each step reads every weight once).
    weight_gb_s: Option<f64>,
}

pub fn run(args: Args) -> Result<()> {
    let spec = load_spec(&args.model, &[])?;
    if args.prefill_tokens.is_empty() && args.decode_batch.is_empty() {
        bail!("nothing to time: give --prefill-tokens or --decode-batch");
    }
    if args.runs == 0 || args.decode_steps == 0 {
        bail!("--runs and --decode-steps must be at least 1");
    }
    if let Some(&zero) = args.prefill_tokens.iter().chain(&args.decode_batch).find(|&&n| n == 0) {
        bail!("prefill lengths and decode batch sizes must be at least 1 (got {zero})");
    }
    let context = spec.max_position_embeddings;
    let longest = args.prefill_tokens.iter().copied().max().unwrap_or(0);
    let decode_len = args.decode_past + DECODE_WARMUP + args.decode_steps;
    let max_len = longest.max(if args.decode_batch.is_empty() { 0 } else { decode_len });
    if max_len > context {
        bail!(
            "{}: the longest sequence timed is {max_len} tokens (prefill {longest}, or decode past {} + {} \
             steps + {DECODE_WARMUP} warm-up) but the model's context (max_position_embeddings) is {context}",
            args.model.display(),
            args.decode_past,
            args.decode_steps
        );
    }
    let slots = args.decode_batch.iter().copied().max().unwrap_or(1);
    let mut cfg = ExecConfig::new(max_len, slots);
    cfg.max_prefill_tokens = max_len.max(1);
    let CudaModel { mut exec, device } = load_cuda_model(&args.model, spec, args.placement.as_deref(), args.seed, cfg)?;
    let vocab = exec.vocab().max(1);
    let token = |i: usize| ((i * 7919 + 13) % vocab) as u32;
    let weight_bytes = exec.decode_weight_bytes();
    let mut rows = Vec::new();

    for &t in &args.prefill_tokens {
        let prompt: Vec<u32> = (0..t).map(token).collect();
        exec.reset(0)?;
        exec.run(Phase::Prefill, 0, &[&prompt])?;
        let mut times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            exec.reset(0)?;
            let start = Instant::now();
            exec.run(Phase::Prefill, 0, &[&prompt])?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let ms = median(&mut times);
        rows.push(Row {
            what: format!("prefill, {t} tokens"),
            ms,
            tokens_per_s: t as f64 / ms * 1e3,
            weight_gb_s: None,
        });
    }

    for &batch in &args.decode_batch {
        exec.reset_all()?;
        let prompt: Vec<u32> = (0..args.decode_past.max(1)).map(token).collect();
        for slot in 0..batch {
            exec.prefill_last(slot, &prompt)?;
        }
        let step_tokens = |step: usize| -> Vec<u32> { (0..batch).map(|b| token(step * 31 + b * 7)).collect() };
        for step in 0..DECODE_WARMUP {
            exec.decode(&step_tokens(step))?;
        }
        let mut times = Vec::with_capacity(args.decode_steps);
        for step in 0..args.decode_steps {
            let toks = step_tokens(DECODE_WARMUP + step);
            let start = Instant::now();
            exec.decode(&toks)?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let ms = median(&mut times);
        rows.push(Row {
            what: format!("decode, batch {batch}, past {}", args.decode_past.max(1)),
            ms,
            tokens_per_s: batch as f64 / ms * 1e3,
            weight_gb_s: Some(weight_bytes as f64 / ms / 1e6),
        });
    }

    println!(
        "modelc bench {} on {device} ({} SMs): {} kernel modules, weights {:.1} MiB; medians of {} prefill runs / \
         {} decode steps, warm",
        args.model.display(),
        exec.sms(),
        exec.program().kernels.len(),
        exec.memory().weights as f64 / 1048576.0,
        args.runs,
        args.decode_steps,
    );
    println!("| phase | ms (per call / per step) | tokens/s | weights read GB/s |");
    println!("|---|---|---|---|");
    for r in &rows {
        let bw = r.weight_gb_s.map_or_else(String::new, |g| format!("{g:.0}"));
        println!("| {} | {:.3} | {:.0} | {bw} |", r.what, r.ms, r.tokens_per_s);
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
