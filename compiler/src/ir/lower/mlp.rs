//! The MLP: gated `down(act(gate(x)) · up(x))` (never biased) or plain `down(act(up(x)))`.

use super::Ctx;
use crate::ir::graph::Value;
use crate::ir::op::{Op, UnaryFn};
use crate::ir::IrError;
use crate::spec::{Activation, MlpSpec};

pub(super) fn unary_of(a: Activation) -> UnaryFn {
    match a {
        Activation::Silu => UnaryFn::Silu,
        Activation::Gelu => UnaryFn::Gelu,
        Activation::GeluTanh => UnaryFn::GeluTanh,
        Activation::Relu => UnaryFn::Relu,
        Activation::Sigmoid => UnaryFn::Sigmoid,
        Activation::Identity => UnaryFn::Identity,
    }
}

pub(super) fn lower(cx: &mut Ctx, x: Value, m: &MlpSpec, hidden: usize, key: &str) -> Result<Value, IrError> {
    let i = m.intermediate_size;
    let act = Op::Unary(unary_of(m.activation));
    let h = if m.gated {
        let gate = cx.linear(x, &format!("{key}.gate_proj"), i, hidden, false)?;
        let up = cx.linear(x, &format!("{key}.up_proj"), i, hidden, false)?;
        let gate = cx.op(act, &[gate])?;
        cx.op(Op::Mul, &[gate, up])?
    } else {
        let up = cx.linear(x, &format!("{key}.up_proj"), i, hidden, m.up_bias)?;
        cx.op(act, &[up])?
    };
    let bias = !m.gated && m.down_bias;
    cx.linear(h, &format!("{key}.down_proj"), hidden, i, bias)
}
