//! Assembles the [`Program`]: device weights (with their packing recipe), state buffers, a
//! buffer plan for the activations, and the prefill and decode schedules.
//!
//! Buffer plan: every value a step writes for later steps gets a buffer of `batch·tokens·C`
//! elements. Values are visited in step order; a value's buffer is free again after the last
//! step reading it (views read their base), and is reused by a later value of the same dtype,
//! growing to the largest channel count it holds. A step's outputs are assigned before its
//! inputs are freed, so no kernel or GEMM writes a buffer it reads.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::kernel::{c, rows, sha256_hex, KArg, LaunchSpec};
use super::{Codegen, CodegenError};
use crate::ir::lower::{LOGITS_OUTPUT, POSITIONS_INPUT, STATE_PREFIX, TOKENS_INPUT};
use crate::ir::{Dim, Graph, Op, UnaryFn, Value};
use crate::passes::fuse::StepKind;
use crate::passes::gemm_merge::PackedWeight;
use crate::passes::Placement;
use modelc_runtime::program::{
    Arg, Buffer, BufferRef, DeviceWeight, Expr, GemmPrologue, GemmStep, HostIo, KernelModule, LaunchStep,
    LaunchVariant, Operand, PrefillHead, Program, Schedule, StateBuffer, Step, Sym, TensorMapArg, WeightPart,
    PROGRAM_FORMAT,
};
use modelc_runtime::tensor::DType;

/// Name of the `past_len` input: tokens each sequence slot has seen, int32.
pub const PAST_LEN_INPUT: &str = "past_len";

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Buffer(usize),
    Input(usize),
    Output(usize),
}

struct Builder<'a> {
    cg: &'a Codegen,
    /// Packed weights, and the graph's own weights (shape, dtype), by key: each device weight
    /// looks its key up once, so building stays linear in the model's depth.
    packs: HashMap<&'a str, &'a PackedWeight>,
    graph_weights: HashMap<&'a str, (&'a [usize], DType)>,
    weights: Vec<DeviceWeight>,
    weight_index: HashMap<(String, DType), usize>,
    states: Vec<StateBuffer>,
    state_index: HashMap<String, usize>,
    buffers: Vec<Buffer>,
    workspaces: HashMap<String, usize>,
    homes: HashMap<Value, Home>,
}

fn graph_err(msg: String) -> CodegenError {
    CodegenError::Internal(msg)
}

fn value_label(graph: &Graph, v: Value) -> String {
    let n = graph.node(v.node);
    let scope = if n.scope.is_empty() { "model" } else { n.scope.as_str() };
    format!("{scope}/{}#{}.{}", n.op.name(), v.node.index(), v.output)
}

impl<'a> Builder<'a> {
    fn new(cg: &'a Codegen) -> Self {
        // The first node of a key wins, as a search in node order would find it.
        let mut graph_weights = HashMap::new();
        for n in cg.graph.g.node_weights() {
            if let Op::Weight { key, shape, dtype } = &n.op {
                graph_weights.entry(key.as_str()).or_insert((shape.as_slice(), *dtype));
            }
        }
        Builder {
            cg,
            packs: cg.packs.iter().map(|p| (p.key.as_str(), p)).collect(),
            graph_weights,
            weights: Vec::new(),
            weight_index: HashMap::new(),
            states: Vec::new(),
            state_index: HashMap::new(),
            buffers: Vec::new(),
            workspaces: HashMap::new(),
            homes: HashMap::new(),
        }
    }

    fn graph(&self) -> &Graph {
        &self.cg.graph
    }

