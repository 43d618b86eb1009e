//! Delta rule (GDN / KDA).

use super::*;

#[derive(Clone, Copy, PartialEq)]
enum DeltaForm {
    Chunked,
    Recurrent,
    /// The three launches of `delta_rule_chunk_parallel_variant` (the prep pass of the given
    /// form) with a NaN-filled workspace.
    ChunkParallel(CpPrepVariant),
    /// The default form's module with the Hopper scan over clusters (`delta_rule_cp_scan_mc_`,
    /// `delta_rule_chunk_parallel_with_cluster_scan`'s last entry) in place of the scan entry.
    ChunkParallelCluster(CpPrepVariant),
    /// The default prep, then the scan and the output pass in one (`delta_rule_cp_scan_out_`,
    /// `delta_rule_chunk_parallel_with_scan_out`'s last entry), the norm's row sums shared
    /// as given: two launches.
    ChunkParallelScanOut(ScanOutExchange),
}

impl DeltaForm {
    fn chunk_parallel(self) -> bool {
        matches!(
            self,
            DeltaForm::ChunkParallel(_) | DeltaForm::ChunkParallelCluster(_) | DeltaForm::ChunkParallelScanOut(_)
        )
    }
}

fn run_delta(ctx: &mut Ctx, p: &DeltaRuleParams, form: DeltaForm, b: usize, t: usize, inplace: bool, seed: u64) {
    run_delta_decays(ctx, p, form, b, t, inplace, seed, -3.0, OutRows::Padded);
}

/// The rows of o and of the gated norm's gate.
#[derive(Clone, Copy)]
enum OutRows {
    /// Slices of wider NaN-filled rows at odd offsets: a write or read past the slice shows,
    /// and the kernels take their element-by-element paths.
    Padded,
    /// Dense, 16-byte aligned rows: the kernels' 16-byte paths.
    Aligned,
}

/// The tensor-core form rounds every product operand to bf16 (as fla's chunk kernels do), the
/// state's included: on H200 it measured 3e-3..5e-3 relative RMS against the float64
/// recurrence for o and the state (shapes of `delta_rule_tensor_cores_match_reference` and
/// T up to 8192); 1e-2 leaves twice that. The SIMT forms keep the state in f32 throughout.
const DELTA_TC_TOL: f64 = 1e-2;

