//! The scan and the output pass in one launch (`delta_rule_cp_scan_out.cu`) and how a head's
//! blocks share the gated norm's row sums.

use super::chunk_parallel::{chunk_parallel_module, CpExtraEntry, CP_WS_ARG};
use super::*;

/// How the blocks of a head in `delta_rule_cp_scan_out_` share the gated norm's row sums (a
/// head's Dv / SBV blocks each hold part of every row of o).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutExchange {
    /// The head's blocks form a cluster (sm_90); each puts its sums into every block's shared
    /// memory with asynchronous stores completing on the receiver's mbarrier. Measured on an
    /// H100 (2026-12-07, ninth session) at three times the cluster-free time: see
    /// docs/PERFORMANCE.md.
    Cluster,
    /// Ordinary blocks; each writes its sums to the workspace (over the state copies the
    /// three-pass form keeps there) and counts them in a per-chunk word the prep zeroes; readers
    /// wait for the count. A block takes its place in the grid from a ticket (the order blocks
    /// start in), so a head's blocks start one after another and a grid larger than the device
    /// holds runs in waves; a head's blocks must fit at once
    /// ([`delta_rule_cp_scan_out_runs_on`]; a block that waits about 2^31 cycles traps rather
    /// than hang).
    Global,
}

/// [`delta_rule_chunk_parallel`] with one more entry, last: `delta_rule_cp_scan_out_<hash>`,
/// the scan and the output pass in one (`delta_rule_cp_scan_out.cu`), launched after the prep
/// with [`delta_rule_cp_scan_out_launch`] in place of the scan and output launches. With the
/// gated norm over several blocks a head, `exchange` says how they share its row sums (with
/// [`ScanOutExchange::Global`] the module's prep also zeroes the counts). Requires
/// [`delta_rule_cp_scan_out_supported`].
pub fn delta_rule_chunk_parallel_with_scan_out(
    p: &DeltaRuleParams,
    exchange: ScanOutExchange,
) -> Result<KernelSource, TemplateError> {
    delta_rule_chunk_parallel_with_scan_out_at(p, exchange, p.scan_block)
}

/// [`delta_rule_chunk_parallel_with_scan_out`] with the scan and the output in blocks of `width`
/// value columns (the module's own scan keeps `p.scan_block`; launch the entry with the
/// parameters of `width`).
pub fn delta_rule_chunk_parallel_with_scan_out_at(
    p: &DeltaRuleParams,
    exchange: ScanOutExchange,
    width: usize,
) -> Result<KernelSource, TemplateError> {
    let so = DeltaRuleParams {
        scan_block: width,
        ..*p
    };
    check("delta_rule_cp_scan_out", delta_rule_cp_scan_out_supported(&so), || {
        format!(
            "the scan with the output needs a scan block of 16..=128 dividing Dv {} (got {width}), \
                 with the gated norm at most 8 blocks a head, within a block's shared memory",
            p.value_dim
        )
    })?;
    chunk_parallel_module(p, CpPrepVariant::default_for(p), CpExtraEntry::ScanOut(exchange, width))
}

/// Chunks in flight of `delta_rule_cp_scan_out_`: three where they fit a block's shared memory,
/// else two; `None` where two do not fit.
fn cp_scan_out_buffers(p: &DeltaRuleParams) -> Option<usize> {
    [3, 2]
        .into_iter()
        .find(|&n| cp_scan_out_smem_with(p, n) <= DELTA_MAX_SMEM as usize)
}

/// Shared memory of `delta_rule_cp_scan_out_` with `nbuf` buffers (the layout at its top): h,
/// v_new and o `[..][SP]` (bf16); per buffer W, k, q `[C][KP]`, A_qk `[C][AP]`, U and, with the
/// norm, the gate rows `[C][SP]` (bf16), e^G_last `[DK]` (f32); with the norm the row sums
/// `[4][NCL][2][C]` (f32) and their four mbarriers.
fn cp_scan_out_smem_with(p: &DeltaRuleParams, nbuf: usize) -> usize {
    let (c, dk, sbv) = (DELTA_TC_CHUNK, p.key_dim, p.scan_block);
    let (kp, sp, ap) = (dk + 8, sbv + 8, c + 8);
    let norm = p.gated_norm.is_some();
    let ncl = p.value_dim / sbv.max(1);
    let per_buffer = 3 * c * kp + c * ap + c * sp + if norm { c * sp } else { 0 };
    let bf16 = dk * sp + 2 * c * sp + nbuf * per_buffer;
    let f32 = nbuf * dk + if norm { 8 * ncl * c } else { 0 };
    bf16 * 2 + f32 * 4 + if norm { 4 * 8 } else { 0 }
}