    /// The device weight for `(key, dtype)`, created on first use.
    fn weight(&mut self, key: &str, dtype: DType) -> Result<usize, CodegenError> {
        if let Some(&i) = self.weight_index.get(&(key.to_string(), dtype)) {
            return Ok(i);
        }
        let (shape, parts) = match self.packs.get(key) {
            Some(p) => {
                let inner: Vec<usize> = p.shape.iter().skip(1).copied().collect();
                let parts = p
                    .parts
                    .iter()
                    .map(|part| {
                        let mut shape = vec![part.rows];
                        shape.extend(&inner);
                        WeightPart {
                            key: part.key.clone(),
                            shape,
                            row: part.row,
                            rows: part.rows,
                        }
                    })
                    .collect();
                (p.shape.clone(), parts)
            }
            None => {
                let shape = self
                    .graph_weights
                    .get(key)
                    .map(|(s, _)| s.to_vec())
                    .ok_or_else(|| graph_err(format!("weight `{key}` is not in the graph")))?;
                let rows = shape.first().copied().unwrap_or(1);
                (
                    shape.clone(),
                    vec![WeightPart {
                        key: key.to_string(),
                        shape,
                        row: 0,
                        rows,
                    }],
                )
            }
        };
        let name = if dtype == self.graph_weight_dtype(key) {
            key.to_string()
        } else {
            format!("{key}:{dtype}")
        };
        self.weights.push(DeviceWeight {
            name,
            dtype,
            shape,
            parts,
        });
        self.weight_index
            .insert((key.to_string(), dtype), self.weights.len() - 1);
        Ok(self.weights.len() - 1)
    }

    fn graph_weight_dtype(&self, key: &str) -> DType {
        self.graph_weights.get(key).map_or(DType::BF16, |(_, d)| *d)
    }

    fn state(&self, name: &str) -> Result<usize, CodegenError> {
        self.state_index
            .get(name)
            .copied()
            .ok_or_else(|| graph_err(format!("state `{name}` has no buffer")))
    }

    fn home(&self, v: Value) -> Result<(Home, usize), CodegenError> {
        let view = self.cg.plan.resolve(self.graph(), v);
        let home = self
            .homes
            .get(&view.base)
            .copied()
            .ok_or_else(|| graph_err(format!("value {} has no buffer", value_label(self.graph(), view.base))))?;
        Ok((home, view.start))
    }

    fn buffer_ref(h: Home) -> BufferRef {
        match h {
            Home::Buffer(i) => BufferRef::Buffer(i),
            Home::Input(i) => BufferRef::Input(i),
            Home::Output(i) => BufferRef::Output(i),
        }
    }

    fn operand(&self, v: Value) -> Result<Operand, CodegenError> {
        let (home, start) = self.home(v)?;
        let base = self.cg.plan.resolve(self.graph(), v).base;
        let ld = self.graph().ty(base).channels().unwrap_or(0);
        Ok(Operand {
            buffer: Self::buffer_ref(home),
            offset: c(start),
            ld,
        })
    }

    /// The buffer named `name` (a workspace or counters, shared by every kernel naming it),
    /// grown to `elements` if it is smaller.
    fn workspace(&mut self, name: &str, dtype: DType, elements: &Expr, counters: bool) -> usize {
        if let Some(&i) = self.workspaces.get(name) {
            let grown = self.buffers[i].elements.clone().max(elements.clone());
            self.buffers[i].elements = grown;
            return i;
        }
        self.buffers.push(Buffer {
            name: name.to_string(),
            dtype,
            elements: elements.clone(),
            values: vec![],
            counters,
        });
        self.workspaces.insert(name.to_string(), self.buffers.len() - 1);
        self.buffers.len() - 1
    }

