//! A spec's checkpoint layout grouped into types: one struct per distinct mixer, MLP and norm
//! layout, one `Layer` variant per distinct (mixer kind, mixer, MLP, norm), and which variant
//! each layer is. Tensor lists come from `modelc::spec::layout`, so the typed layout is the
//! checkpoint layout by construction.

use std::collections::BTreeMap;

use modelc::spec::layout::{block_weights, mixer_weights, mlp_weights, weights};
use modelc::spec::{MixerKind, MixerSpec, ModelSpec, NormSpec, WeightDecl};

/// One tensor field: its key relative to the part's prefix and its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub rel: String,
    pub shape: Vec<usize>,
}

impl Field {
    /// The field name: the relative key in snake case (`q_proj.weight` → `q_proj_weight`).
    pub fn name(&self) -> String {
        rust_name(&self.rel)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Tensors(Vec<Field>),
    /// Sub-mixers of a stochastic mixer: (config name, part index).
    Stochastic(Vec<(String, usize)>),
}

/// One generated struct.
#[derive(Debug, Clone)]
pub struct PartDef {
    pub name: String,
    /// What it is, for docs (`attention mixer`).
    pub what: String,
    pub body: Body,
    /// Key prefix pattern (`model.decoder.blocks.{i}.mixer`) → the layers using it (empty for
    /// the final norm).
    pub uses: BTreeMap<String, Vec<usize>>,
    /// `main_mixer_name` of a stochastic mixer.
    pub main: Option<String>,
}

/// One `Layer` variant.
#[derive(Debug, Clone)]
pub struct VariantDef {
    pub name: String,
    pub kind: MixerKind,
    pub mixer: usize,
    pub mlp: usize,
    pub norm: usize,
    pub layers: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct TypedLayout {
    pub parts: Vec<PartDef>,
    pub variants: Vec<VariantDef>,
    /// Variant index of each layer.
    pub layer_variant: Vec<usize>,
    pub embed: Vec<usize>,
    pub head_norm: usize,
    pub lm_head: Option<Vec<usize>>,
}

/// The snake-case Rust name of a key or sub-mixer name; never empty, never a leading digit.
pub fn rust_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "m_");
    }
    out
}

/// Tensors under `prefix.`, with the prefix stripped.
fn fields(decls: Vec<WeightDecl>, prefix: &str) -> Vec<Field> {
    decls
        .into_iter()
        .filter_map(|w| {
            w.key.strip_prefix(prefix).map(|rel| Field {
                rel: rel.trim_start_matches('.').to_string(),
                shape: w.shape,
            })
        })
        .collect()
}

struct Builder {
    parts: Vec<PartDef>,
}

impl Builder {
    /// The index of the part with this base name and body, added if new (`Attention`,
    /// `Attention2`, ... for different layouts of one kind).
    fn part(&mut self, base: &str, what: &str, body: Body, main: Option<String>) -> usize {
        if let Some(i) = self
            .parts
            .iter()
            .position(|p| p.body == body && p.main == main && p.what == what)
        {
            return i;
        }
        let same_base = self.parts.iter().filter(|p| p.what == what).count();
        let name = if same_base == 0 {
            base.to_string()
        } else {
            format!("{base}{}", same_base + 1)
        };
        self.parts.push(PartDef {
            name,
            what: what.to_string(),
            body,
            uses: BTreeMap::new(),
            main,
        });
        self.parts.len() - 1
    }

    fn used(&mut self, part: usize, pattern: String, layer: Option<usize>) {
        if let Some(p) = self.parts.get_mut(part) {
            let layers = p.uses.entry(pattern).or_default();
            layers.extend(layer);
        }
    }

    fn mixer(&mut self, m: &MixerSpec, d: usize, pattern: &str, layer: usize) -> usize {
        let (base, what) = match m {
            MixerSpec::Attention(_) => ("Attention", "attention mixer"),
            MixerSpec::Mamba(_) => ("Mamba", "Mamba mixer"),
            MixerSpec::Gdn(_) => ("Gdn", "Gated DeltaNet mixer"),
            MixerSpec::Kda(_) => ("Kda", "Kimi Delta Attention mixer"),
            MixerSpec::Stochastic(_) => ("Stochastic", "stochastic mixer"),
        };
        let (body, main) = match m {
            MixerSpec::Stochastic(s) => {
                let subs = s
                    .mixers
                    .iter()
                    .map(|(name, sub)| {
                        (
                            name.clone(),
                            self.mixer(sub, d, &format!("{pattern}.mixers.{name}"), layer),
                        )
                    })
                    .collect();
                (Body::Stochastic(subs), Some(s.main_mixer_name.clone()))
            }
            other => (Body::Tensors(fields(mixer_weights("", other, d), "")), None),
        };
        let i = self.part(base, what, body, main);
        self.used(i, pattern.to_string(), Some(layer));
        i
    }
}

fn norm_base(n: &NormSpec) -> (&'static str, &'static str) {
    match n {
        NormSpec::RmsNorm { .. } => ("RmsNorm", "RMS norm"),
        NormSpec::LayerNorm { .. } => ("LayerNorm", "layer norm"),
    }
}

fn kind_name(kind: MixerKind) -> &'static str {
    match kind {
        MixerKind::Attention => "Attention",
        MixerKind::SlidingWindow => "SlidingWindow",
        MixerKind::Mamba => "Mamba",
        MixerKind::Gdn => "Gdn",
        MixerKind::Kda => "Kda",
        MixerKind::Stochastic => "Stochastic",
    }
}

