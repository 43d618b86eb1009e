//! Every kernel template, in several constant combinations (the delta rule with and without its
//! gated-norm epilogue), compiles with NVRTC for sm_90 and exports the entry points it names.
//! Needs only libnvrtc (no GPU): `.ci/nvrtc.sh` installs it.
//! Skipped with a notice when libnvrtc cannot be loaded, unless `CI` is set (then it fails).

mod kda_step_shapes;
use kda_step_shapes::kda_step_cases;
use modelc::codegen::sass::{disassemble, find_cuobjdump, undefined_descriptors};
use modelc::codegen::templates::attention::{
    attention_decode, attention_decode_fused, attention_decode_rope, attention_decode_variant, attention_prefill,
    attention_prefill_mma, attention_prefill_wgmma, attention_prefill_wgmma_variant, mma_decode, tensor_core_prefill,
    AttentionParams, DecodeVariant, MmaVariant, WgmmaVariant, ATTN_DECODE_DEFAULT, ATTN_MMA_DEFAULT,
};
use modelc::codegen::templates::conv1d::{conv1d, Conv1dParams, ConvActivation};
use modelc::codegen::templates::delta_rule::{
    delta_rule_chunk_parallel, delta_rule_chunk_parallel_variant, delta_rule_chunk_parallel_with_cluster_scan,
    delta_rule_chunk_parallel_with_scan_out, delta_rule_chunk_parallel_with_scan_out_at, delta_rule_chunked,
    delta_rule_recurrent, delta_rule_tensor_cores, CpPrepVariant, DecayGate, DeltaRuleParams, GatedNormEpilogue,
    ScanOutExchange,
};
use modelc::codegen::templates::kda_decode_step::{kda_decode_step, kda_decode_step_cluster_with, ClusterExchange};
use modelc::codegen::templates::selective_scan::{selective_scan, SelectiveScanParams};
use modelc::codegen::templates::KernelSource;
use modelc::spec::GateActivation;
use modelc_runtime::cuda::nvrtc::HOPPER_TARGET;
use modelc_runtime::cuda::{
    check_syntax, compile_cubin, compile_cubin_reporting, compile_ptx, default_include_dirs, nvrtc_version,
    ptxas_report,
};
use modelc_runtime::parallel::par_map;

const ARCH: &str = "sm_90";

/// True when the test should run; panics in CI without NVRTC.
fn nvrtc_or_skip() -> bool {
    modelc_runtime::cuda::nvrtc::nvrtc_or_skip("the NVRTC template compilation tests")
}

