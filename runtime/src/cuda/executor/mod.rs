//! Runs a compiled [`Program`] on one GPU: what `compiler/tests/codegen_common/exec.rs` does on
//! the CPU, with the same buffers, offsets, row strides, packed weights and state slots.
//!
//! Everything is allocated once, in [`Executor::new`]: packed weights (converted to the dtype
//! the program lists and uploaded once), `slots` copies of every state (KV caches of `max_len`
//! tokens, conv windows, recurrent states), and every per-call buffer at the largest size any
//! call within the [`ExecConfig`] limits can need. A call then only uploads token ids,
//! positions and `past_len`, walks the schedule (cuBLASLt GEMMs and kernel launches on one
//! stream) and downloads the logits it produced.
//!
//! GEMM steps are `y = alpha·x·Wᵀ (+ bias) + beta·c`, one cuBLASLt call each (through [`Gemm`]),
//! or, for calls of at most 2 rows (`batch·tokens`: decode), and of at most 8 where the
//! tensor-core GEMV takes the shape, one launch of the bandwidth-bound GEMV kernels of
//! [`super::gemv`] (`MODELC_NO_GEMV=1` keeps cuBLASLt, for comparison):
//! `c` is cuBLASLt's C apart from its output D = y, the bias its bias epilogue. Only a bias of
//! another dtype than y (which the epilogue does not take) or a `c` overlapping y without being
//! it falls back to a small helper kernel that first writes `y = beta·c + bias`, after which the
//! GEMM accumulates with `beta = 1`.
//!
//! Decode schedules fuse RMSNorm and `silu(gate)·up` into the GEMM that reads them
//! ([`GemmPrologue`]): such a step runs the GEMV with the transform fused (up to 8 rows on the
//! tensor-core GEMV, else RMSNorm up to 4 rows and SiLU·up up to 2), or else first writes the transform into a scratch X (the executor's own
//! helper kernels) and runs cuBLASLt on it. GEMVs and the kernels marked `pdl` (glue kernels,
//! conv1d: they start with `griddepcontrol.wait`) are programmatic dependent launches on sm_90+
//! ([`Gpu::launch_ex`]; `MODELC_NO_PDL=1` turns them off): each may start while the kernel before
//! it finishes, a GEMV streaming its first weights meanwhile.
//!
//! Decode steps replay CUDA graphs: a call's launches depend on the call only through the values
//! of the program's expressions (grids, offsets, integer arguments), which for decode change
//! only when the batch does or attention's split count does (every 32 tokens). The executor
//! keys graphs by those values: the first call with a key runs directly, the second is captured
//! and replayed, later ones replay. Inputs live in fixed device buffers, so a replay reads the
//! new tokens, positions and `past_len`. Graphs are off when launches are checked one by one.
//!
//! Errors name the phase, the step index and label, and the kernel with its launch dimensions;
//! allocations are checked against free memory first, so running out reports every size.
//!
//! Files: this one has the executor's state, set-up and calls; `sizing.rs` the buffer sizes,
//! `gemm_steps.rs` the GEMM steps (cuBLASLt, GEMV, prologues), `graphs.rs` decode through CUDA
//! graphs, `helper_kernels.rs` the executor's own kernels.

use std::collections::{BTreeMap, HashMap};

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;
use half::bf16;
use sha2::{Digest, Sha256};

use super::device::{Gpu, GpuBuffer, KernelArg, LaunchDims};
use super::error::CudaError;
use super::gemm::{Gemm, GemmBias, GemmC, GemmOut, GemmShape};
use super::gemv::{
    gemv_ex, gemv_modules_to_load, gemv_supported, gemv_tensor_takes, prefetch_next_on, GemvPrologue, L2Prefetch,
};
use super::kernel_cache::KernelCache;
use super::tensor_map::TileMap2d;
use crate::program::{
    Arg, BufferRef, ComputeCapability, Env, Expr, GemmPrologue, GemmStep, LaunchStep, PrefillHead, Program,
    ProgramError, Step,
};
use crate::tensor::{DType, HostTensor, TensorView};

mod gemm_steps;
mod graphs;
mod helper_kernels;
mod sizing;

use helper_kernels::*;
pub use sizing::Sizes;

/// A boxed error from a weight source (a checkpoint reader, a random generator).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which schedule a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Prefill,
    Decode,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        })
    }
}

/// Errors of building or running an [`Executor`].
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Cuda(#[from] CudaError),
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("the program cannot run on this executor: {0}")]
    Unsupported(String),
    #[error("invalid executor configuration: {0}")]
    Config(String),
    #[error("no CUDA source for kernel module `{module}` (expected the text of `{file}`)")]
    MissingSource { module: String, file: String },
    #[error("the source given for kernel module `{module}` has sha256 {got}, the program expects {expected}")]
    SourceMismatch {
        module: String,
        expected: String,
        got: String,
    },
    #[error("loading checkpoint tensor `{key}` (for device weight `{weight}`): {source}")]
    WeightSource {
        key: String,
        weight: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "checkpoint tensor `{key}` (for device weight `{weight}`) has shape {got:?}, the program expects {expected:?}"
    )]
    WeightShape {
        key: String,
        weight: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("device weight `{weight}` has dtype {dtype}, which the executor cannot convert to")]
    WeightDtype { weight: String, dtype: DType },
    #[error(
        "out of GPU memory: the program needs {needed} bytes ({needed_mib:.1} MiB: weights {weights} B, \
         states {states} B for {slots} slots of max_len {max_len}, buffers {buffers} B, largest `{largest}` \
         {largest_bytes} B) but only {free} of {total} bytes are free; lower max_len, slots or the prefill \
         chunk",
        needed_mib = *needed as f64 / 1048576.0
    )]
    OutOfMemory {
        needed: usize,
        weights: usize,
        states: usize,
        buffers: usize,
        largest: String,
        largest_bytes: usize,
        slots: usize,
        max_len: usize,
        free: usize,
        total: usize,
    },
    #[error("{phase} step {index} ({label}): {source}")]
    Step {
        phase: Phase,
        index: usize,
        label: String,
        #[source]
        source: Box<ExecError>,
    },
    #[error(
        "a kernel of this {phase} call failed while running (launches are not checked one by one; set \
         MODELC_CUDA_CHECK=1 to name the failing launch): {source}"
    )]
    Async {
        phase: Phase,
        #[source]
        source: CudaError,
    },
    #[error("{what} needs {need} elements at offset {offset}, but `{buffer}` holds {len}")]
    OutOfBounds {
        what: String,
        buffer: String,
        offset: usize,
        need: usize,
        len: usize,
    },
    #[error("expression `{expr}` = {value} does not fit the {what}")]
    Range { expr: String, value: u64, what: String },
    #[error("bad call: {0}")]
    BadCall(String),
    #[error(
        "sequence slot {slot} has seen {past} tokens; {tokens} more exceed the KV-cache capacity max_len = {max_len}"
    )]
    TooLong {
        slot: usize,
        past: usize,
        tokens: usize,
        max_len: usize,
    },
    #[error("token id {token} is out of the vocabulary ({vocab} entries)")]
    BadToken { token: u32, vocab: usize },
    #[error("no state named `{name}`; the program has {names:?}")]
    NoState { name: String, names: Vec<String> },
}

