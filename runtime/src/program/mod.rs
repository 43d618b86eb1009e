//! A compiled program: what `modelc build` writes to `DIR/program.json` and an executor runs.
//!
//! A program runs **prefill** for sequences (each sequence alone, `batch = 1`, `slot` = its
//! index; or several sequences of one length together) and then **decode** steps over the whole
//! batch (`tokens = 1`, `slot = 0`). Everything whose size depends on the call is an [`Expr`]
//! over the symbols of [`Sym`]; everything else is a constant.
//!
//! - `weights`: device tensors, each packed once at load from checkpoint tensors (concatenated
//!   along dim 0 for merged GEMMs, converted to the listed dtype).
//! - `buffers`: activations and workspaces of one call, sized by `batch` and `tokens`; a buffer
//!   is reused by values whose lifetimes do not overlap.
//! - `states`: per-sequence persistent state (KV caches of `max_len` tokens, conv windows,
//!   recurrent states in f32), `slots` sequences each; a step addresses sequence `slot + b`.
//! - `inputs` (`tokens`, `positions` `[batch·tokens]` i32 and `past_len` `[slots]` i32, the tokens
//!   each sequence has already seen) and `outputs` (`logits`).
//! - `prefill` / `decode`: the steps, in order: cuBLAS GEMMs (`y = alpha·x·Wᵀ + beta·C`) and
//!   kernel launches (module, entry, grid and block, arguments).
//! - `head` (optional): where the prefill's trailing final-norm and LM-head steps start and the
//!   one hidden buffer they read, so a call that wants only each sequence's last logits runs them
//!   on one row per sequence ([`PrefillHead`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tensor::DType;

/// Version of the `program.json` format.
/// 2: launch variants (`LaunchStep::variants`) and single-target modules (`KernelModule::target`).
pub const PROGRAM_FORMAT: u32 = 2;

/// Errors of evaluating or validating a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("cannot parse the expression `{text}`: {reason}")]
    Parse { text: String, reason: String },
    #[error("evaluating `{expr}`: {reason}")]
    Eval { expr: String, reason: String },
    #[error("program: {0}")]
    Invalid(String),
}

/// `Serialize`/`Deserialize` through the type's text (`Display` / `FromStr`).
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

mod expr;

pub use expr::{Cmp, Cond, Env, Expr, Sym};

/// One generated CUDA C module (a translation unit), compiled once and shared by every step
/// that launches one of its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelModule {
    /// The module name: `<kind>_<hash>`; also its first entry.
    pub name: String,
    /// Path of the source relative to the build directory (`kernels/<name>.cu`).
    pub file: String,
    /// sha256 of the source file, hex.
    pub sha256: String,
    /// `extern "C" __global__` entry points.
    pub entries: Vec<String>,
    /// The one NVRTC target the module compiles for (`sm_90a`: arch-specific instructions);
    /// any device's target when absent. Only launch variants for that device use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Bytes one launch reads from global memory, FLOPs it performs (estimates).
    pub bytes_loaded: Expr,
    pub bytes_stored: Expr,
    pub flops: Expr,
}

/// A device weight: checkpoint tensors converted to `dtype` and concatenated along dim 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceWeight {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub parts: Vec<WeightPart>,
}

/// One checkpoint tensor inside a [`DeviceWeight`]: it fills rows `[row, row + rows)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightPart {
    pub key: String,
    /// Its shape in the checkpoint.
    pub shape: Vec<usize>,
    pub row: usize,
    pub rows: usize,
}

/// A per-call activation buffer or workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buffer {
    pub name: String,
    pub dtype: DType,
    pub elements: Expr,
    /// The IR values that live in it, in step order (for dumps and debugging).
    pub values: Vec<String>,
    /// Counters that its kernels leave zero (the fused attention decode's block counts):
    /// allocated zeroed and never poisoned, so that every launch finds them zero.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counters: bool,
}

/// Persistent per-sequence state: `slots` copies of `shape`, slot-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateBuffer {
    /// The IR state name (`layers.3.conv_q`); the graph reads `state.<name>`, writes it back.
    pub name: String,
    pub dtype: DType,
    /// Shape of one sequence's state.
    pub shape: Vec<Expr>,
    /// How the state is laid out and updated.
    pub note: String,
}