    fn arg(&mut self, a: &KArg) -> Result<Arg, CodegenError> {
        let slot = Expr::sym(Sym::Slot);
        Ok(match a {
            KArg::Value(v) => {
                let (home, start) = self.home(*v)?;
                Arg::Ptr {
                    buffer: Self::buffer_ref(home),
                    offset: c(start),
                }
            }
            KArg::Stride(v) => {
                let base = self.cg.plan.resolve(self.graph(), *v).base;
                Arg::I32(c(self.graph().ty(base).channels().unwrap_or(0)))
            }
            KArg::Weight { key, dtype } => Arg::Ptr {
                buffer: BufferRef::Weight(self.weight(key, *dtype)?),
                offset: c(0),
            },
            KArg::State(name) => {
                let i = self.state(name)?;
                Arg::Ptr {
                    buffer: BufferRef::State(i),
                    offset: slot.times(self.states[i].per_slot()),
                }
            }
            KArg::PastLen => Arg::Ptr {
                buffer: BufferRef::Input(2),
                offset: slot,
            },
            KArg::Workspace { name, dtype, elements } => Arg::Ptr {
                buffer: BufferRef::Buffer(self.workspace(&format!("workspace.{name}"), *dtype, elements, false)),
                offset: c(0),
            },
            KArg::Counters { name, elements } => Arg::Ptr {
                buffer: BufferRef::Buffer(self.workspace(&format!("counters.{name}"), DType::I32, elements, true)),
                offset: c(0),
            },
            KArg::Int(e) => Arg::I32(e.clone()),
            KArg::Null => Arg::Null,
            KArg::TensorMap(m) => {
                let ptr = self.arg(&m.base)?;
                let (Arg::Ptr { .. }, Arg::I32(row_stride)) = (&ptr, self.arg(&m.row_stride)?) else {
                    return Err(graph_err(format!(
                        "tensor map over {:?} with stride {:?}: not a pointer and an int",
                        m.base, m.row_stride
                    )));
                };
                Arg::TensorMap(TensorMapArg {
                    ptr: Box::new(ptr),
                    row_stride,
                    cols: m.cols.clone(),
                    rows: m.rows.clone(),
                    box_cols: m.box_cols,
                    box_rows: m.box_rows,
                    l2_promotion: m.l2_promotion,
                })
            }
        })
    }

