//! Mixer configs (`mixer:` of a block, or a sub-mixer of a stochastic mixer) into [`MixerSpec`]:
//! attention, mamba, gdn, kda, stochastic (reference §1.4), defaults of the HF modeling, every
//! constraint checked where the offending value is.

use super::error::{ErrorKind, SpecError};
use super::model::*;
use super::names::ACTIVATION_NAMES;
use super::reader::{did_you_mean, list, Field, Obj};

/// Mixer `type` values.
pub const MIXER_TYPES: &[&str] = &["attention", "mamba", "gdn", "kda", "stochastic"];

const ATTENTION_KEYS: &[&str] = &[
    "type",
    "heads",
    "head_groups",
    "head_size",
    "causal",
    "window_size",
    "cross_document_attention",
    "add_linear_biases",
    "query_layer",
    "key_layer",
    "value_layer",
    "dense_layer",
    "rotary",
];
const MAMBA_KEYS: &[&str] = &[
    "type",
    "state_size",
    "d_state",
    "d_inner",
    "d_xb",
    "d_conv",
    "expand",
    "dt_rank",
    "dt_min",
    "dt_max",
    "dt_init",
    "dt_scale",
    "dt_init_floor",
    "repeat_kv_before_conv",
    "conv_bias",
    "dt_proj_bias",
    "add_linear_biases",
];
const GDN_KEYS: &[&str] = &[
    "type",
    "value_heads",
    "key_heads",
    "key_head_dim",
    "value_head_dim",
    "convolution_layer",
    "norm_eps",
];
const KDA_KEYS: &[&str] = &["type", "heads", "head_dim", "convolution_layer", "normalization"];
const STOCHASTIC_KEYS: &[&str] = &[
    "type",
    "mixers",
    "main_mixer_name",
    "sampling_strategy",
    "sampling_weights",
];

/// Largest window / derived width accepted; keeps every shape product within `usize`.
const MAX_WIDTH: usize = 1 << 32;

/// Hints for type names older upstream revisions used.
fn legacy_hint(t: &str) -> &'static str {
    match t {
        "gated_delta_net" => " (an older upstream name: write `gdn`)",
        "kimi_linear_attention" => " (an older upstream name: write `kda`)",
        "sliding_window" => " (sliding-window attention is `type: attention` with `window_size`)",
        _ => "",
    }
}

/// A product of sizes (a projection width), bounded so shapes never overflow.
fn width(f: &Field<'_>, what: &str, parts: &[usize]) -> Result<usize, SpecError> {
    parts
        .iter()
        .try_fold(1usize, |acc, &p| acc.checked_mul(p))
        .filter(|w| *w <= MAX_WIDTH)
        .ok_or_else(|| {
            f.err(
                ErrorKind::InvalidValue,
                format!("{what} is larger than any supported width ({MAX_WIDTH})"),
            )
        })
}

/// Resolve one mixer. `nested` is true for a sub-mixer of a stochastic mixer (which may not be
/// stochastic itself).
pub(crate) fn resolve(f: &Field<'_>, hidden: usize, nested: bool) -> Result<MixerSpec, SpecError> {
    let o = f.obj()?;
    let kind = match o.get("type") {
        None => "attention",
        Some(t) => {
            let s = t.str()?;
            match MIXER_TYPES.iter().find(|v| **v == s) {
                Some(v) => *v,
                None => {
                    return Err(t.err(
                        ErrorKind::InvalidValue,
                        format!(
                            "unknown mixer type `{s}`{}{}; valid: {}",
                            legacy_hint(s),
                            did_you_mean(s, MIXER_TYPES),
                            list(MIXER_TYPES)
                        ),
                    ))
                }
            }
        }
    };
    match kind {
        "attention" => attention(&o).map(MixerSpec::Attention),
        "mamba" => mamba(&o, hidden).map(MixerSpec::Mamba),
        "gdn" => gdn(&o).map(MixerSpec::Gdn),
        "kda" => kda(&o).map(MixerSpec::Kda),
        _ if nested => {
            let msg = "a stochastic mixer cannot hold another stochastic mixer; list the leaf mixers directly";
            Err(match o.get("type") {
                Some(t) => t.err(ErrorKind::InvalidValue, msg),
                None => f.err(ErrorKind::InvalidValue, msg),
            })
        }
        _ => stochastic(&o, hidden).map(MixerSpec::Stochastic),
    }
}

