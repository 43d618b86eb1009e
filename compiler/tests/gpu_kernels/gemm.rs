//! cuBLASLt GEMM.

use super::*;

fn ref_linear(x: &[f64], w: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut y = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = (0..k).map(|l| x[i * k + l] * w[j * k + l]).sum();
        }
    }
    y
}

#[test]
fn gemm_matches_reference() {
    let Some(ctx) = setup() else { return };
    let gemm = Gemm::new(&ctx.gpu).unwrap();
    let mut r = rng(600);
    let (m, n, k) = (37, 100, 72);
    let x = round_bf16(&uniform(&mut r, m * k, -1.0, 1.0));
    let w = round_bf16(&uniform(&mut r, n * k, -1.0, 1.0));
    let (x_d, w_d) = (ctx.bf16(&x, "x"), ctx.bf16(&w, "w"));
    let want = ref_linear(&x, &w, m, n, k);

    // bf16 out, beta = 0.
    let mut y = ctx.nan_bf16(m * n, "y");
    gemm.linear(&x_d, &w_d, &mut y, GemmShape::linear(m, n, k), 1.0, 0.0)
        .unwrap();
    check(&ctx.get_bf16(&y), &want, BF16_TOL, "gemm bf16 out");

    // bf16 out, beta = 1: the residual add rides on the GEMM.
    let resid = round_bf16(&uniform(&mut r, m * n, -1.0, 1.0));
    let mut y = ctx.bf16(&resid, "residual");
    gemm.linear(&x_d, &w_d, &mut y, GemmShape::linear(m, n, k), 1.0, 1.0)
        .unwrap();
    let want_res: Vec<f64> = want.iter().zip(&resid).map(|(a, b)| a + b).collect();
    check(&ctx.get_bf16(&y), &want_res, BF16_TOL, "gemm bf16 out + residual");

    // f32 out into a column slice of a wider buffer.
    let ldy = n + 32;
    let y32 = ctx.nan_f32(m * ldy, "y32");
    let shape = GemmShape {
        ldy,
        ..GemmShape::linear(m, n, k)
    };
    // SAFETY: y32 holds m·ldy ≥ shape.y_len() + 16 elements; x and w are dense.
    unsafe {
        gemm.linear_raw(
            x_d.device_ptr(),
            w_d.device_ptr(),
            y32.device_ptr_at(16).unwrap(),
            modelc_runtime::cuda::GemmOut::F32,
            shape,
            1.0,
            0.0,
        )
    }
    .unwrap();
    let got = extract(&ctx.get_f32(&y32), m, n, ldy, 16, "gemm f32 slice");
    check(&got, &want, 1e-5, "gemm f32 out, ldy slice");

    // Strided batch sharing one weight.
    let batch = 3;
    let xb = round_bf16(&uniform(&mut r, batch * m * k, -1.0, 1.0));
    let xb_d = ctx.bf16(&xb, "xb");
    let mut yb = ctx.nan_f32(batch * m * n, "yb");
    let shape = GemmShape {
        stride_w: 0,
        ..GemmShape::batched(batch, m, n, k)
    };
    gemm.linear(&xb_d, &w_d, &mut yb, shape, 1.0, 0.0).unwrap();
    let mut want_b = Vec::new();
    for i in 0..batch {
        want_b.extend(ref_linear(&xb[i * m * k..(i + 1) * m * k], &w, m, n, k));
    }
    check(&ctx.get_f32(&yb), &want_b, 1e-5, "gemm batched, shared weight");
    assert!(gemm.cached_algorithms() >= 3);

    // Too-small output buffer: an error, not a fault.
    let mut small = ctx.nan_bf16(m * n - 1, "small");
    let err = gemm
        .linear(&x_d, &w_d, &mut small, GemmShape::linear(m, n, k), 1.0, 0.0)
        .unwrap_err();
    assert!(matches!(err, CudaError::SizeMismatch { .. }), "{err}");
}

