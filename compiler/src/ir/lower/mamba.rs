//! Mamba, the M1 grouped variant of Mamba-1 (reference §2.6).
//!
//! The dt_proj bias is applied twice (by the Linear and again before the softplus), exactly as
//! upstream HF and Fast-LLM do: checkpoints were trained that way (docs/spec.md).

use super::{Ctx, STATE};
use crate::ir::dim::Dim;
use crate::ir::graph::Value;
use crate::ir::op::{Op, UnaryFn};
use crate::ir::IrError;
use crate::spec::MambaSpec;

pub(super) fn lower(
    cx: &mut Ctx,
    x: Value,
    m: &MambaSpec,
    hidden: usize,
    key: &str,
    state: &str,
) -> Result<Value, IrError> {
    let (di, dxb, n) = (m.d_inner, m.d_xb, m.state_size);
    let repeats = (di / n) / (dxb / n).max(1);
    let zxbc = cx.linear(
        x,
        &format!("{key}.in_proj"),
        2 * di + 2 * dxb,
        hidden,
        m.add_linear_biases,
    )?;
    let z = cx.slice(zxbc, 0, di)?;
    let xs = cx.slice(zxbc, di, dxb)?;
    let b = cx.slice(zxbc, di + dxb, dxb)?;
    let c = cx.slice(zxbc, di + 2 * dxb, di)?;
    let repeat = Op::RepeatGroups { n, repeats };
    let u = if m.repeat_kv_before_conv {
        let xr = cx.op(repeat, &[xs])?;
        cx.conv(
            xr,
            &format!("{key}.conv1d"),
            di,
            m.d_conv,
            m.conv_bias,
            &format!("{state}.conv"),
        )?
    } else {
        let u = cx.conv(
            xs,
            &format!("{key}.conv1d"),
            dxb,
            m.d_conv,
            m.conv_bias,
            &format!("{state}.conv"),
        )?;
        cx.op(repeat, &[u])?
    };
    let dt = cx.linear(x, &format!("{key}.dt_in_proj"), m.dt_rank, hidden, m.add_linear_biases)?;
    let w = cx.weight(format!("{key}.dt_proj.weight"), &[di, m.dt_rank])?;
    let dt = if m.dt_proj_bias {
        let bias = cx.weight(format!("{key}.dt_proj.bias"), &[di])?;
        let dt = cx.op(Op::Linear { bias: true }, &[dt, w, bias])?;
        cx.op(Op::Add, &[dt, bias])?
    } else {
        cx.op(Op::Linear { bias: false }, &[dt, w])?
    };
    let delta = cx.op(Op::Unary(UnaryFn::Softplus), &[dt])?;
    let a_log = cx.weight_typed(format!("{key}.A_log"), &[di, n], STATE)?;
    let d = cx.weight_typed(format!("{key}.D"), &[di], STATE)?;
    let s = cx.state_in(&format!("{state}.ssm"), STATE, vec![Dim::BATCH, Dim::c(di), Dim::c(n)])?;
    let node = cx.multi(Op::SelectiveScan { state_size: n }, &[u, delta, a_log, b, c, d, s])?;
    cx.state_out(&format!("{state}.ssm"), Value { node, output: 1 })?;
    let gate = cx.op(Op::Unary(UnaryFn::Silu), &[z])?;
    let y = cx.op(Op::Mul, &[Value { node, output: 0 }, gate])?;
    cx.linear(y, &format!("{key}.out_proj"), hidden, di, m.add_linear_biases)
}
