//! Config algebra (reference §4.1): composition cases, cross-type derivation, stochastic
//! semantics, laws, and errors that name the key path (and line) they are about.

mod surgery_util;

use modelc::surgery::algebra::{
    apply_surgeries, apply_surgery, compose_configs, finalize, is_complete, strip_init, surgery_chain,
};
use modelc::surgery::{SurgeryError, SurgeryFile};
use serde_json::{json, Value};
use surgery_util::{apriel_config, yaml};

fn mixer_of(config: &Value, block: &str) -> Value {
    let dec = &config["decoder"];
    if block == "block" {
        dec["block"]["mixer"].clone()
    } else {
        dec["blocks"][block]["mixer"].clone()
    }
}

fn apply(s: &Value, p: &str) -> Value {
    let t = apply_surgery(s, &yaml(p)).unwrap_or_else(|e| panic!("{e}"));
    finalize(&t).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_surgery_is_identity_on_both_sides() {
    let s = apriel_config(4);
    let p = yaml("decoder: {block: {mixer: {type: kda, init: random}}}");
    assert_eq!(compose_configs(&s, &json!({})).unwrap(), s);
    assert_eq!(compose_configs(&json!({}), &p).unwrap(), p);
    assert_eq!(compose_configs(&p, &json!({})).unwrap(), p);
    assert_eq!(compose_configs(&p, &Value::Null).unwrap(), p);
}

#[test]
fn dispatch_on_completeness() {
    let s = apriel_config(4);
    assert!(is_complete(&s));
    let p1 = yaml("decoder: {num_blocks: 2}");
    let p2 = yaml("decoder: {block: {mlp: {intermediate_size: 7}}}");
    // P×P: deep merge.
    let pp = compose_configs(&p1, &p2).unwrap();
    assert_eq!(
        pp,
        yaml("decoder: {num_blocks: 2, block: {mlp: {intermediate_size: 7}}}")
    );
    // P×S: the complete overlay wins.
    assert_eq!(compose_configs(&p1, &s).unwrap(), s);
    // S×S: deep merge, init stripped.
    let mut s2 = apriel_config(2);
    s2["decoder"]["block"]["mlp"]["init"] = json!("random");
    let ss = compose_configs(&s, &s2).unwrap();
    assert_eq!(ss["decoder"]["num_blocks"], json!(2));
    assert_eq!(ss, strip_init(&ss));
    // S×P: surgery semantics, init kept for the planner.
    let t = compose_configs(&s, &yaml("decoder: {block: {mlp: {init: random}}}")).unwrap();
    assert_eq!(t["decoder"]["block"]["mlp"]["init"], json!("random"));
    assert_eq!(t["decoder"]["block"]["mlp"]["intermediate_size"], json!(96));
}

#[test]
fn null_deletes_in_configs_and_stays_a_tombstone_between_surgeries() {
    let s = apriel_config(4);
    let out = apply(&s, "decoder: {block: {mlp: {activation: null}}}");
    assert!(out["decoder"]["block"]["mlp"].get("activation").is_none());
    // Between partial surgeries the deletion is kept, so it still reaches the config.
    let pp = compose_configs(
        &yaml("decoder: {num_blocks: 2}"),
        &yaml("decoder: {block: {mlp: {activation: null}}}"),
    )
    .unwrap();
    assert_eq!(pp["decoder"]["block"]["mlp"]["activation"], Value::Null);
    let out2 = apply_surgeries(&s, &[pp]).unwrap();
    assert!(out2["decoder"]["block"]["mlp"].get("activation").is_none());
    assert_eq!(out2["decoder"]["num_blocks"], json!(2));
}

#[test]
fn attention_to_other_mixers_derives_geometry() {
    let s = apriel_config(4);
    let gdn = mixer_of(
        &apply(
            &s,
            "decoder: {block: {mixer: {type: gdn, convolution_layer: {kernel_size: 3}}}}",
        ),
        "block",
    );
    assert_eq!(
        gdn,
        json!({"type": "gdn", "value_heads": 4, "key_heads": 2, "key_head_dim": 16, "value_head_dim": 16, "convolution_layer": {"kernel_size": 3}})
    );
    let kda = mixer_of(&apply(&s, "decoder: {block: {mixer: {type: kda}}}"), "block");
    assert_eq!(kda, json!({"type": "kda", "heads": 4, "head_dim": 16}));
    // Mamba: d_inner 2d, d_xb d/4, dt_rank d/16 unless given; d_state is written state_size.
    let mamba = mixer_of(
        &apply(
            &s,
            "decoder: {block: {mixer: {type: mamba, d_state: 8, d_xb: 32, conv_bias: true, add_linear_biases: true}}}",
        ),
        "block",
    );
    assert_eq!(
        mamba,
        json!({"type": "mamba", "d_inner": 128, "d_xb": 32, "dt_rank": 4, "state_size": 8, "conv_bias": true, "add_linear_biases": true})
    );
    // Same type: deep merge (sliding window is attention with a window).
    let swa = mixer_of(&apply(&s, "decoder: {block: {mixer: {window_size: 8}}}"), "block");
    let mut want = s["decoder"]["block"]["mixer"].clone();
    want["window_size"] = json!(8);
    assert_eq!(swa, want);
    // Non-attention sources derive nothing: the surgery's mixer as written.
    let s_kda = apply(&s, "decoder: {block: {mixer: {type: kda}}}");
    let g = mixer_of(
        &apply(&s_kda, "decoder: {block: {mixer: {type: gdn, key_heads: 1}}}"),
        "block",
    );
    assert_eq!(g, json!({"type": "gdn", "key_heads": 1}));
}

#[test]
fn head_size_defaults_to_hidden_over_heads() {
    let mut s = apriel_config(1);
    s["decoder"]["block"]["mixer"]
        .as_object_mut()
        .unwrap()
        .remove("head_size");
    let k = mixer_of(&apply(&s, "decoder: {block: {mixer: {type: kda}}}"), "block");
    assert_eq!(k["head_dim"], json!(16));
}

#[test]
fn stochastic_wrap_inherits_from_the_source_mixer() {
    let s = apriel_config(4);
    let out = apply(&s, include_str!("../../specs/surgery/stochastic_supernet.yaml"));
    let m = mixer_of(&out, "block");
    assert_eq!(m["type"], json!("stochastic"));
    assert_eq!(m["main_mixer_name"], json!("attention"));
    let names: Vec<&String> = m["mixers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["attention", "sliding_window", "gdn", "kda"]);
    assert_eq!(m["mixers"]["attention"], s["decoder"]["block"]["mixer"]);
    assert_eq!(m["mixers"]["sliding_window"]["window_size"], json!(4096));
    assert_eq!(m["mixers"]["sliding_window"]["heads"], json!(4));
    assert_eq!(m["mixers"]["gdn"]["key_heads"], json!(2));
    assert_eq!(m["mixers"]["kda"]["head_dim"], json!(16));
}

fn supernet() -> Value {
    apply(
        &apriel_config(4),
        include_str!("../../specs/surgery/stochastic_supernet.yaml"),
    )
}

#[test]
fn additive_surgery_keeps_source_sub_mixers_and_null_deletes() {
    let out = apply(&supernet(), "decoder: {block: {mixer: {mixers: {gdn: null, mamba: {type: mamba, d_inner: 64, d_xb: 16, dt_rank: 4, conv_bias: true, dt_proj_bias: true}}}}}");
    let m = mixer_of(&out, "block");
    let names: Vec<&String> = m["mixers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["attention", "sliding_window", "kda", "mamba"]);
    // The new sub-mixer derives from the main (attention) mixer: no state size given, so none.
    assert_eq!(m["mixers"]["mamba"]["d_inner"], json!(64));
    assert_eq!(m["main_mixer_name"], json!("attention"));
}

#[test]
fn replacement_surgery_keeps_only_its_sub_mixers() {
    let out = apply(
        &supernet(),
        "decoder: {block: {mixer: {type: stochastic, main_mixer_name: kda, mixers: {kda: {}, attention: {}}}}}",
    );
    let m = mixer_of(&out, "block");
    let names: Vec<&String> = m["mixers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["kda", "attention"]);
    // Existing sub-mixers compose with their own source entry.
    assert_eq!(m["mixers"]["kda"], mixer_of(&supernet(), "block")["mixers"]["kda"]);
    assert_eq!(m["main_mixer_name"], json!("kda"));
}

#[test]
fn main_mixer_name_resolution() {
    // Surgery's, else the stochastic source's, else "attention".
    let m = mixer_of(
        &apply(&supernet(), "decoder: {block: {mixer: {mixers: {kda: {}}}}}"),
        "block",
    );
    assert_eq!(m["main_mixer_name"], json!("attention"));
    let step = apply(&supernet(), "decoder: {block: {mixer: {main_mixer_name: gdn}}}");
    assert_eq!(mixer_of(&step, "block")["main_mixer_name"], json!("gdn"));
    let again = apply(&step, "decoder: {block: {mixer: {mixers: {kda: {}}}}}");
    assert_eq!(mixer_of(&again, "block")["main_mixer_name"], json!("gdn"));
    let wrapped = apply(
        &apriel_config(1),
        "decoder: {block: {mixer: {type: stochastic, mixers: {a: {type: kda}}}}}",
    );
    assert_eq!(mixer_of(&wrapped, "block")["main_mixer_name"], json!("attention"));
}

#[test]
fn unwrapping_a_stochastic_mixer_takes_the_main_sub_mixer() {
    let step1 = apply(&supernet(), "decoder: {block: {mixer: {main_mixer_name: kda}}}");
    let step2 = apply(&step1, "decoder: {block: {mixer: {type: kda}}}");
    assert_eq!(
        mixer_of(&step2, "block"),
        mixer_of(&supernet(), "block")["mixers"]["kda"]
    );
}

#[test]
fn pattern_blocks_inherit_from_the_default_block_and_keep_the_rest() {
    let s = apriel_config(4);
    let out = apply(&s, include_str!("../../specs/surgery/heterogeneous_pattern.yaml"));
    let dec = &out["decoder"];
    assert_eq!(dec["type"], json!("pattern"));
    assert_eq!(dec["num_blocks"], json!(4));
    assert_eq!(dec["blocks"]["full_attention"]["mixer"], s["decoder"]["block"]["mixer"]);
    assert_eq!(dec["blocks"]["sliding_window"]["mixer"]["window_size"], json!(4096));
    // A later surgery naming only one block keeps the other.
    let again = apply(&out, "decoder: {blocks: {sliding_window: {mixer: {window_size: 16}}}}");
    assert_eq!(
        again["decoder"]["blocks"]["full_attention"],
        dec["blocks"]["full_attention"]
    );
    assert_eq!(
        again["decoder"]["blocks"]["sliding_window"]["mixer"]["window_size"],
        json!(16)
    );
    assert_eq!(again["decoder"]["pattern"], dec["pattern"]);
    // New blocks of a pattern source inherit from the block of pattern[0].
    let added = apply(
        &out,
        "decoder: {pattern: [x], blocks: {x: {mlp: {intermediate_size: 8}}}}",
    );
    assert_eq!(
        added["decoder"]["blocks"]["x"]["mixer"],
        dec["blocks"]["full_attention"]["mixer"]
    );
    assert_eq!(added["decoder"]["blocks"]["x"]["mlp"]["intermediate_size"], json!(8));
}

#[test]
fn depth_changes_with_num_blocks() {
    let s = apriel_config(4);
    assert_eq!(
        apply(&s, include_str!("../../specs/surgery/small.yaml"))["decoder"]["num_blocks"],
        json!(3)
    );
    assert_eq!(apply(&s, "decoder: {num_blocks: 9}")["decoder"]["num_blocks"], json!(9));
}

#[test]
fn init_is_stripped_between_steps() {
    let s = apriel_config(2);
    let steps = surgery_chain(
        &s,
        &[
            ("a".into(), yaml("decoder: {block: {mixer: {type: kda, init: random}}}")),
            ("b".into(), yaml("decoder: {block: {mlp: {init: random}}}")),
        ],
    )
    .unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].target["decoder"]["block"]["mixer"]["init"], json!("random"));
    // Step b starts from a config without init; its target carries only b's init.
    assert_eq!(steps[1].source, strip_init(&steps[1].source));
    assert!(steps[1].target["decoder"]["block"]["mixer"].get("init").is_none());
    assert_eq!(steps[1].target["decoder"]["block"]["mlp"]["init"], json!("random"));
}

/// A deterministic generator of surgeries over a small vocabulary. Keys have a fixed kind
/// (mapping-valued or leaf), so a deleted mapping is never re-added by a later surgery: the one
/// case where composition of partials is not associative (see docs/surgery.md).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
    fn leaf(&mut self) -> Value {
        match self.next() % 4 {
            0 => Value::Null,
            1 => json!(self.next() % 5),
            2 => json!(self.pick(&["a", "b"])),
            _ => json!(self.next().is_multiple_of(2)),
        }
    }
    fn partial(&mut self, depth: usize) -> Value {
        let mut m = serde_json::Map::new();
        let n = self.next() % 3;
        for _ in 0..n {
            if depth > 0 && self.next().is_multiple_of(2) {
                let k = self.pick(&["x", "y"]);
                m.insert(k.into(), self.partial(depth - 1));
            } else {
                let k = self.pick(&["p", "q", "r", "d_state", "state_size"]);
                m.insert(k.into(), self.leaf());
            }
        }
        Value::Object(m)
    }
}

#[test]
fn partial_composition_is_associative_with_identity() {
    let mut g = Gen(7);
    for _ in 0..400 {
        let (a, b, c) = (g.partial(3), g.partial(3), g.partial(3));
        let left = compose_configs(&compose_configs(&a, &b).unwrap(), &c).unwrap();
        let right = compose_configs(&a, &compose_configs(&b, &c).unwrap()).unwrap();
        assert_eq!(left, right, "a={a} b={b} c={c}");
        assert_eq!(compose_configs(&a, &json!({})).unwrap(), a);
        assert_eq!(compose_configs(&json!({}), &a).unwrap(), a);
    }
    // The example surgeries too.
    let ex = example_surgeries();
    for a in &ex {
        for b in &ex {
            for c in &ex {
                let left = compose_configs(&compose_configs(a, b).unwrap(), c).unwrap();
                let right = compose_configs(a, &compose_configs(b, c).unwrap()).unwrap();
                assert_eq!(left, right);
            }
        }
    }
}

fn example_surgeries() -> Vec<Value> {
    [
        include_str!("../../specs/surgery/stochastic_supernet.yaml"),
        include_str!("../../specs/surgery/hybrid_kil.yaml"),
        include_str!("../../specs/surgery/hybrid_dil.yaml"),
        include_str!("../../specs/surgery/small.yaml"),
        include_str!("../../specs/surgery/heterogeneous_pattern.yaml"),
        include_str!("../../specs/surgery/prune_supernet_step1.yaml"),
    ]
    .iter()
    .map(|t| yaml(t))
    .collect()
}

/// Additive surgeries (no `type: stochastic`), applied to several sources. None of them moves
/// `main_mixer_name`: new sub-mixers inherit from the main mixer *of the source of their step*,
/// so a main-mixer change and a new sub-mixer in different steps do not commute (tested below).
#[test]
fn action_law_holds_for_additive_surgeries() {
    let pattern = apply(
        &apriel_config(4),
        include_str!("../../specs/surgery/heterogeneous_pattern.yaml"),
    );
    let pattern_supernet = apply(
        &pattern,
        "decoder: {blocks: {full_attention: {mixer: {type: stochastic, mixers: {attention: {}, \
         gdn: {type: gdn, convolution_layer: {kernel_size: 4}}}}}}}",
    );
    let sources = [apriel_config(4), supernet(), pattern, pattern_supernet];
    let additive = [
        "decoder: {num_blocks: 3}",
        "decoder: {block: {mixer: {mixers: {gdn: null}}}}",
        "decoder: {block: {mixer: {mixers: {kda: {heads: 2, head_dim: 32, init: random}}}}}",
        "decoder: {block: {mlp: {intermediate_size: 48, init: random}}}",
        "decoder: {block: {mixer: {mixers: {mamba: {type: mamba, d_state: 8, d_inner: 64, d_xb: 16, dt_rank: 4, conv_bias: true, dt_proj_bias: true}}}}}",
        "decoder: {block: {mixer: {mixers: {mamba: {state_size: 4}}}}}",
        "decoder: {blocks: {sliding_window: {mixer: {window_size: 32}}}}",
        "{vocab_size: 51, head: {normalization: {epsilon: 1.0e-6}}}",
    ];
    // A fixed decoder takes `block`, a pattern decoder `blocks` (the other key is an error, so
    // fixed sources only fail on the `blocks` surgery, on both sides).
    let for_source = |s: &Value, text: &str| -> Value {
        let mut p = yaml(text);
        let Some(dec) = p.get_mut("decoder") else { return p };
        if s["decoder"]["type"] == json!("pattern") {
            if let Some(block) = dec.as_object_mut().and_then(|d| d.remove("block")) {
                dec["blocks"] = json!({ "full_attention": block });
            }
        }
        p
    };
    let mut checked = 0;
    for s in &sources {
        for p1 in additive {
            for p2 in additive {
                let (p1, p2) = (for_source(s, p1), for_source(s, p2));
                let seq = apply_surgeries(s, &[p1.clone(), p2.clone()]);
                let composed = compose_configs(&p1, &p2).and_then(|p| apply_surgeries(s, &[p]));
                match (seq, composed) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "s·p1·p2 ≠ s·(p1∘p2) for p1={p1} p2={p2}");
                        checked += 1;
                    }
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("one side failed: {a:?} vs {b:?} (p1={p1} p2={p2})"),
                }
            }
        }
    }
    assert!(checked >= 120, "only {checked} pairs compared");
}

