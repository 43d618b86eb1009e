//! The gated delta rule core (GDN, KDA): the chunk-parallel prefill (or the single-kernel
//! chunked form), its wider scans and the scan with the output as variants, and the recurrent
//! decode.

use super::*;
use crate::codegen::settings::read_setting;
use crate::ir::DeltaRuleParams;

/// Grid of both delta-rule kernels (`delta_rule_launch`).
pub fn delta_rule_grid(p: &TDelta) -> [Expr; 3] {
    [c(p.value_dim).cdiv(c(p.value_block)), c(p.value_heads), b()]
}

/// Grids of the chunk-parallel delta rule's passes `[prep, scan, out]`
/// (`delta_rule_cp_launches`).
pub fn delta_rule_cp_grids(p: &TDelta) -> [[Expr; 3]; 3] {
    let chunks = [t().cdiv(c(DELTA_TC_CHUNK)), c(p.value_heads), b()];
    [
        chunks.clone(),
        [c(p.value_dim).cdiv(c(p.scan_block)), c(p.value_heads), b()],
        chunks,
    ]
}

/// Set to `1`: programs launch the chunk-parallel delta rule's scan with the output pass
/// (`delta_rule_cp_scan_out_`, row sums through the workspace) in place of the scan where all
/// its blocks are resident, and leave the output pass's step out of those calls; set to `16`,
/// `32` or `64`: the same in blocks of that many value columns (the scan's own width for `1`).
/// Read when a spec is compiled; a layer whose shape the width does not fit keeps the three
/// passes. Off by default: that exchange matched the reference on an H100 (2026-12-08) but has
/// not been timed against the three passes yet (docs/PERFORMANCE.md).
pub const DELTA_SCAN_OUT_ENV: &str = "MODELC_DELTA_SCAN_OUT";

/// Set to `1` with [`DELTA_SCAN_OUT_ENV`]: programs take the scan with the output for calls of
/// any size, in waves where the device holds fewer of its blocks at once (B8 T2048 H16: 512
/// blocks at 32 columns), not only where one wave holds them all. Read when a spec is compiled;
/// off by default (the bench's B8 rows time those waves against the wide scans).
pub const DELTA_SCAN_OUT_WAVES_ENV: &str = "MODELC_DELTA_SCAN_OUT_WAVES";

/// Whether [`DELTA_SCAN_OUT_WAVES_ENV`] is set: no where it is unset, empty or `0`, yes at `1`.
pub fn scan_out_waves_in_programs() -> Result<bool, CodegenError> {
    let expected = "0 or unset (one wave only), or 1 (any call, in waves)";
    Ok(read_setting(DELTA_SCAN_OUT_WAVES_ENV, expected, |v| (v == "1").then_some(()))?.is_some())
}

/// The width [`DELTA_SCAN_OUT_ENV`] asks the scan with the output to run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutWidth {
    /// The scan's own (`1`).
    Scan,
    /// Blocks of this many value columns (`16`, `32`, `64`).
    Columns(usize),
}

/// What [`DELTA_SCAN_OUT_ENV`] asks for: nothing where it is unset, empty or `0`.
pub fn scan_out_in_programs() -> Result<Option<ScanOutWidth>, CodegenError> {
    let expected = "0 or unset (off), 1 (the scan's own width), or 16, 32 or 64 value columns a block";
    read_setting(DELTA_SCAN_OUT_ENV, expected, |v| match v {
        "1" => Some(ScanOutWidth::Scan),
        "16" | "32" | "64" => v.parse().ok().map(ScanOutWidth::Columns),
        _ => None,
    })
}

/// f32 elements of the chunk-parallel delta rule's workspace (`delta_rule_cp_workspace_len`).
pub fn delta_rule_cp_workspace(p: &TDelta) -> Expr {
    b().times(c(p.value_heads))
        .times(t().cdiv(c(DELTA_TC_CHUNK)))
        .times(c(delta_rule_cp_workspace_per_chunk(p)))
}

