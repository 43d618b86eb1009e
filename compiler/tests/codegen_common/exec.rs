//! A CPU interpreter of a generated [`Program`]: it runs the schedule step by step on f64 host
//! memory laid out exactly as the program says (buffers, offsets, row strides, packed weights,
//! state slots, `past_len`), evaluating
//! - GEMMs as `y = x·Wᵀ + bias + beta·c` over the packed device weights;
//! - glue kernels by running their fused IR nodes through the reference interpreter, with the
//!   inputs read from (and outputs written to) the launch's argument pointers;
//! - mixer cores by the semantics their template flags promise (in-kernel L2 norm and scale,
//!   the delta rule's gated RMSNorm epilogue, delta bias + softplus, z gate, in-place caches),
//!   on the reference ops.
//!
//! Comparing its logits with the reference interpreter on the unfused graph checks the fusion
//! plan, the GEMM packing, the buffer plan and the argument wiring without a GPU.

use std::collections::{BTreeMap, HashMap};

use modelc::codegen::kernel::KArg;
use modelc::codegen::Codegen;
use modelc::ir::lower::{LOGITS_OUTPUT, STATE_PREFIX};
use modelc::ir::UnaryFn as UnaryOp;
use modelc::ir::{DimEnv, Graph, Op, Value};
use modelc::passes::fuse::{Core, Step as PlanStep, StepKind};
use modelc::reference::ops::attention::attention;
use modelc::reference::ops::conv::causal_conv1d;
use modelc::reference::ops::delta_rule::delta_rule_recurrent;
use modelc::reference::ops::elementwise::{add, mul, scale, unary};
use modelc::reference::ops::linear::linear as linear_op;
use modelc::reference::ops::norm::{gated_rms_norm, l2_norm};
use modelc::reference::ops::selective_scan::selective_scan;
use modelc::reference::{execute, Array, InterpOptions, WeightStore};
use modelc_runtime::program::{Arg, BufferRef, Env, GemmPrologue, Program, Step, Sym};
use modelc_runtime::tensor::DType;

/// Which schedule a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prefill,
    Decode,
}

/// Host memory of a program instance: weights and states persist, buffers are per call.
pub struct Machine<'a> {
    cg: &'a Codegen,
    program: &'a Program,
    mem: HashMap<BufferRef, Vec<f64>>,
    pub max_len: u64,
    pub slots: u64,
    /// Round every buffer, state and output to its program dtype after each step: the storage
    /// precision of the GPU (bf16 activations), with f64 arithmetic inside steps.
    pub storage_rounding: bool,
    /// Values of steps a decode kernel absorbs (no buffer is written for them in decode): held
    /// here, whole, between the absorbed steps and the kernel that computes them.
    absorbed: HashMap<Value, Array>,
}

fn ev(e: &modelc_runtime::program::Expr, env: &Env) -> usize {
    e.eval(env).unwrap_or_else(|err| panic!("{err}")) as usize
}

impl<'a> Machine<'a> {
    /// Packs the device weights from `weights` by the program's recipe; zero states.
    pub fn new(cg: &'a Codegen, program: &'a Program, weights: &WeightStore, slots: u64, max_len: u64) -> Self {
        let mut mem = HashMap::new();
        for (i, w) in program.weights.iter().enumerate() {
            let row_len: usize = w.shape.iter().skip(1).product();
            let mut data = vec![f64::NAN; w.shape.iter().product()];
            for part in &w.parts {
                let src = weights.get(&part.key).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(src.shape, part.shape, "{}: part {} shape", w.name, part.key);
                assert_eq!(src.data.len(), part.rows * row_len, "{}: part {}", w.name, part.key);
                data[part.row * row_len..(part.row + part.rows) * row_len].copy_from_slice(&src.data);
            }
            assert!(
                data.iter().all(|x| !x.is_nan()),
                "{}: parts leave rows unfilled",
                w.name
            );
            mem.insert(BufferRef::Weight(i), data);
        }
        let env = Env {
            batch: 1,
            tokens: 1,
            past: 0,
            max_len,
            slots,
            slot: 0,
            sms: 132,
        };
        for (i, s) in program.states.iter().enumerate() {
            mem.insert(BufferRef::State(i), vec![0.0; ev(&s.per_slot(), &env) * slots as usize]);
        }
        let past_len = vec![0.0; slots as usize];
        mem.insert(BufferRef::Input(2), past_len);
        Machine {
            cg,
            program,
            mem,
            max_len,
            slots,
            storage_rounding: false,
            absorbed: HashMap::new(),
        }
    }

