//! `modelc bench`: warm whole-model timings of the compiled program on the GPU: prefill of T
//! tokens (with every row's logits, and with the last token's only, as generation runs it) and
//! decode steps at several batch sizes, each the median of repeated runs after a warm-up
//! (kernels loaded, GEMM algorithms chosen, decode graphs captured).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use super::common::load_spec;
use super::run::{load_cuda_model, CudaModel};
use modelc_runtime::cuda::executor::{ExecConfig, Phase, StepTime};
use modelc_runtime::program::Step;

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
    /// Also profile each prefill length and decode batch size (`Executor::profile`: device time
    /// between steps, launched one by one, not as a graph) and print the time per step kind and
    /// per GEMM shape.
    #[arg(long)]
    pub profile: bool,
}

/// Bytes each way of the device-to-device copy that measures the bandwidth floor.
const COPY_BYTES: usize = 512 << 20;

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
    let profiled = if args.profile { PROFILE_RUNS } else { 0 };
    let decode_len = args.decode_past + DECODE_WARMUP + args.decode_steps + profiled;
    let max_len = longest.max(if args.decode_batch.is_empty() { 0 } else { decode_len });
    if max_len > context {
        bail!(
            "{}: the longest sequence timed is {max_len} tokens (prefill {longest}, or decode past {} + {} \
             steps + {DECODE_WARMUP} warm-up + {profiled} profiled) but the model's context \
             (max_position_embeddings) is {context}",
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
    let copy_bw = exec.gpu().copy_bandwidth(COPY_BYTES, 5)?;
    let floor_ms = weight_bytes as f64 / copy_bw * 1e3;
    let mut rows = Vec::new();
    let mut profiles = Vec::new();

    for &t in &args.prefill_tokens {
        let prompt: Vec<u32> = (0..t).map(token).collect();
        // Every row's logits (a plain forward), then the last token's only (what generation
        // needs: the LM head runs on one row).
        let mut all_times = Vec::with_capacity(args.runs);
        let mut last_times = Vec::with_capacity(args.runs);
        for run in 0..=args.runs {
            exec.reset(0)?;
            let start = Instant::now();
            exec.run(Phase::Prefill, 0, &[&prompt])?;
            let all_ms = start.elapsed().as_secs_f64() * 1e3;
            exec.reset(0)?;
            let start = Instant::now();
            exec.prefill_last(0, &prompt)?;
            let last_ms = start.elapsed().as_secs_f64() * 1e3;
            if run > 0 {
                all_times.push(all_ms);
                last_times.push(last_ms);
            }
        }
        if args.profile {
            let mut runs = Vec::new();
            for _ in 0..PREFILL_PROFILE_RUNS {
                exec.reset(0)?;
                runs.push(exec.profile(Phase::Prefill, 0, &[&prompt])?);
            }
            profiles.push((
                format!("prefill, {t} tokens"),
                step_profile(&exec, Phase::Prefill, &runs),
            ));
        }
        for (logits, times) in [("all logits", &mut all_times), ("last logits", &mut last_times)] {
            let ms = median(times);
            rows.push(Row {
                what: format!("prefill, {t} tokens, {logits}"),
                ms,
                tokens_per_s: t as f64 / ms * 1e3,
                weight_gb_s: None,
            });
        }
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
        if args.profile {
            // The median over a few profiled steps, per step.
            let mut runs = Vec::new();
            for step in 0..PROFILE_RUNS {
                let toks = step_tokens(DECODE_WARMUP + args.decode_steps + step);
                let seqs: Vec<&[u32]> = toks.chunks(1).collect();
                runs.push(exec.profile(Phase::Decode, 0, &seqs)?);
            }
            profiles.push((
                format!("decode, batch {batch}"),
                step_profile(&exec, Phase::Decode, &runs),
            ));
        }
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
    println!("settings: {}", modelc_settings());
    println!(
        "decode floor: {:.1} MB of weights a step / {:.2} TB/s device-to-device copy = {floor_ms:.3} ms/step",
        weight_bytes as f64 / 1e6,
        copy_bw / 1e12
    );
    println!("| phase | ms (per call / per step) | tokens/s | weights read GB/s | × floor |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let bw = r.weight_gb_s.map_or_else(String::new, |g| format!("{g:.0}"));
        let ratio = r
            .weight_gb_s
            .map_or_else(String::new, |_| format!("{:.2}", r.ms / floor_ms));
        println!("| {} | {:.3} | {:.0} | {bw} | {ratio} |", r.what, r.ms, r.tokens_per_s);
    }
    for (what, p) in &profiles {
        print_profile(what, p);
    }
    Ok(())
}

/// Profiled decode steps per batch size (the median of each step's time is used).
const PROFILE_RUNS: usize = 5;
/// Profiled prefills per length.
const PREFILL_PROFILE_RUNS: usize = 3;

/// A decode profile: per step kind (count, ms), and per GEMM shape (count, ms, weight bytes).
struct Profile {
    total_ms: f64,
    kinds: Vec<(String, usize, f64)>,
    gemms: Vec<(String, usize, f64, usize)>,
}

fn step_profile(exec: &modelc_runtime::cuda::executor::Executor, phase: Phase, runs: &[Vec<StepTime>]) -> Profile {
    use std::collections::BTreeMap;
    let steps = match phase {
        Phase::Prefill => &exec.program().prefill.steps,
        Phase::Decode => &exec.program().decode.steps,
    };
    let mut kinds: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut gemms: BTreeMap<String, (usize, f64, usize)> = BTreeMap::new();
    let mut total_ms = 0.0;
    for (i, first) in runs.first().map(|r| r.iter()).into_iter().flatten().enumerate() {
        let mut ms: Vec<f64> = runs.iter().filter_map(|r| r.get(i).map(|t| t.ms)).collect();
        let ms = median(&mut ms);
        total_ms += ms;
        let k = kinds.entry(first.kind.clone()).or_default();
        k.0 += 1;
        k.1 += ms;
        if let Some(Step::Gemm(g)) = steps.get(first.index) {
            let bytes = exec
                .program()
                .weights
                .get(g.weight)
                .map_or(0, |w| w.shape.iter().product::<usize>() * w.dtype.size());
            let e = gemms
                .entry(format!("{} {}×{}", first.kind, g.n, g.k))
                .or_insert((0, 0.0, bytes));
            e.0 += 1;
            e.1 += ms;
        }
    }
    let mut kinds: Vec<_> = kinds.into_iter().map(|(k, (n, ms))| (k, n, ms)).collect();
    kinds.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut gemms: Vec<_> = gemms.into_iter().map(|(k, (n, ms, b))| (k, n, ms, b)).collect();
    gemms.sort_by(|a, b| b.2.total_cmp(&a.2));
    Profile { total_ms, kinds, gemms }
}

fn print_profile(what: &str, p: &Profile) {
    println!();
    println!(
        "{what}: step profile (device time between steps launched one by one, the median of each step over \
         {} calls; events add a few µs a step, decode graphs replay faster): {:.3} ms",
        if what.starts_with("decode") {
            PROFILE_RUNS
        } else {
            PREFILL_PROFILE_RUNS
        },
        p.total_ms
    );
    println!("| step kind | steps | ms | µs each | share |");
    println!("|---|---|---|---|---|");
    for (k, n, ms) in &p.kinds {
        println!(
            "| {k} | {n} | {ms:.3} | {:.1} | {:.0}% |",
            ms * 1e3 / (*n).max(1) as f64,
            100.0 * ms / p.total_ms.max(1e-12)
        );
    }
    println!("| GEMM (N×K) | steps | ms | µs each | weights TB/s |");
    println!("|---|---|---|---|---|");
    for (k, n, ms, bytes) in &p.gemms {
        let each = ms / (*n).max(1) as f64;
        println!(
            "| {k} | {n} | {ms:.3} | {:.1} | {:.2} |",
            each * 1e3,
            *bytes as f64 / (each * 1e-3).max(1e-12) / 1e12
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `MODELC_*` variables set in this process, `NAME=value` sorted by name (`none` without
/// any): codegen's trials and the executor's switches change what a benchmark times, so its
/// output names them.
fn modelc_settings() -> String {
    let mut set: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.to_str()?;
            k.starts_with("MODELC_").then(|| format!("{k}={}", v.to_string_lossy()))
        })
        .collect();
    set.sort();
    if set.is_empty() {
        "none".into()
    } else {
        set.join(", ")
    }
}
