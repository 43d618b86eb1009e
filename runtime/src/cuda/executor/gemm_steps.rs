//! GEMM steps: cuBLASLt, or the GEMV kernels for few rows, with a fused or separate prologue
//! (RMSNorm, SiLU·up) and the bias in the epilogue or the helper kernel.

use super::*;

/// GEMM steps of at most this many rows run the GEMV kernel. Measured on an H100 (2026-11-27,
/// `gpu_kernels`' `bench_gemv`, the 1B's decode shapes): at m ≤ 2 the GEMV beats cuBLASLt on
/// every shape (2048×2048: 5.6 against 11.0 µs), at m = 3 and 4 it wins on some and loses on
/// others, at m = 8 it is up to 2.1× slower (the m ≥ 3 kernels keep 8 columns × m rows of sums
/// in up to 216 registers a thread: one block per SM). Where the tensor-core GEMV takes a shape
/// ([`gemv_tensor_takes`]: 3 to 8 rows, K ≤ 4096, sm_80 on) every GEMM step of up to 8 rows runs
/// it, a prologue fused or not.
pub(super) const GEMV_ROWS: usize = 2;

/// GEMM steps with a fused prologue ([`GemmPrologue`]) of at most this many rows run the GEMV
/// with the prologue fused; more rows compute the transform into a scratch buffer first (one
/// more launch) and run cuBLASLt (or the plain GEMV at m ≤ [`GEMV_ROWS`]). Measured on an H200
/// (2026-12-02, `gpu_kernels`' `bench_gemv`, back-to-back calls): RMSNorm fused costs up to 1.5×
/// the plain GEMV at m = 8 (137 registers: one block per SM) but beats cuBLASLt up to m = 4;
/// SiLU·up recomputes `m·K` activations in every block and loses to cuBLASLt from m = 3 on.
/// (The tensor-core GEMV, where it takes the shape, fuses either up to 8 rows.)
pub(super) fn fused_gemv_rows(p: &GemmPrologue) -> usize {
    match p {
        GemmPrologue::RmsNorm { .. } => 4,
        GemmPrologue::SiluMul { .. } => 2,
    }
}

impl Executor {
    /// The bias of a GEMM step as cuBLASLt's epilogue takes it, or `None` when the step has no
    /// bias or the epilogue cannot take it (another dtype than the output's): then the prologue
    /// kernel adds it.
    pub(super) fn epilogue_bias(&self, g: &GemmStep) -> Result<Option<GemmBias>, ExecError> {
        let Some(b) = g.bias else { return Ok(None) };
        let br = &self.weights[b];
        let y = self.region(g.y.buffer);
        let ptr = br.operand(0, 1, g.n, g.n, "GEMM bias")?;
        let dtype = match br.dtype {
            DType::BF16 => GemmOut::Bf16,
            DType::F32 => GemmOut::F32,
            d => return Err(ExecError::Unsupported(format!("GEMM bias `{}` is {d}", br.name))),
        };
        let out = match y.dtype {
            DType::BF16 => GemmOut::Bf16,
            _ => GemmOut::F32,
        };
        let bias = GemmBias { ptr, dtype };
        Ok(Gemm::bias_supported(out, bias).then_some(bias))
    }

    /// Whether a GEMM step needs the prologue kernel: a bias the epilogue cannot take, or a C
    /// that overlaps the output without being it.
    pub(super) fn needs_prologue(&self, g: &GemmStep) -> Result<bool, ExecError> {
        let bias_in_prologue = g.bias.is_some() && self.epilogue_bias(g)?.is_none();
        let c_overlaps =
            g.c.as_ref()
                .is_some_and(|c| c.buffer == g.y.buffer && (c.offset != g.y.offset || c.ld != g.y.ld));
        Ok(bias_in_prologue || c_overlaps)
    }