impl StateBuffer {
    /// Elements of one sequence's state.
    pub fn per_slot(&self) -> Expr {
        self.shape.iter().cloned().fold(Expr::c(1), Expr::times)
    }
}

/// A host-provided input or host-read output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostIo {
    pub name: String,
    pub dtype: DType,
    pub elements: Expr,
    pub note: String,
}

/// What a pointer refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "index", rename_all = "snake_case")]
pub enum BufferRef {
    Buffer(usize),
    State(usize),
    Weight(usize),
    Input(usize),
    Output(usize),
}

/// A matrix operand: `rows` rows of `ld` elements starting `offset` elements in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operand {
    pub buffer: BufferRef,
    pub offset: Expr,
    /// Leading dimension (row stride) in elements.
    pub ld: usize,
}

/// `y[m, n] = alpha · x[m, k] · W[n, k]ᵀ (+ bias[n]) + beta · c[m, n]` in bf16 with f32
/// accumulation (cuBLASLt; the bias as its epilogue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GemmStep {
    pub label: String,
    pub layer: Option<usize>,
    pub m: Expr,
    pub n: usize,
    pub k: usize,
    pub x: Operand,
    /// Index into `weights`: `[n, k]` row-major.
    pub weight: usize,
    pub bias: Option<usize>,
    /// The accumulated operand (cuBLAS's C) when `beta ≠ 0`.
    pub c: Option<Operand>,
    pub y: Operand,
    pub alpha: f32,
    pub beta: f32,
    pub flops: Expr,
    pub bytes: Expr,
    /// An input transform fused into the read of `x` (decode schedules: the norm or activation
    /// kernel that would have written the GEMM's input is not launched). Absent: x as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prologue: Option<GemmPrologue>,
}

/// What a GEMM step computes from `x` before multiplying (see [`GemmStep::prologue`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GemmPrologue {
    /// RMSNorm of each row over its `k` channels: the GEMM multiplies
    /// `x · rsqrt(mean(x²) + eps) · w`, `w` = `weights[weight]`, a vector of `k` elements.
    RmsNorm { weight: usize, eps: f32 },
    /// The GEMM multiplies `silu(x) · up` (the product rounded to bf16), `up` an operand of the
    /// same shape as `x` (`m` rows of `k`, at its own row stride).
    SiluMul { up: Operand },
}

/// A kernel argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arg {
    /// A device pointer `offset` elements into a buffer.
    Ptr { buffer: BufferRef, offset: Expr },
    /// A null pointer (an optional input the kernel does not use).
    Null,
    /// An `int` argument.
    I32(Expr),
    /// A TMA tensor map (a `__grid_constant__` parameter of 128 bytes), encoded by the executor
    /// for each call; only in a variant's `extra_args` (the devices that have TMA).
    TensorMap(TensorMapArg),
}

/// A 2-D bf16 tensor for a TMA tensor map: `rows` rows of `cols` elements, `row_stride` elements
/// apart, from `ptr` (an [`Arg::Ptr`]), read in boxes of `box_rows` × `box_cols` with the
/// 128-byte swizzle; `l2_promotion` bytes (0, 64, 128, 256). Where TMA cannot address the
/// tensor (an unaligned base or stride), the kernel gets the all-zero map and must copy those
/// tiles itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMapArg {
    pub ptr: Box<Arg>,
    pub row_stride: Expr,
    pub cols: Expr,
    pub rows: Expr,
    pub box_cols: u32,
    pub box_rows: u32,
    pub l2_promotion: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchStep {
    pub label: String,
    pub layer: Option<usize>,
    /// The module (`kernels[*].name`) and its entry point.
    pub module: String,
    pub entry: String,
    pub grid: [Expr; 3],
    pub block: [u32; 3],
    /// Dynamic shared memory in bytes.
    pub smem: u32,
    pub args: Vec<Arg>,
    /// The kernel starts by waiting for the kernels before it (`griddepcontrol.wait`), so it may
    /// be launched as a programmatic dependent launch (it overlaps the previous kernel's tail).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pdl: bool,
    /// Launches to use in place of this one on some devices or for some calls (the first whose
    /// conditions hold wins; the step's own launch is the fallback). They take the same
    /// arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<LaunchVariant>,
    /// Calls where this holds leave the step out: an earlier step's variant does its work (the
    /// delta rule's scan with the output pass, launched in place of the scan, makes the output
    /// pass's step redundant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_when: Option<Cond>,
}

