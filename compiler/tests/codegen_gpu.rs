//! Every generated glue kernel of the codegen specs and the tiny specs, run on the GPU on random
//! inputs, against the reference interpreter running the same fused IR nodes in f64 on the same
//! (bf16-rounded) inputs. Inputs are column windows of wider buffers (as merged-GEMM outputs are) and outputs
//! go to padded rows poisoned with NaN: a missed element stays NaN, a write into the padding
//! shows. Skipped with a notice without a GPU, unless `MODELC_REQUIRE_GPU=1`.
//!
//! Tolerances (relative RMS error ‖got − ref‖ / ‖ref‖): 5e-3 for bf16 outputs (the design's
//! bf16 bound: f32 math plus one bf16 rounding of the result, ≈ 2e-3); 1e-5 for f32 outputs
//! (f32 math only, no rounding to bf16).

mod codegen_common;

use std::collections::{BTreeMap, BTreeSet};

use codegen_common::{codegen_specs, glue_subgraph, placed, tiny_specs};
use half::bf16;
use modelc::codegen::kernel::KArg;
use modelc::codegen::{generate, Codegen};
use modelc::ir::{DimEnv, Op, Value};
use modelc::passes::fuse::StepKind;
use modelc::passes::Placement;
use modelc::reference::{execute, Array, InterpOptions, WeightStore};
use modelc::spec::layout;
use modelc_runtime::cuda::{Gpu, GpuBuffer, KernelArg, KernelCache, LaunchDims};
use modelc_runtime::tensor::DType;
use rand::{Rng, SeedableRng};

const BATCH: usize = 2;
const TOKENS: usize = 5;
const PAD: usize = 3;

enum Buf {
    Bf16(GpuBuffer<bf16>),
    F32(GpuBuffer<f32>),
    I32(GpuBuffer<i32>),
}

impl Buf {
    fn upload(gpu: &Gpu, dtype: DType, data: &[f64]) -> Buf {
        match dtype {
            DType::BF16 => Buf::Bf16(
                gpu.upload(&data.iter().map(|&x| bf16::from_f64(x)).collect::<Vec<_>>(), "in")
                    .expect("upload"),
            ),
            DType::F32 => Buf::F32(
                gpu.upload(&data.iter().map(|&x| x as f32).collect::<Vec<_>>(), "in")
                    .expect("upload"),
            ),
            DType::I32 => Buf::I32(
                gpu.upload(&data.iter().map(|&x| x as i32).collect::<Vec<_>>(), "in")
                    .expect("upload"),
            ),
            other => panic!("no {other} buffers"),
        }
    }
    fn ptr(&self, offset: usize) -> KernelArg {
        let p = match self {
            Buf::Bf16(b) => b.device_ptr_at(offset),
            Buf::F32(b) => b.device_ptr_at(offset),
            Buf::I32(b) => b.device_ptr_at(offset),
        };
        KernelArg::Ptr(p.expect("offset inside the buffer"))
    }
    fn download(&self, gpu: &Gpu) -> Vec<f64> {
        match self {
            Buf::Bf16(b) => gpu
                .download(b, "out")
                .expect("download")
                .iter()
                .map(|x| x.to_f64())
                .collect(),
            Buf::F32(b) => gpu
                .download(b, "out")
                .expect("download")
                .iter()
                .map(|&x| f64::from(x))
                .collect(),
            Buf::I32(b) => gpu
                .download(b, "out")
                .expect("download")
                .iter()
                .map(|&x| f64::from(x))
                .collect(),
        }
    }
}

/// Rounds to what a buffer of `dtype` holds.
fn round(dtype: DType, x: f64) -> f64 {
    match dtype {
        DType::BF16 => bf16::from_f64(x).to_f64(),
        DType::F32 => f64::from(x as f32),
        _ => x,
    }
}

fn rel_rms(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    (num / den.max(1e-300)).sqrt()
}

