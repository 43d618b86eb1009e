//! `modelc build` on every spec in `specs/`: it succeeds, writes its files, and the summary's
//! parameter count equals the weight sizes the lowering declares and the spec's layout.

use std::path::{Path, PathBuf};
use std::process::Command;

use modelc::ir::lower::lower_model;
use modelc::spec::{self, layout};

fn specs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("specs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 9, "specs/ should hold the tiny and 1B specs");
    v
}

#[test]
fn build_succeeds_on_every_spec_and_counts_parameters_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for path in specs() {
        let out = tmp.path().join(path.file_stem().expect("stem"));
        let run = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .args(["build", path.to_str().expect("utf8"), "-o", out.to_str().expect("utf8")])
            .output()
            .expect("runs modelc");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        for f in [
            "config.json",
            "ir.lowered.txt",
            "ir.lowered.dot",
            "ir.placed.txt",
            "summary.txt",
            "summary.json",
            // The crate of typed weights (tests/typed_app.rs builds and uses one).
            "Cargo.toml",
            "src/lib.rs",
            "README.md",
        ] {
            assert!(out.join(f).is_file(), "{}: {f} missing", path.display());
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
        let total = summary["params_total"].as_u64().expect("params_total") as usize;

        let spec = spec::load(&path).expect("spec");
        let graph = lower_model(&spec).expect("lowers");
        let declared: usize = graph
            .weights()
            .iter()
            .map(|(_, _, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(total, declared, "{}: summary vs lowering", path.display());
        assert_eq!(
            total,
            layout::parameter_count(&spec),
            "{}: summary vs spec layout",
            path.display()
        );
        let by_group: u64 = summary["params_by_group"]
            .as_object()
            .expect("groups")
            .values()
            .map(|v| v.as_u64().unwrap_or(0))
            .sum();
        assert_eq!(by_group as usize, total, "{}: groups do not add up", path.display());
        assert!(
            stdout.contains(&format!("({total})")),
            "{}: summary not printed",
            path.display()
        );
        // The lowered weights are exactly the layout's keys and shapes.
        let mut from_graph: Vec<(String, Vec<usize>)> = graph
            .weights()
            .iter()
            .map(|(_, k, s)| (k.to_string(), s.to_vec()))
            .collect();
        let mut from_layout: Vec<(String, Vec<usize>)> =
            layout::weights(&spec).into_iter().map(|w| (w.key, w.shape)).collect();
        from_graph.sort();
        from_layout.sort();
        assert_eq!(
            from_graph,
            from_layout,
            "{}: lowering and layout disagree",
            path.display()
        );
    }
}

#[test]
fn the_1b_hybrid_has_the_advertised_shape() {
    let spec = spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/hybrid-1b.yaml")).expect("spec");
    let params = layout::parameter_count(&spec);
    assert!((0.9e9..1.3e9).contains(&(params as f64)), "{params} parameters");
    let kinds: Vec<String> = spec.layers.iter().map(|l| l.mixer.kind().to_string()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "kda").count(), 18);
    assert_eq!(kinds.iter().filter(|k| *k == "attention").count(), 6);
}

#[test]
fn graph_text_is_deterministic_and_dot_is_well_formed() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/tiny-supernet.yaml");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .arg("graph")
            .arg(&spec)
            .args(extra)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8")
    };
    let a = run(&[]);
    assert_eq!(a, run(&[]), "two dumps differ");
    assert!(a.contains("route[layer=0"), "the lowered supernet shows its routes");
    let placed = run(&["--stage", "placed", "--placement", "kda"]);
    assert!(!placed.contains("route["), "placement removes routes");
    assert!(placed.contains("delta_rule"), "kda placement keeps the delta rule");
    assert!(!placed.contains("selective_scan"), "kda placement drops mamba");
    let dot = run(&["--dot"]);
    assert!(dot.starts_with("digraph modelc {") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
}