    /// Runs one call: `tokens[b]` for sequence slot `slot + b` (all of one length), whose past
    /// lengths are read from and advanced in `past_len`. Returns the logits `[batch, T, vocab]`.
    pub fn call(&mut self, phase: Phase, slot: u64, tokens: &[Vec<u32>]) -> Array {
        self.call_for(phase, slot, tokens, false)
    }

    /// [`call`](Self::call) computing only each sequence's last logits `[batch, 1, vocab]` the
    /// way the GPU executor does with the program's prefill head: the head's input rows
    /// `b·T + T − 1` moved to row `b`, then the head steps run for one token per sequence.
    pub fn call_last(&mut self, slot: u64, tokens: &[Vec<u32>]) -> Array {
        self.call_for(Phase::Prefill, slot, tokens, true)
    }

    fn call_for(&mut self, phase: Phase, slot: u64, tokens: &[Vec<u32>], last_only: bool) -> Array {
        let batch = tokens.len();
        let t = tokens[0].len();
        let pasts: Vec<u64> = (0..batch)
            .map(|b| self.mem[&BufferRef::Input(2)][slot as usize + b] as u64)
            .collect();
        let past = pasts.iter().copied().max().unwrap_or(0);
        let mut env = Env {
            batch: batch as u64,
            tokens: t as u64,
            past,
            max_len: self.max_len,
            slots: self.slots,
            slot,
            sms: 132,
        };
        // Per-call memory.
        for (i, buf) in self.program.buffers.iter().enumerate() {
            self.mem
                .insert(BufferRef::Buffer(i), vec![f64::NAN; ev(&buf.elements, &env)]);
        }
        for (i, o) in self.program.outputs.iter().enumerate() {
            self.mem
                .insert(BufferRef::Output(i), vec![f64::NAN; ev(&o.elements, &env)]);
        }
        let ids: Vec<f64> = tokens.iter().flatten().map(|&x| f64::from(x)).collect();
        let pos: Vec<f64> = pasts
            .iter()
            .flat_map(|&p| (0..t).map(move |i| (p + i as u64) as f64))
            .collect();
        self.mem.insert(BufferRef::Input(0), ids);
        self.mem.insert(BufferRef::Input(1), pos);

        let sched = match phase {
            Phase::Prefill => &self.program.prefill,
            Phase::Decode => &self.program.decode,
        };
        let head = self.program.head.as_ref().filter(|_| last_only);
        assert!(!last_only || head.is_some(), "the program has no prefill head");
        let mut next = sched.steps.iter().peekable();
        // Decode: plan steps a later step's kernel computes, run when that kernel's launch (and
        // so where each value lives) is reached.
        let mut pending: Vec<usize> = Vec::new();
        self.absorbed.clear();
        for (i, step) in self.cg.plan.steps.iter().enumerate() {
            if let Some(h) = head.filter(|h| sched.steps.len() - next.len() == h.first_step) {
                let off = ev(&h.hidden.offset, &env);
                let rows = self.mem.get_mut(&h.hidden.buffer).expect("the head's input buffer");
                for b in 0..batch {
                    let src = off + (b * t + t - 1) * h.hidden.ld;
                    rows.copy_within(src..src + h.channels, off + b * h.hidden.ld);
                }
                env = Env { tokens: 1, ..env };
            }
            if phase == Phase::Decode && self.cg.steps[i].decode_absorbed_by.is_some() {
                pending.push(i);
                continue;
            }
            match &step.kind {
                StepKind::Gemm { .. } => match next.next() {
                    Some(Step::Gemm(g)) => self.gemm(g, &env),
                    other => panic!("plan step {i} is a GEMM, program step is {other:?}"),
                },
                _ => {
                    let code = &self.cg.steps[i];
                    let launches = match phase {
                        Phase::Prefill => &code.prefill,
                        Phase::Decode => &code.decode,
                    };
                    // A glue step fused into the next GEMM's prologue (decode): no launch; the
                    // GEMM computes it from the glue step's inputs.
                    if matches!(step.kind, StepKind::Glue)
                        && !launches.is_empty()
                        && matches!(next.peek(), Some(Step::Gemm(g)) if g.prologue.is_some())
                    {
                        continue;
                    }
                    // A core's launches (decode attention: partials + combine) run as one unit:
                    // their argument lists together say where every value lives.
                    let mut all_args: Vec<(KArg, Arg)> = Vec::new();
                    for l in launches {
                        let Some(Step::Launch(ls)) = next.next() else {
                            panic!("plan step {i}: expected a launch")
                        };
                        assert_eq!(ls.args.len(), l.args.len(), "{}: argument count", ls.label);
                        assert_eq!(ls.entry, l.entry);
                        let args: Vec<(KArg, Arg)> = l.args.iter().cloned().zip(ls.args.iter().cloned()).collect();
                        match &step.kind {
                            StepKind::Glue => self.glue(step, &args, &env),
                            _ => all_args.extend(args),
                        }
                    }
                    for a in std::mem::take(&mut pending) {
                        assert_eq!(
                            self.cg.steps[a].decode_absorbed_by,
                            Some(i),
                            "plan step {a} absorbed elsewhere"
                        );
                        self.absorbed_step(a, &all_args, &env, &pasts);
                    }
                    if let StepKind::Core(core) = &step.kind {
                        self.core(step, core, &all_args, &env, &pasts);
                    }
                }
            }
            if self.storage_rounding {
                self.round_to_storage();
            }
        }
        assert!(next.next().is_none(), "the program has steps the plan does not");
        assert!(pending.is_empty(), "absorbed steps {pending:?} never ran");
        for b in 0..batch {
            self.mem.get_mut(&BufferRef::Input(2)).expect("past_len")[slot as usize + b] += t as f64;
        }
        let li = self
            .program
            .outputs
            .iter()
            .position(|o| o.name == LOGITS_OUTPUT)
            .expect("logits output");
        let mut data = self.mem[&BufferRef::Output(li)].clone();
        let vocab = data.len() / (batch * t);
        if head.is_some() {
            data.truncate(batch * vocab);
            return Array::new(vec![batch, 1, vocab], data);
        }
        Array::new(vec![batch, t, vocab], data)
    }

