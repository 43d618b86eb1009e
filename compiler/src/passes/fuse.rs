//! The fusion partitioner: splits a (merged, placement-specialised) graph into the steps a
//! program runs, in order.
//!
//! - Every `Linear` is a cuBLAS GEMM. An `Add` of its result to a same-shaped value (the residual
//!   stream after o_proj / down_proj) rides on it: cuBLAS computes `D = x·Wᵀ + 1·C` (beta = 1).
//! - Every mixer core (attention, delta rule, selective scan, causal conv) is a template kernel
//!   that absorbs the neighbours its template computes in-kernel: the q/k L2 norms, the q scale
//!   and the gated RMSNorm of the output (GDN/KDA's output norm, the template's epilogue) of the
//!   delta rule; the delta bias + softplus and the `y·SiLU(z)` gate of the scan.
//! - Slices of GEMM / core outputs are views: a consumer reads the column window in place.
//! - Every remaining op is row-wise (each output row depends on the same row of its inputs):
//!   elementwise ops, per-row / per-head reductions (norms), RoPE, gates, repeats, the embedding
//!   gather. They form "glue" kernels: connected row-wise ops at the same *depth* (number of
//!   GEMM/core steps on the longest path before them) fuse into one kernel; equal depth
//!   guarantees that no path between two members leaves the kernel, so the step graph stays
//!   acyclic. Then glue kernels that only feed the same core and are independent of each other
//!   merge horizontally (RoPE of q and k; the sigmoid and decay gates of KDA).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::stable_graph::NodeIndex;

use crate::codegen::templates::delta_rule::gated_norm_supported;
use crate::ir::{DeltaRuleParams, Graph, IrError, Op, Value};
use crate::spec::GateActivation;
use modelc_runtime::tensor::DType;

/// Epsilon the delta-rule template uses for its in-kernel q/k L2 norm.
pub const TEMPLATE_QK_L2_EPS: f64 = 1e-6;

/// A column window of a value, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub base: Value,
    pub start: usize,
    pub len: usize,
}

/// The residual add folded into a GEMM (beta = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residual {
    pub add: NodeIndex,
    /// The value accumulated into (cuBLAS's C).
    pub operand: Value,
}

/// A mixer core and what its template absorbs. `Value`s are the inputs the kernel reads after
/// absorption.
#[derive(Debug, Clone, PartialEq)]
pub enum Core {
    Attention {
        node: NodeIndex,
    },
    Conv {
        node: NodeIndex,
    },
    DeltaRule {
        node: NodeIndex,
        q: Value,
        k: Value,
        qk_l2norm: bool,
        scale: f64,
        /// The gated RMSNorm applied to o in-kernel, if absorbed.
        norm: Option<DeltaNorm>,
        /// The value the kernel stores: o, or the norm's output.
        out: Value,
    },
    Scan {
        node: NodeIndex,
        delta: Value,
        delta_bias: Option<Value>,
        softplus: bool,
        z: Option<Value>,
        out: Value,
    },
}

/// A `GatedRmsNorm(o, gate, w)` over the delta rule's output, computed by the template's
/// epilogue (one block per value head, so `Dv` is bounded: `gated_norm_supported`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaNorm {
    /// The `GatedRmsNorm` node.
    pub node: NodeIndex,
    pub gate: Value,
    /// The norm's weight `[Dv]`, a checkpoint tensor.
    pub weight: Value,
    pub eps: f64,
    pub act: GateActivation,
}

impl Core {
    pub fn node(&self) -> NodeIndex {
        match self {
            Core::Attention { node } | Core::Conv { node } => *node,
            Core::DeltaRule { node, .. } | Core::Scan { node, .. } => *node,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Gemm {
        linear: NodeIndex,
        residual: Option<Residual>,
    },
    Core(Core),
    /// A generated row-wise kernel over the step's nodes.
    Glue,
}

/// One launch unit of the program.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// The IR nodes this step computes, in topological order.
    pub nodes: Vec<NodeIndex>,
    /// Values from outside the step that it reads (views not resolved), in first-use order.
    pub inputs: Vec<Value>,
    /// Values it computes that other steps or graph outputs read, in node order.
    pub outputs: Vec<Value>,
    pub layer: Option<usize>,
    /// Scope of the step's first node.
    pub scope: String,
}

/// The partition of a graph into steps and views.
#[derive(Debug, Clone, Default)]
pub struct FusionPlan {
    pub steps: Vec<Step>,
    /// Slice nodes read in place.
    pub views: BTreeMap<NodeIndex, View>,
}

impl FusionPlan {
    /// The window a value denotes: a view's base and offset, or the whole value.
    pub fn resolve(&self, graph: &Graph, v: Value) -> View {
        match self.views.get(&v.node) {
            Some(view) => *view,
            None => View {
                base: v,
                start: 0,
                len: graph.ty(v).channels().unwrap_or(0),
            },
        }
    }