/// `query_layer: {bias: {enabled: B}}` (and key/value/dense); `None` inherits `add_linear_biases`.
fn layer_bias(o: &Obj<'_>, key: &str) -> Result<Option<bool>, SpecError> {
    let Some(layer) = o.opt_obj(key)? else {
        return Ok(None);
    };
    layer.check_keys(&["bias"], false)?;
    let Some(bias) = layer.opt_obj("bias")? else {
        return Ok(None);
    };
    bias.check_keys(&["enabled"], false)?;
    bias.opt_bool("enabled")
}

fn attention(o: &Obj<'_>) -> Result<AttentionSpec, SpecError> {
    o.check_keys(ATTENTION_KEYS, true)?;
    let heads = o.req_size("heads", "the number of query heads")?;
    let head_groups = o.size_or("head_groups", heads, "the number of key/value heads")?;
    if !heads.is_multiple_of(head_groups) {
        let f = o.get("head_groups");
        let msg = format!(
            "heads ({heads}) must be a multiple of head_groups ({head_groups}): each key/value head serves heads/head_groups query heads"
        );
        return Err(match f {
            Some(f) => f.err(ErrorKind::Constraint, msg),
            None => o.err("head_groups", ErrorKind::Constraint, msg),
        });
    }
    let hs = o.req("head_size", "the per-head dimension, an even integer > 0")?;
    let head_size = hs.size("per-head dimension")?;
    if !head_size.is_multiple_of(2) {
        return Err(hs.err(
            ErrorKind::Constraint,
            format!("head_size must be even for rotate-half RoPE, found {head_size}"),
        ));
    }
    if let Some(f) = o.get("head_size") {
        width(&f, "heads × head_size", &[heads, head_size])?;
    }
    let causal = o.bool_or("causal", true)?;
    let window_size = o
        .get("window_size")
        .map(|f| f.size_max("sliding window in tokens", MAX_WIDTH))
        .transpose()?;
    // Accepted for compatibility; a single unpacked sequence per batch row makes it moot.
    o.bool_or("cross_document_attention", true)?;
    let default_bias = o.bool_or("add_linear_biases", false)?;
    let bias = AttentionBiases {
        q: layer_bias(o, "query_layer")?.unwrap_or(default_bias),
        k: layer_bias(o, "key_layer")?.unwrap_or(default_bias),
        v: layer_bias(o, "value_layer")?.unwrap_or(default_bias),
        o: layer_bias(o, "dense_layer")?.unwrap_or(default_bias),
    };
    let rotary = rotary(o)?;
    Ok(AttentionSpec {
        heads,
        head_groups,
        head_size,
        causal,
        window_size,
        bias,
        rotary,
    })
}

const ROTARY_TYPES: &[&str] = &["mistral_1d", "pixtral_2d", "llama3", "yarn", "default"];

fn rotary(o: &Obj<'_>) -> Result<RotarySpec, SpecError> {
    let f = o.req("rotary", "the rotary embedding, `{type: mistral_1d, theta: ...}`")?;
    let r = f.obj()?;
    let t = r.req("type", "the rotary type (`mistral_1d`)")?;
    let name = t.str()?;
    match name {
        "mistral_1d" => {}
        "pixtral_2d" => {
            return Err(t.err(
                ErrorKind::Unsupported,
                "rotary type `pixtral_2d` is the vision encoder's 2-D RoPE; a text decoder uses `mistral_1d`",
            ))
        }
        "llama3" | "yarn" | "default" => {
            return Err(t.err(
                ErrorKind::Unsupported,
                format!(
                    "rotary type `{name}` is not supported (the HF Apriel2 modeling rejects it too); modelc supports `mistral_1d`"
                ),
            ))
        }
        other => {
            return Err(t.err(
                ErrorKind::InvalidValue,
                format!(
                    "unknown rotary type `{other}`{}; modelc supports `mistral_1d` (known but unsupported: `pixtral_2d`, `llama3`, `yarn`, `default`)",
                    did_you_mean(other, ROTARY_TYPES)
                ),
            ))
        }
    }
    r.check_keys(&["type", "theta"], false)?;
    let theta = r.req("theta", "the RoPE base θ, a number > 1")?.rope_theta()?;
    Ok(RotarySpec { theta })
}

