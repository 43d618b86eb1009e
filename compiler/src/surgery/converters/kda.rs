//! Kimi Delta Attention: tensor table and KIL (attention → KDA, reference §4.7).

use crate::spec::{AttentionSpec, KdaSpec};
use crate::surgery::error::SurgeryError;
use crate::surgery::expr::Expr;
use crate::surgery::init::InitKind;

use super::{decl, AttentionSource, Mappings, Site, TensorDecl};

/// The 15 KDA tensors; random init per reference §4.5.
pub fn tensors(k: &KdaSpec, hidden: usize) -> Vec<TensorDecl> {
    let (h, d) = (k.heads, k.head_dim);
    let p = h * d;
    let conv = vec![p, 1, k.conv_kernel_size];
    vec![
        decl("q_proj.weight", vec![p, hidden], InitKind::Kaiming),
        decl("k_proj.weight", vec![p, hidden], InitKind::Kaiming),
        decl("v_proj.weight", vec![p, hidden], InitKind::Kaiming),
        decl("o_proj.weight", vec![hidden, p], InitKind::Kaiming),
        decl("q_conv.weight", conv.clone(), InitKind::ScaledIdentityConv),
        decl("k_conv.weight", conv.clone(), InitKind::ScaledIdentityConv),
        decl("v_conv.weight", conv, InitKind::ScaledIdentityConv),
        decl("f_a_proj.weight", vec![d, hidden], InitKind::Kaiming),
        decl("f_b_proj.weight", vec![p, d], InitKind::Kaiming),
        decl("g_a_proj.weight", vec![d, hidden], InitKind::Kaiming),
        decl("g_b_proj.weight", vec![p, d], InitKind::Kaiming),
        decl("beta_proj.weight", vec![h, hidden], InitKind::Kaiming),
        decl("A_log", vec![h], InitKind::SlowDecay),
        decl("dt_bias", vec![p], InitKind::Zeros),
        decl("norm.weight", vec![d], InitKind::Ones),
    ]
}

/// KIL: `q_proj = Q` when `Hq·Ds = H·D`, else target head `h` takes `Q[(h mod Hq)·Ds : +D]`;
/// `k_proj`, `v_proj` likewise from K, V with `Hkv` (so GQA 4/2 gives k heads 0,1,0,1);
/// `o_proj = O`; the rest as random init.
pub fn kil(a: &AttentionSpec, k: &KdaSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    let src = AttentionSource::new(a);
    let (h, d) = (k.heads, k.head_dim);
    let p = h * d;
    if src.hq * src.ds != p {
        return Err(site.error(format!(
            "KIL reuses o_proj, so the KDA's heads·head_dim ({h}·{d}) must equal heads·head_size \
             of the source attention ({}·{})",
            src.hq, src.ds
        )));
    }
    let project = |proj: &str, n_src: usize| -> Result<Expr, SurgeryError> {
        if n_src * src.ds == p {
            return Ok(site.src_ref(&format!("{proj}.weight")));
        }
        if d > src.ds {
            return Err(site.error(format!(
                "KIL tiles {proj} by head, which needs head_dim ({d}) ≤ the source head_size ({})",
                src.ds
            )));
        }
        Ok(Expr::concat(src.tile(site, proj, n_src, h, d), 0))
    };
    let mut out: Mappings = Vec::new();
    for t in tensors(k, hidden) {
        let expr = match t.name.as_str() {
            "q_proj.weight" => project("q_proj", src.hq)?,
            "k_proj.weight" => project("k_proj", src.hkv)?,
            "v_proj.weight" => project("v_proj", src.hkv)?,
            "o_proj.weight" => site.src_ref("o_proj.weight"),
            _ => site.init(&t.name, t.shape.clone(), t.init.clone()),
        };
        out.push((site.tgt_key(&t.name), expr));
    }
    Ok(out)
}