/// Whether [`delta_rule_chunk_parallel_with_scan_out`] covers `p`: the chunk-parallel form's
/// cases whose scan block leaves two buffers room in a block, and with the gated norm at most 8
/// blocks a head (a cluster's portable size; several blocks a head need sm_90).
pub fn delta_rule_cp_scan_out_supported(p: &DeltaRuleParams) -> bool {
    delta_rule_chunk_parallel_supported(p)
        && cp_scan_out_buffers(p).is_some()
        && (p.gated_norm.is_none() || matches!(p.value_dim / p.scan_block, 1 | 2 | 4 | 8))
}

/// Launch geometry of `delta_rule_cp_scan_out_` for `batch` sequences: the scan's grid and block.
pub fn delta_rule_cp_scan_out_launch(p: &DeltaRuleParams, batch: usize) -> Launch {
    let smem = cp_scan_out_buffers(p).map_or(u32::MAX, |n| dim(cp_scan_out_smem_with(p, n)));
    Launch::new(
        (blocks(p.value_dim, p.scan_block), dim(p.value_heads), dim(batch)),
        (256, 1, 1),
        smem,
    )
}

/// Whether the blocks of a head in `delta_rule_cp_scan_out_` exchange row sums (the gated norm
/// over several blocks a head).
fn cp_scan_out_exchanges(p: &DeltaRuleParams) -> bool {
    p.gated_norm.is_some() && p.value_dim > p.scan_block
}

/// Whether the blocks of a head in `delta_rule_cp_scan_out_` with `exchange` share row sums
/// through the workspace (the module's prep then zeroes the counts).
pub(super) fn cp_scan_out_through_workspace(p: &DeltaRuleParams, exchange: ScanOutExchange) -> bool {
    exchange == ScanOutExchange::Global && cp_scan_out_exchanges(p)
}

/// Whether `delta_rule_cp_scan_out_` with `exchange` runs as clusters, which needs sm_90.
pub fn delta_rule_cp_scan_out_clusters(p: &DeltaRuleParams, exchange: ScanOutExchange) -> bool {
    exchange == ScanOutExchange::Cluster && cp_scan_out_exchanges(p)
}

/// Whether `delta_rule_cp_scan_out_` with `exchange` may be launched on a device of `sms`
/// streaming multiprocessors: always, unless its blocks wait on each other through global memory
/// ([`ScanOutExchange::Global`]), which needs a head's Dv / SBV blocks resident at once: at
/// least that many SMs (a block takes over half an SM's shared memory). The blocks take their
/// places by ticket, so any larger grid runs in waves without deadlock.
pub fn delta_rule_cp_scan_out_runs_on(p: &DeltaRuleParams, exchange: ScanOutExchange, sms: usize) -> bool {
    exchange == ScanOutExchange::Cluster || !cp_scan_out_exchanges(p) || p.value_dim / p.scan_block.max(1) <= sms
}

