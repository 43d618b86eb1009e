//! The IR's operations: their parameters, inputs and output types (shape inference).
//!
//! Activations are `[batch, tokens, channels]`, channels last; heads live inside the channel dim
//! (head-major), so per-head ops carry a `group` size instead of reshapes.

use super::dim::{fmt_shape, Dim, Shape};
use super::IrError;
use crate::spec::GateActivation;
use modelc_runtime::tensor::DType;

/// The type of a value flowing along an edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Shape) -> Self {
        TensorType { dtype, shape }
    }
    /// Channels of an activation (its last dim), when constant.
    pub fn channels(&self) -> Option<usize> {
        self.shape.last().and_then(Dim::as_const)
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.dtype, fmt_shape(&self.shape))
    }
}

/// Elementwise functions of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryFn {
    Silu,
    Gelu,
    GeluTanh,
    Relu,
    Sigmoid,
    /// `ln(1 + e^x)`, with torch's linear branch above 20.
    Softplus,
    Exp,
    Neg,
    Identity,
}

impl UnaryFn {
    pub fn name(self) -> &'static str {
        match self {
            UnaryFn::Silu => "silu",
            UnaryFn::Gelu => "gelu",
            UnaryFn::GeluTanh => "gelu_tanh",
            UnaryFn::Relu => "relu",
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Softplus => "softplus",
            UnaryFn::Exp => "exp",
            UnaryFn::Neg => "neg",
            UnaryFn::Identity => "identity",
        }
    }
}

/// Attention core parameters (GQA: query head `h` reads KV head `h / (heads / kv_heads)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParams {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub causal: bool,
    /// Sliding window `W` (keys `p − W < j ≤ p`); the cache then keeps `W − 1` tokens.
    pub window: Option<usize>,
    pub scale: f64,
}

/// How the delta rule decays its state each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecayKind {
    /// One log-decay per value head (GDN).
    Scalar,
    /// One log-decay per key channel (KDA).
    PerChannel,
}

/// Delta-rule core parameters (GDN and KDA). Value head `v` reads key head `v / (Hv / Hk)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeltaRuleParams {
    pub key_heads: usize,
    pub value_heads: usize,
    pub key_dim: usize,
    pub value_dim: usize,
    pub decay: DecayKind,
}

/// What a node computes. Inputs are listed in the order the edges' `input` ports use.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A graph input: token ids, positions, or a state (`state.<name>`).
    Input {
        name: String,
        ty: TensorType,
    },
    /// A checkpoint tensor, by its exact key.
    Weight {
        key: String,
        shape: Vec<usize>,
        dtype: DType,
    },
    /// A graph output (logits, `state.<name>`); one input.
    Output {
        name: String,
    },
    /// (ids `[B,T]`, table `[V,d]`) → `[B,T,d]`.
    Embedding,
    /// (x `[..,in]`, w `[out,in]`, [bias `[out]`]) → `[..,out]`; `y = x Wᵀ + b`.
    Linear {
        bias: bool,
    },
    /// (x, w `[group]`): `x · rsqrt(mean(x²) + eps) · w` over each group of channels.
    RmsNorm {
        eps: f64,
        group: usize,
    },
    /// (x, w, b) over the last dim.
    LayerNorm {
        eps: f64,
    },
    /// (x, gate, w `[group]`): `rmsnorm(x) · w · act(gate)` per group (GDN/KDA output norm).
    GatedRmsNorm {
        eps: f64,
        group: usize,
        act: GateActivation,
    },
    /// (x): `x · rsqrt(Σx² + eps)` per group.
    L2Norm {
        eps: f64,
        group: usize,
    },
    Unary(UnaryFn),
    /// (a, b): b has a's shape or a suffix of it (broadcast).
    Add,
    /// (a, b): as `Add`.
    Mul,
    /// (x): `c · x`.
    Scale(f64),
    /// (x): channels `[start, start+len)` of the last dim.
    Slice {
        start: usize,
        len: usize,
    },
    /// (x₀, x₁, …): concatenation along the last dim.
    Concat,
    /// (x `[..,G·n]`) → `[..,G·repeats·n]`: group `h` of the output is input group `h / repeats`.
    RepeatGroups {
        n: usize,
        repeats: usize,
    },
    /// (x `[B,T,H·Dh]`, positions `[B,T]`): rotate-half RoPE per head.
    Rope {
        head_dim: usize,
        theta: f64,
    },
    /// (f `[..,H·group]`, a_log `[H]`, dt_bias `[H·group]`) → f32 `−exp(a_log)·softplus(f + dt_bias)`.
    DecayGate {
        group: usize,
    },
    /// (x `[B,T,C]`, w `[C,1,K]`, [bias `[C]`], state `[B,C,K−1]`) → (y, state′).
    CausalConv1d {
        kernel: usize,
        bias: bool,
        silu: bool,
    },
    /// (q, k, v, k_cache `[B,G,S,Dh]`, v_cache) → (o `[B,T,H·Dh]`, k_cache′, v_cache′).
    Attention(AttentionParams),
    /// (q, k (both L2-normalised, q scaled), v, g, beta, state `[B,Hv,Dk,Dv]`) → (o, state′).
    DeltaRule(DeltaRuleParams),
    /// (u, delta, a_log `[Di,N]`, b `[B,T,Gx·N]`, c `[B,T,Di]`, d `[Di]`, state `[B,Di,N]`) → (y, state′).
    SelectiveScan {
        state_size: usize,
    },
    /// A stochastic layer's choice: one input per sub-mixer, in `names` order; the output is the
    /// input of the sub-mixer the placement picks.
    Route {
        layer: usize,
        names: Vec<String>,
    },
}

