//! The tail GDN and KDA share: L2-normalised (and scaled) q and k, the delta rule with its
//! recurrent state, and the gated RMSNorm of its output (reference §2.4–2.5).

use super::{Ctx, STATE};
use crate::ir::dim::Dim;
use crate::ir::graph::Value;
use crate::ir::op::{DeltaRuleParams, Op};
use crate::ir::IrError;
use crate::spec::GateActivation;

/// Epsilon of the L2 norm of q and k inside FLA's kernels.
const QK_L2_EPS: f64 = 1e-6;

/// The delta-rule inputs of one GDN/KDA mixer.
pub(super) struct DeltaRuleInputs {
    pub q: Value,
    pub k: Value,
    pub v: Value,
    /// Log-decay: `[.., Hv]` (GDN) or `[.., Hv·Dk]` (KDA).
    pub g: Value,
    /// Write strength, already through the sigmoid.
    pub beta: Value,
}

/// Lowers `GatedRmsNorm(delta_rule(l2norm(q)·Dk^−½, l2norm(k), v, g, β), gate)`; `gate` is
/// called after the delta rule (so KDA's output-gate projections follow it in the graph).
pub(super) fn lower(
    cx: &mut Ctx,
    inputs: DeltaRuleInputs,
    params: DeltaRuleParams,
    norm: (f64, GateActivation),
    key: &str,
    state: &str,
    gate: impl FnOnce(&mut Ctx) -> Result<Value, IrError>,
) -> Result<Value, IrError> {
    let (dk, dv) = (params.key_dim, params.value_dim);
    let l2 = Op::L2Norm {
        eps: QK_L2_EPS,
        group: dk,
    };
    let q = cx.op(l2.clone(), &[inputs.q])?;
    let q = cx.op(Op::Scale(1.0 / (dk as f64).sqrt()), &[q])?;
    let k = cx.op(l2, &[inputs.k])?;
    let name = format!("{state}.recurrent");
    let shape = vec![Dim::BATCH, Dim::c(params.value_heads), Dim::c(dk), Dim::c(dv)];
    let st = cx.state_in(&name, STATE, shape)?;
    let node = cx.multi(Op::DeltaRule(params), &[q, k, inputs.v, inputs.g, inputs.beta, st])?;
    cx.state_out(&name, Value { node, output: 1 })?;
    let gate = gate(cx)?;
    let w = cx.weight(format!("{key}.norm.weight"), &[dv])?;
    let (eps, act) = norm;
    cx.op(
        Op::GatedRmsNorm { eps, group: dv, act },
        &[Value { node, output: 0 }, gate, w],
    )
}
