//! MLP and normalization tensors: transfer (passthrough, shapes and flags must agree) or random
//! init (kaiming weights, zero biases; norms ones and zero bias).

use crate::spec::{MlpSpec, NormSpec};
use crate::surgery::error::SurgeryError;
use crate::surgery::init::InitKind;

use super::{decl, passthrough, random, Mappings, Site, TensorDecl};

/// Gated: `gate_proj`, `up_proj [I, d]`, `down_proj [d, I]` (never biases); plain: `up_proj`,
/// `down_proj` and their enabled biases.
pub fn mlp_tensors(m: &MlpSpec, hidden: usize) -> Vec<TensorDecl> {
    let i = m.intermediate_size;
    let mut out = Vec::new();
    if m.gated {
        out.push(decl("gate_proj.weight", vec![i, hidden], InitKind::Kaiming));
    }
    out.push(decl("up_proj.weight", vec![i, hidden], InitKind::Kaiming));
    out.push(decl("down_proj.weight", vec![hidden, i], InitKind::Kaiming));
    if !m.gated {
        if m.up_bias {
            out.push(decl("up_proj.bias", vec![i], InitKind::Zeros));
        }
        if m.down_bias {
            out.push(decl("down_proj.bias", vec![hidden], InitKind::Zeros));
        }
    }
    out
}

/// `weight [d]` (ones), plus `bias [d]` (zeros) for layer norm.
pub fn norm_tensors(n: &NormSpec, hidden: usize) -> Vec<TensorDecl> {
    let mut out = vec![decl("weight", vec![hidden], InitKind::Ones)];
    if matches!(n, NormSpec::LayerNorm { .. }) {
        out.push(decl("bias", vec![hidden], InitKind::Zeros));
    }
    out
}

pub fn mlp_transfer(src: &MlpSpec, tgt: &MlpSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    if src.gated != tgt.gated {
        return Err(site.error(format!(
            "cannot transfer a {} MLP into a {} one; use `init: random` on the mlp",
            if src.gated { "gated" } else { "non-gated" },
            if tgt.gated { "gated" } else { "non-gated" },
        )));
    }
    passthrough(&mlp_tensors(src, hidden), &mlp_tensors(tgt, hidden), "mlp", site)
}

pub fn mlp_random(tgt: &MlpSpec, hidden: usize, site: &Site) -> Mappings {
    random(&mlp_tensors(tgt, hidden), site)
}

fn norm_name(n: &NormSpec) -> &'static str {
    match n {
        NormSpec::RmsNorm { .. } => "rms_norm",
        NormSpec::LayerNorm { .. } => "layer_norm",
    }
}

pub fn norm_transfer(src: &NormSpec, tgt: &NormSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    if norm_name(src) != norm_name(tgt) {
        return Err(site.error(format!(
            "cannot transfer a {} into a {}; use `init: random` on the normalization",
            norm_name(src),
            norm_name(tgt)
        )));
    }
    passthrough(
        &norm_tensors(src, hidden),
        &norm_tensors(tgt, hidden),
        "normalization",
        site,
    )
}

pub fn norm_random(tgt: &NormSpec, hidden: usize, site: &Site) -> Mappings {
    random(&norm_tensors(tgt, hidden), site)
}
