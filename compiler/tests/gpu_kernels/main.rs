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

#[path = "../kda_step_shapes/mod.rs"]
mod kda_step_shapes;
use half::bf16;
use kda_step_shapes::kda_step_cases;
use modelc::codegen::templates::attention::{
    attention_decode_fused, attention_decode_launch, attention_decode_pick_splits, attention_decode_rope,
    attention_decode_variant, attention_decode_variant_launch, attention_decode_workspace_len, attention_prefill,
    attention_prefill_launch, attention_prefill_mma, attention_prefill_mma_launch, attention_prefill_tma_maps,
    attention_prefill_wgmma, attention_prefill_wgmma_launch, attention_prefill_wgmma_persistent_launch,
    attention_prefill_wgmma_variant, attention_prefill_wgmma_variant_launch, mma_decode, tensor_core_prefill,
    wgmma_prefill, AttentionParams, DecodeVariant, MmaVariant, WgmmaVariant, ATTN_DECODE_DEFAULT, ATTN_MMA_DEFAULT,
    ATTN_WGMMA_DEFAULT,
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

mod attention;
mod bench;
mod conv;
mod delta;
mod gemm;
mod kda_step;
mod runtime;
mod selective_scan;

use attention::*;
use bench::*;
use delta::*;

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
