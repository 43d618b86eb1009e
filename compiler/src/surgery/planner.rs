//! `plan_surgery` (reference §4.4): the plan that turns a checkpoint of the source config into
//! one of the target config, given which target components say `init: random`.
//!
//! Target layer `t` reads source layer `t mod n_source` (a surgery can grow depth by cycling
//! layers; shrinking drops the tail). Unlike upstream, the plan holds exactly the target
//! config's tensors: sub-mixers that a replacement surgery drops are not passed through.

use serde_json::Value;

use crate::spec::{MixerSpec, ModelSpec};

use super::converters::{
    mixer_random, mixer_transfer, mlp_random, mlp_transfer, norm_random, norm_transfer, Mappings, Site,
};
use super::error::SurgeryError;
use super::expr::{Expr, Plan};

/// How a target component gets its weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InitMode {
    #[default]
    Transfer,
    Random,
}

impl InitMode {
    fn of(v: Option<&Value>) -> InitMode {
        match v.and_then(|m| m.get("init")).and_then(Value::as_str) {
            Some("random") => InitMode::Random,
            _ => InitMode::Transfer,
        }
    }
}

/// The `init` modes of one target layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerInit {
    /// The mixer's own `init` (non-stochastic targets).
    pub mixer: InitMode,
    /// Each sub-mixer's `init` (stochastic targets).
    pub sub_mixers: Vec<(String, InitMode)>,
    pub mlp: InitMode,
    pub normalization: InitMode,
}

impl LayerInit {
    fn sub_mixer(&self, name: &str) -> InitMode {
        self.sub_mixers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| *m)
            .unwrap_or_default()
    }
}

/// Reads the `init` fields of a target config (T) for each of its `num_layers` layers.
pub fn layer_inits(target: &Value, num_layers: usize) -> Vec<LayerInit> {
    let decoder = target.get("decoder");
    let fixed = decoder.and_then(|d| d.get("block"));
    let pattern: Vec<&str> = decoder
        .and_then(|d| d.get("pattern"))
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let is_pattern = decoder.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("pattern");
    (0..num_layers)
        .map(|t| {
            let block = if is_pattern && !pattern.is_empty() {
                decoder
                    .and_then(|d| d.get("blocks"))
                    .and_then(|b| b.get(pattern[t % pattern.len()]))
            } else {
                fixed
            };
            let mixer = block.and_then(|b| b.get("mixer"));
            let sub_mixers = mixer
                .and_then(|m| m.get("mixers"))
                .and_then(Value::as_object)
                .map(|subs| subs.iter().map(|(n, s)| (n.clone(), InitMode::of(Some(s)))).collect())
                .unwrap_or_default();
            LayerInit {
                mixer: InitMode::of(mixer),
                sub_mixers,
                mlp: InitMode::of(block.and_then(|b| b.get("mlp"))),
                normalization: InitMode::of(block.and_then(|b| b.get("normalization"))),
            }
        })
        .collect()
}

fn push_all(plan: &mut Plan, mappings: Mappings) -> Result<(), SurgeryError> {
    for (k, e) in mappings {
        plan.insert(k, e)?;
    }
    Ok(())
}

