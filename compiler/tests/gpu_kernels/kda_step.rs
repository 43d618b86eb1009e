//! The KDA decode step: the single-block kernel and its Hopper cluster form.

use super::*;

/// f64 model of one KDA decode step (the kernels' formulas and bf16 roundings): updates the conv
/// and recurrent states in place, returns the `[B·T, H·Dv]` output.
#[allow(clippy::too_many_arguments)]
fn ref_kda_step(
    p: &KdaDecodeStepParams,
    b: usize,
    t: usize,
    x: &[f64],
    conv_w: &[f64],
    conv_b: &[f64],
    conv_state: &mut [f64],
    fa: &[f64],
    fb: &[f64],
    a_log: &[f64],
    dt_bias: &[f64],
    braw: &[f64],
    ga: &[f64],
    gb: &[f64],
    norm_w: &[f64],
    state: &mut [f64],
) -> Vec<f64> {
    let (h, dk, dv, k, c) = (p.heads, p.key_dim, p.value_dim, p.conv_kernel, p.conv_channels);
    let (rf, rg) = (p.decay_rank, p.gate_rank);
    let r16 = |v: f64| bf16::from_f64(v).to_f64();
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let softplus = |v: f64| if v > 20.0 { v } else { v.exp().ln_1p() };
    let mut out = vec![0.0; b * t * h * dv];
    for bi in 0..b {
        for ti in 0..t {
            let row = bi * t + ti;
            // The conv of the q, k and v channels: the kernel owns only those (other channels
            // of the conv, e.g. the 8 before q in the uneven case, keep their state).
            let owned = |ci: usize| {
                let within = |start: usize, width: usize| (start..start + h * width).contains(&ci);
                within(p.q_channel, dk) || within(p.k_channel, dk) || within(p.v_channel, dv)
            };
            let mut y = vec![0.0; c];
            for (ci, yc) in y.iter_mut().enumerate().filter(|(ci, _)| owned(*ci)) {
                let st = &mut conv_state[(bi * c + ci) * (k - 1)..(bi * c + ci + 1) * (k - 1)];
                let mut win: Vec<f64> = st.to_vec();
                win.push(x[row * c + ci]);
                let mut acc = if p.conv_bias { conv_b[ci] } else { 0.0 };
                for i in 0..k {
                    acc += conv_w[ci * k + i] * win[i];
                }
                *yc = r16(if p.conv_silu { acc * sigmoid(acc) } else { acc });
                st.copy_from_slice(&win[1..]);
            }
            for hi in 0..h {
                let q: Vec<f64> = (0..dk).map(|d| y[p.q_channel + hi * dk + d]).collect();
                let kk: Vec<f64> = (0..dk).map(|d| y[p.k_channel + hi * dk + d]).collect();
                let v: Vec<f64> = (0..dv).map(|j| y[p.v_channel + hi * dv + j]).collect();
                let (mut qs, mut ks) = (p.scale as f64, 1.0);
                if p.qk_l2norm {
                    qs /= (q.iter().map(|a| a * a).sum::<f64>() + 1e-6).sqrt();
                    ks = 1.0 / (kk.iter().map(|a| a * a).sum::<f64>() + 1e-6).sqrt();
                }
                let beta = sigmoid(braw[row * h + hi]);
                let neg_a = -a_log[hi].exp();
                let s = &mut state[(bi * h + hi) * dk * dv..(bi * h + hi + 1) * dk * dv];
                for d in 0..dk {
                    let f = r16((0..rf).map(|r| fa[row * rf + r] * fb[(hi * dk + d) * rf + r]).sum());
                    let decay = (neg_a * softplus(f + dt_bias[hi * dk + d])).exp();
                    for j in 0..dv {
                        s[d * dv + j] *= decay;
                    }
                }
                let mut o = vec![0.0; dv];
                for j in 0..dv {
                    let kv: f64 = (0..dk).map(|d| s[d * dv + j] * kk[d] * ks).sum();
                    let u = beta * (v[j] - kv);
                    for d in 0..dk {
                        s[d * dv + j] += kk[d] * ks * u;
                    }
                    o[j] = (0..dk).map(|d| s[d * dv + j] * q[d] * qs).sum();
                }
                let rn = 1.0 / (o.iter().map(|a| a * a).sum::<f64>() / dv as f64 + p.norm_eps as f64).sqrt();
                for j in 0..dv {
                    let z = r16((0..rg).map(|r| ga[row * rg + r] * gb[(hi * dv + j) * rg + r]).sum());
                    let act = match p.norm_act {
                        GateActivation::Silu => z * sigmoid(z),
                        GateActivation::Sigmoid => sigmoid(z),
                    };
                    out[row * h * dv + hi * dv + j] = o[j] * rn * norm_w[j] * act;
                }
            }
        }
    }
    out
}

