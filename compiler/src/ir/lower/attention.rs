//! Attention (full and sliding window): q/k/v projections, RoPE, the attention core with its KV
//! cache, the output projection (reference §2.1).

use super::{Ctx, ACT};
use crate::ir::dim::Dim;
use crate::ir::graph::Value;
use crate::ir::op::{AttentionParams, Op};
use crate::ir::IrError;
use crate::spec::AttentionSpec;

pub(super) fn lower(
    cx: &mut Ctx,
    x: Value,
    a: &AttentionSpec,
    hidden: usize,
    key: &str,
    state: &str,
) -> Result<Value, IrError> {
    let (h, g, d) = (a.heads, a.head_groups, a.head_size);
    let q = cx.linear(x, &format!("{key}.q_proj"), h * d, hidden, a.bias.q)?;
    let k = cx.linear(x, &format!("{key}.k_proj"), g * d, hidden, a.bias.k)?;
    let v = cx.linear(x, &format!("{key}.v_proj"), g * d, hidden, a.bias.v)?;
    let rope = Op::Rope {
        head_dim: d,
        theta: a.rotary.theta,
    };
    let q = cx.op(rope.clone(), &[q, cx.positions])?;
    let k = cx.op(rope, &[k, cx.positions])?;
    // Keys are cached after RoPE; a window keeps the W − 1 tokens a future query can still see.
    let cached = match a.window_size {
        Some(w) => Dim::PAST.min(Dim::c(w.saturating_sub(1))),
        None => Dim::PAST,
    };
    let cache_shape = vec![Dim::BATCH, Dim::c(g), cached, Dim::c(d)];
    let kc = cx.state_in(&format!("{state}.key"), ACT, cache_shape.clone())?;
    let vc = cx.state_in(&format!("{state}.value"), ACT, cache_shape)?;
    let params = AttentionParams {
        heads: h,
        kv_heads: g,
        head_dim: d,
        causal: a.causal,
        window: a.window_size,
        scale: 1.0 / (d as f64).sqrt(),
    };
    let node = cx.multi(Op::Attention(params), &[q, k, v, kc, vc])?;
    cx.state_out(&format!("{state}.key"), Value { node, output: 1 })?;
    cx.state_out(&format!("{state}.value"), Value { node, output: 2 })?;
    cx.linear(
        Value { node, output: 0 },
        &format!("{key}.o_proj"),
        hidden,
        h * d,
        a.bias.o,
    )
}
