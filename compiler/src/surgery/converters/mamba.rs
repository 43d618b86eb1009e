//! Mamba: tensor table and MIL (attention → Mamba, reference §4.7).

use crate::spec::{AttentionSpec, MambaSpec};
use crate::surgery::error::SurgeryError;
use crate::surgery::expr::Expr;
use crate::surgery::init::InitKind;

use super::{decl, AttentionSource, Mappings, Site, TensorDecl};

/// The Mamba tensors; random init per reference §4.5 (`A_log` s4d, `D` ones, `dt_proj.bias`
/// inverse-softplus of a log-uniform dt, conv and linear biases zero).
pub fn tensors(m: &MambaSpec, hidden: usize) -> Vec<TensorDecl> {
    let (di, dxb, r) = (m.d_inner, m.d_xb, m.dt_rank);
    let c = m.conv_channels();
    let mut out = vec![decl(
        "in_proj.weight",
        vec![2 * di + 2 * dxb, hidden],
        InitKind::Kaiming,
    )];
    if m.add_linear_biases {
        out.push(decl("in_proj.bias", vec![2 * di + 2 * dxb], InitKind::Zeros));
    }
    out.push(decl("dt_in_proj.weight", vec![r, hidden], InitKind::Kaiming));
    if m.add_linear_biases {
        out.push(decl("dt_in_proj.bias", vec![r], InitKind::Zeros));
    }
    out.push(decl("dt_proj.weight", vec![di, r], InitKind::Kaiming));
    if m.dt_proj_bias {
        out.push(decl(
            "dt_proj.bias",
            vec![di],
            InitKind::DtBias {
                dt_min: m.dt_min,
                dt_max: m.dt_max,
                dt_init_floor: m.dt_init_floor,
            },
        ));
    }
    out.push(decl("conv1d.weight", vec![c, 1, m.d_conv], InitKind::Kaiming));
    if m.conv_bias {
        out.push(decl("conv1d.bias", vec![c], InitKind::Zeros));
    }
    out.push(decl("A_log", vec![di, m.state_size], InitKind::S4d));
    out.push(decl("D", vec![di], InitKind::Ones));
    out.push(decl("out_proj.weight", vec![hidden, di], InitKind::Kaiming));
    if m.add_linear_biases {
        out.push(decl("out_proj.bias", vec![hidden], InitKind::Zeros));
    }
    out
}

/// MIL: `in_proj = [z: kaiming (d_inner, d) | x: V[0:d_xb] | B: K[0:d_xb] | C: Q[0:d_inner]]`,
/// `out_proj = O`, everything else as random init. When the Mamba has linear biases, `in_proj`'s
/// bias takes the same rows of the attention biases (zeros where the attention has none) and
/// `out_proj.bias` is `o_proj.bias` or zeros.
pub fn mil(a: &AttentionSpec, m: &MambaSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    let src = AttentionSource::new(a);
    let (di, dxb) = (m.d_inner, m.d_xb);
    if dxb > src.hkv * src.ds {
        return Err(site.error(format!(
            "MIL takes x and B from the first d_xb rows of v_proj and k_proj, so d_xb ({dxb}) must \
             be ≤ head_groups·head_size of the source attention ({}·{})",
            src.hkv, src.ds
        )));
    }
    if di != src.hq * src.ds {
        return Err(site.error(format!(
            "MIL takes C from q_proj and reuses o_proj, so d_inner ({di}) must equal \
             heads·head_size of the source attention ({}·{})",
            src.hq, src.ds
        )));
    }
    let bias_rows = |present: bool, proj: &str, len: usize, name: &str| -> Expr {
        if present {
            site.src_ref(&format!("{proj}.bias")).rows(0, len)
        } else {
            site.init(name, vec![len], InitKind::Zeros)
        }
    };
    let mut out: Mappings = Vec::new();
    for t in tensors(m, hidden) {
        let expr = match t.name.as_str() {
            "in_proj.weight" => Expr::concat(
                vec![
                    site.init(&t.name, vec![di, hidden], InitKind::Kaiming),
                    src.rows(site, "v_proj", 0, dxb),
                    src.rows(site, "k_proj", 0, dxb),
                    src.rows(site, "q_proj", 0, di),
                ],
                0,
            ),
            "in_proj.bias" => Expr::concat(
                vec![
                    site.init(&t.name, vec![di], InitKind::Zeros),
                    bias_rows(a.bias.v, "v_proj", dxb, &t.name),
                    bias_rows(a.bias.k, "k_proj", dxb, &t.name),
                    bias_rows(a.bias.q, "q_proj", di, &t.name),
                ],
                0,
            ),
            "out_proj.weight" => site.src_ref("o_proj.weight"),
            "out_proj.bias" if a.bias.o => site.src_ref("o_proj.bias"),
            _ => site.init(&t.name, t.shape.clone(), t.init.clone()),
        };
        out.push((site.tgt_key(&t.name), expr));
    }
    Ok(out)
}