/// [`run_delta`] with log-decays drawn from `[g_lo, -0.001]` per token.
#[allow(clippy::too_many_arguments)]
fn run_delta_decays(
    ctx: &mut Ctx,
    p: &DeltaRuleParams,
    form: DeltaForm,
    b: usize,
    t: usize,
    inplace: bool,
    seed: u64,
    g_lo: f64,
    out_rows: OutRows,
) {
    let src = match form {
        DeltaForm::Chunked => delta_rule_chunked(p).unwrap(),
        DeltaForm::Recurrent => delta_rule_recurrent(p).unwrap(),
        DeltaForm::ChunkParallel(v) => delta_rule_chunk_parallel_variant(p, v).unwrap(),
        DeltaForm::ChunkParallelCluster(_) => delta_rule_chunk_parallel_with_cluster_scan(p).unwrap(),
        DeltaForm::ChunkParallelScanOut(x) => delta_rule_chunk_parallel_with_scan_out(p, x).unwrap(),
    };
    ctx.load(&src);
    let mut r = rng(seed);
    let (hk, hv, dk, dv) = (p.key_heads, p.value_heads, p.key_dim, p.value_dim);
    let rows = b * t;
    // Without the in-kernel norm, keep |k| ≈ 1 so that I − βkkᵀ stays a contraction.
    let a = if p.qk_l2norm { 1.0 } else { (3.0 / dk as f64).sqrt() };
    let q = round_bf16(&uniform(&mut r, rows * hk * dk, -a, a));
    let k = round_bf16(&uniform(&mut r, rows * hk * dk, -a, a));
    let v = round_bf16(&uniform(&mut r, rows * hv * dv, -1.0, 1.0));
    let g_len = match p.gate {
        DecayGate::Scalar => rows * hv,
        DecayGate::PerChannel => rows * hv * dk,
    };
    // Log-decays from nearly none to e^g_lo per token.
    let g = round_f32(&uniform(&mut r, g_len, g_lo, -0.001));
    let beta = round_f32(&uniform(&mut r, rows * hv, 0.05, 0.95));
    let state = round_f32(&uniform(&mut r, b * hv * dk * dv, -0.5, 0.5));

    // q, k, v as slices of one packed conv output [q | k | v].
    let (wq, wv) = (hk * dk, hv * dv);
    let width = 2 * wq + wv;
    let mut packed = embed(&q, rows, wq, width, 0, 0.0);
    for row in 0..rows {
        packed[row * width + wq..row * width + 2 * wq].copy_from_slice(&k[row * wq..(row + 1) * wq]);
        packed[row * width + 2 * wq..(row + 1) * width].copy_from_slice(&v[row * wv..(row + 1) * wv]);
    }
    let qkv = ctx.bf16(&packed, "qkv");
    let g_d = ctx.f32(&g, "g");
    let beta_d = ctx.f32(&beta, "beta");
    let st_in = ctx.f32(&state, "state_in");
    // NaN past the state's end: a thread without a value column must not write there.
    let state_len = state.len();
    let st_out = ctx.nan_f32(state_len + 64, "state_out");
    // Padded output rows: a thread past Dv that stored anyway would leave the slice.
    let (o_stride, o_off) = match out_rows {
        OutRows::Padded => (wv + 5, 3),
        OutRows::Aligned => (wv, 0),
    };
    let o = ctx.nan_bf16(rows * o_stride, "o");
    let tensor_cores = form.chunk_parallel() || form == DeltaForm::Chunked && delta_rule_tensor_cores(p);
    let launch = match form {
        DeltaForm::Recurrent => delta_rule_launch(p, b, 0),
        _ => delta_rule_chunked_launch(p, b),
    };
    let mut args = vec![
        qkv.arg(),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(wq).unwrap()),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(2 * wq).unwrap()),
        KernelArg::I32(width as i32),
        g_d.arg(),
        beta_d.arg(),
        st_in.arg(),
        if inplace { st_in.arg() } else { st_out.arg() },
        KernelArg::Ptr(o.device_ptr_at(o_off).unwrap()),
        KernelArg::I32(o_stride as i32),
        KernelArg::I32(t as i32),
    ];
    // The gated-norm epilogue's inputs (drawn after the others, so cases without it keep their
    // inputs): the gate a column slice of a NaN-filled wider buffer (a read outside the slice
    // poisons the output), the f32 weight followed by NaN (a read past Dv does too).
    let norm = p.gated_norm.map(|n| {
        let gate = round_bf16(&uniform(&mut r, rows * wv, -3.0, 3.0));
        let w = round_f32(&uniform(&mut r, dv, 0.5, 1.5));
        let (g_stride, g_off) = match out_rows {
            OutRows::Padded => (wv + 7, 5),
            OutRows::Aligned => (wv, 0),
        };
        let gate_d = ctx.bf16(&embed(&gate, rows, wv, g_stride, g_off, f64::NAN), "gate");
        let mut w_pad = w.clone();
        w_pad.extend(std::iter::repeat_n(f64::NAN, 32));
        let w_d = ctx.f32(&w_pad, "norm_w");
        (n, gate, w, gate_d, w_d, g_stride, g_off)
    });
    if let Some((_, _, _, gate_d, w_d, g_stride, g_off)) = &norm {
        args.extend([
            KernelArg::Ptr(gate_d.device_ptr_at(*g_off).unwrap()),
            KernelArg::I32(*g_stride as i32),
            w_d.arg(),
        ]);
    }
    if form.chunk_parallel() {
        // NaN in the workspace: a pass reading what no earlier pass wrote poisons the output.
        let ws = ctx.nan_f32(delta_rule_cp_workspace_len(p, b, t), "workspace");
        args.push(ws.arg());
        let mut entries: Vec<&String> = src.entries[..3].iter().collect();
        if matches!(form, DeltaForm::ChunkParallelCluster(_)) {
            entries[1] = src.entries.last().unwrap();
            assert!(entries[1].starts_with("delta_rule_cp_scan_mc_"), "{}", entries[1]);
        }
        // The prep with its form's own shared memory (Compact's is less: three blocks an SM).
        let mut launches = match form {
            DeltaForm::ChunkParallel(v) => delta_rule_cp_variant_launches(p, v, b, t),
            _ => delta_rule_cp_variant_launches(p, CpPrepVariant::default_for(p), b, t),
        }
        .to_vec();
        if let DeltaForm::ChunkParallelScanOut(x) = form {
            let sms = ctx.gpu.sm_count() as usize;
            assert!(delta_rule_cp_scan_out_runs_on(p, x, sms), "{x:?} on {sms} SMs");
            entries = vec![entries[0], src.entries.last().unwrap()];
            assert!(entries[1].starts_with("delta_rule_cp_scan_out_"), "{}", entries[1]);
            launches = vec![launches[0], delta_rule_cp_scan_out_launch(p, b)];
        }
        for (entry, l) in entries.into_iter().zip(launches) {
            ctx.launch(entry, l, &args);
        }
        ctx.gpu.synchronize().unwrap();
    } else {
        ctx.launch(src.name(), launch, &args);
    }
    // Reference on the prepared inputs: l2-normalised (or not), q scaled.
    let scale = p.scale as f64;
    let (qn, kn) = if p.qk_l2norm {
        (
            l2_norm(&arr(&[b, t, wq], q), dk, 1e-6).unwrap(),
            l2_norm(&arr(&[b, t, wq], k), dk, 1e-6).unwrap(),
        )
    } else {
        (arr(&[b, t, wq], q), arr(&[b, t, wq], k))
    };
    let qn = arr(&[b, t, wq], qn.data.iter().map(|x| x * scale).collect());
    let g_shape = match p.gate {
        DecayGate::Scalar => vec![b, t, hv],
        DecayGate::PerChannel => vec![b, t, hv * dk],
    };
    let cfg = DeltaRuleCfg {
        key_heads: hk,
        value_heads: hv,
        key_dim: dk,
        value_dim: dv,
        decay: match p.gate {
            DecayGate::Scalar => GateKind::Scalar,
            DecayGate::PerChannel => GateKind::PerChannel,
        },
    };
    let (mut want_o, want_s) = ref_delta(
        &qn,
        &kn,
        &arr(&[b, t, wv], v),
        &arr(&g_shape, g),
        &arr(&[b, t, hv], beta),
        &arr(&[b, hv, dk, dv], state),
        &cfg,
    )
    .unwrap();
    // With the epilogue: the reference delta rule, then the reference gated RMSNorm per head.
    if let Some((n, gate, w, ..)) = &norm {
        want_o = gated_rms_norm(
            &want_o,
            &arr(&[b, t, wv], gate.clone()),
            &arr(&[dv], w.clone()),
            f64::from(n.eps),
            dv,
            n.act,
        )
        .unwrap();
    }
    let what = format!(
        "delta {} Hk={hk} Hv={hv} Dk={dk} Dv={dv} {:?} l2={} C={} BV={} norm={:?} B={b} T={t} inplace={inplace} \
         g>={g_lo}",
        match form {
            DeltaForm::Chunked if tensor_cores => "chunked (tensor cores)".to_string(),
            DeltaForm::Chunked => "chunked".to_string(),
            DeltaForm::Recurrent => "recurrent".to_string(),
            DeltaForm::ChunkParallel(v) => format!("chunk-parallel (prep {v:?})"),
            DeltaForm::ChunkParallelCluster(v) => format!("chunk-parallel (prep {v:?}, scan over clusters)"),
            DeltaForm::ChunkParallelScanOut(x) => {
                format!("chunk-parallel (scan and output in one, SBV {}, {x:?})", p.scan_block)
            }
        },
        match p.gate {
            DecayGate::Scalar => "scalar",
            DecayGate::PerChannel => "per-channel",
        },
        p.qk_l2norm,
        p.chunk,
        p.value_block,
        p.gated_norm.map(|n| n.act)
    );
    let got_o = extract(&ctx.get_bf16(&o), rows, wv, o_stride, o_off, &format!("{what}: o"));
    let (o_tol, s_tol) = if tensor_cores {
        (DELTA_TC_TOL, DELTA_TC_TOL)
    } else {
        (BF16_TOL, STATE_TOL)
    };
    check(&got_o, &want_o.data, o_tol, &format!("{what}: o"));
    let s = if inplace {
        ctx.get_f32(&st_in)
    } else {
        let mut s = ctx.get_f32(&st_out);
        assert!(
            s[state_len..].iter().all(|x| x.is_nan()),
            "{what}: wrote past the end of state_out"
        );
        s.truncate(state_len);
        s
    };
    check(&s, &want_s.data, s_tol, &format!("{what}: state"));
}