/// The plan from `source` to `target`; `inits[t]` says which parts of target layer `t` are
/// random (missing entries mean transfer).
pub fn plan_surgery(source: &ModelSpec, target: &ModelSpec, inits: &[LayerInit]) -> Result<Plan, SurgeryError> {
    let d = target.hidden_size;
    let mut plan = Plan::new("apriel2", "apriel2");
    let embed = "model.embed_tokens.weight";
    plan.insert(embed, Expr::reference(embed))?;

    let n_src = source.layers.len();
    if n_src == 0 && !target.layers.is_empty() {
        return Err(SurgeryError::Source(
            "the source config has no decoder layers to transfer from".into(),
        ));
    }
    let default_init = LayerInit::default();
    for (t, tgt_block) in target.layers.iter().enumerate() {
        let s = t % n_src.max(1);
        let Some(src_block) = source.layers.get(s) else {
            break;
        };
        let init = inits.get(t).unwrap_or(&default_init);
        let src_p = format!("model.decoder.blocks.{s}");
        let tgt_p = format!("model.decoder.blocks.{t}");
        let site = |part: &str, sub: Option<&str>| Site {
            layer: t,
            sub_mixer: sub.map(str::to_string),
            src: format!("{src_p}.{part}"),
            tgt: format!("{tgt_p}.{part}"),
        };
        for part in ["input_layernorm", "post_attention_layernorm"] {
            let site = site(part, None);
            let m = match init.normalization {
                InitMode::Random => norm_random(&tgt_block.normalization, d, &site),
                InitMode::Transfer => norm_transfer(&src_block.normalization, &tgt_block.normalization, d, &site)?,
            };
            push_all(&mut plan, m)?;
        }
        plan_mixer(&mut plan, &src_block.mixer, &tgt_block.mixer, init, d, &site)?;
        let mlp_site = site("mlp", None);
        let m = match init.mlp {
            InitMode::Random => mlp_random(&tgt_block.mlp, d, &mlp_site),
            InitMode::Transfer => mlp_transfer(&src_block.mlp, &tgt_block.mlp, d, &mlp_site)?,
        };
        push_all(&mut plan, m)?;
    }

    let head_site = Site {
        layer: target.layers.len(),
        sub_mixer: None,
        src: "model.norm".into(),
        tgt: "model.norm".into(),
    };
    push_all(
        &mut plan,
        norm_transfer(&source.head_norm, &target.head_norm, d, &head_site).map_err(|_| {
            SurgeryError::Source(format!(
                "the final norm changes type ({:?} → {:?}); surgery cannot transfer it",
                source.head_norm, target.head_norm
            ))
        })?,
    )?;
    if !target.tie_word_embeddings {
        let from = if source.tie_word_embeddings {
            embed
        } else {
            "lm_head.weight"
        };
        plan.insert("lm_head.weight", Expr::reference(from))?;
    } else if !source.tie_word_embeddings {
        return Err(SurgeryError::Source(
            "the target ties lm_head to the embeddings but the source has its own lm_head.weight; \
             tying would discard it"
                .into(),
        ));
    }
    Ok(plan)
}

/// Mixer routing: a non-stochastic target transfers from the source mixer (a stochastic source
/// gives its main sub-mixer); each sub-mixer of a stochastic target transfers from the source
/// sub-mixer of the same name if there is one, else from the source's main (or only) mixer.
fn plan_mixer(
    plan: &mut Plan,
    src: &MixerSpec,
    tgt: &MixerSpec,
    init: &LayerInit,
    d: usize,
    site: &dyn Fn(&str, Option<&str>) -> Site,
) -> Result<(), SurgeryError> {
    // The source mixer a transfer reads by default, and its key prefix.
    let (src_main, src_main_part) = match src {
        MixerSpec::Stochastic(s) => (s.get(&s.main_mixer_name), format!("mixer.mixers.{}", s.main_mixer_name)),
        other => (Some(other), "mixer".to_string()),
    };
    match tgt {
        MixerSpec::Stochastic(ts) => {
            for (name, sub) in &ts.mixers {
                let part = format!("mixer.mixers.{name}");
                let mut st = site(&part, Some(name));
                let m = match init.sub_mixer(name) {
                    InitMode::Random => mixer_random(sub, d, &st)?,
                    InitMode::Transfer => {
                        let (from, from_part) = match src {
                            MixerSpec::Stochastic(ss) if ss.get(name).is_some() => (ss.get(name), part.clone()),
                            _ => (src_main, src_main_part.clone()),
                        };
                        let from = from.ok_or_else(|| missing_main(src, &st))?;
                        st.src = site(&from_part, None).src;
                        mixer_transfer(from, sub, d, &st)?
                    }
                };
                push_all(plan, m)?;
            }
        }
        _ => {
            let mut st = site("mixer", None);
            let m = match init.mixer {
                InitMode::Random => mixer_random(tgt, d, &st)?,
                InitMode::Transfer => {
                    let from = src_main.ok_or_else(|| missing_main(src, &st))?;
                    st.src = site(&src_main_part, None).src;
                    mixer_transfer(from, tgt, d, &st)?
                }
            };
            push_all(plan, m)?;
        }
    }
    Ok(())
}

fn missing_main(src: &MixerSpec, site: &Site) -> SurgeryError {
    let name = match src {
        MixerSpec::Stochastic(s) => s.main_mixer_name.clone(),
        _ => String::new(),
    };
    site.error(format!(
        "the source's main_mixer_name `{name}` is not one of its sub-mixers"
    ))
}