/// A checkpoint tensor handed to [`Executor::new`]: borrowed (an mmapped checkpoint) or owned
/// (random weights, converted tensors).
#[derive(Debug, Clone)]
pub enum WeightTensor<'a> {
    View(TensorView<'a>),
    Host(HostTensor),
}

impl WeightTensor<'_> {
    pub fn view(&self) -> TensorView<'_> {
        match self {
            WeightTensor::View(v) => *v,
            WeightTensor::Host(h) => h.view(),
        }
    }
}

/// Capacity of an executor: what [`Executor::new`] allocates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecConfig {
    /// KV-cache capacity per sequence: `past + tokens ≤ max_len` for every call.
    pub max_len: usize,
    /// Sequence slots of the state buffers.
    pub slots: usize,
    /// Most tokens per sequence in one prefill call; longer prompts run in chunks.
    pub max_prefill_tokens: usize,
    /// Most sequences one prefill call runs together (equal lengths).
    pub max_prefill_batch: usize,
    /// Fill every per-call buffer and output with NaN before each call, so an element no step
    /// writes shows up (for tests; costs one memset per buffer).
    pub poison: bool,
    /// Replay decode steps as CUDA graphs (see the module doc); ignored while launches are
    /// checked one by one ([`Gpu::checked`]).
    pub graphs: bool,
}

impl ExecConfig {
    /// `slots` sequences of up to `max_len` tokens, prompts prefilled one sequence at a time in
    /// chunks of up to `min(max_len, 4096)` tokens.
    pub fn new(max_len: usize, slots: usize) -> ExecConfig {
        ExecConfig {
            max_len,
            slots,
            max_prefill_tokens: max_len.clamp(1, 4096),
            max_prefill_batch: 1,
            poison: false,
            graphs: true,
        }
    }
}

/// How often decode calls ran directly, were captured, or replayed a graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    pub direct: usize,
    pub captured: usize,
    pub replayed: usize,
}

/// Device time of one step of a profiled call ([`Executor::profile`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub index: usize,
    pub label: String,
    /// `gemm` (with its prologue, if any), or the kernel entry's kind (its name without the
    /// hash: `rms_norm`, `attn_decode`, `attn_decode_combine`, `delta_rule_cp_scan`, ...).
    pub kind: String,
    pub ms: f64,
}

/// Which rows' logits a call computes (see [`PrefillHead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logits {
    All,
    /// Each sequence's last token only.
    Last,
    /// None: a prompt chunk whose logits nobody reads.
    None,
}

/// A decode signature seen once (run directly), or its captured graph.
enum GraphSlot {
    Seen,
    Graph(CudaGraph),
}

/// One device allocation of the program: its name (for errors), dtype and element count.
struct Region {
    name: String,
    dtype: DType,
    len: usize,
    buf: GpuBuffer<u8>,
}

impl Region {
    fn ptr_at(&self, offset: usize, what: &str) -> Result<u64, ExecError> {
        if offset > self.len {
            return Err(ExecError::OutOfBounds {
                what: what.to_string(),
                buffer: self.name.clone(),
                offset,
                need: 0,
                len: self.len,
            });
        }
        Ok(self.buf.device_ptr() + (offset * self.dtype.size()) as u64)
    }

    /// The address of a `rows × cols` operand with row stride `ld` at `offset`, bounds-checked.
    fn operand(&self, offset: usize, rows: usize, cols: usize, ld: usize, what: &str) -> Result<u64, ExecError> {
        let need = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1).saturating_mul(ld).saturating_add(cols)
        };
        if offset.saturating_add(need) > self.len {
            return Err(ExecError::OutOfBounds {
                what: what.to_string(),
                buffer: self.name.clone(),
                offset,
                need,
                len: self.len,
            });
        }
        self.ptr_at(offset, what)
    }
}

/// Bytes the executor allocates, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    pub weights: usize,
    pub states: usize,
    pub buffers: usize,
}

impl MemoryUse {
    pub fn total(&self) -> usize {
        self.weights + self.states + self.buffers
    }
}

/// GEMMs and kernel launches one call of a phase issues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    pub gemms: usize,
    /// Launches of generated kernels.
    pub launches: usize,
    /// Launches of the executor's own GEMM-prologue kernel (a bias cuBLASLt's epilogue cannot
    /// take, written into the output before the GEMM; none for bf16 models).
    pub helper_launches: usize,
}

/// Set to `1`, GEMM steps of few rows run on cuBLASLt instead of the GEMV kernel.
pub const NO_GEMV_ENV: &str = "MODELC_NO_GEMV";
/// Set to `1`, kernels are not launched as programmatic dependent launches (see [`Gpu::launch_ex`]).
pub const NO_PDL_ENV: &str = "MODELC_NO_PDL";

/// Env var for benchmarks only: a comma-separated list of prefixes of step kinds (as
/// [`Executor::profile`] names them: `gemm`, `gemm+rms_norm`, `gemm+silu_mul`, or a kernel's
/// entry without its hash, e.g. `kda_decode_step_cluster`) whose steps are not enqueued; a list
/// starting with `!` leaves out every step whose kind matches none of it. The results are wrong; the
/// time a step saves with its kind left out is what that kind costs inside a replayed decode
/// step, dependent launches and all, which profiling steps one at a time cannot show.
pub const BENCH_SKIP_ENV: &str = "MODELC_BENCH_SKIP";

/// Env var: `1` runs every launch step's own launch, ignoring its variants (e.g. the Hopper
/// attention prefill), to compare the two or to rule a variant out.
pub const NO_VARIANTS_ENV: &str = "MODELC_NO_VARIANTS";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn eval(e: &Expr, env: &Env) -> Result<usize, ExecError> {
    let v = e.eval(env)?;
    usize::try_from(v).map_err(|_| ExecError::Range {
        expr: e.to_string(),
        value: v,
        what: "address space".into(),
    })
}