    /// The step that computes a node, if any.
    pub fn step_of(&self) -> HashMap<NodeIndex, usize> {
        let mut m = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            for n in &s.nodes {
                m.insert(*n, i);
            }
        }
        m
    }
}

/// Whether an op is row-wise: fusable into a glue kernel.
pub fn is_rowwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Embedding
            | Op::RmsNorm { .. }
            | Op::LayerNorm { .. }
            | Op::GatedRmsNorm { .. }
            | Op::L2Norm { .. }
            | Op::Unary(_)
            | Op::Add
            | Op::Mul
            | Op::Scale(_)
            | Op::Slice { .. }
            | Op::Concat
            | Op::RepeatGroups { .. }
            | Op::Rope { .. }
            | Op::DecayGate { .. }
    )
}

fn is_io(op: &Op) -> bool {
    matches!(op, Op::Input { .. } | Op::Weight { .. } | Op::Output { .. })
}

/// The single user of a node's output 0, if it has exactly one reader edge.
fn sole_user(graph: &Graph, n: NodeIndex) -> Option<NodeIndex> {
    match graph.users(n).as_slice() {
        [(u, _)] => Some(*u),
        _ => None,
    }
}

/// Partitions `graph` into steps (see the module doc).
pub fn partition(graph: &Graph) -> Result<FusionPlan, IrError> {
    let order = graph.topo_order()?;
    let rank = node_ranks(&order);
    let mut owner: HashMap<NodeIndex, usize> = HashMap::new();
    let mut steps: Vec<Step> = Vec::new();
    let fail = |n: NodeIndex, why: &str| {
        let node = graph.node(n);
        IrError::Verify(format!(
            "fusion: {} node {} in {}: {why}",
            node.op.name(),
            n.index(),
            node.scope
        ))
    };
    let claim = |owner: &mut HashMap<NodeIndex, usize>, nodes: &[NodeIndex], step: usize| -> Result<(), IrError> {
        for n in nodes {
            if owner.insert(*n, step).is_some() {
                return Err(fail(*n, "claimed by two steps"));
            }
        }
        Ok(())
    };

    // 1. Mixer cores with their absorbed neighbours.
    for &n in &order {
        let core = match &graph.node(n).op {
            Op::Attention(_) => Some((Core::Attention { node: n }, vec![n])),
            Op::CausalConv1d { .. } => Some((Core::Conv { node: n }, vec![n])),
            Op::DeltaRule(p) => Some(absorb_delta_rule(graph, &rank, n, p)),
            Op::SelectiveScan { .. } => Some(absorb_scan(graph, n)),
            Op::Route { .. } => return Err(fail(n, "a stochastic route: specialise the graph to a placement first")),
            _ => None,
        };
        if let Some((core, nodes)) = core {
            let i = steps.len();
            claim(&mut owner, &nodes, i)?;
            steps.push(new_step(graph, StepKind::Core(core), nodes));
        }
    }
    // 2. GEMMs, each with the residual add it can carry.
    for &n in &order {
        if !matches!(graph.node(n).op, Op::Linear { .. }) {
            continue;
        }
        let residual = sole_user(graph, n).and_then(|add| {
            if owner.contains_key(&add) || !matches!(graph.node(add).op, Op::Add) {
                return None;
            }
            let ins = graph.inputs(add);
            let mine = Value { node: n, output: 0 };
            let operand = match ins.as_slice() {
                [a, b] if *b == mine && *a != mine => *a,
                [a, b] if *a == mine && *b != mine => *b,
                _ => return None,
            };
            (graph.ty(operand) == graph.ty(mine)).then_some(Residual { add, operand })
        });
        let mut nodes = vec![n];
        if let Some(r) = residual {
            nodes.push(r.add);
        }
        let i = steps.len();
        claim(&mut owner, &nodes, i)?;
        steps.push(new_step(graph, StepKind::Gemm { linear: n, residual }, nodes));
    }
    // 3. Views: slices of values no glue kernel computes.
    let mut views: BTreeMap<NodeIndex, View> = BTreeMap::new();
    for &n in &order {
        let Op::Slice { start, len } = graph.node(n).op else {
            continue;
        };
        if owner.contains_key(&n) {
            continue;
        }
        let Some(&src) = graph.inputs(n).first() else {
            return Err(fail(n, "slice without input"));
        };
        let src_op = &graph.node(src.node).op;
        if let Some(v) = views.get(&src.node).copied() {
            views.insert(
                n,
                View {
                    base: v.base,
                    start: v.start + start,
                    len,
                },
            );
        } else if owner.contains_key(&src.node) || matches!(src_op, Op::Input { .. } | Op::Weight { .. }) {
            views.insert(n, View { base: src, start, len });
        }
    }
    // 4. Glue: remaining row-wise nodes, grouped by depth and adjacency.
    let mut depth: HashMap<NodeIndex, usize> = HashMap::new();
    for &n in &order {
        let mut d = 0;
        for p in graph.inputs(n) {
            let cross = owner.get(&p.node).is_some_and(|s| owner.get(&n) != Some(s));
            d = d.max(depth.get(&p.node).copied().unwrap_or(0) + usize::from(cross));
        }
        depth.insert(n, d);
    }
    let glue: Vec<NodeIndex> = order
        .iter()
        .copied()
        .filter(|n| !owner.contains_key(n) && !views.contains_key(n) && !is_io(&graph.node(*n).op))
        .collect();
    for &n in &glue {
        if !is_rowwise(&graph.node(n).op) {
            return Err(fail(n, "no kernel computes this op"));
        }
    }
    let glue_set: BTreeSet<NodeIndex> = glue.iter().copied().collect();
    let mut uf = UnionFind::new(&glue);
    for &n in &glue {
        for p in graph.inputs(n) {
            if glue_set.contains(&p.node) && depth.get(&p.node) == depth.get(&n) {
                uf.union(p.node, n);
            }
        }
    }
    let mut comps: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
    for &n in &glue {
        comps.entry(uf.find(n).index()).or_default().push(n);
    }
    // Components in order of their first node (glue is in topological order).
    let mut comps: Vec<Vec<NodeIndex>> = comps.into_values().collect();
    comps.sort_by_key(|c| c.first().map(|n| n.index()));
    for nodes in comps {
        let i = steps.len();
        claim(&mut owner, &nodes, i)?;
        steps.push(new_step(graph, StepKind::Glue, nodes));
    }
    let plan = FusionPlan { steps, views };
    let mut plan = merge_prologues(graph, plan)?;
    for s in &mut plan.steps {
        s.nodes = local_topo(graph, &s.nodes);
    }
    fill_io(graph, &mut plan);
    order_steps(graph, plan)
}

