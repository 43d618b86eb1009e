//! Structural properties of the fusion plan and the generated kernels:
//! - every node of the merged graph is covered exactly once (a step, a view, or graph I/O), and
//!   every projection of the placed graph lands in exactly one GEMM;
//! - identical layers share kernels: the kernel set does not grow with depth;
//! - generation is deterministic, and each kernel's name carries the hash of its source;
//! - the program validates, and its decode schedule has the launches the table reports.

mod codegen_common;

use std::collections::{BTreeMap, BTreeSet};

use codegen_common::{all_specs, codegen_specs, placed, placements};
use modelc::codegen::kernel::sha256_hex;
use modelc::codegen::{fuse_graph, generate, program};
use modelc::ir::Op;
use modelc::passes::fuse::StepKind;
use modelc::spec::{self, ModelSpec};

#[test]
fn every_node_is_covered_exactly_once() {
    for (name, spec) in all_specs() {
        for (pname, p) in placements(&spec) {
            let label = format!("{name}[{pname}]");
            let g = placed(&spec, &p);
            let linears: Vec<String> =
                g.g.node_indices()
                    .filter(|&n| matches!(g.node(n).op, Op::Linear { .. }))
                    .filter_map(|n| match &g.node(g.inputs(n)[1].node).op {
                        Op::Weight { key, .. } => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
            let convs: Vec<String> =
                g.g.node_indices()
                    .filter(|&n| matches!(g.node(n).op, Op::CausalConv1d { .. }))
                    .filter_map(|n| match &g.node(g.inputs(n)[1].node).op {
                        Op::Weight { key, .. } => Some(key.clone()),
                        _ => None,
                    })
                    .collect();
            let fused = fuse_graph(g).unwrap_or_else(|e| panic!("{label}: {e}"));
            let (merged, packs, plan) = (fused.graph, fused.packs, fused.plan);
            let mut count: BTreeMap<usize, usize> = BTreeMap::new();
            for s in &plan.steps {
                for n in &s.nodes {
                    *count.entry(n.index()).or_default() += 1;
                }
            }
            for n in plan.views.keys() {
                *count.entry(n.index()).or_default() += 1;
            }
            for n in merged.g.node_indices() {
                let io = matches!(
                    merged.node(n).op,
                    Op::Input { .. } | Op::Weight { .. } | Op::Output { .. }
                );
                let c = count.get(&n.index()).copied().unwrap_or(0);
                let want = usize::from(!io);
                assert_eq!(
                    c,
                    want,
                    "{label}: node {} ({}) covered {c} times",
                    n.index(),
                    merged.node(n).op.name()
                );
            }
            // Each original projection's weight is read by exactly one GEMM, packed or not.
            let mut gemm_weights: Vec<String> = Vec::new();
            for s in &plan.steps {
                if let StepKind::Gemm { linear, .. } = &s.kind {
                    let Op::Weight { key, .. } = &merged.node(merged.inputs(*linear)[1].node).op else {
                        panic!("{label}: GEMM without a weight")
                    };
                    match packs.iter().find(|p| &p.key == key) {
                        Some(p) => gemm_weights.extend(p.parts.iter().map(|x| x.key.clone())),
                        None => gemm_weights.push(key.clone()),
                    }
                }
            }
            let (mut a, mut b) = (linears.clone(), gemm_weights);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{label}: projections vs GEMM weights");
            // Each conv's weight is read by exactly one conv core, packed or not.
            let mut conv_weights: Vec<String> = Vec::new();
            for s in &plan.steps {
                if let StepKind::Core(modelc::passes::fuse::Core::Conv { node }) = &s.kind {
                    let Op::Weight { key, .. } = &merged.node(merged.inputs(*node)[1].node).op else {
                        panic!("{label}: conv without a weight")
                    };
                    match packs.iter().find(|p| &p.key == key) {
                        Some(p) => conv_weights.extend(p.parts.iter().map(|x| x.key.clone())),
                        None => conv_weights.push(key.clone()),
                    }
                }
            }
            let (mut a, mut b) = (convs, conv_weights);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{label}: convs vs conv cores");
            assert!(
                plan.steps
                    .iter()
                    .filter(|s| matches!(s.kind, StepKind::Gemm { .. }))
                    .count()
                    < linears.len(),
                "{label}: nothing was merged"
            );
        }
    }
}

/// The spec with `num_blocks` replaced (a fixed decoder, or a pattern repeated).
fn with_depth(spec_text: &str, depth: usize) -> ModelSpec {
    let text: Vec<String> = spec_text
        .lines()
        .map(|l| match l.split_once("num_blocks:") {
            Some((indent, _)) => format!("{indent}num_blocks: {depth}"),
            None => l.to_string(),
        })
        .collect();
    spec::parse_str(&text.join("\n"), "depth variant", spec::Format::Yaml).expect("spec parses")
}

fn kernel_names(spec: &ModelSpec) -> BTreeSet<String> {
    let cg = generate(placed(spec, &modelc::passes::Placement::main(spec))).expect("generates");
    cg.kernels.iter().map(|k| k.name.clone()).collect()
}

#[test]
fn kernel_count_does_not_grow_with_depth() {
    let text = std::fs::read_to_string(codegen_common::repo().join("tests/golden/specs/codegen-hybrid.yaml"))
        .expect("codegen-hybrid.yaml");
    let names = |depth: usize| {
        let spec = with_depth(&text, depth);
        assert_eq!(spec.layers.len(), depth);
        kernel_names(&spec)
    };
    let five = names(5);
    assert_eq!(five, names(10), "a second period of the pattern added kernels");
    assert_eq!(five, names(15));
    // A fixed decoder: 2 layers and 6 layers give the same kernel set.
    let text = std::fs::read_to_string(codegen_common::repo().join("specs/tiny-mamba.yaml")).expect("tiny-mamba.yaml");
    let two = kernel_names(&with_depth(&text, 2));
    assert_eq!(two, kernel_names(&with_depth(&text, 6)));
    assert!(two.len() >= 5, "{two:?}");
}

#[test]
fn generation_is_deterministic_and_names_hash_sources() {
    for (name, spec) in codegen_specs() {
        let p = modelc::passes::Placement::main(&spec);
        let a = generate(placed(&spec, &p)).expect("generates");
        let b = generate(placed(&spec, &p)).expect("generates");
        let sa: Vec<(&str, &str)> = a.kernels.iter().map(|k| (k.name.as_str(), k.source.as_str())).collect();
        let sb: Vec<(&str, &str)> = b.kernels.iter().map(|k| (k.name.as_str(), k.source.as_str())).collect();
        assert_eq!(sa, sb, "{name}: two runs differ");
        let mut seen = BTreeSet::new();
        for k in &a.kernels {
            assert!(seen.insert(k.name.clone()), "{name}: kernel name {} twice", k.name);
            assert!(k.source.contains(&k.name), "{name}: {} not named in its source", k.name);
            for e in &k.entries {
                assert!(
                    k.source.contains(&format!("{e}(")),
                    "{name}: entry {e} missing from its source"
                );
            }
            let hash = k.name.rsplit('_').next().unwrap_or("");
            assert!(
                hash.len() >= 8 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
                "{name}: {} has no hash",
                k.name
            );
            assert!(
                k.source.contains("Fuses, in order:"),
                "{name}: {} has no header",
                k.name
            );
        }
        let pa = program::build(&a, &name, &p).expect("program");
        let json = serde_json::to_string(&pa).expect("serialises");
        let back: modelc_runtime::program::Program = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, pa, "{name}: program.json does not round-trip");
        for (k, m) in a.kernels.iter().zip(&pa.kernels) {
            assert_eq!(m.sha256, sha256_hex(&k.source));
        }
    }
}

#[test]
fn glue_kernels_fuse_what_the_issue_lists() {
    let spec = &codegen_specs()
        .into_iter()
        .find(|(n, _)| n == "codegen-hybrid")
        .expect("codegen-hybrid")
        .1;
    let cg = generate(placed(spec, &modelc::passes::Placement::main(spec))).expect("generates");
    let kinds: BTreeSet<&str> = cg.kernels.iter().map(|k| k.kind.as_str()).collect();
    for want in ["embedding_rms_norm", "rope", "silu_mul", "rms_norm"] {
        assert!(kinds.contains(want), "no `{want}` kernel: {kinds:?}");
    }
    // GDN/KDA's output norm is the delta rule's epilogue, not a glue kernel.
    assert!(!kinds.iter().any(|k| k.contains("gated_rms_norm")), "{kinds:?}");
    // Residual adds ride on the o_proj/down_proj GEMMs: one per mixer and one per MLP.
    let residual = cg
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Gemm { residual: Some(_), .. }))
        .count();
    assert_eq!(residual, 2 * spec.layers.len());
    // No step computes a lone add or unary op that could have fused.
    for s in &cg.plan.steps {
        if s.kind == StepKind::Glue && s.nodes.len() == 1 {
            let op = &cg.graph.node(s.nodes[0]).op;
            assert!(
                !matches!(op, Op::Add | Op::Mul | Op::Unary(_) | Op::Scale(_)),
                "unfused {}",
                op.name()
            );
        }
    }
    // The delta-rule cores absorbed the q/k L2 norms, the scale and the gated output norm; the
    // scan its gates.
    let mut delta_rules = 0;
    for s in &cg.plan.steps {
        if let StepKind::Core(c) = &s.kind {
            let ops: Vec<String> = s.nodes.iter().map(|&n| cg.graph.node(n).op.name()).collect();
            match cg.graph.node(c.node()).op {
                Op::DeltaRule(_) => {
                    delta_rules += 1;
                    assert_eq!(ops.iter().filter(|o| *o == "l2_norm").count(), 2, "{ops:?}");
                    assert_eq!(ops.iter().filter(|o| *o == "gated_rms_norm").count(), 1, "{ops:?}");
                }
                Op::SelectiveScan { .. } => {
                    for o in ["softplus", "add", "silu", "mul"] {
                        assert!(ops.iter().any(|x| x == o), "scan did not absorb {o}: {ops:?}")
                    }
                }
                _ => {}
            }
        }
    }
    assert!(delta_rules >= 2, "codegen-hybrid has GDN and KDA layers");
}