fn delta_cases() -> Vec<DeltaRuleParams> {
    let gdn = DeltaRuleParams {
        value_block: 32,
        ..DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar)
    };
    let kda = DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel);
    // 64-token chunks need > 48 KiB of shared memory (the opt-in path).
    let kda64 = DeltaRuleParams {
        chunk: 64,
        ..DeltaRuleParams::new(2, 2, 128, 64, DecayGate::PerChannel)
    };
    let raw = DeltaRuleParams {
        qk_l2norm: false,
        scale: 0.05,
        chunk: 8,
        ..DeltaRuleParams::new(1, 2, 32, 32, DecayGate::Scalar)
    };
    // Small dims (the tiny specs' shapes): Dv below one warp leaves threads of the block without
    // a value column; Dk below 32 leaves lanes of the norm reductions idle.
    let tiny_gdn = DeltaRuleParams::new(2, 4, 8, 8, DecayGate::Scalar);
    let tiny_kda = DeltaRuleParams::new(4, 4, 16, 16, DecayGate::PerChannel);
    let mixed = DeltaRuleParams::new(2, 2, 24, 8, DecayGate::PerChannel);
    let wide_k = DeltaRuleParams::new(1, 2, 128, 16, DecayGate::Scalar);
    // Dv = 80 in blocks of 32: the third block of each head has 16 idle threads.
    let ragged = DeltaRuleParams {
        chunk: 32,
        ..DeltaRuleParams::new(2, 2, 16, 80, DecayGate::PerChannel)
    };
    vec![gdn, kda, kda64, raw, tiny_gdn, tiny_kda, mixed, wide_k, ragged]
}