/// Packs one device weight's checkpoint parts into host bytes of its dtype.
fn pack_weight<'w>(
    w: &crate::program::DeviceWeight,
    weights: &mut impl FnMut(&str) -> Result<WeightTensor<'w>, BoxError>,
) -> Result<Vec<u8>, ExecError> {
    if !matches!(w.dtype, DType::BF16 | DType::F32 | DType::F16) {
        return Err(ExecError::WeightDtype {
            weight: w.name.clone(),
            dtype: w.dtype,
        });
    }
    let es = w.dtype.size();
    let row_len: usize = w.shape.iter().skip(1).product();
    let rows = w.shape.first().copied().unwrap_or(1);
    let mut out = vec![0u8; rows * row_len * es];
    let mut filled = vec![false; rows];
    for part in &w.parts {
        let t = weights(&part.key).map_err(|source| ExecError::WeightSource {
            key: part.key.clone(),
            weight: w.name.clone(),
            source,
        })?;
        let v = t.view();
        let numel: usize = part.shape.iter().product();
        if v.shape != part.shape.as_slice() || numel != part.rows * row_len {
            return Err(ExecError::WeightShape {
                key: part.key.clone(),
                weight: w.name.clone(),
                expected: part.shape.clone(),
                got: v.shape.to_vec(),
            });
        }
        v.check().map_err(|e| ExecError::WeightSource {
            key: part.key.clone(),
            weight: w.name.clone(),
            source: Box::new(e),
        })?;
        let start = part.row * row_len * es;
        let end = start + numel * es;
        let dst = out.get_mut(start..end).ok_or_else(|| {
            ExecError::Unsupported(format!(
                "device weight `{}`: part `{}` rows {}..{} exceed {rows} rows",
                w.name,
                part.key,
                part.row,
                part.row + part.rows
            ))
        })?;
        if v.dtype == w.dtype {
            dst.copy_from_slice(v.data);
        } else {
            dst.copy_from_slice(&v.cast(w.dtype).data);
        }
        for f in filled.iter_mut().skip(part.row).take(part.rows) {
            *f = true;
        }
    }
    if let Some(r) = filled.iter().position(|f| !f) {
        return Err(ExecError::Unsupported(format!(
            "device weight `{}`: row {r} is filled by no part",
            w.name
        )));
    }
    Ok(out)
}