/// An alternative launch of a [`LaunchStep`]: another entry (of a module that may target one
/// architecture only) with its own geometry, for devices of one compute capability and/or the
/// calls where a condition on the symbols holds. E.g. the Hopper attention prefill (`wgmma`,
/// `sm_90a` only) with `cc: "9.0"`, or a wider delta-rule scan block `when: "batch*16 >= 64"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchVariant {
    /// Only on devices of exactly this compute capability (`"9.0"`); on any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<ComputeCapability>,
    /// Only for calls where this holds; always when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Cond>,
    pub module: String,
    pub entry: String,
    pub grid: [Expr; 3],
    pub block: [u32; 3],
    pub smem: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pdl: bool,
    /// Arguments the variant's entry takes after the step's own (e.g. the tensor maps of the
    /// Hopper attention prefill's TMA loads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
}

/// What a launch step launches for one call: its own launch or one of its variants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaunchChoice<'a> {
    pub module: &'a str,
    pub entry: &'a str,
    pub grid: &'a [Expr; 3],
    pub block: [u32; 3],
    pub smem: u32,
    pub pdl: bool,
    /// Arguments after the step's own ([`LaunchVariant::extra_args`]; none for the step's own).
    pub extra_args: &'a [Arg],
}

impl LaunchStep {
    /// Drops the variants meant for devices of another compute capability (done once, when a
    /// program is loaded for a device).
    pub fn specialize(&mut self, cc: ComputeCapability) {
        self.variants.retain(|v| v.cc.is_none_or(|want| want == cc));
    }

    /// Whether a call leaves the step out ([`Self::skip_when`]).
    pub fn skips(&self, env: &Env) -> Result<bool, ProgramError> {
        self.skip_when.as_ref().map_or(Ok(false), |c| c.holds(env))
    }

    /// Which launch a call makes, as an index into [`Self::choices`]: 1 + the first variant whose
    /// condition holds in `env`, else 0 (the step's own). Variants of other devices must have
    /// been removed by [`Self::specialize`].
    pub fn pick_index(&self, env: &Env) -> Result<usize, ProgramError> {
        for (i, v) in self.variants.iter().enumerate() {
            if v.when.as_ref().map_or(Ok(true), |c| c.holds(env))? {
                return Ok(i + 1);
            }
        }
        Ok(0)
    }

    /// The launch for a call (see [`Self::pick_index`]).
    pub fn pick(&self, env: &Env) -> Result<LaunchChoice<'_>, ProgramError> {
        Ok(match self.pick_index(env)? {
            0 => self.own(),
            i => self.variants[i - 1].choice(),
        })
    }

    /// Every launch this step may make: its own, then its variants'.
    pub fn choices(&self) -> impl Iterator<Item = LaunchChoice<'_>> {
        std::iter::once(self.own()).chain(self.variants.iter().map(LaunchVariant::choice))
    }

    fn own(&self) -> LaunchChoice<'_> {
        LaunchChoice {
            module: &self.module,
            entry: &self.entry,
            grid: &self.grid,
            block: self.block,
            smem: self.smem,
            pdl: self.pdl,
            extra_args: &[],
        }
    }
}

impl LaunchVariant {
    fn choice(&self) -> LaunchChoice<'_> {
        LaunchChoice {
            module: &self.module,
            entry: &self.entry,
            grid: &self.grid,
            block: self.block,
            smem: self.smem,
            pdl: self.pdl,
            extra_args: &self.extra_args,
        }
    }
}

/// A device's compute capability, written `major.minor` (`"9.0"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComputeCapability {
    pub major: u32,
    pub minor: u32,
}