#[test]
fn bad_placement_is_a_clear_error() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/tiny-supernet.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args([
            "graph",
            spec.to_str().expect("utf8"),
            "--stage",
            "placed",
            "--placement",
            "0=nope",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("layer 0 has no sub-mixer `nope`") && err.contains("attention"),
        "{err}"
    );
}

/// `MODELC_DELTA_SCAN_OUT=1` (read when a spec is compiled) gives each chunk-parallel delta
/// rule's scan step the scan with the output pass as its first variant, for calls whose scan
/// blocks are all resident, and the output pass's step the same condition as `skip_when`;
/// without it programs carry neither.
#[test]
fn the_scan_with_the_output_pass_is_an_opt_in_variant() {
    use modelc_runtime::program::{Env, Program, Step};
    let tmp = tempfile::tempdir().expect("tempdir");
    let build_waves = |setting: Option<&str>, waves: bool, out: &Path| {
        let settings = [
            ("MODELC_DELTA_SCAN_OUT", setting),
            ("MODELC_DELTA_SCAN_OUT_WAVES", waves.then_some("1")),
        ];
        build_hybrid_1b(&settings, out)
    };
    let build = |setting: Option<&str>, out: &Path| build_waves(setting, false, out);
    // hybrid-1b's KDA: 16 heads of Dv 128, scan blocks of 16 (128 blocks a sequence). The
    // setting, the width of the fused launch's blocks (None: no fused launch), and where it runs
    // (batch, SMs, runs): one wave of blocks, one an SM.
    // With MODELC_DELTA_SCAN_OUT_WAVES=1, every call takes it (in waves where it must).
    type Case = (Option<&'static str>, bool, Option<u32>, &'static [(u64, u64, bool)]);
    let cases: [Case; 5] = [
        (None, false, None, &[]),
        (
            Some("1"),
            false,
            Some(16),
            &[(1, 132, true), (1, 128, true), (1, 114, false), (2, 132, false)],
        ),
        (
            Some("32"),
            false,
            Some(32),
            &[(1, 64, true), (1, 63, false), (2, 132, true), (3, 132, false)],
        ),
        (
            Some("64"),
            false,
            Some(64),
            &[(1, 32, true), (4, 128, true), (5, 132, false)],
        ),
        (
            Some("32"),
            true,
            Some(32),
            &[(1, 63, true), (3, 132, true), (8, 132, true)],
        ),
    ];
    for (setting, waves, width, runs) in cases {
        let out = tmp.path().join(format!("{}-{waves}", setting.unwrap_or("off")));
        let run = build_waves(setting, waves, &out);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let text = std::fs::read_to_string(out.join("program.json")).expect("program.json");
        let program: Program = serde_json::from_str(&text).expect("a program");
        let steps = &program.prefill.steps;
        let mut scans = 0;
        for (i, st) in steps.iter().enumerate() {
            let Step::Launch(scan) = st else { continue };
            if !scan.entry.starts_with("delta_rule_cp_scan_") {
                continue;
            }
            scans += 1;
            let Some(Step::Launch(out)) = steps.get(i + 1) else {
                panic!("{}: no output pass after the scan", scan.label)
            };
            assert!(out.entry.starts_with("delta_rule_cp_out_"), "{}", out.entry);
            let fused = scan
                .variants
                .first()
                .filter(|v| v.entry.starts_with("delta_rule_cp_scan_out_"));
            assert_eq!(fused.is_some(), width.is_some(), "{}", scan.label);
            assert_eq!(out.skip_when.is_some(), width.is_some(), "{}", out.label);
            let (Some(fused), Some(width)) = (fused, width) else {
                continue;
            };
            assert_eq!(out.skip_when, fused.when, "{}", out.label);
            for &(batch, sms, runs) in runs {
                let env = Env {
                    batch,
                    sms,
                    ..Env::default()
                };
                let chosen = scan.pick(&env).expect("a launch").entry;
                assert_eq!(chosen == fused.entry, runs, "batch {batch} on {sms} SMs: {chosen}");
                assert_eq!(
                    out.skips(&env).expect("a condition"),
                    runs,
                    "batch {batch} on {sms} SMs"
                );
                // The fused launch's grid: a block per `width` value columns of a head.
                if runs {
                    let x = fused.grid[0].eval(&env).expect("grid");
                    assert_eq!(x, u64::from(128 / width), "{}", fused.entry);
                }
            }
            // The fused entry lives in the scan's module, which compiles it with the rest.
            let module = program.kernels.iter().find(|k| k.name == fused.module).expect("module");
            assert!(module.entries.contains(&fused.entry), "{}", fused.entry);
        }
        assert_eq!(scans, 18, "hybrid-1b: 18 KDA layers");
    }
    // A value it does not know is an error that names the variable and what it takes, before
    // anything is written.
    let out = tmp.path().join("bad");
    let run = build(Some("48"), &out);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("MODELC_DELTA_SCAN_OUT=\"48\"") && err.contains("16, 32 or 64"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    let run = build_hybrid_1b(&[("MODELC_DELTA_SCAN_OUT_WAVES", Some("yes"))], &out);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("MODELC_DELTA_SCAN_OUT_WAVES=\"yes\""), "{err}");
    assert!(!out.exists(), "nothing written");
}