/// Groups `spec`'s layout into types.
pub fn typed_layout(spec: &ModelSpec) -> TypedLayout {
    let d = spec.hidden_size;
    let mut b = Builder { parts: Vec::new() };
    let mut variants: Vec<VariantDef> = Vec::new();
    let mut layer_variant = Vec::with_capacity(spec.layers.len());
    let block = "model.decoder.blocks.{i}";
    for (i, layer) in spec.layers.iter().enumerate() {
        let mixer = b.mixer(&layer.mixer, d, &format!("{block}.mixer"), i);
        let mlp_fields = fields(mlp_weights("", &layer.mlp, d), "");
        let (mlp_base, mlp_what) = if layer.mlp.gated {
            ("GatedMlp", "gated MLP")
        } else {
            ("Mlp", "MLP")
        };
        let mlp = b.part(mlp_base, mlp_what, Body::Tensors(mlp_fields), None);
        b.used(mlp, format!("{block}.mlp"), Some(i));
        let prefix = format!("model.decoder.blocks.{i}.input_layernorm");
        let norm_fields = fields(block_weights(i, layer, d), &prefix);
        let (norm_b, norm_what) = norm_base(&layer.normalization);
        let norm = b.part(norm_b, norm_what, Body::Tensors(norm_fields), None);
        b.used(norm, format!("{block}.input_layernorm"), Some(i));
        b.used(norm, format!("{block}.post_attention_layernorm"), Some(i));

        let kind = layer.mixer.kind();
        let v = match variants
            .iter()
            .position(|v| v.kind == kind && (v.mixer, v.mlp, v.norm) == (mixer, mlp, norm))
        {
            Some(v) => v,
            None => {
                let same_kind = variants.iter().filter(|v| v.kind == kind).count();
                let base = kind_name(kind);
                variants.push(VariantDef {
                    name: if same_kind == 0 {
                        base.to_string()
                    } else {
                        format!("{base}{}", same_kind + 1)
                    },
                    kind,
                    mixer,
                    mlp,
                    norm,
                    layers: Vec::new(),
                });
                variants.len() - 1
            }
        };
        if let Some(var) = variants.get_mut(v) {
            var.layers.push(i);
        }
        layer_variant.push(v);
    }
    let all = weights(spec);
    let head_fields = fields(
        all.iter()
            .filter(|w| w.key.starts_with("model.norm."))
            .cloned()
            .collect(),
        "model.norm",
    );
    let (head_b, head_what) = norm_base(&spec.head_norm);
    let head_norm = b.part(head_b, head_what, Body::Tensors(head_fields), None);
    b.used(head_norm, "model.norm".into(), None);
    let shape_of = |key: &str| all.iter().find(|w| w.key == key).map(|w| w.shape.clone());
    TypedLayout {
        parts: b.parts,
        variants,
        layer_variant,
        embed: shape_of("model.embed_tokens.weight").unwrap_or_default(),
        head_norm,
        lm_head: shape_of("lm_head.weight"),
    }
}

/// `0, 2-5, 7`: sorted layer indices as ranges.
pub fn ranges(layers: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let start = layers[i];
        let mut end = start;
        while i + 1 < layers.len() && layers[i + 1] == end + 1 {
            i += 1;
            end = layers[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> ModelSpec {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        modelc::spec::load(&p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn hybrid_gets_one_struct_per_layout_and_one_variant_per_kind() {
        let t = typed_layout(&spec("specs/tiny-hybrid.yaml"));
        let names: Vec<&str> = t.parts.iter().map(|p| p.name.as_str()).collect();
        // Attention and sliding-window attention share a tensor layout, hence a struct.
        assert_eq!(names, ["Attention", "GatedMlp", "RmsNorm", "Gdn", "Kda", "Mamba"]);
        let variants: Vec<&str> = t.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(variants, ["Attention", "SlidingWindow", "Gdn", "Kda", "Mamba"]);
        assert_eq!(t.layer_variant, [0, 1, 2, 3, 4]);
        assert_eq!(t.variants[0].mixer, t.variants[1].mixer);
        assert_eq!(t.lm_head, Some(vec![128, 64]));
    }

    #[test]
    fn supernet_holds_every_sub_mixer() {
        let t = typed_layout(&spec("specs/tiny-supernet.yaml"));
        let stochastic = t
            .parts
            .iter()
            .find(|p| p.name == "Stochastic")
            .expect("stochastic part");
        let Body::Stochastic(subs) = &stochastic.body else {
            panic!("not stochastic")
        };
        let s = spec("specs/tiny-supernet.yaml");
        let MixerSpec::Stochastic(sm) = &s.layers[0].mixer else {
            panic!("layer 0 is not stochastic")
        };
        let names: Vec<&str> = subs.iter().map(|(n, _)| n.as_str()).collect();
        let want: Vec<&str> = sm.mixers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, want);
        assert_eq!(stochastic.main.as_deref(), Some(sm.main_mixer_name.as_str()));
    }

    #[test]
    fn names_and_ranges() {
        assert_eq!(rust_name("A_log"), "a_log");
        assert_eq!(rust_name("conv1d.weight"), "conv1d_weight");
        assert_eq!(rust_name("2nd-mixer"), "m_2nd_mixer");
        assert_eq!(ranges(&[0, 2, 3, 4, 5, 7]), "0, 2-5, 7");
        assert_eq!(ranges(&[]), "");
    }
}
