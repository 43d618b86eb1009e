//! Config algebra (reference §4.1): composing Apriel2 configs and partial surgery configs.
//!
//! Three kinds of JSON objects: a *complete* config S (has `hidden_size` and `decoder`, no
//! `init`), a *partial* surgery P (may carry `init: transfer | random` on mixers, sub-mixers,
//! `mlp` and `normalization`), and a *target* T (a complete config still carrying `init`, which
//! the planner reads). [`compose_configs`] dispatches on completeness: S×P→T ([`apply_surgery`]),
//! P×P→P (deep merge), P×S→S (overlay wins), S×S→S (deep merge, `init` stripped).
//!
//! Differences from upstream, all deliberate (documented in `docs/surgery.md`):
//! * P×P keeps `null` as a tombstone instead of dropping it, so a deletion in a later surgery
//!   survives composition and `(s·p1)·p2 = s·(p1∘p2)` holds for deletions too.
//! * Cross-type derivation keeps every key the surgery gives (upstream keeps a fixed list and
//!   silently drops the rest, e.g. `add_linear_biases` on a new Mamba).
//! * Mamba's `d_state` is an alias of `state_size`; results always say `state_size`.
//! * `head` and `embeddings` are deep-merged; any other unknown top-level key is an error
//!   (upstream ignores it silently). `null` where a block, mixer, mlp or decoder must be is an
//!   error instead of a crash.

use serde_json::{Map, Value};

use super::error::SurgeryError;

/// Top-level keys a surgery may set by plain replacement.
const TOP_SCALARS: &[&str] = &[
    "model_type",
    "architectures",
    "hidden_size",
    "vocab_size",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "use_cache",
    "tie_word_embeddings",
    "image_token_index",
];
/// Top-level keys a surgery deep-merges.
const TOP_MERGED: &[&str] = &["vision_encoder", "head", "embeddings"];
/// Attention keys carried across attention ↔ sliding-window type changes.
const ATTENTION_CARRIED: &[&str] = &[
    "window_size",
    "rope_theta",
    "rope_scaling",
    "rotary",
    "query_layer",
    "key_layer",
    "value_layer",
    "dense_layer",
    "add_linear_biases",
];
/// Keys that name the same setting; the last one written wins.
const ALIASES: &[(&str, &str)] = &[("d_state", "state_size")];