    fn launch(&mut self, l: &LaunchSpec, label: &str, layer: Option<usize>) -> Result<Step, CodegenError> {
        let kernel = self
            .cg
            .kernels
            .get(l.kernel)
            .ok_or_else(|| graph_err(format!("{label}: kernel {} out of range", l.kernel)))?;
        let (module, pdl) = (kernel.name.clone(), super::kernel::takes_pdl(kernel));
        let args = l.args.iter().map(|a| self.arg(a)).collect::<Result<Vec<_>, _>>()?;
        let variants = l
            .variants
            .iter()
            .map(|v| {
                let extra_args = v
                    .extra_args
                    .iter()
                    .map(|a| self.arg(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let k = self
                    .cg
                    .kernels
                    .get(v.kernel)
                    .ok_or_else(|| graph_err(format!("{label}: variant kernel {} out of range", v.kernel)))?;
                Ok(LaunchVariant {
                    cc: v.cc,
                    when: v.when.clone(),
                    module: k.name.clone(),
                    entry: v.entry.clone(),
                    grid: v.grid.clone(),
                    block: v.block,
                    smem: v.smem,
                    pdl: super::kernel::takes_pdl(k),
                    extra_args,
                })
            })
            .collect::<Result<Vec<_>, CodegenError>>()?;
        Ok(Step::Launch(LaunchStep {
            label: label.to_string(),
            layer,
            module,
            entry: l.entry.clone(),
            grid: l.grid.clone(),
            block: l.block,
            smem: l.smem,
            args,
            pdl,
            variants,
            skip_when: l.skip_when.clone(),
        }))
    }
}

/// Symbolic shape of one sequence's state, with the KV length bounded by `max_len`.
fn state_shape(shape: &[Dim], kv: bool) -> Vec<Expr> {
    shape
        .iter()
        .skip(1)
        .enumerate()
        .map(|(i, d)| match (kv, i, d) {
            (true, 1, _) => Expr::sym(Sym::MaxLen),
            (_, _, d) => super::kernel::dim_expr(d),
        })
        .collect()
}

/// Builds the program of a codegen result.
pub fn build(cg: &Codegen, model: &str, placement: &Placement) -> Result<Program, CodegenError> {
    let graph = &cg.graph;
    let mut b = Builder::new(cg);

    // Host inputs and outputs.
    let inputs = vec![
        HostIo {
            name: TOKENS_INPUT.into(),
            dtype: DType::I32,
            elements: rows(),
            note: "token ids, [batch, tokens]".into(),
        },
        HostIo {
            name: POSITIONS_INPUT.into(),
            dtype: DType::I32,
            elements: rows(),
            note: "absolute position of each token, [batch, tokens]".into(),
        },
        HostIo {
            name: PAST_LEN_INPUT.into(),
            dtype: DType::I32,
            elements: Expr::sym(Sym::Slots),
            note: "tokens each sequence slot has already seen (attention reads it at its slot)".into(),
        },
    ];
    for (n, name, _) in graph.graph_inputs() {
        match name {
            TOKENS_INPUT => b.homes.insert(Value { node: n, output: 0 }, Home::Input(0)),
            POSITIONS_INPUT => b.homes.insert(Value { node: n, output: 0 }, Home::Input(1)),
            _ => None,
        };
    }
    let mut outputs = Vec::new();
    for (n, name) in graph.graph_outputs() {
        if name.starts_with(STATE_PREFIX) {
            continue;
        }
        let Some(&v) = graph.inputs(n).first() else { continue };
        let ty = graph.ty(v);
        let per_row = ty.channels().unwrap_or(1);
        outputs.push(HostIo {
            name: name.to_string(),
            dtype: ty.dtype,
            elements: rows().times(c(per_row)),
            note: if name == LOGITS_OUTPUT {
                "[batch, tokens, vocab]".into()
            } else {
                String::new()
            },
        });
        b.homes.insert(v, Home::Output(outputs.len() - 1));
    }

    // States: one buffer per `state.<name>` input, typed by the core that updates it in place.
    for step in &cg.plan.steps {
        let StepKind::Core(core) = &step.kind else { continue };
        let n = core.node();
        let op = &graph.node(n).op;
        for v in graph.inputs(n) {
            let Op::Input { name, ty } = &graph.node(v.node).op else {
                continue;
            };
            let Some(sname) = name.strip_prefix(STATE_PREFIX) else {
                continue;
            };
            let (dtype, kv, note) = match op {
                Op::Attention(p) => (
                    ty.dtype,
                    true,
                    match p.window {
                        Some(w) => {
                            format!(
                                "KV cache [G, max_len, Dh], ring of max_len slots (window {w}: a prefill of T \
                                 tokens needs max_len >= {w} + T - 1), written in place"
                            )
                        }
                        None => "KV cache [G, max_len, Dh], position p at slot p, written in place".to_string(),
                    },
                ),
                Op::CausalConv1d { .. } => (
                    DType::F32,
                    false,
                    "conv window [C, K-1] f32 (oldest first), updated in place".into(),
                ),
                Op::DeltaRule(_) => (
                    DType::F32,
                    false,
                    "recurrent state [Hv, Dk, Dv] f32, updated in place".into(),
                ),
                Op::SelectiveScan { .. } => (DType::F32, false, "SSM state [Di, N] f32, updated in place".into()),
                _ => continue,
            };
            if b.state_index.contains_key(sname) {
                continue;
            }
            let note = match cg.state_packs.iter().find(|p| p.name == sname) {
                Some(p) => {
                    let parts: Vec<String> = p
                        .parts
                        .iter()
                        .map(|x| format!("{} = channels {}..{}", x.key, x.row, x.row + x.rows))
                        .collect();
                    format!("{note}; packs {}", parts.join(", "))
                }
                None => note,
            };
            b.states.push(StateBuffer {
                name: sname.to_string(),
                dtype,
                shape: state_shape(&ty.shape, kv),
                note,
            });
            b.state_index.insert(sname.to_string(), b.states.len() - 1);
        }
    }

    // Liveness: the last step reading each value (through views); a GEMM with a fused decode
    // prologue also reads the fused step's inputs, a decode kernel absorbing steps theirs.
    let fusions = decode_fusions(cg);
    let mut last_use: HashMap<Value, usize> = HashMap::new();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        let fused = fusions.gemms.get(&i).map(DecodePrologue::reads).unwrap_or_default();
        let absorbed = cg.steps.get(i).map(|s| s.decode_reads.as_slice()).unwrap_or_default();
        for v in step.inputs.iter().chain(&fused).chain(absorbed) {
            let base = cg.plan.resolve(graph, *v).base;
            let last = last_use.entry(base).or_insert(i);
            *last = (*last).max(i);
        }
    }
    let mut free: Vec<usize> = Vec::new();
    let mut per_row: Vec<usize> = Vec::new();
    let mut frees_at: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        for v in &step.outputs {
            if b.homes.contains_key(v) || is_state_output(graph, *v) {
                continue;
            }
            let dtype = cg.storage_of(*v);
            let need = graph.ty(*v).channels().unwrap_or(1);
            // Best fit among free buffers of this dtype; else grow the largest; else a new one.
            let candidates: Vec<usize> = free.iter().copied().filter(|&f| b.buffers[f].dtype == dtype).collect();
            let fit = candidates
                .iter()
                .copied()
                .filter(|&f| per_row[f] >= need)
                .min_by_key(|&f| (per_row[f], f));
            let pick = fit.or_else(|| candidates.iter().copied().max_by_key(|&f| (per_row[f], usize::MAX - f)));
            let idx = match pick {
                Some(f) => {
                    free.retain(|&x| x != f);
                    f
                }
                None => {
                    b.buffers.push(Buffer {
                        name: format!("act{}", b.buffers.len()),
                        dtype,
                        elements: Expr::c(0),
                        values: vec![],
                        counters: false,
                    });
                    per_row.push(0);
                    b.buffers.len() - 1
                }
            };
            per_row[idx] = per_row[idx].max(need);
            b.buffers[idx].elements = rows().times(c(per_row[idx]));
            b.buffers[idx].values.push(value_label(graph, *v));
            b.homes.insert(*v, Home::Buffer(idx));
            frees_at
                .entry(last_use.get(v).copied().unwrap_or(i))
                .or_default()
                .push(*v);
        }
        for v in frees_at.remove(&i).unwrap_or_default() {
            if let Some(Home::Buffer(f)) = b.homes.get(&v) {
                free.push(*f);
            }
        }
    }