fn all_sources() -> Vec<KernelSource> {
    let mut out = Vec::new();
    for k in [1, 2, 4] {
        for activation in [ConvActivation::Identity, ConvActivation::Silu] {
            for has_bias in [false, true] {
                out.push(
                    conv1d(&Conv1dParams {
                        kernel_size: k,
                        activation,
                        has_bias,
                    })
                    .unwrap(),
                );
            }
        }
    }
    for (heads, kv_heads, head_dim, window) in [
        (8, 2, 64, None),
        (4, 4, 128, Some(64)),
        (32, 8, 128, None),
        (2, 1, 256, Some(16)),
        (1, 1, 32, None),
        // Small and ragged head sizes (Dh % 32 != 0: lanes past Dh own no channel).
        (4, 2, 8, Some(4)),
        (4, 2, 16, None),
        (4, 2, 16, Some(8)),
        (2, 1, 24, Some(8)),
        (2, 2, 100, None),
        (1, 1, 2, None),
    ] {
        let p = AttentionParams {
            heads,
            kv_heads,
            head_dim,
            window,
            scale: 1.0 / (head_dim as f32).sqrt(),
        };
        out.push(attention_prefill(&p).unwrap());
        out.push(attention_decode(&p).unwrap());
        // The decode's other forms (the CUDA-core grouped kernel, the tensor-core one at other
        // depths) where they differ from the default.
        if mma_decode(&p) {
            for v in [DecodeVariant::Cuda, DecodeVariant::Mma(2), DecodeVariant::Mma(6)] {
                if v != ATTN_DECODE_DEFAULT {
                    out.push(attention_decode_variant(&p, v).unwrap());
                }
            }
            // The default with the combine in its last block, loading its first tiles before
            // the wait or after.
            for early in [false, true] {
                out.extend(attention_decode_fused(&p, early, None).unwrap());
            }
            // Both with RoPE folded in.
            out.extend(attention_decode_rope(&p, 1.0e4).unwrap());
            out.extend(attention_decode_fused(&p, true, Some(1.0e4)).unwrap());
        }
        // The other mma.sync form of the tensor-core prefill.
        if tensor_core_prefill(&p) {
            let other = match ATTN_MMA_DEFAULT {
                MmaVariant::Rows16 => MmaVariant::Rows32,
                MmaVariant::Rows32 => MmaVariant::Rows16,
            };
            out.push(attention_prefill_mma(&p, other).unwrap());
        }
    }
    let gdn = DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar);
    let kda = DeltaRuleParams {
        chunk: 64,
        value_block: 128,
        ..DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel)
    };
    let tiny = DeltaRuleParams {
        qk_l2norm: false,
        chunk: 1,
        value_block: 32,
        ..DeltaRuleParams::new(1, 1, 32, 32, DecayGate::Scalar)
    };
    let odd = DeltaRuleParams {
        chunk: 32,
        value_block: 32,
        ..DeltaRuleParams::new(2, 2, 128, 64, DecayGate::PerChannel)
    };
    // Small key/value dims: value columns below one warp (idle threads in the block), Dk < 32.
    let mut small = Vec::new();
    for (dk, dv, gate) in [
        (8, 8, DecayGate::Scalar),
        (8, 8, DecayGate::PerChannel),
        (16, 16, DecayGate::Scalar),
        (16, 16, DecayGate::PerChannel),
        (24, 8, DecayGate::PerChannel),
        (32, 16, DecayGate::Scalar),
        (64, 8, DecayGate::Scalar),
        (128, 16, DecayGate::PerChannel),
    ] {
        small.push(DeltaRuleParams::new(2, 4, dk, dv, gate));
    }
    // Ragged Dv (80 = 2.5 blocks of 32) with 64-token chunks.
    small.push(DeltaRuleParams {
        chunk: 64,
        ..DeltaRuleParams::new(1, 2, 16, 80, DecayGate::PerChannel)
    });
    // The gated-norm epilogue (one block per head): GDN and KDA shapes, both activations, a
    // ragged head (Dv = 80 in 96 threads), a sub-warp one, and the widest (256 threads with a
    // Dk = 128 register column: the register budget per thread is the same 255 as at 128).
    let silu = GatedNormEpilogue {
        eps: 1e-5,
        act: GateActivation::Silu,
    };
    let sigmoid = GatedNormEpilogue {
        eps: 1e-6,
        act: GateActivation::Sigmoid,
    };
    for (p, n) in [
        (DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar), silu),
        (DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel), sigmoid),
        (DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel), silu),
        (DeltaRuleParams::new(2, 4, 128, 128, DecayGate::Scalar), silu),
        (DeltaRuleParams::new(1, 2, 16, 80, DecayGate::PerChannel), sigmoid),
        (DeltaRuleParams::new(2, 4, 8, 8, DecayGate::Scalar), silu),
        (DeltaRuleParams::new(1, 1, 128, 256, DecayGate::PerChannel), silu),
    ] {
        small.push(p.with_gated_norm(n));
    }
    for p in [gdn, kda, tiny, odd].into_iter().chain(small) {
        out.push(delta_rule_chunked(&p).unwrap());
        out.push(delta_rule_recurrent(&p).unwrap());
    }
    // The SIMT form (Dk = 120, not a multiple of 16) with a 32-token chunk and the epilogue.
    // Chunked only: the recurrent kernel ignores the chunk (same source). Dk = Dv = 128 takes
    // the tensor-core form, above.
    let simt = DeltaRuleParams {
        chunk: 32,
        ..DeltaRuleParams::new(4, 4, 120, 128, DecayGate::PerChannel).with_gated_norm(silu)
    };
    assert!(!delta_rule_tensor_cores(&simt));
    out.push(delta_rule_chunked(&simt).unwrap());
    // The chunk-parallel form (prep, scan, out): KDA and GDN at Dk = Dv = 128 with and without
    // the epilogue, Dk = 64, Dk = 32 with the widest head (Dv = 256), scan blocks 16 (the default at 4 heads), 32 and 64;
    // the other prep forms (CpPrepVariant) on KDA and GDN at Dk = 128, KDA at Dk = 64 and 32.
    for (i, p) in [
        DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel),
        DeltaRuleParams::new(2, 4, 128, 128, DecayGate::Scalar).with_gated_norm(sigmoid),
        DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar),
        DeltaRuleParams::new(2, 2, 64, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams::new(1, 1, 32, 256, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams {
            scan_block: 32,
            ..DeltaRuleParams::new(4, 4, 128, 128, DecayGate::PerChannel).with_gated_norm(silu)
        },
        DeltaRuleParams {
            scan_block: 64,
            ..DeltaRuleParams::new(4, 4, 128, 128, DecayGate::Scalar).with_gated_norm(silu)
        },
    ]
    .into_iter()
    .enumerate()
    {
        out.push(delta_rule_chunk_parallel(&p).unwrap());
        // The scan with the output: clusters of 8, 4 and 2 blocks a head (the gated norm), and
        // without the norm.
        if matches!(i, 0 | 1 | 2 | 6 | 7) {
            out.push(delta_rule_chunk_parallel_with_scan_out(&p, ScanOutExchange::Cluster).unwrap());
            if p.gated_norm.is_some() {
                out.push(delta_rule_chunk_parallel_with_scan_out(&p, ScanOutExchange::Global).unwrap());
            }
        }
        if matches!(i, 0 | 2 | 4 | 5) {
            for v in CpPrepVariant::distinct_for(&p)
                .into_iter()
                .filter(|&v| v != CpPrepVariant::default_for(&p))
            {
                out.push(delta_rule_chunk_parallel_variant(&p, v).unwrap());
            }
        }
    }
    // hybrid-1b's KDA (H16, scan blocks of 16) with the scan and the output in blocks of 32, as
    // MODELC_DELTA_SCAN_OUT=32 builds it.
    let h16 = DeltaRuleParams::new(16, 16, 128, 128, DecayGate::PerChannel).with_gated_norm(silu);
    out.push(delta_rule_chunk_parallel_with_scan_out_at(&h16, ScanOutExchange::Global, 32).unwrap());
    for (n, r) in [(16, 1), (16, 4), (64, 2)] {
        out.push(selective_scan(&SelectiveScanParams::apriel2(n, r)).unwrap());
    }
    out.push(
        selective_scan(&SelectiveScanParams {
            delta_bias: false,
            delta_softplus: false,
            has_d: false,
            has_z: false,
            ..SelectiveScanParams::apriel2(8, 1)
        })
        .unwrap(),
    );
    out.extend(kda_decode_steps());
    out.extend(kda_decode_step_clusters());
    out
}