impl ComputeCapability {
    pub const HOPPER: ComputeCapability = ComputeCapability { major: 9, minor: 0 };
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ComputeCapability {
    type Err = ProgramError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = || -> Option<ComputeCapability> {
            let (a, b) = s.split_once('.')?;
            Some(ComputeCapability {
                major: a.parse().ok()?,
                minor: b.parse().ok()?,
            })
        };
        parse().ok_or_else(|| ProgramError::Parse {
            text: s.to_string(),
            reason: "a compute capability is written major.minor, e.g. 9.0".into(),
        })
    }
}

serde_as_text!(ComputeCapability);

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    Gemm(GemmStep),
    Launch(LaunchStep),
}

impl Step {
    pub fn label(&self) -> &str {
        match self {
            Step::Gemm(g) => &g.label,
            Step::Launch(l) => &l.label,
        }
    }

    pub fn layer(&self) -> Option<usize> {
        match self {
            Step::Gemm(g) => g.layer,
            Step::Launch(l) => l.layer,
        }
    }
}

/// The steps of one phase, in launch order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

/// The trailing prefill steps that only turn hidden rows into logits (the final norm and the LM
/// head). When a caller wants just each sequence's last logits, the executor moves each
/// sequence's last hidden row to the front of `hidden` and runs these steps for one token per
/// sequence (or skips them for a prompt chunk whose logits nobody reads): at 4096 tokens this
/// saves the LM head's GEMM over 4095 rows and a 500 MB logits write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefillHead {
    /// Index in `prefill.steps` of the first head step; every later step belongs to the head.
    pub first_step: usize,
    /// The only per-row value the head reads: `[rows, channels]` with row stride `hidden.ld`.
    pub hidden: Operand,
    pub channels: usize,
}

/// A whole compiled model. See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub format: u32,
    pub model: String,
    /// Stochastic layer → the sub-mixer this program runs.
    pub placement: BTreeMap<usize, String>,
    pub kernels: Vec<KernelModule>,
    pub weights: Vec<DeviceWeight>,
    pub buffers: Vec<Buffer>,
    pub states: Vec<StateBuffer>,
    pub inputs: Vec<HostIo>,
    pub outputs: Vec<HostIo>,
    pub prefill: Schedule,
    pub decode: Schedule,
    /// Absent when the compiler could not isolate the head (the executor then always computes
    /// every row's logits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<PrefillHead>,
}

impl Program {
    /// Keeps only the launch variants a device of compute capability `cc` may run (called once
    /// when the program is loaded for a device).
    pub fn specialize(&mut self, cc: ComputeCapability) {
        for sched in [&mut self.prefill, &mut self.decode] {
            for step in &mut sched.steps {
                if let Step::Launch(l) = step {
                    l.specialize(cc);
                }
            }
        }
    }

    /// Removes every launch variant: each step makes its own (portable) launch, and none is
    /// left out (a step is only skipped where a variant before it does its work).
    pub fn drop_variants(&mut self) {
        for sched in [&mut self.prefill, &mut self.decode] {
            for step in &mut sched.steps {
                if let Step::Launch(l) = step {
                    l.variants.clear();
                    l.skip_when = None;
                }
            }
        }
    }

    /// Names of the modules some launch (or launch variant) uses, in module order: after
    /// [`Self::specialize`], the ones to compile for the device.
    pub fn used_modules(&self) -> Vec<&KernelModule> {
        let used: std::collections::BTreeSet<&str> = [&self.prefill, &self.decode]
            .into_iter()
            .flat_map(|s| &s.steps)
            .filter_map(|st| match st {
                Step::Launch(l) => Some(l.choices().map(|c| c.module)),
                Step::Gemm(_) => None,
            })
            .flatten()
            .collect();
        self.kernels.iter().filter(|m| used.contains(m.name.as_str())).collect()
    }