    // Schedules.
    let head_plan_step = head_start(cg, &b.homes);
    let mut head = None;
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        if let Some((_, hidden)) = head_plan_step.filter(|&(first, _)| first == i) {
            head = Some(PrefillHead {
                first_step: prefill.len(),
                hidden: b.operand(hidden)?,
                channels: graph.ty(hidden).channels().unwrap_or(0),
            });
        }
        let code = cg
            .steps
            .get(i)
            .ok_or_else(|| graph_err("steps and code differ in length".into()))?;
        match &step.kind {
            StepKind::Gemm { linear, residual } => {
                let g = gemm_step(
                    &mut b,
                    *linear,
                    residual.as_ref().map(|r| (r.add, r.operand)),
                    &step.scope,
                    step.layer,
                )?;
                let fused = match (fusions.gemms.get(&i), &g) {
                    (Some(f), Step::Gemm(gs)) => Some(Step::Gemm(fused_gemm(&mut b, gs, f)?)),
                    _ => None,
                };
                prefill.push(g.clone());
                // A GEMM a decode kernel absorbs (the KDA decode step) has no decode GEMM.
                if code.decode_absorbed_by.is_none() {
                    decode.push(fused.unwrap_or(g));
                }
            }
            StepKind::Glue | StepKind::Core(_) => {
                // Labelled by the kind of the schedule's first kernel (decode may run another).
                let label = |launches: &[LaunchSpec]| {
                    let kind = launches
                        .first()
                        .and_then(|l| cg.kernels.get(l.kernel))
                        .map_or("kernel", |k| k.kind.as_str());
                    format!("{}: {kind}", if step.scope.is_empty() { "model" } else { &step.scope })
                };
                let prefill_label = label(&code.prefill);
                for l in &code.prefill {
                    prefill.push(b.launch(l, &prefill_label, step.layer)?);
                }
                if !fusions.skipped.contains(&i) {
                    let decode_label = label(&code.decode);
                    for l in &code.decode {
                        decode.push(b.launch(l, &decode_label, step.layer)?);
                    }
                }
            }
        }
    }

    let kernels = cg
        .kernels
        .iter()
        .map(|k| KernelModule {
            name: k.name.clone(),
            file: format!("kernels/{}.cu", k.name),
            sha256: sha256_hex(&k.source),
            entries: k.entries.clone(),
            target: k.target.clone(),
            bytes_loaded: k.bytes_loaded.clone(),
            bytes_stored: k.bytes_stored.clone(),
            flops: k.flops.clone(),
        })
        .collect();
    let program = Program {
        format: PROGRAM_FORMAT,
        model: model.to_string(),
        placement: placement.choices.clone(),
        kernels,
        weights: b.weights,
        buffers: b.buffers,
        states: b.states,
        inputs,
        outputs,
        prefill: Schedule { steps: prefill },
        decode: Schedule { steps: decode },
        head,
    };
    program.validate().map_err(|e| graph_err(e.to_string()))?;
    Ok(program)
}

