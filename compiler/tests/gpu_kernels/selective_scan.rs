//! Selective scan (Mamba, M1 grouped).

use super::*;

fn run_scan(ctx: &mut Ctx, p: &SelectiveScanParams, gx: usize, b: usize, t: usize, inplace: bool, seed: u64) {
    let src = selective_scan(p).unwrap();
    ctx.load(&src);
    let mut r = rng(seed);
    let n = p.state_size;
    let hc = gx * p.heads_per_group;
    let di = hc * n;
    let rows = b * t;
    let u = round_bf16(&uniform(&mut r, rows * di, -2.0, 2.0));
    let dt = round_bf16(&uniform(&mut r, rows * di, -4.0, 1.0));
    let bm = round_bf16(&uniform(&mut r, rows * gx * n, -1.0, 1.0));
    let cm = round_bf16(&uniform(&mut r, rows * di, -1.0, 1.0));
    let z = round_bf16(&uniform(&mut r, rows * di, -3.0, 3.0));
    let a_log = round_f32(&uniform(&mut r, di * n, 0.0, 16f64.ln()));
    let d = round_f32(&uniform(&mut r, di, -1.0, 1.0));
    let dbias = round_f32(&uniform(&mut r, di, -1.0, 0.5));
    let state = round_f32(&uniform(&mut r, b * di * n, -1.0, 1.0));
    // [z | B | C] packed like the in_proj output; u and dt dense.
    let width = 2 * di + gx * n;
    let mut packed = embed(&z, rows, di, width, 0, 0.0);
    for row in 0..rows {
        packed[row * width + di..row * width + di + gx * n].copy_from_slice(&bm[row * gx * n..(row + 1) * gx * n]);
        packed[row * width + di + gx * n..(row + 1) * width].copy_from_slice(&cm[row * di..(row + 1) * di]);
    }
    let zbc = ctx.bf16(&packed, "zbc");
    let (u_d, dt_d) = (ctx.bf16(&u, "u"), ctx.bf16(&dt, "dt"));
    let (a_d, d_d, db_d) = (
        ctx.f32(&a_log, "a_log"),
        ctx.f32(&d, "D"),
        ctx.f32(&dbias, "delta_bias"),
    );
    let st_in = ctx.f32(&state, "state_in");
    let st_out = ctx.nan_f32(state.len(), "state_out");
    let y = ctx.nan_bf16(rows * di, "y");
    ctx.launch(
        src.name(),
        selective_scan_launch(b, di),
        &[
            u_d.arg(),
            KernelArg::I32(di as i32),
            dt_d.arg(),
            KernelArg::I32(di as i32),
            a_d.arg(),
            KernelArg::Ptr(zbc.device_ptr_at(di).unwrap()),
            KernelArg::I32(width as i32),
            KernelArg::Ptr(zbc.device_ptr_at(di + gx * n).unwrap()),
            KernelArg::I32(width as i32),
            d_d.arg(),
            db_d.arg(),
            zbc.arg(),
            KernelArg::I32(width as i32),
            st_in.arg(),
            if inplace { st_in.arg() } else { st_out.arg() },
            y.arg(),
            KernelArg::I32(di as i32),
            KernelArg::I32(t as i32),
            KernelArg::I32(di as i32),
        ],
    );
    let softplus = |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() };
    let delta: Vec<f64> = dt
        .iter()
        .enumerate()
        .map(|(i, &x)| softplus(x + dbias[i % di]))
        .collect();
    let (want_y, want_s) = ref_scan(
        &arr(&[b, t, di], u),
        &arr(&[b, t, di], delta),
        &arr(&[di, n], a_log),
        &arr(&[b, t, gx * n], bm),
        &arr(&[b, t, di], cm),
        &arr(&[di], d),
        &arr(&[b, di, n], state),
        n,
    )
    .unwrap();
    let gated: Vec<f64> = want_y
        .data
        .iter()
        .zip(&z)
        .map(|(y, z)| y * z / (1.0 + (-z).exp()))
        .collect();
    let what = format!(
        "scan N={n} Gx={gx} r={} Di={di} B={b} T={t} inplace={inplace}",
        p.heads_per_group
    );
    check(&ctx.get_bf16(&y), &gated, BF16_TOL, &format!("{what}: y"));
    let s = if inplace {
        ctx.get_f32(&st_in)
    } else {
        ctx.get_f32(&st_out)
    };
    check(&s, &want_s.data, STATE_TOL, &format!("{what}: state"));
}

#[test]
fn selective_scan_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    let p16 = SelectiveScanParams::apriel2(16, 4);
    run_scan(&mut ctx, &p16, 3, 2, 37, false, 500);
    run_scan(&mut ctx, &p16, 3, 2, 1, true, 501);
    let p64 = SelectiveScanParams::apriel2(64, 2);
    run_scan(&mut ctx, &p64, 1, 2, 20, true, 502);
}