fn check_kernels(
    gpu: &mut Gpu,
    cache: &KernelCache,
    name: &str,
    cg: &Codegen,
    weights: &WeightStore,
    vocab: usize,
) -> usize {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let rows = BATCH * TOKENS;
    let env = DimEnv {
        batch: BATCH,
        tokens: TOKENS,
        past: 0,
    };
    let mut done = BTreeSet::new();
    for (i, step) in cg.plan.steps.iter().enumerate() {
        if step.kind != StepKind::Glue {
            continue;
        }
        let launch = &cg.steps[i].prefill[0];
        let kernel = &cg.kernels[launch.kernel];
        if !done.insert(kernel.name.clone()) {
            continue;
        }
        if !gpu.has_kernel(&kernel.name) {
            gpu.compile_and_load(cache, &kernel.source, &[&kernel.name])
                .unwrap_or_else(|e| panic!("{}: {e}", kernel.name));
        }
        // Inputs: host values (rounded to their storage) and device buffers.
        let mut bufs: BTreeMap<usize, (Buf, usize, usize)> = BTreeMap::new(); // input j -> (buffer, offset, stride)
        let mut host: BTreeMap<String, Array> = BTreeMap::new();
        for (j, v) in step.inputs.iter().enumerate() {
            let view = cg.plan.resolve(&cg.graph, *v);
            let ty = cg.graph.ty(*v).clone();
            let (arr, buf) = match &cg.graph.node(view.base.node).op {
                Op::Weight { key, dtype, .. } => {
                    let w = weights.get(key).expect("weight").clone();
                    let data: Vec<f64> = w.data.iter().map(|&x| round(*dtype, x)).collect();
                    (
                        Array::new(w.shape.clone(), data.clone()),
                        (Buf::upload(gpu, *dtype, &data), 0, 0),
                    )
                }
                Op::Input { name, .. } if ty.shape.len() == 2 => {
                    let hi = if name == "tokens" { vocab } else { 4000 };
                    let data: Vec<f64> = (0..rows).map(|_| rng.random_range(0..hi) as f64).collect();
                    (
                        Array::new(vec![BATCH, TOKENS], data.clone()),
                        (Buf::upload(gpu, DType::I32, &data), 0, 1),
                    )
                }
                _ => {
                    let width = cg.graph.ty(view.base).channels().expect("channels");
                    let dtype = cg.storage_of(view.base);
                    let lo = if dtype == DType::F32 { -4.0 } else { -2.0 };
                    let full: Vec<f64> = (0..rows * width)
                        .map(|_| round(dtype, rng.random_range(lo..2.0)))
                        .collect();
                    let window: Vec<f64> = (0..rows)
                        .flat_map(|r| full[r * width + view.start..r * width + view.start + view.len].to_vec())
                        .collect();
                    (
                        Array::new(vec![BATCH, TOKENS, view.len], window),
                        (Buf::upload(gpu, dtype, &full), view.start, width),
                    )
                }
            };
            host.insert(format!("in{j}"), arr);
            bufs.insert(j, buf);
        }
        // Outputs: padded rows, NaN everywhere first.
        let mut outs: Vec<(Value, Buf, usize, DType, usize)> = Vec::new();
        for v in &step.outputs {
            let ch = cg.graph.ty(*v).channels().expect("channels");
            let dtype = cg.storage_of(*v);
            let stride = ch + PAD;
            outs.push((
                *v,
                Buf::upload(gpu, dtype, &vec![f64::NAN; rows * stride]),
                stride,
                dtype,
                ch,
            ));
        }
        let index_of = |v: &Value| step.inputs.iter().position(|x| x == v);
        let mut args = Vec::new();
        for a in &launch.args {
            args.push(match a {
                KArg::Value(v) => match index_of(v) {
                    Some(j) => bufs[&j].0.ptr(bufs[&j].1),
                    None => outs.iter().find(|o| o.0 == *v).expect("output").1.ptr(0),
                },
                KArg::Stride(v) => match index_of(v) {
                    Some(j) => KernelArg::I32(bufs[&j].2 as i32),
                    None => KernelArg::I32(outs.iter().find(|o| o.0 == *v).expect("output").2 as i32),
                },
                KArg::Weight { key, .. } => {
                    let j = step
                        .inputs
                        .iter()
                        .position(|x| matches!(&cg.graph.node(x.node).op, Op::Weight { key: k, .. } if k == key))
                        .expect("weight input");
                    bufs[&j].0.ptr(0)
                }
                KArg::Int(_) => KernelArg::I32(rows as i32),
                other => panic!("{}: unexpected glue argument {other:?}", kernel.name),
            });
        }
        // The launch's own grid (rows, and blocks per row for element-wise kernels).
        let genv = modelc_runtime::program::Env {
            batch: BATCH as u64,
            tokens: TOKENS as u64,
            past: 0,
            max_len: 64,
            slots: BATCH as u64,
            slot: 0,
            sms: 1,
        };
        let grid: Vec<u32> = launch
            .grid
            .iter()
            .map(|e| u32::try_from(e.eval(&genv).expect("grid")).expect("grid fits u32"))
            .collect();
        assert_eq!(grid[0] as usize, rows, "{}: one block row per token", kernel.name);
        let dims = LaunchDims::new((grid[0], grid[1], grid[2]), (launch.block[0], 1, 1), 0);
        // SAFETY: the arguments follow the kernel's parameter list (built from the same KArgs);
        // every buffer covers the rows and strides passed.
        unsafe { gpu.launch(&kernel.name, dims, &args) }.unwrap_or_else(|e| panic!("{}: {e}", kernel.name));
        let want = execute(
            &glue_subgraph(&cg.graph, step),
            &WeightStore::default(),
            &host,
            env,
            InterpOptions::default(),
        )
        .expect("reference");
        for (j, (_, buf, stride, dtype, ch)) in outs.iter().enumerate() {
            let got = buf.download(gpu);
            let w = &want[&format!("out{j}")];
            let mut g = Vec::with_capacity(rows * ch);
            for r in 0..rows {
                g.extend_from_slice(&got[r * stride..r * stride + ch]);
                assert!(
                    got[r * stride + ch..(r + 1) * stride].iter().all(|x| x.is_nan()),
                    "{}: wrote into the padding",
                    kernel.name
                );
            }
            assert!(
                g.iter().all(|x| x.is_finite()),
                "{name}/{}: output {j} has non-finite values",
                kernel.name
            );
            let tol = if *dtype == DType::F32 { 1e-5 } else { 5e-3 };
            let e = rel_rms(&g, &w.data);
            assert!(
                e < tol,
                "{name}/{}: output {j} relative RMS error {e:e} ≥ {tol:e}",
                kernel.name
            );
            eprintln!("{name}/{}: output {j} ({dtype}) rel RMS {e:.2e}", kernel.name);
        }
    }
    done.len()
}

#[test]
fn glue_kernels_match_the_reference_on_the_gpu() {
    let Some(mut gpu) = modelc_runtime::cuda::gpu_or_skip("the GPU glue-kernel test") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = KernelCache::new(dir.path());
    let mut total = 0;
    // The tiny specs too: their head sizes (8, 16) give glue kernels narrower than a warp.
    for (name, spec) in codegen_specs().into_iter().chain(tiny_specs()) {
        let cg = generate(placed(&spec, &Placement::main(&spec))).expect("generates");
        let lay: Vec<_> = layout::weights(&spec).into_iter().map(|w| (w.key, w.shape)).collect();
        let weights = WeightStore::random(&lay, 3);
        total += check_kernels(&mut gpu, &cache, &name, &cg, &weights, spec.vocab_size);
    }
    assert!(total >= 10, "checked only {total} glue kernels");
}