/// The plan step where the prefill head starts (see [`PrefillHead`]) and the one value it reads
/// from before it: the trailing model-level GEMM and glue steps after the last layer, provided
/// they read exactly one activation buffer written earlier (the last hidden state) and no host
/// input. `None` (no head; every row's logits are computed) for any other shape.
fn head_start(cg: &Codegen, homes: &HashMap<Value, Home>) -> Option<(usize, Value)> {
    let graph = &cg.graph;
    let steps = &cg.plan.steps;
    let first = steps.iter().rposition(|s| s.layer.is_some())? + 1;
    let head = steps.get(first..).filter(|h| !h.is_empty())?;
    if head.iter().any(|s| matches!(s.kind, StepKind::Core(_))) {
        return None;
    }
    let written: Vec<Value> = head.iter().flat_map(|s| s.outputs.iter().copied()).collect();
    let mut hidden: Option<Value> = None;
    for v in head.iter().flat_map(|s| s.inputs.iter().copied()) {
        let base = cg.plan.resolve(graph, v).base;
        if written.contains(&base) {
            continue;
        }
        match homes.get(&base) {
            Some(Home::Buffer(_)) => match hidden {
                None => hidden = Some(v),
                Some(h) if h == v => {}
                Some(_) => return None,
            },
            Some(_) => return None,
            None => {} // weights and constants
        }
    }
    Some((first, hidden?))
}

/// Whether a value is a state a core updates in place (read only by `state.*` outputs).
fn is_state_output(graph: &Graph, v: Value) -> bool {
    let users: Vec<_> = graph
        .users(v.node)
        .into_iter()
        .filter(|(_, p)| p.output == v.output)
        .collect();
    !users.is_empty()
        && users
            .iter()
            .all(|(u, _)| matches!(&graph.node(*u).op, Op::Output { name } if name.starts_with(STATE_PREFIX)))
}