fn mamba(o: &Obj<'_>, hidden: usize) -> Result<MambaSpec, SpecError> {
    o.check_keys(MAMBA_KEYS, true)?;
    let state_size = match (o.get("state_size"), o.get("d_state")) {
        (Some(s), Some(d)) => {
            let a = s.size("state size N")?;
            let b = d.size("state size N")?;
            if a != b {
                return Err(d.err(
                    ErrorKind::Constraint,
                    format!("d_state ({b}) and state_size ({a}) name the same thing and disagree; keep one"),
                ));
            }
            a
        }
        (Some(f), None) | (None, Some(f)) => f.size("state size N")?,
        (None, None) => 16,
    };
    let expand = o.size_or("expand", 2, "expansion factor for d_inner")?;
    let d_inner = match o.get("d_inner") {
        Some(f) => f.size("inner channels")?,
        None => {
            let at = o.get("expand");
            match expand.checked_mul(hidden).filter(|w| *w <= MAX_WIDTH) {
                Some(w) => w,
                None => {
                    let msg = format!("expand × hidden_size is larger than any supported width ({MAX_WIDTH})");
                    return Err(match at {
                        Some(f) => f.err(ErrorKind::InvalidValue, msg),
                        None => o.err("expand", ErrorKind::InvalidValue, msg),
                    });
                }
            }
        }
    };
    let d_xb = o.size_or("d_xb", hidden, "x/B channels")?;
    let d_conv = o.size_or("d_conv", 4, "conv kernel width")?;
    let dt_rank = match o.get("dt_rank") {
        None => hidden.div_ceil(16),
        Some(f) => match &f.node.value {
            super::doc::Value::Str(s) if s == "auto" => hidden.div_ceil(16),
            super::doc::Value::Int(_) => f.size("rank of the dt projection")?,
            _ => {
                return Err(f.err(
                    ErrorKind::WrongType,
                    format!(
                        "expected an integer > 0 or \"auto\" (= ceil(hidden_size/16)), found {}",
                        f.node.value.describe()
                    ),
                ))
            }
        },
    };
    let dt_min = o.positive_f64_or("dt_min", 0.001, "smallest initial Δ")?;
    let dt_max = o.positive_f64_or("dt_max", 0.1, "largest initial Δ")?;
    if dt_min > dt_max {
        let msg = format!("dt_min ({dt_min}) must not exceed dt_max ({dt_max})");
        return Err(match o.get("dt_min") {
            Some(f) => f.err(ErrorKind::Constraint, msg),
            None => o.err("dt_min", ErrorKind::Constraint, msg),
        });
    }
    if let Some(f) = o.get("dt_init") {
        f.one_of("dt_init mode", &["random", "constant"])?;
    }
    let dt_scale = o.positive_f64_or("dt_scale", 1.0, "Δ init scale")?;
    let dt_init_floor = o.positive_f64_or("dt_init_floor", 1e-4, "Δ init floor")?;
    let repeat_kv_before_conv = o.bool_or("repeat_kv_before_conv", true)?;
    let conv_bias = o.req_bool("conv_bias", "whether conv1d has a bias")?;
    let dt_proj_bias = o.req_bool("dt_proj_bias", "whether dt_proj has a bias")?;
    let add_linear_biases = o.bool_or("add_linear_biases", false)?;

    // Grouped x/B: d_inner and d_xb are whole numbers of N-channel heads, and the x/B groups
    // divide the heads evenly (reference §2.6).
    let n_key = if o.has("state_size") { "state_size" } else { "d_state" };
    let blame = |key: &str, msg: String| match o.get(key) {
        Some(f) => f.err(ErrorKind::Constraint, msg),
        None => o.err(key, ErrorKind::Constraint, msg),
    };
    if !d_inner.is_multiple_of(state_size) {
        return Err(blame(
            "d_inner",
            format!("d_inner ({d_inner}) must be a multiple of {n_key} ({state_size}): channels form heads of N"),
        ));
    }
    if !d_xb.is_multiple_of(state_size) {
        return Err(blame(
            "d_xb",
            format!("d_xb ({d_xb}) must be a multiple of {n_key} ({state_size}): x/B channels form groups of N"),
        ));
    }
    let (heads, groups) = (d_inner / state_size, d_xb / state_size);
    if !heads.is_multiple_of(groups) {
        return Err(blame(
            "d_xb",
            format!(
                "the {heads} heads (d_inner/N) must be a multiple of the {groups} x/B groups (d_xb/N) so each group serves the same number of heads"
            ),
        ));
    }
    Ok(MambaSpec {
        state_size,
        d_inner,
        d_xb,
        d_conv,
        dt_rank,
        repeat_kv_before_conv,
        conv_bias,
        dt_proj_bias,
        add_linear_biases,
        dt_min,
        dt_max,
        dt_init_floor,
        dt_scale,
    })
}