#[test]
fn delta_rule_chunked_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, p) in delta_cases().iter().enumerate() {
        let s = 300 + 10 * i as u64;
        run_delta(&mut ctx, p, DeltaForm::Chunked, 2, 37, false, s);
        run_delta(&mut ctx, p, DeltaForm::Chunked, 2, 1, true, s + 1);
        run_delta(&mut ctx, p, DeltaForm::Chunked, 1, 2 * p.chunk, true, s + 2);
    }
}

/// The gated norms the delta-rule cases use: KDA's (SiLU gate, eps 1e-5) and a sigmoid gate
/// with eps 1e-6.
pub(crate) const NORM_SILU: GatedNormEpilogue = GatedNormEpilogue {
    eps: 1e-5,
    act: GateActivation::Silu,
};
pub(crate) const NORM_SIGMOID: GatedNormEpilogue = GatedNormEpilogue {
    eps: 1e-6,
    act: GateActivation::Sigmoid,
};

/// The gated-norm epilogue on GDN (scalar decay, GQA) and KDA (per-channel) shapes, both gate
/// activations: one block per head, including ragged (Dv = 80 in 96 threads), sub-warp (Dv = 8)
/// and 256-wide heads (eight warps in the reduction).
fn delta_norm_cases() -> Vec<DeltaRuleParams> {
    let (silu, sigmoid) = (NORM_SILU, NORM_SIGMOID);
    vec![
        DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar).with_gated_norm(silu),
        DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar).with_gated_norm(sigmoid),
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(sigmoid),
        DeltaRuleParams {
            chunk: 32,
            ..DeltaRuleParams::new(2, 2, 16, 80, DecayGate::PerChannel).with_gated_norm(sigmoid)
        },
        DeltaRuleParams::new(2, 4, 8, 8, DecayGate::Scalar).with_gated_norm(silu),
        DeltaRuleParams::new(1, 2, 32, 256, DecayGate::Scalar).with_gated_norm(silu),
    ]
}

