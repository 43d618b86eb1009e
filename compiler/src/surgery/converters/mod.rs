//! Per-tensor converters (reference §4.4, §4.5, §4.7): passthrough for every mixer kind,
//! attention ↔ sliding window, MIL (attention → Mamba), DIL (→ GDN), KIL (→ KDA), random init
//! for every mixer, and MLP / norm transfer or random init.
//!
//! Each mixer kind's file holds its tensor table (name, shape, random initialiser): the one
//! source of truth for passthrough (names and shapes must agree on both sides) and for
//! `init: random`.

mod attention;
mod gdn;
mod kda;
mod mamba;
mod mlp_norm;

pub use mlp_norm::{mlp_random, mlp_transfer, norm_random, norm_tensors, norm_transfer};

use crate::spec::{MixerKind, MixerSpec};

use super::error::SurgeryError;
use super::expr::Expr;
use super::init::InitKind;

/// One tensor of a component: its name under the component prefix, shape, and random init.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDecl {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: InitKind,
}

pub(crate) fn decl(name: &str, shape: Vec<usize>, init: InitKind) -> TensorDecl {
    TensorDecl {
        name: name.to_string(),
        shape,
        init,
    }
}

/// Where a component sits: the target layer (and sub-mixer) for messages, and the key prefixes
/// of the source and target tensors (`model.decoder.blocks.3.mixer`, no trailing dot).
#[derive(Debug, Clone)]
pub struct Site {
    pub layer: usize,
    pub sub_mixer: Option<String>,
    pub src: String,
    pub tgt: String,
}

impl Site {
    pub fn src_key(&self, name: &str) -> String {
        format!("{}.{name}", self.src)
    }
    pub fn tgt_key(&self, name: &str) -> String {
        format!("{}.{name}", self.tgt)
    }
    pub fn src_ref(&self, name: &str) -> Expr {
        Expr::reference(self.src_key(name))
    }
    pub(crate) fn error(&self, message: impl Into<String>) -> SurgeryError {
        SurgeryError::Transfer {
            layer: self.layer,
            sub_mixer: self.sub_mixer.clone(),
            message: message.into(),
        }
    }
    /// A new tensor of the target, seeded by its own key.
    pub fn init(&self, name: &str, shape: Vec<usize>, kind: InitKind) -> Expr {
        Expr::init(shape, kind, self.tgt_key(name))
    }
}

/// Target key → expression, in a component's tensor order.
pub type Mappings = Vec<(String, Expr)>;

/// The tensor table of a (non-stochastic) mixer.
pub fn mixer_tensors(spec: &MixerSpec, hidden: usize) -> Result<Vec<TensorDecl>, String> {
    match spec {
        MixerSpec::Attention(a) => Ok(attention::tensors(a, hidden)),
        MixerSpec::Mamba(m) => Ok(mamba::tensors(m, hidden)),
        MixerSpec::Gdn(g) => Ok(gdn::tensors(g, hidden)),
        MixerSpec::Kda(k) => Ok(kda::tensors(k, hidden)),
        MixerSpec::Stochastic(_) => Err("a stochastic mixer has no tensors of its own".into()),
    }
}

/// Every tensor of the component under `site.tgt`, randomly initialised per its table.
pub fn random(decls: &[TensorDecl], site: &Site) -> Mappings {
    decls
        .iter()
        .map(|d| {
            (
                site.tgt_key(&d.name),
                site.init(&d.name, d.shape.clone(), d.init.clone()),
            )
        })
        .collect()
}