/// `convolution_layer: {kernel_size, activation}`.
fn conv_layer<'a>(o: &Obj<'a>, required: bool) -> Result<(usize, Activation, Option<Field<'a>>), SpecError> {
    let c = if required {
        Some(
            o.req("convolution_layer", "`{kernel_size: K}` of the short causal conv")?
                .obj()?,
        )
    } else {
        o.opt_obj("convolution_layer")?
    };
    let Some(c) = c else {
        return Ok((4, Activation::Silu, None));
    };
    c.check_keys(&["kernel_size", "activation"], false)?;
    let k = if required {
        c.req_size("kernel_size", "conv kernel width")?
    } else {
        c.size_or("kernel_size", 4, "conv kernel width")?
    };
    let act_field = c.get("activation");
    let act = match &act_field {
        None => Activation::Silu,
        Some(f) => activation(f)?,
    };
    Ok((k, act, act_field))
}

/// An HF `ACT2FN` name.
pub(crate) fn activation(f: &Field<'_>) -> Result<Activation, SpecError> {
    let name = f.one_of("activation", ACTIVATION_NAMES)?;
    Activation::from_hf_name(name).ok_or_else(|| f.err(ErrorKind::InvalidValue, "unknown activation"))
}

fn gdn(o: &Obj<'_>) -> Result<GdnSpec, SpecError> {
    o.check_keys(GDN_KEYS, true)?;
    let value_heads = o.size_or("value_heads", 32, "value heads")?;
    let key_heads = o.size_or("key_heads", 8, "key heads")?;
    let key_head_dim = o.size_or("key_head_dim", 64, "key head dimension")?;
    let value_head_dim = o.size_or("value_head_dim", 64, "value head dimension")?;
    if !value_heads.is_multiple_of(key_heads) {
        let msg = format!(
            "value_heads ({value_heads}) must be a multiple of key_heads ({key_heads}): each key head serves value_heads/key_heads value heads"
        );
        return Err(match o.get("value_heads").or_else(|| o.get("key_heads")) {
            Some(f) => f.err(ErrorKind::Constraint, msg),
            None => o.err("value_heads", ErrorKind::Constraint, msg),
        });
    }
    if let Some(f) = o.get("value_heads").or_else(|| o.get("key_heads")) {
        width(&f, "key_heads × key_head_dim", &[key_heads, key_head_dim])?;
        width(&f, "value_heads × value_head_dim", &[value_heads, value_head_dim])?;
    }
    let (conv_kernel_size, conv_activation, _) = conv_layer(o, true)?;
    let norm_eps = o.norm_epsilon_or("norm_eps", 1e-5, "output norm epsilon")?;
    Ok(GdnSpec {
        value_heads,
        key_heads,
        key_head_dim,
        value_head_dim,
        conv_kernel_size,
        conv_activation,
        norm_eps,
    })
}

fn kda(o: &Obj<'_>) -> Result<KdaSpec, SpecError> {
    o.check_keys(KDA_KEYS, true)?;
    let heads = o.size_or("heads", 32, "heads")?;
    let head_dim = o.size_or("head_dim", 64, "head dimension")?;
    if let Some(f) = o.get("heads").or_else(|| o.get("head_dim")) {
        width(&f, "heads × head_dim", &[heads, head_dim])?;
    }
    let (conv_kernel_size, act, act_field) = conv_layer(o, false)?;
    if act != Activation::Silu {
        if let Some(f) = act_field {
            return Err(f.err(
                ErrorKind::Unsupported,
                "KDA's q/k/v convolutions always apply SiLU; `activation` may only be `silu` here",
            ));
        }
    }
    let (norm_eps, norm_activation) = match o.opt_obj("normalization")? {
        None => (1e-5, GateActivation::Silu),
        Some(n) => {
            n.check_keys(&["epsilon", "activation"], false)?;
            let eps = n.norm_epsilon_or("epsilon", 1e-5, "gated norm epsilon")?;
            let act = match n.get("activation") {
                None => GateActivation::Silu,
                Some(f) => {
                    let name = f.one_of("gate activation", &["silu", "sigmoid"])?;
                    GateActivation::from_name(name).unwrap_or(GateActivation::Silu)
                }
            };
            (eps, act)
        }
    };
    Ok(KdaSpec {
        heads,
        head_dim,
        conv_kernel_size,
        norm_eps,
        norm_activation,
    })
}

