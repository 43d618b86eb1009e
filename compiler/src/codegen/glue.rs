//! Row-wise "glue" kernels: one CUDA C kernel per glue step of the fusion plan.
//!
//! Every value of a glue step is `[batch, tokens, C]` and each output row depends only on the
//! same row of the inputs. Each IR node becomes a device lambda `v_k(c)` giving channel `c` of
//! its value in f32; ops that move channels (slice, concat, repeat, the RoPE partner) call their
//! input at another index, and ops that reduce (RMS/L2/gated/layer norms, per row or per head)
//! first compute their statistics into shared memory with a fixed-order reduction
//! (deterministic), then read them. Only the step's outputs are stored (bf16 or f32);
//! intermediates never leave registers. Inputs are read through pointer + row stride, so a
//! column window of a wider buffer (a merged GEMM's output) is read in place.
//!
//! Parallelism is sized for few rows (decode: one row per sequence), where a kernel's time is
//! memory latency, not bandwidth: every thread handles a compile-time number of channels in
//! unrolled loops, so all its loads are in flight at once. A kernel with a reduction runs one
//! block per row, wide enough for about `PER_THREAD` channels a thread (128 to 512 threads);
//! a purely element-wise kernel also splits each row's channels over blocks (grid
//! `(rows, channel blocks)`, `EW_THREADS` threads of `EW_PER_THREAD` channels each).

use std::collections::HashMap;
use std::fmt::Write;

use super::kernel::{c, c_type, rows, KArg, NAME};
use super::templates::rope::{rope_inv_freq_table, rope_rotated, ROPE_SINCOS};
use super::CodegenError;
use crate::ir::{Graph, Op, UnaryFn, Value};
use crate::passes::fuse::{FusionPlan, Step};
use crate::spec::GateActivation;
use modelc_runtime::program::Expr;
use modelc_runtime::tensor::DType;

/// The fewest threads per block of a glue kernel.
pub const GLUE_THREADS: u32 = 128;
/// The most threads per block of a kernel with a reduction (128 registers a thread).
const MAX_THREADS: usize = 512;
/// Channels a thread of a reduction kernel aims for.
const PER_THREAD: usize = 4;
/// Threads per block of an element-wise kernel.
const EW_THREADS: usize = 256;
/// Channels a thread of an element-wise kernel handles.
const EW_PER_THREAD: usize = 2;

/// A generated glue kernel before naming.
#[derive(Debug, Clone)]
pub struct GlueKernel {
    pub kind: String,
    /// Threads per block.
    pub threads: u32,
    /// Blocks per row (the grid's y): 1 with a reduction, else enough for the widest output.
    pub channel_blocks: usize,
    /// The source with [`NAME`] where the kernel name goes.
    pub body: String,
    pub args: Vec<KArg>,
    pub bytes_loaded: Expr,
    pub bytes_stored: Expr,
    pub flops: Expr,
    /// Lines describing the fused nodes (for the header and `modelc kernels`).
    pub fuses: Vec<String>,
}

/// How the kernel reads one external value.
#[derive(Debug, Clone)]
enum Ext {
    /// A `[B, T, C]` activation: lambda `x{i}` over pointer `x{i}_p` with stride `x{i}_stride`.
    Act { id: usize },
    /// A checkpoint tensor read by channel: pointer `w{i}`.
    Weight { id: usize, dtype: DType },
    /// A `[B, T]` int32 input (token ids, positions): pointer `s{i}`, one value per row.
    RowScalar { id: usize },
}

/// f32 literal that parses back to the same value.
pub fn f32_lit(x: f64) -> String {
    let v = x as f32;
    if v.is_finite() {
        format!("{v:e}f")
    } else if v.is_nan() {
        "__int_as_float(0x7fc00000)".into()
    } else if v > 0.0 {
        "__int_as_float(0x7f800000)".into()
    } else {
        "__int_as_float(0xff800000)".into()
    }
}

const PRELUDE: &str = r#"#include <cuda_bf16.h>

#ifndef MODELC_GLUE_PRELUDE
#define MODELC_GLUE_PRELUDE
typedef __nv_bfloat16 bf16;
static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float ld(const bf16* p, long i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
static __device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = __float2bfloat16(v); }
static __device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
static __device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus, threshold 20. */
static __device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
/* Exact GELU via erfc, accurate in the negative tail. */
static __device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }
static __device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
static __device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
#endif
"#;