fn new_step(graph: &Graph, kind: StepKind, mut nodes: Vec<NodeIndex>) -> Step {
    nodes.sort_by_key(|n| n.index());
    nodes.dedup();
    let first = graph.node(nodes[0]);
    let (layer, scope) = match &kind {
        StepKind::Core(c) => (graph.node(c.node()).layer, graph.node(c.node()).scope.clone()),
        StepKind::Gemm { linear, .. } => (graph.node(*linear).layer, graph.node(*linear).scope.clone()),
        StepKind::Glue => (first.layer, first.scope.clone()),
    };
    Step {
        kind,
        nodes,
        inputs: Vec::new(),
        outputs: Vec::new(),
        layer,
        scope,
    }
}

/// Delta rule: absorbs `scale(l2norm(q))` and `l2norm(k)` (the template's in-kernel norm, eps
/// 1e-6) when each is read only by the core, else only a bare `scale(q)`; and the gated RMSNorm
/// of its output ([`delta_output_norm`]).
fn absorb_delta_rule(graph: &Graph, rank: &[usize], n: NodeIndex, p: &DeltaRuleParams) -> (Core, Vec<NodeIndex>) {
    let key_dim = p.key_dim;
    let ins = graph.inputs(n);
    let mut nodes = vec![n];
    let o = Value { node: n, output: 0 };
    let (Some(&q0), Some(&k0)) = (ins.first(), ins.get(1)) else {
        return (
            Core::DeltaRule {
                node: n,
                q: o,
                k: o,
                qk_l2norm: false,
                scale: 1.0,
                norm: None,
                out: o,
            },
            nodes,
        );
    };
    let (mut q, mut k) = (q0, k0);
    let single = |v: Value, user: NodeIndex| sole_user(graph, v.node) == Some(user);
    let is_l2 = |v: Value| matches!(graph.node(v.node).op, Op::L2Norm { eps, group } if eps == TEMPLATE_QK_L2_EPS && group == key_dim);
    let mut scale = 1.0;
    let mut q_user = n;
    if let Op::Scale(c) = graph.node(q.node).op {
        if single(q, n) {
            scale = c;
            nodes.push(q.node);
            q_user = q.node;
            q = graph.inputs(q.node).first().copied().unwrap_or(q);
        }
    }
    let qk_l2norm = is_l2(q) && is_l2(k) && single(q, q_user) && single(k, n) && q.node != k.node;
    if qk_l2norm {
        nodes.push(q.node);
        nodes.push(k.node);
        q = graph.inputs(q.node).first().copied().unwrap_or(q);
        k = graph.inputs(k.node).first().copied().unwrap_or(k);
    }
    let norm = delta_output_norm(graph, rank, n, p.value_dim);
    let out = match &norm {
        Some(m) => {
            nodes.push(m.node);
            Value {
                node: m.node,
                output: 0,
            }
        }
        None => o,
    };
    (
        Core::DeltaRule {
            node: n,
            q,
            k,
            qk_l2norm,
            scale,
            norm,
            out,
        },
        nodes,
    )
}

