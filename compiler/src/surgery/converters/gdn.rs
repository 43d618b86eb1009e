//! Gated DeltaNet: tensor table and DIL (attention → GDN, reference §4.7).

use crate::spec::{AttentionSpec, GdnSpec};
use crate::surgery::error::SurgeryError;
use crate::surgery::expr::Expr;
use crate::surgery::init::InitKind;

use super::{decl, AttentionSource, Mappings, Site, TensorDecl};

/// The GDN tensors; random init per reference §4.5 (`in_proj_ba` zeros, so β = 0.5 and a = 0).
pub fn tensors(g: &GdnSpec, hidden: usize) -> Vec<TensorDecl> {
    let (hk, hv, dk, dv) = (g.key_heads, g.value_heads, g.key_head_dim, g.value_head_dim);
    vec![
        decl(
            "in_proj_qkvz.weight",
            vec![2 * hk * dk + 2 * hv * dv, hidden],
            InitKind::Kaiming,
        ),
        decl("in_proj_ba.weight", vec![2 * hv, hidden], InitKind::Zeros),
        decl(
            "convolution.weight",
            vec![g.conv_dim(), 1, g.conv_kernel_size],
            InitKind::ScaledIdentityConv,
        ),
        decl("A_log", vec![hv], InitKind::SlowDecay),
        decl("dt_bias", vec![hv], InitKind::Zeros),
        decl("norm.weight", vec![dv], InitKind::Ones),
        decl("out_proj.weight", vec![hidden, hv * dv], InitKind::Kaiming),
    ]
}

/// DIL: key head `g` takes `Q[(g mod Hq)·Ds : +Dk]` and `K[(g mod Hkv)·Ds : +Dk]`, value head `v`
/// takes `V[(v mod Hkv)·Ds : +Dv]`; Z rows and `in_proj_ba` are zero, `out_proj = O`, the conv
/// is a 0.5 identity, `A_log = ln 0.1`, `dt_bias = 0`, norm weight 1. A fresh DIL GDN outputs
/// exactly zero (silu(z = 0) = 0).
pub fn dil(a: &AttentionSpec, g: &GdnSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    let src = AttentionSource::new(a);
    let (hk, hv, dk, dv) = (g.key_heads, g.value_heads, g.key_head_dim, g.value_head_dim);
    if dk > src.ds || dv > src.ds {
        return Err(site.error(format!(
            "DIL needs key_head_dim ({dk}) and value_head_dim ({dv}) ≤ the source head_size ({}): \
             each GDN head is cut from one attention head",
            src.ds
        )));
    }
    if hv * dv != src.hq * src.ds {
        return Err(site.error(format!(
            "DIL reuses o_proj, so value_heads·value_head_dim ({hv}·{dv}) must equal \
             heads·head_size of the source attention ({}·{})",
            src.hq, src.ds
        )));
    }
    let mut qkvz = src.tile(site, "q_proj", src.hq, hk, dk);
    qkvz.extend(src.tile(site, "k_proj", src.hkv, hk, dk));
    qkvz.extend(src.tile(site, "v_proj", src.hkv, hv, dv));
    qkvz.push(site.init("in_proj_qkvz.weight", vec![hv * dv, hidden], InitKind::Zeros));
    let mut out: Mappings = Vec::new();
    for t in tensors(g, hidden) {
        let expr = match t.name.as_str() {
            "in_proj_qkvz.weight" => Expr::concat(std::mem::take(&mut qkvz), 0),
            "out_proj.weight" => site.src_ref("o_proj.weight"),
            _ => site.init(&t.name, t.shape.clone(), t.init.clone()),
        };
        out.push((site.tgt_key(&t.name), expr));
    }
    Ok(out)
}
