//! Timings (not a check): `cargo test --release --test gpu_kernels bench -- --ignored --nocapture`

use super::*;

/// Median wall time of `reps` runs of `f`, each followed by a synchronize, after one warm-up.
pub(crate) fn time_ms(ctx: &Ctx, reps: usize, mut f: impl FnMut()) -> f64 {
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
pub(crate) fn ablated(src: &KernelSource, tag: &str, edits: &[(&str, &str)]) -> KernelSource {
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
    // The partials kernel's arguments (the fused forms' begin with them).
    let partials_args = |partial: &GpuBuffer<f32>, splits: usize| {
        vec![
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
        ]
    };
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
            let a1 = partials_args(&partial, splits);
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
    // The default form with the combine in its last block (`MODELC_ATTN_DECODE_FUSED=1`, and
    // `=2`'s early loads), one launch a call, with and without PDL.
    let count = ctx.i32(&vec![0; b * 8], "count");
    for early in [false, true] {
        let Some(fused) = attention_decode_fused(&p, early, None).unwrap() else {
            return;
        };
        ctx.load(&fused);
        for &splits in &split_list {
            let partial = ctx.nan_f32(attention_decode_workspace_len(&p, b, splits), "partial");
            let (l1, _) = attention_decode_launch(&p, b, splits);
            let mut args = partials_args(&partial, splits);
            args.extend([out.arg(), i(4096), count.arg()]);
            for pdl in [false, true] {
                let ms = time_ms(ctx, 7, || {
                    for _ in 0..20 {
                        // SAFETY: the arguments documented by `attention_decode_fused`.
                        unsafe { ctx.gpu.launch_ex(&fused.entries[0], l1, &args, pdl).unwrap() }
                    }
                }) / 20.0;
                println!(
                    "| attn_decode fused (combine in the last block{}{}) | B8 past4096 H32 G8 Dh128, {splits} splits{} | {ms:.4} | {:.2} TB/s KV |",
                    if early { ", early loads" } else { "" },
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