fn gemm_step(
    b: &mut Builder,
    linear: petgraph::stable_graph::NodeIndex,
    residual: Option<(petgraph::stable_graph::NodeIndex, Value)>,
    scope: &str,
    layer: Option<usize>,
) -> Result<Step, CodegenError> {
    let graph = &b.cg.graph;
    let ins = graph.inputs(linear);
    let (Some(&x), Some(&w)) = (ins.first(), ins.get(1)) else {
        return Err(graph_err(format!("linear {} lacks inputs", linear.index())));
    };
    let Op::Weight { key, shape, dtype } = &graph.node(w.node).op else {
        return Err(CodegenError::Unsupported {
            scope: scope.into(),
            op: "linear".into(),
            reason: "the weight must be a checkpoint tensor".into(),
        });
    };
    let (key, shape, dtype) = (key.clone(), shape.clone(), *dtype);
    let (n, k) = match shape[..] {
        [n, k] => (n, k),
        _ => return Err(graph_err(format!("weight {key} is not 2-D"))),
    };
    let bias = match ins.get(2) {
        Some(bv) => match &graph.node(bv.node).op {
            Op::Weight { key, dtype, .. } => Some((key.clone(), *dtype)),
            _ => None,
        },
        None => None,
    };
    let out = match residual {
        Some((add, _)) => Value { node: add, output: 0 },
        None => Value {
            node: linear,
            output: 0,
        },
    };
    let x_op = b.operand(x)?;
    let y_op = b.operand(out)?;
    let c_op = residual.map(|(_, r)| b.operand(r)).transpose()?;
    let weight = b.weight(&key, dtype)?;
    let bias = bias.map(|(k, d)| b.weight(&k, d)).transpose()?;
    let short = key.rsplit_once(".weight").map_or(key.as_str(), |(s, _)| s);
    let short = short.rsplit('.').next().unwrap_or(short);
    let label = format!(
        "{}: {short}{}",
        if scope.is_empty() { "model" } else { scope },
        if c_op.is_some() { " + residual" } else { "" }
    );
    let m = rows();
    let es = dtype.size();
    let mut bytes = m.clone().times(c((k + n) * es)).plus(c(n * k * es));
    if c_op.is_some() {
        bytes = bytes.plus(m.clone().times(c(n * es)));
    }
    Ok(Step::Gemm(GemmStep {
        label,
        layer,
        m: m.clone(),
        n,
        k,
        x: x_op,
        weight,
        bias,
        beta: if c_op.is_some() { 1.0 } else { 0.0 },
        c: c_op,
        y: y_op,
        alpha: 1.0,
        flops: m.times(c(2 * n * k)),
        bytes,
        prologue: None,
    }))
}

/// An input transform a decode GEMM step computes itself (see [`decode_fusions`]).
#[derive(Debug, Clone, PartialEq)]
enum DecodePrologue {
    /// RMSNorm of `x` (whole rows) with the weight `key` (of `dtype`).
    RmsNorm {
        x: Value,
        key: String,
        dtype: DType,
        eps: f32,
        label: String,
    },
    /// `silu(gate) · up`.
    SiluMul { gate: Value, up: Value, label: String },
}

impl DecodePrologue {
    /// The values the GEMM reads in place of its input.
    fn reads(&self) -> Vec<Value> {
        match self {
            DecodePrologue::RmsNorm { x, .. } => vec![*x],
            DecodePrologue::SiluMul { gate, up, .. } => vec![*gate, *up],
        }
    }
}

/// Which glue steps the decode schedule leaves out, and the GEMM steps that compute them.
#[derive(Debug, Default)]
struct DecodeFusions {
    /// Plan steps with no decode launch.
    skipped: HashSet<usize>,
    /// Plan step of a GEMM → the prologue it computes.
    gemms: HashMap<usize, DecodePrologue>,
}

