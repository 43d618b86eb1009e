//! A composed plan equals applying its surgeries one by one (writing every intermediate
//! checkpoint), bitwise, for chains of 2–3 surgeries; plan composition is associative on real
//! chains.

mod surgery_util;

use std::collections::HashMap;

use modelc::surgery::eval::MemorySource;
use modelc::surgery::executor::execute_in_memory;
use modelc::surgery::sources::{import, SourceFormat};
use modelc::surgery::{build_conversion, plan_surgery};
use modelc_runtime::tensor::{DType, HostTensor};
use serde_json::Value;
use surgery_util::*;

const SEED: u64 = 1234;

fn execute(
    config: &Value,
    tensors: &HashMap<String, HostTensor>,
    surgery: &[(String, Value)],
    dtype: DType,
) -> (Value, HashMap<String, HostTensor>) {
    let conv = build_conversion(import(SourceFormat::Apriel2, config, None).unwrap(), surgery)
        .unwrap_or_else(|e| panic!("{e}"));
    let src = MemorySource {
        tensors: tensors.clone(),
    };
    let out = execute_in_memory(&conv.plan, &src, dtype, SEED).unwrap_or_else(|e| panic!("{e}"));
    (conv.config, out.into_iter().collect())
}

fn check_chain(name: &str, layers: usize, texts: &[&str], dtype: DType) {
    let config = apriel_config(layers);
    let tensors: HashMap<String, HostTensor> = head_constant_tensors(&config)
        .into_iter()
        .map(|(k, t)| {
            let t = if k.contains("proj") {
                noise_tensor(&k, &t.shape, dtype)
            } else {
                t.cast(dtype)
            };
            (k, t)
        })
        .collect();
    let all = surgeries(texts);
    let (composed_config, composed) = execute(&config, &tensors, &all, dtype);
    let (mut cfg, mut cur) = (config.clone(), tensors.clone());
    for s in &all {
        let (c, t) = execute(&cfg, &cur, std::slice::from_ref(s), dtype);
        cfg = c;
        cur = t;
    }
    assert_eq!(composed_config, cfg, "{name}: configs differ");
    let mut keys: Vec<&String> = composed.keys().collect();
    keys.sort();
    let mut seq_keys: Vec<&String> = cur.keys().collect();
    seq_keys.sort();
    assert_eq!(keys, seq_keys, "{name}: tensor sets differ");
    for k in keys {
        assert_eq!(composed[k], cur[k], "{name}: `{k}` differs");
    }
    // Something random was produced and something was copied: the comparison is not vacuous.
    assert!(composed.values().any(|t| t.dtype == dtype));
}

const SUPERNET: &str = include_str!("../../specs/surgery/stochastic_supernet.yaml");
const PRUNE1: &str = include_str!("../../specs/surgery/prune_supernet_step1.yaml");
const PRUNE2: &str = include_str!("../../specs/surgery/prune_supernet_step2.yaml");
const KIL: &str = include_str!("../../specs/surgery/hybrid_kil.yaml");
const DIL: &str = include_str!("../../specs/surgery/hybrid_dil.yaml");
const MIL: &str = include_str!("../../specs/surgery/hybrid_mil.yaml");
const SMALL: &str = include_str!("../../specs/surgery/small.yaml");

#[test]
fn supernet_then_two_step_pruning() {
    check_chain("supernet+prune", 4, &[SUPERNET, PRUNE1, PRUNE2], DType::F32);
}

#[test]
fn hybrid_kil_dil_mil_chains() {
    check_chain("kil+small", 4, &[KIL, SMALL], DType::F32);
    check_chain("dil+grow", 4, &[DIL, "decoder: {num_blocks: 7}"], DType::BF16);
    check_chain(
        "mil+random kda",
        4,
        &[
            MIL,
            "decoder: {blocks: {hybrid: {mixer: {mixers: {kda: {type: kda, init: random}}}}}}",
            "decoder: {blocks: {hybrid: {mixer: {main_mixer_name: kda}}}}",
        ],
        DType::F32,
    );
}

#[test]
fn supernet_edits_then_unwrap() {
    check_chain(
        "supernet edit",
        3,
        &[
            SUPERNET,
            "decoder: {block: {mixer: {mixers: {gdn: null, mamba: {type: mamba, init: random, d_inner: 64, d_xb: 16, dt_rank: 4, d_state: 16, conv_bias: true, dt_proj_bias: true}}}, mlp: {init: random}}}",
            "decoder: {block: {mixer: {type: kda}}}",
        ],
        DType::BF16,
    );
    check_chain(
        "random then transfer",
        2,
        &["decoder: {block: {mixer: {type: gdn, init: random, convolution_layer: {kernel_size: 4}}}}", "decoder: {block: {mixer: {type: stochastic, main_mixer_name: gdn, mixers: {gdn: {}, again: {type: gdn}}}}}"],
        DType::F32,
    );
}

#[test]
fn plan_composition_is_associative_on_real_chains() {
    let config = apriel_config(4);
    let steps = modelc::surgery::surgery_chain(&config, &surgeries(&[SUPERNET, PRUNE1, PRUNE2])).unwrap();
    let plans: Vec<_> = steps
        .iter()
        .map(|s| {
            let src = modelc::spec::from_json_value(&s.source, "s").unwrap();
            let tgt_cfg = modelc::surgery::finalize(&s.target).unwrap();
            let tgt = modelc::spec::from_json_value(&tgt_cfg, "t").unwrap();
            let inits = modelc::surgery::planner::layer_inits(&s.target, tgt.layers.len());
            plan_surgery(&src, &tgt, &inits).unwrap()
        })
        .collect();
    let left = plans[0].compose(&plans[1]).compose(&plans[2]);
    let right = plans[0].compose(&plans[1].compose(&plans[2]));
    assert_eq!(left, right);
    // Markov: the same config pair gives the same plan.
    let again = {
        let s = &steps[1];
        let src = modelc::spec::from_json_value(&s.source, "s").unwrap();
        let tgt = modelc::spec::from_json_value(&modelc::surgery::finalize(&s.target).unwrap(), "t").unwrap();
        plan_surgery(
            &src,
            &tgt,
            &modelc::surgery::planner::layer_inits(&s.target, tgt.layers.len()),
        )
        .unwrap()
    };
    assert_eq!(again, plans[1]);
}