/// The KDA decode step at its test shapes (hybrid-1b's, a tiny one, an uneven one).
fn kda_decode_steps() -> Vec<KernelSource> {
    kda_step_cases()
        .iter()
        .map(|(p, _)| kda_decode_step(p).unwrap())
        .collect()
}

/// The Hopper (cluster) form of the KDA decode step at the same shapes, with every cluster size
/// the tests try (the codegen's pick first: hybrid-1b 8 CTAs of 16 value columns, the uneven
/// shape 4 of 18; the tiny shape has none), with either exchange (the asynchronous one from
/// clusters of 2).
fn kda_decode_step_clusters() -> Vec<KernelSource> {
    kda_step_cases()
        .iter()
        .flat_map(|(p, clusters)| {
            clusters
                .iter()
                .flat_map(|&c| {
                    ClusterExchange::ALL
                        .into_iter()
                        .filter(move |x| x.supports(c))
                        .map(move |x| (c, x))
                })
                .map(move |(c, x)| kda_decode_step_cluster_with(p, c, x).unwrap())
        })
        .collect()
}

/// The KDA decode step assembles for sm_90 without spilling (its state rows, conv window and
/// the prefetched weights share the 128 registers a 512-thread block allows), and so does its
/// cluster form.
#[test]
fn kda_decode_step_assembles_without_spills() {
    if !nvrtc_or_skip() {
        return;
    }
    let includes = default_include_dirs();
    for src in kda_decode_steps().into_iter().chain(kda_decode_step_clusters()) {
        let log = ptxas_report(&src.source, src.name(), ARCH, &includes).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{}: {log}", src.name());
        assert!(log.contains("Used"), "{}: no ptxas report:\n{log}", src.name());
        assert!(log.contains(" 0 bytes spill stores"), "{} spills: {log}", src.name());
    }
}