/// The scan-and-output entry's text (`@ARGS@` etc. substituted by the module).
pub(super) fn cp_scan_out_entry(p: &DeltaRuleParams, exchange: ScanOutExchange) -> String {
    let global = cp_scan_out_through_workspace(p, exchange);
    let clusters = delta_rule_cp_scan_out_clusters(p, exchange);
    let nbuf = cp_scan_out_buffers(p).unwrap_or(2);
    let names = arg_names(&(args(p) + CP_WS_ARG));
    let (gate_stage, partials, epilogue, keep_gate) = match p.gated_norm {
        None => ("", String::new(), CP_SO_STORE.to_string(), ""),
        Some(n) => {
            let x = if global {
                SO_EXCHANGE_GLOBAL
            } else {
                SO_EXCHANGE_CLUSTER
            };
            (
                CP_SO_GATE_STAGE,
                CP_SO_NORM_PARTIALS
                    .replace("@SLOT@", x.slot)
                    .replace("@PUT@", x.put)
                    .replace("@DONE@", x.done),
                CP_SO_NORM_STORE
                    .replace("@WAIT@", x.wait)
                    .replace("@SUM@", x.sum)
                    .replace("@ACT@", &gate_act(n.act, "zj")),
                CP_SO_KEEP_GATE,
            )
        }
    };
    let body = CLUSTER_ASYNC_HELPERS.to_string()
        + &CP_SCAN_OUT
            .replace("@NORM@", if p.gated_norm.is_some() { "true" } else { "false" })
            .replace("@CLUSTER@", if clusters { "true" } else { "false" })
            .replace("@PLACE@", if global { CP_SO_TICKET } else { CP_SO_PLACE })
            .replace("@GATE_STAGE@", gate_stage)
            .replace("@NORM_PARTIALS@", &partials)
            .replace("@O_EPILOGUE@", &epilogue)
            .replace("@KEEP_GATE@", keep_gate);
    let call = format!(
        "    delta_rule_cp_scan_out_body_@HASH@<{}, {nbuf}>({names});",
        p.scan_block
    );
    let entry = if clusters {
        // Clusters exist from sm_90; below it the entry traps (a module's entries load by name).
        format!(
            "#if __CUDA_ARCH__ >= 900\nextern \"C\" __global__ void __cluster_dims__({cl}, 1, 1) \
             __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n{{\n{call}\n}}\n#else\n\
             extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n\
             {{\n    __trap();\n}}\n#endif\n",
            cl = p.value_dim / p.scan_block,
        )
    } else {
        format!("extern \"C\" __global__ void __launch_bounds__(256) delta_rule_cp_scan_out_@HASH@(\n    @ARGS@)\n{{\n{call}\n}}\n")
    };
    body + &entry
}

/// The scan and the output pass in one (`delta_rule_chunk_parallel_with_scan_out`).
const CP_SCAN_OUT: &str = include_str!("delta_rule_cp_scan_out.cu");

/// `delta_rule_cp_scan_out_`'s place of a block in the grid (`j0`, `hv`, `b`): blockIdx's.
const CP_SO_PLACE: &str = "    const int j0 = blockIdx.x * SBV;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
";

/// [`ScanOutExchange::Global`]'s place of a block: thread 0 takes the launch's next ticket
/// (modulo the grid, so that launches without the prep that zeroes the counter between them
/// still take every place once) and passes it on through `Pb`; places are numbered as blockIdx
/// (x fastest: a head's blocks take consecutive tickets).
const CP_SO_TICKET: &str = "    if (tid == 0)
        *reinterpret_cast<unsigned*>(Pb) =
            atomicAdd(dcp_so_ticket<C, DK, DV, NCL>(ws), 1u) % (gridDim.x * gridDim.y * gridDim.z);
    __syncthreads();
    const unsigned place = *reinterpret_cast<volatile unsigned*>(Pb);
    const int j0 = (int)(place % NCL) * SBV;
    const int hv = (int)(place / NCL % HV);
    const long b = place / (NCL * HV);
";

/// `delta_rule_cp_scan_out_`'s store of o without the norm: chunk `ce`'s fragments into Os.
const CP_SO_STORE: &str = "        (void)ce;
#pragma unroll
        for (int n = 0; n < NPW; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&Os[(16 * mr + r4 + 8 * h) * SP + 8 * (NPW * nh + n) + c4], ao_prev[n][2 * h],
                        ao_prev[n][2 * h + 1]);
";

/// `delta_rule_cp_scan_out_`'s gate values of this chunk's o, kept for its epilogue in the next
/// chunk (whose copies reuse the buffer).
const CP_SO_KEEP_GATE: &str = "#pragma unroll
        for (int n = 0; n < NPW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                z_prev[n][e] = bf2f(Z[(16 * mr + r4 + 8 * (e >> 1)) * SP + 8 * (NPW * nh + n) + c4 + (e & 1)]);
";

/// `delta_rule_cp_scan_out_`'s gate rows (the block's columns of the chunk's rows), staged with
/// the chunk's other operands.
const CP_SO_GATE_STAGE: &str = "        dtc_stage<bf16, C, SBV, NT>(Zb + p * C * SP, SP, gate + (b * T + c * C) * gate_stride + hv * DV + j0,
                                    gate_stride, min(C, T - c * C),
                                    (reinterpret_cast<unsigned long long>(gate) & 15) == 0 && gate_stride % 8 == 0, tid);
";