/// Runs the single-block kernel (`cluster` None) or the cluster form on seeded random inputs
/// (strided activation rows, NaN-poisoned output) and returns (output, state, conv state) and
/// the f64 model's. With `timed` launches, then also prints the kernel's time a launch, over
/// that many launches back to back (after the outputs are read: they update the states).
fn run_kda_step(
    ctx: &mut Ctx,
    p: &KdaDecodeStepParams,
    cluster: Option<(usize, ClusterExchange)>,
    b: usize,
    t: usize,
    seed: u64,
    timed: usize,
) -> [(Vec<f64>, Vec<f64>); 3] {
    let src = match cluster {
        None => kda_decode_step(p).unwrap(),
        Some((cl, x)) => kda_decode_step_cluster_with(p, cl, x).unwrap(),
    };
    ctx.load(&src);
    let mut r = rng(seed);
    let (h, dk, dv, k, c) = (p.heads, p.key_dim, p.value_dim, p.conv_kernel, p.conv_channels);
    let (rf, rg, rows) = (p.decay_rank, p.gate_rank, b * t);
    let x = round_bf16(&uniform(&mut r, rows * c, -2.0, 2.0));
    let conv_w = round_bf16(&uniform(&mut r, c * k, -0.6, 0.6));
    let conv_b = round_bf16(&uniform(&mut r, c, -0.5, 0.5));
    let conv_state = round_f32(&uniform(&mut r, b * c * (k - 1), -2.0, 2.0));
    let fa = round_bf16(&uniform(&mut r, rows * rf, -1.0, 1.0));
    let fb = round_bf16(&uniform(&mut r, h * dk * rf, -0.3, 0.3));
    let a_log = round_f32(&uniform(&mut r, h, -1.0, 0.5));
    let dt_bias = round_f32(&uniform(&mut r, h * dk, -1.0, 1.0));
    let braw = round_bf16(&uniform(&mut r, rows * h, -3.0, 3.0));
    let ga = round_bf16(&uniform(&mut r, rows * rg, -1.0, 1.0));
    let gb = round_bf16(&uniform(&mut r, h * dv * rg, -0.3, 0.3));
    let norm_w = round_f32(&uniform(&mut r, dv, 0.5, 1.5));
    let state = round_f32(&uniform(&mut r, b * h * dk * dv, -1.0, 1.0));

    // Activations are column slices of wider rows; the output's other columns must stay NaN.
    let (sx, ox, sf, of, sbr, obr, sg, og, so, oo) = (c + 16, 8, rf + 8, 4, h + 5, 2, rg + 24, 16, h * dv + 8, 3);
    let x_d = ctx.bf16(&embed(&x, rows, c, sx, ox, 1e4), "x");
    let fa_d = ctx.bf16(&embed(&fa, rows, rf, sf, of, 1e4), "fa");
    let braw_d = ctx.bf16(&embed(&braw, rows, h, sbr, obr, 1e4), "braw");
    let ga_d = ctx.bf16(&embed(&ga, rows, rg, sg, og, 1e4), "ga");
    let conv_w_d = ctx.bf16(&conv_w, "conv_w");
    let conv_b_d = ctx.bf16(&conv_b, "conv_b");
    let conv_state_d = ctx.f32(&conv_state, "conv_state");
    let fb_d = ctx.bf16(&fb, "fb");
    let a_log_d = ctx.f32(&a_log, "a_log");
    let dt_bias_d = ctx.f32(&dt_bias, "dt_bias");
    let gb_d = ctx.bf16(&gb, "gb");
    let norm_w_d = ctx.f32(&norm_w, "norm_w");
    let state_d = ctx.f32(&state, "state");
    let o_d = ctx.nan_bf16(rows * so, "o");
    let dims = match cluster {
        None => LaunchDims::new((h as u32, b as u32, 1), (p.threads() as u32, 1, 1), 0),
        Some((cl, _)) => LaunchDims::new(
            ((h * cl) as u32, b as u32, 1),
            (kda_decode_step_cluster_threads(p, cl) as u32, 1, 1),
            0,
        ),
    };
    let args = [
        KernelArg::Ptr(x_d.device_ptr_at(ox).unwrap()),
        KernelArg::I32(sx as i32),
        conv_w_d.arg(),
        if p.conv_bias { conv_b_d.arg() } else { KernelArg::Ptr(0) },
        conv_state_d.arg(),
        KernelArg::Ptr(fa_d.device_ptr_at(of).unwrap()),
        KernelArg::I32(sf as i32),
        fb_d.arg(),
        a_log_d.arg(),
        dt_bias_d.arg(),
        KernelArg::Ptr(braw_d.device_ptr_at(obr).unwrap()),
        KernelArg::I32(sbr as i32),
        KernelArg::Ptr(ga_d.device_ptr_at(og).unwrap()),
        KernelArg::I32(sg as i32),
        gb_d.arg(),
        norm_w_d.arg(),
        state_d.arg(),
        KernelArg::Ptr(o_d.device_ptr_at(oo).unwrap()),
        KernelArg::I32(so as i32),
        KernelArg::I32(t as i32),
    ];
    ctx.launch(src.name(), dims, &args);
    let what = format!("{} B={b} T={t}", src.name());
    let got_o = extract(&ctx.get_bf16(&o_d), rows, h * dv, so, oo, &what);
    let (got_state, got_conv) = (ctx.get_f32(&state_d), ctx.get_f32(&conv_state_d));
    if timed > 0 {
        let ms = time_ms(ctx, 10, || {
            for _ in 0..timed {
                ctx.launch(src.name(), dims, &args);
            }
        }) / timed as f64;
        let form = match cluster {
            None => "single block".to_string(),
            Some((cl, x)) => format!("clusters of {cl}, {x:?}"),
        };
        println!(
            "| kda_decode_step, {form} | H{} Dk{} Dv{} B{b} T{t} | {:.2} µs |",
            p.heads,
            p.key_dim,
            p.value_dim,
            ms * 1e3
        );
    }
    let (mut want_conv, mut want_state) = (conv_state, state);
    let want_o = ref_kda_step(
        p,
        b,
        t,
        &x,
        &conv_w,
        &conv_b,
        &mut want_conv,
        &fa,
        &fb,
        &a_log,
        &dt_bias,
        &braw,
        &ga,
        &gb,
        &norm_w,
        &mut want_state,
    );
    [(got_o, want_o), (got_state, want_state), (got_conv, want_conv)]
}