/// Whether `config` is a complete model config (has `hidden_size` and `decoder`).
pub fn is_complete(config: &Value) -> bool {
    config
        .as_object()
        .is_some_and(|m| m.contains_key("hidden_size") && m.contains_key("decoder"))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Composes two configs (see the module doc for the four cases). `{}` is the identity on both
/// sides.
pub fn compose_configs(base: &Value, overlay: &Value) -> Result<Value, SurgeryError> {
    compose_configs_in(base, overlay, "surgery")
}

pub(crate) fn compose_configs_in(base: &Value, overlay: &Value, origin: &str) -> Result<Value, SurgeryError> {
    if is_empty(overlay) {
        return Ok(base.clone());
    }
    if is_empty(base) {
        return Ok(overlay.clone());
    }
    let b = as_object(base, origin, "")?;
    let o = as_object(overlay, origin, "")?;
    match (is_complete(base), is_complete(overlay)) {
        (true, false) => apply_surgery_in(base, overlay, origin),
        (false, false) => Ok(Value::Object(merge_partial(b, o))),
        (false, true) => Ok(overlay.clone()),
        (true, true) => {
            let merged = merge_complete(b, o);
            finalize_in(&Value::Object(merged), origin)
        }
    }
}

/// Removes every `init` key, at any depth.
pub fn strip_init(config: &Value) -> Value {
    match config {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "init")
                .map(|(k, v)| (k.clone(), strip_init(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_init).collect()),
        other => other.clone(),
    }
}

/// T → S: strips `init` and writes Mamba's state size as `state_size` everywhere.
pub fn finalize(config: &Value) -> Result<Value, SurgeryError> {
    finalize_in(config, "config")
}

fn finalize_in(config: &Value, origin: &str) -> Result<Value, SurgeryError> {
    let mut out = strip_init(config);
    if let Some(decoder) = out.get_mut("decoder").and_then(Value::as_object_mut) {
        if let Some(block) = decoder.get_mut("block") {
            normalize_block(block, origin, "decoder.block")?;
        }
        if let Some(blocks) = decoder.get_mut("blocks").and_then(Value::as_object_mut) {
            for (name, block) in blocks.iter_mut() {
                normalize_block(block, origin, &format!("decoder.blocks.{name}"))?;
            }
        }
    }
    Ok(out)
}

fn normalize_block(block: &mut Value, origin: &str, path: &str) -> Result<(), SurgeryError> {
    let Some(mixer) = block.get_mut("mixer").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let path = format!("{path}.mixer");
    if mixer.get("type").and_then(Value::as_str) == Some("mamba") {
        normalize_mamba(mixer, origin, &path)?;
    }
    if let Some(subs) = mixer.get_mut("mixers").and_then(Value::as_object_mut) {
        for (name, sub) in subs.iter_mut() {
            if let Some(sub) = sub.as_object_mut() {
                if sub.get("type").and_then(Value::as_str) == Some("mamba") {
                    normalize_mamba(sub, origin, &format!("{path}.mixers.{name}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Renames `d_state` to `state_size` (the key the HF modeling reads, reference §7.2.1).
fn normalize_mamba(mixer: &mut Map<String, Value>, origin: &str, path: &str) -> Result<(), SurgeryError> {
    if let Some(d_state) = mixer.shift_remove("d_state") {
        match mixer.get("state_size") {
            Some(s) if !s.is_null() && !d_state.is_null() && *s != d_state => {
                return Err(SurgeryError::config(
                    origin,
                    path,
                    format!(
                        "`d_state` ({d_state}) and `state_size` ({s}) disagree; they are the same \
                         setting, give only one"
                    ),
                ))
            }
            Some(_) => {}
            None => {
                mixer.insert("state_size".into(), d_state);
            }
        }
    }
    Ok(())
}

fn as_object<'a>(v: &'a Value, origin: &str, path: &str) -> Result<&'a Map<String, Value>, SurgeryError> {
    v.as_object()
        .ok_or_else(|| SurgeryError::config(origin, path, format!("expected a mapping, found {}", describe(v))))
}

/// An optional sub-mapping of a surgery: absent is `None`; `null` or a non-mapping is an error.
fn opt_object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    origin: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, SurgeryError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(Value::Null) => Err(SurgeryError::config(
            origin,
            &join(path, key),
            "`null` is not allowed here: this part of a model cannot be deleted",
        )),
        Some(other) => Err(SurgeryError::config(
            origin,
            &join(path, key),
            format!("expected a mapping, found {}", describe(other)),
        )),
    }
}

/// An optional string of a surgery; `null` or a non-string is an error.
fn opt_str<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    origin: &str,
    path: &str,
) -> Result<Option<&'a str>, SurgeryError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(SurgeryError::config(
            origin,
            &join(path, key),
            format!("expected a string, found {}", describe(other)),
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn alias_of(key: &str) -> Option<&'static str> {
    ALIASES.iter().find_map(|&(a, b)| {
        if key == a {
            Some(b)
        } else if key == b {
            Some(a)
        } else {
            None
        }
    })
}

/// P×P: overlay wins; `null` stays as a tombstone so the deletion reaches the config later.
fn merge_partial(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
    let mut result = base.clone();
    for (key, value) in overlay {
        if let Some(alias) = alias_of(key) {
            result.shift_remove(alias);
        }
        match (result.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => {
                let merged = merge_partial(b, o);
                *b = merged;
            }
            _ => {
                result.insert(key.clone(), value.clone());
            }
        }
    }
    result
}

/// Merge into a complete config: overlay wins, `null` deletes, and nulls with nothing to delete
/// vanish (a complete config holds no nulls that came from a surgery).
fn merge_complete(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
    let mut result = base.clone();
    for (key, value) in overlay {
        if let Some(alias) = alias_of(key) {
            result.shift_remove(alias);
        }
        if value.is_null() {
            result.shift_remove(key);
            continue;
        }
        match (result.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => {
                let merged = merge_complete(b, o);
                *b = merged;
            }
            _ => {
                result.insert(key.clone(), drop_nulls(value));
            }
        }
    }
    result
}

fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// S×P→T: applies a partial surgery to a complete config. `init` fields stay in the result for
/// the planner; [`finalize`] removes them.
pub fn apply_surgery(source: &Value, surgery: &Value) -> Result<Value, SurgeryError> {
    apply_surgery_in(source, surgery, "surgery")
}

pub(crate) fn apply_surgery_in(source: &Value, surgery: &Value, origin: &str) -> Result<Value, SurgeryError> {
    let src = as_object(source, "source config", "")?;
    if is_empty(surgery) {
        return Ok(source.clone());
    }
    let surg = as_object(surgery, origin, "")?;
    check_init_fields(surgery, origin)?;
    let mut result = src.clone();
    let mut hidden = src.get("hidden_size").and_then(Value::as_u64).unwrap_or(0);
    for (key, value) in surg {
        let key = key.as_str();
        if TOP_SCALARS.contains(&key) {
            result.insert(key.to_string(), value.clone());
            if key == "hidden_size" {
                hidden = value.as_u64().unwrap_or(0);
            }
        } else if TOP_MERGED.contains(&key) {
            match value {
                Value::Null => {
                    result.shift_remove(key);
                }
                Value::Object(o) => {
                    let base = result.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
                    result.insert(key.to_string(), Value::Object(merge_complete(&base, o)));
                }
                other => {
                    return Err(SurgeryError::config(
                        origin,
                        key,
                        format!("expected a mapping or null, found {}", describe(other)),
                    ))
                }
            }
        } else if key != "decoder" {
            return Err(SurgeryError::config(
                origin,
                key,
                format!(
                    "a surgery cannot set `{key}`; top-level keys it may set are {}, {} and decoder",
                    TOP_SCALARS.join(", "),
                    TOP_MERGED.join(", ")
                ),
            ));
        }
    }
    if let Some(dec) = opt_object(surg, "decoder", origin, "")? {
        let src_dec = src
            .get("decoder")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let composed = compose_decoder(&src_dec, dec, hidden, origin)?;
        result.insert("decoder".into(), Value::Object(composed));
    }
    Ok(Value::Object(result))
}

fn compose_decoder(
    src: &Map<String, Value>,
    surg: &Map<String, Value>,
    hidden: u64,
    origin: &str,
) -> Result<Map<String, Value>, SurgeryError> {
    const PATH: &str = "decoder";
    for key in surg.keys() {
        if !["type", "num_blocks", "block", "pattern", "blocks"].contains(&key.as_str()) {
            return Err(SurgeryError::config(
                origin,
                &join(PATH, key),
                "unknown decoder key (expected type, num_blocks, block, pattern, blocks)",
            ));
        }
    }
    let src_type = src.get("type").and_then(Value::as_str).unwrap_or("fixed");
    let ty = opt_str(surg, "type", origin, PATH)?.unwrap_or(src_type);
    if ty != "fixed" && ty != "pattern" {
        return Err(SurgeryError::config(
            origin,
            &join(PATH, "type"),
            format!("unknown decoder type `{ty}` (expected fixed or pattern)"),
        ));
    }
    check_decoder_keys_apply(surg, ty, src_type, origin)?;
    let mut result = Map::new();
    result.insert("type".into(), Value::String(ty.to_string()));
    match surg.get("num_blocks") {
        Some(Value::Null) => {
            return Err(SurgeryError::config(
                origin,
                "decoder.num_blocks",
                "`null` is not allowed here: give the number of blocks",
            ))
        }
        Some(n) => {
            result.insert("num_blocks".into(), n.clone());
        }
        None => {
            if let Some(n) = src.get("num_blocks") {
                result.insert("num_blocks".into(), n.clone());
            }
        }
    }

    let empty = Map::new();
    let src_blocks = src.get("blocks").and_then(Value::as_object);
    let default_block: &Map<String, Value> = if src_type == "fixed" {
        src.get("block").and_then(Value::as_object).unwrap_or(&empty)
    } else {
        let first = src
            .get("pattern")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .and_then(Value::as_str);
        first
            .and_then(|f| src_blocks.and_then(|b| b.get(f)))
            .or_else(|| src_blocks.and_then(|b| b.values().next()))
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    };

    if ty == "fixed" {
        let sb = opt_object(surg, "block", origin, PATH)?.unwrap_or(&empty);
        let block = compose_block(default_block, sb, hidden, origin, "decoder.block")?;
        result.insert("block".into(), Value::Object(block));
    } else {
        let pattern = match surg.get("pattern") {
            Some(p @ Value::Array(_)) => p.clone(),
            Some(other) => {
                return Err(SurgeryError::config(
                    origin,
                    "decoder.pattern",
                    format!("expected a list of block names, found {}", describe(other)),
                ))
            }
            None => src.get("pattern").cloned().unwrap_or(Value::Array(Vec::new())),
        };
        result.insert("pattern".into(), pattern);
        let surg_blocks = opt_object(surg, "blocks", origin, PATH)?.unwrap_or(&empty);
        let mut blocks = Map::new();
        let mut deleted = Vec::new();
        for (name, sb) in surg_blocks {
            let path = format!("decoder.blocks.{name}");
            match sb {
                Value::Null => deleted.push(name.as_str()),
                Value::Object(sb) => {
                    let base = src_blocks
                        .and_then(|b| b.get(name))
                        .and_then(Value::as_object)
                        .unwrap_or(default_block);
                    blocks.insert(
                        name.clone(),
                        Value::Object(compose_block(base, sb, hidden, origin, &path)?),
                    );
                }
                other => {
                    return Err(SurgeryError::config(
                        origin,
                        &path,
                        format!("expected a block mapping or null, found {}", describe(other)),
                    ))
                }
            }
        }
        if let Some(src_blocks) = src_blocks {
            for (name, block) in src_blocks {
                if !blocks.contains_key(name) && !deleted.contains(&name.as_str()) {
                    blocks.insert(name.clone(), block.clone());
                }
            }
        }
        result.insert("blocks".into(), Value::Object(blocks));
    }
    Ok(result)
}

/// A decoder key the resulting decoder type would ignore is an error, not a silent no-op:
/// `blocks` or `pattern` on a fixed decoder, `block` on a pattern decoder.
fn check_decoder_keys_apply(
    surg: &Map<String, Value>,
    ty: &str,
    src_type: &str,
    origin: &str,
) -> Result<(), SurgeryError> {
    let (ignored, wanted): (&[&str], &str) = if ty == "fixed" {
        (&["blocks", "pattern"], "block")
    } else {
        (&["block"], "blocks")
    };
    let Some(key) = ignored.iter().find(|k| surg.contains_key(**k)) else {
        return Ok(());
    };
    let why = if surg.contains_key("type") {
        format!("this surgery sets `decoder.type: {ty}`")
    } else {
        format!("the source decoder is `type: {src_type}` and this surgery does not change it")
    };
    let fix = if ty == "fixed" {
        "give `type: pattern` (with `pattern` and `blocks`) to make a pattern decoder, or set the one block under `block`"
    } else {
        "set the named blocks under `blocks` (the blocks `pattern` lists)"
    };
    Err(SurgeryError::config(
        origin,
        &join("decoder", key),
        format!("`{key}` does not apply to a {ty} decoder ({why}), which uses `{wanted}`; {fix}"),
    ))
}

fn compose_block(
    src: &Map<String, Value>,
    surg: &Map<String, Value>,
    hidden: u64,
    origin: &str,
    path: &str,
) -> Result<Map<String, Value>, SurgeryError> {
    for key in surg.keys() {
        if !["mixer", "mlp", "normalization"].contains(&key.as_str()) {
            return Err(SurgeryError::config(
                origin,
                &join(path, key),
                "unknown block key (expected mixer, mlp, normalization)",
            ));
        }
    }
    let empty = Map::new();
    let part = |key: &str| src.get(key).and_then(Value::as_object).unwrap_or(&empty);
    let mut result = Map::new();
    let sm = opt_object(surg, "mixer", origin, path)?.unwrap_or(&empty);
    let mixer = compose_mixer(part("mixer"), sm, hidden, origin, &join(path, "mixer"))?;
    result.insert("mixer".into(), Value::Object(mixer));
    for key in ["mlp", "normalization"] {
        let s = opt_object(surg, key, origin, path)?.unwrap_or(&empty);
        result.insert(key.into(), Value::Object(merge_complete(part(key), s)));
    }
    Ok(result)
}

fn compose_mixer(
    src: &Map<String, Value>,
    surg: &Map<String, Value>,
    hidden: u64,
    origin: &str,
    path: &str,
) -> Result<Map<String, Value>, SurgeryError> {
    let src_type = src.get("type").and_then(Value::as_str).unwrap_or("attention");
    let src_stochastic = src_type == "stochastic";
    let empty = Map::new();
    let src_mixers = if src_stochastic {
        src.get("mixers").and_then(Value::as_object).unwrap_or(&empty)
    } else {
        &empty
    };
    let src_main = if src_stochastic {
        src.get("main_mixer_name").and_then(Value::as_str)
    } else {
        None
    };
    // The base of inheritance: the main sub-mixer of a stochastic source.
    let src_base = if src_stochastic {
        src_mixers
            .get(src_main.unwrap_or("attention"))
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    } else {
        src
    };
    let declared = opt_str(surg, "type", origin, path)?;
    let ty = declared.unwrap_or(src_type);
    if ty != "stochastic" {
        return compose_single_mixer(src_base, surg, hidden, origin, path);
    }

    for key in surg.keys() {
        if ![
            "type",
            "main_mixer_name",
            "sampling_strategy",
            "sampling_weights",
            "mixers",
        ]
        .contains(&key.as_str())
        {
            return Err(SurgeryError::config(
                origin,
                &join(path, key),
                "unknown stochastic mixer key (expected type, main_mixer_name, \
                 sampling_strategy, sampling_weights, mixers; `init` belongs on each sub-mixer)",
            ));
        }
    }
    let mut result = Map::new();
    result.insert("type".into(), Value::String("stochastic".into()));
    let main = opt_str(surg, "main_mixer_name", origin, path)?
        .or(src_main)
        .unwrap_or("attention");
    result.insert("main_mixer_name".into(), Value::String(main.to_string()));
    for key in ["sampling_strategy", "sampling_weights"] {
        if let Some(v) = surg.get(key).filter(|v| !v.is_null()) {
            result.insert(key.into(), v.clone());
        } else if surg.get(key).is_none() && src_stochastic {
            if let Some(v) = src.get(key) {
                result.insert(key.into(), v.clone());
            }
        }
    }
    let surg_mixers = opt_object(surg, "mixers", origin, path)?.unwrap_or(&empty);
    let mut mixers = Map::new();
    // Replacement (the surgery says `type: stochastic`): only the surgery's sub-mixers exist.
    // Additive (it does not): the source's sub-mixers stay unless deleted with null.
    if declared.is_none() {
        for (name, m) in src_mixers {
            mixers.insert(name.clone(), m.clone());
        }
    }
    for (name, sub) in surg_mixers {
        let sub_path = format!("{path}.mixers.{name}");
        match sub {
            Value::Null => {
                mixers.shift_remove(name);
            }
            Value::Object(sub) => {
                let base = src_mixers.get(name).and_then(Value::as_object).unwrap_or(src_base);
                let sub_type = sub
                    .get("type")
                    .and_then(Value::as_str)
                    .or_else(|| base.get("type").and_then(Value::as_str));
                if sub_type == Some("stochastic") {
                    return Err(SurgeryError::config(
                        origin,
                        &sub_path,
                        "a sub-mixer cannot itself be stochastic",
                    ));
                }
                let composed = compose_single_mixer(base, sub, hidden, origin, &sub_path)?;
                mixers.insert(name.clone(), Value::Object(composed));
            }
            other => {
                return Err(SurgeryError::config(
                    origin,
                    &sub_path,
                    format!("expected a mixer mapping or null, found {}", describe(other)),
                ))
            }
        }
    }
    result.insert("mixers".into(), Value::Object(mixers));
    Ok(result)
}

fn is_attention(ty: &str) -> bool {
    ty == "attention" || ty == "sliding_window"
}

fn compose_single_mixer(
    src: &Map<String, Value>,
    surg: &Map<String, Value>,
    hidden: u64,
    origin: &str,
    path: &str,
) -> Result<Map<String, Value>, SurgeryError> {
    let src_type = src.get("type").and_then(Value::as_str).unwrap_or("attention");
    let ty = opt_str(surg, "type", origin, path)?.unwrap_or(src_type);
    if surg.contains_key("mixers") {
        return Err(SurgeryError::config(
            origin,
            &join(path, "mixers"),
            format!("`mixers` belongs to a stochastic mixer, but this mixer is of type {ty}"),
        ));
    }
    let mut src = src.clone();
    let mut surg = surg.clone();
    if src_type == "mamba" {
        normalize_mamba(&mut src, "source config", path)?;
    }
    if ty == "mamba" {
        normalize_mamba(&mut surg, origin, path)?;
    }
    let mut result = if src_type == ty {
        merge_complete(&src, &surg)
    } else if is_attention(src_type) {
        let heads = src.get("heads").and_then(Value::as_u64);
        let head_groups = src.get("head_groups").and_then(Value::as_u64).or(heads);
        let head_size = src
            .get("head_size")
            .and_then(Value::as_u64)
            .or_else(|| heads.filter(|&h| h > 0).map(|h| hidden / h));
        let mut derived = Map::new();
        let mut put = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                derived.insert(k.to_string(), Value::from(v));
            }
        };
        match ty {
            t if is_attention(t) => {
                put("heads", heads);
                put("head_groups", head_groups);
                put("head_size", head_size);
                for key in ATTENTION_CARRIED {
                    if let Some(v) = src.get(*key) {
                        derived.insert((*key).to_string(), v.clone());
                    }
                }
            }
            "gdn" => {
                put("value_heads", heads);
                put("key_heads", head_groups);
                put("key_head_dim", head_size);
                put("value_head_dim", head_size);
            }
            "mamba" => {
                put("d_inner", Some(2 * hidden));
                put("d_xb", Some(hidden / 4));
                put("dt_rank", Some(hidden / 16));
            }
            "kda" => {
                put("heads", heads);
                put("head_dim", head_size);
            }
            _ => {}
        }
        merge_complete(&derived, &surg)
    } else {
        // No geometry to derive: the surgery's mixer as written.
        drop_nulls(&Value::Object(surg))
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    result.shift_remove("type");
    let mut typed = Map::new();
    typed.insert("type".into(), Value::String(ty.to_string()));
    typed.extend(result);
    Ok(typed)
}

/// Checks that `init` appears only on mixers, sub-mixers, `mlp` and `normalization`, with the
/// value `transfer` or `random`.
pub fn check_init_fields(surgery: &Value, origin: &str) -> Result<(), SurgeryError> {
    fn check_value(v: &Value, origin: &str, path: &str) -> Result<(), SurgeryError> {
        match v.as_str() {
            Some("transfer") | Some("random") => Ok(()),
            _ => Err(SurgeryError::config(
                origin,
                path,
                format!("`init` must be transfer or random, found {}", describe(v)),
            )),
        }
    }
    fn walk(v: &Value, origin: &str, path: &str, init_allowed: bool) -> Result<(), SurgeryError> {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let p = join(path, k);
                    if k == "init" {
                        if !init_allowed {
                            return Err(SurgeryError::config(
                                origin,
                                &p,
                                "`init` is allowed only on a mixer, a sub-mixer, an mlp or a \
                                 normalization",
                            ));
                        }
                        check_value(child, origin, &p)?;
                    } else {
                        walk(child, origin, &p, false)?;
                    }
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, origin, &format!("{path}[{i}]"), false)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    fn block(b: &Value, origin: &str, path: &str) -> Result<(), SurgeryError> {
        let Some(m) = b.as_object() else {
            return walk(b, origin, path, false);
        };
        for (k, v) in m {
            let p = join(path, k);
            match k.as_str() {
                "mlp" | "normalization" => walk(v, origin, &p, true)?,
                "mixer" => {
                    let stochastic =
                        v.get("type").and_then(Value::as_str) == Some("stochastic") || v.get("mixers").is_some();
                    if let (true, Some(mm)) = (stochastic, v.as_object()) {
                        for (mk, mv) in mm {
                            let mp = join(&p, mk);
                            if mk == "mixers" {
                                if let Some(subs) = mv.as_object() {
                                    for (name, sub) in subs {
                                        walk(sub, origin, &join(&mp, name), true)?;
                                    }
                                    continue;
                                }
                            }
                            if mk == "init" {
                                return Err(SurgeryError::config(
                                    origin,
                                    &mp,
                                    "`init` on a stochastic mixer has no meaning; put it on each \
                                     sub-mixer under `mixers`",
                                ));
                            }
                            walk(mv, origin, &mp, false)?;
                        }
                    } else {
                        walk(v, origin, &p, true)?;
                    }
                }
                _ => walk(v, origin, &p, false)?,
            }
        }
        Ok(())
    }
    let Some(top) = surgery.as_object() else {
        return Ok(());
    };
    for (k, v) in top {
        if k == "decoder" {
            let Some(dec) = v.as_object() else {
                continue;
            };
            for (dk, dv) in dec {
                let p = join("decoder", dk);
                match dk.as_str() {
                    "block" => block(dv, origin, &p)?,
                    "blocks" => {
                        if let Some(bs) = dv.as_object() {
                            for (name, b) in bs {
                                block(b, origin, &join(&p, name))?;
                            }
                        } else {
                            walk(dv, origin, &p, false)?;
                        }
                    }
                    _ => walk(dv, origin, &p, false)?,
                }
            }
        } else {
            walk(v, origin, k, false)?;
        }
    }
    Ok(())
}

/// One step of a surgery chain: the complete config before, and the target config (with `init`)
/// after.
#[derive(Debug, Clone, PartialEq)]
pub struct SurgeryStep {
    /// Name of the surgery (its file, or `surgery N`).
    pub origin: String,
    pub source: Value,
    pub target: Value,
}

/// Applies surgeries in sequence: `T = compose(S, P)`, then `S = finalize(T)` (so `init` only
/// acts in the surgery that writes it). Returns every step.
pub fn surgery_chain(source: &Value, surgeries: &[(String, Value)]) -> Result<Vec<SurgeryStep>, SurgeryError> {
    let mut current = finalize_in(source, "source config")?;
    if !is_complete(&current) {
        return Err(SurgeryError::config(
            "source config",
            "",
            "not a complete Apriel2 config: it needs `hidden_size` and `decoder`",
        ));
    }
    let mut steps = Vec::with_capacity(surgeries.len());
    for (origin, surgery) in surgeries {
        check_init_fields(surgery, origin)?;
        let target = compose_configs_in(&current, surgery, origin)?;
        let next = finalize_in(&target, origin)?;
        steps.push(SurgeryStep {
            origin: origin.clone(),
            source: current,
            target,
        });
        current = next;
    }
    Ok(steps)
}

/// Applies surgeries to a complete config in sequence and returns the resulting complete config
/// (no `init` fields). `modelc build -s` and `modelc graph -s` use this.
pub fn apply_surgeries(source: &Value, surgeries: &[Value]) -> Result<Value, SurgeryError> {
    let named: Vec<(String, Value)> = surgeries
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("surgery {}", i + 1), s.clone()))
        .collect();
    let steps = surgery_chain(source, &named)?;
    match steps.last() {
        Some(step) => finalize_in(&step.target, &step.origin),
        None => finalize_in(source, "source config"),
    }
}
