//! Plan expressions (reference §4.2, §4.6): composition, merge, fusion, JSON, shape checks,
//! rendering, and the seeded initialisers.

mod surgery_util;

use modelc::surgery::eval::{evaluate_owned, MemorySource};
use modelc::surgery::executor::execute_in_memory;
use modelc::surgery::expr::SliceRange;
use modelc::surgery::init::{generate, InitKind, SLOW_DECAY};
use modelc::surgery::render::format_ranges;
use modelc::surgery::{render_tree, Expr, Plan, PlanError};
use modelc_runtime::tensor::{DType, HostTensor};

fn r(k: &str) -> Expr {
    Expr::reference(k)
}

fn plan(entries: Vec<(&str, Expr)>) -> Plan {
    let mut p = Plan::new("a", "b");
    for (k, e) in entries {
        p.insert(k, e).unwrap();
    }
    p
}

#[test]
fn compose_substitutes_bound_refs_and_keeps_unbound_ones() {
    let p1 = plan(vec![("b", r("a").rows(0, 2)), ("c", r("x"))]);
    let p2 = plan(vec![
        ("out", Expr::concat(vec![r("b"), r("c"), r("unbound")], 0)),
        ("same", r("b")),
    ]);
    let c = p1.compose(&p2);
    assert_eq!(c.len(), 2);
    assert_eq!(
        c.get("out"),
        Some(&Expr::concat(vec![r("a").rows(0, 2), r("x"), r("unbound")], 0))
    );
    assert_eq!(c.get("same"), Some(&r("a").rows(0, 2)));
    assert_eq!(c.source_format, "a");
    let keys: Vec<String> = c.source_keys().into_iter().collect();
    assert_eq!(keys, ["a", "unbound", "x"]);
}

#[test]
fn compose_is_associative() {
    let p1 = plan(vec![("b1", r("a1")), ("b2", Expr::concat(vec![r("a1"), r("a2")], 0))]);
    let p2 = plan(vec![
        ("c1", Expr::concat(vec![r("b2"), r("b1")], 0)),
        ("c2", r("b2").rows(1, 3)),
    ]);
    let p3 = plan(vec![
        (
            "d1",
            Expr::concat(vec![r("c1"), Expr::concat(vec![r("c2"), r("c1")], 0)], 0),
        ),
        (
            "d2",
            Expr::Reshape {
                expr: Box::new(r("c2")),
                shape: vec![2, 1],
            },
        ),
    ]);
    let left = p1.compose(&p2).compose(&p3);
    let right = p1.compose(&p2.compose(&p3));
    assert_eq!(left, right);
    // Fused: no concat directly inside a concat along the same dim.
    fn nested(e: &Expr) -> bool {
        match e {
            Expr::Concat { exprs, dim } => exprs
                .iter()
                .any(|x| matches!(x, Expr::Concat { dim: d, .. } if d == dim) || nested(x)),
            Expr::Slice { expr, .. } | Expr::Reshape { expr, .. } => nested(expr),
            _ => false,
        }
    }
    assert!(left.iter().all(|(_, e)| !nested(e)));
}

#[test]
fn fuse_flattens_same_dim_concats_and_collapses_reshapes() {
    let e = Expr::concat(
        vec![Expr::concat(vec![r("a"), r("b")], 0), Expr::concat(vec![r("c")], 1)],
        0,
    )
    .fuse();
    assert_eq!(e, Expr::concat(vec![r("a"), r("b"), Expr::concat(vec![r("c")], 1)], 0));
    let rr = Expr::Reshape {
        expr: Box::new(Expr::Reshape {
            expr: Box::new(r("a")),
            shape: vec![4],
        }),
        shape: vec![2, 2],
    }
    .fuse();
    assert_eq!(
        rr,
        Expr::Reshape {
            expr: Box::new(r("a")),
            shape: vec![2, 2]
        }
    );
}