/// The `GatedRmsNorm(o, gate, w)` the delta rule's template can apply to its output `o`: o has
/// no other reader, the norm's group is one value head (`Dv`, within the epilogue's limit), `w`
/// is a `[Dv]` checkpoint tensor, o and gate are bf16 (what the kernel reads and writes), and
/// the gate does not depend on the delta rule (the step reads it before it runs).
fn delta_output_norm(graph: &Graph, rank: &[usize], n: NodeIndex, value_dim: usize) -> Option<DeltaNorm> {
    let o = Value { node: n, output: 0 };
    let readers: Vec<NodeIndex> = graph
        .users(n)
        .into_iter()
        .filter(|(_, p)| p.output == 0)
        .map(|(u, _)| u)
        .collect();
    let [user] = readers.as_slice() else {
        return None;
    };
    let Op::GatedRmsNorm { eps, group, act } = graph.node(*user).op else {
        return None;
    };
    let ins = graph.inputs(*user);
    let [x, gate, weight] = ins.as_slice() else {
        return None;
    };
    let weight_ok = matches!(&graph.node(weight.node).op, Op::Weight { shape, .. } if shape.as_slice() == [value_dim]);
    let ok = *x == o
        && *gate != o
        && group == value_dim
        && gated_norm_supported(value_dim)
        && weight_ok
        && graph.ty(o).dtype == DType::BF16
        && graph.ty(*gate) == graph.ty(o)
        && !depends_on(graph, rank, *gate, n);
    ok.then_some(DeltaNorm {
        node: *user,
        gate: *gate,
        weight: *weight,
        eps,
        act,
    })
}

/// Each node's position in the topological `order`, indexed by node index.
fn node_ranks(order: &[NodeIndex]) -> Vec<usize> {
    let bound = order.iter().map(|n| n.index() + 1).max().unwrap_or(0);
    let mut rank = vec![usize::MAX; bound];
    for (i, n) in order.iter().enumerate() {
        rank[n.index()] = i;
    }
    rank
}

/// Whether computing `v` needs node `n`: a walk up `v`'s inputs that stops at nodes ranked
/// before `n` in topological order (none of them can need `n`), so it visits only the nodes
/// between the two, not the whole model above them.
fn depends_on(graph: &Graph, rank: &[usize], v: Value, n: NodeIndex) -> bool {
    depends_on_counted(graph, rank, v, n).0
}

/// [`depends_on`], and how many nodes the walk expanded (tests check it does not grow with the
/// model's depth).
fn depends_on_counted(graph: &Graph, rank: &[usize], v: Value, n: NodeIndex) -> (bool, usize) {
    let floor = rank.get(n.index()).copied().unwrap_or(0);
    let mut stack = vec![v.node];
    let mut seen = BTreeSet::new();
    while let Some(m) = stack.pop() {
        if m == n {
            return (true, seen.len());
        }
        if rank.get(m.index()).is_some_and(|&r| r < floor) {
            continue;
        }
        if seen.insert(m) {
            stack.extend(graph.inputs(m).into_iter().map(|x| x.node));
        }
    }
    (false, seen.len())
}

