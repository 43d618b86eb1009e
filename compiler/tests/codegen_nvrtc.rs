//! Every kernel of every spec in `specs/` (and the codegen test specs in `tests/golden/specs/`)
//! compiles with NVRTC for `sm_90`, and every glue kernel assembles for the real `sm_90` without
//! register spills (the templates' spills are checked by `nvrtc_compile`). NVRTC needs no GPU;
//! `.ci/nvrtc.sh` installs it. Without NVRTC the test skips with a notice, except under `CI`
//! where it fails.

mod codegen_common;

use std::collections::BTreeMap;

use codegen_common::{all_specs, compile_spec};
use modelc_runtime::cuda::nvrtc::nvrtc_or_skip;
use modelc_runtime::cuda::{compile_ptx, default_include_dirs, ptxas_report};
use modelc_runtime::parallel::par_map;

#[test]
fn every_kernel_of_every_spec_compiles_for_sm_90() {
    if !nvrtc_or_skip("the NVRTC compile test of every spec") {
        return;
    }
    // Distinct sources across all specs and placements: shared kernels compile once.
    let mut sources: BTreeMap<String, (String, String, Option<String>)> = BTreeMap::new();
    let mut rejected = Vec::new();
    for (name, spec) in all_specs() {
        for (label, result) in compile_spec(&name, &spec) {
            match result {
                Ok(cg) => {
                    for k in &cg.kernels {
                        sources
                            .entry(k.source.clone())
                            .or_insert_with(|| (k.name.clone(), label.clone(), k.target.clone()));
                    }
                }
                Err(e) => rejected.push(format!("{label}: {e}")),
            }
        }
    }
    // Every spec must get kernels (the templates take any head size the spec allows).
    assert!(rejected.is_empty(), "no kernels for:\n{}", rejected.join("\n"));
    assert!(
        sources.len() >= 20,
        "expected the kernels of every mixer kind, got {}",
        sources.len()
    );
    let include = default_include_dirs();
    let mut failures = Vec::new();
    // A module for one target (the Hopper attention prefill: sm_90a) compiles for that target.
    let entries: Vec<_> = sources.iter().collect();
    let targeted = entries.iter().filter(|(_, (_, _, target))| target.is_some()).count();
    let compiled = par_map(&entries, |(src, (name, _, target))| {
        compile_ptx(src, name, target.as_deref().unwrap_or("sm_90"), &include)
    });
    for ((_, (name, from, _)), result) in entries.iter().zip(compiled) {
        if let Err(e) = result {
            failures.push(format!("{name} (from {from}): {e}"));
        }
    }
    assert!(
        targeted > 0,
        "no spec emitted an sm_90a module (the Hopper attention prefill)"
    );
    assert!(
        failures.is_empty(),
        "{} of {} kernels failed:\n{}",
        failures.len(),
        sources.len(),
        failures.join("\n\n")
    );
    eprintln!("compiled {} distinct kernels for sm_90", sources.len());

    // Glue kernels unroll each thread's channels (up to 512 threads a block): a spill would move
    // those registers to local memory, a silent slowdown.
    let glue_kernels: Vec<_> = entries
        .iter()
        .filter(|(src, _)| src.contains("MODELC_GLUE_PRELUDE"))
        .collect();
    let glue = glue_kernels.len();
    let logs = par_map(&glue_kernels, |(src, (name, from, _))| {
        ptxas_report(src, name, "sm_90", &include).unwrap_or_else(|e| panic!("{name} (from {from}): {e}"))
    });
    for ((_, (name, from, _)), log) in glue_kernels.iter().zip(logs) {
        let summary: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("registers") || l.contains("spill"))
            .map(str::trim)
            .collect();
        assert!(
            summary.iter().any(|l| l.contains("Used")),
            "{name}: no ptxas report in the log:\n{log}"
        );
        for line in &summary {
            if let Some(i) = line.find(" bytes spill stores") {
                let n: String = line[..i].chars().rev().take_while(|c| c.is_ascii_digit()).collect();
                assert_eq!(n, "0", "{name} (from {from}) spills registers: {line}");
            }
        }
        if std::env::var_os("MODELC_PTXAS_VERBOSE").is_some() {
            eprintln!("{name}: {}", summary.join(" | "));
        }
    }
    assert!(glue >= 10, "expected the glue kernels of every spec, got {glue}");
    eprintln!("assembled {glue} distinct glue kernels for sm_90, none spills");
}
