//! Block configs (`{mixer, mlp, normalization}`), MLPs and norms (reference §1.3, §1.5, §1.6).

use super::error::{ErrorKind, SpecError};
use super::mixer;
use super::model::{Activation, BlockSpec, MlpSpec, NormSpec};
use super::reader::{Field, Obj};

pub const NORM_TYPES: &[&str] = &["rms_norm", "layer_norm"];

/// One block; `name` is its name in the config (`block` for a fixed decoder).
pub(crate) fn block(f: &Field<'_>, name: &str, hidden: usize) -> Result<BlockSpec, SpecError> {
    let o = f.obj()?;
    o.check_keys(&["mixer", "mlp", "normalization"], false)?;
    let mixer = match o.get("mixer") {
        Some(m) => mixer::resolve(&m, hidden, false)?,
        None => {
            return Err(o.err(
                "mixer",
                ErrorKind::Missing,
                "missing key `mixer`: the default mixer is `{type: attention}`, which still needs `heads`, `head_size` and `rotary`",
            ))
        }
    };
    let mlp = match o.get("mlp") {
        Some(m) => mlp(&m)?,
        None => {
            return Err(o.err(
                "mlp",
                ErrorKind::Missing,
                "missing key `mlp`: the default `{type: mlp}` still needs `intermediate_size`",
            ))
        }
    };
    let normalization = match o.get("normalization") {
        Some(n) => norm(&n)?,
        None => NormSpec::RmsNorm { eps: 1e-5 },
    };
    Ok(BlockSpec {
        name: name.to_string(),
        mixer,
        mlp,
        normalization,
    })
}

/// The explicit bias flag of `layer_1` / `layer_2`, with the field that set it (for errors).
fn bias_flag<'a>(o: &Obj<'a>, key: &str) -> Result<Option<(bool, Field<'a>)>, SpecError> {
    let Some(layer) = o.opt_obj(key)? else {
        return Ok(None);
    };
    layer.check_keys(&["bias"], false)?;
    let Some(bias) = layer.opt_obj("bias")? else {
        return Ok(None);
    };
    bias.check_keys(&["enabled"], false)?;
    match bias.get("enabled") {
        None => Ok(None),
        Some(f) => Ok(Some((f.bool()?, f))),
    }
}

pub(crate) fn mlp(f: &Field<'_>) -> Result<MlpSpec, SpecError> {
    let o = f.obj()?;
    if let Some(t) = o.get("type") {
        t.one_of("MLP type", &["mlp"])?;
    }
    o.check_keys(
        &[
            "type",
            "intermediate_size",
            "activation",
            "gated",
            "add_linear_biases",
            "layer_1",
            "layer_2",
        ],
        true,
    )?;
    let intermediate_size = o.req_size("intermediate_size", "the MLP width")?;
    let activation = match o.get("activation") {
        Some(a) => mixer::activation(&a)?,
        None => Activation::Silu,
    };
    let gated = o.bool_or("gated", false)?;
    let default_field = o.get("add_linear_biases");
    let default = o.bool_or("add_linear_biases", false)?;
    let up = bias_flag(&o, "layer_1")?;
    let down = bias_flag(&o, "layer_2")?;
    let up_bias = up.as_ref().map_or(default, |(b, _)| *b);
    let down_bias = down.as_ref().map_or(default, |(b, _)| *b);
    if gated && (up_bias || down_bias) {
        // Point at whichever flag turned a bias on.
        let culprit = [up, down]
            .into_iter()
            .flatten()
            .find(|(b, _)| *b)
            .map(|(_, f)| f)
            .or(default_field);
        let msg = "a gated MLP has no biases (HF builds it as Mistral's bias-free MLP and would silently drop them); set `gated: false` or turn the biases off";
        return Err(match culprit {
            Some(c) => c.err(ErrorKind::Constraint, msg),
            None => o.err("add_linear_biases", ErrorKind::Constraint, msg),
        });
    }
    Ok(MlpSpec {
        intermediate_size,
        activation,
        gated,
        up_bias,
        down_bias,
    })
}

/// `{type: rms_norm | layer_norm, epsilon}`.
pub(crate) fn norm(f: &Field<'_>) -> Result<NormSpec, SpecError> {
    let o = f.obj()?;
    let kind = match o.get("type") {
        Some(t) => t.one_of("normalization type", NORM_TYPES)?,
        None => "rms_norm",
    };
    o.check_keys(&["type", "epsilon"], true)?;
    let eps = o.norm_epsilon_or("epsilon", 1e-5, "norm epsilon")?;
    Ok(match kind {
        "layer_norm" => NormSpec::LayerNorm { eps },
        _ => NormSpec::RmsNorm { eps },
    })
}