/// Copies every tensor unchanged; the two tables must have the same names and shapes.
pub fn passthrough(src: &[TensorDecl], tgt: &[TensorDecl], what: &str, site: &Site) -> Result<Mappings, SurgeryError> {
    for s in src {
        if !tgt.iter().any(|t| t.name == s.name) {
            return Err(site.error(format!(
                "transferring the {what} would drop the source's `{}`; the target config has no \
                 such tensor (use `init: random`, or keep the flag that declares it)",
                s.name
            )));
        }
    }
    tgt.iter()
        .map(|t| {
            let s = src.iter().find(|s| s.name == t.name).ok_or_else(|| {
                site.error(format!(
                    "the target {what} has `{}` but the source has no such tensor (a bias flag \
                     differs?); use `init: random` to create it",
                    t.name
                ))
            })?;
            if s.shape != t.shape {
                return Err(site.error(format!(
                    "cannot transfer the {what}: `{}` is {:?} in the source but {:?} in the target \
                     (its geometry changed; use `init: random`)",
                    t.name, s.shape, t.shape
                )));
            }
            Ok((site.tgt_key(&t.name), site.src_ref(&t.name)))
        })
        .collect()
}

/// Random init of a non-stochastic target mixer.
pub fn mixer_random(tgt: &MixerSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    let decls = mixer_tensors(tgt, hidden).map_err(|m| site.error(m))?;
    Ok(random(&decls, site))
}

/// Transfers a non-stochastic source mixer into a non-stochastic target mixer: passthrough for
/// the same kind (attention and sliding window count as one), MIL / DIL / KIL from attention;
/// anything else has no converter.
pub fn mixer_transfer(src: &MixerSpec, tgt: &MixerSpec, hidden: usize, site: &Site) -> Result<Mappings, SurgeryError> {
    let no_converter = || SurgeryError::NoConverter {
        layer: site.layer,
        sub_mixer: site.sub_mixer.clone(),
        from: src.kind(),
        to: tgt.kind(),
    };
    match (src, tgt) {
        (MixerSpec::Attention(s), MixerSpec::Attention(t)) => passthrough(
            &attention::tensors(s, hidden),
            &attention::tensors(t, hidden),
            kind_label(tgt.kind()),
            site,
        ),
        (MixerSpec::Mamba(s), MixerSpec::Mamba(t)) => passthrough(
            &mamba::tensors(s, hidden),
            &mamba::tensors(t, hidden),
            "mamba mixer",
            site,
        ),
        (MixerSpec::Gdn(s), MixerSpec::Gdn(t)) => {
            passthrough(&gdn::tensors(s, hidden), &gdn::tensors(t, hidden), "gdn mixer", site)
        }
        (MixerSpec::Kda(s), MixerSpec::Kda(t)) => {
            passthrough(&kda::tensors(s, hidden), &kda::tensors(t, hidden), "kda mixer", site)
        }
        (MixerSpec::Attention(s), MixerSpec::Mamba(t)) => mamba::mil(s, t, hidden, site),
        (MixerSpec::Attention(s), MixerSpec::Gdn(t)) => gdn::dil(s, t, hidden, site),
        (MixerSpec::Attention(s), MixerSpec::Kda(t)) => kda::kil(s, t, hidden, site),
        _ => Err(no_converter()),
    }
}

fn kind_label(kind: MixerKind) -> &'static str {
    match kind {
        MixerKind::SlidingWindow => "sliding-window attention",
        _ => "attention",
    }
}

/// Source attention geometry, checked: `Hq`, `Hkv`, `Ds` and the four projections' keys.
pub(crate) struct AttentionSource {
    pub hq: usize,
    pub hkv: usize,
    pub ds: usize,
}

impl AttentionSource {
    pub fn new(a: &crate::spec::AttentionSpec) -> AttentionSource {
        AttentionSource {
            hq: a.heads,
            hkv: a.head_groups,
            ds: a.head_size,
        }
    }

    /// Rows `[start, start + len)` of source projection `proj` (`q_proj`, ...).
    pub fn rows(&self, site: &Site, proj: &str, start: usize, len: usize) -> Expr {
        site.src_ref(&format!("{proj}.weight")).rows(start, start + len)
    }

    /// Heads `h mod n_src` for `h ∈ [0, count)`, `len` rows from the start of each source head.
    pub fn tile(&self, site: &Site, proj: &str, n_src: usize, count: usize, len: usize) -> Vec<Expr> {
        (0..count)
            .map(|h| self.rows(site, proj, (h % n_src.max(1)) * self.ds, len))
            .collect()
    }
}