/// The KDA decode step against the f64 model of its formulas, and its cluster form (Hopper:
/// each head split over 1 to 8 CTAs sharing q, k, the decays and the norms' partial sums
/// through distributed shared memory, with either exchange) against both: every output element
/// written, nothing outside the output's columns, states updated, over 1 and 3 tokens (both
/// buffers of the asynchronous exchange, and the first again) of 1 and 2 sequences.
#[test]
fn kda_decode_step_and_its_cluster_form_match_reference() {
    let Some(mut ctx) = setup() else { return };
    let hopper = ctx.gpu.compute_capability() == (9, 0);
    if !hopper {
        eprintln!("NOTICE: the cluster form is not run: not an sm_90 GPU");
    }
    for (i, (p, clusters)) in kda_step_cases().into_iter().enumerate() {
        for (b, t) in [(1, 1), (2, 1), (2, 3)] {
            let seed = 900 + 10 * i as u64 + t as u64 + b as u64;
            let single = run_kda_step(&mut ctx, &p, None, b, t, seed, 0);
            let what = format!("KDA step H{} Dk{} Dv{} B={b} T={t}", p.heads, p.key_dim, p.value_dim);
            check(&single[0].0, &single[0].1, BF16_TOL, &format!("{what}: o"));
            check(&single[1].0, &single[1].1, STATE_TOL, &format!("{what}: state"));
            assert_eq!(single[2].0, single[2].1, "{what}: conv state (a copy of inputs)");
            if !hopper {
                continue;
            }
            for (&cl, x) in clusters.iter().flat_map(|cl| ClusterExchange::ALL.map(|x| (cl, x))) {
                if !x.supports(cl) {
                    continue;
                }
                let got = run_kda_step(&mut ctx, &p, Some((cl, x)), b, t, seed, 0);
                let what = format!("{what}, clusters of {cl} ({x:?})");
                check(&got[0].0, &got[0].1, BF16_TOL, &format!("{what}: o"));
                check(&got[1].0, &got[1].1, STATE_TOL, &format!("{what}: state"));
                assert_eq!(got[2].0, got[2].1, "{what}: conv state");
                // Same roundings as the single-block kernel; only the norms' sums run in
                // another order.
                check(&got[0].0, &single[0].0, BF16_TOL, &format!("{what}: o vs single block"));
                check(&got[1].0, &single[1].0, 1e-5, &format!("{what}: state vs single block"));
            }
        }
    }
}

/// The KDA decode step alone at hybrid-1b's shape, one token of 1 and 2 sequences: the
/// single-block kernel and the cluster form (the codegen's cluster size) with either exchange,
/// each timed over 200 launches back to back, without the dependent launch the decode loop has
/// (`cargo test --release --test gpu_kernels bench_kda_step -- --ignored --nocapture`). Each
/// run is also checked against the reference.
#[test]
#[ignore]
fn bench_kda_step() {
    let Some(mut ctx) = setup() else { return };
    let hopper = ctx.gpu.compute_capability() == (9, 0);
    let (p, clusters) = kda_step_cases().swap_remove(0);
    println!("| kernel | shape | time a launch |");
    println!("|---|---|---|");
    for b in [1, 2] {
        let mut forms = vec![None];
        if hopper {
            let cl = clusters[0];
            forms.extend(ClusterExchange::ALL.map(|x| Some((cl, x))));
        }
        for form in forms {
            let got = run_kda_step(&mut ctx, &p, form, b, 1, 77 + b as u64, 200);
            check(&got[0].0, &got[0].1, BF16_TOL, &format!("{form:?} B{b}: o"));
        }
    }
}