/// Selective scan: absorbs `softplus(dt [+ bias])` on Δ and `y · silu(z)` on the output.
fn absorb_scan(graph: &Graph, n: NodeIndex) -> (Core, Vec<NodeIndex>) {
    let ins = graph.inputs(n);
    let mut nodes = vec![n];
    let single = |v: Value, user: NodeIndex| sole_user(graph, v.node) == Some(user);
    let y = Value { node: n, output: 0 };
    let Some(&delta0) = ins.get(1) else {
        return (
            Core::Scan {
                node: n,
                delta: y,
                delta_bias: None,
                softplus: false,
                z: None,
                out: y,
            },
            nodes,
        );
    };
    let mut delta = delta0;
    let mut user = n;
    let mut softplus = false;
    if matches!(graph.node(delta.node).op, Op::Unary(crate::ir::UnaryFn::Softplus)) && single(delta, n) {
        softplus = true;
        nodes.push(delta.node);
        user = delta.node;
        delta = graph.inputs(delta.node).first().copied().unwrap_or(delta);
    }
    let mut delta_bias = None;
    if matches!(graph.node(delta.node).op, Op::Add) && single(delta, user) {
        let add = graph.inputs(delta.node);
        let di = graph.ty(y).channels();
        let bias_like = |v: Value| matches!(&graph.node(v.node).op, Op::Weight { shape, .. } if shape.len() == 1 && shape.first().copied() == di);
        if add.len() == 2 && bias_like(add[1]) && !bias_like(add[0]) {
            nodes.push(delta.node);
            delta_bias = Some(add[1]);
            delta = add[0];
        }
    }
    let mut out = y;
    let mut z = None;
    let y_users: Vec<_> = graph.users(n).into_iter().filter(|(_, p)| p.output == 0).collect();
    if let [(mul, _)] = y_users.as_slice() {
        if matches!(graph.node(*mul).op, Op::Mul) {
            let m = graph.inputs(*mul);
            let other = match m.as_slice() {
                [a, b] if *a == y && *b != y => Some(*b),
                [a, b] if *b == y && *a != y => Some(*a),
                _ => None,
            };
            if let Some(g) = other {
                if matches!(graph.node(g.node).op, Op::Unary(crate::ir::UnaryFn::Silu)) && single(g, *mul) {
                    nodes.push(*mul);
                    nodes.push(g.node);
                    z = graph.inputs(g.node).first().copied();
                    out = Value { node: *mul, output: 0 };
                }
            }
        }
    }
    (
        Core::Scan {
            node: n,
            delta,
            delta_bias,
            softplus,
            z,
            out,
        },
        nodes,
    )
}

/// The nodes of one step in topological order, ties broken by node index. Only edges inside the
/// step count, so identical layers give the same order (the graph-wide topological order
/// interleaves a layer's nodes with nodes that passes appended to the graph).
fn local_topo(graph: &Graph, nodes: &[NodeIndex]) -> Vec<NodeIndex> {
    let set: BTreeSet<NodeIndex> = nodes.iter().copied().collect();
    let mut indeg: BTreeMap<NodeIndex, usize> = nodes
        .iter()
        .map(|&n| {
            (
                n,
                graph
                    .inputs(n)
                    .iter()
                    .filter(|v| set.contains(&v.node))
                    .map(|v| v.node)
                    .collect::<BTreeSet<_>>()
                    .len(),
            )
        })
        .collect();
    let mut ready: BTreeSet<NodeIndex> = indeg.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(n) = ready.pop_first() {
        out.push(n);
        let users: BTreeSet<NodeIndex> = graph
            .users(n)
            .into_iter()
            .map(|(u, _)| u)
            .filter(|u| set.contains(u))
            .collect();
        for u in users {
            if let Some(d) = indeg.get_mut(&u) {
                *d -= 1;
                if *d == 0 {
                    ready.insert(u);
                }
            }
        }
    }
    out
}

/// Fills each step's external inputs and outputs (outputs in the order of the step's nodes).
fn fill_io(graph: &Graph, plan: &mut FusionPlan) {
    let owner = plan.step_of();
    for (i, step) in plan.steps.iter_mut().enumerate() {
        let mine: BTreeSet<NodeIndex> = step.nodes.iter().copied().collect();
        let mut inputs = Vec::new();
        let mut outputs: Vec<Value> = Vec::new();
        for &n in &step.nodes {
            for v in graph.inputs(n) {
                if !mine.contains(&v.node) && !inputs.contains(&v) {
                    inputs.push(v);
                }
            }
            let mut outs: Vec<usize> = graph
                .users(n)
                .into_iter()
                .filter(|(u, _)| owner.get(u) != Some(&i))
                .map(|(_, p)| p.output)
                .collect();
            outs.sort_unstable();
            outs.dedup();
            outputs.extend(outs.into_iter().map(|output| Value { node: n, output }));
        }
        step.inputs = inputs;
        step.outputs = outputs;
    }
}