#[test]
fn merge_rejects_overlapping_targets() {
    let p1 = plan(vec![("x", r("a"))]);
    let p2 = plan(vec![("y", r("b"))]);
    let m = p1.merge(&p2).unwrap();
    assert_eq!(m.target_keys().collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(m.merge(&p1), Err(PlanError::DuplicateTarget { key: "x".into() }));
}

#[test]
fn json_round_trip_of_every_node() {
    let p = plan(vec![
        ("a", r("src")),
        (
            "b",
            Expr::Slice {
                expr: Box::new(r("src")),
                slices: vec![
                    SliceRange {
                        start: Some(1),
                        stop: None,
                        step: Some(2),
                    },
                    SliceRange::full(),
                ],
            },
        ),
        (
            "c",
            Expr::concat(vec![r("x"), Expr::init(vec![2, 3], InitKind::Kaiming, "c")], 1),
        ),
        (
            "d",
            Expr::init(
                vec![5],
                InitKind::DtBias {
                    dt_min: 0.01,
                    dt_max: 0.2,
                    dt_init_floor: 1e-3,
                },
                "d",
            ),
        ),
        (
            "e",
            Expr::Reshape {
                expr: Box::new(r("y")),
                shape: vec![6],
            },
        ),
        ("f", Expr::init(vec![2, 2], InitKind::Normal { std: 0.5 }, "f")),
    ]);
    let json = p.to_json();
    let back = Plan::from_json(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(json["mappings"]["d"]["init_params"]["dt_max"], serde_json::json!(0.2));
    let bad = serde_json::json!({"mappings": {"k": {"type": "slize"}}});
    let err = Plan::from_json(&bad).unwrap_err();
    assert!(
        err.to_string().contains("$.mappings.k") && err.to_string().contains("slize"),
        "{err}"
    );
}

fn shapes(k: &str) -> Option<Vec<usize>> {
    match k {
        "q" => Some(vec![64, 32]),
        "k" => Some(vec![16, 32]),
        _ => None,
    }
}

#[test]
fn shapes_are_checked_where_upstream_clamps() {
    let oob = r("k").rows(0, 32);
    match oob.shape(&shapes, "t.k_proj.weight") {
        Err(e @ PlanError::SliceOutOfBounds { .. }) => {
            let s = e.to_string();
            assert!(
                s.contains("t.k_proj.weight") && s.contains("0..32") && s.contains("[16, 32]") && s.contains("`k`"),
                "{s}"
            );
        }
        other => panic!("expected out of bounds, got {other:?}"),
    }
    assert!(matches!(
        r("nope").shape(&shapes, "t"),
        Err(PlanError::MissingSource { .. })
    ));
    assert!(matches!(
        Expr::concat(vec![r("q"), r("k")], 1).shape(&shapes, "t"),
        Err(PlanError::ConcatMismatch { .. })
    ));
    assert_eq!(
        Expr::concat(vec![r("q"), r("k")], 0).shape(&shapes, "t"),
        Ok(vec![80, 32])
    );
    assert!(matches!(
        Expr::Reshape {
            expr: Box::new(r("k")),
            shape: vec![5, 5]
        }
        .shape(&shapes, "t"),
        Err(PlanError::ReshapeMismatch { .. })
    ));
    let stepped = Expr::Slice {
        expr: Box::new(r("q")),
        slices: vec![SliceRange {
            start: Some(1),
            stop: Some(8),
            step: Some(3),
        }],
    };
    assert_eq!(stepped.shape(&shapes, "t"), Ok(vec![3, 32]));
    assert_eq!(
        Expr::init(vec![4, 4], InitKind::S4d, "x").shape(&shapes, "t"),
        Ok(vec![4, 4])
    );
    assert!(matches!(
        Expr::init(vec![4], InitKind::S4d, "x").shape(&shapes, "t"),
        Err(PlanError::BadInit { .. })
    ));
}

#[test]
fn layout_check_finds_missing_extra_and_misshapen_targets() {
    let p = plan(vec![("a", r("q")), ("b", r("k"))]);
    let declared = |v: &[(&str, &[usize])]| -> Vec<(String, Vec<usize>)> {
        v.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect()
    };
    assert_eq!(
        p.check_layout(&shapes, &declared(&[("a", &[64, 32]), ("b", &[16, 32])])),
        Ok(())
    );
    assert_eq!(
        p.check_layout(&shapes, &declared(&[("a", &[64, 32]), ("b", &[16, 32]), ("c", &[1])])),
        Err(PlanError::Unplanned { key: "c".into() })
    );
    assert_eq!(
        p.check_layout(&shapes, &declared(&[("a", &[64, 32])])),
        Err(PlanError::Undeclared { key: "b".into() })
    );
    assert!(matches!(
        p.check_layout(&shapes, &declared(&[("a", &[64, 32]), ("b", &[32, 32])])),
        Err(PlanError::ShapeMismatch { .. })
    ));
}

#[test]
fn render_collapses_identical_layers() {
    let mut p = Plan::new("llama", "apriel2");
    p.insert("model.embed_tokens.weight", r("model.embed_tokens.weight"))
        .unwrap();
    for l in 0..6 {
        let src = format!("model.layers.{l}.self_attn.q_proj.weight");
        let e = if l == 2 || l == 3 {
            Expr::concat(vec![r(&src).rows(0, 4), r(&src).rows(0, 4)], 0)
        } else {
            r(&src)
        };
        p.insert(format!("model.decoder.blocks.{l}.mixer.q_proj.weight"), e)
            .unwrap();
    }
    p.insert("lm_head.weight", r("lm_head.weight")).unwrap();
    let text = render_tree(&p);
    assert!(text.contains("blocks.[0..1, 4..5]"), "{text}");
    assert!(text.contains("blocks.[2..3]"), "{text}");
    assert!(
        text.contains("q_proj.weight ← model.layers.{i}.self_attn.q_proj.weight\n"),
        "{text}"
    );
    assert!(text.contains("model.layers.{i}.self_attn.q_proj.weight[0:4]"), "{text}");
    assert!(text.contains("lm_head.weight ← lm_head.weight"), "{text}");
    assert_eq!(text.matches("q_proj.weight ←").count(), 2, "{text}");
    assert_eq!(format_ranges(&[0, 1, 2, 5, 7, 8]), "0..2, 5, 7..8");
}

fn gen(kind: InitKind, shape: &[usize], key: &str) -> Vec<f64> {
    generate(&kind, shape, 42, key, DType::F64).unwrap().to_f64_vec()
}

#[test]
fn deterministic_inits_have_their_exact_values() {
    let s4d = gen(InitKind::S4d, &[3, 4], "k");
    for row in s4d.chunks(4) {
        for (n, &v) in row.iter().enumerate() {
            assert_eq!(v, ((n + 1) as f64).ln());
        }
    }
    for (kind, tap) in [(InitKind::IdentityConv, 1.0), (InitKind::ScaledIdentityConv, 0.5)] {
        let v = gen(kind, &[5, 1, 4], "k");
        for c in v.chunks(4) {
            assert_eq!(c, [0.0, 0.0, 0.0, tap]);
        }
    }
    assert!(gen(InitKind::SlowDecay, &[7], "k")
        .iter()
        .all(|&v| v == 0.1f64.ln() && v == SLOW_DECAY));
    assert!(gen(InitKind::Ones, &[3, 3], "k").iter().all(|&v| v == 1.0));
    assert!(gen(InitKind::Zeros, &[3, 3], "k").iter().all(|&v| v == 0.0));
}

/// Sample moments against the distribution's. With n = 65536 samples the standard error of the
/// mean is σ/256 and of the variance about σ²·0.0055; the bounds below are ≥ 5 standard errors.
#[test]
fn random_inits_follow_their_distributions() {
    let n = 1 << 16;
    let moments = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
        (m, var)
    };
    // kaiming 2-D: U(-1/√fan_in, 1/√fan_in), fan_in = shape[1] = 16: bound 0.25, var b²/3.
    let k = gen(InitKind::Kaiming, &[n / 16, 16], "w");
    assert!(k.iter().all(|&x| x.abs() <= 0.25));
    let (m, var) = moments(&k);
    assert!(m.abs() < 0.25 / 3f64.sqrt() / 256.0 * 5.0, "mean {m}");
    assert!((var - 0.25 * 0.25 / 3.0).abs() < 0.0208 * 0.03, "var {var}");
    // conv [C, 1, K]: fan_in 1, U(-1, 1).
    let c = gen(InitKind::Kaiming, &[n / 4, 1, 4], "conv");
    assert!(c.iter().all(|&x| x.abs() <= 1.0) && c.iter().any(|&x| x.abs() > 0.9));
    // 1-D kaiming and normal: N(0, 0.02²).
    for v in [
        gen(InitKind::Kaiming, &[n], "b"),
        gen(InitKind::Normal { std: 0.02 }, &[n], "n"),
    ] {
        let (m, var) = moments(&v);
        assert!(m.abs() < 0.02 / 256.0 * 5.0, "mean {m}");
        assert!((var.sqrt() - 0.02).abs() < 0.02 * 0.03, "std {}", var.sqrt());
    }
    // dt_bias: softplus(value) = dt ∈ [max(dt_min, floor), dt_max], log-uniform.
    let dt = gen(
        InitKind::DtBias {
            dt_min: 0.001,
            dt_max: 0.1,
            dt_init_floor: 1e-4,
        },
        &[n],
        "dt",
    );
    let softplus = |x: f64| x.exp().ln_1p();
    let dts: Vec<f64> = dt.iter().map(|&x| softplus(x)).collect();
    assert!(dts
        .iter()
        .all(|&d| (0.001 * (1.0 - 1e-9)..=0.1 * (1.0 + 1e-9)).contains(&d)));
    let (m_log, _) = moments(&dts.iter().map(|d| d.ln()).collect::<Vec<_>>());
    let want = (0.001f64.ln() + 0.1f64.ln()) / 2.0;
    assert!((m_log - want).abs() < 0.05, "mean log dt {m_log} vs {want}");
}

#[test]
fn random_inits_depend_only_on_seed_and_key() {
    let a = gen(InitKind::Kaiming, &[8, 8], "model.x");
    assert_eq!(a, gen(InitKind::Kaiming, &[8, 8], "model.x"));
    assert_ne!(a, gen(InitKind::Kaiming, &[8, 8], "model.y"));
    let other_seed = generate(&InitKind::Kaiming, &[8, 8], 43, "model.x", DType::F64)
        .unwrap()
        .to_f64_vec();
    assert_ne!(a, other_seed);
    // bf16 output is the f64 draw rounded once.
    let b = generate(&InitKind::Kaiming, &[8, 8], 42, "model.x", DType::BF16).unwrap();
    let from_f64 = HostTensor::from_f64(vec![8, 8], &a).unwrap().cast(DType::BF16);
    assert_eq!(b, from_f64);
    // Order independence: a plan evaluated forwards and backwards gives the same tensors.
    let src = MemorySource::default();
    let keys = ["t.a", "t.b", "t.c", "t.d"];
    let mut fwd = Plan::new("x", "y");
    let mut bwd = Plan::new("x", "y");
    for k in keys {
        fwd.insert(k, Expr::init(vec![4, 6], InitKind::Kaiming, k)).unwrap();
    }
    for k in keys.iter().rev() {
        bwd.insert(*k, Expr::init(vec![4, 6], InitKind::Kaiming, *k)).unwrap();
    }
    let f = execute_in_memory(&fwd, &src, DType::F32, 7).unwrap();
    let mut b = execute_in_memory(&bwd, &src, DType::F32, 7).unwrap();
    b.reverse();
    assert_eq!(f, b);
    assert_ne!(f[0].1, f[1].1);
}

#[test]
fn evaluation_slices_concats_and_reshapes_exactly() {
    let x: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let src = MemorySource::new([("x".to_string(), HostTensor::from_f32(vec![4, 6], &x).unwrap())]);
    let ev = |e: &Expr| evaluate_owned(e, &src, DType::F32, 0, "t").unwrap().to_f32_vec();
    assert_eq!(ev(&r("x").rows(1, 3)), x[6..18].to_vec());
    let cols = Expr::Slice {
        expr: Box::new(r("x")),
        slices: vec![
            SliceRange::full(),
            SliceRange {
                start: Some(1),
                stop: Some(6),
                step: Some(2),
            },
        ],
    };
    assert_eq!(ev(&cols), vec![1., 3., 5., 7., 9., 11., 13., 15., 17., 19., 21., 23.]);
    let cat1 = Expr::concat(vec![r("x").rows(0, 2), r("x").rows(2, 4)], 1);
    let got = ev(&cat1);
    assert_eq!(&got[..12], &[0., 1., 2., 3., 4., 5., 12., 13., 14., 15., 16., 17.]);
    let re = Expr::Reshape {
        expr: Box::new(r("x")),
        shape: vec![24],
    };
    assert_eq!(evaluate_owned(&re, &src, DType::F32, 0, "t").unwrap().shape, vec![24]);
    // Casting: f32 source, bf16 output, values exactly representable stay equal.
    let b = evaluate_owned(&r("x"), &src, DType::BF16, 0, "t").unwrap();
    assert_eq!(b.dtype, DType::BF16);
    assert_eq!(b.to_f32_vec(), x);
    // A missing source names the target and the key.
    let err = evaluate_owned(&r("nope"), &src, DType::F32, 0, "tgt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tgt") && err.contains("nope"), "{err}");
}
