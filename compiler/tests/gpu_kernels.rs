//! GPU kernels and cuBLASLt GEMMs against the CPU reference ops (f64), on random inputs.
//!
//! Skipped with a notice when there is no CUDA driver or device, unless `MODELC_REQUIRE_GPU=1`.
//! Every output buffer is poisoned with NaN first, so an element the kernel forgot stays NaN and
//! fails the check; strided inputs/outputs are slices of wider buffers whose other columns must
//! stay untouched. Tolerances (relative RMS error, ‖got − ref‖ / ‖ref‖):
//! - 5e-3 for bf16 outputs: the reference runs on the same bf16-rounded inputs, so the error is
//!   f32 arithmetic plus the final bf16 rounding (≈ 1e-3 RMS), well under the design's 5e-3;
//! - 1e-4 for f32 states: no bf16 rounding at all, only f32 arithmetic over T·Dk terms;
//! - 1e-5 for f32 GEMM outputs: bf16 products are exact in f32, only the f32 sums round.

mod kda_step_shapes;
use half::bf16;
use kda_step_shapes::kda_step_cases;
use modelc::codegen::templates::attention::{
    attention_decode_pick_splits, attention_decode_variant, attention_decode_variant_launch,
    attention_decode_workspace_len, attention_prefill, attention_prefill_launch, attention_prefill_mma,
    attention_prefill_mma_launch, attention_prefill_tma_maps, attention_prefill_wgmma, attention_prefill_wgmma_launch,
    attention_prefill_wgmma_persistent_launch, attention_prefill_wgmma_variant, attention_prefill_wgmma_variant_launch,
    mma_decode, tensor_core_prefill, wgmma_prefill, AttentionParams, DecodeVariant, MmaVariant, WgmmaVariant,
    ATTN_DECODE_DEFAULT, ATTN_MMA_DEFAULT, ATTN_WGMMA_DEFAULT,
};
use modelc::codegen::templates::conv1d::{conv1d, conv1d_launch, Conv1dParams, ConvActivation};
use modelc::codegen::templates::delta_rule::{
    delta_rule_chunk_parallel, delta_rule_chunk_parallel_supported, delta_rule_chunk_parallel_variant,
    delta_rule_chunk_parallel_with_cluster_scan, delta_rule_chunk_parallel_with_scan_out, delta_rule_chunked,
    delta_rule_chunked_launch, delta_rule_cp_scan_cluster, delta_rule_cp_scan_out_clusters,
    delta_rule_cp_scan_out_launch, delta_rule_cp_scan_out_runs_on, delta_rule_cp_scan_out_supported,
    delta_rule_cp_traffic, delta_rule_cp_variant_launches, delta_rule_cp_workspace_len, delta_rule_launch,
    delta_rule_recurrent, delta_rule_tensor_cores, CpPrepVariant, DecayGate, DeltaRuleParams, GatedNormEpilogue,
    ScanOutExchange,
};
use modelc::codegen::templates::kda_decode_step::{
    kda_decode_step, kda_decode_step_cluster_threads, kda_decode_step_cluster_with, ClusterExchange,
    KdaDecodeStepParams,
};
use modelc::codegen::templates::selective_scan::{selective_scan, selective_scan_launch, SelectiveScanParams};
use modelc::codegen::templates::KernelSource;
use modelc::ir::{AttentionParams as AttentionCfg, DecayKind as GateKind, DeltaRuleParams as DeltaRuleCfg};
use modelc::reference::ops::attention::attention;
use modelc::reference::ops::conv::causal_conv1d;
use modelc::reference::ops::delta_rule::delta_rule_recurrent as ref_delta;
use modelc::reference::ops::norm::{gated_rms_norm, l2_norm};
use modelc::reference::ops::selective_scan::selective_scan as ref_scan;
use modelc::reference::Array;
use modelc::spec::GateActivation;
use modelc_runtime::cuda::{
    CudaError, Gemm, GemmShape, Gpu, GpuBuffer, KernelArg, KernelCache, L2Prefetch, LaunchDims, TileMap2d,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// Harness

struct Ctx {
    gpu: Gpu,
    cache: KernelCache,
    _dir: Option<tempfile::TempDir>,
}

/// A GPU and a kernel cache: `MODELC_CACHE_DIR`'s when set (the acceptance runs set it, so that
/// a module, the GEMV kernels say, compiles once a machine rather than once a test), else a
/// fresh one.
fn setup() -> Option<Ctx> {
    let gpu = modelc_runtime::cuda::gpu_or_skip("GPU kernel test")?;
    if std::env::var_os("MODELC_CACHE_DIR").is_some() {
        if let Ok(cache) = KernelCache::from_env() {
            return Some(Ctx { gpu, cache, _dir: None });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = KernelCache::new(dir.path());
    Some(Ctx {
        gpu,
        cache,
        _dir: Some(dir),
    })
}

/// [`setup`] on an sm_90 GPU (the `wgmma` prefill's); `None` with a notice on others.
fn hopper_setup() -> Option<Ctx> {
    let ctx = setup()?;
    if ctx.gpu.compute_capability() != (9, 0) {
        eprintln!("NOTICE: skipping the wgmma prefill: not an sm_90 GPU");
        return None;
    }
    Some(ctx)
}

impl Ctx {
    fn load(&mut self, src: &KernelSource) {
        self.gpu
            .compile_and_load(&self.cache, &src.source, &src.entry_refs())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn launch(&self, kernel: &str, dims: LaunchDims, args: &[KernelArg]) {
        // SAFETY: each call site passes the argument list documented by its template.
        unsafe { self.gpu.launch(kernel, dims, args) }.unwrap_or_else(|e| panic!("{e}"));
    }

    fn bf16(&self, data: &[f64], what: &str) -> GpuBuffer<bf16> {
        let h: Vec<bf16> = data.iter().map(|&x| bf16::from_f64(x)).collect();
        self.gpu.upload(&h, what).unwrap()
    }

    fn f32(&self, data: &[f64], what: &str) -> GpuBuffer<f32> {
        let h: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        self.gpu.upload(&h, what).unwrap()
    }

    fn i32(&self, data: &[i32], what: &str) -> GpuBuffer<i32> {
        self.gpu.upload(data, what).unwrap()
    }

    fn nan_bf16(&self, n: usize, what: &str) -> GpuBuffer<bf16> {
        self.gpu.upload(&vec![bf16::NAN; n], what).unwrap()
    }

    fn nan_f32(&self, n: usize, what: &str) -> GpuBuffer<f32> {
        self.gpu.upload(&vec![f32::NAN; n], what).unwrap()
    }

    fn get_bf16(&self, b: &GpuBuffer<bf16>) -> Vec<f64> {
        self.gpu
            .download(b, "test output")
            .unwrap()
            .iter()
            .map(|x| x.to_f64())
            .collect()
    }

    fn get_f32(&self, b: &GpuBuffer<f32>) -> Vec<f64> {
        self.gpu
            .download(b, "test output")
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect()
    }
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(r: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// Values as the GPU sees them after a bf16 upload.
fn round_bf16(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| bf16::from_f64(x).to_f64()).collect()
}

fn round_f32(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

/// `rows × cols` values laid into a `rows × stride` buffer at column `offset`; the other
/// columns hold `fill`.
fn embed(data: &[f64], rows: usize, cols: usize, stride: usize, offset: usize, fill: f64) -> Vec<f64> {
    let mut out = vec![fill; rows * stride];
    for r in 0..rows {
        out[r * stride + offset..r * stride + offset + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
    }
    out
}

/// The `cols` columns at `offset` of a strided buffer; asserts the other columns are still NaN
/// (the kernel wrote nothing outside its slice).
fn extract(buf: &[f64], rows: usize, cols: usize, stride: usize, offset: usize, what: &str) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..stride {
            let x = buf[r * stride + c];
            if c >= offset && c < offset + cols {
                out.push(x);
            } else {
                assert!(x.is_nan(), "{what}: wrote outside its columns at row {r}, column {c}");
            }
        }
    }
    out
}

/// ‖got − want‖ / ‖want‖, after checking that every element is finite (poisoned = unwritten).
fn rel_rms(got: &[f64], want: &[f64], what: &str) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = got.iter().position(|x| !x.is_finite()) {
        panic!("{what}: element {i} is {} (unwritten or overflowed)", got[i]);
    }
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den.max(1e-300)).sqrt()
}

#[track_caller]
fn check(got: &[f64], want: &[f64], tol: f64, what: &str) {
    let e = rel_rms(got, want, what);
    eprintln!("  {what}: rel RMS {e:.2e} (tol {tol:.0e})");
    assert!(e <= tol, "{what}: relative RMS error {e:.3e} > {tol:.0e}");
}

const BF16_TOL: f64 = 5e-3;
const STATE_TOL: f64 = 1e-4;

fn arr(shape: &[usize], data: Vec<f64>) -> Array {
    Array::new(shape.to_vec(), data)
}

// ---------------------------------------------------------------------------------------------
// Causal conv1d

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

// ---------------------------------------------------------------------------------------------
// Attention

struct AttnCase {
    p: AttentionParams,
    s_max: usize,
}

fn attn_cases() -> Vec<AttnCase> {
    let p = |heads, kv_heads, head_dim: usize, window| AttentionParams {
        heads,
        kv_heads,
        head_dim,
        window,
        scale: 1.0 / (head_dim as f32).sqrt(),
    };
    vec![
        AttnCase {
            p: p(8, 2, 64, None),
            s_max: 64,
        },
        AttnCase {
            p: p(4, 4, 128, Some(16)),
            s_max: 52,
        },
        AttnCase {
            p: p(2, 1, 256, Some(8)),
            s_max: 44,
        },
        // Head sizes below one warp and not a multiple of 32: lanes past Dh own no channel.
        AttnCase {
            p: p(4, 2, 8, Some(4)),
            s_max: 44,
        },
        AttnCase {
            p: p(4, 2, 16, None),
            s_max: 64,
        },
        AttnCase {
            p: p(2, 1, 24, Some(8)),
            s_max: 48,
        },
        AttnCase {
            p: p(3, 3, 100, None),
            s_max: 64,
        },
        // Long enough for several tensor-core tiles; 8 query heads per KV head (grouped decode's
        // limit) and a window shorter than a tile.
        AttnCase {
            p: p(8, 1, 128, None),
            s_max: 160,
        },
        AttnCase {
            p: p(4, 2, 64, Some(40)),
            s_max: 180,
        },
    ]
}

/// History, cache buffers (ring or linear) and the per-sequence reference caches.
struct KvSetup {
    k_cache: GpuBuffer<bf16>,
    v_cache: GpuBuffer<bf16>,
    ref_k: Vec<Array>,
    ref_v: Vec<Array>,
}

fn kv_setup(ctx: &Ctx, p: &AttentionParams, s_max: usize, past: &[usize], r: &mut ChaCha8Rng) -> KvSetup {
    let (g, dh) = (p.kv_heads, p.head_dim);
    let b = past.len();
    let mut kc = vec![f64::NAN; b * g * s_max * dh];
    let mut vc = vec![f64::NAN; b * g * s_max * dh];
    let (mut ref_k, mut ref_v) = (Vec::new(), Vec::new());
    for (bi, &pl) in past.iter().enumerate() {
        let hk = round_bf16(&uniform(r, g * pl * dh, -1.5, 1.5));
        let hv = round_bf16(&uniform(r, g * pl * dh, -1.5, 1.5));
        for gi in 0..g {
            for pos in 0..pl {
                let slot = if p.window.is_some() { pos % s_max } else { pos };
                let dst = ((bi * g + gi) * s_max + slot) * dh;
                let src = (gi * pl + pos) * dh;
                kc[dst..dst + dh].copy_from_slice(&hk[src..src + dh]);
                vc[dst..dst + dh].copy_from_slice(&hv[src..src + dh]);
            }
        }
        ref_k.push(arr(&[1, g, pl, dh], hk));
        ref_v.push(arr(&[1, g, pl, dh], hv));
    }
    KvSetup {
        k_cache: ctx.bf16(&kc, "k_cache"),
        v_cache: ctx.bf16(&vc, "v_cache"),
        ref_k,
        ref_v,
    }
}

/// Rows `b·t ..` of sequence `bi` from a dense `[B, T, width]` array, as a `[1, T, width]` one.
fn seq(data: &[f64], bi: usize, t: usize, width: usize) -> Array {
    arr(&[1, t, width], data[bi * t * width..(bi + 1) * t * width].to_vec())
}

fn ref_cfg(p: &AttentionParams) -> AttentionCfg {
    AttentionCfg {
        heads: p.heads,
        kv_heads: p.kv_heads,
        head_dim: p.head_dim,
        causal: true,
        window: p.window,
        scale: p.scale as f64,
    }
}

/// Checks that the new tokens' keys/values landed in their cache slots.
#[allow(clippy::too_many_arguments)]
fn check_appended(
    ctx: &Ctx,
    kv: &KvSetup,
    p: &AttentionParams,
    s_max: usize,
    past: &[usize],
    t: usize,
    k_new: &[f64],
    v_new: &[f64],
    what: &str,
) {
    let (g, dh) = (p.kv_heads, p.head_dim);
    let kc = ctx.get_bf16(&kv.k_cache);
    let vc = ctx.get_bf16(&kv.v_cache);
    for (bi, &pl) in past.iter().enumerate() {
        for ti in 0..t {
            let pos = pl + ti;
            let slot = if p.window.is_some() { pos % s_max } else { pos };
            for gi in 0..g {
                let c = ((bi * g + gi) * s_max + slot) * dh;
                let n = ((bi * t + ti) * g + gi) * dh;
                assert_eq!(
                    &kc[c..c + dh],
                    &k_new[n..n + dh],
                    "{what}: k cache b={bi} pos={pos} g={gi}"
                );
                assert_eq!(
                    &vc[c..c + dh],
                    &v_new[n..n + dh],
                    "{what}: v cache b={bi} pos={pos} g={gi}"
                );
            }
        }
    }
}

/// Which prefill kernel a test runs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Prefill {
    /// `attention_prefill` (tensor-core `mma.sync` or SIMT, by shape).
    Default,
    /// `attention_prefill_wgmma` (Hopper only; `ATTN_WGMMA_DEFAULT`, the ping-pong form).
    Wgmma,
    /// Its plain (non-overlapped) main loop.
    WgmmaPlain,
    /// Its overlapped form (every thread loads, no producer warpgroup).
    WgmmaOverlapped,
    /// Another form of it, by variant (the ping-pong ones).
    WgmmaForm(WgmmaVariant),
    /// The other `mma.sync` form than `attention_prefill`'s.
    MmaOther,
    /// A warp-specialised form with its L2 sections fixed at this many KV heads (a text edit of
    /// the tile order, so that small tests walk several sections and a shorter last one).
    WgmmaSections(WgmmaVariant, usize),
    /// A persistent form launched with at most this many blocks (few: each walks many items).
    WgmmaPersistent(WgmmaVariant, usize),
}

/// `src` (a warp-specialised Hopper prefill) with `kv_heads` KV heads per L2 section, whatever
/// the number of keys.
fn fixed_sections(src: &KernelSource, kv_heads: usize) -> KernelSource {
    ablated(
        src,
        &format!("sec{kv_heads}"),
        &[
            ("constexpr long L2_KV_BYTES = 0;", "constexpr long L2_KV_BYTES = 1;"),
            ("int sec_kv = 1;", &format!("int sec_kv = {kv_heads};")),
            ("sec_kv *= 2;", ";"),
        ],
    )
}

/// The `mma.sync` form `attention_prefill` does not emit.
fn other_mma() -> MmaVariant {
    match ATTN_MMA_DEFAULT {
        MmaVariant::Rows16 => MmaVariant::Rows32,
        MmaVariant::Rows32 => MmaVariant::Rows16,
    }
}

/// `skew` shifts q, k and v one column right inside the packed buffer: rows are then not 16-byte
/// aligned, which the tensor-core kernel must detect (it copies element by element instead).
fn run_attn_prefill(ctx: &mut Ctx, case: &AttnCase, past: &[usize], t: usize, skew: usize, seed: u64) {
    run_attn_prefill_with(ctx, Prefill::Default, case, past, t, skew, 5, seed);
}

/// As [`run_attn_prefill`], with the kernel and the output rows' padding `out_pad` (odd: rows
/// not 4-byte aligned, stored a channel at a time; even multiples of 8: paired stores).
#[allow(clippy::too_many_arguments)]
fn run_attn_prefill_with(
    ctx: &mut Ctx,
    kernel: Prefill,
    case: &AttnCase,
    past: &[usize],
    t: usize,
    skew: usize,
    out_pad: usize,
    seed: u64,
) {
    let p = &case.p;
    let (src, launch) = match kernel {
        Prefill::Default => (
            attention_prefill(p).unwrap(),
            attention_prefill_launch(p, past.len(), t),
        ),
        Prefill::Wgmma => (
            attention_prefill_wgmma(p).unwrap(),
            attention_prefill_wgmma_launch(p, past.len(), t),
        ),
        Prefill::MmaOther => (
            attention_prefill_mma(p, other_mma()).unwrap(),
            attention_prefill_mma_launch(p, other_mma(), past.len(), t),
        ),
        Prefill::WgmmaOverlapped => (
            attention_prefill_wgmma_variant(p, WgmmaVariant::Overlapped).unwrap(),
            attention_prefill_wgmma_variant_launch(p, WgmmaVariant::Overlapped, past.len(), t),
        ),
        Prefill::WgmmaPlain => (
            attention_prefill_wgmma_variant(p, WgmmaVariant::Plain).unwrap(),
            attention_prefill_wgmma_variant_launch(p, WgmmaVariant::Plain, past.len(), t),
        ),
        Prefill::WgmmaForm(v) => (
            attention_prefill_wgmma_variant(p, v).unwrap(),
            attention_prefill_wgmma_variant_launch(p, v, past.len(), t),
        ),
        Prefill::WgmmaSections(v, n) => (
            fixed_sections(&attention_prefill_wgmma_variant(p, v).unwrap(), n),
            attention_prefill_wgmma_variant_launch(p, v, past.len(), t),
        ),
        Prefill::WgmmaPersistent(v, blocks) => (
            attention_prefill_wgmma_variant(p, v).unwrap(),
            attention_prefill_wgmma_persistent_launch(p, v, past.len(), t, blocks),
        ),
    };
    let form = match kernel {
        Prefill::WgmmaForm(v) | Prefill::WgmmaSections(v, _) | Prefill::WgmmaPersistent(v, _) => Some(v),
        _ => None,
    };
    ctx.load(&src);
    let mut r = rng(seed);
    let b = past.len();
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let rows = b * t;
    let kv = kv_setup(ctx, p, case.s_max, past, &mut r);
    let q = round_bf16(&uniform(&mut r, rows * h * dh, -1.5, 1.5));
    let k = round_bf16(&uniform(&mut r, rows * g * dh, -1.5, 1.5));
    let v = round_bf16(&uniform(&mut r, rows * g * dh, -1.5, 1.5));
    // q, k, v as column slices of one packed projection output.
    let width = (h + 2 * g) * dh + skew;
    let (k0, v0) = (skew + h * dh, skew + (h + g) * dh);
    let mut packed = embed(&q, rows, h * dh, width, skew, 0.0);
    for row in 0..rows {
        packed[row * width + k0..row * width + v0].copy_from_slice(&k[row * g * dh..(row + 1) * g * dh]);
        packed[row * width + v0..(row + 1) * width].copy_from_slice(&v[row * g * dh..(row + 1) * g * dh]);
    }
    let qkv = ctx.bf16(&packed, "qkv");
    let past_i: Vec<i32> = past.iter().map(|&x| x as i32).collect();
    let past_d = ctx.i32(&past_i, "past_len");
    // Padded output rows: a lane past Dh that stored anyway would leave the head's columns.
    let out_stride = h * dh + out_pad;
    let out = ctx.nan_bf16(rows * out_stride, "out");
    let mut args = vec![
        KernelArg::Ptr(qkv.device_ptr_at(skew).unwrap()),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(k0).unwrap()),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(v0).unwrap()),
        KernelArg::I32(width as i32),
        kv.k_cache.arg(),
        kv.v_cache.arg(),
        past_d.arg(),
        out.arg(),
        KernelArg::I32(out_stride as i32),
        KernelArg::I32(t as i32),
        KernelArg::I32(case.s_max as i32),
    ];
    if form.is_some_and(|v| v.is_persistent()) {
        args.push(KernelArg::I32(b as i32));
    }
    if form.is_some_and(|v| v.takes_tensor_maps()) {
        let maps = attention_prefill_tma_maps(
            p,
            qkv.device_ptr_at(k0).unwrap(),
            width,
            qkv.device_ptr_at(v0).unwrap(),
            width,
            rows,
            kv.k_cache.device_ptr(),
            kv.v_cache.device_ptr(),
            b * g * case.s_max,
        );
        args.extend(maps.iter().map(|m| KernelArg::TensorMap(m.encode().unwrap())));
    }
    ctx.launch(src.name(), launch, &args);
    let mut want = Vec::new();
    for bi in 0..b {
        let (o, _, _) = attention(
            &seq(&q, bi, t, h * dh),
            &seq(&k, bi, t, g * dh),
            &seq(&v, bi, t, g * dh),
            &kv.ref_k[bi],
            &kv.ref_v[bi],
            &ref_cfg(p),
        )
        .unwrap();
        want.extend(o.data);
    }
    let what = format!(
        "attn prefill ({kernel:?}) H={h} G={g} Dh={dh} W={:?} past={past:?} T={t} skew={skew} out_pad={out_pad}",
        p.window
    );
    let got = extract(&ctx.get_bf16(&out), rows, h * dh, out_stride, 0, &what);
    check(&got, &want, BF16_TOL, &what);
    check_appended(ctx, &kv, p, case.s_max, past, t, &k, &v, &what);
}

