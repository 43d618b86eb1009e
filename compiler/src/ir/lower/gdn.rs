//! Gated DeltaNet (reference §2.4): one qkvz and one ba projection, a conv over q|k|v, the
//! delta rule with one decay per value head, a SiLU-gated RMSNorm, the output projection.

use super::delta_rule::{self, DeltaRuleInputs};
use super::{Ctx, STATE};
use crate::ir::graph::Value;
use crate::ir::op::{DecayKind, DeltaRuleParams, Op, UnaryFn};
use crate::ir::IrError;
use crate::spec::{GateActivation, GdnSpec};

pub(super) fn lower(
    cx: &mut Ctx,
    x: Value,
    s: &GdnSpec,
    hidden: usize,
    key: &str,
    state: &str,
) -> Result<Value, IrError> {
    let (hk, hv, dk, dv) = (s.key_heads, s.value_heads, s.key_head_dim, s.value_head_dim);
    let conv_dim = s.conv_dim();
    let qkvz = cx.linear(x, &format!("{key}.in_proj_qkvz"), conv_dim + hv * dv, hidden, false)?;
    let ba = cx.linear(x, &format!("{key}.in_proj_ba"), 2 * hv, hidden, false)?;
    // q|k|v are the first conv_dim channels of the flat layout: one slice feeds the conv.
    let qkv = cx.slice(qkvz, 0, conv_dim)?;
    let z = cx.slice(qkvz, conv_dim, hv * dv)?;
    let qkv = cx.conv(
        qkv,
        &format!("{key}.convolution"),
        conv_dim,
        s.conv_kernel_size,
        false,
        &format!("{state}.conv"),
    )?;
    let q = cx.slice(qkv, 0, hk * dk)?;
    let k = cx.slice(qkv, hk * dk, hk * dk)?;
    let v = cx.slice(qkv, 2 * hk * dk, hv * dv)?;
    let b = cx.slice(ba, 0, hv)?;
    let a = cx.slice(ba, hv, hv)?;
    let beta = cx.op(Op::Unary(UnaryFn::Sigmoid), &[b])?;
    let a_log = cx.weight_typed(format!("{key}.A_log"), &[hv], STATE)?;
    let dt_bias = cx.weight_typed(format!("{key}.dt_bias"), &[hv], STATE)?;
    let g = cx.op(Op::DecayGate { group: 1 }, &[a, a_log, dt_bias])?;
    let params = DeltaRuleParams {
        key_heads: hk,
        value_heads: hv,
        key_dim: dk,
        value_dim: dv,
        decay: DecayKind::Scalar,
    };
    let inputs = DeltaRuleInputs { q, k, v, g, beta };
    let norm = (s.norm_eps, GateActivation::Silu);
    let o = delta_rule::lower(cx, inputs, params, norm, key, state, |_| Ok(z))?;
    cx.linear(o, &format!("{key}.out_proj"), hidden, hv * dv, false)
}