/// The step DAG: step → steps it reads from (through views too).
fn step_deps(graph: &Graph, plan: &FusionPlan) -> Vec<BTreeSet<usize>> {
    let owner = plan.step_of();
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.inputs
                .iter()
                .filter_map(|v| owner.get(&plan.resolve(graph, *v).base.node).copied())
                .filter(|&d| d != i)
                .collect()
        })
        .collect()
}

/// Each step's position in a topological order of the step DAG `deps` (`usize::MAX` for steps
/// on a cycle, which [`order_steps`] reports).
fn step_ranks(deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut indeg: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            users[p].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| indeg[i] == 0).collect();
    let mut rank = vec![usize::MAX; deps.len()];
    let mut next = 0;
    while let Some(i) = ready.pop() {
        rank[i] = next;
        next += 1;
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push(u);
            }
        }
    }
    rank
}

/// Does step `to` depend (transitively) on step `from`? The walk up `to`'s dependencies stops at
/// steps ranked before `from` (see [`step_ranks`]), so it stays between the two.
fn reaches(deps: &[BTreeSet<usize>], rank: &[usize], from: usize, to: usize) -> bool {
    reaches_counted(deps, rank, from, to).0
}

/// [`reaches`], and how many steps the walk expanded.
fn reaches_counted(deps: &[BTreeSet<usize>], rank: &[usize], from: usize, to: usize) -> (bool, usize) {
    let floor = match rank[from] {
        usize::MAX => 0,
        r => r,
    };
    let mut stack = vec![to];
    let mut seen = BTreeSet::new();
    while let Some(s) = stack.pop() {
        if s == from {
            return (true, seen.len());
        }
        if rank[s] < floor {
            continue;
        }
        if seen.insert(s) {
            stack.extend(deps[s].iter().copied());
        }
    }
    (false, seen.len())
}

/// Merges glue steps whose every reader is the same core step and that are independent.
fn merge_prologues(graph: &Graph, mut plan: FusionPlan) -> Result<FusionPlan, IrError> {
    fill_io(graph, &mut plan);
    let owner = plan.step_of();
    let deps = step_deps(graph, &plan);
    let rank = step_ranks(&deps);
    // For each glue step, the set of steps reading it (None if a graph output reads it).
    let mut readers: Vec<Option<BTreeSet<usize>>> = vec![Some(BTreeSet::new()); plan.steps.len()];
    for (i, s) in plan.steps.iter().enumerate() {
        for d in &deps[i] {
            if let Some(r) = readers[*d].as_mut() {
                r.insert(i);
            }
        }
        for v in &s.outputs {
            if graph.users(v.node).iter().any(|(u, _)| !owner.contains_key(u)) {
                readers[i] = None;
            }
        }
    }
    let mut by_core: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if s.kind != StepKind::Glue {
            continue;
        }
        if let Some(r) = &readers[i] {
            if let [only] = r.iter().copied().collect::<Vec<_>>()[..] {
                if matches!(plan.steps[only].kind, StepKind::Core(_)) {
                    by_core.entry(only).or_default().push(i);
                }
            }
        }
    }
    // Greedy: the first glue step of each core absorbs every later one independent of all kept.
    let mut absorbed_into: BTreeMap<usize, usize> = BTreeMap::new();
    for (_, glues) in by_core {
        let Some((&head, rest)) = glues.split_first() else {
            continue;
        };
        let mut kept = vec![head];
        for &g in rest {
            if kept
                .iter()
                .all(|&k| !reaches(&deps, &rank, k, g) && !reaches(&deps, &rank, g, k))
            {
                absorbed_into.insert(g, head);
                kept.push(g);
            }
        }
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut new_index: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if let Some(head) = absorbed_into.get(&i) {
            let h = new_index[head];
            let mut nodes = std::mem::take(&mut steps[h].nodes);
            nodes.extend(s.nodes.iter().copied());
            nodes.sort_by_key(|n| n.index());
            steps[h].nodes = nodes;
        } else {
            new_index.insert(i, steps.len());
            steps.push(s.clone());
        }
    }
    let mut plan = FusionPlan {
        steps,
        views: plan.views,
    };
    fill_io(graph, &mut plan);
    Ok(plan)
}