    /// Rounds every per-call buffer, state and output to its dtype (idempotent, so rounding
    /// everything after each step rounds exactly what the step wrote).
    fn round_to_storage(&mut self) {
        let program = self.program;
        for (r, data) in self.mem.iter_mut() {
            let dtype = match *r {
                BufferRef::Buffer(i) => program.buffers[i].dtype,
                BufferRef::State(i) => program.states[i].dtype,
                BufferRef::Output(i) => program.outputs[i].dtype,
                BufferRef::Weight(_) | BufferRef::Input(_) => continue,
            };
            match dtype {
                DType::BF16 => data
                    .iter_mut()
                    .for_each(|x| *x = half::bf16::from_f32(*x as f32).to_f64()),
                DType::F16 => data
                    .iter_mut()
                    .for_each(|x| *x = half::f16::from_f32(*x as f32).to_f64()),
                DType::F32 => data.iter_mut().for_each(|x| *x = f64::from(*x as f32)),
                _ => {}
            }
        }
    }

    fn graph(&self) -> &'a Graph {
        &self.cg.graph
    }

    fn region(&self, r: BufferRef) -> &Vec<f64> {
        self.mem.get(&r).unwrap_or_else(|| panic!("no memory for {r:?}"))
    }

    fn gemm(&mut self, g: &modelc_runtime::program::GemmStep, env: &Env) {
        let m = ev(&g.m, env);
        let (n, k) = (g.n, g.k);
        let x = self.region(g.x.buffer).clone();
        let w = self.region(BufferRef::Weight(g.weight)).clone();
        let bias = g.bias.map(|b| self.region(BufferRef::Weight(b)).clone());
        let c =
            g.c.as_ref()
                .map(|c| (self.region(c.buffer).clone(), ev(&c.offset, env), c.ld));
        let (xo, yo) = (ev(&g.x.offset, env), ev(&g.y.offset, env));
        // X as the GEMM multiplies it: its rows, through the step's prologue.
        let mut xs: Vec<Vec<f64>> = (0..m)
            .map(|r| x[xo + r * g.x.ld..xo + r * g.x.ld + k].to_vec())
            .collect();
        match &g.prologue {
            None => {}
            Some(GemmPrologue::RmsNorm { weight, eps }) => {
                let gamma = self.region(BufferRef::Weight(*weight));
                for row in &mut xs {
                    let ms = row.iter().map(|v| v * v).sum::<f64>() / k as f64;
                    let inv = 1.0 / (ms + f64::from(*eps)).sqrt();
                    row.iter_mut().zip(gamma).for_each(|(v, g)| *v *= inv * g);
                }
            }
            Some(GemmPrologue::SiluMul { up }) => {
                let (ud, uo) = (self.region(up.buffer), ev(&up.offset, env));
                for (r, row) in xs.iter_mut().enumerate() {
                    for (kk, v) in row.iter_mut().enumerate() {
                        let u = ud[uo + r * up.ld + kk];
                        *v = *v / (1.0 + (-*v).exp()) * u;
                        if self.storage_rounding {
                            *v = half::bf16::from_f32(*v as f32).to_f64();
                        }
                    }
                }
            }
        }
        let y = self.mem.get_mut(&g.y.buffer).expect("gemm output");
        for (r, xr) in xs.iter().enumerate() {
            for j in 0..n {
                let mut acc: f64 = (0..k).map(|kk| xr[kk] * w[j * k + kk]).sum();
                acc *= f64::from(g.alpha);
                if let Some(b) = &bias {
                    acc += b[j];
                }
                if let Some((cd, co, cld)) = &c {
                    acc += f64::from(g.beta) * cd[co + r * cld + j];
                }
                y[yo + r * g.y.ld + j] = acc;
            }
        }
    }

    /// Where an IR value lives in this launch: (region, offset, row stride).
    fn locate(&self, args: &[(KArg, Arg)], v: Value, env: &Env) -> (BufferRef, usize, usize) {
        let i = args
            .iter()
            .position(|(k, _)| *k == KArg::Value(v))
            .unwrap_or_else(|| panic!("value {v:?} not passed"));
        let Arg::Ptr { buffer, offset } = &args[i].1 else {
            panic!("value {v:?} passed as {:?}", args[i].1)
        };
        let stride = match args.get(i + 1) {
            Some((KArg::Stride(s), Arg::I32(e))) if *s == v => ev(e, env),
            _ => self.graph().ty(v).channels().unwrap_or(1),
        };
        (*buffer, ev(offset, env), stride)
    }

    fn read_rows(&self, args: &[(KArg, Arg)], v: Value, env: &Env) -> Array {
        let view = self.cg.plan.resolve(self.graph(), v);
        if let Some(whole) = self.absorbed.get(&view.base) {
            let c = whole.last_dim();
            let mut shape = whole.shape.clone();
            *shape.last_mut().expect("rows") = view.len;
            let data = whole
                .data
                .chunks(c)
                .flat_map(|r| r[view.start..view.start + view.len].iter().copied())
                .collect();
            return Array::new(shape, data);
        }
        let ty = self.graph().ty(v).clone();
        let rows = ev(&modelc_runtime::program::Expr::sym(Sym::Batch), env)
            * ev(&modelc_runtime::program::Expr::sym(Sym::Tokens), env);
        let (buf, off, stride) = self.locate(args, v, env);
        let data = self.region(buf);
        let shape: Vec<usize> = ty.shape.iter().map(|d| d.eval(&dim_env(env))).collect();
        let ch = if ty.shape.len() == 3 { shape[2] } else { 1 };
        let stride = if ty.shape.len() == 3 { stride } else { 1 };
        let mut out = Vec::with_capacity(rows * ch);
        for r in 0..rows {
            out.extend_from_slice(&data[off + r * stride..off + r * stride + ch]);
        }
        Array::new(shape, out)
    }

    fn write_rows(&mut self, args: &[(KArg, Arg)], v: Value, env: &Env, a: &Array) {
        if !args.iter().any(|(k, _)| *k == KArg::Value(v)) {
            // A value of an absorbed step: held whole, at its storage precision.
            let mut a = a.clone();
            if self.storage_rounding {
                match self.cg.storage_of(v) {
                    DType::BF16 => a
                        .data
                        .iter_mut()
                        .for_each(|x| *x = half::bf16::from_f32(*x as f32).to_f64()),
                    DType::F32 => a.data.iter_mut().for_each(|x| *x = f64::from(*x as f32)),
                    _ => {}
                }
            }
            self.absorbed.insert(v, a);
            return;
        }
        let (buf, off, stride) = self.locate(args, v, env);
        let ch = a.last_dim();
        let data = self.mem.get_mut(&buf).expect("output region");
        for (r, row) in a.data.chunks(ch).enumerate() {
            data[off + r * stride..off + r * stride + ch].copy_from_slice(row);
        }
    }

    fn weight_arg(&self, args: &[(KArg, Arg)], key: &str) -> Vec<f64> {
        for (k, a) in args {
            if let (KArg::Weight { key: kk, .. }, Arg::Ptr { buffer, .. }) = (k, a) {
                if kk == key {
                    return self.region(*buffer).clone();
                }
            }
        }
        panic!("weight {key} not passed")
    }

    fn weight_value(&self, args: &[(KArg, Arg)], v: Value) -> Array {
        let Op::Weight { key, shape, .. } = &self.graph().node(v.node).op else {
            panic!("not a weight")
        };
        Array::new(shape.clone(), self.weight_arg(args, key))
    }

    fn state_region(&self, args: &[(KArg, Arg)], name: &str, env: &Env) -> (BufferRef, usize, usize) {
        for (k, a) in args {
            if let (KArg::State(n), Arg::Ptr { buffer, offset }) = (k, a) {
                if n == name {
                    let BufferRef::State(si) = buffer else {
                        panic!("state {name} not in a state buffer")
                    };
                    let per = ev(&self.program.states[*si].per_slot(), env);
                    return (*buffer, ev(offset, env), per);
                }
            }
        }
        panic!("state {name} not passed")
    }

    fn read_state(&self, args: &[(KArg, Arg)], name: &str, env: &Env, shape: Vec<usize>) -> Array {
        let (buf, off, per) = self.state_region(args, name, env);
        let batch = env.batch as usize;
        Array::new(shape, self.region(buf)[off..off + batch * per].to_vec())
    }

    fn write_state(&mut self, args: &[(KArg, Arg)], name: &str, env: &Env, a: &Array) {
        let (buf, off, _) = self.state_region(args, name, env);
        self.mem.get_mut(&buf).expect("state")[off..off + a.data.len()].copy_from_slice(&a.data);
    }

    /// A plan step a decode kernel absorbs, its inputs found through that kernel's arguments
    /// (or among earlier absorbed values), its outputs held in `absorbed`.
    fn absorbed_step(&mut self, a: usize, args: &[(KArg, Arg)], env: &Env, pasts: &[u64]) {
        let step = &self.cg.plan.steps[a];
        match &step.kind {
            StepKind::Gemm { linear, residual: None } => {
                let ins = self.graph().inputs(*linear);
                let x = self.read_rows(args, ins[0], env);
                let w = self.weight_value(args, ins[1]);
                let y = linear_op(&x, &w, None).expect("absorbed linear");
                self.write_rows(
                    args,
                    Value {
                        node: *linear,
                        output: 0,
                    },
                    env,
                    &y,
                );
            }
            StepKind::Gemm { .. } => panic!("plan step {a}: an absorbed GEMM with a residual"),
            StepKind::Glue => self.glue(step, args, env),
            StepKind::Core(core) => self.core(step, core, args, env, pasts),
        }
    }

    /// A glue step: its nodes on the reference interpreter, inputs from the argument pointers.
    fn glue(&mut self, step: &PlanStep, args: &[(KArg, Arg)], env: &Env) {
        let graph = self.graph();
        let sub = super::glue_subgraph(graph, step);
        let mut inputs = BTreeMap::new();
        for (j, v) in step.inputs.iter().enumerate() {
            let value = match &graph.node(v.node).op {
                Op::Weight { .. } => self.weight_value(args, *v),
                _ => self.read_rows(args, *v, env),
            };
            inputs.insert(format!("in{j}"), value);
        }
        let outs = execute(
            &sub,
            &WeightStore::default(),
            &inputs,
            dim_env(env),
            InterpOptions::default(),
        )
        .expect("glue step runs");
        for (j, v) in step.outputs.clone().iter().enumerate() {
            self.write_rows(args, *v, env, &outs[&format!("out{j}")]);
        }
    }

    fn core(&mut self, step: &PlanStep, core: &Core, args: &[(KArg, Arg)], env: &Env, pasts: &[u64]) {
        let graph = self.graph();
        let n = core.node();
        let ins = graph.inputs(n);
        let state_name = |port: usize| match &graph.node(ins[port].node).op {
            Op::Input { name, .. } => name.strip_prefix(STATE_PREFIX).expect("state input").to_string(),
            other => panic!("port {port} is {}", other.name()),
        };
        let batch = env.batch as usize;
        let _ = step;
        match (core, graph.node(n).op.clone()) {
            (Core::Attention { .. }, Op::Attention(p)) => {
                let (q, k, v) = (
                    self.read_rows(args, ins[0], env),
                    self.read_rows(args, ins[1], env),
                    self.read_rows(args, ins[2], env),
                );
                let (kn, vn) = (state_name(3), state_name(4));
                let t = env.tokens as usize;
                let (g, dh) = (p.kv_heads, p.head_dim);
                let ml = self.max_len as usize;
                let cfg = p;
                let mut o_all = Vec::new();
                for (b, &past) in pasts.iter().enumerate().take(batch) {
                    let past = past as usize;
                    assert!(past + t <= ml, "test max_len too small");
                    let keep = match p.window {
                        Some(w) => past.min(w.saturating_sub(1)),
                        None => past,
                    };
                    let row = |a: &Array| {
                        let c = a.last_dim();
                        Array::new(vec![1, t, c], a.data[b * t * c..(b + 1) * t * c].to_vec())
                    };
                    let (kb, vb) = self.cache_for(args, &kn, &vn, env, b, past - keep, past, g, dh);
                    let (o, _, _) = attention(&row(&q), &row(&k), &row(&v), &kb, &vb, &cfg).expect("attention");
                    o_all.extend(o.data);
                    self.append_cache(args, &kn, &row(&k), env, b, past, g, dh);
                    self.append_cache(args, &vn, &row(&v), env, b, past, g, dh);
                }
                let o = Array::new(q.shape.clone(), o_all);
                self.write_rows(args, Value { node: n, output: 0 }, env, &o);
            }
            (Core::Conv { .. }, Op::CausalConv1d { kernel, bias, silu }) => {
                let x = self.read_rows(args, ins[0], env);
                let w = self.weight_value(args, ins[1]);
                let b = bias.then(|| self.weight_value(args, ins[2]));
                let sp = if bias { 3 } else { 2 };
                let c = x.last_dim();
                let st = self.read_state(args, &state_name(sp), env, vec![batch, c, kernel - 1]);
                let (y, st2) = causal_conv1d(&x, &w, b.as_ref(), &st, silu).expect("conv");
                self.write_rows(args, Value { node: n, output: 0 }, env, &y);
                self.write_state(args, &state_name(sp), env, &st2);
            }
            (
                Core::DeltaRule {
                    q,
                    k,
                    qk_l2norm,
                    scale: sc,
                    norm,
                    out,
                    ..
                },
                Op::DeltaRule(p),
            ) => {
                let (mut qa, mut ka) = (self.read_rows(args, *q, env), self.read_rows(args, *k, env));
                if *qk_l2norm {
                    qa = l2_norm(&qa, p.key_dim, 1e-6).expect("l2");
                    ka = l2_norm(&ka, p.key_dim, 1e-6).expect("l2");
                }
                qa = scale(&qa, *sc);
                let v = self.read_rows(args, ins[2], env);
                let g = self.read_rows(args, ins[3], env);
                let beta = self.read_rows(args, ins[4], env);
                let sname = state_name(5);
                let st = self.read_state(args, &sname, env, vec![batch, p.value_heads, p.key_dim, p.value_dim]);
                let cfg = p;
                let (mut o, st2) = delta_rule_recurrent(&qa, &ka, &v, &g, &beta, &st, &cfg).expect("delta rule");
                // The epilogue: the gated RMSNorm over each value head, gate and weight from the
                // launch's trailing arguments.
                if let Some(m) = norm {
                    let gate = self.read_rows(args, m.gate, env);
                    let w = self.weight_value(args, m.weight);
                    o = gated_rms_norm(&o, &gate, &w, m.eps, p.value_dim, m.act).expect("gated norm");
                }
                self.write_rows(args, *out, env, &o);
                self.write_state(args, &sname, env, &st2);
            }
            (
                Core::Scan {
                    delta,
                    delta_bias,
                    softplus,
                    z,
                    out,
                    ..
                },
                Op::SelectiveScan { state_size },
            ) => {
                let u = self.read_rows(args, ins[0], env);
                let mut d = self.read_rows(args, *delta, env);
                if let Some(bv) = delta_bias {
                    d = add(&d, &self.weight_value(args, *bv)).expect("bias");
                }
                if *softplus {
                    d = unary(&d, UnaryOp::Softplus);
                }
                let a_log = self.weight_value(args, ins[2]);
                let bm = self.read_rows(args, ins[3], env);
                let cm = self.read_rows(args, ins[4], env);
                let dd = self.weight_value(args, ins[5]);
                let sname = state_name(6);
                let di = u.last_dim();
                let st = self.read_state(args, &sname, env, vec![batch, di, state_size]);
                let (mut y, st2) = selective_scan(&u, &d, &a_log, &bm, &cm, &dd, &st, state_size).expect("scan");
                if let Some(zv) = z {
                    let za = self.read_rows(args, *zv, env);
                    y = mul(&y, &unary(&za, UnaryOp::Silu)).expect("gate");
                }
                self.write_rows(args, *out, env, &y);
                self.write_state(args, &sname, env, &st2);
            }
            (c, op) => panic!("core {c:?} on {}", op.name()),
        }
    }

    /// The cache of sequence `b` (at slot `slot + b`), positions `from..to`, as `[1, G, len, Dh]`.
    #[allow(clippy::too_many_arguments)]
    fn cache_for(
        &self,
        args: &[(KArg, Arg)],
        kn: &str,
        vn: &str,
        env: &Env,
        b: usize,
        from: usize,
        to: usize,
        g: usize,
        dh: usize,
    ) -> (Array, Array) {
        let ml = self.max_len as usize;
        let read = |name: &str| {
            let (buf, off, per) = self.state_region(args, name, env);
            let base = off + b * per;
            let data = self.region(buf);
            let mut out = Vec::new();
            for gi in 0..g {
                for pos in from..to {
                    let s = base + (gi * ml + pos % ml) * dh;
                    out.extend_from_slice(&data[s..s + dh]);
                }
            }
            Array::new(vec![1, g, to - from, dh], out)
        };
        (read(kn), read(vn))
    }

    #[allow(clippy::too_many_arguments)]
    fn append_cache(
        &mut self,
        args: &[(KArg, Arg)],
        name: &str,
        new: &Array,
        env: &Env,
        b: usize,
        past: usize,
        g: usize,
        dh: usize,
    ) {
        let ml = self.max_len as usize;
        let (buf, off, per) = self.state_region(args, name, env);
        let base = off + b * per;
        let t = new.shape[1];
        let data = self.mem.get_mut(&buf).expect("cache");
        for ti in 0..t {
            for gi in 0..g {
                let s = base + (gi * ml + (past + ti) % ml) * dh;
                let src = (ti * g + gi) * dh;
                data[s..s + dh].copy_from_slice(&new.data[src..src + dh]);
            }
        }
    }
}

pub fn dim_env(env: &Env) -> DimEnv {
    DimEnv {
        batch: env.batch as usize,
        tokens: env.tokens as usize,
        past: env.past as usize,
    }
}