    /// With [`PREFETCH_NEXT_ENV`] set, the weights of the first GEMM step after step `index` of
    /// `phase` (their first [`L2Prefetch::MAX_BYTES`]), for the GEMV of step `index` to prefetch
    /// into L2. After decode's last GEMM (the LM head) that is the first one of the next step.
    pub(super) fn next_gemm_prefetch(&self, phase: Phase, index: usize) -> Option<L2Prefetch> {
        if !prefetch_next_on() {
            return None;
        }
        let steps = &self.schedule(phase).steps;
        let wrap = if phase == Phase::Decode { &steps[..index] } else { &[] };
        let next = steps[index + 1..].iter().chain(wrap).find_map(|s| match s {
            Step::Gemm(g) => Some(g),
            Step::Launch(_) => None,
        })?;
        let w = &self.weights[next.weight];
        let ptr = w.operand(0, next.n, next.k, next.k, "the next GEMM's weight").ok()?;
        L2Prefetch::head(ptr, (next.n * next.k * w.dtype.size()) as u64)
    }

    pub(super) fn gemm_step(&self, g: &GemmStep, env: &Env, next: Option<L2Prefetch>) -> Result<(), ExecError> {
        let m = eval(&g.m, env)?;
        let (n, k) = (g.n, g.k);
        let x = self.region(g.x.buffer);
        let w = &self.weights[g.weight];
        let y = self.region(g.y.buffer);
        if x.dtype != DType::BF16 || w.dtype != DType::BF16 {
            return Err(ExecError::Unsupported(format!(
                "GEMM operands must be bf16: X `{}` is {}, W `{}` is {}",
                x.name, x.dtype, w.name, w.dtype
            )));
        }
        let out = match y.dtype {
            DType::BF16 => GemmOut::Bf16,
            DType::F32 => GemmOut::F32,
            d => return Err(ExecError::Unsupported(format!("GEMM output `{}` is {d}", y.name))),
        };
        let mut xp = x.operand(eval(&g.x.offset, env)?, m, k, g.x.ld, "GEMM input X")?;
        let mut ldx = g.x.ld;
        let wp = w.operand(0, n, k, k, "GEMM weight W")?;
        let yp = y.operand(eval(&g.y.offset, env)?, m, n, g.y.ld, "GEMM output Y")?;
        // C apart from Y (cuBLASLt reads C and writes D = Y); `None`: C is Y itself.
        let c_op = match &g.c {
            Some(c) => {
                let cr = self.region(c.buffer);
                if cr.dtype != y.dtype {
                    return Err(ExecError::Unsupported(format!(
                        "GEMM accumulator `{}` is {}, its output `{}` is {}",
                        cr.name, cr.dtype, y.name, y.dtype
                    )));
                }
                let cp = cr.operand(eval(&c.offset, env)?, m, n, c.ld, "GEMM accumulator C")?;
                Some((cp, c.ld))
            }
            None => None,
        };
        let needs_prologue = self.needs_prologue(g)?;
        // The step's own input transform: fused into the GEMV, or written to the scratch X first.
        let mut prologue = self.gemv_prologue(g, m, env)?;
        // The tensor-core GEMV streams W near the copy bandwidth at 3 to 8 rows, prologue or not.
        let tensor = self.gemv
            && gemv_tensor_takes(
                &self.gpu,
                &GemmShape {
                    ldx,
                    ..GemmShape::linear(m, n, k)
                },
            );
        let fused =
            self.gemv && g.prologue.as_ref().is_some_and(|p| tensor || m <= fused_gemv_rows(p)) && !needs_prologue;
        if prologue != GemvPrologue::None && !fused {
            xp = self.prologue_to_scratch(g, m, xp, prologue)?;
            ldx = k;
            prologue = GemvPrologue::None;
        }
        let shape = GemmShape {
            m,
            n,
            k,
            ldx,
            ldw: k,
            ldy: g.y.ld,
            batch: 1,
            stride_x: m * ldx,
            stride_w: n * k,
            stride_y: m * g.y.ld,
        };
        if needs_prologue {
            self.gemm_prologue(g, m, yp, c_op)?;
            // SAFETY: X, W and Y were bounds-checked above for this shape and these strides.
            unsafe { self.gemm.linear_raw(xp, wp, yp, out, shape, g.alpha, 1.0) }?;
        } else {
            let c = c_op.map(|(ptr, ld)| GemmC {
                ptr,
                ld,
                stride: m * ld,
            });
            let bias = self.epilogue_bias(g)?;
            let gemv =
                self.gemv && gemv_supported(&shape) && (m <= GEMV_ROWS || tensor || prologue != GemvPrologue::None);
            if gemv {
                // SAFETY: as for `matmul_raw` below (the same operands and guarantees); the
                // prologue's operands were bounds-checked by `gemv_prologue`, and a program never
                // lets a step's output share a buffer with its inputs.
                unsafe {
                    gemv_ex(
                        &self.gpu, xp, wp, yp, out, shape, g.alpha, g.beta, c, bias, prologue, self.pdl, next,
                    )
                }?;
            } else {
                // SAFETY: X, W, Y and C were bounds-checked above for this shape and these
                // strides, the bias for n elements; C is Y exactly or lies elsewhere
                // (`needs_prologue`: a program never lets a step's output share a buffer with its
                // inputs).
                unsafe { self.gemm.matmul_raw(xp, wp, yp, out, shape, g.alpha, g.beta, c, bias) }?;
            }
        }
        if self.gpu.checked() {
            self.gpu.synchronize()?;
        }
        Ok(())
    }