#[test]
fn delta_rule_gated_norm_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, p) in delta_norm_cases().iter().enumerate() {
        let s = 500 + 10 * i as u64;
        run_delta(&mut ctx, p, DeltaForm::Chunked, 2, 37, false, s);
        run_delta(&mut ctx, p, DeltaForm::Chunked, 1, 2 * p.chunk, true, s + 1);
        run_delta(&mut ctx, p, DeltaForm::Recurrent, 2, 1, true, s + 2);
        run_delta(&mut ctx, p, DeltaForm::Recurrent, 2, 5, false, s + 3);
    }
}

/// The tensor-core form of the chunked kernel: KDA and GDN (GQA), with and without the gated
/// norm and the in-kernel l2 norm, BV 32/64/96/128 (128 and 256 threads). Each runs several
/// chunks with a partial last one (T = 150), T = 1, exactly one chunk in place, and decays of
/// e^-4..e^-12 per token, whose 16-token spans pass 2^64 (the exact diagonal blocks).
#[test]
fn delta_rule_tensor_cores_match_reference() {
    let Some(mut ctx) = setup() else { return };
    let (silu, sigmoid) = (NORM_SILU, NORM_SIGMOID);
    let cases = [
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel),
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams::new(1, 2, 128, 128, DecayGate::Scalar).with_gated_norm(sigmoid),
        DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar).with_gated_norm(silu),
        DeltaRuleParams {
            qk_l2norm: false,
            scale: 0.05,
            ..DeltaRuleParams::new(1, 2, 32, 96, DecayGate::PerChannel)
        },
        DeltaRuleParams {
            value_block: 96,
            ..DeltaRuleParams::new(1, 2, 16, 96, DecayGate::Scalar)
        },
    ];
    for (i, p) in cases.iter().enumerate() {
        assert!(delta_rule_tensor_cores(p), "case {i}");
        let s = 700 + 10 * i as u64;
        run_delta(&mut ctx, p, DeltaForm::Chunked, 2, 150, false, s);
        run_delta(&mut ctx, p, DeltaForm::Chunked, 2, 1, true, s + 1);
        run_delta(&mut ctx, p, DeltaForm::Chunked, 1, 64, true, s + 2);
        run_delta_decays(
            &mut ctx,
            p,
            DeltaForm::Chunked,
            1,
            100,
            false,
            s + 3,
            -12.0,
            OutRows::Padded,
        );
    }
}