impl Op {
    /// Short lowercase name for dumps.
    pub fn name(&self) -> String {
        match self {
            Op::Input { .. } => "input".into(),
            Op::Weight { .. } => "weight".into(),
            Op::Output { .. } => "output".into(),
            Op::Embedding => "embedding".into(),
            Op::Linear { .. } => "linear".into(),
            Op::RmsNorm { .. } => "rms_norm".into(),
            Op::LayerNorm { .. } => "layer_norm".into(),
            Op::GatedRmsNorm { .. } => "gated_rms_norm".into(),
            Op::L2Norm { .. } => "l2_norm".into(),
            Op::Unary(f) => f.name().into(),
            Op::Add => "add".into(),
            Op::Mul => "mul".into(),
            Op::Scale(_) => "scale".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Concat => "concat".into(),
            Op::RepeatGroups { .. } => "repeat_groups".into(),
            Op::Rope { .. } => "rope".into(),
            Op::DecayGate { .. } => "decay_gate".into(),
            Op::CausalConv1d { .. } => "causal_conv1d".into(),
            Op::Attention(_) => "attention".into(),
            Op::DeltaRule(_) => "delta_rule".into(),
            Op::SelectiveScan { .. } => "selective_scan".into(),
            Op::Route { .. } => "route".into(),
        }
    }

    /// Parameters for dumps, e.g. `eps=1e-5, group=64`.
    pub fn params(&self) -> String {
        match self {
            Op::Input { name, .. } => name.clone(),
            Op::Weight { key, .. } => format!("@{key}"),
            Op::Output { name } => name.clone(),
            Op::Linear { bias } => {
                if *bias {
                    "bias".into()
                } else {
                    String::new()
                }
            }
            Op::RmsNorm { eps, group } => format!("eps={eps:e}, group={group}"),
            Op::LayerNorm { eps } => format!("eps={eps:e}"),
            Op::GatedRmsNorm { eps, group, act } => format!("eps={eps:e}, group={group}, act={act:?}").to_lowercase(),
            Op::L2Norm { eps, group } => format!("eps={eps:e}, group={group}"),
            Op::Scale(c) => format!("{c}"),
            Op::Slice { start, len } => format!("{start}..{}", start + len),
            Op::RepeatGroups { n, repeats } => format!("n={n}, repeats={repeats}"),
            Op::Rope { head_dim, theta } => format!("head_dim={head_dim}, theta={theta}"),
            Op::DecayGate { group } => format!("group={group}"),
            Op::CausalConv1d { kernel, bias, silu } => {
                format!(
                    "kernel={kernel}{}{}",
                    if *bias { ", bias" } else { "" },
                    if *silu { ", silu" } else { "" }
                )
            }
            Op::Attention(p) => format!(
                "heads={}, kv_heads={}, head_dim={}, causal={}, window={}, scale={}",
                p.heads,
                p.kv_heads,
                p.head_dim,
                p.causal,
                p.window.map_or("none".to_string(), |w| w.to_string()),
                p.scale
            ),
            Op::DeltaRule(p) => format!(
                "key_heads={}, value_heads={}, key_dim={}, value_dim={}, decay={}",
                p.key_heads,
                p.value_heads,
                p.key_dim,
                p.value_dim,
                match p.decay {
                    DecayKind::Scalar => "scalar",
                    DecayKind::PerChannel => "per_channel",
                }
            ),
            Op::SelectiveScan { state_size } => format!("state_size={state_size}"),
            Op::Route { layer, names } => format!("layer={layer}, [{}]", names.join(", ")),
            Op::Embedding | Op::Unary(_) | Op::Add | Op::Mul | Op::Concat => String::new(),
        }
    }