    /// Checks every reference (buffers, weights, modules, entries) is in range.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let bad = |what: String| Err(ProgramError::Invalid(what));
        if self.format == 0 || self.format > PROGRAM_FORMAT {
            return bad(format!(
                "format {} is not one this modelc reads (1 ..= {PROGRAM_FORMAT}): rebuild the program",
                self.format
            ));
        }
        let check_ref = |r: &BufferRef, at: &str| -> Result<(), ProgramError> {
            let (len, kind, i) = match *r {
                BufferRef::Buffer(i) => (self.buffers.len(), "buffer", i),
                BufferRef::State(i) => (self.states.len(), "state", i),
                BufferRef::Weight(i) => (self.weights.len(), "weight", i),
                BufferRef::Input(i) => (self.inputs.len(), "input", i),
                BufferRef::Output(i) => (self.outputs.len(), "output", i),
            };
            if i >= len {
                return Err(ProgramError::Invalid(format!("{at}: {kind} {i} out of range ({len})")));
            }
            Ok(())
        };
        for w in &self.weights {
            let rows: usize = w.parts.iter().map(|p| p.rows).sum();
            if w.shape.first() != Some(&rows) {
                return bad(format!("weight {}: parts cover {rows} rows of {:?}", w.name, w.shape));
            }
        }
        for (phase, sched) in [("prefill", &self.prefill), ("decode", &self.decode)] {
            for (i, step) in sched.steps.iter().enumerate() {
                let at = format!("{phase} step {i} ({})", step.label());
                match step {
                    Step::Gemm(g) => {
                        for op in [Some(&g.x), g.c.as_ref(), Some(&g.y)].into_iter().flatten() {
                            check_ref(&op.buffer, &at)?;
                        }
                        if g.weight >= self.weights.len() || g.bias.is_some_and(|b| b >= self.weights.len()) {
                            return bad(format!("{at}: weight out of range"));
                        }
                        match &g.prologue {
                            Some(GemmPrologue::RmsNorm { weight, .. }) => match self.weights.get(*weight) {
                                Some(w) if w.shape.iter().product::<usize>() == g.k => {}
                                Some(w) => {
                                    return bad(format!(
                                        "{at}: RMSNorm prologue weight {} has shape {:?}, not [{}]",
                                        w.name, w.shape, g.k
                                    ))
                                }
                                None => return bad(format!("{at}: RMSNorm prologue weight out of range")),
                            },
                            Some(GemmPrologue::SiluMul { up }) => check_ref(&up.buffer, &at)?,
                            None => {}
                        }
                    }
                    Step::Launch(l) => {
                        // A step is only left out where a variant before it, on every device,
                        // does its work.
                        if let Some(c) = &l.skip_when {
                            let covered = sched.steps[..i].iter().any(|s| {
                                matches!(s, Step::Launch(e) if e.variants.iter()
                                    .any(|v| v.cc.is_none() && v.when.as_ref() == Some(c)))
                            });
                            if !covered {
                                return bad(format!(
                                    "{at}: left out where `{c}`, but no variant of an earlier launch (for \
                                     every device) is taken where it holds"
                                ));
                            }
                        }
                        for c in l.choices() {
                            let Some(m) = self.kernels.iter().find(|k| k.name == c.module) else {
                                return bad(format!("{at}: no module `{}`", c.module));
                            };
                            if !m.entries.iter().any(|e| e == c.entry) {
                                return bad(format!("{at}: module `{}` has no entry `{}`", c.module, c.entry));
                            }
                        }
                        if let Some(m) = self.kernels.iter().find(|k| k.name == l.module && k.target.is_some()) {
                            return bad(format!(
                                "{at}: module `{}` compiles for {} only, so it may be launched by a \
                                 variant for that device, not as the step's own launch",
                                m.name,
                                m.target.as_deref().unwrap_or("")
                            ));
                        }
                        for a in &l.args {
                            match a {
                                Arg::Ptr { buffer, .. } => check_ref(buffer, &at)?,
                                Arg::TensorMap(_) => {
                                    return bad(format!("{at}: a tensor map may only be a variant's extra argument"))
                                }
                                Arg::Null | Arg::I32(_) => {}
                            }
                        }
                        for v in &l.variants {
                            for a in &v.extra_args {
                                match a {
                                    Arg::Ptr { buffer, .. } => check_ref(buffer, &at)?,
                                    Arg::TensorMap(m) => match m.ptr.as_ref() {
                                        Arg::Ptr { buffer, .. } => check_ref(buffer, &at)?,
                                        _ => return bad(format!("{at}: a tensor map's base must be a pointer")),
                                    },
                                    Arg::Null | Arg::I32(_) => {}
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(h) = &self.head {
            if h.first_step == 0 || h.first_step >= self.prefill.steps.len() {
                return bad(format!(
                    "head: first step {} is not a trailing part of the {} prefill steps",
                    h.first_step,
                    self.prefill.steps.len()
                ));
            }
            if !matches!(h.hidden.buffer, BufferRef::Buffer(_)) || h.channels == 0 || h.channels > h.hidden.ld {
                return bad(format!(
                    "head: hidden rows of {} channels at row stride {} must be an activation buffer",
                    h.channels, h.hidden.ld
                ));
            }
            check_ref(&h.hidden.buffer, "head")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(module: &str, entry: &str, grid0: u64) -> LaunchStep {
        LaunchStep {
            label: "core".into(),
            layer: Some(0),
            module: module.into(),
            entry: entry.into(),
            grid: [Expr::c(grid0), Expr::sym(Sym::Batch), Expr::c(1)],
            block: [128, 1, 1],
            smem: 0,
            args: vec![],
            pdl: false,
            variants: vec![],
            skip_when: None,
        }
    }

    fn variant(cc: Option<&str>, when: Option<&str>, module: &str, entry: &str) -> LaunchVariant {
        LaunchVariant {
            cc: cc.map(|c| c.parse().unwrap()),
            when: when.map(|w| w.parse().unwrap()),
            module: module.into(),
            entry: entry.into(),
            grid: [Expr::c(7), Expr::c(1), Expr::c(1)],
            block: [384, 1, 1],
            smem: 4096,
            pdl: true,
            extra_args: Vec::new(),
        }
    }

    #[test]
    fn conditions_and_capabilities_round_trip_and_reject_bad_text() {
        for text in ["16*batch >= 128", "tokens < 64", "cdiv(tokens, 64)*batch >= sms"] {
            let c: Cond = text.parse().unwrap();
            assert_eq!(c.to_string().parse::<Cond>().unwrap(), c, "{text}");
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Cond>(&json).unwrap(), c);
        }
        let env = Env {
            batch: 8,
            tokens: 100,
            sms: 132,
            ..Env::default()
        };
        assert!("16*batch >= 128".parse::<Cond>().unwrap().holds(&env).unwrap());
        assert!(!"16*batch >= 129".parse::<Cond>().unwrap().holds(&env).unwrap());
        assert!("tokens < 101".parse::<Cond>().unwrap().holds(&env).unwrap());
        assert!(!"tokens < 100".parse::<Cond>().unwrap().holds(&env).unwrap());
        for bad in ["batch", "batch == 3", "batch >= ", ">= 3", "batch >= bach"] {
            assert!(bad.parse::<Cond>().is_err(), "{bad}");
        }
        let cc: ComputeCapability = "9.0".parse().unwrap();
        assert_eq!(cc, ComputeCapability::HOPPER);
        assert_eq!(cc.to_string(), "9.0");
        for bad in ["9", "9.x", "sm_90", ""] {
            assert!(bad.parse::<ComputeCapability>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_step_picks_the_first_variant_that_applies_to_the_device_and_call() {
        let mut step = launch("m", "own", 1);
        step.variants = vec![
            variant(Some("9.0"), None, "hopper", "fast"),
            variant(None, Some("4*batch >= 16"), "wide", "wide"),
        ];
        let one = Env {
            batch: 1,
            ..Env::default()
        };
        let eight = Env {
            batch: 8,
            ..Env::default()
        };
        // Before specialising, every variant is a candidate.
        assert_eq!(step.pick(&one).unwrap().entry, "fast");
        let mut ampere = step.clone();
        ampere.specialize(ComputeCapability { major: 8, minor: 0 });
        assert_eq!(ampere.variants.len(), 1);
        assert_eq!(ampere.pick(&one).unwrap().entry, "own");
        let wide = ampere.pick(&eight).unwrap();
        assert_eq!(
            (wide.module, wide.entry, wide.block, wide.smem, wide.pdl),
            ("wide", "wide", [384, 1, 1], 4096, true)
        );
        let mut hopper = step.clone();
        hopper.specialize(ComputeCapability::HOPPER);
        assert_eq!(hopper.pick(&one).unwrap().entry, "fast");
        assert_eq!(hopper.pick(&eight).unwrap().entry, "fast");
        assert_eq!(
            step.choices().map(|c| c.entry).collect::<Vec<_>>(),
            ["own", "fast", "wide"]
        );
        assert_eq!(
            (ampere.pick_index(&one).unwrap(), ampere.pick_index(&eight).unwrap()),
            (0, 1)
        );
        // The JSON form omits empty variant lists and round-trips the rest.
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["variants"][0]["cc"], "9.0");
        assert_eq!(json["variants"][1]["when"], "4*batch >= 16");
        assert_eq!(serde_json::from_value::<LaunchStep>(json).unwrap(), step);
        let plain = serde_json::to_value(launch("m", "own", 1)).unwrap();
        assert!(plain.get("variants").is_none());
        assert!(plain.get("skip_when").is_none());
    }

    #[test]
    fn a_step_is_left_out_of_the_calls_its_skip_condition_holds_for() {
        let mut step = launch("m", "own", 1);
        step.skip_when = Some("batch*128 < sms+1".parse().unwrap());
        let on = |batch| Env {
            batch,
            sms: 132,
            ..Env::default()
        };
        assert!(step.skips(&on(1)).unwrap());
        assert!(!step.skips(&on(2)).unwrap());
        assert!(!launch("m", "own", 1).skips(&on(1)).unwrap());
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["skip_when"], "128*batch < sms + 1");
        assert_eq!(serde_json::from_value::<LaunchStep>(json.clone()).unwrap(), step);
        // A step may only be left out where a variant of an earlier one (on every device) is
        // taken.
        let mut fused = launch("m", "own", 1);
        fused.variants = vec![variant(None, Some("128*batch < sms + 1"), "m", "both")];
        let mut p = program_with(fused.clone(), &[("m", "own", None)]);
        p.kernels[0].entries.push("both".into());
        p.prefill.steps.push(Step::Launch(step.clone()));
        p.validate().unwrap();
        let mut hopper_only = p.clone();
        let Step::Launch(first) = &mut hopper_only.prefill.steps[0] else {
            panic!("a launch")
        };
        first.variants[0].cc = Some(ComputeCapability::HOPPER);
        let err = hopper_only.validate().unwrap_err().to_string();
        assert!(err.contains("left out where `128*batch < sms + 1`"), "{err}");
        let mut alone = program_with(step.clone(), &[("m", "own", None)]);
        assert!(alone.validate().is_err());
        // Without variants nothing does a skipped step's work: none is left out.
        alone.drop_variants();
        alone.validate().unwrap();
        let mut portable = program_with(step, &[("m", "own", None)]);
        portable.drop_variants();
        let Step::Launch(l) = &portable.prefill.steps[0] else {
            panic!("a launch")
        };
        assert!(!l.skips(&on(1)).unwrap());
    }

    fn program_with(step: LaunchStep, modules: &[(&str, &str, Option<&str>)]) -> Program {
        Program {
            format: PROGRAM_FORMAT,
            model: "t".into(),
            placement: BTreeMap::new(),
            kernels: modules
                .iter()
                .map(|(name, entry, target)| KernelModule {
                    name: (*name).into(),
                    file: format!("kernels/{name}.cu"),
                    sha256: String::new(),
                    entries: vec![(*entry).into()],
                    target: target.map(String::from),
                    bytes_loaded: Expr::c(0),
                    bytes_stored: Expr::c(0),
                    flops: Expr::c(0),
                })
                .collect(),
            weights: vec![],
            buffers: vec![],
            states: vec![],
            inputs: vec![],
            outputs: vec![],
            prefill: Schedule {
                steps: vec![Step::Launch(step)],
            },
            decode: Schedule::default(),
            head: None,
        }
    }

    #[test]
    fn validation_checks_variants_and_specialising_drops_other_devices_modules() {
        let modules = [
            ("m", "own", None),
            ("hopper", "fast", Some("sm_90a")),
            ("unused", "x", None),
        ];
        let mut step = launch("m", "own", 1);
        step.variants = vec![variant(Some("9.0"), None, "hopper", "fast")];
        let mut p = program_with(step.clone(), &modules);
        p.validate().unwrap();
        let names = |p: &Program| p.used_modules().iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p), ["m", "hopper"]);
        let mut ampere = p.clone();
        ampere.specialize(ComputeCapability { major: 8, minor: 6 });
        assert_eq!(names(&ampere), ["m"]);
        p.specialize(ComputeCapability::HOPPER);
        assert_eq!(names(&p), ["m", "hopper"]);
        let mut portable = p.clone();
        portable.drop_variants();
        assert_eq!(names(&portable), ["m"]);

        let mut missing = step.clone();
        missing.variants[0].entry = "slow".into();
        let err = program_with(missing, &modules).validate().unwrap_err().to_string();
        assert!(err.contains("module `hopper` has no entry `slow`"), "{err}");
        let mut no_module = step.clone();
        no_module.variants[0].module = "gone".into();
        let err = program_with(no_module, &modules).validate().unwrap_err().to_string();
        assert!(err.contains("no module `gone`"), "{err}");
        // A single-target module is never the fallback launch.
        let err = program_with(launch("hopper", "fast", 1), &modules)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("compiles for sm_90a only"), "{err}");
        // Tensor maps: a variant's extra arguments only, over a pointer into a known buffer;
        // they survive a JSON round trip.
        let map = |ptr: Arg| {
            Arg::TensorMap(TensorMapArg {
                ptr: Box::new(ptr),
                row_stride: Expr::c(1024),
                cols: Expr::c(1024),
                rows: "batch*tokens".parse().unwrap(),
                box_cols: 64,
                box_rows: 128,
                l2_promotion: 256,
            })
        };
        let buf0 = Arg::Ptr {
            buffer: BufferRef::Buffer(0),
            offset: Expr::c(0),
        };
        let with_buffer = |step: LaunchStep| {
            let mut p = program_with(step, &modules);
            p.buffers.push(Buffer {
                name: "kv".into(),
                dtype: DType::BF16,
                elements: Expr::c(1 << 20),
                values: vec![],
                counters: false,
            });
            p
        };
        let mut tma = step.clone();
        tma.variants[0].extra_args = vec![map(buf0.clone())];
        let p = with_buffer(tma.clone());
        p.validate().unwrap();
        let back: Program = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let mut own = step.clone();
        own.args.push(map(buf0));
        let err = with_buffer(own).validate().unwrap_err().to_string();
        assert!(err.contains("only be a variant's extra argument"), "{err}");
        let mut not_ptr = tma.clone();
        not_ptr.variants[0].extra_args = vec![map(Arg::I32(Expr::c(0)))];
        let err = with_buffer(not_ptr).validate().unwrap_err().to_string();
        assert!(err.contains("base must be a pointer"), "{err}");
        let mut dangling = tma;
        dangling.variants[0].extra_args = vec![map(Arg::Ptr {
            buffer: BufferRef::Buffer(99),
            offset: Expr::c(0),
        })];
        let err = with_buffer(dangling).validate().unwrap_err().to_string();
        assert!(err.contains("buffer 99 out of range"), "{err}");
        let mut future = program_with(step, &modules);
        future.format = PROGRAM_FORMAT + 1;
        let err = future.validate().unwrap_err().to_string();
        assert!(err.contains("rebuild the program"), "{err}");
    }

    /// A buffer's `counters` mark is written only where set, and a program without it (every
    /// program before it existed) reads as plain buffers.
    #[test]
    fn counters_buffers_round_trip_and_default_to_plain() {
        let buffer = |counters| Buffer {
            name: "counters.attn_decode".into(),
            dtype: DType::I32,
            elements: "4*batch".parse().unwrap(),
            values: vec![],
            counters,
        };
        let plain = serde_json::to_value(buffer(false)).unwrap();
        assert!(plain.get("counters").is_none(), "{plain}");
        let marked = serde_json::to_value(buffer(true)).unwrap();
        assert_eq!(marked["counters"], serde_json::Value::Bool(true), "{marked}");
        assert_eq!(serde_json::from_value::<Buffer>(marked).unwrap(), buffer(true));
        assert_eq!(serde_json::from_value::<Buffer>(plain).unwrap(), buffer(false));
    }
}