/// The delta-rule core's kernels and launches.
pub(super) fn delta_rule_core(cx: &CoreCx, core: &Core, p: &DeltaRuleParams) -> Result<CoreCode, CodegenError> {
    let CoreCx { graph, n, fuses, .. } = *cx;
    let input = |i: usize| cx.input(i);
    let terr = template_err(graph, n);
    let Core::DeltaRule {
        q,
        k,
        qk_l2norm,
        scale,
        norm,
        out,
        ..
    } = core
    else {
        return Err(cx.mismatch());
    };
    let gate = match p.decay {
        DecayKind::Scalar => DecayGate::Scalar,
        DecayKind::PerChannel => DecayGate::PerChannel,
    };
    let mut tp = TDelta::new(p.key_heads, p.value_heads, p.key_dim, p.value_dim, gate);
    tp.qk_l2norm = *qk_l2norm;
    tp.scale = *scale as f32;
    // The absorbed gated RMSNorm: the epilogue (one block per head) and its arguments.
    let mut norm_args = Vec::new();
    if let Some(m) = norm {
        tp = tp.with_gated_norm(GatedNormEpilogue {
            eps: m.eps as f32,
            act: m.act,
        });
        norm_args = vec![
            KArg::Value(m.gate),
            KArg::Stride(m.gate),
            weight(graph, m.weight, DType::F32)?,
        ];
    }
    let (v, g, beta) = (input(2)?, input(3)?, input(4)?);
    let st = state_name(graph, n, 5)?;
    let o = *out;
    // Shapes the chunk-parallel form covers take it (three launches and a workspace);
    // the others the single-kernel chunked form.
    let chunk_parallel = delta_rule_chunk_parallel_supported(&tp);
    // Where DELTA_SCAN_OUT_ENV asks for it and it fits, the module also carries the scan with
    // the output pass in one (row sums through the workspace), launched for calls whose blocks
    // fit the device at once; `so` has its width.
    let so = match scan_out_in_programs()? {
        Some(ScanOutWidth::Scan) => Some(tp),
        Some(ScanOutWidth::Columns(w)) => Some(TDelta { scan_block: w, ..tp }),
        None => None,
    }
    .filter(|so| chunk_parallel && delta_rule_cp_scan_out_supported(so));
    let pre = if let Some(so) = so {
        delta_rule_chunk_parallel_with_scan_out_at(&tp, ScanOutExchange::Global, so.scan_block).map_err(&terr)?
    } else if chunk_parallel {
        delta_rule_chunk_parallel(&tp).map_err(&terr)?
    } else {
        delta_rule_chunked(&tp).map_err(&terr)?
    };
    let dec = delta_rule_recurrent(&tp).map_err(&terr)?;
    let (hk, hv, dk, dv) = (p.key_heads, p.value_heads, p.key_dim, p.value_dim);
    let gch = ch(graph, g);
    let state_bytes = b().times(c(hv * dk * dv * 4));
    // The epilogue reads the gate rows and the f32 weight, and costs about 10 FLOPs per
    // output (the glue kernel's estimate).
    let (norm_in, norm_w, norm_flops) = match norm {
        Some(_) => (hv * dv * 2, dv * 4, 10 * hv * dv),
        None => (0, 0, 0),
    };
    let loaded = rows()
        .times(c((2 * hk * dk + hv * dv) * 2 + (gch + hv) * 4 + norm_in))
        .plus(c(norm_w))
        .plus(state_bytes.clone());
    let stored = rows().times(c(hv * dv * 2)).plus(state_bytes);
    let rec_flops = rows().times(c(8 * hv * dk * dv + norm_flops));
    let chunk_flops = rec_flops.clone().plus(rows().times(c(4 * hv * tp.chunk * (dk + dv))));
    let mut args = vec![
        KArg::Value(*q),
        KArg::Stride(*q),
        KArg::Value(*k),
        KArg::Stride(*k),
        KArg::Value(v),
        KArg::Stride(v),
        KArg::Value(g),
        KArg::Value(beta),
        KArg::State(st.clone()),
        KArg::State(st),
        KArg::Value(o),
        KArg::Stride(o),
        KArg::Int(t()),
    ];
    args.extend(norm_args);
    let grid = delta_rule_grid(&tp);
    let (pre_block, pre_smem) = block_smem(delta_rule_chunked_launch(&tp, 1));
    let (dec_block, dec_smem) = block_smem(delta_rule_launch(&tp, 1, 0));
    let (pe, de) = (pre.name().to_string(), dec.name().to_string());
    // Wider scan blocks for calls of many sequences (entries of the same module): the
    // widest whose scan still has DELTA_CP_SCAN_BLOCKS blocks (measured on H200, KDA B8
    // T2048 H16: 0.175 ms at 64 against 0.404 at 16).
    let wide_scans: Vec<TDelta> = if chunk_parallel {
        delta_rule_cp_wide_scans(&tp)
            .into_iter()
            .map(|w| TDelta { scan_block: w, ..tp })
            .collect()
    } else {
        Vec::new()
    };
    let prefill = if chunk_parallel {
        // prep, scan, out: the same arguments and one workspace, shared by every layer.
        let mut cp_args = args.clone();
        cp_args.push(KArg::Workspace {
            name: "delta_cp".into(),
            dtype: DType::F32,
            elements: delta_rule_cp_workspace(&tp),
        });
        // Widest first: the first variant whose condition holds is launched. (The scan
        // over clusters, `delta_rule_chunk_parallel_with_cluster_scan`, is not a variant:
        // on an H100 it took 3x the plain scan's time, docs/PERFORMANCE.md.)
        // The scan with the output first, where one block an SM holds all its blocks
        // (the output pass's step is then left out), then the wide scans. (Its blocks
        // wait on each other through the workspace but take their places by ticket, so
        // larger grids would run correctly, in waves; one wave is the case it was built
        // for, docs/PERFORMANCE.md.)
        // The fused launch's variant and the condition it runs under (the output pass's step
        // is left out exactly then): one wave, or with DELTA_SCAN_OUT_WAVES_ENV any call.
        let waves = scan_out_waves_in_programs()?;
        let fused = so.map(|so| {
            let blocks_per_seq = so.value_heads * (so.value_dim / so.scan_block);
            let resident = match waves {
                false => Cond::lt(b().times(c(blocks_per_seq)), Expr::sym(Sym::Sms).plus(c(1))),
                true => Cond::ge(b().times(c(blocks_per_seq)), c(1)),
            };
            let l = delta_rule_cp_scan_out_launch(&so, 1);
            let variant = VariantSpec {
                cc: None,
                when: Some(resident.clone()),
                kernel: 0,
                entry: pre.entries.last().cloned().unwrap_or_default(),
                grid: delta_rule_cp_grids(&so)[1].clone(),
                block: [l.block.0, l.block.1, l.block.2],
                smem: l.smem,
                extra_args: Vec::new(),
            };
            (variant, resident)
        });
        let wide_variants = wide_scans
            .iter()
            .zip(pre.entries.iter().skip(3))
            .rev()
            .map(|(wide, entry)| {
                let l = delta_rule_cp_launches(wide, 1, 1)[1];
                let blocks_per_seq = wide.value_heads * (wide.value_dim / wide.scan_block);
                VariantSpec {
                    cc: None,
                    when: Some(Cond::ge(b().times(c(blocks_per_seq)), c(DELTA_CP_SCAN_BLOCKS))),
                    kernel: 0,
                    entry: entry.clone(),
                    grid: delta_rule_cp_grids(wide)[1].clone(),
                    block: [l.block.0, l.block.1, l.block.2],
                    smem: l.smem,
                    extra_args: Vec::new(),
                }
            });
        let scan_variants: Vec<VariantSpec> = fused.iter().map(|(v, _)| v.clone()).chain(wide_variants).collect();
        pre.entries
            .iter()
            .zip(delta_rule_cp_grids(&tp))
            .zip(delta_rule_cp_launches(&tp, 1, 1))
            .enumerate()
            .map(|(pass, ((entry, grid), l))| {
                let (block, smem) = block_smem(l);
                CoreLaunch {
                    kernel: 0,
                    entry: entry.clone(),
                    grid,
                    block,
                    smem,
                    args: cp_args.clone(),
                    variants: if pass == 1 { scan_variants.clone() } else { Vec::new() },
                    skip_when: fused.as_ref().filter(|_| pass == 2).map(|(_, when)| when.clone()),
                }
            })
            .collect()
    } else {
        vec![CoreLaunch {
            kernel: 0,
            entry: pe,
            grid: grid.clone(),
            block: pre_block,
            smem: pre_smem,
            args: args.clone(),
            variants: Vec::new(),
            skip_when: None,
        }]
    };
    // The workspace's round trip (about 7 bf16 rows of Dk or Dv per token, written and
    // read once) on top of the inputs and outputs.
    let (pre_loaded, pre_stored) = if chunk_parallel {
        let ws = delta_rule_cp_workspace(&tp).times(c(4));
        (loaded.clone().plus(ws.clone()), stored.clone().plus(ws))
    } else {
        (loaded.clone(), stored.clone())
    };
    let kernels = vec![
        kernel(
            if chunk_parallel {
                "delta_rule_chunk_parallel"
            } else {
                "delta_rule_chunked"
            },
            pre,
            fuses,
            pre_loaded,
            pre_stored,
            chunk_flops,
        ),
        kernel("delta_rule_recurrent", dec, fuses, loaded, stored, rec_flops),
    ];
    Ok(CoreCode {
        kernels,
        prefill,
        decode: vec![CoreLaunch {
            kernel: 1,
            entry: de,
            grid,
            block: dec_block,
            smem: dec_smem,
            args,
            variants: Vec::new(),
            skip_when: None,
        }],
        // The template reads g and beta as dense f32.
        demands: vec![(g, DType::F32), (beta, DType::F32)],
        decode_absorbs: Vec::new(),
        decode_reads: Vec::new(),
    })
}