#[test]
fn main_mixer_change_and_new_sub_mixer_do_not_commute() {
    let p1 = yaml("decoder: {block: {mixer: {main_mixer_name: kda}}}");
    let p2 = yaml("decoder: {block: {mixer: {mixers: {extra: {}}}}}");
    let seq = apply_surgeries(&supernet(), &[p1.clone(), p2.clone()]).unwrap();
    let composed = apply_surgeries(&supernet(), &[compose_configs(&p1, &p2).unwrap()]).unwrap();
    // In sequence `extra` copies the new main (kda); composed, the source's main (attention).
    assert_eq!(mixer_of(&seq, "block")["mixers"]["extra"]["type"], json!("kda"));
    assert_eq!(
        mixer_of(&composed, "block")["mixers"]["extra"]["type"],
        json!("attention")
    );
}

#[test]
fn replacement_surgeries_are_last_write_wins() {
    let p1 = yaml("decoder: {block: {mixer: {type: stochastic, mixers: {attention: {}}}}}");
    let p2 = yaml("decoder: {block: {mixer: {type: stochastic, mixers: {kda: {}}, main_mixer_name: kda}}}");
    let seq = apply_surgeries(&supernet(), &[p1.clone(), p2.clone()]).unwrap();
    let composed = apply_surgeries(&supernet(), &[compose_configs(&p1, &p2).unwrap()]).unwrap();
    let names = |c: &Value| -> Vec<String> {
        mixer_of(c, "block")["mixers"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(names(&seq), ["kda"]);
    assert_eq!(names(&composed), ["attention", "kda"]);
}

fn config_error(source: &Value, surgery: &str) -> (String, String) {
    match apply_surgery(source, &yaml(surgery)) {
        Err(SurgeryError::Config { path, message, .. }) => (path, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn malformed_surgeries_name_the_key() {
    let s = apriel_config(2);
    let (path, msg) = config_error(&s, "decoder: {block: {mixer: null}}");
    assert_eq!(path, "decoder.block.mixer");
    assert!(msg.contains("cannot be deleted"), "{msg}");
    let (path, msg) = config_error(&s, "decoder: {block: {mixer: {type: kda, init: randm}}}");
    assert_eq!(path, "decoder.block.mixer.init");
    assert!(msg.contains("transfer or random"), "{msg}");
    let (path, _) = config_error(&s, "decoder: {block: {mixer: {rotary: {init: random}}}}");
    assert_eq!(path, "decoder.block.mixer.rotary.init");
    let (path, msg) = config_error(&s, "hidden: 3");
    assert_eq!(path, "hidden");
    assert!(msg.contains("cannot set"), "{msg}");
    let (path, _) = config_error(
        &s,
        "decoder: {block: {mixer: {type: mamba, d_state: 4, state_size: 8}}}",
    );
    assert_eq!(path, "decoder.block.mixer");
    let (path, msg) = config_error(
        &s,
        "decoder: {block: {mixer: {type: stochastic, mixers: {a: {type: stochastic}}}}}",
    );
    assert_eq!(path, "decoder.block.mixer.mixers.a");
    assert!(msg.contains("stochastic"), "{msg}");
    let (path, _) = config_error(
        &s,
        "decoder: {block: {mixer: {type: stochastic, init: random, mixers: {a: {}}}}}",
    );
    assert_eq!(path, "decoder.block.mixer.init");
    let (path, _) = config_error(&s, "decoder: {blok: {}}");
    assert_eq!(path, "decoder.blok");
}

#[test]
fn decoder_keys_the_decoder_type_ignores_are_errors() {
    let fixed = apriel_config(2);
    let pattern = apply(
        &apriel_config(2),
        include_str!("../../specs/surgery/heterogeneous_pattern.yaml"),
    );
    for (source, surgery, want_path, fragments) in [
        (
            &fixed,
            "decoder: {blocks: {a: {mlp: {intermediate_size: 8}}}}",
            "decoder.blocks",
            &["fixed decoder", "type: pattern"][..],
        ),
        (
            &fixed,
            "decoder: {pattern: [a], blocks: {a: {}}}",
            "decoder.blocks",
            &["does not change it"][..],
        ),
        (
            &fixed,
            "decoder: {pattern: [a]}",
            "decoder.pattern",
            &["fixed decoder"][..],
        ),
        (
            &pattern,
            "decoder: {block: {mlp: {intermediate_size: 8}}}",
            "decoder.block",
            &["pattern decoder", "`blocks`"][..],
        ),
        (
            &fixed,
            "decoder: {type: pattern, pattern: [a], block: {}}",
            "decoder.block",
            &["sets `decoder.type: pattern`"][..],
        ),
        (
            &pattern,
            "decoder: {type: fixed, blocks: {}}",
            "decoder.blocks",
            &["fixed decoder"][..],
        ),
    ] {
        let (path, msg) = config_error(source, surgery);
        assert_eq!(path, want_path, "{surgery}");
        assert!(fragments.iter().all(|f| msg.contains(f)), "{surgery}: {msg}");
    }
    // The keys that apply still work, type changes included.
    let to_fixed = apply(&pattern, "decoder: {type: fixed, block: {mlp: {intermediate_size: 8}}}");
    assert_eq!(to_fixed["decoder"]["block"]["mlp"]["intermediate_size"], json!(8));
    let to_pattern = apply(&fixed, "decoder: {type: pattern, pattern: [a], blocks: {a: {}}}");
    assert_eq!(to_pattern["decoder"]["pattern"], json!(["a"]));
}

#[test]
fn surgery_file_errors_carry_line_and_column() {
    let text = "decoder:\n  block:\n    mixer:\n      type: kda\n      init: sometimes\n";
    match SurgeryFile::parse(text, "bad.yaml") {
        Err(e @ SurgeryError::Config { .. }) => {
            let s = e.to_string();
            assert!(s.starts_with("bad.yaml:5:7: decoder.block.mixer.init:"), "{s}");
        }
        other => panic!("expected a located config error, got {other:?}"),
    }
    // Errors found while applying are located too.
    let file = SurgeryFile::parse("decoder:\n  block:\n    mlp: null\n", "nul.yaml").unwrap();
    let err = apply_surgery(&apriel_config(1), &file.value).unwrap_err();
    let located = file.locate(match err {
        SurgeryError::Config { path, message, pos, .. } => SurgeryError::Config {
            origin: "nul.yaml".into(),
            pos,
            path,
            message,
        },
        other => other,
    });
    assert!(
        located.to_string().starts_with("nul.yaml:3:5: decoder.block.mlp"),
        "{located}"
    );
    // YAML syntax errors come located from the parser.
    let err = SurgeryFile::parse("decoder: {block: [", "syn.yaml").unwrap_err();
    assert!(err.to_string().contains("syn.yaml:"), "{err}");
}

#[test]
fn example_surgeries_resolve_to_valid_specs() {
    let s = apriel_config(4);
    for (name, text) in [
        (
            "stochastic_supernet",
            include_str!("../../specs/surgery/stochastic_supernet.yaml"),
        ),
        ("hybrid_kil", include_str!("../../specs/surgery/hybrid_kil.yaml")),
        ("hybrid_dil", include_str!("../../specs/surgery/hybrid_dil.yaml")),
        ("hybrid_mil", include_str!("../../specs/surgery/hybrid_mil.yaml")),
        (
            "heterogeneous_pattern",
            include_str!("../../specs/surgery/heterogeneous_pattern.yaml"),
        ),
        ("comprehensive", include_str!("../../specs/surgery/comprehensive.yaml")),
        ("small", include_str!("../../specs/surgery/small.yaml")),
    ] {
        let out = apply_surgeries(&s, &[yaml(text)]).unwrap_or_else(|e| panic!("{name}: {e}"));
        modelc::spec::from_json_value(&out, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let pruned = apply_surgeries(
        &s,
        &[
            yaml(include_str!("../../specs/surgery/stochastic_supernet.yaml")),
            yaml(include_str!("../../specs/surgery/prune_supernet_step1.yaml")),
            yaml(include_str!("../../specs/surgery/prune_supernet_step2.yaml")),
        ],
    )
    .unwrap();
    let spec = modelc::spec::from_json_value(&pruned, "pruned").unwrap();
    let kinds: Vec<&str> = spec.layers.iter().map(|l| l.mixer.kind().name()).collect();
    assert_eq!(kinds, ["attention", "gdn", "kda", "sliding_window"]);
}