/// Sub-mixer names become checkpoint key segments (`mixer.mixers.<name>.q_proj.weight`).
fn valid_segment(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn stochastic(o: &Obj<'_>, hidden: usize) -> Result<StochasticSpec, SpecError> {
    o.check_keys(STOCHASTIC_KEYS, true)?;
    let mf = o.req("mixers", "the sub-mixers, a mapping name → mixer")?;
    let m = mf.obj()?;
    if m.entries.is_empty() {
        return Err(mf.err(
            ErrorKind::InvalidValue,
            "a stochastic mixer needs at least one sub-mixer",
        ));
    }
    let mut mixers = Vec::with_capacity(m.entries.len());
    for (k, _) in m.entries {
        let Some(f) = m.raw(&k.name) else { continue };
        if !valid_segment(&k.name) {
            return Err(f.err_at_key(
                ErrorKind::InvalidValue,
                format!(
                    "sub-mixer name `{}` must be letters, digits, `_` or `-` (it becomes part of checkpoint keys)",
                    k.name
                ),
            ));
        }
        mixers.push((k.name.clone(), resolve(&f, hidden, true)?));
    }
    let names: Vec<&str> = mixers.iter().map(|(n, _)| n.as_str()).collect();
    let main_mixer_name = match o.get("main_mixer_name") {
        None => names.first().map(|s| s.to_string()).unwrap_or_default(),
        Some(f) => {
            let s = f.str()?;
            if !names.contains(&s) {
                return Err(f.err(
                    ErrorKind::InvalidValue,
                    format!(
                        "main_mixer_name `{s}` is not among the mixers{}; defined: {}",
                        did_you_mean(s, &names),
                        list(&names)
                    ),
                ));
            }
            s.to_string()
        }
    };
    let strategy = match o.get("sampling_strategy") {
        None => "uniform",
        Some(f) => {
            if f.str()? == "full_layout" {
                return Err(f.err(
                    ErrorKind::Unsupported,
                    "sampling strategy `full_layout` is Fast-LLM training only (not in the HF model); use `uniform` or `weighted`",
                ));
            }
            f.one_of("sampling strategy", &["uniform", "weighted"])?
        }
    };
    let weights_field = o.get("sampling_weights");
    let sampling = if strategy == "uniform" {
        if let Some(f) = weights_field {
            return Err(f.err_at_key(
                ErrorKind::InvalidValue,
                "sampling_weights are only read with `sampling_strategy: weighted`",
            ));
        }
        SamplingStrategy::Uniform
    } else {
        let mut weights: Vec<(String, f64)> = names.iter().map(|n| (n.to_string(), 1.0)).collect();
        if let Some(f) = &weights_field {
            let w = f.obj()?;
            for (k, _) in w.entries {
                let Some(wf) = w.raw(&k.name) else { continue };
                let Some(slot) = weights.iter_mut().find(|(n, _)| *n == k.name) else {
                    return Err(wf.err_at_key(
                        ErrorKind::InvalidValue,
                        format!(
                            "sampling weight for `{}`, which is not among the mixers{}; defined: {}",
                            k.name,
                            did_you_mean(&k.name, &names),
                            list(&names)
                        ),
                    ));
                };
                slot.1 = wf.nonneg_f64("sampling weight")?;
            }
        }
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            let msg = "sampling weights sum to 0; at least one sub-mixer needs a positive weight";
            return Err(match weights_field {
                Some(f) => f.err(ErrorKind::InvalidValue, msg),
                None => o.err("sampling_weights", ErrorKind::InvalidValue, msg),
            });
        }
        // Weights already normalised (within rounding) stay as written, so normalising is
        // idempotent and a written-back config reads back identically.
        let tol = 4.0 * f64::EPSILON * weights.len() as f64;
        if (total - 1.0).abs() > tol {
            for (_, w) in &mut weights {
                *w /= total;
            }
        }
        SamplingStrategy::Weighted(weights)
    };
    Ok(StochasticSpec {
        mixers,
        main_mixer_name,
        sampling,
    })
}