/// `delta_rule_cp_scan_out_`'s partial sums of o^2 for the gated norm, before the state update:
/// a row's over the four lanes of its quad (a fixed butterfly), into the chunk's slot of this
/// block and column half, as the exchange says ([`SoExchangeText`]).
const CP_SO_NORM_PARTIALS: &str = "        {
@SLOT@#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float ss = 0.0f;
#pragma unroll
                for (int n = 0; n < NPW; ++n)
                    ss += ao[n][2 * h] * ao[n][2 * h] + ao[n][2 * h + 1] * ao[n][2 * h + 1];
                ss += __shfl_xor_sync(0xffffffffu, ss, 1);
                ss += __shfl_xor_sync(0xffffffffu, ss, 2);
                if ((lane & 3) == 0) {
@PUT@                }
            }
@DONE@        }
";

/// `delta_rule_cp_scan_out_`'s gated-norm store of chunk `ce`: once the exchange has every
/// block's partial sums of a row, their total (in a fixed order, the same in every block), then
/// o rsqrt(mean(o^2) + eps) w act(gate) into Os.
const CP_SO_NORM_STORE: &str = "@WAIT@#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 16 * mr + r4 + 8 * h;
            float tot = 0.0f;
#pragma unroll
            for (int r = 0; r < 2 * NCL; ++r) tot += @SUM@;
            const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
#pragma unroll
            for (int n = 0; n < NPW; ++n) {
                const int col = 8 * (NPW * nh + n) + c4;
                float y[2];
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const float zj = z_prev[n][2 * h + x];
                    y[x] = ao_prev[n][2 * h + x] * rn * norm_w[j0 + col + x] * @ACT@;
                }
                dtc_st2(&Os[t * SP + col], y[0], y[1]);
            }
        }
";

/// How an exchange fills [`CP_SO_NORM_PARTIALS`] (`slot`: the pointer `R` to this block's
/// sums of chunk c; `put`: a quad's sum `ss` of row `16 mr + r4 + 8 h` to it; `done`: after
/// the warp's) and [`CP_SO_NORM_STORE`] (`wait`: until chunk ce's sums are all in; `sum`: the
/// sum of slot r, row t).
struct SoExchangeText {
    slot: &'static str,
    put: &'static str,
    done: &'static str,
    wait: &'static str,
    sum: &'static str,
}

/// Into every block of the cluster with asynchronous stores completing on the receiver's
/// `Pb[c & 3]` (one block a head: its own shared memory, read after the last two barriers).
const SO_EXCHANGE_CLUSTER: SoExchangeText = SoExchangeText {
    slot: "            float* R = Rs + ((c & 3) * NCL * 2 + 2 * (int)blockIdx.x + nh) * C;
            if (NCL > 1 && tid == 0) mbar_expect_tx(Pb + (c & 3), NCL * 2 * C * 4); /* chunk c - 4's phase is over */
",
    put: "                    if constexpr (NCL > 1) {
                        cluster_put_async<NCL>(Pb + (c & 3), R + 16 * mr + r4 + 8 * h, ss);
                    } else {
                        R[16 * mr + r4 + 8 * h] = ss;
                    }
",
    done: "",
    wait:
        "        if constexpr (NCL > 1) mbar_wait_cluster(Pb + (ce & 3), (ce >> 2) & 1); /* every block's sums are in */
        const float* R = Rs + (ce & 3) * NCL * 2 * C;
",
    sum: "R[r * C + t]",
};

/// [`ScanOutExchange::Global`]: into the chunk's slot in the workspace, then each warp adds one
/// to the chunk's count; a reader's lane 0 waits for NCL · NW, then its warp reads every
/// block's sums past L1 (written on other SMs).
const SO_EXCHANGE_GLOBAL: SoExchangeText = SoExchangeText {
    slot: "            float* R = dcp_so_sums<DK, DV>(ws, bh * NC + c) + (2 * (j0 / SBV) + nh) * C;\n",
    put: "                    R[16 * mr + r4 + 8 * h] = ss;\n",
    done: "            __syncwarp();
            if (lane == 0) {
                __threadfence(); /* the warp's sums are visible before its count */
                atomicAdd(dcp_so_count<C, DK, DV, NCL>(ws, bh * NC + c), 1u);
            }
",
    wait: "        const float* Rg = dcp_so_sums<DK, DV>(ws, bh * NC + ce);
        if (lane == 0) dcp_so_wait(dcp_so_count<C, DK, DV, NCL>(ws, bh * NC + ce), NCL * NW);
        __syncwarp();
",
    sum: "__ldcg(Rg + r * C + t)",
};