    /// A GEMM step's [`GemmPrologue`] as the GEMV takes it, its operands bounds-checked.
    pub(super) fn gemv_prologue(&self, g: &GemmStep, m: usize, env: &Env) -> Result<GemvPrologue, ExecError> {
        Ok(match &g.prologue {
            None => GemvPrologue::None,
            Some(GemmPrologue::RmsNorm { weight, eps }) => {
                let wr = &self.weights[*weight];
                let gamma = wr.operand(0, 1, g.k, g.k, "RMSNorm prologue weight")?;
                let gamma_dtype = match wr.dtype {
                    DType::BF16 => GemmOut::Bf16,
                    DType::F32 => GemmOut::F32,
                    d => {
                        return Err(ExecError::Unsupported(format!(
                            "RMSNorm prologue weight `{}` is {d}",
                            wr.name
                        )))
                    }
                };
                GemvPrologue::RmsNorm {
                    gamma,
                    gamma_dtype,
                    eps: *eps,
                }
            }
            Some(GemmPrologue::SiluMul { up }) => {
                let ur = self.region(up.buffer);
                if ur.dtype != DType::BF16 || up.ld != g.x.ld {
                    return Err(ExecError::Unsupported(format!(
                        "SiLU·up prologue: `up` ({}, {}) must be bf16 at X's row stride {}",
                        ur.name, ur.dtype, g.x.ld
                    )));
                }
                let ptr = ur.operand(eval(&up.offset, env)?, m, g.k, up.ld, "SiLU·up prologue `up`")?;
                GemvPrologue::SiluMul { up: ptr }
            }
        })
    }