/// Templates carry an include guard, so the lead may put several into one module: all of them
/// in one source pass NVRTC's front end (a helper defined twice would be an error there; the
/// code each generates is checked per template by `every_template_compiles_and_assembles_for_sm90`,
/// which also checks that no two share an entry name).
#[test]
fn concatenated_templates_compile_as_one_module() {
    if !nvrtc_or_skip() {
        return;
    }
    let sources = all_sources();
    let joined: String = sources.iter().map(|s| s.source.as_str()).collect::<Vec<_>>().join("\n");
    check_syntax(&joined, "all_templates", ARCH, &default_include_dirs()).unwrap_or_else(|e| panic!("{e}"));
    // The check sees what the guards prevent: two templates without them fail it.
    let unguarded = |s: &str| s.replace("#ifndef MODELC_", "#if 1 // MODELC_");
    let pair = format!("{}\n{}", unguarded(&sources[0].source), unguarded(&sources[1].source));
    let err = check_syntax(&pair, "unguarded_pair", ARCH, &default_include_dirs()).unwrap_err();
    assert!(err.to_string().contains("already been defined"), "{err}");
}

/// Equal parameters give byte-identical sources (kernels deduplicate across layers).
#[test]
fn templates_are_deterministic() {
    let a = all_sources();
    let b = all_sources();
    assert_eq!(a, b);
}

/// Every template compiles to machine code for the real sm_90 and exports the entries it names
/// (no two templates share one). Assembling checks what PTX alone does not (static shared memory
/// over 48 KiB, register limits) and that no kernel spills; the per-kernel report is printed.
/// One compilation per source gives both the CUBIN and the assembler's report.
#[test]
fn every_template_compiles_and_assembles_for_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    let (major, minor) = nvrtc_version().unwrap();
    eprintln!("NVRTC {major}.{minor}");
    let includes = default_include_dirs();
    let sources = all_sources();
    let cubins = par_map(&sources, |src| {
        compile_cubin_reporting(&src.source, src.name(), ARCH, &includes)
            .unwrap_or_else(|e| panic!("{e}\n--- source ---\n{}", src.source))
    });
    let mut names = std::collections::HashSet::new();
    for (src, cubin) in sources.iter().zip(cubins) {
        for entry in &src.entries {
            assert!(
                cubin.holds_symbol(entry),
                "{entry} missing from the CUBIN of {}",
                src.name()
            );
            assert!(
                names.insert(entry.clone()),
                "two templates share the entry name {entry}"
            );
        }
        let log = cubin.log();
        let summary: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("registers") || l.contains("spill") || l.contains("Compiling entry"))
            .map(str::trim)
            .collect();
        assert!(
            summary.iter().any(|l| l.contains("Used")),
            "{}: no ptxas report in the log:\n{log}",
            src.name()
        );
        eprintln!("{}: {}", src.name(), summary.join(" | "));
        // Spills move a register array to local memory: a silent slowdown we want to notice.
        for line in &summary {
            if let Some(i) = line.find(" bytes spill stores") {
                let n: String = line[..i].chars().rev().take_while(|c| c.is_ascii_digit()).collect();
                assert_eq!(n, "0", "{} spills registers: {line}", src.name());
            }
        }
    }
    assert!(sources.len() >= 30, "only {} sources", sources.len());
}