/// The chunk-parallel form (prep, scan, out with a NaN-filled workspace and NaN-filled output):
/// KDA and GDN (GQA), Dk = Dv = 128 and Dk = 64 / 32, with and without the gated norm and the
/// in-kernel l2 norm, scan blocks 16 (the default at two heads), 32, 64 and 128. Each runs
/// T < 64, exactly one chunk, several chunks with a partial last one at B = 2 (T = 150) and
/// B = 3 (T = 200), all from a non-zero initial state, and decays of e^-4..e^-12 per token (the exact diagonal blocks), then once more with
/// dense aligned o and gate rows (the output pass's 16-byte stores and gate copies); every
/// [`CpPrepVariant`] of the prep pass on KDA and GDN at Dk = 128 ([`CpPrepVariant::distinct_for`]:
/// ScalarRaw, EarlyStage, UtHalves and the default Compact on the GDN one, EarlySpan, UtHalves and
/// Compact on KDA), and on KDA at Dk = 32 the forms whose text depends on Dk's layout of the span
/// check (Base, FewExp, EarlySpan, the default Compact). The defaults run on every case: Compact
/// with a per-channel gate at Dk 128 (four passes of 32 channels), 64 (two) and 32 (one), and
/// UtHalves where Dv is 256.
#[test]
fn delta_rule_chunk_parallel_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    let hopper = ctx.gpu.compute_capability() == (9, 0);
    let mut clusters = 0;
    let (silu, sigmoid) = (NORM_SILU, NORM_SIGMOID);
    let cases = [
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel),
        DeltaRuleParams::new(1, 2, 128, 128, DecayGate::Scalar).with_gated_norm(sigmoid),
        DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar).with_gated_norm(silu),
        DeltaRuleParams::new(2, 2, 64, 128, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams {
            qk_l2norm: false,
            scale: 0.05,
            ..DeltaRuleParams::new(1, 2, 32, 96, DecayGate::PerChannel)
        },
        DeltaRuleParams {
            scan_block: 32,
            ..DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu)
        },
        DeltaRuleParams {
            scan_block: 64,
            ..DeltaRuleParams::new(1, 2, 128, 128, DecayGate::Scalar).with_gated_norm(silu)
        },
        DeltaRuleParams::new(1, 1, 32, 256, DecayGate::PerChannel).with_gated_norm(silu),
        DeltaRuleParams {
            scan_block: 128,
            ..DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu)
        },
    ];
    for (i, p) in cases.iter().enumerate() {
        assert!(delta_rule_chunk_parallel_supported(p), "case {i}");
        // Every prep form on KDA and GDN at Dk 128, the span check's forms on Dk 32 (one pass
        // of 32 channels, a thread per span item for half the block), the default on all.
        let forms = match i {
            0 | 2 => CpPrepVariant::distinct_for(p),
            5 => vec![
                CpPrepVariant::Base,
                CpPrepVariant::FewExp,
                CpPrepVariant::EarlySpan,
                CpPrepVariant::default_for(p),
            ],
            _ => vec![CpPrepVariant::default_for(p)],
        };
        for v in forms {
            let f = DeltaForm::ChunkParallel(v);
            let s = 900 + 10 * i as u64;
            run_delta(&mut ctx, p, f, 2, 150, false, s);
            run_delta(&mut ctx, p, f, 2, 1, true, s + 1);
            run_delta(&mut ctx, p, f, 1, 37, false, s + 2);
            run_delta(&mut ctx, p, f, 1, 64, true, s + 3);
            run_delta(&mut ctx, p, f, 3, 200, false, s + 4);
            run_delta_decays(&mut ctx, p, f, 1, 100, false, s + 5, -12.0, OutRows::Padded);
            run_delta_decays(&mut ctx, p, f, 2, 150, false, s + 6, -3.0, OutRows::Aligned);
        }
        // On Hopper, the scan over clusters (where the module has it) on the same inputs: one
        // chunk, a partial last chunk, several sequences, state in place, strong decays.
        if hopper && delta_rule_cp_scan_cluster(p).is_some() {
            let f = DeltaForm::ChunkParallelCluster(CpPrepVariant::default_for(p));
            let s = 900 + 10 * i as u64;
            clusters += 1;
            run_delta(&mut ctx, p, f, 2, 150, false, s);
            run_delta(&mut ctx, p, f, 2, 1, true, s + 1);
            run_delta(&mut ctx, p, f, 1, 64, true, s + 3);
            run_delta(&mut ctx, p, f, 3, 200, false, s + 4);
            run_delta_decays(&mut ctx, p, f, 1, 100, false, s + 5, -12.0, OutRows::Padded);
        }
    }
    assert!(!hopper || clusters == 7, "{clusters} cases ran the scan over clusters");
}