fn unary_c(f: UnaryFn, x: &str) -> String {
    match f {
        UnaryFn::Silu => format!("silu_f({x})"),
        UnaryFn::Gelu => format!("gelu_f({x})"),
        UnaryFn::GeluTanh => format!("gelu_tanh_f({x})"),
        UnaryFn::Relu => format!("fmaxf({x}, 0.0f)"),
        UnaryFn::Sigmoid => format!("sigmoid_f({x})"),
        UnaryFn::Softplus => format!("softplus_f({x})"),
        UnaryFn::Exp => format!("expf({x})"),
        UnaryFn::Neg => format!("(-{x})"),
        UnaryFn::Identity => x.to_string(),
    }
}

/// FLOPs per output element, roughly (a transcendental counts as 4).
fn flops_per_elem(op: &Op) -> usize {
    match op {
        Op::Unary(UnaryFn::Identity | UnaryFn::Neg) => 1,
        Op::Unary(UnaryFn::Relu) => 1,
        Op::Unary(_) => 6,
        Op::Add | Op::Mul | Op::Scale(_) => 1,
        Op::RmsNorm { .. } | Op::L2Norm { .. } => 4,
        Op::GatedRmsNorm { .. } => 10,
        Op::LayerNorm { .. } => 6,
        Op::Rope { .. } => 12,
        Op::DecayGate { .. } => 12,
        _ => 0,
    }
}

/// Describes a node's op: `rms_norm(eps=1e-5, group=64)`.
pub fn describe_op(graph: &Graph, n: petgraph::stable_graph::NodeIndex) -> String {
    let op = &graph.node(n).op;
    let params = op.params();
    if params.is_empty() {
        op.name()
    } else {
        format!("{}({params})", op.name())
    }
}

/// Describes a node for headers: `rms_norm(eps=1e-5, group=64) @ layers.*.mixer`.
pub fn describe_node(graph: &Graph, n: petgraph::stable_graph::NodeIndex) -> String {
    format!(
        "{} @ {}",
        describe_op(graph, n),
        super::kernel::abstract_scope(&graph.node(n).scope)
    )
}