/// Orders steps topologically (ties: the smallest first node), failing on a cycle.
fn order_steps(graph: &Graph, plan: FusionPlan) -> Result<FusionPlan, IrError> {
    let deps = step_deps(graph, &plan);
    let n = plan.steps.len();
    let mut indeg: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            users[p].push(i);
        }
    }
    let key = |i: usize| {
        (
            plan.steps[i]
                .nodes
                .iter()
                .map(|x| x.index())
                .min()
                .unwrap_or(usize::MAX),
            i,
        )
    };
    let mut ready: BTreeSet<(usize, usize)> = (0..n).filter(|&i| indeg[i] == 0).map(key).collect();
    let mut out = Vec::with_capacity(n);
    while let Some((_, i)) = ready.pop_first() {
        out.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.insert(key(u));
            }
        }
    }
    if out.len() != n {
        return Err(IrError::Verify("fusion: the step graph has a cycle".into()));
    }
    let mut slots: Vec<Option<Step>> = plan.steps.into_iter().map(Some).collect();
    let steps = out.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok(FusionPlan {
        steps,
        views: plan.views,
    })
}

/// A tiny union-find over node indices.
struct UnionFind {
    parent: HashMap<NodeIndex, NodeIndex>,
}

impl UnionFind {
    fn new(nodes: &[NodeIndex]) -> Self {
        UnionFind {
            parent: nodes.iter().map(|&n| (n, n)).collect(),
        }
    }
    fn find(&mut self, n: NodeIndex) -> NodeIndex {
        let mut r = n;
        while let Some(&p) = self.parent.get(&r) {
            if p == r {
                break;
            }
            r = p;
        }
        // Path compression.
        let mut c = n;
        while c != r {
            let next = self.parent.get(&c).copied().unwrap_or(r);
            self.parent.insert(c, r);
            c = next;
        }
        r
    }
    fn union(&mut self, a: NodeIndex, b: NodeIndex) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The smaller index becomes the root: deterministic.
        if ra.index() < rb.index() {
            self.parent.insert(rb, ra);
        } else if rb != ra {
            self.parent.insert(ra, rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::lower::lower_model;
    use crate::spec::{parse_str, Format};

    /// One GDN layer with `value_dim` columns per value head.
    fn gdn_graph(value_dim: usize) -> Graph {
        gdn_stack(value_dim, 1)
    }

    /// `layers` GDN layers with `value_dim` columns per value head.
    fn gdn_stack(value_dim: usize, layers: usize) -> Graph {
        let src = format!(
            "model_type: apriel2_text\nhidden_size: 32\nvocab_size: 64\n\
             head: {{normalization: {{type: rms_norm, epsilon: 1.0e-5}}}}\n\
             decoder:\n  type: fixed\n  num_blocks: {layers}\n  block:\n    \
             mixer: {{type: gdn, value_heads: 2, key_heads: 1, key_head_dim: 8, value_head_dim: {value_dim}, \
             convolution_layer: {{kernel_size: 4}}}}\n    \
             mlp: {{type: mlp, intermediate_size: 64, gated: true}}\n    \
             normalization: {{type: rms_norm, epsilon: 1.0e-5}}\n"
        );
        let spec = parse_str(&src, "test", Format::Yaml).unwrap_or_else(|e| panic!("{e}"));
        lower_model(&spec).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The delta-rule step and its core.
    fn delta_step(plan: &FusionPlan) -> (&Step, &Core) {
        plan.steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Core(c @ Core::DeltaRule { .. }) => Some((s, c)),
                _ => None,
            })
            .expect("a delta-rule step")
    }

    fn glue_norms(graph: &Graph, plan: &FusionPlan) -> usize {
        plan.steps
            .iter()
            .filter(|s| s.kind == StepKind::Glue)
            .flat_map(|s| &s.nodes)
            .filter(|&&n| matches!(graph.node(n).op, Op::GatedRmsNorm { .. }))
            .count()
    }

    #[test]
    fn delta_rule_absorbs_its_gated_output_norm() {
        let graph = gdn_graph(8);
        let plan = partition(&graph).unwrap_or_else(|e| panic!("{e}"));
        let (step, core) = delta_step(&plan);
        let Core::DeltaRule {
            node,
            norm: Some(m),
            out,
            ..
        } = core
        else {
            panic!("the norm was not absorbed: {core:?}")
        };
        assert!(matches!(graph.node(m.node).op, Op::GatedRmsNorm { group: 8, .. }));
        assert_eq!(m.act, GateActivation::Silu);
        assert_eq!(
            *out,
            Value {
                node: m.node,
                output: 0
            }
        );
        assert!(step.nodes.contains(&m.node) && step.nodes.contains(node));
        // The step stores the norm's output, reads the gate and the weight, and o stays inside.
        assert!(step.outputs.contains(out), "{:?}", step.outputs);
        assert!(!step.outputs.contains(&Value { node: *node, output: 0 }));
        assert!(step.inputs.contains(&m.gate) && step.inputs.contains(&m.weight));
        assert_eq!(glue_norms(&graph, &plan), 0);
    }

    /// Heads wider than one block of the epilogue keep the glue kernel.
    #[test]
    fn wide_value_heads_keep_the_glue_norm() {
        let graph = gdn_graph(264);
        let plan = partition(&graph).unwrap_or_else(|e| panic!("{e}"));
        let (_, core) = delta_step(&plan);
        assert!(matches!(core, Core::DeltaRule { norm: None, .. }), "{core:?}");
        assert_eq!(glue_norms(&graph, &plan), 1);
        // Codegen still produces both kernels: the unfused delta rule and the glue norm.
        let cg = crate::codegen::generate(graph).unwrap_or_else(|e| panic!("{e}"));
        assert!(cg.kernels.iter().any(|k| k.kind == "gated_rms_norm"));
        assert!(cg
            .kernels
            .iter()
            .any(|k| k.kind == "delta_rule_chunked" && !k.source.contains("gate_stride")));
    }

    /// o read by anything besides the norm is stored as is; the norm stays glue.
    #[test]
    fn a_second_reader_of_o_keeps_the_glue_norm() {
        let mut graph = gdn_graph(8);
        let dr = graph
            .g
            .node_indices()
            .find(|&n| matches!(graph.node(n).op, Op::DeltaRule(_)))
            .expect("delta rule");
        let o = Value { node: dr, output: 0 };
        graph
            .add(Op::Output { name: "probe".into() }, &[o], "test", None)
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = partition(&graph).unwrap_or_else(|e| panic!("{e}"));
        let (step, core) = delta_step(&plan);
        assert!(
            matches!(core, Core::DeltaRule { norm: None, out, .. } if *out == o),
            "{core:?}"
        );
        assert!(step.outputs.contains(&o));
        assert_eq!(glue_norms(&graph, &plan), 1);
    }

    /// The walk that checks the last layer's norm gate does not need its delta rule visits the
    /// same nodes however deep the model: it stops at nodes ranked before the delta rule (it
    /// used to climb every layer above, making fusion quadratic in depth).
    #[test]
    fn gate_dependency_walk_does_not_grow_with_depth() {
        let visits = |layers: usize| {
            let graph = gdn_stack(8, layers);
            let order = graph.topo_order().unwrap_or_else(|e| panic!("{e}"));
            let rank = node_ranks(&order);
            let last = order
                .iter()
                .rev()
                .find(|&&n| matches!(graph.node(n).op, Op::DeltaRule(_)))
                .copied()
                .expect("a delta rule");
            let norm = graph
                .users(last)
                .into_iter()
                .find(|(u, _)| matches!(graph.node(*u).op, Op::GatedRmsNorm { .. }))
                .map(|(u, _)| u)
                .expect("the gated norm");
            let gate = graph.inputs(norm)[1];
            let (depends, visited) = depends_on_counted(&graph, &rank, gate, last);
            assert!(!depends);
            visited
        };
        assert_eq!(visits(2), visits(40), "the walk grows with depth");
    }

    /// The independence check of two prologue steps visits a bounded part of the step DAG: in a
    /// chain of layers (two independent steps feeding a third, per layer), asking whether the
    /// last layer's two steps depend on each other expands the same steps at any depth.
    #[test]
    fn step_reachability_walk_does_not_grow_with_depth() {
        let visits = |layers: usize| {
            // Layer k: steps 3k (a) and 3k+1 (b) read step 3k-1 (the previous c); 3k+2 (c) reads both.
            let mut deps: Vec<BTreeSet<usize>> = Vec::new();
            for k in 0..layers {
                let prev: BTreeSet<usize> = if k == 0 { BTreeSet::new() } else { [3 * k - 1].into() };
                deps.push(prev.clone());
                deps.push(prev);
                deps.push([3 * k, 3 * k + 1].into());
            }
            let rank = step_ranks(&deps);
            let (a, b) = (3 * (layers - 1), 3 * (layers - 1) + 1);
            let (ab, v1) = reaches_counted(&deps, &rank, a, b);
            let (ba, v2) = reaches_counted(&deps, &rank, b, a);
            assert!(!ab && !ba);
            // A real dependency is still found across the whole chain.
            assert!(reaches(&deps, &rank, 0, 3 * layers - 1));
            v1 + v2
        };
        assert_eq!(visits(3), visits(500), "the walk grows with depth");
    }
}