    /// Number of inputs the op takes (`None`: variadic, at least one).
    pub fn arity(&self) -> Option<usize> {
        Some(match self {
            Op::Input { .. } | Op::Weight { .. } => 0,
            Op::Output { .. } | Op::L2Norm { .. } | Op::Unary(_) | Op::Scale(_) => 1,
            Op::Slice { .. } | Op::RepeatGroups { .. } => 1,
            Op::Embedding | Op::RmsNorm { .. } | Op::Add | Op::Mul | Op::Rope { .. } => 2,
            Op::Linear { bias } => 2 + usize::from(*bias),
            Op::LayerNorm { .. } | Op::GatedRmsNorm { .. } | Op::DecayGate { .. } => 3,
            Op::CausalConv1d { bias, .. } => 3 + usize::from(*bias),
            Op::Attention(_) => 5,
            Op::DeltaRule(_) => 6,
            Op::SelectiveScan { .. } => 7,
            Op::Concat => return None,
            Op::Route { names, .. } => names.len(),
        })
    }

    /// Output types from input types: the shape checker. Errors say which op and which input.
    pub fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, IrError> {
        let op = self.name();
        let err = |msg: String| IrError::Shape { op: op.clone(), msg };
        if let Some(n) = self.arity() {
            if inputs.len() != n {
                return Err(err(format!("expects {n} inputs, got {}", inputs.len())));
            }
        } else if inputs.is_empty() {
            return Err(err("expects at least one input".into()));
        }
        let last = |i: usize| -> Result<usize, IrError> {
            inputs[i]
                .channels()
                .ok_or_else(|| err(format!("input {i} ({}) needs a constant last dim", inputs[i])))
        };
        let with_last = |t: &TensorType, c: usize, dtype: DType| {
            let mut shape = t.shape.clone();
            if let Some(l) = shape.last_mut() {
                *l = Dim::c(c);
            }
            TensorType::new(dtype, shape)
        };
        let expect_const = |i: usize, want: &[usize]| -> Result<(), IrError> {
            let got: Vec<Option<usize>> = inputs[i].shape.iter().map(Dim::as_const).collect();
            let want_o: Vec<Option<usize>> = want.iter().map(|&w| Some(w)).collect();
            if got != want_o {
                return Err(err(format!("input {i} should be {want:?}, got {}", inputs[i])));
            }
            Ok(())
        };
        let same_rows = |a: usize, b: usize| -> Result<(), IrError> {
            let (sa, sb) = (&inputs[a].shape, &inputs[b].shape);
            if sa.len() != sb.len() || sa[..sa.len().saturating_sub(1)] != sb[..sb.len().saturating_sub(1)] {
                return Err(err(format!(
                    "inputs {a} ({}) and {b} ({}) differ in leading dims",
                    inputs[a], inputs[b]
                )));
            }
            Ok(())
        };
        let bt = |i: usize| -> Shape { inputs[i].shape[..inputs[i].shape.len().saturating_sub(1)].to_vec() };
        Ok(match self {
            Op::Input { ty, .. } => vec![ty.clone()],
            Op::Weight { shape, dtype, .. } => {
                vec![TensorType::new(*dtype, shape.iter().map(|&n| Dim::c(n)).collect())]
            }
            Op::Output { .. } => vec![],
            Op::Embedding => {
                let w = &inputs[1].shape;
                if w.len() != 2 {
                    return Err(err(format!("table should be [vocab, d], got {}", inputs[1])));
                }
                let mut shape = inputs[0].shape.clone();
                shape.push(w[1].clone());
                vec![TensorType::new(inputs[1].dtype, shape)]
            }
            Op::Linear { bias } => {
                let cin = last(0)?;
                let w: Vec<Option<usize>> = inputs[1].shape.iter().map(Dim::as_const).collect();
                let (out, win) = match w.as_slice() {
                    [Some(o), Some(i)] => (*o, *i),
                    _ => return Err(err(format!("weight should be [out, in], got {}", inputs[1]))),
                };
                if win != cin {
                    return Err(err(format!("x has {cin} channels but the weight is [{out}, {win}]")));
                }
                if *bias {
                    expect_const(2, &[out])?;
                }
                vec![with_last(&inputs[0], out, inputs[0].dtype)]
            }
            Op::RmsNorm { group, .. } => {
                let c = last(0)?;
                if *group == 0 || c % group != 0 {
                    return Err(err(format!("{c} channels are not a multiple of group {group}")));
                }
                expect_const(1, &[*group])?;
                vec![inputs[0].clone()]
            }
            Op::LayerNorm { .. } => {
                let c = last(0)?;
                expect_const(1, &[c])?;
                expect_const(2, &[c])?;
                vec![inputs[0].clone()]
            }
            Op::GatedRmsNorm { group, .. } => {
                let c = last(0)?;
                if *group == 0 || c % group != 0 {
                    return Err(err(format!("{c} channels are not a multiple of group {group}")));
                }
                if inputs[1].shape != inputs[0].shape {
                    return Err(err(format!("gate {} differs from x {}", inputs[1], inputs[0])));
                }
                expect_const(2, &[*group])?;
                vec![inputs[0].clone()]
            }
            Op::L2Norm { group, .. } => {
                let c = last(0)?;
                if *group == 0 || c % group != 0 {
                    return Err(err(format!("{c} channels are not a multiple of group {group}")));
                }
                vec![inputs[0].clone()]
            }
            Op::Unary(_) | Op::Scale(_) => vec![inputs[0].clone()],
            Op::Add | Op::Mul => {
                let (a, b) = (&inputs[0].shape, &inputs[1].shape);
                if b.len() > a.len() || a[a.len() - b.len()..] != b[..] {
                    return Err(err(format!("{} does not broadcast onto {}", inputs[1], inputs[0])));
                }
                vec![inputs[0].clone()]
            }
            Op::Slice { start, len } => {
                let c = last(0)?;
                if *len == 0 || start + len > c {
                    return Err(err(format!("slice {start}..{} out of {c} channels", start + len)));
                }
                vec![with_last(&inputs[0], *len, inputs[0].dtype)]
            }
            Op::Concat => {
                let mut total = 0;
                for i in 0..inputs.len() {
                    total += last(i)?;
                    same_rows(0, i)?;
                }
                vec![with_last(&inputs[0], total, inputs[0].dtype)]
            }
            Op::RepeatGroups { n, repeats } => {
                let c = last(0)?;
                if *n == 0 || c % n != 0 {
                    return Err(err(format!("{c} channels are not a multiple of group {n}")));
                }
                vec![with_last(&inputs[0], c * repeats, inputs[0].dtype)]
            }
            Op::Rope { head_dim, .. } => {
                let c = last(0)?;
                if *head_dim == 0 || head_dim % 2 != 0 || c % head_dim != 0 {
                    return Err(err(format!("{c} channels do not split into even heads of {head_dim}")));
                }
                if inputs[1].shape != bt(0) {
                    return Err(err(format!("positions {} should be {}", inputs[1], fmt_shape(&bt(0)))));
                }
                vec![inputs[0].clone()]
            }
            Op::DecayGate { group } => {
                let c = last(0)?;
                if *group == 0 || c % group != 0 {
                    return Err(err(format!("{c} channels are not a multiple of group {group}")));
                }
                expect_const(1, &[c / group])?;
                expect_const(2, &[c])?;
                vec![with_last(&inputs[0], c, DType::F32)]
            }
            Op::CausalConv1d { kernel, bias, .. } => {
                let c = last(0)?;
                expect_const(1, &[c, 1, *kernel])?;
                let si = if *bias {
                    expect_const(2, &[c])?;
                    3
                } else {
                    2
                };
                let want = vec![inputs[0].shape[0].clone(), Dim::c(c), Dim::c(kernel - 1)];
                if inputs[si].shape != want {
                    return Err(err(format!("state {} should be {}", inputs[si], fmt_shape(&want))));
                }
                vec![inputs[0].clone(), inputs[si].clone()]
            }
            Op::Attention(p) => {
                let (h, g, d) = (p.heads, p.kv_heads, p.head_dim);
                if g == 0 || h % g != 0 {
                    return Err(err(format!("{h} heads are not a multiple of {g} kv heads")));
                }
                if last(0)? != h * d || last(1)? != g * d || last(2)? != g * d {
                    return Err(err(format!(
                        "q/k/v channels {}/{}/{} should be {}/{}/{}",
                        last(0)?,
                        last(1)?,
                        last(2)?,
                        h * d,
                        g * d,
                        g * d
                    )));
                }
                same_rows(0, 1)?;
                same_rows(0, 2)?;
                let b = inputs[0].shape[0].clone();
                for i in [3, 4] {
                    let s = &inputs[i].shape;
                    if s.len() != 4 || s[0] != b || s[1] != Dim::c(g) || s[3] != Dim::c(d) {
                        return Err(err(format!(
                            "cache input {i} {} should be [batch, {g}, len, {d}]",
                            inputs[i]
                        )));
                    }
                }
                let len = inputs[3].shape[2].clone().plus(Dim::TOKENS);
                let len = match p.window {
                    Some(w) => len.min(Dim::c(w.saturating_sub(1))),
                    None => len,
                };
                let cache = TensorType::new(inputs[3].dtype, vec![b, Dim::c(g), len, Dim::c(d)]);
                vec![
                    inputs[0].clone(),
                    cache.clone(),
                    TensorType {
                        dtype: inputs[4].dtype,
                        ..cache
                    },
                ]
            }
            Op::DeltaRule(p) => {
                let (hk, hv, dk, dv) = (p.key_heads, p.value_heads, p.key_dim, p.value_dim);
                if hk == 0 || hv % hk != 0 {
                    return Err(err(format!("{hv} value heads are not a multiple of {hk} key heads")));
                }
                let gate = match p.decay {
                    DecayKind::Scalar => hv,
                    DecayKind::PerChannel => hv * dk,
                };
                for (i, want) in [(0, hk * dk), (1, hk * dk), (2, hv * dv), (3, gate), (4, hv)] {
                    if last(i)? != want {
                        return Err(err(format!("input {i} ({}) should have {want} channels", inputs[i])));
                    }
                    same_rows(0, i)?;
                }
                let want = vec![inputs[0].shape[0].clone(), Dim::c(hv), Dim::c(dk), Dim::c(dv)];
                if inputs[5].shape != want {
                    return Err(err(format!("state {} should be {}", inputs[5], fmt_shape(&want))));
                }
                vec![with_last(&inputs[2], hv * dv, inputs[2].dtype), inputs[5].clone()]
            }
            Op::SelectiveScan { state_size } => {
                let n = *state_size;
                let di = last(0)?;
                if n == 0 || di % n != 0 {
                    return Err(err(format!("{di} channels are not a multiple of state size {n}")));
                }
                let gx = last(3)? / n;
                if gx == 0 || last(3)? % n != 0 || (di / n) % gx != 0 {
                    return Err(err(format!("b ({}) does not group {} heads of {n}", inputs[3], di / n)));
                }
                for i in [1, 4] {
                    if last(i)? != di {
                        return Err(err(format!("input {i} ({}) should have {di} channels", inputs[i])));
                    }
                }
                expect_const(2, &[di, n])?;
                expect_const(5, &[di])?;
                let want = vec![inputs[0].shape[0].clone(), Dim::c(di), Dim::c(n)];
                if inputs[6].shape != want {
                    return Err(err(format!("state {} should be {}", inputs[6], fmt_shape(&want))));
                }
                vec![inputs[0].clone(), inputs[6].clone()]
            }
            Op::Route { .. } => {
                for i in 1..inputs.len() {
                    if inputs[i].shape != inputs[0].shape {
                        return Err(err(format!("sub-mixer outputs differ: {} vs {}", inputs[0], inputs[i])));
                    }
                }
                vec![inputs[0].clone()]
            }
        })
    }
}