/// The scan and the output pass in one (`delta_rule_cp_scan_out_`, after the default prep),
/// with either exchange of the norm's row sums (clusters on sm_90 only), against the reference:
/// the gated norm over 2, 4 and 8 blocks a head and within one block (Dv 64), without the norm,
/// Dk 64 and 32, Dv 96 and 256; one chunk, a partial last chunk, several sequences, the state in
/// place, strong decays, aligned rows. The tolerance is the
/// tensor-core forms' ([`DELTA_TC_TOL`]): the same bf16 operands as the three passes.
#[test]
fn delta_rule_scan_out_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    let hopper = ctx.gpu.compute_capability() == (9, 0);
    let (silu, sigmoid) = (NORM_SILU, NORM_SIGMOID);
    let with_scan = |scan_block: usize, p: DeltaRuleParams| DeltaRuleParams { scan_block, ..p };
    let cases = [
        with_scan(
            32,
            DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        ),
        with_scan(
            16,
            DeltaRuleParams::new(1, 2, 128, 128, DecayGate::Scalar).with_gated_norm(sigmoid),
        ),
        with_scan(
            64,
            DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
        ),
        with_scan(
            64,
            DeltaRuleParams::new(2, 2, 128, 64, DecayGate::PerChannel).with_gated_norm(silu),
        ),
        with_scan(32, DeltaRuleParams::new(2, 2, 128, 128, DecayGate::PerChannel)),
        with_scan(
            32,
            DeltaRuleParams::new(2, 4, 64, 64, DecayGate::Scalar).with_gated_norm(silu),
        ),
        DeltaRuleParams {
            qk_l2norm: false,
            scale: 0.05,
            ..DeltaRuleParams::new(1, 2, 32, 96, DecayGate::PerChannel)
        },
        with_scan(
            64,
            DeltaRuleParams::new(1, 1, 32, 256, DecayGate::PerChannel).with_gated_norm(silu),
        ),
    ];
    let mut ran = 0;
    for (i, p) in cases.iter().enumerate() {
        assert!(delta_rule_cp_scan_out_supported(p), "case {i}");
        for x in [ScanOutExchange::Cluster, ScanOutExchange::Global] {
            if delta_rule_cp_scan_out_clusters(p, x) && !hopper {
                continue;
            }
            let (f, s) = (DeltaForm::ChunkParallelScanOut(x), 1900 + 10 * i as u64);
            run_delta(&mut ctx, p, f, 2, 150, false, s);
            run_delta(&mut ctx, p, f, 2, 1, true, s + 1);
            run_delta(&mut ctx, p, f, 1, 64, true, s + 3);
            run_delta(&mut ctx, p, f, 3, 200, false, s + 4);
            run_delta_decays(&mut ctx, p, f, 1, 100, false, s + 5, -12.0, OutRows::Padded);
            run_delta_decays(&mut ctx, p, f, 2, 150, false, s + 6, -3.0, OutRows::Aligned);
            ran += 1;
        }
    }
    assert!(!hopper || ran == 2 * cases.len(), "{ran} forms ran");
    // A grid the device cannot hold at once (B3 H32 at SBV 32: 384 blocks, one an SM): through
    // the workspace, blocks take their places by ticket, so it runs in waves, each head's four
    // blocks together.
    let many = with_scan(
        32,
        DeltaRuleParams::new(32, 32, 128, 128, DecayGate::PerChannel).with_gated_norm(silu),
    );
    let x = ScanOutExchange::Global;
    let (b, l) = (3, delta_rule_cp_scan_out_launch(&many, 3));
    let src = delta_rule_chunk_parallel_with_scan_out(&many, x).unwrap();
    ctx.load(&src);
    let held = ctx.gpu.max_blocks_per_sm(src.entries.last().unwrap(), l).unwrap() * ctx.gpu.sm_count();
    let grid = l.grid.0 * l.grid.1 * l.grid.2;
    assert!(held < grid, "{grid} blocks, {held} resident at once: not in waves");
    run_delta(&mut ctx, &many, DeltaForm::ChunkParallelScanOut(x), b, 130, false, 1990);
}

#[test]
fn delta_rule_recurrent_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, p) in delta_cases().iter().enumerate() {
        let s = 400 + 10 * i as u64;
        run_delta(&mut ctx, p, DeltaForm::Recurrent, 2, 1, true, s);
        run_delta(&mut ctx, p, DeltaForm::Recurrent, 2, 5, false, s + 1);
    }
}
