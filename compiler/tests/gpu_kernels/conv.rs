//! Causal conv1d.

use super::*;

#[allow(clippy::too_many_arguments)]
fn run_conv(
    ctx: &mut Ctx,
    k: usize,
    act: ConvActivation,
    has_bias: bool,
    b: usize,
    t: usize,
    c: usize,
    inplace: bool,
    seed: u64,
) {
    let src = conv1d(&Conv1dParams {
        kernel_size: k,
        activation: act,
        has_bias,
    })
    .unwrap();
    ctx.load(&src);
    let mut r = rng(seed);
    let rows = b * t;
    let (sx, ox, sy, oy) = (c + 24, 8, c + 5, 3);
    let x = round_bf16(&uniform(&mut r, rows * c, -2.0, 2.0));
    let w = round_bf16(&uniform(&mut r, c * k, -0.6, 0.6));
    let bias = round_bf16(&uniform(&mut r, c, -0.5, 0.5));
    let state = round_f32(&uniform(&mut r, b * c * (k - 1), -2.0, 2.0));

    let x_d = ctx.bf16(&embed(&x, rows, c, sx, ox, 1e4), "x");
    let w_d = ctx.bf16(&w, "w");
    let bias_d = ctx.bf16(&bias, "bias");
    let st_in = ctx.f32(&state, "state_in");
    let st_out = ctx.nan_f32(b * c * (k - 1), "state_out");
    let y_d = ctx.nan_bf16(rows * sy, "y");
    let st_out_ptr = if inplace {
        st_in.device_ptr()
    } else {
        st_out.device_ptr()
    };
    ctx.launch(
        src.name(),
        conv1d_launch(b, t, c),
        &[
            KernelArg::Ptr(x_d.device_ptr_at(ox).unwrap()),
            KernelArg::I32(sx as i32),
            w_d.arg(),
            if has_bias { bias_d.arg() } else { KernelArg::Ptr(0) },
            st_in.arg(),
            KernelArg::Ptr(st_out_ptr),
            KernelArg::Ptr(y_d.device_ptr_at(oy).unwrap()),
            KernelArg::I32(sy as i32),
            KernelArg::I32(t as i32),
            KernelArg::I32(c as i32),
        ],
    );
    let (want_y, want_s) = causal_conv1d(
        &arr(&[b, t, c], x),
        &arr(&[c, 1, k], w),
        has_bias.then(|| arr(&[c], bias)).as_ref(),
        &arr(&[b, c, k - 1], state),
        act == ConvActivation::Silu,
    )
    .unwrap();
    let what = format!("conv1d K={k} {act:?} bias={has_bias} B={b} T={t} C={c} inplace={inplace}");
    let y = extract(&ctx.get_bf16(&y_d), rows, c, sy, oy, &what);
    check(&y, &want_y.data, BF16_TOL, &format!("{what}: y"));
    let s = if inplace {
        ctx.get_f32(&st_in)
    } else {
        ctx.get_f32(&st_out)
    };
    // The state is a copy of inputs: exact.
    assert_eq!(s, round_f32(&want_s.data), "{what}: state_out");
}

#[test]
fn conv1d_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    run_conv(&mut ctx, 4, ConvActivation::Silu, true, 2, 37, 200, false, 1);
    run_conv(&mut ctx, 4, ConvActivation::Silu, false, 2, 37, 200, true, 2);
    // Decode: T = 1, state updated in place.
    run_conv(&mut ctx, 4, ConvActivation::Identity, true, 2, 1, 200, true, 3);
    // T < K − 1: part of the new state comes from the old one.
    run_conv(&mut ctx, 4, ConvActivation::Silu, true, 2, 2, 130, true, 4);
    run_conv(&mut ctx, 2, ConvActivation::Silu, true, 1, 16, 128, false, 5);
    run_conv(&mut ctx, 1, ConvActivation::Identity, false, 2, 5, 64, false, 6);
}
