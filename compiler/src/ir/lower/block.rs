//! The model skeleton: embedding, pre-norm residual blocks, final norm, LM head (reference §2.0).

use modelc_runtime::tensor::DType;

use super::{attention, gdn, kda, mamba, mlp, Ctx, LOGITS_OUTPUT, POSITIONS_INPUT, TOKENS_INPUT};
use crate::ir::dim::Dim;
use crate::ir::graph::{Graph, Value};
use crate::ir::op::{Op, TensorType};
use crate::ir::IrError;
use crate::spec::{MixerSpec, ModelSpec, NormSpec};

pub(super) fn lower_model(graph: &mut Graph, spec: &ModelSpec) -> Result<(), IrError> {
    let d = spec.hidden_size;
    let bt = vec![Dim::BATCH, Dim::TOKENS];
    let tokens = graph.add(
        Op::Input {
            name: TOKENS_INPUT.into(),
            ty: TensorType::new(DType::I32, bt.clone()),
        },
        &[],
        "",
        None,
    )?;
    let positions = graph.add(
        Op::Input {
            name: POSITIONS_INPUT.into(),
            ty: TensorType::new(DType::I32, bt),
        },
        &[],
        "",
        None,
    )?;
    let positions = Value {
        node: positions,
        output: 0,
    };
    let mut cx = Ctx {
        g: graph,
        scope: String::new(),
        layer: None,
        positions,
    };
    let embed = cx.weight("model.embed_tokens.weight".into(), &[spec.vocab_size, d])?;
    let mut h = cx.op(
        Op::Embedding,
        &[
            Value {
                node: tokens,
                output: 0,
            },
            embed,
        ],
    )?;

    for (i, block) in spec.layers.iter().enumerate() {
        let key = format!("model.decoder.blocks.{i}");
        cx.layer = Some(i);
        cx.scope = format!("layers.{i}");
        let x = norm(&mut cx, h, &block.normalization, d, &format!("{key}.input_layernorm"))?;
        cx.scope = format!("layers.{i}.mixer");
        let m = mixer(&mut cx, x, &block.mixer, d, i, &format!("{key}.mixer"))?;
        cx.scope = format!("layers.{i}");
        let u = cx.op(Op::Add, &[h, m])?;
        let x = norm(
            &mut cx,
            u,
            &block.normalization,
            d,
            &format!("{key}.post_attention_layernorm"),
        )?;
        cx.scope = format!("layers.{i}.mlp");
        let f = mlp::lower(&mut cx, x, &block.mlp, d, &format!("{key}.mlp"))?;
        cx.scope = format!("layers.{i}");
        h = cx.op(Op::Add, &[u, f])?;
    }

    cx.layer = None;
    cx.scope = "head".into();
    let x = norm(&mut cx, h, &spec.head_norm, d, "model.norm")?;
    let head_key = if spec.tie_word_embeddings {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    };
    let w = if spec.tie_word_embeddings {
        embed
    } else {
        cx.weight(head_key.into(), &[spec.vocab_size, d])?
    };
    let logits = cx.op(Op::Linear { bias: false }, &[x, w])?;
    cx.g.add(
        Op::Output {
            name: LOGITS_OUTPUT.into(),
        },
        &[logits],
        "head",
        None,
    )?;
    Ok(())
}

fn norm(cx: &mut Ctx, x: Value, n: &NormSpec, d: usize, key: &str) -> Result<Value, IrError> {
    let w = cx.weight(format!("{key}.weight"), &[d])?;
    match *n {
        NormSpec::RmsNorm { eps } => cx.op(Op::RmsNorm { eps, group: d }, &[x, w]),
        NormSpec::LayerNorm { eps } => {
            let b = cx.weight(format!("{key}.bias"), &[d])?;
            cx.op(Op::LayerNorm { eps }, &[x, w, b])
        }
    }
}

/// Lowers one mixer; `key` is its checkpoint prefix. A stochastic mixer lowers each sub-mixer
/// under `<key>.mixers.<name>` with state `layers.<i>.<name>`, joined by a `route` node.
fn mixer(cx: &mut Ctx, x: Value, m: &MixerSpec, d: usize, layer: usize, key: &str) -> Result<Value, IrError> {
    match m {
        MixerSpec::Stochastic(s) => {
            let outer = cx.scope.clone();
            let mut outs = Vec::with_capacity(s.mixers.len());
            for (name, sub) in &s.mixers {
                cx.scope = format!("{outer}.mixers.{name}");
                let state = format!("layers.{layer}.{name}");
                outs.push(leaf(cx, x, sub, d, &format!("{key}.mixers.{name}"), &state)?);
            }
            cx.scope = outer;
            let names = s.mixers.iter().map(|(n, _)| n.clone()).collect();
            cx.op(Op::Route { layer, names }, &outs)
        }
        leaf_spec => leaf(cx, x, leaf_spec, d, key, &format!("layers.{layer}")),
    }
}

fn leaf(cx: &mut Ctx, x: Value, m: &MixerSpec, d: usize, key: &str, state: &str) -> Result<Value, IrError> {
    match m {
        MixerSpec::Attention(a) => attention::lower(cx, x, a, d, key, state),
        MixerSpec::Mamba(s) => mamba::lower(cx, x, s, d, key, state),
        MixerSpec::Gdn(s) => gdn::lower(cx, x, s, d, key, state),
        MixerSpec::Kda(s) => kda::lower(cx, x, s, d, key, state),
        MixerSpec::Stochastic(_) => Err(IrError::Shape {
            op: "stochastic".into(),
            msg: format!("{key}: a stochastic mixer nested in a stochastic mixer"),
        }),
    }
}