/// The Hopper prefill (`wgmma`, sm_90a only) assembles for sm_90a without spills: every form
/// at H32 G8, and the forms programs launch (the default and the TMA form) also for full
/// attention without GQA and for a sliding window (the shape changes only constants and the
/// mask; every form's code is the same at each).
#[test]
fn wgmma_prefill_assembles_for_sm90a() {
    if !nvrtc_or_skip() {
        return;
    }
    let includes = default_include_dirs();
    let mut sources = Vec::new();
    for (heads, kv_heads, window) in [(32, 8, None), (8, 8, None), (8, 1, Some(100))] {
        let p = AttentionParams {
            heads,
            kv_heads,
            head_dim: 128,
            window,
            scale: 128f32.powf(-0.5),
        };
        if heads == 32 {
            for v in [WgmmaVariant::Plain].into_iter().chain(WgmmaVariant::WARP_SPECIALISED) {
                sources.push(attention_prefill_wgmma_variant(&p, v).unwrap());
            }
        } else {
            sources.push(attention_prefill_wgmma(&p).unwrap());
            sources.push(attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTma).unwrap());
        }
    }
    let logs = par_map(&sources, |src| {
        let cubin = compile_cubin(&src.source, src.name(), "sm_90a", &includes)
            .unwrap_or_else(|e| panic!("{e}\n--- source ---\n{}", src.source));
        assert!(!cubin.bytes().is_empty());
        ptxas_report(&src.source, src.name(), "sm_90a", &includes).unwrap_or_else(|e| panic!("{e}"))
    });
    for (src, log) in sources.iter().zip(logs) {
        eprintln!("{}: {log}", src.name());
        assert!(
            !log.contains("bytes spill stores") || log.contains(" 0 bytes spill stores"),
            "{log}"
        );
        assert!(!log.contains("serializ"), "wgmma serialized: {log}");
        // C7517: ptxas injected a wgmma wait (an accumulator touched while in flight).
        assert!(!log.contains("C7517"), "wgmma wait injected: {log}");
    }
}

/// Every module whose code creates an L2 cache policy (the decode's evict-first `cp.async`, the
/// TMA prefill's evict-last copies) keeps the policy in its machine code: no memory instruction
/// reads a descriptor register nothing writes (`codegen::sass::undefined_descriptors`; such a
/// kernel traps with an illegal instruction). And the check finds the known case: the Hopper
/// prefill's `cp.async` producer with cache-hinted copies, which trapped on an H200
/// (2026-12-04), is miscompiled so by this NVRTC (13.0). Needs cuobjdump (`.ci/nvrtc.sh`
/// installs it; skipped with a notice without).
#[test]
fn cache_policies_survive_ptxas() {
    if !nvrtc_or_skip() {
        return;
    }
    let tool = match find_cuobjdump() {
        Ok(tool) => tool,
        Err(e) => {
            eprintln!("NOTICE: skipping the cache-policy check: {e}");
            return;
        }
    };
    let includes = default_include_dirs();
    let hopper = [(32, 8, None), (8, 1, Some(100))].map(|(heads, kv_heads, window)| AttentionParams {
        heads,
        kv_heads,
        head_dim: 128,
        window,
        scale: 128f32.powf(-0.5),
    });
    let modules = all_sources()
        .into_iter()
        .map(|s| (s, ARCH))
        .chain(hopper.iter().flat_map(|p| {
            [WgmmaVariant::PingPongFa3Lazy, WgmmaVariant::PingPongTma]
                .map(|v| (attention_prefill_wgmma_variant(p, v).unwrap(), HOPPER_TARGET))
        }));
    let candidates: Vec<_> = modules.filter(|(s, _)| calls_a_policy_helper(&s.source)).collect();
    let checked: Vec<String> = par_map(&candidates, |(src, arch)| {
        // Candidates call a policy helper; the PTX shows whether the policy survived to the code.
        let ptx = compile_ptx(&src.source, src.name(), arch, &includes).unwrap_or_else(|e| panic!("{e}"));
        if !ptx.text().contains("createpolicy") {
            return None;
        }
        let listing = disassemble(&tool, &src.source, src.name(), arch).unwrap_or_else(|e| panic!("{e}"));
        let bad = undefined_descriptors(&listing);
        assert!(
            bad.is_empty(),
            "{}",
            bad.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("\n")
        );
        Some(src.name().to_string())
    })
    .into_iter()
    .flatten()
    .collect();
    eprintln!(
        "cache policies kept in {} modules: {}",
        checked.len(),
        checked.join(", ")
    );
    assert!(
        checked.iter().any(|n| n.starts_with("attn_decode")),
        "no decode module was checked"
    );
    assert!(
        checked.iter().any(|n| n.starts_with("attn_prefill_wgmma")),
        "no TMA prefill was checked"
    );

    // The known miscompile: k/v copied by cp.async under an evict-last policy in the producer.
    let (major, minor) = nvrtc_version().unwrap_or((0, 0));
    if (major, minor) != (13, 0) {
        eprintln!("NOTICE: NVRTC {major}.{minor}: the known-miscompile half of the check is for 13.0");
        return;
    }
    let default = attention_prefill_wgmma_variant(&hopper[0], WgmmaVariant::PingPongFa3Lazy).unwrap();
    let copy = "cp_async16(dst + swz(r0, ch, KHALF) + i * 8 * ROWB, src + i * step, true);";
    assert!(
        default.source.contains(copy),
        "the producer's copy is not in the source"
    );
    let hinted = default
        .source
        .replace(copy, &copy.replace("cp_async16(", "cp_async16_stream("));
    let listing = disassemble(&tool, &hinted, "hinted_producer", HOPPER_TARGET).unwrap_or_else(|e| panic!("{e}"));
    let bad = undefined_descriptors(&listing);
    assert!(
        bad.iter().any(|b| b.instruction.starts_with("LDGSTS")),
        "NVRTC 13.0 no longer drops the policy of the producer's cache-hinted copies: {bad:?}"
    );
}

