//! Kimi Delta Attention (reference §2.5): separate q/k/v projections each with its own conv,
//! a low-rank per-channel decay gate, the delta rule, a low-rank output gate into the gated
//! RMSNorm, the output projection.

use super::gdn::QK_L2_EPS;
use super::{Ctx, STATE};
use crate::ir::dim::Dim;
use crate::ir::graph::Value;
use crate::ir::op::{DecayKind, DeltaRuleParams, Op, UnaryFn};
use crate::ir::IrError;
use crate::spec::KdaSpec;

pub(super) fn lower(
    cx: &mut Ctx,
    x: Value,
    s: &KdaSpec,
    hidden: usize,
    key: &str,
    state: &str,
) -> Result<Value, IrError> {
    let (h, d, kernel) = (s.heads, s.head_dim, s.conv_kernel_size);
    let p = h * d;
    let mut qkv = Vec::with_capacity(3);
    for name in ["q", "k", "v"] {
        let y = cx.linear(x, &format!("{key}.{name}_proj"), p, hidden, false)?;
        qkv.push(cx.conv(
            y,
            &format!("{key}.{name}_conv"),
            p,
            kernel,
            false,
            &format!("{state}.conv_{name}"),
        )?);
    }
    let f = cx.linear(x, &format!("{key}.f_a_proj"), d, hidden, false)?;
    let f = cx.linear(f, &format!("{key}.f_b_proj"), p, d, false)?;
    let a_log = cx.weight_typed(format!("{key}.A_log"), &[h], STATE)?;
    let dt_bias = cx.weight_typed(format!("{key}.dt_bias"), &[p], STATE)?;
    let g = cx.op(Op::DecayGate { group: d }, &[f, a_log, dt_bias])?;
    let beta = cx.linear(x, &format!("{key}.beta_proj"), h, hidden, false)?;
    let beta = cx.op(Op::Unary(UnaryFn::Sigmoid), &[beta])?;
    let q = cx.op(
        Op::L2Norm {
            eps: QK_L2_EPS,
            group: d,
        },
        &[qkv[0]],
    )?;
    let q = cx.op(Op::Scale(1.0 / (d as f64).sqrt()), &[q])?;
    let k = cx.op(
        Op::L2Norm {
            eps: QK_L2_EPS,
            group: d,
        },
        &[qkv[1]],
    )?;
    let st = cx.state_in(
        &format!("{state}.recurrent"),
        STATE,
        vec![Dim::BATCH, Dim::c(h), Dim::c(d), Dim::c(d)],
    )?;
    let params = DeltaRuleParams {
        key_heads: h,
        value_heads: h,
        key_dim: d,
        value_dim: d,
        decay: DecayKind::PerChannel,
    };
    let node = cx.multi(Op::DeltaRule(params), &[q, k, qkv[2], g, beta, st])?;
    cx.state_out(&format!("{state}.recurrent"), Value { node, output: 1 })?;
    let gate = cx.linear(x, &format!("{key}.g_a_proj"), d, hidden, false)?;
    let gate = cx.linear(gate, &format!("{key}.g_b_proj"), p, d, false)?;
    let w = cx.weight(format!("{key}.norm.weight"), &[d])?;
    let o = cx.op(
        Op::GatedRmsNorm {
            eps: s.norm_eps,
            group: d,
            act: s.norm_activation,
        },
        &[Value { node, output: 0 }, gate, w],
    )?;
    cx.linear(o, &format!("{key}.o_proj"), hidden, p, false)
}