/// The kernel's kind: the distinct op names of its nodes (slices and scales left out), e.g.
/// `embedding_rms_norm`, `silu_mul`, `sigmoid_decay_gate`.
fn kind_of(graph: &Graph, step: &Step) -> String {
    let mut names: Vec<String> = Vec::new();
    for &n in &step.nodes {
        let op = &graph.node(n).op;
        if matches!(op, Op::Slice { .. } | Op::Scale(_) | Op::Unary(UnaryFn::Identity)) {
            continue;
        }
        let name = op.name();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.truncate(3);
    if names.is_empty() {
        "copy".into()
    } else {
        names.join("_")
    }
}

/// Generates the kernel of one glue step. `storage` gives the dtype a value is stored in.
pub fn glue_kernel(
    graph: &Graph,
    plan: &FusionPlan,
    step: &Step,
    storage: &dyn Fn(Value) -> DType,
) -> Result<GlueKernel, CodegenError> {
    let unsupported = |n: petgraph::stable_graph::NodeIndex, why: String| CodegenError::Unsupported {
        scope: graph.node(n).scope.clone(),
        op: graph.node(n).op.name(),
        reason: why,
    };
    let local: HashMap<petgraph::stable_graph::NodeIndex, usize> =
        step.nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let channels = |v: Value| graph.ty(v).channels();
    let Some(&anchor) = step.nodes.first() else {
        return Err(CodegenError::Internal("an empty glue step".into()));
    };

    // External inputs: one argument set each, in first-use order.
    let mut ext: HashMap<Value, Ext> = HashMap::new();
    let mut params: Vec<String> = Vec::new();
    let mut args: Vec<KArg> = Vec::new();
    let mut loads = String::new();
    let mut loaded = Expr::c(0);
    for (i, &v) in step.inputs.iter().enumerate() {
        let base = plan.resolve(graph, v).base;
        let ty = graph.ty(v);
        match &graph.node(base.node).op {
            Op::Weight { dtype, shape, .. } => {
                params.push(format!("const {}* __restrict__ w{i}", c_type(*dtype)));
                args.push(KArg::Weight {
                    key: weight_key(graph, base),
                    dtype: *dtype,
                });
                ext.insert(v, Ext::Weight { id: i, dtype: *dtype });
                // An embedding table is read one row per token; other weights whole.
                let gathered = step
                    .nodes
                    .iter()
                    .any(|&m| matches!(graph.node(m).op, Op::Embedding) && graph.inputs(m).get(1) == Some(&v));
                loaded = match (gathered, shape.get(1)) {
                    (true, Some(d)) => loaded.plus(rows().times(c(d * dtype.size()))),
                    _ => loaded.plus(c(shape.iter().product::<usize>() * dtype.size())),
                };
            }
            _ if ty.shape.len() == 2 && ty.dtype == DType::I32 => {
                params.push(format!("const int* __restrict__ s{i}"));
                args.push(KArg::Value(v));
                ext.insert(v, Ext::RowScalar { id: i });
                loaded = loaded.plus(rows().times(c(4)));
            }
            _ if ty.shape.len() == 3 => {
                let Some(len) = channels(v) else {
                    return Err(unsupported(
                        anchor,
                        format!("input {} has no constant channel count", ty),
                    ));
                };
                let dt = storage(base);
                params.push(format!("const {}* __restrict__ x{i}_p, int x{i}_stride", c_type(dt)));
                args.push(KArg::Value(v));
                args.push(KArg::Stride(v));
                ext.insert(v, Ext::Act { id: i });
                let _ = writeln!(
                    loads,
                    "    auto x{i} = [&](int c) -> float {{ return ld(x{i}_p, row * x{i}_stride + c); }};"
                );
                loaded = loaded.plus(rows().times(c(len * dt.size())));
            }
            _ => return Err(unsupported(anchor, format!("cannot read input of type {ty} row-wise"))),
        }
    }

    // A value's channel `idx` as a C expression.
    let read = |v: Value, idx: &str| -> Result<String, CodegenError> {
        if let Some(k) = local.get(&v.node) {
            return Ok(format!("v{k}({idx})"));
        }
        match ext.get(&v) {
            Some(Ext::Act { id }) => Ok(format!("x{id}({idx})")),
            Some(Ext::Weight { id, dtype }) => Ok(match dtype {
                DType::BF16 => format!("bf2f(w{id}[{idx}])"),
                _ => format!("(float)w{id}[{idx}]"),
            }),
            Some(Ext::RowScalar { id }) => Ok(format!("(float)s{id}[row]")),
            None => Err(CodegenError::Internal(format!(
                "glue: value of node {} not wired",
                v.node.index()
            ))),
        }
    };
    let row_scalar = |v: Value| -> Option<String> {
        match ext.get(&v) {
            Some(Ext::RowScalar { id }) => Some(format!("s{id}[row]")),
            _ => None,
        }
    };

    // Block shape: reductions need a whole row in one block; element-wise kernels split it.
    let mut widest = 1usize;
    let mut reduces = false;
    for &n in &step.nodes {
        let node = graph.node(n);
        if let Some(cn) = node.outputs.first().and_then(|t| t.channels()) {
            widest = widest.max(cn);
        }
        reduces |= matches!(
            node.op,
            Op::RmsNorm { .. } | Op::L2Norm { .. } | Op::GatedRmsNorm { .. } | Op::LayerNorm { .. }
        );
    }
    let (threads, channel_blocks) = if reduces {
        let t = widest.div_ceil(PER_THREAD).next_power_of_two();
        (t.clamp(GLUE_THREADS as usize, MAX_THREADS), 1)
    } else {
        (EW_THREADS, widest.div_ceil(EW_THREADS * EW_PER_THREAD))
    };
    let warps = threads / 32;

    let mut body = String::new();
    let mut globals = String::new();
    let mut flops = Expr::c(0);
    let mut fuses = Vec::new();
    for (k, &n) in step.nodes.iter().enumerate() {
        let node = graph.node(n);
        let ins = graph.inputs(n);
        let out_c = match (node.outputs.first(), node.outputs.len()) {
            (Some(t), 1) if t.shape.len() == 3 => t.channels(),
            _ => None,
        };
        let Some(cn) = out_c else {
            return Err(unsupported(
                n,
                "a glue op must have one [batch, tokens, C] output".into(),
            ));
        };
        let desc = describe_node(graph, n);
        fuses.push(desc.clone());
        flops = flops.plus(rows().times(c(cn * flops_per_elem(&node.op))));
        let _ = writeln!(body, "    /* {desc} */");
        let arg = |j: usize| {
            ins.get(j)
                .copied()
                .ok_or_else(|| CodegenError::Internal(format!("{desc}: input {j} missing")))
        };
        // The norms' statistic `st{k}`: fin(Σ x²) of input 0 over each group of `group` channels.
        let sum_of_squares = |body: &mut String, group: usize, fin: &str| -> Result<(), CodegenError> {
            let x = read(arg(0)?, "gi * G + j")?;
            stat(body, threads, k, "", &x, "x * x", group, cn, fin);
            Ok(())
        };
        let expr = match &node.op {
            Op::Unary(f) => unary_c(*f, &read(arg(0)?, "c")?),
            // A broadcast operand is a `[C]` weight or a same-shaped value: both read channel c.
            Op::Add => format!("{} + {}", read(arg(0)?, "c")?, read(arg(1)?, "c")?),
            Op::Mul => format!("{} * {}", read(arg(0)?, "c")?, read(arg(1)?, "c")?),
            Op::Scale(s) => format!("{} * {}", f32_lit(*s), read(arg(0)?, "c")?),
            Op::Slice { start, .. } => read(arg(0)?, &format!("c + {start}"))?,
            Op::Concat => {
                let mut parts = Vec::new();
                let mut off = 0;
                for (j, v) in ins.iter().enumerate() {
                    let len = channels(*v).unwrap_or(0);
                    let val = read(*v, &format!("c - {off}"))?;
                    if j + 1 == ins.len() {
                        parts.push(val);
                    } else {
                        parts.push(format!("c < {} ? {val} :", off + len));
                    }
                    off += len;
                }
                parts.join(" ")
            }
            Op::RepeatGroups { n: g, repeats } => read(arg(0)?, &format!("(c / {}) * {g} + c % {g}", g * repeats))?,
            Op::Embedding => {
                let ids =
                    row_scalar(arg(0)?).ok_or_else(|| unsupported(n, "token ids must be a graph input".into()))?;
                let (vocab, d) = match graph.ty(arg(1)?).shape.iter().map(|d| d.as_const()).collect::<Vec<_>>()[..] {
                    [Some(v), Some(d)] => (v, d),
                    _ => return Err(unsupported(n, "the table must be [vocab, d]".into())),
                };
                let table = read(arg(1)?, &format!("(long)id{k} * {d} + c"))?;
                let _ = writeln!(body, "    const int id{k} = {ids};");
                // An id outside the vocabulary gives NaN (the reference rejects it; the host should).
                format!("(id{k} >= 0 && id{k} < {vocab}) ? {table} : __int_as_float(0x7fc00000)")
            }
            Op::Rope { head_dim, theta } => {
                let pos =
                    row_scalar(arg(1)?).ok_or_else(|| unsupported(n, "positions must be a graph input".into()))?;
                let freqs = format!("rope_inv_freq_{k}");
                let _ = writeln!(globals, "{}", rope_inv_freq_table(&freqs, *head_dim, *theta));
                if !globals.contains(ROPE_SINCOS) {
                    globals.push_str(ROPE_SINCOS);
                }
                let _ = writeln!(body, "    const double pos{k} = (double){pos};");
                let xv = arg(0)?;
                rope_rotated(|idx| read(xv, idx), &freqs, &format!("pos{k}"), *head_dim)?
            }
            Op::DecayGate { group } => format!(
                "-expf({}) * softplus_f({} + {})",
                read(arg(1)?, &format!("c / {group}"))?,
                read(arg(0)?, "c")?,
                read(arg(2)?, "c")?
            ),
            Op::RmsNorm { eps, group } => {
                let fin = format!("rsqrtf(acc / {}.0f + {})", group, f32_lit(*eps));
                sum_of_squares(&mut body, *group, &fin)?;
                format!(
                    "{} * st{k}[c / {group}] * {}",
                    read(arg(0)?, "c")?,
                    read(arg(1)?, &format!("c % {group}"))?
                )
            }
            Op::L2Norm { eps, group } => {
                let fin = format!("rsqrtf(acc + {})", f32_lit(*eps));
                sum_of_squares(&mut body, *group, &fin)?;
                format!("{} * st{k}[c / {group}]", read(arg(0)?, "c")?)
            }
            Op::GatedRmsNorm { eps, group, act } => {
                let fin = format!("rsqrtf(acc / {}.0f + {})", group, f32_lit(*eps));
                sum_of_squares(&mut body, *group, &fin)?;
                let g = read(arg(1)?, "c")?;
                let act = match act {
                    GateActivation::Silu => format!("silu_f({g})"),
                    GateActivation::Sigmoid => format!("sigmoid_f({g})"),
                };
                format!(
                    "{} * st{k}[c / {group}] * {} * {act}",
                    read(arg(0)?, "c")?,
                    read(arg(2)?, &format!("c % {group}"))?
                )
            }
            Op::LayerNorm { eps } => {
                let x = read(arg(0)?, "gi * G + j")?;
                stat(&mut body, threads, k, "m", &x, "x", cn, cn, &format!("acc / {cn}.0f"));
                let fin = format!("rsqrtf(acc / {cn}.0f + {})", f32_lit(*eps));
                stat(
                    &mut body,
                    threads,
                    k,
                    "r",
                    &x,
                    &format!("(x - st{k}m[0]) * (x - st{k}m[0])"),
                    cn,
                    cn,
                    &fin,
                );
                format!(
                    "({} - st{k}m[0]) * st{k}r[0] * {} + {}",
                    read(arg(0)?, "c")?,
                    read(arg(1)?, "c")?,
                    read(arg(2)?, "c")?
                )
            }
            other => return Err(unsupported(n, format!("`{}` is not a row-wise op", other.name()))),
        };
        let _ = writeln!(body, "    auto v{k} = [&](int c) -> float {{ return {expr}; }};");
    }

    // Stores.
    let mut stores = String::new();
    let mut stored = Expr::c(0);
    for (j, &v) in step.outputs.iter().enumerate() {
        let Some(&k) = local.get(&v.node) else {
            return Err(CodegenError::Internal("glue output not computed by the step".into()));
        };
        let cn = channels(v).unwrap_or(0);
        let dt = storage(v);
        if !matches!(dt, DType::BF16 | DType::F32) {
            return Err(unsupported(v.node, format!("cannot store {dt}")));
        }
        params.push(format!("{}* __restrict__ o{j}, int o{j}_stride", c_type(dt)));
        args.push(KArg::Value(v));
        args.push(KArg::Stride(v));
        // Guards only where the trip count does not divide evenly, so that the unrolled loads
        // carry no branches and issue back to back.
        let store = format!("st(o{j}, row * o{j}_stride + c, v{k}(c));");
        let (first, per, step) = if reduces {
            ("tid", cn.div_ceil(threads), threads)
        } else {
            ("c0 + tid", EW_PER_THREAD, threads * EW_PER_THREAD)
        };
        let exact = cn.is_multiple_of(step);
        let guarded = if exact { store } else { format!("if (c < {cn}) {store}") };
        let lp = format!(
            "#pragma unroll\n    for (int i = 0; i < {per}; ++i) {{\n        const int c = {first} + i * {threads};\n        \
             {guarded}\n    }}"
        );
        // An element-wise output narrower than the widest leaves the last blocks idle.
        if !reduces && exact && cn < channel_blocks * step {
            let _ = writeln!(stores, "    if (c0 < {cn}) {{\n{lp}\n    }}");
        } else {
            let _ = writeln!(stores, "{lp}");
        }
        stored = stored.plus(rows().times(c(cn * dt.size())));
    }
    params.push("int rows".into());
    args.push(KArg::Int(rows()));

    let kind = kind_of(graph, step);
    let mut header = String::new();
    let shape = if reduces {
        format!("one block of {threads} threads per row (token)")
    } else {
        format!(
            "{channel_blocks} block(s) of {threads} threads per row (token), {} channels a block",
            threads * EW_PER_THREAD
        )
    };
    let _ = writeln!(header, "/*\n * {NAME}: fused row-wise kernel, {shape}.");
    let _ = writeln!(header, " * Fuses, in order:");
    for f in &fuses {
        let _ = writeln!(header, " *   {f}");
    }
    let _ = writeln!(
        header,
        " * Grid (batch*tokens, {channel_blocks}, 1). f32 math; bf16/f32 storage; deterministic reductions."
    );
    let _ = writeln!(
        header,
        " * Bytes loaded:  {loaded}\n * Bytes stored:  {stored}\n * FLOPs:         {flops}\n */"
    );
    let mut src = header;
    src.push_str(PRELUDE);
    src.push_str(super::kernel::PDL_DEFINITION);
    src.push('\n');
    src.push_str(&globals);
    let _ = write!(
        src,
        "extern \"C\" __global__ void __launch_bounds__({threads}) {NAME}(\n    {})\n{{\n",
        params.join(",\n    ")
    );
    let _ = writeln!(src, "    {}", super::kernel::PDL_ENTER);
    let _ = writeln!(src, "    const long row = blockIdx.x;\n    if (row >= rows) return;");
    let _ = writeln!(
        src,
        "    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;"
    );
    if reduces {
        let _ = writeln!(
            src,
            "    __shared__ float red_[{warps}];\n    (void)lane; (void)warp; (void)red_;"
        );
    } else {
        let _ = writeln!(
            src,
            "    const int c0 = blockIdx.y * {};\n    (void)lane; (void)warp;",
            threads * EW_PER_THREAD
        );
    }
    src.push_str(&loads);
    src.push_str(&body);
    src.push_str(&stores);
    src.push_str("}\n");
    Ok(GlueKernel {
        kind,
        threads: threads as u32,
        channel_blocks,
        body: src,
        args,
        bytes_loaded: loaded,
        bytes_stored: stored,
        flops,
        fuses,
    })
}

/// The checkpoint key of a weight node.
fn weight_key(graph: &Graph, v: Value) -> String {
    match &graph.node(v.node).op {
        Op::Weight { key, .. } => key.clone(),
        _ => String::new(),
    }
}

/// Emits a per-group statistic `st{k}{suffix}[C / G]`: `fin(Σ term(x))` over each group of `g`
/// channels, `x` being `load` at channel `gi * G + j`, for a block of `threads` threads. Fewer
/// groups than warps: each group gets `warps / groups` warps, whose partials are added in warp
/// order; otherwise one warp per group. Each thread's loads are an unrolled loop of a fixed
/// trip count, so they are all in flight together; the sums' order is fixed (deterministic).
#[allow(clippy::too_many_arguments)]
fn stat(
    body: &mut String,
    threads: usize,
    k: usize,
    suffix: &str,
    load: &str,
    term: &str,
    g: usize,
    cn: usize,
    fin: &str,
) {
    let warps = threads / 32;
    let ng = cn / g.max(1);
    let name = format!("st{k}{suffix}");
    let _ = writeln!(body, "    __shared__ float {name}[{ng}];");
    let _ = writeln!(body, "    {{\n        constexpr int G = {g}, NG = {ng};");
    if ng < warps {
        let wpg = warps / ng.max(1);
        let tpg = wpg * 32;
        let per = g.div_ceil(tpg);
        // Guards only where needed: warps left over when the groups do not divide them, a
        // group size that is not a multiple of the threads summing it.
        let open = if wpg * ng == warps { "{" } else { "if (gi < NG) {" };
        let add = format!("const float x = {load}; acc += {term};");
        let add = if g.is_multiple_of(tpg) {
            add
        } else {
            format!("if (j < G) {{ {add} }}")
        };
        let _ = writeln!(
            body,
            "        const int gi = warp / {wpg}, t = tid - gi * {tpg};\n        \
             float acc = 0.0f;\n        \
             {open}\n#pragma unroll\n            \
             for (int i = 0; i < {per}; ++i) {{\n                const int j = t + i * {tpg};\n                \
             {add}\n            }}\n        }}\n        \
             acc = warp_sum(acc);\n        \
             __syncthreads();\n        \
             if (lane == 0) red_[warp] = acc;\n        \
             __syncthreads();\n        \
             if (tid < NG) {{\n            acc = 0.0f;\n            \
             for (int i = 0; i < {wpg}; ++i) acc += red_[tid * {wpg} + i];\n            \
             {name}[tid] = {fin};\n        }}"
        );
    } else {
        let _ = writeln!(
            body,
            "        for (int gi = warp; gi < NG; gi += {warps}) {{\n            float acc = 0.0f;\n#pragma unroll 4\n            \
             for (int j = lane; j < G; j += 32) {{ const float x = {load}; acc += {term}; }}\n            \
             acc = warp_sum(acc);\n            if (lane == 0) {name}[gi] = {fin};\n        }}"
        );
    }
    let _ = writeln!(body, "    }}\n    __syncthreads();");
}
