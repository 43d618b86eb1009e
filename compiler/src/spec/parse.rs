//! The top level of an Apriel2 config and its decoder (reference §1.1, §1.2) into a [`ModelSpec`]
//! with one resolved block per layer.

use super::block;
use super::doc::{Node, Value};
use super::error::{ErrorKind, SpecError};
use super::model::{BlockSpec, DecoderForm, ModelSpec, NormSpec};
use super::reader::{did_you_mean, list, Ctx, Field, Obj};

/// Most decoder layers accepted (bounds what a typo in `num_blocks` can allocate).
pub const MAX_BLOCKS: usize = 1 << 16;

const TOP_KEYS: &[&str] = &[
    "model_type",
    "architectures",
    "auto_map",
    "hidden_size",
    "vocab_size",
    "decoder",
    "embeddings",
    "head",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "use_cache",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "vision_encoder",
    "image_token_index",
];

/// `bos_token_id` etc.: absent ⇒ the default, `null` ⇒ none.
fn token_id(o: &Obj<'_>, key: &str, default: Option<i64>) -> Result<Option<i64>, SpecError> {
    let Some(f) = o.raw(key) else {
        return Ok(default);
    };
    match &f.node.value {
        Value::Null => Ok(None),
        Value::Seq(_) => Err(f.err(
            ErrorKind::Unsupported,
            "a list of token ids is not supported; give a single id (or null)",
        )),
        _ => f.i64("a token id").map(Some),
    }
}

pub(crate) fn resolve(root: &Node, ctx: &Ctx<'_>) -> Result<ModelSpec, SpecError> {
    let rf = Field::root(ctx, root);
    let top = match &root.value {
        Value::Map(_) => rf.obj()?,
        other => {
            return Err(rf.err(
                ErrorKind::WrongType,
                format!(
                    "expected a mapping (an Apriel2 config) at the top level, found {}",
                    other.describe()
                ),
            ))
        }
    };
    // Keys starting with `_` are HF-private metadata (`_name_or_path`, ...) that `save_pretrained`
    // may write; they never change the model.
    let public: Vec<_> = top
        .entries
        .iter()
        .filter(|(k, _)| !k.name.starts_with('_'))
        .cloned()
        .collect();
    Obj {
        ctx,
        entries: &public,
        path: String::new(),
        pos: top.pos,
    }
    .check_keys(TOP_KEYS, false)?;

    let model_type = match top.get("model_type") {
        None => "apriel2_text",
        Some(f) => {
            let s = f.str()?;
            match s {
                "apriel2_text" | "apriel2" => s,
                _ => {
                    return Err(f.err(
                        ErrorKind::InvalidValue,
                        format!(
                            "model_type `{s}` is not an Apriel2 config{}; valid: `apriel2_text`, `apriel2` (convert other checkpoints to Apriel2 first)",
                            did_you_mean(s, &["apriel2_text", "apriel2"])
                        ),
                    ))
                }
            }
        }
    };
    if let Some(f) = top.get("vision_encoder") {
        f.obj()?;
        return Err(f.err_at_key(
            ErrorKind::Unsupported,
            "vision encoder is not supported yet: modelc compiles the text decoder only (remove `vision_encoder` to compile the text model)",
        ));
    }
    if let Some(f) = top.get("image_token_index") {
        f.i64("the image placeholder token id")?;
    }
    if let Some(f) = top.get("architectures") {
        for a in f.seq()? {
            a.str()?;
        }
    }
    if let Some(f) = top.get("auto_map") {
        f.obj()?;
    }
    for key in ["transformers_version", "torch_dtype", "dtype"] {
        if let Some(f) = top.get(key) {
            f.str()?;
        }
    }
    top.bool_or("use_cache", true)?;

    let hidden_size = top.size_or("hidden_size", 4096, "model width d")?;
    let vocab_size = top.size_or("vocab_size", 32000, "vocabulary size")?;
    let max_position_embeddings = match top.opt_obj("embeddings")? {
        None => 2048,
        Some(e) => {
            e.check_keys(&["max_position_embeddings"], false)?;
            match e.get("max_position_embeddings") {
                None => 2048,
                Some(f) => f.size_max("longest sequence", 1 << 31)?,
            }
        }
    };
    let head_norm = match top.opt_obj("head")? {
        None => NormSpec::RmsNorm { eps: 1e-5 },
        Some(h) => {
            h.check_keys(&["normalization"], false)?;
            match h.get("normalization") {
                None => NormSpec::RmsNorm { eps: 1e-5 },
                Some(n) => block::norm(&n)?,
            }
        }
    };
    let tie_word_embeddings = top.bool_or("tie_word_embeddings", false)?;
    let bos_token_id = token_id(&top, "bos_token_id", Some(1))?;
    let eos_token_id = token_id(&top, "eos_token_id", Some(2))?;
    let pad_token_id = token_id(&top, "pad_token_id", None)?;

    let df = top.req("decoder", "the decoder, `{type: fixed | pattern, num_blocks, ...}`")?;
    let (decoder_form, layers) = decoder(&df, hidden_size)?;

    Ok(ModelSpec {
        model_type: model_type.to_string(),
        hidden_size,
        vocab_size,
        max_position_embeddings,
        tie_word_embeddings,
        bos_token_id,
        eos_token_id,
        pad_token_id,
        head_norm,
        decoder_form,
        layers,
    })
}