#[test]
fn attention_prefill_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, case) in attn_cases().iter().enumerate() {
        let s = 100 + 10 * i as u64;
        run_attn_prefill(&mut ctx, case, &[5, 19], 37, 0, s);
        run_attn_prefill(&mut ctx, case, &[0, 3], 1, 0, s + 1);
        run_attn_prefill(&mut ctx, case, &[0], 16, 0, s + 2);
        // Misaligned rows; several query tiles of the tensor-core kernel (64 rows) and key tiles.
        run_attn_prefill(&mut ctx, case, &[3], 20, 1, s + 3);
        if case.s_max >= 150 {
            run_attn_prefill(&mut ctx, case, &[0, 21], 129, 0, s + 4);
        }
    }
}

/// Head size 128 (the Hopper kernel's) over several query tiles of 128 and key tiles of 64/128:
/// GQA ratios 1, 4 and 8, a ring-cache sliding window, T not a multiple of the tiles, T below a
/// tile, B > 1.
fn attn_cases_128() -> Vec<AttnCase> {
    let p = |heads, kv_heads, window| AttentionParams {
        heads,
        kv_heads,
        head_dim: 128,
        window,
        scale: 128f32.powf(-0.5),
    };
    vec![
        AttnCase {
            p: p(8, 2, None),
            s_max: 700,
        },
        AttnCase {
            p: p(4, 4, None),
            s_max: 700,
        },
        AttnCase {
            p: p(16, 2, None),
            s_max: 700,
        },
        AttnCase {
            p: p(8, 1, Some(100)),
            s_max: 420,
        },
        AttnCase {
            p: p(4, 2, Some(200)),
            s_max: 520,
        },
    ]
}

/// Both tensor-core prefills on head size 128, every case of [`attn_cases_128`].
fn run_attn_prefill_128(ctx: &mut Ctx, kernel: Prefill) {
    for (i, case) in attn_cases_128().iter().enumerate() {
        let s = 500 + 10 * i as u64;
        run_attn_prefill_with(ctx, kernel, case, &[0, 37], 300, 0, 8, s);
        run_attn_prefill_with(ctx, kernel, case, &[0], 300, 0, 5, s + 1);
        run_attn_prefill_with(ctx, kernel, case, &[130], 100, 0, 5, s + 2);
        run_attn_prefill_with(ctx, kernel, case, &[5, 0, 200], 1, 0, 8, s + 3);
        run_attn_prefill_with(ctx, kernel, case, &[64], 257, 1, 5, s + 4);
        run_attn_prefill_with(ctx, kernel, case, &[300], 128, 0, 0, s + 5);
    }
}

#[test]
fn attention_prefill_128_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::Default);
}

/// The other `mma.sync` form of the tensor-core prefill, on every tensor-core case.
#[test]
fn attention_prefill_mma_other_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::MmaOther);
    for (i, case) in attn_cases().iter().enumerate() {
        if !tensor_core_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0, 3], 1, 0, 5, s + 1);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0], 16, 0, 5, s + 2);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[3], 20, 1, 5, s + 3);
        if case.s_max >= 150 {
            run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0, 21], 129, 0, 8, s + 4);
        }
    }
}

/// The plain form of the Hopper prefill (a simpler main loop: isolates descriptor and layout
/// bugs from pipelining ones).
#[test]
fn attention_prefill_wgmma_plain_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::WgmmaPlain);
}

/// The overlapped form of the Hopper prefill (all threads load; block-wide barriers).
#[test]
fn attention_prefill_wgmma_overlapped_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::WgmmaOverlapped);
    for (i, case) in attn_cases().iter().enumerate() {
        if !wgmma_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(&mut ctx, Prefill::WgmmaOverlapped, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(&mut ctx, Prefill::WgmmaOverlapped, case, &[3], 20, 1, 5, s + 3);
    }
}

/// The other warp-specialised forms of the Hopper prefill (without ping-pong; ping-pong with 2
/// stages; ping-pong with k/v loads from the start), on every case of the default Hopper test.
#[test]
fn attention_prefill_wgmma_other_forms_match_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    // The default (ping-pong, FA3 order, lazy rescale) and the TMA form have tests of their own.
    for v in WgmmaVariant::WARP_SPECIALISED {
        if v != ATTN_WGMMA_DEFAULT && v != WgmmaVariant::PingPongTma && !v.is_persistent() {
            run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(v));
        }
    }
}

/// A Hopper prefill form on every case of [`attn_cases_128`] and the small cases of
/// [`attn_cases`] with head size 128.
fn run_wgmma_prefill_cases(ctx: &mut Ctx, kernel: Prefill) {
    run_attn_prefill_128(ctx, kernel);
    for (i, case) in attn_cases().iter().enumerate() {
        if !wgmma_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(ctx, kernel, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(ctx, kernel, case, &[0, 3], 1, 0, 5, s + 1);
        run_attn_prefill_with(ctx, kernel, case, &[3], 20, 1, 5, s + 3);
    }
}

/// The Hopper prefill with TMA k/v loads (tensor maps for new keys and cache rows; tiles that
/// are neither, and unaligned rows, copied by the producer warp), on every case of the default
/// Hopper test.
#[test]
fn attention_prefill_wgmma_tma_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(WgmmaVariant::PingPongTma));
}

/// The L2-section tile order of the warp-specialised Hopper prefill (both producers): sections
/// of 1 and 3 KV heads (so several sections, and a shorter last one where the KV heads of the
/// batch do not divide by 3), on every head-size-128 case. Every (head, query tile) must be
/// computed exactly once: the outputs start as NaN and are checked whole.
#[test]
fn attention_prefill_wgmma_l2_sections_match_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    for v in [ATTN_WGMMA_DEFAULT, WgmmaVariant::PingPongTma] {
        for n in [1, 3] {
            run_attn_prefill_128(&mut ctx, Prefill::WgmmaSections(v, n));
        }
    }
}

/// The persistent forms (`cp.async` and TMA producers) on every case of the default Hopper test:
/// with one item per block (the plain grid), with a few blocks each walking many items (1, 2,
/// 3 and 7: both snake directions, a partial last round, items of unequal length back to back
/// in one pipeline), and with as many blocks as SMs (what programs launch).
#[test]
fn attention_prefill_wgmma_persistent_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    let sms = ctx.gpu.sm_count() as usize;
    for v in [WgmmaVariant::PingPongPersistent, WgmmaVariant::PingPongTmaPersistent] {
        run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(v));
        for blocks in [1, 2, 3, 7, sms] {
            run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaPersistent(v, blocks));
        }
    }
}

/// The Hopper (`wgmma`, sm_90a) prefill; skipped with a notice on other GPUs.
#[test]
fn attention_prefill_wgmma_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_wgmma_prefill_cases(&mut ctx, Prefill::Wgmma);
}

fn run_attn_decode(ctx: &mut Ctx, case: &AttnCase, past: &[usize], n_splits: usize, seed: u64) {
    run_attn_decode_with(ctx, ATTN_DECODE_DEFAULT, case, past, n_splits, seed);
}