/// Whether a module's code calls one of the helpers that create an L2 cache policy (every
/// module with the tensor-core prelude defines `cp_async16_stream`; a definition alone leaves
/// no policy in the code). Panics on a `createpolicy` outside those helpers, so that a new one
/// is added here rather than missed.
fn calls_a_policy_helper(src: &str) -> bool {
    const HELPERS: [(&str, &str); 2] = [
        ("void cp_async16_stream(", "cp_async16_stream("),
        ("unsigned long long l2_evict_last_policy() {", "l2_evict_last_policy()"),
    ];
    let defined = HELPERS.iter().filter(|(def, _)| src.contains(def)).count();
    assert_eq!(
        src.matches("createpolicy").count(),
        defined,
        "a cache policy outside the known helpers: add it to calls_a_policy_helper"
    );
    HELPERS
        .iter()
        .any(|(def, call)| src.contains(def) && src.matches(call).count() > 1)
}

/// The chunk-parallel delta rule's module with the scan over clusters holds a Hopper-only entry:
/// for sm_80 the module still compiles with every entry, that one a trap without cluster
/// instructions; for sm_90a the entry carries the multicast bulk copies and cluster barriers.
#[test]
fn chunk_parallel_cluster_scan_is_hopper_only() {
    if !nvrtc_or_skip() {
        return;
    }
    let includes = default_include_dirs();
    let p = DeltaRuleParams::new(32, 32, 128, 128, DecayGate::PerChannel);
    let src = delta_rule_chunk_parallel_with_cluster_scan(&p).unwrap();
    let mc = src.entries.last().unwrap();
    assert!(mc.starts_with("delta_rule_cp_scan_mc_"), "{mc}");
    // The PTX of one entry: from its `.entry` line to the next entry or the end.
    let entry_text = |ptx: &str, e: &str| -> String {
        let start = ptx
            .find(&format!(".entry {e}("))
            .unwrap_or_else(|| panic!("{e} missing"));
        let end = ptx[start + 1..].find(".entry ").map_or(ptx.len(), |i| start + 1 + i);
        ptx[start..end].to_string()
    };
    for (arch, hopper) in [("sm_80", false), (HOPPER_TARGET, true)] {
        let ptx = compile_ptx(&src.source, src.name(), arch, &includes).unwrap_or_else(|e| panic!("{arch}: {e}"));
        for e in &src.entries {
            assert!(ptx.text().contains(&format!(".entry {e}(")), "{arch}: {e} missing");
        }
        let body = entry_text(ptx.text(), mc);
        assert_eq!(body.contains("multicast::cluster"), hopper, "{arch}");
        assert_eq!(body.contains("barrier.cluster.wait"), hopper, "{arch}");
        assert_eq!(body.contains("trap;"), !hopper, "{arch}");
        // The other entries never touch clusters.
        let scan = entry_text(ptx.text(), &src.entries[1]);
        assert!(!scan.contains("cluster"), "{arch}: the plain scan");
    }
}