/// `MODELC_ATTN_DECODE_FUSED=1` (or `2`, loading the first tiles before the dependent-launch
/// wait; or `3`, that with RoPE folded into both decode forms, the rope step then gone from
/// decode) adds the attention decode with the combine in its last block as
/// the decode step's variant, taken where a call has at most 16 splits, and skips the combine's
/// step exactly then; the counts it keeps are a buffer of their own that stays zero. Unset, the
/// program has none of it; any other value is refused before anything is written.
#[test]
fn the_fused_attention_decode_is_an_opt_in_variant() {
    use modelc_runtime::program::{Env, Program, Step};
    use modelc_runtime::tensor::DType;
    let tmp = tempfile::tempdir().expect("tempdir");
    let build = |setting: Option<&str>, out: &Path| build_hybrid_1b(&[("MODELC_ATTN_DECODE_FUSED", setting)], out);
    // hybrid-1b's attention: 16 heads, 4 KV heads, Dh 128; splits = min(2·SMs / (4·batch),
    // ceil((past + 1) / 64)). (batch, past, fused): 9, 16, 17, 64 and 8 splits on 132 SMs.
    let calls: [(u64, u64, bool); 5] = [
        (1, 512, true),
        (1, 1023, true),
        (1, 1024, false),
        (1, 4095, false),
        (8, 4096, true),
    ];
    for setting in [None, Some("0"), Some("1"), Some("2"), Some("3")] {
        let on = matches!(setting, Some("1" | "2" | "3"));
        let rope = setting == Some("3");
        let out = tmp.path().join(setting.unwrap_or("unset"));
        let run = build(setting, &out);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let text = std::fs::read_to_string(out.join("program.json")).expect("program.json");
        let program: Program = serde_json::from_str(&text).expect("a program");
        let counters: Vec<_> = program.buffers.iter().filter(|b| b.counters).collect();
        assert_eq!(counters.len(), usize::from(on), "{setting:?}");
        if let Some(c) = counters.first() {
            assert_eq!(c.dtype, DType::I32);
            assert_eq!(c.elements.to_string(), "4*batch", "a count per KV head and sequence");
        }
        let steps = &program.decode.steps;
        let mut decodes = 0;
        for (i, st) in steps.iter().enumerate() {
            let Step::Launch(decode) = st else { continue };
            if !decode.entry.starts_with("attn_decode_") || decode.entry.starts_with("attn_decode_combine_") {
                continue;
            }
            decodes += 1;
            let Some(Step::Launch(combine)) = steps.get(i + 1) else {
                panic!("{}: no combine after the decode", decode.label)
            };
            assert!(combine.entry.starts_with("attn_decode_combine_"), "{}", combine.entry);
            let fused = decode
                .variants
                .iter()
                .find(|v| v.entry.starts_with("attn_decode_fused_"));
            assert_eq!(fused.is_some(), on, "{}", decode.label);
            assert_eq!(combine.skip_when.is_some(), on, "{}", combine.label);
            let Some(fused) = fused else { continue };
            assert_eq!(combine.skip_when, fused.when, "{}", combine.label);
            for &(batch, past, runs) in &calls {
                let env = Env {
                    batch,
                    past,
                    tokens: 1,
                    sms: 132,
                    ..Env::default()
                };
                let chosen = decode.pick(&env).expect("a launch").entry;
                assert_eq!(chosen == fused.entry, runs, "batch {batch} past {past}: {chosen}");
                assert_eq!(
                    combine.skips(&env).expect("a condition"),
                    runs,
                    "batch {batch} past {past}"
                );
                // The same grid as the decode's: a block per split, KV head and sequence.
                for (f, d) in fused.grid.iter().zip(&decode.grid) {
                    assert_eq!(f.eval(&env).expect("grid"), d.eval(&env).expect("grid"));
                }
            }
            // Its module is its own, compiled only where the setting asks for it.
            let module = program.kernels.iter().find(|k| k.name == fused.module).expect("module");
            assert_eq!(module.entries, vec![fused.entry.clone()]);
            let source = std::fs::read_to_string(out.join(&module.file)).expect("kernel source");
            assert!(source.contains("atomicAdd(count + b * G + g, 1u)"), "{}", module.file);
            // At 2 its blocks wait for the kernel before only after their first tiles' loads.
            let wait = source.find("modelc_pdl_enter();").expect("a dependent-launch wait");
            let first_loads = source.find("if (t < n_tiles) load_tile(t);").expect("the first loads");
            assert_eq!(
                wait > first_loads,
                matches!(setting, Some("2" | "3")),
                "{}",
                module.file
            );
            // At 3 both decode forms rotate q and the new key themselves: they read the rope's
            // inputs (five arguments more), and the rope step has no decode launch.
            let base = program
                .kernels
                .iter()
                .find(|k| k.name == decode.module)
                .expect("module");
            let base_source = std::fs::read_to_string(out.join(&base.file)).expect("kernel source");
            for text in [&source, &base_source] {
                assert_eq!(text.contains("knew = k_rot;"), rope, "{}", module.file);
                assert_eq!(text.contains(" *   rope(head_dim=128"), rope, "{}", module.file);
            }
            assert_eq!(decode.args.len(), if rope { 17 } else { 12 }, "{}", decode.label);
        }
        assert_eq!(decodes, 6, "hybrid-1b: 6 attention layers");
        // Prefill keeps every rope step; decode keeps them where RoPE is not folded in.
        let ropes = |steps: &[Step]| {
            steps
                .iter()
                .filter(|s| matches!(s, Step::Launch(l) if l.entry.starts_with("rope_")))
                .count()
        };
        assert_eq!(ropes(&program.prefill.steps), 6);
        assert_eq!(ropes(&program.decode.steps), if rope { 0 } else { 6 });
        assert_eq!(program.decode.steps.len(), if rope { 128 } else { 134 });
    }
    let out = tmp.path().join("bad");
    let run = build(Some("yes"), &out);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("MODELC_ATTN_DECODE_FUSED=\"yes\"") && err.contains("3 (that, and RoPE folded in)"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

/// `modelc build specs/hybrid-1b.yaml -o OUT` with each codegen setting `(var, value)` set
/// (or removed where the value is `None`).
fn build_hybrid_1b(settings: &[(&str, Option<&str>)], out: &Path) -> std::process::Output {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/hybrid-1b.yaml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelc"));
    cmd.args(["build", spec.to_str().expect("utf8"), "-o", out.to_str().expect("utf8")]);
    for &(var, setting) in settings {
        match setting {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    cmd.output().expect("runs modelc")
}
