//! The generated program, run on the CPU program interpreter (`codegen_common::exec`), equals the
//! reference interpreter on the unfused graph: prefill of two sequences of different lengths into
//! their own slots, then batched decode steps with different past lengths.
//!
//! Tolerance 1e-9 relative to the largest logit: both sides compute in f64 with the same
//! reference ops and the recurrent delta rule; at most summation order could differ (today the
//! results agree bit for bit, and a 1e-6 relative perturbation of one GEMM fails the test).

mod codegen_common;
mod kda_step_shapes;

use codegen_common::exec::{Machine, Phase};
use codegen_common::{codegen_specs, placed, placements, repo, tiny_specs};
use modelc::codegen::{generate, program};
use modelc::ir::Op;
use modelc::passes::fuse::StepKind;
use modelc::reference::{Array, DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{layout, ModelSpec};

const TOL: f64 = 1e-9;

fn rel_err(got: &Array, want: &Array) -> f64 {
    assert_eq!(got.shape, want.shape);
    let scale = want.data.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    got.data
        .iter()
        .zip(&want.data)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn slice_batch(a: &Array, b: usize) -> Array {
    let per: usize = a.shape[1..].iter().product();
    let mut shape = a.shape.clone();
    shape[0] = 1;
    Array::new(shape, a.data[b * per..(b + 1) * per].to_vec())
}

fn check(name: &str, spec: &ModelSpec) {
    for (pname, p) in placements(spec) {
        let label = format!("{name}[{pname}]");
        let graph = placed(spec, &p);
        // Every spec must get kernels: the templates take any head size the spec allows.
        let cg = generate(graph.clone()).unwrap_or_else(|e| panic!("{label}: {e}"));
        let prog = program::build(&cg, name, &p).unwrap_or_else(|e| panic!("{label}: {e}"));
        let lay: Vec<_> = layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect();
        let weights = WeightStore::random(&lay, 7);
        let opts = InterpOptions {
            precision: Precision::F64,
            delta_rule: DeltaRuleForm::Recurrent,
        };
        let vocab = spec.vocab_size as u32;
        let seqs: [Vec<u32>; 2] = [
            (0..5).map(|i| (i * 7 + 3) % vocab).collect(),
            (0..3).map(|i| (i * 11 + 5) % vocab).collect(),
        ];
        let mut m = Machine::new(&cg, &prog, &weights, 2, 16);
        let mut refs: Vec<Session> = (0..2)
            .map(|_| Session::new(&graph, &weights, 1, opts).expect("session"))
            .collect();
        for (b, seq) in seqs.iter().enumerate() {
            let got = m.call(Phase::Prefill, b as u64, std::slice::from_ref(seq));
            let want = refs[b].forward(std::slice::from_ref(seq)).expect("reference prefill");
            let e = rel_err(&got, &want);
            assert!(e < TOL, "{label}: prefill of sequence {b}: relative error {e:e}");
        }
        for step in 0..3u32 {
            let toks: Vec<Vec<u32>> = (0..2).map(|b| vec![(step * 13 + b * 29 + 1) % vocab]).collect();
            let got = m.call(Phase::Decode, 0, &toks);
            for (b, r) in refs.iter_mut().enumerate() {
                let want = r.forward(&toks[b..b + 1]).expect("reference decode");
                let e = rel_err(&slice_batch(&got, b), &want);
                assert!(
                    e < TOL,
                    "{label}: decode step {step}, sequence {b}: relative error {e:e}"
                );
            }
        }
    }
}

#[test]
fn codegen_specs_match_the_reference() {
    for (name, spec) in codegen_specs() {
        check(&name, &spec);
    }
}

/// Every tiny spec of `specs/` (head sizes 8 and 16, value dims below a warp), every placement.
#[test]
fn tiny_specs_match_the_reference() {
    let specs = tiny_specs();
    assert!(
        specs.len() >= 7,
        "expected the tiny specs of specs/, found {}",
        specs.len()
    );
    for (name, spec) in specs {
        check(&name, &spec);
    }
}

/// With bf16 storage emulated, the program moves off the f64 reference by the bf16 floor: more
/// than f32-level noise (so the rounding really happens) and less than 5e-2 (the whole-model bound
/// the GPU tests use against f64), on every tiny spec's main placement.
#[test]
fn bf16_storage_emulation_moves_logits_by_the_bf16_floor() {
    for (name, spec) in tiny_specs() {
        let p = modelc::passes::Placement::main(&spec);
        let graph = placed(&spec, &p);
        let cg = generate(graph.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let prog = program::build(&cg, &name, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let lay: Vec<_> = layout::weights(&spec).into_iter().map(|w| (w.key, w.shape)).collect();
        let weights = WeightStore::random(&lay, 9);
        let opts = InterpOptions {
            precision: Precision::F64,
            delta_rule: DeltaRuleForm::Recurrent,
        };
        let seq: Vec<u32> = (0..12).map(|i| (i * 5 + 2) % spec.vocab_size as u32).collect();
        let mut m = Machine::new(&cg, &prog, &weights, 1, 16);
        m.storage_rounding = true;
        let got = m.call(Phase::Prefill, 0, std::slice::from_ref(&seq));
        let want = Session::new(&graph, &weights, 1, opts)
            .expect("session")
            .forward(std::slice::from_ref(&seq))
            .expect("reference");
        let num: f64 = got.data.iter().zip(&want.data).map(|(a, b)| (a - b).powi(2)).sum();
        let den: f64 = want.data.iter().map(|b| b * b).sum();
        let e = (num / den).sqrt();
        assert!(e > 1e-5 && e < 5e-2, "{name}: bf16-storage relative RMS {e:e}");
    }
}

/// The prefill head (final norm and LM head) reads only the last hidden state: moving each
/// sequence's last row to the front and running the head for one token gives exactly the last
/// rows of the full call, for every spec, and the states (checked by a decode step after it) are
/// the same. The head exists for every spec and starts after the last layer's steps.
#[test]
fn the_prefill_head_gives_each_sequences_last_logits() {
    for (name, spec) in codegen_specs().into_iter().chain(tiny_specs()) {
        for (pname, p) in placements(&spec) {
            let label = format!("{name}[{pname}]");
            let graph = placed(&spec, &p);
            let cg = generate(graph).unwrap_or_else(|e| panic!("{label}: {e}"));
            let prog = program::build(&cg, &name, &p).unwrap_or_else(|e| panic!("{label}: {e}"));
            let head = prog.head.as_ref().unwrap_or_else(|| panic!("{label}: no prefill head"));
            assert!(
                prog.prefill.steps[head.first_step..]
                    .iter()
                    .all(|s| s.layer().is_none())
                    && prog.prefill.steps[head.first_step - 1].layer().is_some(),
                "{label}: the head must be the steps after the last layer"
            );
            let lay: Vec<_> = layout::weights(&spec).into_iter().map(|w| (w.key, w.shape)).collect();
            let weights = WeightStore::random(&lay, 5);
            let vocab = spec.vocab_size as u32;
            let seqs: Vec<Vec<u32>> = (0..2u32)
                .map(|b| (0..6).map(|i| (i * 7 + b * 13 + 2) % vocab).collect())
                .collect();
            let mut full = Machine::new(&cg, &prog, &weights, 2, 16);
            let mut last = Machine::new(&cg, &prog, &weights, 2, 16);
            let all = full.call(Phase::Prefill, 0, &seqs);
            let got = last.call_last(0, &seqs);
            let v = vocab as usize;
            assert_eq!(got.shape, vec![2, 1, v], "{label}");
            for b in 0..2 {
                let want = &all.data[(b * 6 + 5) * v..(b * 6 + 6) * v];
                assert_eq!(
                    &got.data[b * v..(b + 1) * v],
                    want,
                    "{label}: sequence {b}'s last logits"
                );
            }
            let toks: Vec<Vec<u32>> = vec![vec![3 % vocab], vec![8 % vocab]];
            let (a, b) = (full.call(Phase::Decode, 0, &toks), last.call(Phase::Decode, 0, &toks));
            assert_eq!(a.data, b.data, "{label}: decode after the last-logits prefill");
        }
    }
}

/// A program step's kind: `gemm`, or its module's name without the hash.
fn step_kind(s: &modelc_runtime::program::Step) -> String {
    use modelc_runtime::program::Step;
    match s {
        Step::Launch(l) => l
            .module
            .rsplit_once('_')
            .map_or(l.module.clone(), |(k, _)| k.to_string()),
        Step::Gemm(_) => "gemm".into(),
    }
}

/// Decode fusions: the decode schedule launches no separate RMSNorm or SiLU·up kernel before a
/// GEMM; those GEMMs carry the transform as their prologue (reading the norm's input, or the
/// gate and up halves), one GEMM per removed launch. Prefill keeps the launches and has no
/// prologue. The prologue survives `program.json` and is absent from it where there is none.
#[test]
fn decode_fuses_norms_and_silu_mul_into_gemm_prologues() {
    use modelc_runtime::program::{GemmPrologue, Program, Step};
    let kind = step_kind;
    let specs = tiny_specs();
    let (name, spec) = specs
        .iter()
        .find(|(n, _)| n == "tiny-hybrid")
        .expect("specs/tiny-hybrid.yaml");
    let p = modelc::passes::Placement::main(spec);
    let cg = generate(placed(spec, &p)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let prog = program::build(&cg, name, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
    let count = |steps: &[Step], k: &str| steps.iter().filter(|s| kind(s) == k).count();
    let (pre, dec) = (&prog.prefill.steps, &prog.decode.steps);
    let norms = count(pre, "rms_norm");
    let silus = count(pre, "silu_mul");
    assert!(
        norms > 0 && silus > 0,
        "{name}: prefill launches {norms} norms, {silus} silu_mul"
    );
    assert_eq!(count(dec, "rms_norm"), 0, "{name}: decode still launches an RMSNorm");
    assert_eq!(count(dec, "silu_mul"), 0, "{name}: decode still launches silu_mul");
    // The same GEMMs in both phases, but those the KDA decode kernel absorbs (f_b, g_b).
    let absorbed: Vec<bool> = cg
        .plan
        .steps
        .iter()
        .zip(&cg.steps)
        .filter(|(s, _)| matches!(s.kind, StepKind::Gemm { .. }))
        .map(|(_, code)| code.decode_absorbed_by.is_some())
        .collect();
    assert_eq!(absorbed.len(), count(pre, "gemm"));
    assert_eq!(
        count(dec, "gemm"),
        absorbed.iter().filter(|a| !**a).count(),
        "{name}: the same GEMMs in both phases, absorbed ones aside"
    );
    let prologues = |want: fn(&GemmPrologue) -> bool| {
        dec.iter()
            .filter(|s| matches!(s, Step::Gemm(g) if g.prologue.as_ref().is_some_and(want)))
            .count()
    };
    assert_eq!(prologues(|p| matches!(p, GemmPrologue::RmsNorm { .. })), norms);
    assert_eq!(prologues(|p| matches!(p, GemmPrologue::SiluMul { .. })), silus);
    assert!(pre.iter().all(|s| !matches!(s, Step::Gemm(g) if g.prologue.is_some())));
    // The GEMMs pair up in order; a fused one reads what the removed launch read: the norm's
    // input, or the gate half with `up` k channels further.
    fn gemm_steps(steps: &[Step]) -> impl Iterator<Item = &Step> {
        steps.iter().filter(|s| matches!(s, Step::Gemm(_)))
    }
    let kept = gemm_steps(pre).zip(&absorbed).filter(|(_, a)| !**a).map(|(s, _)| s);
    for (s, ds) in kept.zip(gemm_steps(dec)) {
        assert_eq!(ds.label().split(" ← ").next(), Some(s.label()));
        if let (Step::Gemm(pg), Step::Gemm(dg)) = (s, ds) {
            match &dg.prologue {
                Some(GemmPrologue::RmsNorm { weight, eps }) => {
                    assert_eq!(prog.weights[*weight].shape, vec![dg.k]);
                    assert!(*eps > 0.0);
                    assert_ne!(dg.x, pg.x, "{}: the fused GEMM must read the norm's input", dg.label);
                }
                Some(GemmPrologue::SiluMul { up }) => {
                    assert_eq!((up.buffer, up.ld), (dg.x.buffer, dg.x.ld), "{}", dg.label);
                    assert_eq!(up.offset.as_const(), dg.x.offset.as_const().map(|o| o + dg.k as u64));
                }
                None => assert_eq!(dg, pg),
            }
        }
    }
    let json = serde_json::to_value(&prog).expect("program.json");
    let gemms = |phase: &str| -> Vec<serde_json::Value> {
        json[phase]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["op"] == "gemm")
            .cloned()
            .collect()
    };
    assert!(gemms("prefill").iter().all(|g| g.get("prologue").is_none()));
    let kinds: Vec<&str> = gemms("decode")
        .iter()
        .filter_map(|g| g.get("prologue").and_then(|p| p["kind"].as_str()))
        .map(|k| if k == "rms_norm" { "rms_norm" } else { "silu_mul" })
        .collect();
    assert_eq!(kinds.len(), norms + silus);
    assert!(gemms("decode")
        .iter()
        .filter_map(|g| g.get("prologue"))
        .all(
            |p| (p["kind"] == "rms_norm" && p["weight"].is_u64() && p["eps"].is_f64())
                || (p["kind"] == "silu_mul" && p["up"]["ld"].is_u64())
        ));
    // Glue kernels, conv1d and decode attention start with the PDL wait and are marked for
    // programmatic dependent launch; the JSON carries `"pdl": true` for them only.
    for st in pre.iter().chain(dec) {
        if let Step::Launch(l) = st {
            let k = kind(st);
            let plain = ["attn_prefill", "delta_rule", "selective_scan"];
            let want = !plain.iter().any(|p| k.starts_with(p));
            assert_eq!(l.pdl, want, "{}: {k}", l.label);
        }
    }
    let launches: Vec<&serde_json::Value> = json["decode"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["op"] == "launch")
        .collect();
    assert!(launches.iter().all(|l| l.get("pdl").is_none_or(|p| p == true)));
    assert!(launches.iter().any(|l| l.get("pdl").is_none()) && launches.iter().any(|l| l["pdl"] == true));
    let back: Program = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, prog);
}

/// Decode runs one kernel per KDA layer: the conv, the f_b and g_b GEMMs, the decay gate and the
/// recurrence of every KDA layer become one `kda_decode_step` launch (prefill keeps them all),
/// and GDN layers keep their unfused decode. The absorbed steps point at the layer's core step,
/// and the values the kernel reads instead stay live until it runs: no buffer it reads is
/// written by the layer's steps in between (the interpreter tests check the numbers).
#[test]
fn decode_runs_one_kernel_per_kda_layer() {
    use modelc::ir::DecayKind;
    use modelc_runtime::program::Step;
    let module_kind = step_kind;
    let specs = tiny_specs();
    for name in ["tiny-hybrid", "tiny-kda", "tiny-gdn"] {
        let (_, spec) = specs.iter().find(|(n, _)| n == name).expect("tiny spec");
        let p = modelc::passes::Placement::main(spec);
        let cg = generate(placed(spec, &p)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let prog = program::build(&cg, name, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut kda_layers = 0;
        let mut gdn_layers = 0;
        for (i, (step, code)) in cg.plan.steps.iter().zip(&cg.steps).enumerate() {
            let StepKind::Core(core) = &step.kind else { continue };
            let Op::DeltaRule(d) = &cg.graph.node(core.node()).op else {
                continue;
            };
            let absorbed: Vec<usize> = (0..cg.steps.len())
                .filter(|&a| cg.steps[a].decode_absorbed_by == Some(i))
                .collect();
            if d.decay == DecayKind::PerChannel {
                kda_layers += 1;
                assert_eq!(code.decode.len(), 1, "{name}: step {i}");
                assert!(
                    code.decode[0].entry.starts_with("kda_decode_step_"),
                    "{name}: {}",
                    code.decode[0].entry
                );
                // conv, f_b GEMM, decay gate + sigmoid, g_b GEMM.
                let kinds: Vec<String> = absorbed
                    .iter()
                    .map(|&a| match &cg.plan.steps[a].kind {
                        StepKind::Gemm { .. } => "gemm".to_string(),
                        StepKind::Glue => "glue".to_string(),
                        StepKind::Core(_) => "core".to_string(),
                    })
                    .collect();
                let mut sorted = kinds.clone();
                sorted.sort();
                assert_eq!(
                    sorted,
                    ["core", "gemm", "gemm", "glue"],
                    "{name}: step {i} absorbs {kinds:?}"
                );
                for &a in &absorbed {
                    assert!(a < i, "{name}: absorbed step {a} after its kernel's step {i}");
                    assert!(
                        cg.steps[a].decode.is_empty(),
                        "{name}: absorbed step {a} still launches"
                    );
                }
                assert_eq!(code.decode_reads.len(), 4, "{name}: conv input, f_a, beta logits, g_a");
            } else {
                gdn_layers += 1;
                assert!(absorbed.is_empty(), "{name}: GDN keeps its unfused decode");
                assert!(code.decode[0].entry.starts_with("delta_rule_recurrent_"));
            }
        }
        let count = |steps: &[Step], k: &str| steps.iter().filter(|s| module_kind(s) == k).count();
        let (pre, dec) = (&prog.prefill.steps, &prog.decode.steps);
        assert_eq!(count(dec, "kda_decode_step"), kda_layers, "{name}");
        assert_eq!(
            count(pre, "kda_decode_step"),
            0,
            "{name}: prefill keeps the unfused kernels"
        );
        // Decode launches conv1d and the decay gate only for the layers the kernel leaves alone
        // (GDN, Mamba); prefill launches them for every layer.
        assert_eq!(count(pre, "conv1d") - count(dec, "conv1d"), kda_layers, "{name}");
        assert_eq!(
            count(pre, "gemm") - count(dec, "gemm"),
            2 * kda_layers,
            "{name}: f_b and g_b GEMMs leave decode"
        );
        match name {
            "tiny-kda" => assert_eq!((kda_layers, gdn_layers), (2, 0)),
            "tiny-gdn" => assert_eq!(kda_layers, 0),
            _ => assert!(kda_layers >= 1 && gdn_layers >= 1, "{name}"),
        }
    }
}

/// On Hopper, the KDA decode step splits each head over a cluster of CTAs: a launch variant for
/// compute capability 9.0 of an sm_90a module, with the same arguments as the single-block
/// kernel (which stays the launch everywhere else), where each CTA gets at least 16 value
/// columns (the codegen specs' Dv = 32: clusters of 2), for calls whose single-block grid would
/// leave more than half the SMs idle; the tiny specs (Dv 8, 16) have none.
/// A device of another compute capability neither launches nor compiles it.
#[test]
fn kda_decode_step_has_a_hopper_cluster_form() {
    use modelc_runtime::cuda::nvrtc::HOPPER_TARGET;
    use modelc_runtime::program::{ComputeCapability, Env, Step};
    let mut specs = codegen_specs();
    specs.extend(tiny_specs());
    let mut with_variant = Vec::new();
    for (name, spec) in &specs {
        let p = modelc::passes::Placement::main(spec);
        let cg = generate(placed(spec, &p)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let prog = program::build(&cg, name, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let module = |m: &str| prog.kernels.iter().find(|k| k.name == m).expect("module");
        let mut clusters = Vec::new();
        for st in &prog.decode.steps {
            let Step::Launch(l) = st else { continue };
            if step_kind(st) != "kda_decode_step" {
                assert!(l
                    .variants
                    .iter()
                    .all(|v| !v.entry.starts_with("kda_decode_step_cluster_")));
                continue;
            }
            assert_eq!(module(&l.module).target, None, "{name}: the fallback runs anywhere");
            for v in &l.variants {
                assert_eq!(v.cc, Some(ComputeCapability::HOPPER));
                assert!(v.entry.starts_with("kda_decode_step_cluster_"), "{name}: {}", v.entry);
                assert_eq!(module(&v.module).target.as_deref(), Some(HOPPER_TARGET));
                assert!(v.pdl && l.pdl, "{name}");
                let env = Env {
                    batch: 3,
                    tokens: 1,
                    past: 7,
                    max_len: 64,
                    slots: 4,
                    slot: 0,
                    sms: 132,
                };
                let own = [0, 1, 2].map(|i| l.grid[i].eval(&env).expect("grid"));
                let cl = [0, 1, 2].map(|i| v.grid[i].eval(&env).expect("grid"));
                // Heads x cluster size, a row of clusters per sequence.
                assert_eq!(cl, [2 * own[0], 3, 1], "{name}: clusters of 2");
                assert_eq!((v.block, v.smem), ([64, 1, 1], 0), "{name}");
                // Only while one block per (head, sequence) would leave over half the SMs idle.
                let heads = own[0];
                let when = v.when.as_ref().expect("a batch condition");
                for (batch, sms, holds) in [(1, 132, true), (3, 132, 2 * heads * 3 < 132), (3, 2 * heads * 3, false)] {
                    let e = Env { batch, sms, ..env };
                    assert_eq!(
                        when.holds(&e).unwrap(),
                        holds,
                        "{name}: {when} at batch {batch}, {sms} SMs"
                    );
                }
                clusters.push(v.module.clone());
            }
        }
        if !clusters.is_empty() {
            with_variant.push(name.clone());
            // Specialised for Ampere, the program neither launches nor compiles the cluster form.
            let mut ampere = prog.clone();
            ampere.specialize(ComputeCapability { major: 8, minor: 0 });
            let used: Vec<&str> = ampere.used_modules().iter().map(|m| m.name.as_str()).collect();
            assert!(clusters.iter().all(|m| !used.contains(&m.as_str())), "{name}: {used:?}");
            let mut hopper = prog.clone();
            hopper.specialize(ComputeCapability::HOPPER);
            let used: Vec<&str> = hopper.used_modules().iter().map(|m| m.name.as_str()).collect();
            assert!(clusters.iter().all(|m| used.contains(&m.as_str())), "{name}: {used:?}");
        }
        prog.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    with_variant.sort();
    assert_eq!(with_variant, ["codegen-hybrid", "codegen-variants"]);
}

/// The KDA step's first test shape (`kda_step_shapes`, compiled by `nvrtc_compile` and run by
/// `gpu_kernels`) is exactly what the codegen emits for `specs/hybrid-1b.yaml`: both the
/// kernel and its Hopper cluster form (module names hash the source, so equal names mean equal
/// kernels). Keeps the hand-written shape from drifting away from the model it stands for.
#[test]
fn the_kda_step_test_shape_is_hybrid_1b() {
    use modelc::codegen::templates::kda_decode_step::{
        kda_decode_step, kda_decode_step_cluster, kda_decode_step_cluster_size,
    };
    let spec = modelc::spec::load(&repo().join("specs/hybrid-1b.yaml")).expect("spec");
    let p = modelc::passes::Placement::main(&spec);
    let cg = generate(placed(&spec, &p)).expect("codegen");
    let prog = program::build(&cg, "hybrid-1b", &p).expect("program");
    let modules: std::collections::HashSet<&str> = prog
        .kernels
        .iter()
        .filter(|k| k.name.starts_with("kda_decode_step"))
        .map(|k| k.name.as_str())
        .collect();
    let (big, _) = &kda_step_shapes::kda_step_cases()[0];
    let cluster = kda_decode_step_cluster_size(big).expect("hybrid-1b splits its heads");
    let want = [
        kda_decode_step(big).expect("supported").name().to_string(),
        kda_decode_step_cluster(big, cluster)
            .expect("supported")
            .name()
            .to_string(),
    ];
    let want: std::collections::HashSet<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(modules, want, "the KDA step kernels hybrid-1b compiles to");
}