fn run_attn_decode_with(
    ctx: &mut Ctx,
    variant: DecodeVariant,
    case: &AttnCase,
    past: &[usize],
    n_splits: usize,
    seed: u64,
) {
    let p = &case.p;
    let src = attention_decode_variant(p, variant).unwrap();
    ctx.load(&src);
    let mut r = rng(seed);
    let b = past.len();
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let kv = kv_setup(ctx, p, case.s_max, past, &mut r);
    let q = round_bf16(&uniform(&mut r, b * h * dh, -1.5, 1.5));
    let k = round_bf16(&uniform(&mut r, b * g * dh, -1.5, 1.5));
    let v = round_bf16(&uniform(&mut r, b * g * dh, -1.5, 1.5));
    let (q_d, k_d, v_d) = (ctx.bf16(&q, "q"), ctx.bf16(&k, "k"), ctx.bf16(&v, "v"));
    let past_i: Vec<i32> = past.iter().map(|&x| x as i32).collect();
    let past_d = ctx.i32(&past_i, "past_len");
    let partial = ctx.nan_f32(attention_decode_workspace_len(p, b, n_splits), "partial");
    let out_stride = h * dh + 7;
    let out = ctx.nan_bf16(b * out_stride, "out");
    let (l1, l2) = attention_decode_variant_launch(p, variant, b, n_splits);
    ctx.launch(
        &src.entries[0],
        l1,
        &[
            q_d.arg(),
            KernelArg::I32((h * dh) as i32),
            k_d.arg(),
            KernelArg::I32((g * dh) as i32),
            v_d.arg(),
            KernelArg::I32((g * dh) as i32),
            kv.k_cache.arg(),
            kv.v_cache.arg(),
            past_d.arg(),
            partial.arg(),
            KernelArg::I32(case.s_max as i32),
            KernelArg::I32(n_splits as i32),
        ],
    );
    ctx.launch(
        &src.entries[1],
        l2,
        &[
            partial.arg(),
            out.arg(),
            KernelArg::I32(out_stride as i32),
            KernelArg::I32(n_splits as i32),
        ],
    );
    let mut want = Vec::new();
    for bi in 0..b {
        let (o, _, _) = attention(
            &seq(&q, bi, 1, h * dh),
            &seq(&k, bi, 1, g * dh),
            &seq(&v, bi, 1, g * dh),
            &kv.ref_k[bi],
            &kv.ref_v[bi],
            &ref_cfg(p),
        )
        .unwrap();
        want.extend(o.data);
    }
    let what = format!(
        "attn decode {variant:?} H={h} G={g} Dh={dh} W={:?} past={past:?} splits={n_splits}",
        p.window
    );
    let got = extract(&ctx.get_bf16(&out), b, h * dh, out_stride, 0, &what);
    check(&got, &want, BF16_TOL, &what);
    check_appended(ctx, &kv, p, case.s_max, past, 1, &k, &v, &what);
}

#[test]
fn attention_decode_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, case) in attn_cases().iter().enumerate() {
        let s = 200 + 10 * i as u64;
        run_attn_decode(&mut ctx, case, &[0, 40], 1, s);
        run_attn_decode(&mut ctx, case, &[7, 40], 4, s + 1);
        // More splits than visible keys: empty splits must merge away.
        run_attn_decode(&mut ctx, case, &[2, 1], 8, s + 2);
        // Several shared-memory tiles per split in the grouped kernel.
        if case.s_max >= 150 {
            run_attn_decode(&mut ctx, case, &[140, 99, 0], 2, s + 3);
        }
        run_attn_decode_extra(&mut ctx, ATTN_DECODE_DEFAULT, case, s + 5);
    }
}

/// Longer histories: several tiles per split, the split counts the executor picks, splits that
/// end inside a tile, and ring caches that wrapped (windowed cases, past beyond S_max).
fn run_attn_decode_extra(ctx: &mut Ctx, variant: DecodeVariant, case: &AttnCase, s: u64) {
    let p = &case.p;
    if p.window.is_some() {
        let long = [case.s_max + 13, 3 * case.s_max + 1];
        run_attn_decode_with(ctx, variant, case, &long, 1, s);
        run_attn_decode_with(ctx, variant, case, &long, 3, s + 1);
        run_attn_decode_with(ctx, variant, case, &[2 * case.s_max, 5], 5, s + 2);
    } else {
        let full = case.s_max - 1;
        run_attn_decode_with(ctx, variant, case, &[full, full / 2], 1, s);
        run_attn_decode_with(ctx, variant, case, &[full, 17], 3, s + 1);
        let picked = attention_decode_pick_splits(p, 2, full, 132);
        run_attn_decode_with(ctx, variant, case, &[full, full - 33], picked, s + 2);
    }
}

/// Every form of the decode on the shapes the tensor-core form serves (the others fall back to
/// the same kernels as the default, covered above).
#[test]
fn attention_decode_variants_match_reference() {
    let Some(mut ctx) = setup() else { return };
    for variant in DECODE_VARIANTS {
        for (i, case) in attn_cases().iter().chain(&attn_cases_128()).enumerate() {
            if !mma_decode(&case.p) {
                continue;
            }
            let s = 900 + 10 * i as u64;
            run_attn_decode_with(&mut ctx, variant, case, &[0, 40], 1, s);
            run_attn_decode_with(&mut ctx, variant, case, &[7, 40], 4, s + 1);
            run_attn_decode_with(&mut ctx, variant, case, &[2, 1], 8, s + 2);
            run_attn_decode_extra(&mut ctx, variant, case, s + 5);
        }
    }
}

/// The decode forms the variant test and the benchmark run.
const DECODE_VARIANTS: [DecodeVariant; 4] = [
    DecodeVariant::Cuda,
    DecodeVariant::Mma(3),
    DecodeVariant::Mma(4),
    DecodeVariant::Mma(6),
];

