//! The CPU reference's invariants on every tiny spec in `specs/`, in f64:
//! prefill(T) = prefill(T−k) + k decode steps; prefill(a) + prefill(b) = prefill(a+b);
//! recurrent and chunked delta rules agree; a batch equals its sequences run alone.
//! Tolerance 1e-9 relative: every path computes the same function in f64; only summation order
//! differs (chunked vs recurrent delta rule, softmax over a split cache).

use std::path::{Path, PathBuf};

use modelc::ir::{lower::lower_model, Graph};
use modelc::passes::{placement::specialize, verify, Placement};
use modelc::reference::{Array, DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{self, layout, MixerSpec, ModelSpec};
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-9;

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs")
}

fn tiny_specs() -> Vec<(String, ModelSpec)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(specs_dir()).expect("specs/ exists") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("tiny-") && name.ends_with(".yaml") {
            out.push((name, spec::load(&path).unwrap_or_else(|e| panic!("{e}"))));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 7,
        "expected the tiny specs of every mixer, hybrid and supernet, got {}",
        out.len()
    );
    out
}

/// Every placement worth testing: main, and each sub-mixer name for all stochastic layers.
fn placements(spec: &ModelSpec) -> Vec<Placement> {
    let mut names: Vec<String> = Vec::new();
    for b in &spec.layers {
        if let MixerSpec::Stochastic(s) = &b.mixer {
            for (n, _) in &s.mixers {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    let mut out = vec![Placement::main(spec)];
    out.extend(names.iter().map(|n| Placement::all(spec, n).expect("placement")));
    out
}

fn weights(spec: &ModelSpec, seed: u64) -> WeightStore {
    let layout: Vec<_> = layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect();
    WeightStore::random(&layout, seed)
}

fn graph(spec: &ModelSpec, p: &Placement) -> Graph {
    let g = specialize(lower_model(spec).expect("lowers"), p).expect("specialises");
    verify(&g).expect("verifies");
    g
}

fn opts(form: DeltaRuleForm) -> InterpOptions {
    InterpOptions {
        precision: Precision::F64,
        delta_rule: form,
    }
}

fn rel_err(a: &Array, b: &Array) -> f64 {
    assert_eq!(a.shape, b.shape);
    let scale = b.data.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.data
        .iter()
        .zip(&b.data)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Logits of several calls, concatenated along tokens (batch 1).
fn run_split(g: &Graph, w: &WeightStore, tokens: &[u32], splits: &[usize], form: DeltaRuleForm) -> Array {
    let mut s = Session::new(g, w, 1, opts(form)).expect("session");
    let mut data = Vec::new();
    let mut start = 0;
    let mut vocab = 0;
    for &len in splits {
        let out = s.forward(&[tokens[start..start + len].to_vec()]).expect("forward");
        vocab = out.last_dim();
        data.extend(out.data);
        start += len;
    }
    assert_eq!(start, tokens.len());
    Array::new(vec![1, tokens.len(), vocab], data)
}

fn random_tokens(vocab: usize, n: usize, seed: u64) -> Vec<u32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..vocab as u32)).collect()
}

#[test]
fn prefill_equals_prefill_then_decode_steps() {
    for (name, spec) in tiny_specs() {
        let w = weights(&spec, 1);
        let tokens = random_tokens(spec.vocab_size, 9, 2);
        for p in placements(&spec) {
            let g = graph(&spec, &p);
            let form = DeltaRuleForm::Chunked(4);
            let full = run_split(&g, &w, &tokens, &[9], form);
            assert!(full.data.iter().all(|x| x.is_finite()), "{name}: non-finite logits");
            let stepped = run_split(&g, &w, &tokens, &[6, 1, 1, 1], form);
            let e = rel_err(&stepped, &full);
            assert!(e <= TOL, "{name} {p:?}: prefill(6)+3 steps vs prefill(9): {e:e}");
            let chunks = run_split(&g, &w, &tokens, &[4, 5], form);
            let e = rel_err(&chunks, &full);
            assert!(e <= TOL, "{name} {p:?}: prefill(4)+prefill(5) vs prefill(9): {e:e}");
            let steps = run_split(&g, &w, &tokens, &[1; 9], form);
            let e = rel_err(&steps, &full);
            assert!(e <= TOL, "{name} {p:?}: 9 single steps vs prefill(9): {e:e}");
        }
    }
}

#[test]
fn recurrent_and_chunked_delta_rules_agree_in_the_model() {
    for (name, spec) in tiny_specs() {
        let w = weights(&spec, 3);
        let tokens = random_tokens(spec.vocab_size, 11, 4);
        for p in placements(&spec) {
            let g = graph(&spec, &p);
            let rec = run_split(&g, &w, &tokens, &[11], DeltaRuleForm::Recurrent);
            for chunk in [1, 3, 64] {
                let ch = run_split(&g, &w, &tokens, &[11], DeltaRuleForm::Chunked(chunk));
                let e = rel_err(&ch, &rec);
                assert!(e <= TOL, "{name}: chunk {chunk} vs recurrent: {e:e}");
            }
        }
    }
}

#[test]
fn a_batch_equals_its_sequences_alone() {
    for (name, spec) in tiny_specs() {
        let w = weights(&spec, 5);
        let g = graph(&spec, &Placement::main(&spec));
        let a = random_tokens(spec.vocab_size, 5, 6);
        let b = random_tokens(spec.vocab_size, 5, 7);
        let mut s = Session::new(&g, &w, 2, opts(DeltaRuleForm::Chunked(2))).expect("session");
        let both = s.forward(&[a.clone(), b.clone()]).expect("forward");
        let step = s.forward(&[vec![1], vec![2]]).expect("step");
        for (i, seq) in [a, b].iter().enumerate() {
            let mut one = Session::new(&g, &w, 1, opts(DeltaRuleForm::Chunked(2))).expect("session");
            let alone = one.forward(std::slice::from_ref(seq)).expect("forward");
            let n = alone.len();
            let part = Array::new(alone.shape.clone(), both.data[i * n..(i + 1) * n].to_vec());
            assert!(rel_err(&part, &alone) <= TOL, "{name}: batch row {i} differs");
            let alone_step = one.forward(&[vec![1 + i as u32]]).expect("step");
            let n = alone_step.len();
            let part = Array::new(alone_step.shape.clone(), step.data[i * n..(i + 1) * n].to_vec());
            assert!(
                rel_err(&part, &alone_step) <= TOL,
                "{name}: batch row {i} decode step differs"
            );
        }
    }
}

#[test]
fn placements_change_the_output_of_a_supernet() {
    let spec = spec::load(&specs_dir().join("tiny-supernet.yaml")).expect("supernet spec");
    let w = weights(&spec, 8);
    let tokens = random_tokens(spec.vocab_size, 6, 9);
    let outs: Vec<Array> = placements(&spec)
        .iter()
        .map(|p| run_split(&graph(&spec, p), &w, &tokens, &[6], DeltaRuleForm::Recurrent))
        .collect();
    assert!(outs.len() >= 5);
    // outs[0] is the main placement (attention); each other sub-mixer must give other logits.
    for (i, o) in outs.iter().enumerate().skip(2) {
        assert!(
            rel_err(o, &outs[0]) > 1e-6,
            "placement {i} gives the main placement's logits"
        );
    }
}