/// `D = alpha·X·Wᵀ + beta·C + bias` with C apart from D (the executor's residual adds) and the
/// bias epilogue, at a prefill shape and at m = 1 (decode), bf16 and f32 outputs, strided C and
/// D: against the f64 reference, C left untouched, D written everywhere (NaN-poisoned), and two
/// calls bit-identical.
#[test]
fn gemm_separate_c_and_bias_epilogue() {
    use modelc_runtime::cuda::{GemmBias, GemmC, GemmOut};
    let Some(ctx) = setup() else { return };
    let gemm = Gemm::new(&ctx.gpu).unwrap();
    let mut r = rng(610);
    for m in [37usize, 1] {
        let (n, k) = (100, 72);
        let (alpha, beta) = (0.75f32, 0.5f32);
        let x = round_bf16(&uniform(&mut r, m * k, -1.0, 1.0));
        let w = round_bf16(&uniform(&mut r, n * k, -1.0, 1.0));
        let (x_d, w_d) = (ctx.bf16(&x, "x"), ctx.bf16(&w, "w"));
        let xw = ref_linear(&x, &w, m, n, k);

        // bf16: C a strided column window (ldc = n + 24, 8 columns in), bias bf16, D dense.
        let ldc = n + 24;
        let c_full = round_bf16(&uniform(&mut r, m * ldc, -1.0, 1.0));
        let bias = round_bf16(&uniform(&mut r, n, -1.0, 1.0));
        let want: Vec<f64> = (0..m * n)
            .map(|i| {
                let (row, col) = (i / n, i % n);
                f64::from(alpha) * xw[i] + f64::from(beta) * c_full[row * ldc + 8 + col] + bias[col]
            })
            .collect();
        let c_d = ctx.bf16(&c_full, "C");
        let b_d = ctx.bf16(&bias, "bias");
        let mut runs = Vec::new();
        for _ in 0..2 {
            let y = ctx.nan_bf16(m * n, "D");
            let c = GemmC {
                ptr: c_d.device_ptr_at(8).unwrap(),
                ld: ldc,
                stride: m * ldc,
            };
            let b = GemmBias {
                ptr: b_d.device_ptr(),
                dtype: GemmOut::Bf16,
            };
            // SAFETY: X, W dense; D holds m·n; C holds m rows of ldc from column 8 (8 + n ≤ ldc);
            // the bias n elements; C and D are different allocations.
            unsafe {
                gemm.matmul_raw(
                    x_d.device_ptr(),
                    w_d.device_ptr(),
                    y.device_ptr(),
                    GemmOut::Bf16,
                    GemmShape::linear(m, n, k),
                    alpha,
                    beta,
                    Some(c),
                    Some(b),
                )
            }
            .unwrap();
            runs.push(ctx.get_bf16(&y));
        }
        check(&runs[0], &want, BF16_TOL, &format!("gemm m={m} bf16: αXWᵀ + βC + bias"));
        assert!(
            runs[0].iter().zip(&runs[1]).all(|(a, b)| a.to_bits() == b.to_bits()),
            "m={m}: two GEMM calls differ"
        );
        assert_eq!(ctx.get_bf16(&c_d), c_full, "m={m}: C was written");

        // The safe wrapper, C dense, no bias, beta = 1 (the residual add).
        let c2 = round_bf16(&uniform(&mut r, m * n, -1.0, 1.0));
        let c2_d = ctx.bf16(&c2, "C dense");
        let mut y = ctx.nan_bf16(m * n, "D");
        gemm.linear_c_bias(&x_d, &w_d, &c2_d, n, None, &mut y, GemmShape::linear(m, n, k), 1.0, 1.0)
            .unwrap();
        let want_res: Vec<f64> = xw.iter().zip(&c2).map(|(a, b)| a + b).collect();
        check(
            &ctx.get_bf16(&y),
            &want_res,
            BF16_TOL,
            &format!("gemm m={m} bf16: XWᵀ + C"),
        );

        // f32: D a column window (ldy = n + 32, 16 columns in), C dense, bias f32.
        let ldy = n + 32;
        let c32 = uniform(&mut r, m * n, -1.0, 1.0);
        let b32 = uniform(&mut r, n, -1.0, 1.0);
        let (c32_d, b32_d) = (ctx.f32(&c32, "C f32"), ctx.f32(&b32, "bias f32"));
        let y32 = ctx.nan_f32(m * ldy, "D f32");
        let shape = GemmShape {
            ldy,
            ..GemmShape::linear(m, n, k)
        };
        // SAFETY: D holds m·ldy ≥ shape.y_len() + 16 elements; C m·n dense; bias n.
        unsafe {
            gemm.matmul_raw(
                x_d.device_ptr(),
                w_d.device_ptr(),
                y32.device_ptr_at(16).unwrap(),
                GemmOut::F32,
                shape,
                alpha,
                beta,
                Some(GemmC {
                    ptr: c32_d.device_ptr(),
                    ld: n,
                    stride: m * n,
                }),
                Some(GemmBias {
                    ptr: b32_d.device_ptr(),
                    dtype: GemmOut::F32,
                }),
            )
        }
        .unwrap();
        let want32: Vec<f64> = (0..m * n)
            .map(|i| f64::from(alpha) * xw[i] + f64::from(beta) * c32[i] + b32[i % n])
            .collect();
        let got = extract(&ctx.get_f32(&y32), m, n, ldy, 16, "gemm f32 slice");
        // f32 output and f32 accumulation of bf16-exact products: only summation rounding.
        check(
            &got,
            &want32,
            1e-5,
            &format!("gemm m={m} f32: αXWᵀ + βC + bias, ldy slice"),
        );

        // A bias of another type than D is refused, not mis-read.
        let mismatched = GemmBias {
            ptr: b32_d.device_ptr(),
            dtype: GemmOut::F32,
        };
        assert!(!Gemm::bias_supported(GemmOut::Bf16, mismatched));
        let y = ctx.nan_bf16(m * n, "D");
        // SAFETY: as above; the call is refused before anything is enqueued.
        let err = unsafe {
            gemm.matmul_raw(
                x_d.device_ptr(),
                w_d.device_ptr(),
                y.device_ptr(),
                GemmOut::Bf16,
                GemmShape::linear(m, n, k),
                1.0,
                0.0,
                None,
                Some(mismatched),
            )
        }
        .unwrap_err();
        assert!(matches!(err, CudaError::InvalidGemm { .. }), "{err}");
    }
}