/// A program instantiated on one GPU. See the module doc.
pub struct Executor {
    gpu: Gpu,
    gemm: Gemm,
    /// Whether GEMM steps of few rows run the GEMV kernel ([`NO_GEMV_ENV`] unset).
    gemv: bool,
    /// Whether GEMVs are programmatic dependent launches ([`NO_PDL_ENV`] unset, device ≥ sm_90).
    pdl: bool,
    /// Step kinds left out of every call ([`BENCH_SKIP_ENV`]); `None` when unset.
    skip: Option<StepFilter>,
    /// Dense X of fused-prologue GEMM steps that do not run the fused GEMV (bf16, `slots` rows
    /// of the largest such k); `None` when the decode schedule has no prologue.
    scratch: Option<Region>,
    program: Program,
    cfg: ExecConfig,
    sms: u64,
    vocab: usize,
    logits: usize,
    weights: Vec<Region>,
    states: Vec<Region>,
    state_per_slot: Vec<usize>,
    buffers: Vec<Region>,
    inputs: Vec<Region>,
    outputs: Vec<Region>,
    /// Tokens each slot has seen (mirrors the device's `past_len`).
    past: Vec<usize>,
    /// Rows (`batch·tokens`) of the last call, for [`Executor::last_logits`].
    last_rows: usize,
    memory: MemoryUse,
    graphs: HashMap<Vec<u64>, GraphSlot>,
    graph_stats: GraphStats,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("model", &self.program.model)
            .field("gpu", &self.gpu.name())
            .field("cfg", &self.cfg)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Compiles (or fetches from `cache`) and loads every kernel module of `program`, whose
    /// sources `sources` maps by module name (checked against the program's sha256); checks the
    /// memory the configuration needs against free device memory; allocates states (zeroed),
    /// buffers, inputs and outputs; packs and uploads every device weight, reading checkpoint
    /// tensors through `weights` (validated against the program's shapes, converted to the
    /// device dtype).
    pub fn new<'w>(
        gpu: Gpu,
        program: Program,
        sources: &BTreeMap<String, String>,
        mut weights: impl FnMut(&str) -> Result<WeightTensor<'w>, BoxError>,
        cfg: ExecConfig,
        cache: &KernelCache,
    ) -> Result<Executor, ExecError> {
        let mut gpu = gpu;
        program.validate()?;
        let mut program = program;
        let (major, minor) = gpu.compute_capability();
        program.specialize(ComputeCapability {
            major: u32::try_from(major).unwrap_or(0),
            minor: u32::try_from(minor).unwrap_or(0),
        });
        if std::env::var_os(NO_VARIANTS_ENV).is_some_and(|v| v == "1") {
            program.drop_variants();
        }
        if cfg.max_len == 0 || cfg.slots == 0 || cfg.max_prefill_tokens == 0 || cfg.max_prefill_batch == 0 {
            return Err(ExecError::Config(format!("every limit must be at least 1: {cfg:?}")));
        }
        if cfg.max_prefill_batch > cfg.slots {
            return Err(ExecError::Config(format!(
                "max_prefill_batch {} exceeds slots {}",
                cfg.max_prefill_batch, cfg.slots
            )));
        }
        if i32::try_from(cfg.max_len).is_err() || i32::try_from(cfg.slots).is_err() {
            return Err(ExecError::Config(format!("max_len and slots must fit an i32: {cfg:?}")));
        }
        let logits = program
            .outputs
            .iter()
            .position(|o| o.name == "logits")
            .ok_or_else(|| ExecError::Unsupported("the program has no `logits` output".into()))?;
        let vocab = eval(
            &program.outputs[logits].elements,
            &Env {
                batch: 1,
                tokens: 1,
                ..Env::default()
            },
        )?;
        for (i, name) in ["tokens", "positions", "past_len"].iter().enumerate() {
            match program.inputs.get(i) {
                Some(io) if io.name == *name && io.dtype == DType::I32 => {}
                other => {
                    return Err(ExecError::Unsupported(format!(
                        "input {i} must be `{name}` (i32), found {:?}",
                        other.map(|o| (&o.name, o.dtype))
                    )))
                }
            }
        }
        let sms = u64::from(gpu.sm_count());

        // Sizes and the memory check, before anything large is allocated.
        let sizes = Sizes::of(&program, &cfg, sms)?;
        let memory = sizes.memory(&program, cfg.slots);
        let (free, total) = gpu.mem_info()?;
        // cuBLASLt's workspace and kernel modules take a little too.
        let reserve = 64 << 20;
        if memory.total().saturating_add(reserve) > free {
            let mut largest = (String::new(), 0usize);
            let mut consider = |name: &str, bytes: usize| {
                if bytes > largest.1 {
                    largest = (name.to_string(), bytes);
                }
            };
            for w in &program.weights {
                consider(&w.name, w.shape.iter().product::<usize>() * w.dtype.size());
            }
            for (s, &n) in program.states.iter().zip(&sizes.state_per_slot) {
                consider(&format!("state {}", s.name), n * cfg.slots * s.dtype.size());
            }
            for (b, &n) in program.buffers.iter().zip(&sizes.buffers) {
                consider(&b.name, n * b.dtype.size());
            }
            for (b, &n) in program.outputs.iter().zip(&sizes.outputs) {
                consider(&format!("output {}", b.name), n * b.dtype.size());
            }
            return Err(ExecError::OutOfMemory {
                needed: memory.total(),
                weights: memory.weights,
                states: memory.states,
                buffers: memory.buffers,
                largest: largest.0,
                largest_bytes: largest.1,
                slots: cfg.slots,
                max_len: cfg.max_len,
                free,
                total,
            });
        }

        // Kernels: those some launch of this device uses (a module for another target is left
        // out), the executor's helpers and the GEMV kernels, compiled in parallel, then loaded.
        let mut to_load: Vec<(String, Vec<String>)> = Vec::new();
        for m in program.used_modules() {
            if let Some(target) = &m.target {
                if target != gpu.arch() {
                    return Err(ExecError::Unsupported(format!(
                        "module `{}` compiles for {target} only, this device is {}",
                        m.name,
                        gpu.arch()
                    )));
                }
            }
            let src = sources.get(&m.name).ok_or_else(|| ExecError::MissingSource {
                module: m.name.clone(),
                file: m.file.clone(),
            })?;
            let got = sha256_hex(src);
            if got != m.sha256 {
                return Err(ExecError::SourceMismatch {
                    module: m.name.clone(),
                    expected: m.sha256.clone(),
                    got,
                });
            }
            if m.entries.iter().all(|e| gpu.has_kernel(e)) {
                continue;
            }
            to_load.push((src.clone(), m.entries.clone()));
        }
        if !gpu.has_kernel(HELPER_BF16) {
            to_load.push((HELPER_SOURCE.to_string(), HELPERS.map(String::from).to_vec()));
        }
        let gemv = std::env::var_os(NO_GEMV_ENV).is_none_or(|v| v != "1");
        if gemv {
            to_load.extend(gemv_modules_to_load(&gpu));
        }
        gpu.compile_and_load_all(cache, &to_load)?;
        let gemm = Gemm::new(&gpu)?;

        let alloc = |name: String, dtype: DType, len: usize| -> Result<Region, ExecError> {
            let buf = gpu.alloc_zeros::<u8>(len.max(1) * dtype.size(), &name)?;
            Ok(Region { name, dtype, len, buf })
        };
        let mut states = Vec::with_capacity(program.states.len());
        for (s, &n) in program.states.iter().zip(&sizes.state_per_slot) {
            states.push(alloc(format!("state {}", s.name), s.dtype, n * cfg.slots)?);
        }
        let mut buffers = Vec::with_capacity(program.buffers.len());
        for (b, &n) in program.buffers.iter().zip(&sizes.buffers) {
            buffers.push(alloc(format!("buffer {}", b.name), b.dtype, n)?);
        }
        let mut inputs = Vec::with_capacity(program.inputs.len());
        for (b, &n) in program.inputs.iter().zip(&sizes.inputs) {
            inputs.push(alloc(format!("input {}", b.name), b.dtype, n)?);
        }
        let mut outputs = Vec::with_capacity(program.outputs.len());
        for (b, &n) in program.outputs.iter().zip(&sizes.outputs) {
            outputs.push(alloc(format!("output {}", b.name), b.dtype, n)?);
        }
        // Decode GEMM steps with a prologue read at most `slots` rows (tokens = 1).
        let scratch_k = program
            .decode
            .steps
            .iter()
            .filter_map(|st| match st {
                Step::Gemm(g) if g.prologue.is_some() => Some(g.k),
                _ => None,
            })
            .max();
        let scratch = match scratch_k {
            Some(k) => Some(alloc("GEMM prologue scratch".into(), DType::BF16, k * cfg.slots)?),
            None => None,
        };
        let pdl = gpu.supports_pdl() && std::env::var_os(NO_PDL_ENV).is_none_or(|v| v != "1");
        let mut dev_weights = Vec::with_capacity(program.weights.len());
        for w in &program.weights {
            let bytes = pack_weight(w, &mut weights)?;
            let what = format!("weight {}", w.name);
            let buf = gpu.upload(&bytes, &what)?;
            dev_weights.push(Region {
                name: what,
                dtype: w.dtype,
                len: w.shape.iter().product(),
                buf,
            });
        }
        gpu.synchronize()?;
        Ok(Executor {
            gpu,
            gemm,
            gemv,
            pdl,
            scratch,
            cfg,
            sms,
            vocab,
            logits,
            weights: dev_weights,
            states,
            state_per_slot: sizes.state_per_slot,
            buffers,
            inputs,
            outputs,
            past: vec![0; cfg.slots],
            last_rows: 0,
            memory,
            program,
            graphs: HashMap::new(),
            graph_stats: GraphStats::default(),
            skip: std::env::var(BENCH_SKIP_ENV).ok().and_then(|v| StepFilter::parse(&v)),
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Gives the GPU back (its loaded kernels stay loaded for the next executor).
    pub fn into_gpu(self) -> Gpu {
        self.gpu
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn config(&self) -> &ExecConfig {
        &self.cfg
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The device's streaming multiprocessors (the `sms` symbol).
    pub fn sms(&self) -> u64 {
        self.sms
    }

    /// Bytes allocated for weights, states and per-call memory.
    pub fn memory(&self) -> MemoryUse {
        self.memory
    }

    /// Weight bytes a decode step must read at least: every weight once, except the embedding
    /// table, of which it gathers one row per sequence, unless the output head reads it too
    /// (tied embeddings: the program has no `lm_head.weight`).
    pub fn decode_weight_bytes(&self) -> usize {
        let weights = &self.program.weights;
        if !weights.iter().any(|w| w.name == "lm_head.weight") {
            return self.memory.weights;
        }
        let embed: usize = weights
            .iter()
            .filter(|w| w.name == "model.embed_tokens.weight")
            .map(|w| w.shape.iter().product::<usize>() * w.dtype.size())
            .sum();
        self.memory.weights.saturating_sub(embed)
    }

    /// Tokens sequence `slot` has seen.
    pub fn past_len(&self, slot: usize) -> Option<usize> {
        self.past.get(slot).copied()
    }

    /// GEMMs and launches one call of `phase` issues.
    pub fn step_counts(&self, phase: Phase) -> StepCounts {
        let mut c = StepCounts::default();
        for s in &self.schedule(phase).steps {
            match s {
                Step::Gemm(g) => {
                    c.gemms += 1;
                    if self.needs_prologue(g).unwrap_or(true) {
                        c.helper_launches += 1;
                    }
                }
                Step::Launch(_) => c.launches += 1,
            }
        }
        c
    }

    fn schedule(&self, phase: Phase) -> &crate::program::Schedule {
        match phase {
            Phase::Prefill => &self.program.prefill,
            Phase::Decode => &self.program.decode,
        }
    }

    /// Zeroes every state of `slot` and its `past_len`: a new sequence starts there.
    pub fn reset(&mut self, slot: usize) -> Result<(), ExecError> {
        if slot >= self.cfg.slots {
            return Err(ExecError::BadCall(format!("slot {slot} of {} slots", self.cfg.slots)));
        }
        for (r, &per) in self.states.iter().zip(&self.state_per_slot) {
            let bytes = per * r.dtype.size();
            let ptr = r.ptr_at(slot * per, "reset")?;
            // SAFETY: `ptr .. ptr + bytes` is the slot's part of a live allocation (checked above:
            // slot < slots and the region holds slots · per elements).
            unsafe { cudarc::driver::result::memset_d8_async(ptr, 0, bytes, self.gpu.stream().cu_stream()) }
                .map_err(|e| CudaError::driver(format!("zeroing {} of slot {slot}", r.name), e))?;
        }
        self.past[slot] = 0;
        self.gpu.synchronize()?;
        Ok(())
    }

    /// Resets every slot.
    pub fn reset_all(&mut self) -> Result<(), ExecError> {
        for s in 0..self.cfg.slots {
            self.reset(s)?;
        }
        Ok(())
    }

    /// Prefills one sequence into `slot` (after what it has seen), in chunks of at most
    /// `max_prefill_tokens`; returns the logits `[tokens.len(), vocab]`.
    pub fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ExecError> {
        if tokens.is_empty() {
            return Err(ExecError::BadCall("an empty prompt".into()));
        }
        let mut out = Vec::with_capacity(tokens.len() * self.vocab);
        for chunk in tokens.chunks(self.cfg.max_prefill_tokens) {
            self.run(Phase::Prefill, slot, &[chunk])?;
            out.extend(self.last_logits()?);
        }
        Ok(out)
    }

    /// [`Executor::prefill`], downloading only the last token's logits `[vocab]` (what greedy
    /// generation needs; the whole `[T, vocab]` of a long prompt is a large copy).
    pub fn prefill_last(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ExecError> {
        if tokens.is_empty() {
            return Err(ExecError::BadCall("an empty prompt".into()));
        }
        let chunks: Vec<&[u32]> = tokens.chunks(self.cfg.max_prefill_tokens).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let logits = if i + 1 == chunks.len() {
                Logits::Last
            } else {
                Logits::None
            };
            self.run_for(Phase::Prefill, slot, &[chunk], logits)?;
        }
        let r = &self.outputs[self.logits];
        self.download_f32(r, (self.last_rows - 1) * self.vocab, self.vocab)
    }

    /// Prefills sequences of one length together into slots `slot..slot + seqs.len()`; returns
    /// the logits `[batch, tokens, vocab]`.
    pub fn prefill_batch(&mut self, slot: usize, seqs: &[&[u32]]) -> Result<Vec<f32>, ExecError> {
        self.run(Phase::Prefill, slot, seqs)?;
        self.last_logits()
    }

    /// One decode step for slots `0..tokens.len()` (one token each); returns `[batch, vocab]`.
    pub fn decode(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ExecError> {
        self.decode_at(0, tokens)
    }

    /// One decode step for slots `slot..slot + tokens.len()`.
    pub fn decode_at(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ExecError> {
        let seqs: Vec<&[u32]> = tokens.chunks(1).collect();
        self.run(Phase::Decode, slot, &seqs)?;
        self.last_logits()
    }

    /// Runs one call (sequences `seqs[b]` of one common length at slots `slot + b`) and waits for
    /// it; the logits stay on the device ([`Executor::last_logits`]).
    pub fn run(&mut self, phase: Phase, slot: usize, seqs: &[&[u32]]) -> Result<(), ExecError> {
        self.run_for(phase, slot, seqs, Logits::All)
    }

    /// [`run`](Self::run), computing only the `logits` asked for where the program has a
    /// [`PrefillHead`] (prefill calls; decode always computes its one row per sequence).
    fn run_for(&mut self, phase: Phase, slot: usize, seqs: &[&[u32]], logits: Logits) -> Result<(), ExecError> {
        let env = self.begin(phase, slot, seqs)?;
        let steps = self.schedule(phase).steps.len();
        let t = env.tokens as usize;
        let mut rows = seqs.len() * t;
        if phase == Phase::Decode && self.cfg.graphs && !self.gpu.checked() {
            self.decode_graph(&env)?;
        } else {
            match self.program.head.as_ref().filter(|_| phase == Phase::Prefill) {
                Some(head) if logits != Logits::All => {
                    self.enqueue(phase, &env, 0..head.first_step)?;
                    rows = 0;
                    if logits == Logits::Last {
                        self.gather_last_rows(head, &env)?;
                        let one_token = Env { tokens: 1, ..env };
                        self.enqueue(phase, &one_token, head.first_step..steps)?;
                        rows = seqs.len();
                    }
                }
                _ => self.enqueue(phase, &env, 0..steps)?,
            }
        }
        self.gpu
            .synchronize()
            .map_err(|source| ExecError::Async { phase, source })?;
        for p in self.past.iter_mut().skip(slot).take(seqs.len()) {
            *p += t;
        }
        self.last_rows = rows;
        Ok(())
    }

    /// Moves each sequence's last hidden row (row `b·T + T − 1`) to row `b` of the head's input,
    /// in increasing `b`: a destination row never holds a source not yet moved.
    fn gather_last_rows(&self, head: &PrefillHead, env: &Env) -> Result<(), ExecError> {
        let t = env.tokens as usize;
        if t == 1 {
            return Ok(());
        }
        let r = self.region(head.hidden.buffer);
        let offset = eval(&head.hidden.offset, env)?;
        let row_bytes = head.channels * r.dtype.size();
        for b in 0..env.batch as usize {
            let src = r.operand(
                offset + (b * t + t - 1) * head.hidden.ld,
                1,
                head.channels,
                1,
                "the last hidden row",
            )?;
            let dst = r.ptr_at(offset + b * head.hidden.ld, "the head's input row")?;
            // SAFETY: both rows lie inside the live allocation (checked above) and do not overlap
            // (t > 1, so the source row is after the destination row).
            unsafe { cudarc::driver::result::memcpy_dtod_async(dst, src, row_bytes, self.gpu.stream().cu_stream()) }
                .map_err(|e| CudaError::driver("moving the last hidden rows to the LM head", e))?;
        }
        Ok(())
    }

    /// Whether [`BENCH_SKIP_ENV`] leaves `step` out.
    fn skipped(&self, step: &Step, env: &Env) -> bool {
        self.skip.as_ref().is_some_and(|f| f.matches(&step_kind(step, env)))
    }

    /// Enqueues steps `range` of `phase` on the stream.
    fn enqueue(&self, phase: Phase, env: &Env, range: std::ops::Range<usize>) -> Result<(), ExecError> {
        let steps = &self.schedule(phase).steps[range.clone()];
        for (index, step) in (range.start..).zip(steps) {
            if self.skipped(step, env) {
                continue;
            }
            self.run_step(phase, index, step, env)?;
        }
        Ok(())
    }

    /// Enqueues step `index` of `phase`'s schedule; an error names the step.
    fn run_step(&self, phase: Phase, index: usize, step: &Step, env: &Env) -> Result<(), ExecError> {
        match step {
            Step::Gemm(g) => self.gemm_step(g, env, self.next_gemm_prefetch(phase, index)),
            Step::Launch(l) => self.launch_step(l, env),
        }
        .map_err(|e| ExecError::Step {
            phase,
            index,
            label: step.label().to_string(),
            source: Box::new(e),
        })
    }

    /// Runs one call like [`Executor::run`] (launching every step directly) and returns each
    /// step's device time, from events between the steps. A spin kernel holds the stream until
    /// the host has queued the whole call, so the times exclude host launch gaps.
    pub fn profile(&mut self, phase: Phase, slot: usize, seqs: &[&[u32]]) -> Result<Vec<StepTime>, ExecError> {
        let env = self.begin(phase, slot, seqs)?;
        let stream = self.gpu.stream().clone();
        let timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let event = |what: &str| {
            stream
                .record_event(timing)
                .map_err(|e| CudaError::driver(format!("recording a timing event {what}"), e))
        };
        // About 20 ms at 2 GHz: far longer than queueing a call takes.
        // SAFETY: the spin kernel takes one `long long` and touches no memory.
        unsafe {
            self.gpu.launch(
                SPIN,
                LaunchDims::new((1, 1, 1), (1, 1, 1), 0),
                &[KernelArg::I64(40_000_000)],
            )
        }?;
        let mut events = vec![event("before the first step")?];
        let steps = &self.schedule(phase).steps;
        for (index, step) in steps.iter().enumerate() {
            self.run_step(phase, index, step, &env)?;
            events.push(event("after a step")?);
        }
        self.gpu
            .synchronize()
            .map_err(|source| ExecError::Async { phase, source })?;
        let mut out = Vec::with_capacity(steps.len());
        for (index, (step, w)) in steps.iter().zip(events.windows(2)).enumerate() {
            let ms = w[0]
                .elapsed_ms(&w[1])
                .map_err(|e| CudaError::driver("reading a timing event", e))?;
            let kind = step_kind(step, &env);
            out.push(StepTime {
                index,
                label: step.label().to_string(),
                kind,
                ms: f64::from(ms),
            });
        }
        let t = env.tokens as usize;
        for p in self.past.iter_mut().skip(slot).take(seqs.len()) {
            *p += t;
        }
        self.last_rows = seqs.len() * t;
        Ok(out)
    }

    /// How decode calls ran so far.
    pub fn graph_stats(&self) -> GraphStats {
        self.graph_stats
    }

    /// Validates a call, uploads its inputs and poisons the per-call memory when asked.
    fn begin(&mut self, phase: Phase, slot: usize, seqs: &[&[u32]]) -> Result<Env, ExecError> {
        let batch = seqs.len();
        let t = seqs.first().map_or(0, |s| s.len());
        if batch == 0 || t == 0 || seqs.iter().any(|s| s.len() != t) {
            return Err(ExecError::BadCall(format!(
                "a call needs at least one sequence, all of one non-zero length; got lengths {:?}",
                seqs.iter().map(|s| s.len()).collect::<Vec<_>>()
            )));
        }
        if slot + batch > self.cfg.slots {
            return Err(ExecError::BadCall(format!(
                "slots {slot}..{} do not exist ({} slots)",
                slot + batch,
                self.cfg.slots
            )));
        }
        let (max_b, max_t) = match phase {
            Phase::Prefill => (self.cfg.max_prefill_batch, self.cfg.max_prefill_tokens),
            Phase::Decode => (self.cfg.slots, 1),
        };
        if batch > max_b || t > max_t {
            return Err(ExecError::BadCall(format!(
                "{phase} of {batch} sequences of {t} tokens exceeds the configured {max_b} × {max_t}"
            )));
        }
        for (b, s) in seqs.iter().enumerate() {
            let past = self.past[slot + b];
            if past + t > self.cfg.max_len {
                return Err(ExecError::TooLong {
                    slot: slot + b,
                    past,
                    tokens: t,
                    max_len: self.cfg.max_len,
                });
            }
            if let Some(&bad) = s.iter().find(|&&x| x as usize >= self.vocab) {
                return Err(ExecError::BadToken {
                    token: bad,
                    vocab: self.vocab,
                });
            }
        }
        let past = self.past[slot..slot + batch].iter().copied().max().unwrap_or(0);
        let env = Env {
            batch: batch as u64,
            tokens: t as u64,
            past: past as u64,
            max_len: self.cfg.max_len as u64,
            slots: self.cfg.slots as u64,
            slot: slot as u64,
            sms: self.sms,
        };
        // Every per-call region must hold what this call's expressions ask for.
        let declared = self
            .program
            .buffers
            .iter()
            .map(|b| &b.elements)
            .zip(&self.buffers)
            .chain(self.program.inputs.iter().map(|b| &b.elements).zip(&self.inputs))
            .chain(self.program.outputs.iter().map(|b| &b.elements).zip(&self.outputs));
        for (e, r) in declared {
            let need = eval(e, &env)?;
            if need > r.len {
                return Err(ExecError::BadCall(format!(
                    "{} needs {need} elements for this call ({e}), {} were allocated",
                    r.name, r.len
                )));
            }
        }
        let ids: Vec<i32> = seqs.iter().flat_map(|s| s.iter().map(|&x| x as i32)).collect();
        let pos: Vec<i32> = (0..batch)
            .flat_map(|b| {
                let p = self.past[slot + b];
                (0..t).map(move |i| (p + i) as i32)
            })
            .collect();
        let past_len: Vec<i32> = self.past.iter().map(|&p| p as i32).collect();
        for (idx, data) in [(0usize, &ids), (1, &pos), (2, &past_len)] {
            let r = &mut self.inputs[idx];
            let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.gpu.upload_into(&bytes, &mut r.buf, &r.name)?;
        }
        if self.cfg.poison {
            // Counters stay zero: their kernels count on it.
            let per_call = self
                .buffers
                .iter()
                .zip(&self.program.buffers)
                .filter(|(_, b)| !b.counters);
            for r in per_call.map(|(r, _)| r).chain(&self.outputs) {
                // SAFETY: the whole live allocation; 0xFF bytes are NaN in bf16 and f32.
                unsafe {
                    cudarc::driver::result::memset_d8_async(
                        r.buf.device_ptr(),
                        0xFF,
                        r.buf.num_bytes(),
                        self.gpu.stream().cu_stream(),
                    )
                }
                .map_err(|e| CudaError::driver(format!("poisoning {}", r.name), e))?;
            }
        }
        Ok(env)
    }

    fn region(&self, r: BufferRef) -> &Region {
        // `Program::validate` (in `new`) checked every reference is in range.
        match r {
            BufferRef::Buffer(i) => &self.buffers[i],
            BufferRef::State(i) => &self.states[i],
            BufferRef::Weight(i) => &self.weights[i],
            BufferRef::Input(i) => &self.inputs[i],
            BufferRef::Output(i) => &self.outputs[i],
        }
    }

    fn launch_step(&self, step: &LaunchStep, env: &Env) -> Result<(), ExecError> {
        if step.skips(env)? {
            return Ok(());
        }
        let l = step.pick(env)?;
        let mut grid = [0u32; 3];
        for (g, e) in grid.iter_mut().zip(l.grid) {
            let v = eval(e, env)?;
            *g = u32::try_from(v)
                .ok()
                .filter(|&x| x > 0)
                .ok_or_else(|| ExecError::Range {
                    expr: e.to_string(),
                    value: v as u64,
                    what: format!("grid of `{}` (1 ..= u32::MAX)", l.entry),
                })?;
        }
        let mut args = Vec::with_capacity(step.args.len() + l.extra_args.len());
        for (i, a) in step.args.iter().chain(l.extra_args).enumerate() {
            args.push(self.kernel_arg(a, i, l.entry, env)?);
        }
        let dims = LaunchDims::new(
            (grid[0], grid[1], grid[2]),
            (l.block[0], l.block[1], l.block[2]),
            l.smem,
        );
        // SAFETY: codegen emits the argument list of each entry's signature (pointers, ints) and
        // sizes every buffer for what its kernels access; each pointer was checked to lie in its
        // allocation, and every buffer was checked to hold this call's declared size. A step marked
        // `pdl` is a kernel that waits for the kernels before it before touching memory.
        unsafe { self.gpu.launch_ex(l.entry, dims, &args, l.pdl && self.pdl) }?;
        Ok(())
    }

    /// Argument `i` of a launch of `entry`, resolved for a call.
    fn kernel_arg(&self, a: &Arg, i: usize, entry: &str, env: &Env) -> Result<KernelArg, ExecError> {
        Ok(match a {
            Arg::Ptr { buffer, offset } => {
                let r = self.region(*buffer);
                let at = eval(offset, env)?;
                // The error text is built only on failure: this runs for every argument of every
                // launch.
                match r.ptr_at(at, "") {
                    Ok(p) => KernelArg::Ptr(p),
                    Err(_) => r
                        .ptr_at(at, &format!("argument {i} of `{entry}`"))
                        .map(KernelArg::Ptr)?,
                }
            }
            Arg::Null => KernelArg::Ptr(0),
            Arg::I32(e) => {
                let v = e.eval(env)?;
                KernelArg::I32(i32::try_from(v).map_err(|_| ExecError::Range {
                    expr: e.to_string(),
                    value: v,
                    what: format!("i32 argument {i} of `{entry}`"),
                })?)
            }
            Arg::TensorMap(m) => {
                let Arg::Ptr { buffer, offset } = m.ptr.as_ref() else {
                    return Err(ExecError::Unsupported(format!(
                        "tensor map argument {i} of `{entry}`: its base is not a pointer"
                    )));
                };
                let r = self.region(*buffer);
                let what = || format!("tensor map argument {i} of `{entry}`");
                if r.dtype != DType::BF16 {
                    return Err(ExecError::Unsupported(format!(
                        "{}: buffer {} is not bf16",
                        what(),
                        r.name
                    )));
                }
                let (rows, cols, ld) = (eval(&m.rows, env)?, eval(&m.cols, env)?, eval(&m.row_stride, env)?);
                // Every element the map can address lies in the buffer.
                let base = r.operand(eval(offset, env)?, rows, cols, ld, &what())?;
                let map = TileMap2d {
                    base,
                    cols: cols as u64,
                    rows: rows as u64,
                    row_stride: ld as u64,
                    box_cols: m.box_cols,
                    box_rows: m.box_rows,
                    l2_promotion: m.l2_promotion,
                };
                KernelArg::TensorMap(map.encode()?)
            }
        })
    }

    /// Downloads `count` elements of region `r` from element `offset`, as f32.
    fn download_f32(&self, r: &Region, offset: usize, count: usize) -> Result<Vec<f32>, ExecError> {
        let es = r.dtype.size();
        if offset + count > r.len {
            return Err(ExecError::OutOfBounds {
                what: "download".into(),
                buffer: r.name.clone(),
                offset,
                need: count,
                len: r.len,
            });
        }
        let view = r
            .buf
            .slice()
            .try_slice(offset * es..(offset + count) * es)
            .ok_or_else(|| ExecError::BadCall(format!("download range of {}", r.name)))?;
        let mut bytes = vec![0u8; count * es];
        self.gpu
            .stream()
            .memcpy_dtoh(&view, &mut bytes)
            .map_err(|e| CudaError::driver(format!("copying {} bytes from {}", bytes.len(), r.name), e))?;
        self.gpu.synchronize()?;
        Ok(match r.dtype {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => TensorView {
                dtype: r.dtype,
                shape: &[count],
                data: &bytes,
            }
            .to_f32_vec(),
        })
    }

    /// The logits of the last call, `[batch·tokens, vocab]` row-major, as f32.
    pub fn last_logits(&self) -> Result<Vec<f32>, ExecError> {
        let r = &self.outputs[self.logits];
        self.download_f32(r, 0, self.last_rows * self.vocab)
    }

    /// Names of the program's states, in program order.
    pub fn state_names(&self) -> Vec<String> {
        self.program.states.iter().map(|s| s.name.clone()).collect()
    }

    /// One sequence's copy of state `name` (its program shape, e.g. `[G, max_len, Dh]`), as f32.
    pub fn state(&self, name: &str, slot: usize) -> Result<Vec<f32>, ExecError> {
        let i = self
            .program
            .states
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| ExecError::NoState {
                name: name.to_string(),
                names: self.state_names(),
            })?;
        if slot >= self.cfg.slots {
            return Err(ExecError::BadCall(format!("slot {slot} of {} slots", self.cfg.slots)));
        }
        let per = self.state_per_slot[i];
        self.download_f32(&self.states[i], slot * per, per)
    }
}

/// What a step is, as profiles name it: the GEMM with its prologue, or the kernel's entry without
/// its hash (the entry, not the module: a module may hold several launches of one core, e.g. the
/// chunk-parallel delta rule's prep / scan / out, decode attention's combine).
fn step_kind(step: &Step, env: &Env) -> String {
    match step {
        Step::Gemm(g) => match g.prologue {
            None => "gemm".to_string(),
            Some(GemmPrologue::RmsNorm { .. }) => "gemm+rms_norm".to_string(),
            Some(GemmPrologue::SiluMul { .. }) => "gemm+silu_mul".to_string(),
        },
        Step::Launch(l) if l.skips(env).unwrap_or(false) => "skipped".to_string(),
        Step::Launch(l) => {
            let entry = l.pick(env).map_or(l.entry.as_str(), |c| c.entry);
            entry.rsplit_once('_').map_or(entry, |(k, _)| k).to_string()
        }
    }
}

/// A [`BENCH_SKIP_ENV`] list: step kinds that start with one of `prefixes`, or with none of them
/// when `invert` (the list starts with `!`).
#[derive(Debug)]
struct StepFilter {
    invert: bool,
    prefixes: Vec<String>,
}

impl StepFilter {
    /// `None` for an empty list.
    fn parse(list: &str) -> Option<StepFilter> {
        let (invert, list) = list.strip_prefix('!').map_or((false, list), |rest| (true, rest));
        let prefixes: Vec<String> = list.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect();
        (invert || !prefixes.is_empty()).then_some(StepFilter { invert, prefixes })
    }

    fn matches(&self, kind: &str) -> bool {
        self.prefixes.iter().any(|p| kind.starts_with(p.as_str())) != self.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::program::{Buffer, HostIo, Schedule, StateBuffer, Sym};

    #[test]
    fn bench_skip_lists_match_prefixes_or_their_complement() {
        let skips = |list: &str, kind: &str| StepFilter::parse(list).expect("a list").matches(kind);
        assert!(skips("gemm", "gemm+rms_norm"));
        assert!(skips("kda,attn", "attn_decode"));
        assert!(!skips("gemm+rms_norm", "gemm"));
        assert!(!skips("!gemm", "gemm+silu_mul"));
        assert!(skips("!gemm", "kda_decode_step_cluster"));
        assert!(!skips("!gemm,kda", "kda_decode_step_cluster"));
        assert!(skips("!gemm,kda", "rope"));
        assert!(StepFilter::parse("").is_none() && StepFilter::parse(",").is_none());
    }

    /// The executor's helper module compiles to a CUBIN for sm_90a (as `Executor::new` loads
    /// it, with the program's modules) and holds every entry the executor launches.
    #[test]
    fn the_helper_module_compiles_with_its_entries() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the executor helper test") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cubin = KernelCache::new(dir.path())
            .get_or_compile_cubin(HELPER_SOURCE, HELPERS[0], "sm_90a")
            .unwrap_or_else(|e| panic!("{e}"));
        for e in HELPERS {
            assert!(cubin.holds_symbol(e), "no kernel {e} in the helper module");
        }
        assert!(!cubin.holds_symbol("modelc_exec_spi"), "a prefix is not a symbol");
        assert!(!cubin.holds_symbol("exec_spin"), "a suffix is not a symbol");
    }

    fn program(buffers: Vec<(&str, &str)>) -> Program {
        let io = |name: &str, e: &str| HostIo {
            name: name.into(),
            dtype: DType::I32,
            elements: e.parse().unwrap(),
            note: String::new(),
        };
        Program {
            format: crate::program::PROGRAM_FORMAT,
            model: "t".into(),
            placement: Default::default(),
            kernels: vec![],
            weights: vec![],
            buffers: buffers
                .into_iter()
                .map(|(n, e)| Buffer {
                    name: n.into(),
                    dtype: DType::F32,
                    elements: e.parse().unwrap(),
                    values: vec![],
                    counters: false,
                })
                .collect(),
            states: vec![StateBuffer {
                name: "layers.0.key".into(),
                dtype: DType::BF16,
                shape: vec![Expr::c(2), Expr::sym(Sym::MaxLen), Expr::c(8)],
                note: String::new(),
            }],
            inputs: vec![
                io("tokens", "batch*tokens"),
                io("positions", "batch*tokens"),
                io("past_len", "slots"),
            ],
            outputs: vec![HostIo {
                dtype: DType::BF16,
                ..io("logits", "10*batch*tokens")
            }],
            prefill: Schedule::default(),
            decode: Schedule::default(),
            head: None,
        }
    }

    #[test]
    fn sizes_bound_every_call_the_config_allows() {
        let p = program(vec![
            ("act", "64*batch*tokens"),
            // Split-K workspace: not monotone in batch.
            ("ws", "68*batch*max(min(cdiv(2*sms, 2*batch), cdiv(past + 1, 32)), 1)"),
        ]);
        let cfg = ExecConfig {
            max_len: 4096,
            slots: 5,
            max_prefill_tokens: 512,
            max_prefill_batch: 2,
            poison: false,
            graphs: true,
        };
        let sms = 132;
        let s = Sizes::of(&p, &cfg, sms).unwrap();
        assert_eq!(s.buffers[0], 64 * 2 * 512);
        assert_eq!(s.inputs, vec![1024, 1024, 5]);
        assert_eq!(s.outputs, vec![10 * 1024]);
        assert_eq!(s.state_per_slot, vec![2 * 4096 * 8]);
        // Brute force over every decode and prefill call the config allows.
        let mut worst = 0;
        for batch in 1..=5u64 {
            for past in 0..=4095u64 {
                let env = Env {
                    batch,
                    tokens: 1,
                    past,
                    max_len: 4096,
                    slots: 5,
                    slot: 0,
                    sms,
                };
                worst = worst.max(p.buffers[1].elements.eval(&env).unwrap() as usize);
            }
        }
        assert_eq!(s.buffers[1], worst);
        // batch 5 needs 5·ceil(132/5) = 135 partials, more than batch 1's 132.
        assert_eq!(worst, 68 * 135);
        let m = s.memory(&p, cfg.slots);
        assert_eq!(m.states, 2 * 4096 * 8 * 5 * 2);
        assert_eq!(m.weights, 0);
        assert_eq!(
            m.buffers,
            (64 * 1024 + 68 * 135) * 4 + (1024 + 1024 + 5) * 4 + 10 * 1024 * 2
        );
    }

    #[test]
    fn packing_fills_rows_converts_and_names_bad_parts() {
        use crate::program::{DeviceWeight, WeightPart};
        let w = DeviceWeight {
            name: "a+b".into(),
            dtype: DType::BF16,
            shape: vec![3, 2],
            parts: vec![
                WeightPart {
                    key: "a".into(),
                    shape: vec![1, 2],
                    row: 0,
                    rows: 1,
                },
                WeightPart {
                    key: "b".into(),
                    shape: vec![2, 2],
                    row: 1,
                    rows: 2,
                },
            ],
        };
        let a = HostTensor::from_f32(vec![1, 2], &[1.0, 2.0]).unwrap();
        let b = HostTensor::from_bf16(vec![2, 2], &[bf16::from_f32(3.0); 4]).unwrap();
        let mut src = |k: &str| -> Result<WeightTensor<'static>, BoxError> {
            match k {
                "a" => Ok(WeightTensor::Host(a.clone())),
                "b" => Ok(WeightTensor::Host(b.clone())),
                _ => Err("missing".into()),
            }
        };
        let bytes = pack_weight(&w, &mut src).unwrap();
        let vals: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        assert_eq!(vals, vec![1.0, 2.0, 3.0, 3.0, 3.0, 3.0]);

        let mut wrong = |_: &str| -> Result<WeightTensor<'static>, BoxError> {
            Ok(WeightTensor::Host(
                HostTensor::from_f32(vec![2, 1], &[0.0, 0.0]).unwrap(),
            ))
        };
        let e = pack_weight(&w, &mut wrong).unwrap_err().to_string();
        assert!(e.contains("`a`") && e.contains("a+b") && e.contains("[1, 2]"), "{e}");
        let mut missing = |_: &str| -> Result<WeightTensor<'static>, BoxError> { Err("not in the checkpoint".into()) };
        let e = pack_weight(&w, &mut missing).unwrap_err().to_string();
        assert!(e.contains("`a`") && e.contains("not in the checkpoint"), "{e}");

        let gap = DeviceWeight {
            parts: vec![w.parts[0].clone()],
            ..w.clone()
        };
        let e = pack_weight(&gap, &mut src).unwrap_err().to_string();
        assert!(e.contains("row 1"), "{e}");
    }
}
