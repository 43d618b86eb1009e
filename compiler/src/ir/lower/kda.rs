//! Kimi Delta Attention (reference §2.5): separate q/k/v projections each with its own conv,
//! a low-rank per-channel decay gate, the delta rule, a low-rank output gate into the gated
//! RMSNorm, the output projection.

use super::delta_rule::{self, DeltaRuleInputs};
use super::{Ctx, STATE};
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
    let params = DeltaRuleParams {
        key_heads: h,
        value_heads: h,
        key_dim: d,
        value_dim: d,
        decay: DecayKind::PerChannel,
    };
    let inputs = DeltaRuleInputs {
        q: qkv[0],
        k: qkv[1],
        v: qkv[2],
        g,
        beta,
    };
    let norm = (s.norm_eps, s.norm_activation);
    let o = delta_rule::lower(cx, inputs, params, norm, key, state, |cx| {
        let gate = cx.linear(x, &format!("{key}.g_a_proj"), d, hidden, false)?;
        cx.linear(gate, &format!("{key}.g_b_proj"), p, d, false)
    })?;
    cx.linear(o, &format!("{key}.o_proj"), hidden, p, false)
}