// ---------------------------------------------------------------------------------------------
// Delta rule (GDN / KDA)

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
const NORM_SILU: GatedNormEpilogue = GatedNormEpilogue {
    eps: 1e-5,
    act: GateActivation::Silu,
};
const NORM_SIGMOID: GatedNormEpilogue = GatedNormEpilogue {
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

// ---------------------------------------------------------------------------------------------
// Selective scan (Mamba, M1 grouped)

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

// ---------------------------------------------------------------------------------------------
// cuBLASLt GEMM

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
                                let got = match out {
                                    GemmOut::Bf16 => {
                                        let (c_d, y_d) = (ctx.bf16(&c_full, "C"), ctx.bf16(&y_init, "D"));
                                        let cb = epilogue.then(|| {
                                            (
                                                GemmC {
                                                    ptr: c_d.device_ptr_at(4).unwrap(),
                                                    ld: ldc,
                                                    stride: 0,
                                                },
                                                GemmBias {
                                                    ptr: b_d.device_ptr(),
                                                    dtype: GemmOut::Bf16,
                                                },
                                            )
                                        });
                                        // SAFETY: X holds m rows of ldx with 2k columns from
                                        // xoff, W n·k, D m rows of ldy from column 8, C m rows of
                                        // ldc from column 4, the bias and γ n and k elements.
                                        unsafe {
                                            gemv_ex(
                                                &ctx.gpu,
                                                x_d.device_ptr_at(xoff).unwrap(),
                                                w_d.device_ptr(),
                                                y_d.device_ptr_at(yoff).unwrap(),
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
                                        ctx.get_bf16(&y_d)
                                    }
                                    GemmOut::F32 => {
                                        let (c_d, y_d) = (ctx.f32(&c_full, "C"), ctx.f32(&y_init, "D"));
                                        let cb = epilogue.then(|| {
                                            (
                                                GemmC {
                                                    ptr: c_d.device_ptr_at(4).unwrap(),
                                                    ld: ldc,
                                                    stride: 0,
                                                },
                                                GemmBias {
                                                    ptr: bf_d.device_ptr(),
                                                    dtype: GemmOut::F32,
                                                },
                                            )
                                        });
                                        // SAFETY: as above, f32 C, D and bias.
                                        unsafe {
                                            gemv_ex(
                                                &ctx.gpu,
                                                x_d.device_ptr_at(xoff).unwrap(),
                                                w_d.device_ptr(),
                                                y_d.device_ptr_at(yoff).unwrap(),
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

// ---------------------------------------------------------------------------------------------
// The KDA decode step: the single-block kernel and its Hopper cluster form

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

// ---------------------------------------------------------------------------------------------
// Runtime behaviour

#[test]
fn runtime_errors_name_what_failed() {
    let Some(mut ctx) = setup() else { return };
    assert!(ctx.gpu.arch().starts_with("sm_"), "{}", ctx.gpu.arch());
    eprintln!(
        "device: {} ({}), {:?}",
        ctx.gpu.name(),
        ctx.gpu.arch(),
        ctx.gpu.mem_info().unwrap()
    );

    // Unknown kernel.
    // SAFETY: the launch is refused before reaching the driver.
    let err = unsafe {
        ctx.gpu
            .launch("no_such_kernel", LaunchDims::new((1, 1, 1), (1, 1, 1), 0), &[])
    }
    .unwrap_err();
    assert!(
        matches!(err, CudaError::UnknownKernel { .. }) && err.to_string().contains("no_such_kernel"),
        "{err}"
    );

    // A launch the driver refuses (more threads than a block may have) names kernel and config.
    let src = conv1d(&Conv1dParams {
        kernel_size: 4,
        activation: ConvActivation::Silu,
        has_bias: false,
    })
    .unwrap();
    ctx.load(&src);
    let dummy = ctx.nan_f32(16, "dummy");
    let args = [
        dummy.arg(),
        KernelArg::I32(1),
        dummy.arg(),
        KernelArg::Ptr(0),
        KernelArg::Ptr(0),
        KernelArg::Ptr(0),
        dummy.arg(),
        KernelArg::I32(1),
        KernelArg::I32(1),
        KernelArg::I32(1),
    ];
    // SAFETY: the driver rejects the configuration before running anything.
    let err = unsafe {
        ctx.gpu
            .launch(src.name(), LaunchDims::new((1, 1, 1), (4096, 1, 1), 0), &args)
    }
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, CudaError::Launch { .. }) && msg.contains(src.name()) && msg.contains("4096"),
        "{msg}"
    );

    // Out of memory: the message carries the request and the free/total memory.
    let err = ctx.gpu.alloc_zeros::<u8>(1 << 50, "a petabyte").unwrap_err();
    match &err {
        CudaError::OutOfMemory { requested, total, .. } => {
            assert_eq!(*requested, 1 << 50);
            assert!(*total > 0);
        }
        other => panic!("expected OutOfMemory, got {other}"),
    }
    assert!(err.to_string().contains("a petabyte"), "{err}");

    // Warm start: a second cache over the same folder compiles nothing.
    let warm = KernelCache::new(ctx.cache.dir());
    ctx.gpu.compile_and_load(&warm, &src.source, &src.entry_refs()).unwrap();
    assert_eq!((warm.hits(), warm.misses()), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Timings (not a check): `cargo test --release --test gpu_kernels bench -- --ignored --nocapture`

/// Median wall time of `reps` runs of `f`, each followed by a synchronize, after one warm-up.
fn time_ms(ctx: &Ctx, reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    ctx.gpu.synchronize().unwrap();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = std::time::Instant::now();
            f();
            ctx.gpu.synchronize().unwrap();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut v)
}

/// The median of `v` (sorted in place; the upper middle of an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rand_bf16(ctx: &Ctx, r: &mut ChaCha8Rng, n: usize) -> GpuBuffer<bf16> {
    let h: Vec<bf16> = (0..n).map(|_| bf16::from_f32(r.random_range(-1.0f32..1.0))).collect();
    ctx.gpu.upload(&h, "bench input").unwrap()
}

fn rand_f32(ctx: &Ctx, r: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> GpuBuffer<f32> {
    let h: Vec<f32> = (0..n).map(|_| r.random_range(lo..hi)).collect();
    ctx.gpu.upload(&h, "bench input").unwrap()
}

/// Random inputs of a delta-rule benchmark: `b` sequences of `t` tokens, Dk = Dv = 128, states
/// for `state_seqs` sequences (a decode step may run on more sequences than the prefill).
struct DeltaBench {
    q: GpuBuffer<bf16>,
    k: GpuBuffer<bf16>,
    v: GpuBuffer<bf16>,
    z: GpuBuffer<bf16>,
    g: GpuBuffer<f32>,
    beta: GpuBuffer<f32>,
    state: GpuBuffer<f32>,
    o: GpuBuffer<bf16>,
    norm_w: GpuBuffer<f32>,
    b: usize,
    t: usize,
    width: usize,
}

impl DeltaBench {
    fn new(ctx: &Ctx, r: &mut ChaCha8Rng, p: &DeltaRuleParams, b: usize, t: usize, state_seqs: usize) -> Self {
        let (h, width) = (p.value_heads, p.value_heads * p.value_dim);
        let glen = if p.gate == DecayGate::PerChannel {
            b * t * width
        } else {
            b * t * h
        };
        DeltaBench {
            q: rand_bf16(ctx, r, b * t * width),
            k: rand_bf16(ctx, r, b * t * width),
            v: rand_bf16(ctx, r, b * t * width),
            z: rand_bf16(ctx, r, b * t * width),
            g: rand_f32(ctx, r, glen, -1.0, -0.01),
            beta: rand_f32(ctx, r, b * t * h, 0.1, 0.9),
            state: rand_f32(ctx, r, state_seqs * h * p.key_dim * p.value_dim, -0.1, 0.1),
            o: ctx.nan_bf16(b * t * width, "o"),
            norm_w: rand_f32(ctx, r, p.value_dim, 0.5, 1.5),
            b,
            t,
            width,
        }
    }

    /// Kernel arguments for `tokens` tokens per sequence (the state updated in place).
    fn args(&self, p: &DeltaRuleParams, tokens: usize) -> Vec<KernelArg> {
        let i = |x: usize| KernelArg::I32(x as i32);
        let w = self.width;
        let mut a = vec![
            self.q.arg(),
            i(w),
            self.k.arg(),
            i(w),
            self.v.arg(),
            i(w),
            self.g.arg(),
            self.beta.arg(),
            self.state.arg(),
            self.state.arg(),
            self.o.arg(),
            i(w),
            i(tokens),
        ];
        if p.gated_norm.is_some() {
            a.extend([self.z.arg(), i(w), self.norm_w.arg()]);
        }
        a
    }

    /// Times the chunked kernel over every token and prints its row.
    fn time_chunked(&self, ctx: &mut Ctx, p: &DeltaRuleParams, name: &str) {
        let pre = delta_rule_chunked(p).unwrap();
        ctx.load(&pre);
        let a = self.args(p, self.t);
        let ms = time_ms(ctx, 3, || {
            ctx.launch(pre.name(), delta_rule_chunked_launch(p, self.b), &a)
        });
        let form = if delta_rule_tensor_cores(p) {
            "tensor cores C64"
        } else {
            "C16"
        };
        println!(
            "| delta_rule_chunked {name} {form} BV{} | B{} T{} H{} Dk=Dv=128 | {ms:.3} | {:.0} ktok/s |",
            p.value_block,
            self.b,
            self.t,
            p.value_heads,
            (self.b * self.t) as f64 / ms
        );
    }
}

impl DeltaBench {
    /// Times the chunk-parallel form (its three launches, with the workspace allocated once) and
    /// each pass alone; prints one row.
    fn time_chunk_parallel(&self, ctx: &mut Ctx, p: &DeltaRuleParams, name: &str) -> f64 {
        self.time_chunk_parallel_variant(ctx, p, CpPrepVariant::default_for(p), name)
    }

    /// [`DeltaBench::time_chunk_parallel`] with prep form `v`.
    fn time_chunk_parallel_variant(&self, ctx: &mut Ctx, p: &DeltaRuleParams, v: CpPrepVariant, name: &str) -> f64 {
        let src = delta_rule_chunk_parallel_variant(p, v).unwrap();
        self.time_chunk_parallel_entries(ctx, p, &src, [0, 1, 2], name, v)
    }

    /// [`DeltaBench::time_chunk_parallel`] of the module `src` (the chunk-parallel form of `p`,
    /// or a text edit of it).
    fn time_chunk_parallel_source(&self, ctx: &mut Ctx, p: &DeltaRuleParams, src: &KernelSource, name: &str) -> f64 {
        self.time_chunk_parallel_entries(ctx, p, src, [0, 1, 2], name, CpPrepVariant::default_for(p))
    }

    /// [`DeltaBench::time_chunk_parallel`] with the scan over clusters (the module's last entry;
    /// Hopper only) in place of the scan entry.
    fn time_chunk_parallel_cluster(&self, ctx: &mut Ctx, p: &DeltaRuleParams, name: &str) -> f64 {
        let src = delta_rule_chunk_parallel_with_cluster_scan(p).unwrap();
        let mc = src.entries.len() - 1;
        assert!(src.entries[mc].starts_with("delta_rule_cp_scan_mc_"));
        let (what, v) = (format!("{name} scan over clusters"), CpPrepVariant::default_for(p));
        let ms = self.time_chunk_parallel_entries(ctx, p, &src, [0, mc, 2], &what, v);
        let (scan, cluster) = (
            delta_rule_cp_variant_launches(p, v, self.b, self.t)[1],
            delta_rule_cp_scan_cluster(p),
        );
        let held = resident_blocks(ctx, &src.entries[mc], scan, cluster.unwrap_or(1));
        println!("| delta_rule_chunk_parallel {what} SBV{}: {held} |", p.scan_block);
        ms
    }

    /// Times the entries `passes` (prep, scan, out) of `src`, whose prep is of form `prep` (or a
    /// text edit of it), launched with that form's shared memory.
    fn time_chunk_parallel_entries(
        &self,
        ctx: &mut Ctx,
        p: &DeltaRuleParams,
        src: &KernelSource,
        passes: [usize; 3],
        name: &str,
        prep: CpPrepVariant,
    ) -> f64 {
        let launches = delta_rule_cp_variant_launches(p, prep, self.b, self.t);
        let steps: Vec<(&str, LaunchDims)> = passes
            .iter()
            .zip(launches)
            .map(|(&i, l)| (src.entries[i].as_str(), l))
            .collect();
        let (ms, pass) = self.time_steps(ctx, p, src, &steps);
        // Each pass's DRAM traffic over its time (TB/s): how far it is from the copy rate.
        let traffic = delta_rule_cp_traffic(p, self.b, self.t);
        let tbs = |i: usize| traffic[i] as f64 / (pass[i] * 1e9);
        println!(
            "| delta_rule_chunk_parallel {name} SBV{} | B{} T{} H{} Dk=Dv=128 | {ms:.3} | prep {:.3} scan {:.3} out {:.3} | {:.0} ktok/s | TB/s prep {:.2} scan {:.2} out {:.2} |",
            p.scan_block,
            self.b,
            self.t,
            p.value_heads,
            pass[0],
            pass[1],
            pass[2],
            (self.b * self.t) as f64 / ms,
            tbs(0),
            tbs(1),
            tbs(2)
        );
        ms
    }
}

impl DeltaBench {
    /// Times `steps` (entries of `src` with their launches) in order, with a workspace allocated
    /// once, and each alone: (all, each) in ms.
    fn time_steps(
        &self,
        ctx: &mut Ctx,
        p: &DeltaRuleParams,
        src: &KernelSource,
        steps: &[(&str, LaunchDims)],
    ) -> (f64, Vec<f64>) {
        ctx.load(src);
        let ws = ctx.nan_f32(delta_rule_cp_workspace_len(p, self.b, self.t), "workspace");
        let mut a = self.args(p, self.t);
        a.push(ws.arg());
        let ms = time_ms(ctx, 10, || {
            for &(e, l) in steps {
                ctx.launch(e, l, &a);
            }
        });
        let each = steps
            .iter()
            .map(|&(e, l)| time_ms(ctx, 10, || ctx.launch(e, l, &a)))
            .collect();
        (ms, each)
    }

    /// Times the default prep and then the scan and the output pass in one
    /// (`delta_rule_cp_scan_out_`, the norm's row sums shared by `x`); prints one row.
    fn time_scan_out(&self, ctx: &mut Ctx, p: &DeltaRuleParams, x: ScanOutExchange, name: &str) -> f64 {
        let src = delta_rule_chunk_parallel_with_scan_out(p, x).unwrap();
        let cluster = if delta_rule_cp_scan_out_clusters(p, x) {
            p.value_dim / p.scan_block
        } else {
            1
        };
        self.time_scan_out_source(ctx, p, &src, cluster, &format!("{name} {x:?}"))
    }

    /// [`DeltaBench::time_scan_out`] of the module `src` (or a text edit of it), whose
    /// scan-and-output entry runs in clusters of `cluster` blocks (1: none).
    fn time_scan_out_source(
        &self,
        ctx: &mut Ctx,
        p: &DeltaRuleParams,
        src: &KernelSource,
        cluster: usize,
        name: &str,
    ) -> f64 {
        let prep = delta_rule_cp_variant_launches(p, CpPrepVariant::default_for(p), self.b, self.t)[0];
        let so = src.entries.last().unwrap();
        let launch = delta_rule_cp_scan_out_launch(p, self.b);
        let steps = [(src.entries[0].as_str(), prep), (so.as_str(), launch)];
        let (ms, pass) = self.time_steps(ctx, p, src, &steps);
        let traffic = delta_rule_cp_traffic(p, self.b, self.t);
        println!(
            "| delta_rule_chunk_parallel {name} scan+out in one SBV{} | B{} T{} H{} Dk=Dv=128 | {ms:.3} | prep {:.3} scan+out {:.3} | {:.0} ktok/s | TB/s prep {:.2} | {} |",
            p.scan_block,
            self.b,
            self.t,
            p.value_heads,
            pass[0],
            pass[1],
            (self.b * self.t) as f64 / ms,
            traffic[0] as f64 / (pass[0] * 1e9),
            resident_blocks(ctx, so, launch, cluster),
        );
        ms
    }
}

/// How many blocks of a launch of `entry` the device holds at once against the grid's, as
/// "resident N of M blocks" (in clusters of `cluster` where it has them: the clusters must fit
/// within one GPC each, so fewer may fit than the SMs suggest). Fewer than the grid's means the
/// launch runs in waves.
fn resident_blocks(ctx: &Ctx, entry: &str, l: LaunchDims, cluster: usize) -> String {
    let grid = u64::from(l.grid.0) * u64::from(l.grid.1) * u64::from(l.grid.2);
    let held = if cluster > 1 {
        ctx.gpu
            .max_active_clusters(entry, l)
            .map(|n| (u64::from(n) * cluster as u64, format!(" in clusters of {cluster}")))
    } else {
        ctx.gpu
            .max_blocks_per_sm(entry, l)
            .map(|n| (u64::from(n) * u64::from(ctx.gpu.sm_count()), String::new()))
    };
    match held {
        Ok((n, how)) => format!("resident {} of {grid} blocks{how}", n.min(grid)),
        Err(e) => format!("occupancy unknown: {e}"),
    }
}

/// The chunk-parallel delta rule (gated norm fused, as the models run it) at the issue's shapes,
/// KDA and GDN (the default scan block, and 64 and 128 at B8); the single-kernel tensor-core form
/// alongside at B1 T4096 H32.
fn bench_delta_shapes(ctx: &mut Ctx, r: &mut ChaCha8Rng) {
    let silu = NORM_SILU;
    for (name, gate) in [("KDA+norm", DecayGate::PerChannel), ("GDN+norm", DecayGate::Scalar)] {
        for (b, t, h) in [
            (1usize, 4096usize, 32usize),
            (1, 8192, 32),
            (8, 2048, 16),
            (1, 4096, 16),
        ] {
            if !bench_selected(&format!("{name} B{b} T{t} H{h}")) {
                continue;
            }
            let p = DeltaRuleParams::new(h, h, 128, 128, gate).with_gated_norm(silu);
            let bufs = DeltaBench::new(ctx, r, &p, b, t, b);
            // The default scan block (128 scan blocks per sequence), and 64 and 128 at B8 (many
            // sequences: fewer, wider scan blocks read W and k fewer times).
            bufs.time_chunk_parallel(ctx, &p, name);
            let hopper = ctx.gpu.compute_capability() == (9, 0);
            // The scan and the output pass in one, at the default scan block and wider ones
            // (fewer blocks a head to share the norm's sums), then the three passes again for the noise between rows.
            // (Clusters on sm_90 only; the exchange through global memory only where every
            // block is resident at once.)
            let sms = ctx.gpu.sm_count() as usize;
            let widths = std::iter::once(p.scan_block).chain([32, 64, 128].into_iter().filter(|&w| w > p.scan_block));
            for sbv in widths {
                let wide = DeltaRuleParams { scan_block: sbv, ..p };
                for x in [ScanOutExchange::Cluster, ScanOutExchange::Global] {
                    let runs = (hopper || !delta_rule_cp_scan_out_clusters(&wide, x))
                        && delta_rule_cp_scan_out_runs_on(&wide, x, sms);
                    if delta_rule_cp_scan_out_supported(&wide) && runs {
                        bufs.time_scan_out(ctx, &wide, x, name);
                    }
                }
            }
            // Without the norm (no exchange between a head's blocks): what the exchange costs;
            // and the same compiled as clusters of a head's blocks (sm_90): what their
            // scheduling costs.
            let plain = DeltaRuleParams { gated_norm: None, ..p };
            let plain_src = delta_rule_chunk_parallel_with_scan_out(&plain, ScanOutExchange::Cluster).unwrap();
            bufs.time_scan_out_source(ctx, &plain, &plain_src, 1, &format!("{name} without the norm"));
            if hopper {
                let ncl = p.value_dim / p.scan_block;
                let as_clusters = ablated(
                    &plain_src,
                    "cl",
                    &[(
                        "extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_out_",
                        &format!("extern \"C\" __global__ void __cluster_dims__({ncl}, 1, 1) __launch_bounds__(256) delta_rule_cp_scan_out_"),
                    )],
                );
                let what = format!("{name} without the norm, as clusters of {ncl}");
                bufs.time_scan_out_source(ctx, &plain, &as_clusters, ncl, &what);
            }
            bufs.time_chunk_parallel(ctx, &p, name);
            if hopper && delta_rule_cp_scan_cluster(&p).is_some() {
                bufs.time_chunk_parallel_cluster(ctx, &p, name);
            }
            // The other prep forms (Base included: a scalar gate's step 4 there takes its
            // exponentials once per row), then the default again, for the noise between rows.
            if matches!((b, t, h), (1, 4096, 32) | (8, 2048, 16)) {
                let default = CpPrepVariant::default_for(&p);
                let others = CpPrepVariant::distinct_for(&p).into_iter().filter(|&v| v != default);
                for v in others.chain([default]) {
                    bufs.time_chunk_parallel_variant(ctx, &p, v, &format!("{name} prep={v:?}"));
                }
            }
            // (At one sequence too with the ablations: how the scan's time moves with the
            // redundant W/k reads its blocks make.)
            if b > 1 || (bench_ablations() && (b, t, h) == (1, 4096, 32)) {
                for sbv in [64, 128].into_iter().filter(|&w| w > p.scan_block) {
                    let wide = DeltaRuleParams { scan_block: sbv, ..p };
                    bufs.time_chunk_parallel(ctx, &wide, name);
                    if hopper && delta_rule_cp_scan_cluster(&wide).is_some() {
                        bufs.time_chunk_parallel_cluster(ctx, &wide, name);
                    }
                }
            }
            if (b, t, h) == (1, 4096, 32) {
                bufs.time_chunked(ctx, &p, name);
            }
            // The cluster scan's trials at one shape (timed through its entry).
            if (b, t, h) == (1, 4096, 32) && hopper && bench_trials() {
                let with_mc = delta_rule_chunk_parallel_with_cluster_scan(&p).unwrap();
                let mc = with_mc.entries.len() - 1;
                for (what, src) in cluster_scan_trials(&with_mc) {
                    let v = CpPrepVariant::default_for(&p);
                    bufs.time_chunk_parallel_entries(ctx, &p, &src, [0, mc, 2], &format!("{name} {what}"), v);
                }
            }
            // The block-order trials of the prep and output passes at one shape.
            if (b, t, h) == (1, 8192, 32) && bench_trials() {
                let default = delta_rule_chunk_parallel(&p).unwrap();
                for (what, src) in block_order_trials(&default) {
                    bufs.time_chunk_parallel_source(ctx, &p, &src, &format!("{name} {what}"));
                }
                bufs.time_chunk_parallel(ctx, &p, name);
            }
            // The scan's trials and ablations at one shape (each is a module to compile).
            if (b, t, h) == (1, 4096, 32) && (bench_trials() || bench_ablations()) {
                let default = delta_rule_chunk_parallel(&p).unwrap();
                let trials = scan_trials(&default).into_iter().filter(|_| bench_trials());
                let ablations = scan_ablations(&default).into_iter().filter(|_| bench_ablations());
                for (what, src) in trials.chain(ablations) {
                    bufs.time_chunk_parallel_source(ctx, &p, &src, &format!("{name} {what}"));
                }
                bufs.time_chunk_parallel(ctx, &p, name);
            }
        }
    }
}

/// The chunk-parallel passes' block order, head fastest instead of chunk fastest (correct
/// results; `MODELC_BENCH_TRIALS=1`): neighbouring blocks then read the same token rows of q,
/// k, v and g (one DRAM row holds a token's heads) rather than rows of one head 8 KB apart. The
/// prep alone, then the prep and the output pass.
fn block_order_trials(default: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    // The block's chunk, head and sequence, followed by the pass's next line (`tail`), which
    // tells the prep's text from the output pass's.
    let head_fastest = |tail: &str| {
        (
            format!(
                "    const int c0 = blockIdx.x * C;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
{tail}"
            ),
            format!(
                "    const long lin_ = blockIdx.x + (long)NC * (blockIdx.y + (long)HV * blockIdx.z);
    const int hv = (int)(lin_ % HV);
    const int c0 = (int)(lin_ / HV % NC) * C;
    const long b = lin_ / HV / NC;
{tail}"
            ),
        )
    };
    let prep = head_fastest("    const int hk = hv / RATIO;");
    let out = head_fastest("    const int cn");
    // Both passes name their chunk by blockIdx.x in the workspace index.
    let chunk = (
        "    const long ci = (b * HV + hv) * NC + blockIdx.x;",
        "    const long ci = (b * HV + hv) * NC + c0 / C;",
    );
    vec![
        (
            "trial: prep blocks head-fastest",
            ablated(default, "hp", &[(&prep.0, &prep.1), chunk]),
        ),
        (
            "trial: prep and out blocks head-fastest",
            ablated(default, "hpo", &[(&prep.0, &prep.1), (&out.0, &out.1), chunk]),
        ),
    ]
}

/// The scan pass's loop-top work: stage chunk c + 2 (two groups in flight), wait for chunk c.
const SCAN_STAGE_AT_TOP: &str = "            stage(c + 2, (c + 2) % NBUF);
            cp_async_wait<2>();
        } else if (c + 1 < NC) {";
/// The scan pass's store of the state entering a chunk (for the output pass).
const SCAN_HS_STORE: &str = "        /* h entering the chunk, for the output pass */
        for (int e = tid; e < DK * SBV / 8; e += NT) {
            const int d = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            *reinterpret_cast<uint4*>(ws.hs + (ci * DK + d) * DV + j0 + x) = *reinterpret_cast<const uint4*>(&Ss[d * SP + x]);
        }
";
/// The scan without its store of h (an ablation's edit).
const SCAN_NO_HS: (&str, &str) = (SCAN_HS_STORE, "");
/// The scan without its store of v_new (an ablation's edit).
const SCAN_NO_VN: (&str, &str) = (
    "            *reinterpret_cast<uint4*>(ws.vn + (ci * C + t) * DV + j0 + x) = *reinterpret_cast<const uint4*>(&Vn[t * SP + x]);",
    "            (void)t; (void)x;",
);
/// The barrier after v_new, where work moved off the chunk's critical start goes.
const SCAN_VN_BARRIER: &str = "        __syncthreads(); /* Vn complete; every warp is done reading Ss */";

/// Reorderings of the chunk-parallel scan (correct results; `MODELC_BENCH_TRIALS=1`): the loads
/// of chunk c + 2 and the store of h issued after v_new = U - W h instead of before it, so that
/// the chunk's first products start right after its barrier.
fn scan_trials(default: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    let late_stage = [
        (
            SCAN_STAGE_AT_TOP,
            "            cp_async_wait<1>();
        } else if (c + 1 < NC) {",
        ),
        (
            SCAN_VN_BARRIER,
            "        if (!MC && c + 2 < NC) stage(c + 2, (c + 2) % NBUF); /* its buffer was freed at the last barrier */
        __syncthreads(); /* Vn complete; every warp is done reading Ss */",
        ),
    ];
    let late_hs = [
        (SCAN_HS_STORE, ""),
        (SCAN_VN_BARRIER, &format!("{SCAN_HS_STORE}{SCAN_VN_BARRIER}")),
    ];
    let both = [
        late_stage[0],
        (SCAN_HS_STORE, ""),
        (
            SCAN_VN_BARRIER,
            &format!("{SCAN_HS_STORE}        if (!MC && c + 2 < NC) stage(c + 2, (c + 2) % NBUF);\n{SCAN_VN_BARRIER}"),
        ),
    ];
    // One barrier between chunks: chunk c + 1's copies are waited for before the barrier that
    // ends chunk c, which then also stands for the next chunk's "buffer ready" barrier.
    let one_barrier = [
        (
            "            stage(c + 2, (c + 2) % NBUF);
            cp_async_wait<2>();
        } else if (c + 1 < NC) {
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads(); /* buffer p and Ss are ready */",
            "            stage(c + 2, (c + 2) % NBUF);
        }
        if constexpr (MC) __syncthreads(); /* buffer p and Ss are ready */",
        ),
        (
            "    if (NC > 1) stage(1, 1);\n",
            "    if (NC > 1) stage(1, 1);
    if constexpr (!MC) {
        if (NC > 1) {
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads(); /* chunk 0 landed; Ss is ready */
    }
",
        ),
        (
            "        __syncthreads(); /* Ss updated; Vn and buffer p free */",
            "        if constexpr (!MC) {
            if (c + 2 < NC) {
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
        }
        __syncthreads(); /* Ss updated; Vn and buffer p free; chunk c + 1 landed */",
        ),
    ];
    vec![
        (
            "trial: scan stages chunk c+2 after v_new",
            ablated(default, "tls", &late_stage),
        ),
        (
            "trial: scan with one barrier between chunks",
            ablated(default, "tob", &one_barrier),
        ),
        ("trial: scan stores h after v_new", ablated(default, "tlh", &late_hs)),
        (
            "trial: scan stores h and stages c+2 after v_new",
            ablated(default, "tlb", &both),
        ),
    ]
}

/// The scan over clusters with parts of its synchronisation changed or cut (`MODELC_BENCH_TRIALS=1`,
/// Hopper): where its time goes against the plain scan.
fn cluster_scan_trials(default: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    let relaxed = (
        "        if constexpr (MC) cluster_arrive();\n    }",
        "        if constexpr (MC) cluster_arrive_relaxed();\n    }",
    );
    // W and k by each block's own cp.async again (the cluster barriers stay).
    let own_loads = [
        (
            "        if constexpr (MC) {\n            if (tid == 0) mbar_expect_tx",
            "        if constexpr (false) {\n            if (tid == 0) mbar_expect_tx",
        ),
        ("            mbar_wait(Fb + p, (unsigned)(c / NBUF) & 1u);\n", ""),
    ];
    let (no_hs, no_vn) = (SCAN_NO_HS, SCAN_NO_VN);
    vec![
        ("cluster trial: relaxed arrive", ablated(default, "cra", &[relaxed])),
        ("cluster trial: own cp.async loads", ablated(default, "col", &own_loads)),
        (
            "cluster trial: own loads, relaxed arrive",
            ablated(default, "cor", &[own_loads[0], own_loads[1], relaxed]),
        ),
        (
            "cluster ablation: no h, v_new stores",
            ablated(default, "cns", &[no_hs, no_vn]),
        ),
        (
            "cluster ablation: no stores, relaxed arrive",
            ablated(default, "cnr", &[no_hs, no_vn, relaxed]),
        ),
    ]
}

/// The scan pass with parts of its memory traffic cut (wrong results; `MODELC_BENCH_ABLATIONS=1`):
/// where its time goes.
fn scan_ablations(default: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    let (no_hs, no_vn) = (SCAN_NO_HS, SCAN_NO_VN);
    let no_loads = (
        "            stage(c + 2, (c + 2) % NBUF);\n            cp_async_wait<2>();",
        "            if (c < 1) stage(c + 2, (c + 2) % NBUF);\n            cp_async_wait<2>();",
    );
    let no_vn_products = (
        "            for (int kk = 0; kk < MS; ++kk) {\n                unsigned a[4];\n                dtc_frag_a(a, W,",
        "            for (int kk = 0; kk < 0; ++kk) {\n                unsigned a[4];\n                dtc_frag_a(a, W,",
    );
    // (in `dcp_state_update`, which only the scans call)
    let no_state_products = (
        "            for (int kk = 0; kk < 4; ++kk) {\n                unsigned a[4];\n                dtc_frag_at(a, K,",
        "            for (int kk = 0; kk < 0; ++kk) {\n                unsigned a[4];\n                dtc_frag_at(a, K,",
    );
    vec![
        (
            "ablation: scan without W h (v_new = U)",
            ablated(default, "anw", &[no_vn_products]),
        ),
        (
            "ablation: scan without k^T v_new (h only decays)",
            ablated(default, "ank", &[no_state_products]),
        ),
        ("ablation: scan without the h store", ablated(default, "anh", &[no_hs])),
        (
            "ablation: scan without the v_new store",
            ablated(default, "anv", &[no_vn]),
        ),
        (
            "ablation: scan without h and v_new stores",
            ablated(default, "ans", &[no_hs, no_vn]),
        ),
        (
            "ablation: scan loads chunks 0-2 only",
            ablated(default, "anl", &[no_loads]),
        ),
        (
            "ablation: scan without products (loads and stores only)",
            ablated(default, "anp", &[no_vn_products, no_state_products]),
        ),
        (
            "ablation: scan without loads or stores (products and barriers)",
            ablated(default, "anm", &[no_loads, no_hs, no_vn]),
        ),
    ]
}

/// [`bench_delta_shapes`] alone:
/// `cargo test --release --test gpu_kernels bench_delta -- --ignored --nocapture`
/// (`MODELC_BENCH_FILTER="KDA+norm B8"`: that shape only, [`bench_selected`]).
#[test]
#[ignore]
fn bench_delta_chunk_parallel() {
    let Some(mut ctx) = setup() else { return };
    ctx.gpu.set_checked(false);
    let mut r = rng(11);
    bench_delta_shapes(&mut ctx, &mut r);
}

/// Whether a benchmark case labelled `label` runs: every case, unless `MODELC_BENCH_FILTER` is
/// set, then those whose label contains one of its `|`-separated parts (e.g. `KDA+norm B8`, to
/// profile one shape with ncu; `lazy rescale|L2 section`).
fn bench_selected(label: &str) -> bool {
    std::env::var("MODELC_BENCH_FILTER").map_or(true, |f| f.split('|').any(|part| label.contains(part)))
}

/// Whether the benchmarks add their ablation rows (`MODELC_BENCH_ABLATIONS=1`): the default
/// kernels with parts of their work cut out by text edits of the emitted source (wrong results;
/// timing diagnostics of where the time goes, as in docs/PERFORMANCE.md).
fn bench_ablations() -> bool {
    env_flag("MODELC_BENCH_ABLATIONS")
}

/// Whether the environment variable `name` is set to `1` (the benchmarks' switches).
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Whether the benchmarks add their trial rows (`MODELC_BENCH_TRIALS=1`): other forms of the
/// default kernels by text edits of the emitted source (correct results), not yet in the tree.
fn bench_trials() -> bool {
    env_flag("MODELC_BENCH_TRIALS")
}

/// `src` with each `(from, to)` edit applied (each `from` must occur) and its entries renamed
/// with `_tag`, so that the edited module loads beside the original.
fn ablated(src: &KernelSource, tag: &str, edits: &[(&str, &str)]) -> KernelSource {
    let mut source = src.source.clone();
    for (from, to) in edits {
        assert!(
            source.contains(from),
            "ablation {tag}: `{from}` is not in {}",
            src.name()
        );
        source = source.replace(from, to);
    }
    let mut entries = src.entries.clone();
    for e in &mut entries {
        let renamed = format!("{e}_{tag}");
        source = source.replace(e.as_str(), &renamed);
        *e = renamed;
    }
    KernelSource { entries, source }
}

/// The attention benchmarks' shape: H32 G8 Dh128, full causal attention (no window).
fn bench_attention_params() -> AttentionParams {
    AttentionParams {
        heads: 32,
        kv_heads: 8,
        head_dim: 128,
        window: None,
        scale: 128f32.powf(-0.5),
    }
}

/// The default Hopper prefill without, in turn: its k/v loads after the first stages, its
/// exponentials (the scaled scores serve as P), its S GEMM, its P V GEMM.
fn prefill_ablations(default: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    let no_loads = (
        "cp_async16(dst + swz(r0, ch, KHALF) + i * 8 * ROWB, src + i * step, true);",
        "if (t < STAGES) cp_async16(dst + swz(r0, ch, KHALF) + i * 8 * ROWB, src + i * step, true);",
    );
    let no_exp = ("ex2_approx(fmaf(sc[", "(fmaf(sc[");
    let no_s = ("wgmma_ss_n128(sc, da, db", "if (0) wgmma_ss_n128(sc, da, db");
    let no_pv = (
        "for (int j = 0; j < BK / 16; ++j) wgmma_rs_n128_tb(o, pa[j]",
        "for (int j = 0; j < 0; ++j) wgmma_rs_n128_tb(o, pa[j]",
    );
    vec![
        ("ablation: default, no k/v loads", ablated(default, "nl", &[no_loads])),
        ("ablation: default, no exponentials", ablated(default, "ne", &[no_exp])),
        ("ablation: default, no S GEMM", ablated(default, "ns", &[no_s])),
        ("ablation: default, no P V GEMM", ablated(default, "npv", &[no_pv])),
    ]
}

/// The TMA forms' k/v copies under an evict-normal L2 policy instead of evict-last.
const KV_EVICT_NORMAL: (&str, &str) = (
    "createpolicy.fractional.L2::evict_last.b64",
    "createpolicy.fractional.L2::evict_normal.b64",
);

/// Cache-policy trials of the Hopper prefill (correct results; `MODELC_BENCH_TRIALS=1`): O
/// written evict-first, the TMA form's k/v loads evict-normal, and L2 sections of 4, 8 and
/// 16 MiB in the tile order (`WS_TILE_ORDER`; the kernels' own is one section), on the default
/// and the TMA form.
fn prefill_trials(default: &KernelSource, tma: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    let helpers = (
        "extern \"C\" __global__",
        "__device__ __forceinline__ void st_evict_first(void* p, __nv_bfloat162 v) {
    asm volatile(\"{\\n.reg .b64 pol;\\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\\n\"
                 \"st.global.L2::cache_hint.b32 [%0], %1, pol;\\n}\\n\" ::\"l\"(p), \"r\"(*reinterpret_cast<unsigned*>(&v)) : \"memory\");
}
extern \"C\" __global__",
    );
    let o_first = (
        "            if (t0 < T) *reinterpret_cast<__nv_bfloat162*>(o0) = v0;
            if (t1 < T) *reinterpret_cast<__nv_bfloat162*>(o1) = v1;",
        "            if (t0 < T) st_evict_first(o0, v0);
            if (t1 < T) st_evict_first(o1, v1);",
    );
    let budget = |bytes: &str| {
        (
            "constexpr long L2_KV_BYTES = 0;",
            format!("constexpr long L2_KV_BYTES = {bytes};"),
        )
    };
    let (mb4, mb8, mb16) = (budget("4l << 20"), budget("8l << 20"), budget("16l << 20"));
    let mut trials = vec![
        (
            "trial: default, O evict-first",
            ablated(default, "to", &[helpers, o_first]),
        ),
        ("trial: TMA, O evict-first", ablated(tma, "to", &[helpers, o_first])),
        ("trial: TMA, k/v evict-normal", ablated(tma, "kvn", &[KV_EVICT_NORMAL])),
    ];
    for (form, src) in [("default", default), ("TMA", tma)] {
        for (what, tag, edit) in [
            ("L2 sections of 4 MiB of k/v", "l2s4", &mb4),
            ("L2 sections of 8 MiB of k/v", "l2s8", &mb8),
            ("L2 sections of 16 MiB of k/v (FA3's)", "l2s16", &mb16),
        ] {
            let name: &'static str = format!("trial: {form}, {what}").leak();
            trials.push((name, ablated(src, tag, &[(edit.0, &edit.1)])));
        }
    }
    trials
}

/// Trials of the persistent prefills (correct results; `MODELC_BENCH_TRIALS=1`): the `cp.async`
/// form with the TMA form's register split (48 / 224), and the TMA form's k/v loads
/// evict-normal.
fn persistent_trials(cp: &KernelSource, tma: &KernelSource) -> Vec<(&'static str, KernelSource)> {
    vec![
        (
            "trial: persistent (cp.async), 48/224 registers",
            ablated(
                cp,
                "r48",
                &[
                    (
                        "setmaxnreg.dec.sync.aligned.u32 40;",
                        "setmaxnreg.dec.sync.aligned.u32 48;",
                    ),
                    (
                        "setmaxnreg.inc.sync.aligned.u32 232;",
                        "setmaxnreg.inc.sync.aligned.u32 224;",
                    ),
                ],
            ),
        ),
        (
            "trial: persistent, TMA, k/v evict-normal",
            ablated(tma, "kvn", &[KV_EVICT_NORMAL]),
        ),
    ]
}

/// The default decode's loads and barriers alone: no scores, softmax or P V.
fn decode_loads_only(default: &KernelSource) -> KernelSource {
    ablated(
        default,
        "lo",
        &[("if (k0 < ec) { /* warp-uniform */", "if (k0 < ec && n_splits < 0) {")],
    )
}

/// The benchmarks' ablations still apply to the sources the templates emit (no GPU needed).
#[test]
fn bench_ablations_apply_to_the_current_sources() {
    let p = bench_attention_params();
    let prefill = attention_prefill_wgmma(&p).unwrap();
    let tma = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTma).unwrap();
    for (name, src) in prefill_ablations(&prefill)
        .into_iter()
        .chain(prefill_trials(&prefill, &tma))
        .chain(persistent_trials(
            &attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongPersistent).unwrap(),
            &attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTmaPersistent).unwrap(),
        ))
    {
        assert_ne!(src.source, prefill.source, "{name}");
        assert!(
            src.entries.iter().all(|e| src.source.contains(&format!("{e}("))),
            "{name}"
        );
    }
    for src in [&prefill, &tma] {
        assert!(fixed_sections(src, 3).source.contains("int sec_kv = 3;"));
    }
    for gate in [DecayGate::PerChannel, DecayGate::Scalar] {
        let norm = GatedNormEpilogue {
            eps: 1e-5,
            act: GateActivation::Silu,
        };
        let delta =
            delta_rule_chunk_parallel(&DeltaRuleParams::new(32, 32, 128, 128, gate).with_gated_norm(norm)).unwrap();
        let with_mc = delta_rule_chunk_parallel_with_cluster_scan(
            &DeltaRuleParams::new(32, 32, 128, 128, gate).with_gated_norm(norm),
        )
        .unwrap();
        let trials = scan_trials(&delta).into_iter().chain(scan_ablations(&delta));
        let cluster_trials = cluster_scan_trials(&with_mc)
            .into_iter()
            .map(|(name, src)| (name, src, &with_mc));
        for (name, src, base) in trials.map(|(name, src)| (name, src, &delta)).chain(cluster_trials) {
            assert_ne!(src.source, base.source, "{name}");
            assert_eq!(src.entries.len(), base.entries.len(), "{name}");
        }
    }
    let decode = attention_decode_variant(&p, ATTN_DECODE_DEFAULT).unwrap();
    let lo = decode_loads_only(&decode);
    assert!(lo.source.contains("if (k0 < ec && n_splits < 0) {"));
    assert_eq!(lo.entries.len(), decode.entries.len());
}

/// The attention-prefill rows of [`bench_kernels`].
fn bench_attention_prefill(ctx: &mut Ctx, r: &mut ChaCha8Rng) {
    let i = |x: usize| KernelArg::I32(x as i32);
    // Attention prefill, B = 1, T = 4096 and 8192, H = 32, G = 8, Dh = 128, causal, from an
    // empty cache: both mma.sync forms and (on sm_90) the wgmma forms, with two timing
    // diagnostics (wrong results), and with MODELC_BENCH_ABLATIONS=1 the default's ablations.
    // Each sample times 10 back-to-back launches (host clock around a synchronize), median of 5
    // samples. Causal FLOPs = 2·B·H·T²·Dh (half of QKᵀ and PV's 4·B·H·T²·Dh). Compare with SDPA
    // in the same device call: scripts/bench_sdpa_prefill.py.
    for t in [4096usize, 8192] {
        let p = bench_attention_params();
        let s_max = t;
        let q = rand_bf16(ctx, r, t * 32 * 128);
        // Distinct k and v buffers (one buffer for both lets the L2 merge their reads).
        let k = rand_bf16(ctx, r, t * 8 * 128);
        let v = rand_bf16(ctx, r, t * 8 * 128);
        let (kc, vc) = (ctx.nan_bf16(8 * s_max * 128, "kc"), ctx.nan_bf16(8 * s_max * 128, "vc"));
        let past = ctx.i32(&[0], "past");
        let out = ctx.nan_bf16(t * 32 * 128, "out");
        let args = [
            q.arg(),
            i(4096),
            k.arg(),
            i(1024),
            v.arg(),
            i(1024),
            kc.arg(),
            vc.arg(),
            past.arg(),
            out.arg(),
            i(4096),
            i(t),
            i(s_max),
        ];
        let mut kernels = vec![
            (
                "attn_prefill mma.sync (default)",
                attention_prefill(&p).unwrap(),
                attention_prefill_launch(&p, 1, t),
            ),
            (
                "attn_prefill mma.sync (other form)",
                attention_prefill_mma(&p, other_mma()).unwrap(),
                attention_prefill_mma_launch(&p, other_mma(), 1, t),
            ),
        ];
        if ctx.gpu.compute_capability() == (9, 0) {
            for (name, v) in [
                ("diag: wgmma compute only", WgmmaVariant::DiagNoLoad),
                ("diag: wgmma loads only", WgmmaVariant::DiagNoCompute),
            ] {
                kernels.push((
                    name,
                    attention_prefill_wgmma_variant(&p, v).unwrap(),
                    attention_prefill_wgmma_variant_launch(&p, v, 1, t),
                ));
            }
            kernels.push((
                "attn_prefill_wgmma plain",
                attention_prefill_wgmma_variant(&p, WgmmaVariant::Plain).unwrap(),
                attention_prefill_wgmma_variant_launch(&p, WgmmaVariant::Plain, 1, t),
            ));
            kernels.push((
                "attn_prefill_wgmma overlapped",
                attention_prefill_wgmma_variant(&p, WgmmaVariant::Overlapped).unwrap(),
                attention_prefill_wgmma_variant_launch(&p, WgmmaVariant::Overlapped, 1, t),
            ));
            kernels.push((
                "attn_prefill_wgmma (default: ping-pong, FA3 order, lazy rescale; what programs run on Hopper)",
                attention_prefill_wgmma(&p).unwrap(),
                attention_prefill_wgmma_launch(&p, 1, t),
            ));
            if bench_ablations() {
                let default = attention_prefill_wgmma(&p).unwrap();
                for (name, src) in prefill_ablations(&default) {
                    kernels.push((name, src, attention_prefill_wgmma_launch(&p, 1, t)));
                }
            }
            for (name, v) in [
                ("attn_prefill_wgmma warp-specialised", WgmmaVariant::Specialized),
                ("attn_prefill_wgmma ping-pong", WgmmaVariant::PingPong),
                ("attn_prefill_wgmma ping-pong, 2 stages", WgmmaVariant::PingPong2Stages),
                ("attn_prefill_wgmma ping-pong, early k/v", WgmmaVariant::PingPongEarlyKv),
                (
                    "attn_prefill_wgmma ping-pong, mask branch",
                    WgmmaVariant::PingPongMaskSplit,
                ),
                (
                    "attn_prefill_wgmma ping-pong, FA3 order",
                    WgmmaVariant::PingPongFa3Order,
                ),
            ] {
                kernels.push((
                    name,
                    attention_prefill_wgmma_variant(&p, v).unwrap(),
                    attention_prefill_wgmma_variant_launch(&p, v, 1, t),
                ));
            }
        }
        let mut tma_args = args.to_vec();
        let maps = attention_prefill_tma_maps(
            &p,
            k.device_ptr(),
            1024,
            v.device_ptr(),
            1024,
            t,
            kc.device_ptr(),
            vc.device_ptr(),
            8 * s_max,
        );
        // MODELC_BENCH_TMA_L2=0|64|128|256: another L2 promotion (a tuning knob).
        let l2 = std::env::var("MODELC_BENCH_TMA_L2").ok().and_then(|v| v.parse().ok());
        tma_args.extend(maps.iter().map(|m| {
            let m = TileMap2d {
                l2_promotion: l2.unwrap_or(m.l2_promotion),
                ..*m
            };
            KernelArg::TensorMap(m.encode().unwrap())
        }));
        if ctx.gpu.compute_capability() == (9, 0) {
            kernels.push((
                "attn_prefill_wgmma ping-pong, FA3 order, lazy rescale, TMA k/v loads",
                attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTma).unwrap(),
                attention_prefill_wgmma_variant_launch(&p, WgmmaVariant::PingPongTma, 1, t),
            ));
            let sms = ctx.gpu.sm_count() as usize;
            for (name, v) in [
                (
                    "attn_prefill_wgmma persistent (cp.async)",
                    WgmmaVariant::PingPongPersistent,
                ),
                (
                    "attn_prefill_wgmma persistent, TMA",
                    WgmmaVariant::PingPongTmaPersistent,
                ),
            ] {
                kernels.push((
                    name,
                    attention_prefill_wgmma_variant(&p, v).unwrap(),
                    attention_prefill_wgmma_persistent_launch(&p, v, 1, t, sms),
                ));
            }
        }
        if ctx.gpu.compute_capability() == (9, 0) && bench_trials() {
            let default = attention_prefill_wgmma(&p).unwrap();
            let tma = attention_prefill_wgmma_variant(&p, WgmmaVariant::PingPongTma).unwrap();
            for (name, src) in prefill_trials(&default, &tma) {
                kernels.push((name, src, attention_prefill_wgmma_launch(&p, 1, t)));
            }
            let sms = ctx.gpu.sm_count() as usize;
            let [cp, tma] = [WgmmaVariant::PingPongPersistent, WgmmaVariant::PingPongTmaPersistent]
                .map(|v| attention_prefill_wgmma_variant(&p, v).unwrap());
            let launch = attention_prefill_wgmma_persistent_launch(&p, WgmmaVariant::PingPongPersistent, 1, t, sms);
            for (name, src) in persistent_trials(&cp, &tma) {
                kernels.push((name, src, launch));
            }
        }
        for (name, src, launch) in kernels {
            if !bench_selected(name) {
                continue;
            }
            ctx.load(&src);
            // The persistent forms take the batch size before any tensor maps.
            let mut form_args = if src.source.contains("TmaMap tm_k") {
                tma_args.clone()
            } else {
                args.to_vec()
            };
            if src.source.contains("int batch") {
                form_args.insert(args.len(), KernelArg::I32(1));
            }
            let args = &form_args[..];
            let ms = time_ms(ctx, 5, || {
                for _ in 0..10 {
                    ctx.launch(src.name(), launch, args)
                }
            }) / 10.0;
            let flops = 2.0 * (t as f64) * (t as f64) * 32.0 * 128.0;
            println!(
                "| {name} | B1 T{t} H32 G8 Dh128 causal | {ms:.3} | {:.1} TFLOP/s |",
                flops / ms / 1e9
            );
            if bench_single_launches() {
                let (warm, cold) = single_launch_ms(ctx, || ctx.launch(src.name(), launch, args));
                println!("| {name}, one launch at a time: after the last / after an L2 flush | B1 T{t} | {warm:.3} / {cold:.3} | |");
            }
        }
    }
}

/// Whether the prefill benchmark also times its kernels one launch at a time
/// (`MODELC_BENCH_SINGLE=1`; see [`single_launch_ms`]).
fn bench_single_launches() -> bool {
    env_flag("MODELC_BENCH_SINGLE")
}

/// Medians of 7 single launches of `launch` (host clock around the launch and a synchronize):
/// each right after the previous one has finished (L2 as it left it), and each after 128 MiB
/// uploaded to a fresh buffer (the L2 holds none of the kernel's data). Tells the cost of what
/// one launch leaves behind for the next apart from back-to-back overlap.
fn single_launch_ms(ctx: &Ctx, mut launch: impl FnMut()) -> (f64, f64) {
    launch();
    let mut time = |flush: bool| {
        let mut v: Vec<f64> = (0..7)
            .map(|_| {
                let scratch = flush.then(|| ctx.nan_bf16(64 << 20, "L2 flush"));
                ctx.gpu.synchronize().unwrap();
                let t0 = std::time::Instant::now();
                launch();
                ctx.gpu.synchronize().unwrap();
                drop(scratch);
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        median(&mut v)
    };
    (time(false), time(true))
}

/// Attention decode at B8 past 4096 H32 G8 Dh128 (one new token per sequence), every form of
/// [`DECODE_VARIANTS`] at several split counts (the one the executor picks on this GPU marked
/// `*`): each sample times 20 back-to-back (partials + combine) pairs with the host clock around
/// a synchronize, median of 7 samples; also with programmatic dependent launch where the form
/// takes it. `MODELC_DECODE_SPLITS=4,8` overrides the split counts; `MODELC_BENCH_ABLATIONS=1`
/// adds the default's loads alone ([`bench_ablations`]).
fn bench_attention_decode(ctx: &mut Ctx, r: &mut ChaCha8Rng) {
    let i = |x: usize| KernelArg::I32(x as i32);
    let p = bench_attention_params();
    let (b, past_n, s_max) = (8, 4096, 4097);
    let q = rand_bf16(ctx, r, b * 32 * 128);
    let (kn, vn) = (rand_bf16(ctx, r, b * 8 * 128), rand_bf16(ctx, r, b * 8 * 128));
    let kc = rand_bf16(ctx, r, b * 8 * s_max * 128);
    let vc = rand_bf16(ctx, r, b * 8 * s_max * 128);
    let past = ctx.i32(&[past_n as i32; 8], "past");
    let sms = ctx.gpu.sm_count() as usize;
    let picked = attention_decode_pick_splits(&p, b, past_n, sms);
    let mut split_list: Vec<usize> = match std::env::var("MODELC_DECODE_SPLITS") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![2, 4, 5, 8, 16],
    };
    if !split_list.contains(&picked) {
        split_list.push(picked);
    }
    let out = ctx.nan_bf16(b * 32 * 128, "out");
    let bytes = 2.0 * (b * 8 * past_n * 128 * 2) as f64;
    let mut forms: Vec<(String, DecodeVariant, KernelSource)> = DECODE_VARIANTS
        .iter()
        .map(|&v| (format!("{v:?}"), v, attention_decode_variant(&p, v).unwrap()))
        .collect();
    if bench_ablations() {
        let default = attention_decode_variant(&p, ATTN_DECODE_DEFAULT).unwrap();
        forms.push((
            format!("ablation: {ATTN_DECODE_DEFAULT:?}, loads only"),
            ATTN_DECODE_DEFAULT,
            decode_loads_only(&default),
        ));
    }
    for (form, variant, src) in forms {
        ctx.load(&src);
        let pdl_forms: &[bool] = if src.source.contains("modelc_pdl_enter();") {
            &[false, true]
        } else {
            &[false]
        };
        for &splits in &split_list {
            let partial = ctx.nan_f32(attention_decode_workspace_len(&p, b, splits), "partial");
            let (l1, l2) = attention_decode_variant_launch(&p, variant, b, splits);
            let a1 = [
                q.arg(),
                i(4096),
                kn.arg(),
                i(1024),
                vn.arg(),
                i(1024),
                kc.arg(),
                vc.arg(),
                past.arg(),
                partial.arg(),
                i(s_max),
                i(splits),
            ];
            let a2 = [partial.arg(), out.arg(), i(4096), i(splits)];
            for &pdl in pdl_forms {
                let ms = time_ms(ctx, 7, || {
                    for _ in 0..20 {
                        // SAFETY: the arguments documented by `attention_decode`; with PDL both
                        // entries wait for the kernel before them first.
                        unsafe {
                            ctx.gpu.launch_ex(&src.entries[0], l1, &a1, pdl).unwrap();
                            ctx.gpu.launch_ex(&src.entries[1], l2, &a2, pdl).unwrap();
                        }
                    }
                }) / 20.0;
                println!(
                    "| attn_decode {form} (+combine{}) | B8 past4096 H32 G8 Dh128, {splits} splits{} | {ms:.4} | {:.2} TB/s KV |",
                    if pdl { ", PDL" } else { "" },
                    if splits == picked { " *" } else { "" },
                    bytes / ms / 1e9
                );
            }
        }
    }
}

/// Only the attention-decode rows of [`bench_kernels`] (`--ignored bench_attention_decode_only`).
#[test]
#[ignore]
fn bench_attention_decode_only() {
    bench_table(bench_attention_decode);
}

/// Runs one group of [`bench_kernels`] rows under the table header (unchecked launches).
fn bench_table(rows: fn(&mut Ctx, &mut ChaCha8Rng)) {
    let Some(mut ctx) = setup() else { return };
    ctx.gpu.set_checked(false);
    let mut r = rng(7);
    println!("| kernel | shape | median ms | rate |");
    println!("|---|---|---|---|");
    rows(&mut ctx, &mut r);
}

/// Only the attention-prefill rows of [`bench_kernels`] (`--ignored bench_attention_prefill`).
#[test]
#[ignore]
fn bench_attention_prefill_only() {
    bench_table(bench_attention_prefill);
}

#[test]
#[ignore]
fn bench_kernels() {
    let Some(mut ctx) = setup() else { return };
    ctx.gpu.set_checked(false);
    let mut r = rng(7);
    let i = |x: usize| KernelArg::I32(x as i32);
    println!("| kernel | shape | median ms | rate |");
    println!("|---|---|---|---|");

    // GEMM 4096³ bf16 → bf16.
    {
        let n = 4096;
        let gemm = Gemm::new(&ctx.gpu).unwrap();
        let (x, w) = (rand_bf16(&ctx, &mut r, n * n), rand_bf16(&ctx, &mut r, n * n));
        let mut y = ctx.nan_bf16(n * n, "y");
        let ms = time_ms(&ctx, 10, || {
            gemm.linear(&x, &w, &mut y, GemmShape::linear(n, n, n), 1.0, 0.0)
                .unwrap()
        });
        println!(
            "| cuBLASLt bf16 GEMM | 4096³ | {ms:.3} | {:.0} TFLOP/s |",
            2.0 * (n as f64).powi(3) / ms / 1e9
        );
    }
    bench_attention_prefill(&mut ctx, &mut r);
    bench_attention_decode(&mut ctx, &mut r);
    // Delta rule: KDA-like, T = 4096, 32 heads, Dk = Dv = 128; without and with the gated-norm
    // epilogue (one block per head instead of two: half the blocks); one decode step at B8.
    let silu = NORM_SILU;
    for (name, gate, norm) in [
        ("KDA", DecayGate::PerChannel, None),
        ("GDN", DecayGate::Scalar, None),
        ("KDA+norm", DecayGate::PerChannel, Some(silu)),
        ("GDN+norm", DecayGate::Scalar, Some(silu)),
    ] {
        let p = DeltaRuleParams::new(32, 32, 128, 128, gate);
        let p = match norm {
            Some(n) => p.with_gated_norm(n),
            None => p,
        };
        let bufs = DeltaBench::new(&ctx, &mut r, &p, 1, 4096, 8);
        bufs.time_chunked(&mut ctx, &p, name);
        let dec = delta_rule_recurrent(&p).unwrap();
        ctx.load(&dec);
        let a = bufs.args(&p, 1);
        let ms = time_ms(&ctx, 20, || ctx.launch(dec.name(), delta_rule_launch(&p, 8, 0), &a));
        let bytes = 2.0 * (8 * 32 * 128 * 128 * 4) as f64;
        println!(
            "| delta_rule_recurrent {name} BV{} | B8 T1 H32 Dk=Dv=128 | {ms:.3} | {:.2} TB/s state |",
            p.value_block,
            bytes / ms / 1e9
        );
    }
    // The chunked delta rule as the models run it (gated norm fused) at the issue's shapes:
    // the chunk-parallel form codegen picks for Dk = Dv = 128 (all three launches).
    bench_delta_shapes(&mut ctx, &mut r);
    // Conv (3 × 4096 channels) and scan (Di 8192, N 16), T = 4096.
    {
        let (t, c) = (4096, 3 * 4096);
        let src = conv1d(&Conv1dParams {
            kernel_size: 4,
            activation: ConvActivation::Silu,
            has_bias: false,
        })
        .unwrap();
        ctx.load(&src);
        let x = rand_bf16(&ctx, &mut r, t * c);
        let w = rand_bf16(&ctx, &mut r, c * 4);
        let st = rand_f32(&ctx, &mut r, c * 3, -1.0, 1.0);
        let y = ctx.nan_bf16(t * c, "y");
        let a = [
            x.arg(),
            i(c),
            w.arg(),
            KernelArg::Ptr(0),
            st.arg(),
            st.arg(),
            y.arg(),
            i(c),
            i(t),
            i(c),
        ];
        let ms = time_ms(&ctx, 10, || ctx.launch(src.name(), conv1d_launch(1, t, c), &a));
        println!(
            "| conv1d K4 silu | T4096 C12288 | {ms:.3} | {:.2} TB/s |",
            2.0 * (t * c * 2) as f64 / ms / 1e9
        );
    }
    {
        let (t, di, n) = (4096, 8192, 16);
        let p = SelectiveScanParams::apriel2(n, 4);
        let src = selective_scan(&p).unwrap();
        ctx.load(&src);
        let big = rand_bf16(&ctx, &mut r, t * di);
        let a_log = rand_f32(&ctx, &mut r, di * n, 0.0, 2.7);
        let d = rand_f32(&ctx, &mut r, di, -1.0, 1.0);
        let st = rand_f32(&ctx, &mut r, di * n, -1.0, 1.0);
        let y = ctx.nan_bf16(t * di, "y");
        let a = [
            big.arg(),
            i(di),
            big.arg(),
            i(di),
            a_log.arg(),
            big.arg(),
            i(di),
            big.arg(),
            i(di),
            d.arg(),
            d.arg(),
            big.arg(),
            i(di),
            st.arg(),
            st.arg(),
            y.arg(),
            i(di),
            i(t),
            i(di),
        ];
        let ms = time_ms(&ctx, 3, || ctx.launch(src.name(), selective_scan_launch(1, di), &a));
        println!(
            "| selective_scan N16 | T4096 Di8192 | {ms:.3} | {:.0} ktok/s |",
            t as f64 / ms
        );
    }
}

/// [`setup`] for the GEMV benchmarks: launches unchecked, the GEMV kernels loaded.
fn gemv_bench_setup() -> Option<Ctx> {
    let mut ctx = setup()?;
    ctx.gpu.set_checked(false);
    modelc_runtime::cuda::load_gemv(&mut ctx.gpu, &ctx.cache).unwrap();
    Some(ctx)
}

/// GEMV against cuBLASLt at the ~1B hybrid's decode shapes, m = 1 to 8, bf16 out: device time per
/// call from 400 back-to-back calls (no synchronize between them), rotating over enough weight
/// copies (≥ 256 MiB) that W comes from HBM, not the 50 MB L2, as in a decode step.
/// `cargo test --release --test gpu_kernels bench_gemv -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_gemv() {
    use modelc_runtime::cuda::{gemv_ex, GemmOut, GemvPrologue};
    let Some(ctx) = gemv_bench_setup() else { return };
    let gemm = Gemm::new(&ctx.gpu).unwrap();
    let mut r = rng(630);
    println!(
        "| N × K | m | cuBLASLt µs | GEMV µs | GEMV+PDL µs | GEMV+PDL TB/s | +RMSNorm, PDL µs | +SiLU·up, PDL µs \
         | GEMV+PDL, next W prefetched µs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, k) in [
        (2048usize, 2048usize),
        (3072, 2048),
        (6416, 2048),
        (8192, 2048),
        (2048, 4096),
        (32000, 2048),
        (2048, 128),
    ] {
        let copies = (256usize << 20).div_ceil(n * k * 2).max(2);
        let ws: Vec<GpuBuffer<bf16>> = (0..copies).map(|_| rand_bf16(&ctx, &mut r, n * k)).collect();
        // X: 8 rows of 2k (gate, up); γ k.
        let x = rand_bf16(&ctx, &mut r, 16 * k);
        let gamma = rand_bf16(&ctx, &mut r, k);
        let y = ctx.nan_bf16(8 * n, "y");
        for m in [1usize, 2, 4, 8] {
            let shape = GemmShape {
                ldx: 2 * k,
                ..GemmShape::linear(m, n, k)
            };
            // 0: cuBLASLt, 1: GEMV, 2: GEMV + PDL, 3: + RMSNorm, 4: + SiLU·up, 5: GEMV + PDL
            // prefetching the next call's W into L2 (as the executor's MODELC_GEMV_PREFETCH_NEXT).
            let time = |mode: usize| {
                let calls = 400;
                let prologue = match mode {
                    3 => GemvPrologue::RmsNorm {
                        gamma: gamma.device_ptr(),
                        gamma_dtype: GemmOut::Bf16,
                        eps: 1e-5,
                    },
                    4 => GemvPrologue::SiluMul {
                        up: x.device_ptr_at(k).unwrap(),
                    },
                    _ => GemvPrologue::None,
                };
                let run = |i: usize| {
                    let w = &ws[i % copies];
                    // SAFETY: x holds 8 rows of 2k (X and up), w n·k, y 8·n ≥ m·n elements, γ k.
                    unsafe {
                        if mode == 0 {
                            gemm.linear_raw(
                                x.device_ptr(),
                                w.device_ptr(),
                                y.device_ptr(),
                                GemmOut::Bf16,
                                shape,
                                1.0,
                                0.0,
                            )
                        } else {
                            gemv_ex(
                                &ctx.gpu,
                                x.device_ptr(),
                                w.device_ptr(),
                                y.device_ptr(),
                                GemmOut::Bf16,
                                shape,
                                1.0,
                                0.0,
                                None,
                                None,
                                prologue,
                                mode >= 2,
                                if mode == 5 {
                                    L2Prefetch::head(ws[(i + 1) % copies].device_ptr(), (n * k * 2) as u64)
                                } else {
                                    None
                                },
                            )
                        }
                    }
                    .unwrap();
                };
                run(0);
                ctx.gpu.synchronize().unwrap();
                let t0 = std::time::Instant::now();
                for i in 0..calls {
                    run(i);
                }
                ctx.gpu.synchronize().unwrap();
                t0.elapsed().as_secs_f64() * 1e6 / calls as f64
            };
            let t: Vec<f64> = (0..6).map(time).collect();
            let tbs = (n * k * 2) as f64 / (t[2] * 1e-6) / 1e12;
            println!(
                "| {n} × {k} | {m} | {:.2} | {:.2} | {:.2} | {tbs:.2} | {:.2} | {:.2} | {:.2} |",
                t[0], t[1], t[2], t[3], t[4], t[5]
            );
        }
    }
}

/// A persistent prototype of batch-1 decode's weight stream: one launch runs every GEMV of the
/// ~1B's decode step (24 × (6416×2048, 2048×2048, 8192×2048, 2048×4096) and the 32000×2048
/// head) as phases separated by a grid-wide barrier, each warp loading its first units of the
/// next phase before it waits at the barrier (weights are constant), against the same phases
/// as streamed-GEMV launches with PDL (what programs run) and the copy floor. The question it
/// answers: how much of the GEMVs' 1.28–1.34× the floor is kernel boundaries. Its barrier-free
/// forms without arithmetic, with and without the staging of x, and a plain read of the same
/// bytes split the rest between the access pattern, x's staging and the arithmetic.
const PERSISTENT_PHASES_SOURCE: &str = r#"#include <cuda_bf16.h>
// Phase p: y[n] = W[n, k] x[k] (bf16, f32 sums); the table holds (w, x, y, n, k) as 64-bit words.
struct Phase { const __nv_bfloat16* w; const __nv_bfloat16* x; __nv_bfloat16* y; long long n, k; };
__device__ __forceinline__ Phase phase_at(const long long* t, int p) {
  Phase f;
  f.w = reinterpret_cast<const __nv_bfloat16*>(t[5 * p]);
  f.x = reinterpret_cast<const __nv_bfloat16*>(t[5 * p + 1]);
  f.y = reinterpret_cast<__nv_bfloat16*>(t[5 * p + 2]);
  f.n = t[5 * p + 3];
  f.k = t[5 * p + 4];
  return f;
}
__device__ __forceinline__ float lo_bf(unsigned u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float hi_bf(unsigned u) { return __uint_as_float(u & 0xffff0000u); }
// The grid's barrier: wait until the counter (blocks' arrivals, never reset) reaches `target`.
__device__ __forceinline__ void grid_barrier(unsigned* counter, unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    unsigned v;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
    } while (v < target);
  }
  __syncthreads();
}
// Blocks of 8 warps, two an SM, all resident; warp gw of nw takes rows gw, gw + nw, … of each
// phase in 4 KB units (as the streamed GEMV), two units in flight in registers; the load cursor
// runs ahead across phase ends. The counter holds `base` arrivals from earlier launches.
// The modes other than BARRIERS are for timing only (their results are wrong):
enum Mode {
  NO_BARRIERS = 0,     // no grid barrier between phases
  BARRIERS = 1,        // a grid barrier between phases (results checked)
  LOADS_ONLY = 2,      // no barriers, and the loaded words folded instead of multiplied
  LOADS_UNSTAGED = 3,  // LOADS_ONLY without staging x (no block barrier or x load a phase)
};
extern "C" __global__ void __launch_bounds__(256, 2) gemv_phases(const long long* table, int nph, unsigned* counter,
                                                                  unsigned base, int mode) {
  extern __shared__ __align__(16) float xs[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const long long nw = (long long)gridDim.x * 8, gw = (long long)blockIdx.x * 8 + warp;
  auto units = [&](const Phase& f) -> int {
    const int upr = (int)(((f.k >> 3) + 255) >> 8);
    return gw < f.n ? (int)((f.n - 1 - gw) / nw + 1) * upr : 0;
  };
  int lp = 0, lu = 0;
  Phase lf = phase_at(table, 0);
  auto load = [&](uint4 (&buf)[8]) {
    while (lp < nph && lu >= units(lf)) {
      ++lp;
      lu = 0;
      if (lp < nph) lf = phase_at(table, lp);
    }
    if (lp < nph) {
      const int nv = (int)(lf.k >> 3), upr = (nv + 255) >> 8, rj = lu / upr, base = (lu - rj * upr) * 256;
      const uint4* src = reinterpret_cast<const uint4*>(lf.w + (gw + rj * nw) * lf.k);
#pragma unroll
      for (int cc = 0; cc < 8; ++cc) {
        const int v = base + lane + 32 * cc;
        buf[cc] = v < nv ? __ldcs(src + v) : make_uint4(0u, 0u, 0u, 0u);
      }
      ++lu;
    }
  };
  auto stage = [&](const Phase& f) {
    if (mode == LOADS_UNSTAGED) return;
    for (int i = tid; i < f.k; i += 256) xs[i] = __bfloat162float(__ldcg(f.x + i));
    __syncthreads();
  };
  uint4 b0[8], b1[8];
  load(b0);
  load(b1);
  int cp = 0, cu = 0, parity = 0;
  Phase cf = phase_at(table, 0);
  stage(cf);
  float acc = 0.0f;
  unsigned fold = 0;
  for (;;) {
    while (cp < nph && cu >= units(cf)) {
      ++cp;
      cu = 0;
      if (cp < nph) {
        if (mode == BARRIERS) grid_barrier(counter, base + (unsigned)cp * gridDim.x);
        else if (mode != LOADS_UNSTAGED) __syncthreads();
        cf = phase_at(table, cp);
        stage(cf);
      }
    }
    if (cp >= nph) break;
    const int nv = (int)(cf.k >> 3), upr = (nv + 255) >> 8, rj = cu / upr, part = cu - rj * upr, base = part * 256;
    auto mul = [&](const uint4 (&buf)[8]) {
#pragma unroll
      for (int cc = 0; cc < 8; ++cc) {
        const int v = base + lane + 32 * cc;
        if (v < nv && mode >= LOADS_ONLY) {
          fold ^= buf[cc].x ^ buf[cc].y ^ buf[cc].z ^ buf[cc].w;
        } else if (v < nv) {
          const float* xv = xs + 8 * v;
          acc = fmaf(xv[0], lo_bf(buf[cc].x), acc);
          acc = fmaf(xv[1], hi_bf(buf[cc].x), acc);
          acc = fmaf(xv[2], lo_bf(buf[cc].y), acc);
          acc = fmaf(xv[3], hi_bf(buf[cc].y), acc);
          acc = fmaf(xv[4], lo_bf(buf[cc].z), acc);
          acc = fmaf(xv[5], hi_bf(buf[cc].z), acc);
          acc = fmaf(xv[6], lo_bf(buf[cc].w), acc);
          acc = fmaf(xv[7], hi_bf(buf[cc].w), acc);
        }
      }
    };
    if (parity == 0) { mul(b0); load(b0); } else { mul(b1); load(b1); }
    parity ^= 1;
    if (part == upr - 1) {
      float a = acc;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
      if (lane == 0) cf.y[gw + rj * nw] = __float2bfloat16(a);
      acc = 0.0f;
    }
    ++cu;
  }
  if (fold == 0x9e3779b9u) counter[1] = fold;  // keeps the folded loads
}
// The read-only ceiling: every 16-byte word of `p` read once (`__ldcs`, four in flight a thread),
// folded into one word a thread so that the loads stay.
extern "C" __global__ void __launch_bounds__(256) read_stream(const uint4* __restrict__ p, long long n16, unsigned* out) {
  const long long stride = (long long)gridDim.x * blockDim.x, i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  long long i = i0;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n16; i += stride) {
    const uint4 a = __ldcs(p + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  out[i0] = acc;
}
"#;

#[test]
#[ignore]
fn bench_persistent_gemv_phases() {
    use modelc_runtime::cuda::{gemv_ex, GemmOut, GemvPrologue};
    let Some(mut ctx) = gemv_bench_setup() else { return };
    ctx.gpu
        .compile_and_load(&ctx.cache, PERSISTENT_PHASES_SOURCE, &["gemv_phases", "read_stream"])
        .unwrap();
    let mut r = rng(631);
    // (n, k) of the phases: 24 layers of QKV (KDA's 6416 rows), o, gate+up, down, then the head.
    let layer = [(6416usize, 2048usize), (2048, 2048), (8192, 2048), (2048, 4096)];
    let shapes: Vec<(usize, usize)> = (0..24).flat_map(|_| layer).chain([(32000, 2048)]).collect();
    // Weights: random in the phases checked below, zeros elsewhere (the values do not change
    // the timing, and random ones for 2.2 GB take long on the host); x random.
    let last = shapes.len() - 1;
    let checked = [0, 1, 2, 3, last];
    let ws: Vec<GpuBuffer<bf16>> = shapes
        .iter()
        .enumerate()
        .map(|(p, &(n, k))| {
            if checked.contains(&p) {
                rand_bf16(&ctx, &mut r, n * k)
            } else {
                ctx.gpu.alloc_zeros(n * k, "w").unwrap()
            }
        })
        .collect();
    let xs: Vec<GpuBuffer<bf16>> = shapes.iter().map(|&(_, k)| rand_bf16(&ctx, &mut r, k)).collect();
    let ys: Vec<GpuBuffer<bf16>> = shapes.iter().map(|&(n, _)| ctx.nan_bf16(n, "y")).collect();
    let ys_ref: Vec<GpuBuffer<bf16>> = shapes.iter().map(|&(n, _)| ctx.nan_bf16(n, "y_ref")).collect();
    let table: Vec<i64> = (0..shapes.len())
        .flat_map(|p| {
            [
                ws[p].device_ptr() as i64,
                xs[p].device_ptr() as i64,
                ys[p].device_ptr() as i64,
                shapes[p].0 as i64,
                shapes[p].1 as i64,
            ]
        })
        .collect();
    let table = ctx.gpu.upload(&table, "phase table").unwrap();
    // The barrier's counter and a word the folding form may write.
    let counter = ctx.gpu.alloc_zeros::<u32>(2, "barrier counter").unwrap();
    let bytes: usize = shapes.iter().map(|&(n, k)| 2 * n * k).sum();
    let blocks = 2 * ctx.gpu.sm_count();
    let launches = |y: &[GpuBuffer<bf16>]| {
        for p in 0..shapes.len() {
            let (n, k) = shapes[p];
            // SAFETY: x k, w n·k, y n elements.
            unsafe {
                gemv_ex(
                    &ctx.gpu,
                    xs[p].device_ptr(),
                    ws[p].device_ptr(),
                    y[p].device_ptr(),
                    GemmOut::Bf16,
                    GemmShape::linear(1, n, k),
                    1.0,
                    0.0,
                    None,
                    None,
                    GemvPrologue::None,
                    true,
                    None,
                )
            }
            .unwrap();
        }
    };
    // The kernel's modes (`enum Mode` of its source, which must agree).
    const NO_BARRIERS: i32 = 0;
    const BARRIERS: i32 = 1;
    const LOADS_ONLY: i32 = 2;
    const LOADS_UNSTAGED: i32 = 3;
    for (name, value) in [
        ("NO_BARRIERS", NO_BARRIERS),
        ("BARRIERS", BARRIERS),
        ("LOADS_ONLY", LOADS_ONLY),
        ("LOADS_UNSTAGED", LOADS_UNSTAGED),
    ] {
        assert!(
            PERSISTENT_PHASES_SOURCE.contains(&format!("  {name} = {value},")),
            "the prototype's enum Mode disagrees with {name} = {value}"
        );
    }
    let barrier_launches = std::cell::Cell::new(0u32);
    let persistent = |mode: i32| {
        let base = barrier_launches.get() * (shapes.len() as u32 - 1) * blocks;
        barrier_launches.set(barrier_launches.get() + u32::from(mode == BARRIERS));
        let dims = LaunchDims::new((blocks, 1, 1), (256, 1, 1), 4 * 4096);
        // SAFETY: the table's pointers and sizes are the buffers above; the blocks (two an SM,
        // 256 threads, 16 KB) are all resident, so the barrier cannot deadlock.
        unsafe {
            ctx.gpu.launch(
                "gemv_phases",
                dims,
                &[
                    table.arg(),
                    KernelArg::I32(shapes.len() as i32),
                    counter.arg(),
                    KernelArg::U32(base),
                    KernelArg::I32(mode),
                ],
            )
        }
        .unwrap();
    };
    // The prototype computes what the streamed GEMV computes (bf16 outputs, f32 sums in a
    // different order: 5e-3 relative RMS as the other bf16 outputs).
    launches(&ys_ref);
    persistent(BARRIERS);
    ctx.gpu.synchronize().unwrap();
    for p in checked {
        let got = ctx.gpu.download(&ys[p], "y").unwrap();
        let want = ctx.gpu.download(&ys_ref[p], "y_ref").unwrap();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (g, w) in got.iter().zip(&want) {
            assert!(g.is_finite(), "phase {p}: an element was not written");
            num += (g.to_f64() - w.to_f64()).powi(2);
            den += w.to_f64().powi(2);
        }
        let rel = (num / den).sqrt();
        assert!(rel < 5e-3, "phase {p} {:?}: relative RMS error {rel}", shapes[p]);
    }
    let floor_ms = bytes as f64 / ctx.gpu.copy_bandwidth(1 << 30, 10).unwrap() * 1e3;
    // The same bytes in one buffer, read once by a plain grid-stride kernel.
    let flat = ctx.gpu.alloc_zeros::<u8>(bytes, "read-stream source").unwrap();
    let read_blocks = 8 * ctx.gpu.sm_count();
    let folds = ctx
        .gpu
        .alloc_zeros::<u32>(256 * read_blocks as usize, "read-stream folds")
        .unwrap();
    let read = || {
        // SAFETY: `flat` holds bytes / 16 words, `folds` one word a thread.
        unsafe {
            ctx.gpu.launch(
                "read_stream",
                LaunchDims::new((read_blocks, 1, 1), (256, 1, 1), 0),
                &[flat.arg(), KernelArg::I64((bytes / 16) as i64), folds.arg()],
            )
        }
        .unwrap();
    };
    println!(
        "| round | phases | MB | streamed GEMV launches, PDL ms | persistent, barriers ms | persistent, no barriers ms \
         | persistent, loads only ms | same, x not staged ms | read-only stream ms | copy floor ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for round in 0..3 {
        let a = time_ms(&ctx, 20, || launches(&ys_ref));
        let b = time_ms(&ctx, 20, || persistent(BARRIERS));
        let c = time_ms(&ctx, 20, || persistent(NO_BARRIERS));
        let l = time_ms(&ctx, 20, || persistent(LOADS_ONLY));
        let ls = time_ms(&ctx, 20, || persistent(LOADS_UNSTAGED));
        let d = time_ms(&ctx, 20, read);
        println!(
            "| {round} | {} | {:.0} | {a:.3} | {b:.3} | {c:.3} | {l:.3} | {ls:.3} | {d:.3} | {floor_ms:.3} |",
            shapes.len(),
            bytes as f64 / 1e6
        );
    }
}