/// Decode fusions (few rows a call: the GEMMs run the bandwidth-bound GEMV, which reads its
/// input once per block anyway): a glue step that is exactly one whole-row RMSNorm, or exactly
/// `silu(gate) · up`, whose output only GEMM steps read (as their `x`, whole), is not launched
/// in decode; each of those GEMMs reads the glue step's inputs and applies the transform itself
/// ([`GemmPrologue`]). Operands must be bf16 (what the GEMV reads); the prefill schedule is
/// unchanged.
fn decode_fusions(cg: &Codegen) -> DecodeFusions {
    let graph = &cg.graph;
    let mut gemm_of_linear: HashMap<petgraph::stable_graph::NodeIndex, usize> = HashMap::new();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        if let StepKind::Gemm { linear, .. } = &step.kind {
            gemm_of_linear.insert(*linear, i);
        }
    }
    let graph_outputs: HashSet<Value> = graph
        .graph_outputs()
        .iter()
        .flat_map(|(n, _)| graph.inputs(*n))
        .collect();
    let bf16 = |v: Value| cg.storage_of(cg.plan.resolve(graph, v).base) == DType::BF16;
    let mut out = DecodeFusions::default();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        if step.kind != StepKind::Glue || step.outputs.len() != 1 {
            continue;
        }
        let result = step.outputs[0];
        let Some(k) = graph.ty(result).channels() else { continue };
        let ops: Vec<&Op> = step.nodes.iter().map(|&n| &graph.node(n).op).collect();
        let label = format!("{}: {}", if step.scope.is_empty() { "model" } else { &step.scope }, {
            let names: Vec<String> = ops.iter().map(|o| o.name()).collect();
            names.join("+")
        });
        let prologue = match ops[..] {
            [Op::RmsNorm { eps, group }] if *group == k => {
                let ins = graph.inputs(step.nodes[0]);
                let (Some(&x), Some(&w)) = (ins.first(), ins.get(1)) else {
                    continue;
                };
                let Op::Weight { key, dtype, shape } = &graph.node(w.node).op else {
                    continue;
                };
                if shape.iter().product::<usize>() != k || !matches!(dtype, DType::BF16 | DType::F32) {
                    continue;
                }
                DecodePrologue::RmsNorm {
                    x,
                    key: key.clone(),
                    dtype: *dtype,
                    eps: *eps as f32,
                    label,
                }
            }
            [Op::Unary(UnaryFn::Silu), Op::Mul] => {
                let (silu, mul) = (step.nodes[0], step.nodes[1]);
                let Some(&gate) = graph.inputs(silu).first() else {
                    continue;
                };
                let silu_out = Value { node: silu, output: 0 };
                let up = match graph.inputs(mul)[..] {
                    [a, b] if a == silu_out && b != silu_out => b,
                    [a, b] if b == silu_out && a != silu_out => a,
                    _ => continue,
                };
                // Both whole rows of k channels, at one row stride (the GEMV reads them with X's).
                let (gv, uv) = (cg.plan.resolve(graph, gate), cg.plan.resolve(graph, up));
                let ld = |v: &crate::passes::fuse::View| graph.ty(v.base).channels();
                if graph.ty(gate).channels() != Some(k) || graph.ty(up).channels() != Some(k) || ld(&gv) != ld(&uv) {
                    continue;
                }
                if graph.users(silu).len() != 1 {
                    continue;
                }
                DecodePrologue::SiluMul { gate, up, label }
            }
            _ => continue,
        };
        if prologue.reads().iter().any(|&v| !bf16(v)) || graph_outputs.contains(&result) {
            continue;
        }
        // Every reader: a GEMM step's linear taking the result as its whole x.
        let users = graph.users(result.node);
        let readers: Vec<_> = users.iter().filter(|(_, p)| p.output == result.output).collect();
        let gemms: Option<Vec<usize>> = readers
            .iter()
            .map(|(u, p)| {
                let i = *gemm_of_linear.get(u)?;
                let w = graph.inputs(*u).get(1).copied()?;
                let linear_k = match &graph.node(w.node).op {
                    Op::Weight { shape, .. } => shape.get(1).copied(),
                    _ => None,
                };
                (p.input == 0 && linear_k == Some(k)).then_some(i)
            })
            .collect();
        let Some(gemms) = gemms.filter(|g| !g.is_empty()) else {
            continue;
        };
        out.skipped.insert(i);
        for g in gemms {
            out.gemms.insert(g, prologue.clone());
        }
    }
    out
}

/// The decode form of a GEMM step with a fused prologue: it reads the fused step's inputs.
fn fused_gemm(b: &mut Builder, g: &GemmStep, f: &DecodePrologue) -> Result<GemmStep, CodegenError> {
    let mut g = g.clone();
    let (label, prologue, x) = match f {
        DecodePrologue::RmsNorm {
            x,
            key,
            dtype,
            eps,
            label,
        } => {
            let weight = b.weight(key, *dtype)?;
            (label, GemmPrologue::RmsNorm { weight, eps: *eps }, b.operand(*x)?)
        }
        DecodePrologue::SiluMul { gate, up, label } => {
            let up = b.operand(*up)?;
            (label, GemmPrologue::SiluMul { up }, b.operand(*gate)?)
        }
    };
    g.x = x;
    g.prologue = Some(prologue);
    g.label = format!("{} ← {label}", g.label);
    Ok(g)
}
