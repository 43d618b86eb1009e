//! Attention (full or sliding window): tensor table. Transfer between the two is passthrough
//! (only the config's `window_size` differs).

use crate::spec::AttentionSpec;

use super::{decl, TensorDecl};
use crate::surgery::init::InitKind;

/// `q_proj [H·Dh, d]`, `k_proj`, `v_proj [G·Dh, d]`, `o_proj [d, H·Dh]`, then the enabled
/// biases. Random init: kaiming weights, zero biases.
pub fn tensors(a: &AttentionSpec, hidden: usize) -> Vec<TensorDecl> {
    let q = a.heads * a.head_size;
    let kv = a.head_groups * a.head_size;
    let mut out = vec![
        decl("q_proj.weight", vec![q, hidden], InitKind::Kaiming),
        decl("k_proj.weight", vec![kv, hidden], InitKind::Kaiming),
        decl("v_proj.weight", vec![kv, hidden], InitKind::Kaiming),
        decl("o_proj.weight", vec![hidden, q], InitKind::Kaiming),
    ];
    for (on, name, rows) in [
        (a.bias.q, "q_proj.bias", q),
        (a.bias.k, "k_proj.bias", kv),
        (a.bias.v, "v_proj.bias", kv),
        (a.bias.o, "o_proj.bias", hidden),
    ] {
        if on {
            out.push(decl(name, vec![rows], InitKind::Zeros));
        }
    }
    out
}