fn decoder(f: &Field<'_>, hidden: usize) -> Result<(DecoderForm, Vec<BlockSpec>), SpecError> {
    let d = f.obj()?;
    let kind = match d.get("type") {
        None => "fixed",
        Some(t) => t.one_of("decoder type", &["fixed", "pattern"])?,
    };
    if kind == "fixed" {
        d.check_keys(&["type", "num_blocks", "block"], false)?;
    } else {
        d.check_keys(&["type", "num_blocks", "pattern", "blocks"], false)?;
    }
    let num_blocks = d
        .req("num_blocks", "the number of decoder layers, an integer > 0")?
        .size_max("number of decoder layers", MAX_BLOCKS)?;

    if kind == "fixed" {
        let bf = d.req("block", "the block config repeated in every layer")?;
        let b = block::block(&bf, "block", hidden)?;
        return Ok((DecoderForm::Fixed, vec![b; num_blocks]));
    }

    let pf = d.req("pattern", "the list of block names, layer i uses pattern[i % len]")?;
    let items = pf.seq()?;
    if items.is_empty() {
        return Err(pf.err(
            ErrorKind::InvalidValue,
            "pattern is empty; list at least one block name",
        ));
    }
    let bf = d.req("blocks", "the named block configs the pattern refers to")?;
    let blocks_obj = bf.obj()?;
    // Every defined block is validated, used or not: errors are never hidden.
    let mut defined: Vec<(&str, BlockSpec)> = Vec::with_capacity(blocks_obj.entries.len());
    for (k, _) in blocks_obj.entries {
        if let Some(b) = blocks_obj.raw(&k.name) {
            defined.push((&k.name, block::block(&b, &k.name, hidden)?));
        }
    }
    let names: Vec<&str> = defined.iter().map(|(n, _)| *n).collect();
    let mut pattern = Vec::with_capacity(items.len());
    for it in &items {
        let s = it.str()?;
        if !names.contains(&s) {
            let defined_list = if names.is_empty() {
                "none".to_string()
            } else {
                list(&names)
            };
            return Err(it.err(
                ErrorKind::InvalidValue,
                format!(
                    "pattern names block `{s}`, which `decoder.blocks` does not define{}; defined: {defined_list}",
                    did_you_mean(s, &names)
                ),
            ));
        }
        pattern.push(s.to_string());
    }
    // Entries past num_blocks are never used; dropping them keeps the form canonical (the
    // written-back config then holds exactly the blocks the layers use).
    pattern.truncate(num_blocks);
    let mut layers = Vec::with_capacity(num_blocks);
    for name in pattern.iter().cycle().take(num_blocks) {
        if let Some((_, b)) = defined.iter().find(|(n, _)| *n == name) {
            layers.push(b.clone());
        }
    }
    Ok((DecoderForm::Pattern(pattern), layers))
}