/// [`ScanOutExchange::Global`]'s helpers: where a chunk's row sums and count live in the
/// workspace (the region of the state copies, `hs`, which the one launch does not use), and the
/// wait for a count.
pub(super) const CP_SO_GLOBAL_HELPERS: &str = "#ifndef MODELC_DELTA_CP_SO_GLOBAL
#define MODELC_DELTA_CP_SO_GLOBAL
/* chunk ci's row sums of o^2, [NCL][2][C] f32, at the start of its state copy's region (32 KB
 * at Dk = Dv = 128) */
template <int DK, int DV>
__device__ __forceinline__ float* dcp_so_sums(const DcpWs& ws, long ci) {
    return reinterpret_cast<float*>(ws.hs + ci * DK * DV);
}
/* chunk ci's count of warps whose sums are in, after the sums (zeroed by the prep) */
template <int C, int DK, int DV, int NCL>
__device__ __forceinline__ unsigned* dcp_so_count(const DcpWs& ws, long ci) {
    static_assert(NCL * 2 * C + 2 <= DK * DV / 2, \"the sums, the count and the ticket fit the region\");
    return reinterpret_cast<unsigned*>(dcp_so_sums<DK, DV>(ws, ci) + NCL * 2 * C);
}
/* the launch's ticket counter (blocks take their place in the grid in the order they start),
 * after chunk 0's count (zeroed by the prep) */
template <int C, int DK, int DV, int NCL>
__device__ __forceinline__ unsigned* dcp_so_ticket(const DcpWs& ws) {
    return dcp_so_count<C, DK, DV, NCL>(ws, 0) + 1;
}
/* Spins until *count reaches want (acquire, GPU scope); traps after about 2^31 cycles, so a
 * launch whose blocks are not all resident fails instead of hanging. */
__device__ __forceinline__ void dcp_so_wait(const unsigned* count, unsigned want) {
    const long long t0 = clock64();
    for (;;) {
        unsigned v;
        asm volatile(\"ld.acquire.gpu.global.u32 %0, [%1];\" : \"=r\"(v) : \"l\"(count) : \"memory\");
        if (v >= want) return;
        if (clock64() - t0 > (1ll << 31)) __trap();
        __nanosleep(64);
    }
}
#endif
";

/// The prep's last store, after which [`ScanOutExchange::Global`]'s module has thread 0 zero
/// the chunk's count (the prep runs to completion before the one launch starts).
pub(super) const CP_ANCHOR_PREP_LAST_STORE: &str =
    "    dcp_store_rows<C, DV, NT>(ws.u + ci * C * DV, DV, Ts, VP, C, tid);\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan and the output pass in one: which exchange each form emits, what the module's
    /// prep does for the global one, and where the launch may run.
    #[test]
    fn scan_out_forms_emit_their_exchange() {
        let silu = GatedNormEpilogue {
            eps: 1e-5,
            act: GateActivation::Silu,
        };
        let kda = DeltaRuleParams {
            scan_block: 32,
            ..DeltaRuleParams::new(32, 32, 128, 128, DecayGate::PerChannel).with_gated_norm(silu)
        };
        assert!(delta_rule_cp_scan_out_supported(&kda));
        let cluster = delta_rule_chunk_parallel_with_scan_out(&kda, ScanOutExchange::Cluster).unwrap();
        let global = delta_rule_chunk_parallel_with_scan_out(&kda, ScanOutExchange::Global).unwrap();
        for m in [&cluster, &global] {
            assert!(m.entries.last().unwrap().starts_with("delta_rule_cp_scan_out_"));
        }
        assert!(cluster
            .source
            .contains("__cluster_dims__(4, 1, 1) __launch_bounds__(256) delta_rule_cp_scan_out_"));
        assert!(cluster.source.contains("cluster_put_async<NCL>") && !cluster.source.contains("dcp_so_wait("));
        assert!(!global.source.contains("__cluster_dims__(4"));
        assert!(
            global.source.contains("dcp_so_wait(dcp_so_count<C, DK, DV, NCL>")
                && !global.source.contains("cluster_put_async<NCL>(")
        );
        // The global form's prep zeroes each chunk's count after its last store.
        assert!(global
            .source
            .contains("if (tid == 0) *dcp_so_count<C, DK, DV, 4>(ws, ci) = 0u;"));
        assert!(!cluster.source.contains("*dcp_so_count<"));
        // ... and the ticket counter once, with chunk 0; the global form's blocks take their
        // places from it, the cluster form's from blockIdx.
        assert!(global
            .source
            .contains("if (tid == 0 && ci == 0) *dcp_so_ticket<C, DK, DV, 4>(ws) = 0u;"));
        assert!(global
            .source
            .contains("atomicAdd(dcp_so_ticket<C, DK, DV, NCL>(ws), 1u)"));
        assert!(!cluster.source.contains("dcp_so_ticket"));
        // Without the norm there is nothing to exchange: neither form's code.
        let plain = DeltaRuleParams {
            gated_norm: None,
            ..kda
        };
        let m = delta_rule_chunk_parallel_with_scan_out(&plain, ScanOutExchange::Global).unwrap();
        assert!(!m.source.contains("__cluster_dims__(4") && !m.source.contains("dcp_so_wait(dcp_so_count"));
        // Two buffers at SBV 32 with the norm (three do not fit), three without.
        assert_eq!(cp_scan_out_buffers(&kda), Some(2));
        assert_eq!(cp_scan_out_buffers(&plain), Some(3));
        assert!(delta_rule_cp_scan_out_launch(&kda, 1).smem <= DELTA_MAX_SMEM);
        // The global exchange needs a head's four blocks resident at once, whatever the grid.
        assert!(delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Global, 4));
        assert!(!delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Global, 3));
        assert!(delta_rule_cp_scan_out_runs_on(&kda, ScanOutExchange::Cluster, 3));
        assert!(delta_rule_cp_scan_out_runs_on(&plain, ScanOutExchange::Global, 1));
        // One block a head needs no exchange; a head of Dv 128 in SBV 128 does not fit a block.
        let wide = DeltaRuleParams { scan_block: 128, ..kda };
        assert!(!delta_rule_cp_scan_out_supported(&wide));
        assert!(delta_rule_chunk_parallel_with_scan_out(&wide, ScanOutExchange::Cluster).is_err());
    }

    /// The scan with the output at another width than the module's scan: its entry's blocks,
    /// and the prep's counts where that width's blocks put them.
    #[test]
    fn scan_out_at_another_width() {
        let p = DeltaRuleParams::new(16, 16, 128, 128, DecayGate::PerChannel).with_gated_norm(SILU);
        assert_eq!(p.scan_block, 16, "H16: 128 scan blocks at 16 columns");
        let m = delta_rule_chunk_parallel_with_scan_out_at(&p, ScanOutExchange::Global, 32).unwrap();
        assert!(m.entries.last().unwrap().starts_with("delta_rule_cp_scan_out_"));
        assert!(m.source.contains("delta_rule_cp_scan_body_") && m.source.contains("delta_rule_cp_scan_out_body_"));
        let hash = &m.entries[0]["delta_rule_cp_prep_".len()..];
        assert!(m.source.contains(&format!("delta_rule_cp_scan_out_body_{hash}<32, ")));
        assert!(m.source.contains(&format!("delta_rule_cp_scan_body_{hash}<16, false>")));
        assert!(m.source.contains("*dcp_so_count<C, DK, DV, 4>(ws, ci) = 0u;"));
        assert!(m
            .source
            .contains("(blocks of 32 value columns; row sums through the workspace"));
        // The same module at the scan's own width is the plain constructor's.
        let own = delta_rule_chunk_parallel_with_scan_out_at(&p, ScanOutExchange::Global, 16).unwrap();
        assert_eq!(
            own,
            delta_rule_chunk_parallel_with_scan_out(&p, ScanOutExchange::Global).unwrap()
        );
        assert!(own.source.contains("*dcp_so_count<C, DK, DV, 8>(ws, ci) = 0u;"));
        // A width the entry cannot take: 128 columns do not fit a block; 48 does not divide Dv.
        for w in [128, 48] {
            let e = delta_rule_chunk_parallel_with_scan_out_at(&p, ScanOutExchange::Global, w).unwrap_err();
            assert!(e.reason.contains(&format!("(got {w})")), "{e}");
        }
    }
}