/// The GEMV path for few rows (decode): `D = alpha·X·Wᵀ + beta·C + bias` at m = 1, 3, 8, K on the
/// 16-byte path (2048) and on the scalar one (1001, odd), N a multiple of the block's columns
/// (4096) and not (37), bf16 and f32 outputs, with nothing added, with C apart from D and a bias,
/// and accumulating into D in place. X, C and D are column windows of wider buffers; D's other
/// columns must stay NaN; two calls must be bit-identical.
#[test]
fn gemv_matches_reference() {
    use modelc_runtime::cuda::{gemv_raw, load_gemv, GemmBias, GemmC, GemmOut};
    let Some(mut ctx) = setup() else { return };
    load_gemv(&mut ctx.gpu, &ctx.cache).unwrap_or_else(|e| panic!("{e}"));
    let mut r = rng(620);
    for m in [1usize, 3, 8] {
        for k in [2048usize, 1001] {
            for n in [4096usize, 37] {
                // X: a window 8 columns into rows of k + 16 (16-byte aligned when k is).
                let (ldx, xoff) = (k + 16, 8);
                let x = round_bf16(&uniform(&mut r, m * k, -1.0, 1.0));
                let w = round_bf16(&uniform(&mut r, n * k, -1.0, 1.0));
                let x_d = ctx.bf16(&embed(&x, m, k, ldx, xoff, 0.0), "x");
                let w_d = ctx.bf16(&w, "w");
                let xw = ref_linear(&x, &w, m, n, k);
                // C: 4 columns into rows of n + 16; D: 8 columns into rows of n + 24.
                let (ldc, coff, ldy, yoff) = (n + 16, 4, n + 24, 8);
                let c = round_bf16(&uniform(&mut r, m * n, -1.0, 1.0));
                let bias = round_bf16(&uniform(&mut r, n, -1.0, 1.0));
                let shape = GemmShape {
                    ldx,
                    ldy,
                    ..GemmShape::linear(m, n, k)
                };
                for out in [GemmOut::Bf16, GemmOut::F32] {
                    // bf16: the f32 sum rounded once to bf16; f32: only f32 summation rounding.
                    let tol = if out == GemmOut::Bf16 { BF16_TOL } else { 1e-5 };
                    for variant in ["XWᵀ", "0.75·XWᵀ + 0.5·C + bias", "XWᵀ + D in place"] {
                        let what = format!("gemv m={m} k={k} n={n} {out:?}: {variant}");
                        let (alpha, beta) = match variant {
                            "XWᵀ" => (1.0f32, 0.0f32),
                            "XWᵀ + D in place" => (1.0, 1.0),
                            _ => (0.75, 0.5),
                        };
                        let want: Vec<f64> = (0..m * n)
                            .map(|i| {
                                let v = f64::from(alpha) * xw[i];
                                match variant {
                                    "XWᵀ" => v,
                                    "XWᵀ + D in place" => v + c[i],
                                    _ => v + f64::from(beta) * c[i] + bias[i % n],
                                }
                            })
                            .collect();
                        let c_full = embed(&c, m, n, ldc, coff, f64::NAN);
                        // D starts NaN outside its window; in place, C's values inside it.
                        let y_init = if variant == "XWᵀ + D in place" {
                            embed(&c, m, n, ldy, yoff, f64::NAN)
                        } else {
                            vec![f64::NAN; m * ldy]
                        };
                        let mut runs = Vec::new();
                        for _ in 0..2 {
                            let (got, c_after) = match out {
                                GemmOut::Bf16 => {
                                    let (c_d, b_d, y_d) =
                                        (ctx.bf16(&c_full, "C"), ctx.bf16(&bias, "bias"), ctx.bf16(&y_init, "D"));
                                    launch_gemv(&ctx, variant, &x_d, &w_d, &y_d, &c_d, &b_d, out, shape, (alpha, beta));
                                    (ctx.get_bf16(&y_d), ctx.get_bf16(&c_d))
                                }
                                GemmOut::F32 => {
                                    let (c_d, b_d, y_d) =
                                        (ctx.f32(&c_full, "C"), ctx.f32(&bias, "bias"), ctx.f32(&y_init, "D"));
                                    launch_gemv(&ctx, variant, &x_d, &w_d, &y_d, &c_d, &b_d, out, shape, (alpha, beta));
                                    (ctx.get_f32(&y_d), ctx.get_f32(&c_d))
                                }
                            };
                            let same_c = c_after
                                .iter()
                                .zip(&c_full)
                                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
                            assert!(same_c, "{what}: C was written");
                            runs.push(extract(&got, m, n, ldy, yoff, &what));
                        }
                        check(&runs[0], &want, tol, &what);
                        assert!(
                            runs[0].iter().zip(&runs[1]).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{what}: two calls differ"
                        );
                    }
                }
            }
        }
    }

    // Refused, not mis-launched: 9 rows, a batch of 2.
    for bad in [GemmShape::linear(9, 37, 64), GemmShape::batched(2, 1, 37, 64)] {
        // SAFETY: refused before anything is enqueued (no address is read).
        let err = unsafe { gemv_raw(&ctx.gpu, 0, 0, 0, GemmOut::F32, bad, 1.0, 0.0, None, None) }.unwrap_err();
        assert!(matches!(err, CudaError::InvalidGemm { .. }), "{err}");
    }

    /// One GEMV call of the test's variant: C (4 columns in) and the bias only for the
    /// "+ C + bias" variant; D 8 columns into its rows; X 8 columns into its rows.
    #[allow(clippy::too_many_arguments)]
    fn launch_gemv<T: modelc_runtime::cuda::GpuElem>(
        ctx: &Ctx,
        variant: &str,
        x_d: &GpuBuffer<bf16>,
        w_d: &GpuBuffer<bf16>,
        y_d: &GpuBuffer<T>,
        c_d: &GpuBuffer<T>,
        b_d: &GpuBuffer<T>,
        out: GemmOut,
        shape: GemmShape,
        (alpha, beta): (f32, f32),
    ) {
        let separate = variant.contains("bias");
        let c = separate.then(|| GemmC {
            ptr: c_d.device_ptr_at(4).unwrap(),
            ld: shape.n + 16,
            stride: 0,
        });
        let bias = separate.then(|| GemmBias {
            ptr: b_d.device_ptr(),
            dtype: out,
        });
        // SAFETY: X holds m rows of ldx from column 8 (8 + k ≤ ldx), W n·k, D m rows of ldy from
        // column 8 (8 + n ≤ ldy), C m rows of ldc = n + 16 from column 4, the bias n elements;
        // C and D are different allocations, or C is D with D's stride (in place).
        unsafe {
            gemv_raw(
                &ctx.gpu,
                x_d.device_ptr_at(8).unwrap(),
                w_d.device_ptr(),
                y_d.device_ptr_at(8).unwrap(),
                out,
                shape,
                alpha,
                beta,
                c,
                bias,
            )
        }
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The GEMV with fused prologues (decode): RMSNorm of X's rows (γ bf16 and f32) and
/// `silu(gate)·up`, and the narrow (one warp per column set) kernels for short K, against a CPU
/// computation: every m = 1..8; K on the 16-byte path (2048), not a multiple of 8 (1001: the
/// scalar path), short (128, and 200), and the streamed kernel's (m ≤ 2, 16-byte path,
/// 512 < K ≤ 4096: 2048, 4096, 1024); X 16-byte aligned and not (a window 3 columns in: the
/// scalar path at K = 2048); N a multiple of the block's columns (4096) and not (37); bf16 out
/// (f32 at m = 1, 8); plain and programmatic dependent launches; with a C + bias epilogue on
/// some cases. D's other columns must stay NaN and every element of the window be written
/// (D starts NaN); two calls are bit-identical.
#[test]
fn gemv_fused_prologues_match_reference() {
    use modelc_runtime::cuda::{gemv_ex, gemv_tensor_takes, load_gemv, GemmBias, GemmC, GemmOut, GemvPrologue};
    let Some(mut ctx) = setup() else { return };
    load_gemv(&mut ctx.gpu, &ctx.cache).unwrap_or_else(|e| panic!("{e}"));
    let mut r = rng(621);
    let eps = 1e-5f64;
    let mut cases = 0;
    let mut failures: Vec<String> = Vec::new();
    for m in 1usize..=8 {
        // (4096, 2053) and (1024, 300): the streamed kernel (m ≤ 2) with two 4 KB units a row
        // and half a unit (lanes past K idle), warps with one row more than others. At 3 to 8
        // rows the tensor-core kernel: partial 16-row groups (37, 2053, 300), a partial K chunk
        // (200), and several groups a block (9000 rows: 563 groups over at most 2 blocks an SM).
        let shapes = [
            (2048usize, 4096usize),
            (1001, 37),
            (128, 4096),
            (200, 37),
            (2048, 37),
            (4096, 2053),
            (1024, 300),
            (1024, 9000),
        ];
        for (k, n) in shapes {
            for xoff in [8usize, 3] {
                if xoff == 3 && k != 2048 {
                    continue;
                }
                // X (and up, k further) in rows of ldx = 2k + 16: a window xoff columns in.
                let ldx = 2 * k + 16;
                let gate = round_bf16(&uniform(&mut r, m * k, -3.0, 3.0));
                let upv = round_bf16(&uniform(&mut r, m * k, -1.0, 1.0));
                let mut xbuf = vec![f64::NAN; m * ldx];
                for row in 0..m {
                    for c in 0..k {
                        xbuf[row * ldx + xoff + c] = gate[row * k + c];
                        xbuf[row * ldx + xoff + k + c] = upv[row * k + c];
                    }
                }
                let w = round_bf16(&uniform(&mut r, n * k, -1.0, 1.0));
                let gamma = round_bf16(&uniform(&mut r, k, 0.5, 1.5));
                let c = round_bf16(&uniform(&mut r, m * n, -1.0, 1.0));
                let bias = round_bf16(&uniform(&mut r, n, -1.0, 1.0));
                let x_d = ctx.bf16(&xbuf, "x");
                let w_d = ctx.bf16(&w, "w");
                let gb_d = ctx.bf16(&gamma, "gamma bf16");
                let gf_d = ctx.f32(&gamma, "gamma f32");
                let b_d = ctx.bf16(&bias, "bias");
                let bf_d = ctx.f32(&bias, "bias f32");
                let (ldc, ldy, yoff) = (n + 16, n + 24, 8);
                let c_full = embed(&c, m, n, ldc, 4, f64::NAN);
                let prologues: &[&str] = if k <= 512 {
                    &["none", "rms bf16", "silu"]
                } else {
                    &["none", "rms bf16", "rms f32", "silu"]
                };
                for &pro in prologues {
                    // X as the GEMM multiplies it.
                    let xin: Vec<f64> = match pro {
                        "none" => gate.clone(),
                        "silu" => gate
                            .iter()
                            .zip(&upv)
                            .map(|(g, u)| bf16::from_f64(g / (1.0 + (-g).exp()) * u).to_f64())
                            .collect(),
                        _ => (0..m)
                            .flat_map(|row| {
                                let xr = &gate[row * k..(row + 1) * k];
                                let inv = 1.0 / (xr.iter().map(|v| v * v).sum::<f64>() / k as f64 + eps).sqrt();
                                xr.iter().zip(&gamma).map(move |(v, g)| v * inv * g).collect::<Vec<_>>()
                            })
                            .collect(),
                    };
                    let xw = ref_linear(&xin, &w, m, n, k);
                    let epilogue = (m + k) % 2 == 0;
                    let outs: &[GemmOut] = if m == 1 || m == 8 {
                        &[GemmOut::Bf16, GemmOut::F32]
                    } else {
                        &[GemmOut::Bf16]
                    };
                    for &out in outs {
                        for pdl in [false, true] {
                            cases += 1;
                            let what = format!(
                                "fused gemv {pro} m={m} k={k} n={n} x+{xoff} {out:?} pdl={pdl}{}",
                                if epilogue { " +C+bias" } else { "" }
                            );
                            let want: Vec<f64> = (0..m * n)
                                .map(|i| {
                                    if epilogue {
                                        xw[i] + 0.5 * c[i] + bias[i % n]
                                    } else {
                                        xw[i]
                                    }
                                })
                                .collect();
                            // f32 out: only summation rounding, except that SiLU·up rounds each
                            // activation to bf16 like the unfused kernel, and the device's fast
                            // exp can land one bf16 ulp (2⁻⁸ relative) away from the host's on
                            // an element near a rounding boundary: at K = 128 one such element
                            // moves a row by about 2⁻⁸/√K ≈ 3.5e-4.
                            // The tensor-core kernel multiplies bf16 X: RMSNorm's x·γ rounded
                            // to bf16 (as the unfused path rounds the normalised row) moves each
                            // element by up to 2⁻⁹ relative, the sums by about 2⁻⁹/√3 ≈ 1.1e-3.
                            let shape = GemmShape {
                                ldx,
                                ldy,
                                ..GemmShape::linear(m, n, k)
                            };
                            let tensor = gemv_tensor_takes(&ctx.gpu, &shape) && xoff % 8 == 0;
                            let tol = match (out, pro) {
                                (GemmOut::Bf16, _) => BF16_TOL,
                                (_, "silu") => 2e-3,
                                (_, "rms bf16" | "rms f32") if tensor => 2e-3,
                                _ => 1e-4,
                            };
                            let prologue = match pro {
                                "none" => GemvPrologue::None,
                                "silu" => GemvPrologue::SiluMul {
                                    up: x_d.device_ptr_at(xoff + k).unwrap(),
                                },
                                "rms bf16" => GemvPrologue::RmsNorm {
                                    gamma: gb_d.device_ptr(),
                                    gamma_dtype: GemmOut::Bf16,
                                    eps: eps as f32,
                                },
                                _ => GemvPrologue::RmsNorm {
                                    gamma: gf_d.device_ptr(),
                                    gamma_dtype: GemmOut::F32,
                                    eps: eps as f32,
                                },
                            };
                            let mut runs = Vec::new();
                            // The second call also prefetches W into L2 (as the executor has a
                            // GEMV prefetch the next GEMM's weights): the results must not move.
                            for run in 0..2 {
                                let next = if run == 1 {
                                    L2Prefetch::head(w_d.device_ptr(), (n * k * 2) as u64)
                                } else {
                                    None
                                };
                                let y_init = vec![f64::NAN; m * ldy];
                                // The case's GEMV into D, with C and the bias of D's dtype where it has the epilogue.
                                let gemv = |c_ptr: u64, y_ptr: u64, bias_ptr: u64| {
                                    let cb = epilogue.then_some((
                                        GemmC {
                                            ptr: c_ptr,
                                            ld: ldc,
                                            stride: 0,
                                        },
                                        GemmBias {
                                            ptr: bias_ptr,
                                            dtype: out,
                                        },
                                    ));
                                    // SAFETY: X holds m rows of ldx with 2k columns from xoff, W
                                    // n·k, D m rows of ldy from column 8, C m rows of ldc from
                                    // column 4, the bias (of D's dtype) and γ n and k elements.
                                    unsafe {
                                        gemv_ex(
                                            &ctx.gpu,
                                            x_d.device_ptr_at(xoff).unwrap(),
                                            w_d.device_ptr(),
                                            y_ptr,
                                            out,
                                            shape,
                                            1.0,
                                            if epilogue { 0.5 } else { 0.0 },
                                            cb.map(|(c, _)| c),
                                            cb.map(|(_, b)| b),
                                            prologue,
                                            pdl,
                                            next,
                                        )
                                    }
                                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                                };
                                let got = match out {
                                    GemmOut::Bf16 => {
                                        let (c_d, y_d) = (ctx.bf16(&c_full, "C"), ctx.bf16(&y_init, "D"));
                                        gemv(
                                            c_d.device_ptr_at(4).unwrap(),
                                            y_d.device_ptr_at(yoff).unwrap(),
                                            b_d.device_ptr(),
                                        );
                                        ctx.get_bf16(&y_d)
                                    }
                                    GemmOut::F32 => {
                                        let (c_d, y_d) = (ctx.f32(&c_full, "C"), ctx.f32(&y_init, "D"));
                                        gemv(
                                            c_d.device_ptr_at(4).unwrap(),
                                            y_d.device_ptr_at(yoff).unwrap(),
                                            bf_d.device_ptr(),
                                        );
                                        ctx.get_f32(&y_d)
                                    }
                                };
                                runs.push(extract(&got, m, n, ldy, yoff, &what));
                            }
                            let e = rel_rms(&runs[0], &want, &what);
                            if e > tol {
                                let worst = (0..m * n)
                                    .max_by(|&a, &b| {
                                        (runs[0][a] - want[a]).abs().total_cmp(&(runs[0][b] - want[b]).abs())
                                    })
                                    .unwrap_or(0);
                                failures.push(format!(
                                    "{what}: relative RMS error {e:.3e} > {tol:.0e}; worst at row {}, column {}: \
                                     {} vs {}",
                                    worst / n,
                                    worst % n,
                                    runs[0][worst],
                                    want[worst]
                                ));
                            } else if m == 1 || m == 8 {
                                eprintln!("  {what}: rel RMS {e:.2e} (tol {tol:.0e})");
                            }
                            if !runs[0].iter().zip(&runs[1]).all(|(a, b)| a.to_bits() == b.to_bits()) {
                                failures.push(format!("{what}: two calls differ"));
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("fused GEMV: {cases} cases, {} failures", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases fail:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    // A prologue without its operand, and a prefetch that is not 16-byte aligned, are refused.
    for (prologue, next, expected) in [
        (GemvPrologue::SiluMul { up: 0 }, None, "without `up`"),
        (
            GemvPrologue::None,
            Some(L2Prefetch { ptr: 8, bytes: 16 }),
            "L2 prefetch",
        ),
    ] {
        // SAFETY: refused before anything is enqueued.
        let err = unsafe {
            gemv_ex(
                &ctx.gpu,
                0,
                0,
                0,
                GemmOut::F32,
                GemmShape::linear(1, 8, 8),
                1.0,
                0.0,
                None,
                None,
                prologue,
                true,
                next,
            )
        }
        .unwrap_err();
        assert!(matches!(err, CudaError::InvalidGemm { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}