    /// Writes a GEMM step's input transform of X (at `xp`, the step's row stride) into the
    /// scratch buffer as `m` dense rows of k; returns the scratch address.
    pub(super) fn prologue_to_scratch(
        &self,
        g: &GemmStep,
        m: usize,
        xp: u64,
        prologue: GemvPrologue,
    ) -> Result<u64, ExecError> {
        let k = g.k;
        let scratch = self
            .scratch
            .as_ref()
            .ok_or_else(|| ExecError::Unsupported(format!("{}: a GEMM prologue outside decode", g.label)))?;
        let sp = scratch.operand(0, m, k, k, "GEMM prologue scratch")?;
        let int = |v: usize, what: &str| {
            i32::try_from(v).map_err(|_| ExecError::Range {
                expr: v.to_string(),
                value: v as u64,
                what: what.to_string(),
            })
        };
        let rows = u32::try_from(m).map_err(|_| ExecError::Range {
            expr: m.to_string(),
            value: m as u64,
            what: "GEMM prologue rows".into(),
        })?;
        let (kernel, dims, args) = match prologue {
            GemvPrologue::None => return Ok(xp),
            GemvPrologue::RmsNorm {
                gamma,
                gamma_dtype,
                eps,
            } => {
                let (gb, gf) = match gamma_dtype {
                    GemmOut::Bf16 => (gamma, 0),
                    GemmOut::F32 => (0, gamma),
                };
                (
                    HELPER_RMS,
                    LaunchDims::new((rows, 1, 1), (256, 1, 1), 0),
                    vec![
                        KernelArg::Ptr(xp),
                        KernelArg::I32(int(g.x.ld, "row stride of X")?),
                        KernelArg::Ptr(gb),
                        KernelArg::Ptr(gf),
                        KernelArg::F32(eps),
                        KernelArg::Ptr(sp),
                        KernelArg::I32(int(k, "GEMM depth")?),
                    ],
                )
            }
            GemvPrologue::SiluMul { up } => {
                let grid = u32::try_from(m.saturating_mul(k).div_ceil(256).clamp(1, 8192)).unwrap_or(8192);
                (
                    HELPER_SILU,
                    LaunchDims::new((grid, 1, 1), (256, 1, 1), 0),
                    vec![
                        KernelArg::Ptr(xp),
                        KernelArg::Ptr(up),
                        KernelArg::I32(int(g.x.ld, "row stride of X")?),
                        KernelArg::Ptr(sp),
                        KernelArg::I32(int(k, "GEMM depth")?),
                        KernelArg::I32(int(m, "GEMM rows")?),
                    ],
                )
            }
        };
        // SAFETY: the arguments follow the helper's signature; X (and `up`) hold m rows of k at
        // their row stride (checked by the caller and `gemv_prologue`), the scratch m rows of k.
        unsafe { self.gpu.launch(kernel, dims, &args) }?;
        Ok(sp)
    }

    /// The fallback for GEMM steps cuBLASLt cannot take in one call: the helper kernel writes
    /// `y = beta·c + bias` (c: the step's C, else y itself when `beta ≠ 0`), and the GEMM then
    /// accumulates into y with `beta = 1`.
    pub(super) fn gemm_prologue(
        &self,
        g: &GemmStep,
        m: usize,
        yp: u64,
        c_op: Option<(u64, usize)>,
    ) -> Result<(), ExecError> {
        let n = g.n;
        let y = self.region(g.y.buffer);
        let (cp, ldc) = match c_op {
            Some(c) => c,
            // `beta·y + bias` in place when the step accumulates into its own output.
            None if g.beta != 0.0 => (yp, g.y.ld),
            None => (0, 0),
        };
        let (bias_bf16, bias_f32) = match g.bias {
            Some(b) => {
                let br = &self.weights[b];
                let p = br.operand(0, 1, n, n, "GEMM bias")?;
                match br.dtype {
                    DType::BF16 => (p, 0),
                    DType::F32 => (0, p),
                    d => return Err(ExecError::Unsupported(format!("GEMM bias `{}` is {d}", br.name))),
                }
            }
            None => (0, 0),
        };
        let int = |v: usize, what: &str| {
            i32::try_from(v).map_err(|_| ExecError::Range {
                expr: v.to_string(),
                value: v as u64,
                what: what.to_string(),
            })
        };
        let helper = if y.dtype == DType::BF16 {
            HELPER_BF16
        } else {
            HELPER_F32
        };
        let total = m.saturating_mul(n);
        let grid = u32::try_from(total.div_ceil(256).clamp(1, 8192)).unwrap_or(8192);
        let args = [
            KernelArg::Ptr(yp),
            KernelArg::I32(int(g.y.ld, "leading dimension of Y")?),
            KernelArg::Ptr(cp),
            KernelArg::I32(int(ldc, "leading dimension of C")?),
            KernelArg::F32(g.beta),
            KernelArg::Ptr(bias_bf16),
            KernelArg::Ptr(bias_f32),
            KernelArg::I32(int(m, "GEMM rows")?),
            KernelArg::I32(int(n, "GEMM columns")?),
        ];
        // SAFETY: the arguments follow the helper's signature; y, c and the bias were
        // bounds-checked for m rows of n columns with their strides by the caller.
        unsafe {
            self.gpu
                .launch(helper, LaunchDims::new((grid, 1, 1), (256, 1, 1), 0), &args)
        }?;
        Ok(())
    }
}
