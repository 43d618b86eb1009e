//! One KDA layer's decode step in one kernel (apriel2.md §2.5): the causal conv of q, k and v,
//! the low-rank decay gate `g = −exp(A_log)·softplus(f_a·f_bᵀ + dt_bias)`, `β = sigmoid(b)`, the
//! delta-rule recurrence and the gated RMSNorm with the low-rank gate `g_a·g_bᵀ`.
//!
//! At decode a KDA layer otherwise launches five small kernels after its input projection
//! (conv1d, the `f_b` GEMV, the decay gate, the `g_b` GEMV, the recurrence), each a few
//! microseconds of ramp-up and drain for almost no work (measured on H200: 18.9 µs of isolated
//! kernel time per layer, against about 5 for this kernel).
//!
//! Layout: grid (H, B), one block per (head, sequence) of `NT = 4·W` threads, `W` the larger of
//! Dk and Dv rounded up to a warp. Thread `tid` serves
//! - value column `j = tid / 4` (when `j < Dv`), together with the three lanes beside it: lane
//!   `qd = tid % 4` keeps the state rows `d = 4·i + qd` of column j in registers, and the
//!   column's sums over d are two `shfl_xor` steps;
//! - the decay of key channel `j` (when `j < Dk`) and the gate of value column `j`: the four
//!   lanes each take a quarter of the rank;
//! - conv channel `tid` (when `tid < 2·Dk + Dv`): q channels first, then k, then v.
//!
//! Everything that no kernel of the same decode step writes (the recurrent and conv states,
//! every weight) is loaded before `griddepcontrol.wait`, so it streams while the projection
//! GEMV before this kernel drains. That is safe because every kernel of a program waits for its
//! predecessor before it lets its dependents launch, so when this kernel starts, everything
//! before the projection GEMV has finished (the states were last written by this layer's kernel
//! one step earlier).
//!
//! Rounding follows the unfused kernels, so the two forms agree to f32 rounding: the conv
//! output, the `f_b` and `g_b` products are rounded to bf16 (the unfused kernels store them as
//! bf16), the decay and β stay f32, the output is normalised in f32 and stored as bf16.
//!
//! At batch 1 that grid has H blocks (hybrid-1b: 16 of 132 SMs), each streaming its head's whole
//! state and low-rank rows. [`kda_decode_step_cluster`] (sm_90) splits each head's value columns
//! over a thread-block cluster instead, sharing q, k, the decays and the norms' partial sums
//! through distributed shared memory; codegen makes it the launch variant for Hopper.

use super::delta_rule::gate_act;
use super::{
    check, f32_lit, finish, KernelSource, TemplateError, CLUSTER_ASYNC_HELPERS, CLUSTER_HELPERS, HASH, MBAR_PRELUDE,
    MMA_PRELUDE, PRELUDE,
};
use crate::codegen::kernel::PDL_DEFINITION;
use crate::spec::GateActivation;

/// Compile-time constants of the KDA decode step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdaDecodeStepParams {
    /// Heads H (key heads = value heads).
    pub heads: usize,
    /// Dk: a multiple of 4, at most 128.
    pub key_dim: usize,
    /// Dv: at most 128.
    pub value_dim: usize,
    /// Conv taps K (1..=16), whether the conv adds a bias and applies SiLU.
    pub conv_kernel: usize,
    pub conv_bias: bool,
    pub conv_silu: bool,
    /// Channels of the conv the q, k and v channels belong to, and where each starts in it
    /// (head h's q channels are `q_channel + h·Dk ..`).
    pub conv_channels: usize,
    pub q_channel: usize,
    pub k_channel: usize,
    pub v_channel: usize,
    /// Rank of `f_a`/`f_b` and of `g_a`/`g_b`: multiples of 8, at most `NT`.
    pub decay_rank: usize,
    pub gate_rank: usize,
    /// L2-normalise q and k (eps 1e-6), then multiply q by `scale`.
    pub qk_l2norm: bool,
    pub scale: f32,
    /// The gated RMSNorm.
    pub norm_eps: f32,
    pub norm_act: GateActivation,
}

impl KdaDecodeStepParams {
    /// `W`: the larger of Dk and Dv, rounded up to a warp.
    fn width(&self) -> usize {
        self.key_dim.max(self.value_dim).div_ceil(32) * 32
    }

    /// Threads per block.
    pub fn threads(&self) -> usize {
        4 * self.width()
    }
}

/// Whether [`kda_decode_step`] takes these shapes (otherwise codegen keeps the unfused kernels).
pub fn kda_decode_step_supported(p: &KdaDecodeStepParams) -> bool {
    validate(p).is_ok()
}

fn validate(p: &KdaDecodeStepParams) -> Result<(), TemplateError> {
    const T: &str = "kda_decode_step";
    check(T, p.heads >= 1, || "no heads".into())?;
    check(T, p.key_dim.is_multiple_of(4) && (4..=128).contains(&p.key_dim), || {
        format!("Dk {} is not a multiple of 4 in 4..=128", p.key_dim)
    })?;
    check(T, (1..=128).contains(&p.value_dim), || {
        format!("Dv {} is outside 1..=128", p.value_dim)
    })?;
    check(T, (1..=16).contains(&p.conv_kernel), || {
        format!("conv kernel {} is outside 1..=16", p.conv_kernel)
    })?;
    let nt = p.threads();
    for (what, r) in [("decay", p.decay_rank), ("gate", p.gate_rank)] {
        check(T, r.is_multiple_of(8) && r >= 8 && r <= nt, || {
            format!("{what} rank {r} is not a multiple of 8 in 8..={nt}")
        })?;
    }
    let h = p.heads;
    let fits = |start: usize, width: usize| start + h * width <= p.conv_channels;
    check(
        T,
        fits(p.q_channel, p.key_dim) && fits(p.k_channel, p.key_dim) && fits(p.v_channel, p.value_dim),
        || format!("q/k/v channels run past the conv's {} channels", p.conv_channels),
    )
}

/// The chunk type a lane reads a low-rank weight's row in, and its bf16 count: 16 bytes when
/// the four lanes of a column can each take whole chunks of the rank (a multiple of 32), else 4.
fn chunk(rank: usize) -> (&'static str, usize) {
    if rank.is_multiple_of(32) {
        ("uint4", 8)
    } else {
        ("unsigned", 2)
    }
}

/// Helpers of both forms of the kernel, behind an include guard (templates concatenate).
const KDA_STEP_HELPERS: &str = r#"#ifndef MODELC_KDA_STEP_HELPERS
#define MODELC_KDA_STEP_HELPERS
/* Rounds to bf16 and back: the unfused kernels store these values as bf16. */
__device__ __forceinline__ float bf16_round(float x) { return bf2f(f2bf(x)); }
/* Sum over the four lanes of one column (lanes 4j..4j+3). */
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}
/* Rows of the low-rank weights are read in chunks (16 bytes when the rank is a multiple of
 * 32, else 4), lane qd of a column taking chunks qd, qd + 4, ...: the four lanes of a row read
 * adjacent chunks together, so a warp's load uses whole sectors. */
__device__ __forceinline__ void unpack(const uint4 v, float (&f)[8]) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) { f[2 * i] = __uint_as_float(u[i] << 16); f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u); }
}
__device__ __forceinline__ void unpack(const unsigned v, float (&f)[2]) {
    f[0] = __uint_as_float(v << 16);
    f[1] = __uint_as_float(v & 0xffff0000u);
}
template <typename Chunk, int N>
__device__ __forceinline__ void load_chunks(Chunk (&w)[N], const bf16* row, int qd, bool on) {
    const Chunk* p = reinterpret_cast<const Chunk*>(row);
#pragma unroll
    for (int c = 0; c < N; ++c) w[c] = on ? p[c * 4 + qd] : Chunk{};
}
/* This lane's part of a row times the f32 vector xs (in shared memory). */
template <int E, typename Chunk, int N>
__device__ __forceinline__ float chunk_dot(const Chunk (&w)[N], const float* xs, int qd) {
    float acc = 0.0f;
#pragma unroll
    for (int c = 0; c < N; ++c) {
        float f[E];
        unpack(w[c], f);
        const float* x = xs + (c * 4 + qd) * E;
#pragma unroll
        for (int e = 0; e < E; ++e) acc = fmaf(f[e], x[e], acc);
    }
    return acc;
}
#endif
"#;

/// Both forms' conv set-up for the thread's conv channel `cidx` (−1: none): its taps, bias and
/// the state's window, all loaded before the wait (nothing in this step writes them).
const CONV_LOAD: &str = r#"    float cw[K], win[K];
    float cbias = 0.0f;
    float* cst = cidx >= 0 ? conv_state + (b * C + cidx) * (K - 1) : nullptr;
    if (cidx >= 0) {
#pragma unroll
        for (int i = 0; i < K; ++i) cw[i] = bf2f(conv_w[(long)cidx * K + i]);
#pragma unroll
        for (int i = 0; i < K - 1; ++i) win[i] = cst[i];
        if (CONV_BIAS) cbias = bf2f(conv_b[cidx]);
    }
"#;

/// The delta-rule step on one lane's state rows `d = 4·i + lane_row` of value column `col`,
/// as both forms emit it: decay the rows, `kv = Σ s·k` over the column's lanes (`sum`), the
/// update `u`, `s += k·u`, and the column's output `ov = Σ s·q · qscale`.
fn recurrence(lane_row: &str, col: &str, sum: &str) -> String {
    format!(
        r#"        float kv = 0.0f;
#pragma unroll
        for (int i = 0; i < KPL; ++i) {{
            const int d = 4 * i + {lane_row};
            s[i] *= decay[d];
            kv = fmaf(s[i], ks[d], kv);
        }}
        kv = {sum}(kv);
        const float u = column ? beta * (vs[{col}] - kv * kscale) * kscale : 0.0f;
        float oj = 0.0f;
#pragma unroll
        for (int i = 0; i < KPL; ++i) {{
            const int d = 4 * i + {lane_row};
            s[i] = fmaf(ks[d], u, s[i]);
            oj = fmaf(s[i], qs[d], oj);
        }}
        const float ov = {sum}(oj) * qscale;
"#
    )
}

/// Both forms' write-back of the final recurrent state (this lane's rows `4·i + lane_row` of
/// its column), emitted right after the last token's recurrence: the stores drain while the
/// gated norm and the output run, since the next kernel's dependent-launch wait ends only when
/// this grid's stores have.
fn state_write_back(lane_row: &str) -> String {
    format!(
        r#"        if (t == T - 1 && column) {{
#pragma unroll
            for (int i = 0; i < KPL; ++i) sp[(long)(4 * i + {lane_row}) * DV] = s[i];
        }}
"#
    )
}

/// Both forms' write-back of the conv state (this thread's window), emitted right after the
/// last token's conv, for the reason [`state_write_back`] gives.
const CONV_WRITE_BACK: &str = r#"            if (t == T - 1) {
#pragma unroll
                for (int i = 0; i < K - 1; ++i) cst[i] = win[i];
            }
"#;

/// Emits `kda_decode_step_<hash>`.
///
/// Kernel arguments, in order:
/// `(const bf16* x, int x_stride, const bf16* conv_w, const bf16* conv_b, float* conv_state,
///   const bf16* fa, int fa_stride, const bf16* fb, const float* a_log, const float* dt_bias,
///   const bf16* braw, int braw_stride, const bf16* ga, int ga_stride, const bf16* gb,
///   const float* norm_w, float* state, bf16* o, int o_stride, int T)`:
/// - x: the conv's input rows `[B, T, C]`; conv_w `[C, K]`; conv_b `[C]` (null without bias);
///   conv_state `[B, C, K−1]` f32, oldest first, updated in place;
/// - fa `[B, T, Rf]`, fb `[H·Dk, Rf]`, a_log `[H]`, dt_bias `[H·Dk]`; braw `[B, T, H]` (β's
///   logits); ga `[B, T, Rg]`, gb `[H·Dv, Rg]`; norm_w `[Dv]`;
/// - state `[B, H, Dk, Dv]` f32, updated in place; o `[B, T, H·Dv]`.
///
/// Launch: grid (H, B), [`KdaDecodeStepParams::threads`] threads, no dynamic shared memory.
pub fn kda_decode_step(p: &KdaDecodeStepParams) -> Result<KernelSource, TemplateError> {
    validate(p)?;
    let body = format!(
        r#"/*
 * kda_decode_step_{HASH}: one KDA layer's decode step after its input projection.
 *   H = {h}, Dk = {dk}, Dv = {dv}, conv K = {kk} (bias = {cb}, {conv_name}), decay rank {rf}, gate rank {rg},
 *   qk l2norm = {l2}, scale = {scale}.
 *   q, k, v = conv(x) (channels {q0}.., {k0}.., {v0}.. of the conv's {c}); conv state updated.
 *   g = -exp(a_log[h]) * softplus(bf16(fa . fb[h*Dk + d]) + dt_bias[h*Dk + d]); beta = sigmoid(braw[h]).
 *   S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
 *   o <- o * rsqrt(mean_head(o^2) + {eps}) * norm_w * {act}, z = bf16(ga . gb[h*Dv + j]).
 * Grid (H, B), block {nt}: thread tid serves value column / key channel tid/4 (lane tid%4 keeps
 *   state rows 4i + tid%4) and conv channel tid. States and weights load before the PDL wait.
 */
{PRELUDE}
{PDL_DEFINITION}
{KDA_STEP_HELPERS}
extern "C" __global__ void __launch_bounds__({nt}) kda_decode_step_{HASH}(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ conv_w, const bf16* __restrict__ conv_b, float* conv_state,
    const bf16* __restrict__ fa, int fa_stride, const bf16* __restrict__ fb,
    const float* __restrict__ a_log, const float* __restrict__ dt_bias,
    const bf16* __restrict__ braw, int braw_stride,
    const bf16* __restrict__ ga, int ga_stride, const bf16* __restrict__ gb,
    const float* __restrict__ norm_w, float* state,
    bf16* __restrict__ o, int o_stride, int T)
{{
    constexpr int H = {h}, DK = {dk}, DV = {dv}, NT = {nt}, NWARP = NT / 32;
    constexpr int K = {kk}, C = {c}, Q0 = {q0}, K0 = {k0}, V0 = {v0};
    constexpr int RF = {rf}, RG = {rg};
    constexpr int EF = {ef}, EG = {eg};                 /* bf16 per chunk of f_b's, g_b's rows */
    constexpr int NF = RF / (4 * EF), NG = RG / (4 * EG); /* chunks per lane */
    typedef {cf} ChunkF;
    typedef {cg} ChunkG;
    constexpr int KPL = DK / 4; /* state rows per lane */
    constexpr bool L2NORM = {l2}, CONV_BIAS = {cb};
    constexpr float SCALE = {scale}, NORM_EPS = {eps};
    __shared__ float qs[DK], ks[DK], vs[DV], decay[DK], zs[DV];
    __shared__ float fas[RF], gas[RG];
    __shared__ float red[3][NWARP];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int j = tid >> 2, qd = tid & 3;
    const int h = blockIdx.x;
    const long b = blockIdx.y;
    const bool column = j < DV;  /* owns value column j (with its three neighbours) */
    const bool channel = j < DK; /* computes the decay of key channel j */

    /* --- Before the wait: states and weights (nothing earlier in this step writes them). --- */
    float s[KPL];
    float* sp = state + ((b * H + h) * (long)DK) * DV + j;
#pragma unroll
    for (int i = 0; i < KPL; ++i) s[i] = column ? sp[(long)(4 * i + qd) * DV] : 0.0f;

    /* Conv channel of this thread: q, then k, then v channels of head h. */
    const int cidx = tid < DK ? Q0 + h * DK + tid
                   : tid < 2 * DK ? K0 + h * DK + (tid - DK)
                   : tid < 2 * DK + DV ? V0 + h * DV + (tid - 2 * DK) : -1;
{conv_load}
    /* This lane's part of f_b's row for key channel j, in registers (the decay is on the
     * critical path); its part of g_b's row for value column j only goes to L2 (the gate is
     * needed last, and registers are full: 128 at 512 threads). */
    ChunkF fbw[NF];
    load_chunks(fbw, fb + (long)(h * DK + j) * RF, qd, channel);
    const bf16* gbrow = gb + (long)(h * DV + j) * RG;
    if (column) {{
#pragma unroll
        for (int c = 0; c < NG; ++c)
            asm volatile("prefetch.global.L2 [%0];" :: "l"(reinterpret_cast<const ChunkG*>(gbrow) + c * 4 + qd));
    }}
    const float neg_a = -expf(a_log[h]);
    const float dtb = channel ? dt_bias[h * DK + j] : 0.0f;
    const float nw = column ? norm_w[j] : 0.0f;

    modelc_pdl_enter(); /* the projection's rows are ready from here on */

    for (int t = 0; t < T; ++t) {{
        const long row = b * T + t;
        if (tid < RF) fas[tid] = bf2f(fa[row * fa_stride + tid]);
        if (tid < RG) gas[tid] = bf2f(ga[row * ga_stride + tid]);
        /* Conv of this thread's channel; the squares of q and k for their norms. */
        float sq = 0.0f, sk = 0.0f;
        if (cidx >= 0) {{
            win[K - 1] = bf2f(x[row * x_stride + cidx]);
            float acc = cbias;
#pragma unroll
            for (int i = 0; i < K; ++i) acc = fmaf(cw[i], win[i], acc);
#pragma unroll
            for (int i = 0; i < K - 1; ++i) win[i] = win[i + 1];
{conv_write_back}            const float y = bf16_round({conv_act});
            if (tid < DK) {{ qs[tid] = y; sq = y * y; }}
            else if (tid < 2 * DK) {{ ks[tid - DK] = y; sk = y * y; }}
            else vs[tid - 2 * DK] = y;
        }}
        sq = warp_sum(sq);
        sk = warp_sum(sk);
        if (lane == 0) {{ red[0][warp] = sq; red[1][warp] = sk; }}
        __syncthreads(); /* qs, ks, vs, fas, gas, red[0..1] */

        /* Decay of key channel j and gate of value column j: a quarter of the rank per lane. */
        const float f = quad_sum(chunk_dot<EF>(fbw, fas, qd));
        ChunkG gbw[NG];
        load_chunks(gbw, gbrow, qd, column);
        const float z = quad_sum(chunk_dot<EG>(gbw, gas, qd));
        if (qd == 0 && channel) decay[j] = expf(neg_a * softplus_f(bf16_round(f) + dtb));
        if (qd == 0 && column) zs[j] = bf16_round(z);
        float qscale = SCALE, kscale = 1.0f;
        if (L2NORM) {{
            float tq = 0.0f, tk = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) {{ tq += red[0][w]; tk += red[1][w]; }}
            qscale *= rsqrtf(tq + 1e-6f);
            kscale = rsqrtf(tk + 1e-6f);
        }}
        const float beta = 1.0f / (1.0f + expf(-bf2f(braw[row * braw_stride + h])));
        __syncthreads(); /* decay, zs */

        /* The recurrence on this lane's rows of column j. */
{recurrence}{write_back}        /* Gated RMSNorm over the head: lane qd = 0 of each column adds its square. */
        const float ss = warp_sum(qd == 0 && column ? ov * ov : 0.0f);
        if (lane == 0) red[2][warp] = ss;
        __syncthreads(); /* red[2] */
        float tot = 0.0f;
#pragma unroll
        for (int w = 0; w < NWARP; ++w) tot += red[2][w];
        const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
        if (qd == 0 && column) {{
            const float zj = zs[j];
            o[row * o_stride + h * DV + j] = f2bf(ov * rn * nw * {act});
        }}
        __syncthreads(); /* every shared array is rewritten by the next token */
    }}

}}
"#,
        h = p.heads,
        dk = p.key_dim,
        dv = p.value_dim,
        kk = p.conv_kernel,
        cb = p.conv_bias,
        c = p.conv_channels,
        q0 = p.q_channel,
        k0 = p.k_channel,
        v0 = p.v_channel,
        rf = p.decay_rank,
        rg = p.gate_rank,
        l2 = p.qk_l2norm,
        scale = f32_lit(p.scale),
        eps = f32_lit(p.norm_eps),
        act = gate_act(p.norm_act, "zj"),
        nt = p.threads(),
        ef = chunk(p.decay_rank).1,
        eg = chunk(p.gate_rank).1,
        cf = chunk(p.decay_rank).0,
        cg = chunk(p.gate_rank).0,
        conv_act = if p.conv_silu { "silu_f(acc)" } else { "acc" },
        conv_name = if p.conv_silu { "SiLU" } else { "no activation" },
        recurrence = recurrence("qd", "j", "quad_sum"),
        write_back = state_write_back("qd"),
        conv_write_back = CONV_WRITE_BACK,
        conv_load = CONV_LOAD,
    );
    Ok(finish(&[&format!("kda_decode_step_{HASH}")], body))
}

/// Cluster sizes the Hopper form of the kernel ([`kda_decode_step_cluster`]) takes.
pub const KDA_STEP_CLUSTER_SIZES: [usize; 4] = [1, 2, 4, 8];

/// The fewest value columns the codegen gives one CTA of [`kda_decode_step_cluster`]: below
/// that, the cluster's two barriers per token cost more than the split saves.
pub const KDA_STEP_MIN_CLUSTER_COLUMNS: usize = 16;

/// Value columns / key channels per CTA and threads per CTA of [`kda_decode_step_cluster`]
/// with clusters of `cluster` CTAs: `32·max(⌈Dv/C / 8⌉, ⌈Dk/C / 8⌉, ⌈(2·Dk/C + Dv/C) / 32⌉)`
/// (eight state columns per warp; four lanes per low-rank row; one thread per conv channel).
pub fn kda_decode_step_cluster_threads(p: &KdaDecodeStepParams, cluster: usize) -> usize {
    let (vc, kc) = (p.value_dim / cluster.max(1), p.key_dim / cluster.max(1));
    32 * vc
        .div_ceil(8)
        .max(kc.div_ceil(8))
        .max((2 * kc + vc).div_ceil(32))
        .max(1)
}

/// The cluster size the codegen uses for a KDA layer on Hopper: the largest of 8, 4, 2 that
/// divides Dk and Dv and leaves each CTA at least [`KDA_STEP_MIN_CLUSTER_COLUMNS`] value columns
/// (hybrid-1b, Dv = 128: 8); `None` keeps the single-block kernel.
pub fn kda_decode_step_cluster_size(p: &KdaDecodeStepParams) -> Option<usize> {
    [8, 4, 2]
        .into_iter()
        .find(|&c| p.value_dim / c >= KDA_STEP_MIN_CLUSTER_COLUMNS && validate_cluster(p, c).is_ok())
}

fn validate_cluster(p: &KdaDecodeStepParams, cluster: usize) -> Result<(), TemplateError> {
    const T: &str = "kda_decode_step_cluster";
    validate(p).map_err(|e| TemplateError { template: T, ..e })?;
    check(T, KDA_STEP_CLUSTER_SIZES.contains(&cluster), || {
        format!("cluster size {cluster} is not one of {KDA_STEP_CLUSTER_SIZES:?}")
    })?;
    check(
        T,
        p.key_dim.is_multiple_of(cluster) && p.value_dim.is_multiple_of(cluster),
        || {
            format!(
                "cluster size {cluster} does not divide Dk {} and Dv {}",
                p.key_dim, p.value_dim
            )
        },
    )?;
    let (vc, kc) = (p.value_dim / cluster, p.key_dim / cluster);
    check(T, vc <= 64 && kc <= 64, || {
        format!("{vc} value columns and {kc} key channels per CTA: at most 64 each")
    })
}

/// The cluster form's own helper, behind its own include guard.
const KDA_CLUSTER_HELPERS: &str = r#"#ifndef MODELC_KDA_CLUSTER_HELPERS
#define MODELC_KDA_CLUSTER_HELPERS
/* Sum over the four lanes of one state column (lanes l, l ^ 8, l ^ 16, l ^ 24). */
__device__ __forceinline__ float column_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 8);
    x += __shfl_xor_sync(0xffffffffu, x, 16);
    return x;
}
#endif
"#;

/// How the CTAs of [`kda_decode_step_cluster_with`] hand each other a token's q, k, decays and
/// partial sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterExchange {
    /// Remote shared-memory stores, then a cluster barrier (release / acquire), twice a token:
    /// the form programs run.
    Barriers,
    /// Asynchronous remote stores (`st.async`) that complete on an mbarrier in the receiving
    /// CTA, two mbarriers a token, double-buffered by token parity; no cluster barrier inside
    /// the token loop. In the decode loop's profile (H100, 2026-12-07) the two barriers' release
    /// ("membar" stalls) held about 31% of the cluster step's stall samples. A trial:
    /// [`KDA_STEP_EXCHANGE_ENV`] makes the codegen emit it.
    AsyncStores,
}

/// Set to `async`: the codegen emits the KDA cluster step with [`ClusterExchange::AsyncStores`]
/// (a trial, read at compile time; any other value, or none, keeps the barriers).
pub const KDA_STEP_EXCHANGE_ENV: &str = "MODELC_KDA_STEP_EXCHANGE";

impl ClusterExchange {
    /// Both exchanges, the default first.
    pub const ALL: [ClusterExchange; 2] = [ClusterExchange::Barriers, ClusterExchange::AsyncStores];

    /// Whether the exchange runs on clusters of `cluster` CTAs: the asynchronous stores need
    /// a cluster of two or more (compute-sanitizer's memcheck rejects an `st.async` in a
    /// cluster of one, H200, 2026-12-07), the barriers take any size.
    pub fn supports(self, cluster: usize) -> bool {
        self == ClusterExchange::Barriers || cluster >= 2
    }

    /// The exchange [`KDA_STEP_EXCHANGE_ENV`] names (`Barriers` unless it is `async`).
    pub fn from_env() -> ClusterExchange {
        Self::named(std::env::var(KDA_STEP_EXCHANGE_ENV).ok().as_deref())
    }

    /// The exchange a value of [`KDA_STEP_EXCHANGE_ENV`] names: `AsyncStores` for `async`,
    /// else (any other value, or none) `Barriers`.
    fn named(value: Option<&str>) -> ClusterExchange {
        match value {
            Some("async") => ClusterExchange::AsyncStores,
            _ => ClusterExchange::Barriers,
        }
    }
}

/// Emits `kda_decode_step_cluster_<hash>`, the Hopper form of [`kda_decode_step`]: each head's
/// value columns split over a cluster of `cluster` CTAs (sm_90 and newer only), exchanging
/// through cluster barriers ([`ClusterExchange::Barriers`]).
pub fn kda_decode_step_cluster(p: &KdaDecodeStepParams, cluster: usize) -> Result<KernelSource, TemplateError> {
    kda_decode_step_cluster_with(p, cluster, ClusterExchange::Barriers)
}

/// [`kda_decode_step_cluster`] with the exchange `exchange`.
///
/// Same kernel arguments as [`kda_decode_step`]. Launch: grid (H·`cluster`, B) — the cluster
/// dimensions are compiled in (`__cluster_dims__`), so a plain launch makes the clusters —
/// [`kda_decode_step_cluster_threads`] threads, no dynamic shared memory.
///
/// CTA r of head h's cluster owns value columns `r·Dv/C ..` (their state columns, the v conv,
/// the output gate and the output) and key channels `r·Dk/C ..` (the q and k conv, the decay).
/// It writes its q, k and decays, and its partial sums for the q/k L2 norms, into the shared
/// memory of every CTA of the cluster; after a cluster barrier each CTA holds the whole head's
/// q, k and decay, runs the recurrence on its columns, and shares its part of the gated norm's
/// sum of squares the same way (a second barrier). Rounding and every formula are the single-
/// block kernel's; sums run in another order. Everything before the PDL wait is also the same:
/// the CTA's slice of the state, its conv channels, its rows of `f_b` and `g_b`.
pub fn kda_decode_step_cluster_with(
    p: &KdaDecodeStepParams,
    cluster: usize,
    exchange: ClusterExchange,
) -> Result<KernelSource, TemplateError> {
    validate_cluster(p, cluster)?;
    check("kda_decode_step_cluster", exchange.supports(cluster), || {
        format!("the {exchange:?} exchange needs clusters of at least 2 CTAs, not {cluster}")
    })?;
    let nt = kda_decode_step_cluster_threads(p, cluster);
    let x = ExchangeText::new(exchange);
    let body = format!(
        r#"/*
 * kda_decode_step_cluster_{HASH}: one KDA layer's decode step after its input projection, each
 *   head on a cluster of {cl} CTAs (sm_90: distributed shared memory).
 *   H = {h}, Dk = {dk}, Dv = {dv}, conv K = {kk} (bias = {cb}, {conv_name}), decay rank {rf}, gate rank {rg},
 *   qk l2norm = {l2}, scale = {scale}.
 *   q, k, v = conv(x) (channels {q0}.., {k0}.., {v0}.. of the conv's {c}); conv state updated.
 *   g = -exp(a_log[h]) * softplus(bf16(fa . fb[h*Dk + d]) + dt_bias[h*Dk + d]); beta = sigmoid(braw[h]).
 *   S <- Diag(exp g) S; S <- S + beta k (v - S^T k)^T; o = S^T q.
 *   o <- o * rsqrt(mean_head(o^2) + {eps}) * norm_w * {act}, z = bf16(ga . gb[h*Dv + j]).
 * Grid (H*{cl}, B), clusters ({cl}, 1, 1), block {nt}. CTA r owns value columns r*{vc}.. and key
 *   channels r*{kc}..; it writes q, k and the decays of its key channels into every CTA of the
 *   cluster. Thread tid: state column (tid%8) + 8*(tid/32), rows 4i + (tid/8)%4; conv channel
 *   tid (q, k, then v); low-rank row tid/4, lane tid%4. States and weights load before the PDL wait.
 * Exchange: {x_note}.
 */
{PRELUDE}
{PDL_DEFINITION}
{KDA_STEP_HELPERS}{CLUSTER_HELPERS}{KDA_CLUSTER_HELPERS}{x_helpers}
extern "C" __global__ void __cluster_dims__({cl}, 1, 1) __launch_bounds__({nt}) kda_decode_step_cluster_{HASH}(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ conv_w, const bf16* __restrict__ conv_b, float* conv_state,
    const bf16* __restrict__ fa, int fa_stride, const bf16* __restrict__ fb,
    const float* __restrict__ a_log, const float* __restrict__ dt_bias,
    const bf16* __restrict__ braw, int braw_stride,
    const bf16* __restrict__ ga, int ga_stride, const bf16* __restrict__ gb,
    const float* __restrict__ norm_w, float* state,
    bf16* __restrict__ o, int o_stride, int T)
{{
    constexpr int H = {h}, DK = {dk}, DV = {dv}, NT = {nt}, NWARP = NT / 32;
    constexpr int CL = {cl}, VC = DV / CL, KC = DK / CL; /* value columns, key channels per CTA */
    constexpr int NP = CL * NWARP;                      /* partial sums per cluster (one per warp) */
    constexpr int K = {kk}, C = {c}, Q0 = {q0}, K0 = {k0}, V0 = {v0};
    constexpr int RF = {rf}, RG = {rg};
    constexpr int EF = {ef}, EG = {eg};                 /* bf16 per chunk of f_b's, g_b's rows */
    constexpr int NF = RF / (4 * EF), NG = RG / (4 * EG); /* chunks per lane */
    typedef {cf} ChunkF;
    typedef {cg} ChunkG;
    constexpr int KPL = DK / 4; /* state rows per lane */
    constexpr bool L2NORM = {l2}, CONV_BIAS = {cb};
    constexpr float SCALE = {scale}, NORM_EPS = {eps};
{x_decls}    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int rank = (int)cluster_ctarank();
    const int h = blockIdx.x / CL;
    const long b = blockIdx.y;
    const int j0 = rank * VC, d0 = rank * KC;
    const int jc = (lane & 7) + 8 * warp, rl = lane >> 3; /* state column jc, rows 4i + rl */
    const int lr = tid >> 2, qd = tid & 3;                /* low-rank row lr, lane qd */
    const bool column = jc < VC;
    const bool krow = lr < KC; /* computes the decay of key channel d0 + lr */
    const bool vrow = lr < VC; /* computes the gate of value column j0 + lr */

    /* --- Before the wait: states and weights (nothing earlier in this step writes them). --- */
    float s[KPL];
    float* sp = state + ((b * H + h) * (long)DK) * DV + j0 + jc;
#pragma unroll
    for (int i = 0; i < KPL; ++i) s[i] = column ? sp[(long)(4 * i + rl) * DV] : 0.0f;

    /* Conv channel of this thread: this CTA's q, then k channels, then its v channels. */
    const int cidx = tid < KC ? Q0 + h * DK + d0 + tid
                   : tid < 2 * KC ? K0 + h * DK + d0 + (tid - KC)
                   : tid < 2 * KC + VC ? V0 + h * DV + j0 + (tid - 2 * KC) : -1;
{conv_load}
    /* This lane's part of the f_b row of key channel d0 + lr and of the g_b row of value
     * column j0 + lr, in registers. */
    ChunkF fbw[NF];
    load_chunks(fbw, fb + (long)(h * DK + d0 + lr) * RF, qd, krow);
    ChunkG gbw[NG];
    load_chunks(gbw, gb + (long)(h * DV + j0 + lr) * RG, qd, vrow);
    const float neg_a = -expf(a_log[h]);
    const float dtb = krow ? dt_bias[h * DK + d0 + lr] : 0.0f;
    const float nw = column ? norm_w[j0 + jc] : 0.0f;

    modelc_pdl_enter(); /* the projection's rows are ready from here on */
    cluster_wait();     /* every CTA of the cluster runs */

    for (int t = 0; t < T; ++t) {{
        const long row = b * T + t;
{x_loop_top}        for (int i = tid; i < RF; i += NT) fas[i] = bf2f(fa[row * fa_stride + i]);
        for (int i = tid; i < RG; i += NT) gas[i] = bf2f(ga[row * ga_stride + i]);
        const float beta = 1.0f / (1.0f + expf(-bf2f(braw[row * braw_stride + h])));
        /* Conv of this thread's channel; q and k go to every CTA, with their squares' sums. */
        float sq = 0.0f, sk = 0.0f;
        if (cidx >= 0) {{
            win[K - 1] = bf2f(x[row * x_stride + cidx]);
            float acc = cbias;
#pragma unroll
            for (int i = 0; i < K; ++i) acc = fmaf(cw[i], win[i], acc);
#pragma unroll
            for (int i = 0; i < K - 1; ++i) win[i] = win[i + 1];
{conv_write_back}            const float y = bf16_round({conv_act});
            if (tid < KC) {{ {x_put0}&qs[d0 + tid], y); sq = y * y; }}
            else if (tid < 2 * KC) {{ {x_put0}&ks[d0 + tid - KC], y); sk = y * y; }}
            else vs[tid - 2 * KC] = y;
        }}
        if (L2NORM) {{
            sq = warp_sum(sq);
            sk = warp_sum(sk);
            if (lane == 0) {{
                {x_put0}&part[0][rank * NWARP + warp], sq);
                {x_put0}&part[1][rank * NWARP + warp], sk);
            }}
        }}
        __syncthreads(); /* fas, gas */

        /* Decay of key channel d0 + lr (to every CTA) and gate of value column j0 + lr. */
        const float f = quad_sum(chunk_dot<EF>(fbw, fas, qd));
        const float z = quad_sum(chunk_dot<EG>(gbw, gas, qd));
        if (qd == 0 && krow) {x_put0}&decay[d0 + lr], expf(neg_a * softplus_f(bf16_round(f) + dtb)));
        if (qd == 0 && vrow) zs[lr] = bf16_round(z);
{x_sync1}        float qscale = SCALE, kscale = 1.0f;
        if (L2NORM) {{
            float tq = 0.0f, tk = 0.0f;
#pragma unroll
            for (int w = 0; w < NP; ++w) {{ tq += part[0][w]; tk += part[1][w]; }}
            qscale *= rsqrtf(tq + 1e-6f);
            kscale = rsqrtf(tk + 1e-6f);
        }}

        /* The recurrence on this lane's rows of column jc; the column's four lanes are lanes
         * jc%8 + 8m of the warp. */
{recurrence}{write_back}        /* Gated RMSNorm over the head: row lane 0 of each column adds its square; the CTAs'
         * partial sums go to every CTA. */
        const float ss = warp_sum(rl == 0 && column ? ov * ov : 0.0f);
        if (lane == 0) {x_put2}&part[2][rank * NWARP + warp], ss);
{x_sync2}        float tot = 0.0f;
#pragma unroll
        for (int w = 0; w < NP; ++w) tot += part[2][w];
        const float rn = rsqrtf(tot / (float)DV + NORM_EPS);
        if (rl == 0 && column) {{
            const float zj = zs[jc];
            o[row * o_stride + h * DV + j0 + jc] = f2bf(ov * rn * nw * {act});
        }}
{x_loop_end}    }}
{x_after}}}
"#,
        h = p.heads,
        dk = p.key_dim,
        dv = p.value_dim,
        cl = cluster,
        vc = p.value_dim / cluster,
        kc = p.key_dim / cluster,
        kk = p.conv_kernel,
        cb = p.conv_bias,
        c = p.conv_channels,
        q0 = p.q_channel,
        k0 = p.k_channel,
        v0 = p.v_channel,
        rf = p.decay_rank,
        rg = p.gate_rank,
        l2 = p.qk_l2norm,
        scale = f32_lit(p.scale),
        eps = f32_lit(p.norm_eps),
        act = gate_act(p.norm_act, "zj"),
        ef = chunk(p.decay_rank).1,
        eg = chunk(p.gate_rank).1,
        cf = chunk(p.decay_rank).0,
        cg = chunk(p.gate_rank).0,
        conv_act = if p.conv_silu { "silu_f(acc)" } else { "acc" },
        conv_name = if p.conv_silu { "SiLU" } else { "no activation" },
        recurrence = recurrence("rl", "jc", "column_sum"),
        write_back = state_write_back("rl"),
        conv_write_back = CONV_WRITE_BACK,
        conv_load = CONV_LOAD,
        x_note = x.note,
        x_helpers = x.helpers,
        x_decls = x.decls,
        x_loop_top = x.loop_top,
        x_put0 = x.put0,
        x_put2 = x.put2,
        x_sync1 = x.sync1,
        x_sync2 = x.sync2,
        x_loop_end = x.loop_end,
        x_after = x.after,
    );
    Ok(finish(&[&format!("kda_decode_step_cluster_{HASH}")], body))
}

/// The parts of [`kda_decode_step_cluster_with`]'s text that differ by [`ClusterExchange`].
struct ExchangeText {
    note: &'static str,
    helpers: String,
    decls: String,
    loop_top: &'static str,
    /// What a store into every CTA starts with: the token's first exchange, then part[2].
    put0: &'static str,
    put2: &'static str,
    sync1: &'static str,
    sync2: &'static str,
    loop_end: &'static str,
    after: &'static str,
}

impl ExchangeText {
    fn new(exchange: ClusterExchange) -> ExchangeText {
        match exchange {
            ClusterExchange::Barriers => ExchangeText {
                note: "remote shared-memory stores, then a cluster barrier (twice a token)",
                helpers: String::new(),
                decls: "    /* qs, ks, decay: the whole head's, written by every CTA of the cluster. */
    __shared__ float qs[DK], ks[DK], decay[DK], vs[VC], zs[VC];
    __shared__ float fas[RF], gas[RG];
    __shared__ float part[3][NP]; /* sums of q^2, k^2, o^2 by (CTA, warp) */
    cluster_arrive_relaxed(); /* this CTA runs: the cluster may write its shared memory once all have */
"
                .into(),
                loop_top: "",
                put0: "cluster_put<CL>(",
                put2: "cluster_put<CL>(",
                sync1: "        cluster_sync(); /* qs, ks, decay of the whole head, part[0..1]; vs, zs */\n",
                sync2: "        cluster_sync(); /* part[2] */\n",
                loop_end: "        /* No barrier here: what the next token writes was last read before this token's
         * second cluster barrier (qs, ks, decay, part[0..1], fas, gas, vs), or is written after
         * its __syncthreads, which follows every read of this token (zs), or is written after
         * its first cluster barrier, which follows every read of this token (part[2]). */
",
                after: "",
            },
            ClusterExchange::AsyncStores => ExchangeText {
                note: "asynchronous remote stores (st.async) completing on the receiver's mbarriers, \
                       double-buffered by token parity (no cluster barrier in the token loop)",
                helpers: format!("{MMA_PRELUDE}{MBAR_PRELUDE}{CLUSTER_ASYNC_HELPERS}"),
                decls: "    /* qs, ks, decay: the whole head's, written by every CTA of the cluster; two of
     * each, for tokens of even and odd t. */
    __shared__ float qs_buf[2][DK], ks_buf[2][DK], decay_buf[2][DK], vs[VC], zs[VC];
    __shared__ float fas[RF], gas[RG];
    __shared__ float part_buf[2][3][NP]; /* sums of q^2, k^2, o^2 by (CTA, warp) */
    /* xbar[t % 2][0]: token t's q, k, decays and part[0..1] have arrived from every CTA
     * (XBYTES0 bytes); xbar[t % 2][1]: its part[2] has (XBYTES1). One arrival each a token:
     * thread 0's expect_tx. */
    __shared__ __align__(8) unsigned long long xbar[2][2];
    /* Bytes each CTA receives a token: q, k and the decays of the whole head (and the q/k
     * norms' partial sums), then the gated norm's partial sums. */
    constexpr unsigned XBYTES0 = 4 * (3 * DK + (L2NORM ? 2 * NP : 0)), XBYTES1 = 4 * NP;
    if (threadIdx.x == 0) {
        for (int i = 0; i < 4; ++i) mbar_init(&xbar[i / 2][i % 2], 1);
        MODELC_SM90_ASM(\"fence.mbarrier_init.release.cluster;\" ::: \"memory\");
    }
    cluster_arrive_relaxed(); /* this CTA runs, its mbarriers set: the cluster may write its shared memory once all have */
"
                .into(),
                loop_top: "        float* qs = qs_buf[t & 1];
        float* ks = ks_buf[t & 1];
        float* decay = decay_buf[t & 1];
        float (*part)[NP] = part_buf[t & 1];
        unsigned long long* xb = xbar[t & 1];
        if (tid == 0) {
            mbar_expect_tx(&xb[0], XBYTES0);
            mbar_expect_tx(&xb[1], XBYTES1);
        }
",
                    put0: "cluster_put_async<CL>(&xb[0], ",
                    put2: "cluster_put_async<CL>(&xb[1], ",
                    sync1: "        __syncthreads(); /* vs, zs */
        mbar_wait_cluster(&xb[0], (t >> 1) & 1); /* qs, ks, decay of the whole head, part[0..1] */
",
                    sync2: "        mbar_wait_cluster(&xb[1], (t >> 1) & 1); /* part[2] */\n",
                loop_end: "        /* No barrier here. The next token writes the other buffers. This token's are written
         * again two tokens on, by CTAs that have by then received this CTA's part[2] of the next
         * token, which each of its warps sends after its last read of this token's. fas, gas
         * and vs are read before this CTA's own part[2] goes out, which every thread waits for;
         * zs before the next token's __syncthreads. */
",
                after: "    /* No CTA leaves while a store of it into another may be in flight: every CTA has
     * received all it waits for once all have arrived here. */
    cluster_arrive_relaxed();
    cluster_wait();
",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid_1b() -> KdaDecodeStepParams {
        KdaDecodeStepParams {
            heads: 16,
            key_dim: 128,
            value_dim: 128,
            conv_kernel: 4,
            conv_bias: false,
            conv_silu: true,
            conv_channels: 6144,
            q_channel: 0,
            k_channel: 2048,
            v_channel: 4096,
            decay_rank: 128,
            gate_rank: 128,
            qk_l2norm: true,
            scale: 128f32.powf(-0.5),
            norm_eps: 1e-5,
            norm_act: GateActivation::Silu,
        }
    }

    #[test]
    fn threads_cover_the_wider_head_dimension() {
        let p = hybrid_1b();
        assert_eq!(p.threads(), 512);
        let small = KdaDecodeStepParams {
            key_dim: 8,
            value_dim: 8,
            decay_rank: 8,
            gate_rank: 8,
            ..p
        };
        assert_eq!(small.threads(), 128);
        let wide_v = KdaDecodeStepParams { key_dim: 32, ..p };
        assert_eq!(wide_v.threads(), 512);
    }

    #[test]
    fn emits_one_entry_with_the_constants() {
        let src = kda_decode_step(&hybrid_1b()).expect("supported");
        assert_eq!(src.entries.len(), 1);
        assert!(src.entries[0].starts_with("kda_decode_step_"));
        for c in [
            "DK = 128",
            "K0 = 2048",
            "V0 = 4096",
            "RF = 128",
            "__launch_bounds__(512)",
            "silu_f(zj)",
        ] {
            assert!(src.source.contains(c), "missing {c}");
        }
        assert_eq!(
            src.source.matches(crate::codegen::kernel::PDL_ENTER).count(),
            1,
            "one wait"
        );
        // Deterministic and parameter-sensitive.
        assert_eq!(kda_decode_step(&hybrid_1b()).expect("supported"), src);
        let other = kda_decode_step(&KdaDecodeStepParams {
            norm_act: GateActivation::Sigmoid,
            ..hybrid_1b()
        })
        .expect("supported");
        assert_ne!(other.entries, src.entries);
    }

    #[test]
    fn rejects_shapes_it_cannot_hold() {
        let p = hybrid_1b();
        let bad = [
            KdaDecodeStepParams { key_dim: 130, ..p },
            KdaDecodeStepParams { key_dim: 6, ..p },
            KdaDecodeStepParams { value_dim: 129, ..p },
            KdaDecodeStepParams { decay_rank: 12, ..p },
            KdaDecodeStepParams { gate_rank: 1024, ..p },
            KdaDecodeStepParams { conv_kernel: 0, ..p },
            KdaDecodeStepParams { v_channel: 4097, ..p },
        ];
        for q in bad {
            assert!(!kda_decode_step_supported(&q), "{q:?}");
            let e = kda_decode_step(&q).expect_err("rejected");
            assert_eq!(e.template, "kda_decode_step");
        }
    }

    /// The asynchronous exchange is refused for a cluster of one CTA, with the reason; the
    /// barriers take it.
    #[test]
    fn async_exchange_needs_two_ctas() {
        let p = KdaDecodeStepParams {
            key_dim: 32,
            value_dim: 32,
            ..hybrid_1b()
        };
        let err = kda_decode_step_cluster_with(&p, 1, ClusterExchange::AsyncStores).unwrap_err();
        assert!(err.to_string().contains("at least 2 CTAs, not 1"), "{err}");
        assert!(kda_decode_step_cluster_with(&p, 1, ClusterExchange::Barriers).is_ok());
        assert!(kda_decode_step_cluster_with(&p, 2, ClusterExchange::AsyncStores).is_ok());
    }

    #[test]
    fn cluster_size_leaves_each_cta_sixteen_columns() {
        let p = hybrid_1b();
        assert_eq!(kda_decode_step_cluster_size(&p), Some(8));
        assert_eq!(kda_decode_step_cluster_threads(&p, 8), 64);
        let size = |dk: usize, dv: usize| {
            kda_decode_step_cluster_size(&KdaDecodeStepParams {
                key_dim: dk,
                value_dim: dv,
                ..p
            })
        };
        assert_eq!(size(64, 64), Some(4));
        assert_eq!(size(32, 32), Some(2));
        assert_eq!(size(128, 32), Some(2));
        assert_eq!(size(32, 72), Some(4), "18 columns per CTA");
        assert_eq!(
            size(16, 16),
            None,
            "one CTA would have 16 columns: the single-block kernel"
        );
        assert_eq!(size(8, 8), None);
        assert_eq!(size(12, 128), Some(4), "Dk 12: clusters of 4 (3 key channels each)");
        // Threads: eight state columns per warp, four lanes per low-rank row, a conv channel each.
        assert_eq!(kda_decode_step_cluster_threads(&p, 2), 256);
        let uneven = KdaDecodeStepParams {
            key_dim: 32,
            value_dim: 72,
            ..p
        };
        assert_eq!(kda_decode_step_cluster_threads(&uneven, 4), 96);
        let narrow = KdaDecodeStepParams {
            key_dim: 8,
            value_dim: 8,
            ..p
        };
        assert_eq!(kda_decode_step_cluster_threads(&narrow, 2), 32);
    }

    #[test]
    fn cluster_form_emits_one_entry_with_the_cluster_constants() {
        let src = kda_decode_step_cluster(&hybrid_1b(), 8).expect("supported");
        assert_eq!(src.entries.len(), 1);
        assert!(src.entries[0].starts_with("kda_decode_step_cluster_"));
        for c in [
            "__cluster_dims__(8, 1, 1) __launch_bounds__(64)",
            "CL = 8, VC = DV / CL, KC = DK / CL",
            "DK = 128",
            "K0 = 2048",
            "RG = 128",
            "silu_f(zj)",
            "mapa.shared::cluster.u32",
            "barrier.cluster.arrive.release",
            "barrier.cluster.wait.acquire",
        ] {
            assert!(src.source.contains(c), "missing {c}");
        }
        assert_eq!(
            src.source.matches(crate::codegen::kernel::PDL_ENTER).count(),
            1,
            "one wait"
        );
        // Two cluster barriers a token, one when every CTA has started.
        assert_eq!(src.source.matches("cluster_sync(); /*").count(), 2);
        assert_eq!(src.source.matches("cluster_wait();").count(), 2);
        // The helpers are the single-block kernel's, byte for byte (the two concatenate).
        let single = kda_decode_step(&hybrid_1b()).expect("supported");
        assert!(single.source.contains(KDA_STEP_HELPERS) && src.source.contains(KDA_STEP_HELPERS));
        // Deterministic and parameter-sensitive.
        assert_eq!(kda_decode_step_cluster(&hybrid_1b(), 8).expect("supported"), src);
        let four = kda_decode_step_cluster(&hybrid_1b(), 4).expect("supported");
        assert_ne!(four.entries, src.entries);
        assert!(four.source.contains("__cluster_dims__(4, 1, 1) __launch_bounds__(128)"));
        assert_ne!(single.entries, src.entries);
    }

    /// The asynchronous exchange: no cluster barrier inside the token loop, every store into
    /// another CTA an `st.async` on that CTA's mbarrier for the token's parity, the bytes each
    /// mbarrier expects counted from the kernel's constants, one cluster barrier at the start
    /// and one at the end; the recurrence is the barrier form's text.
    #[test]
    fn cluster_form_with_async_stores() {
        let p = hybrid_1b();
        let barriers = kda_decode_step_cluster(&p, 8).expect("supported");
        let src = kda_decode_step_cluster_with(&p, 8, ClusterExchange::AsyncStores).expect("supported");
        assert_ne!(src.entries, barriers.entries);
        let text = &src.source;
        assert!(!text.contains("cluster_sync();"), "no cluster barrier a token");
        assert!(!text.contains("cluster_put<CL>("));
        assert_eq!(text.matches("cluster_put_async<CL>(&xb[0], ").count(), 5);
        assert_eq!(text.matches("cluster_put_async<CL>(&xb[1], ").count(), 1);
        assert_eq!(text.matches("mbar_wait_cluster(&xb[").count(), 2);
        assert_eq!(text.matches("cluster_arrive_relaxed();").count(), 2);
        // (and once in the cluster_sync helper's definition)
        assert_eq!(text.matches("cluster_wait();").count(), 3);
        assert!(text.contains("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32"));
        assert!(text.contains("mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64"));
        assert!(text.contains("fence.mbarrier_init.release.cluster;"));
        // The bytes each mbarrier expects, from the kernel's own constants: every CTA's q, k and
        // decays (KC each, DK in all) and one partial sum a warp (NP in all) a kind.
        assert!(text.contains("XBYTES0 = 4 * (3 * DK + (L2NORM ? 2 * NP : 0)), XBYTES1 = 4 * NP;"));
        assert!(text.contains("constexpr int NP = CL * NWARP;"));
        // The recurrence and the norm read the token's buffers through the barrier form's names.
        for c in ["float* qs = qs_buf[t & 1];", "float (*part)[NP] = part_buf[t & 1];"] {
            assert!(text.contains(c), "missing {c}");
        }
        let body = |s: &str| {
            s[s.find("        /* The recurrence").unwrap()..s.find("        /* Gated RMSNorm").unwrap()].to_string()
        };
        assert_eq!(body(text), body(&barriers.source));
        // The trial switch: only `async` names the asynchronous stores.
        assert_eq!(ClusterExchange::named(Some("async")), ClusterExchange::AsyncStores);
        for other in [None, Some(""), Some("barriers"), Some("ASYNC")] {
            assert_eq!(ClusterExchange::named(other), ClusterExchange::Barriers, "{other:?}");
        }
    }

    #[test]
    fn cluster_form_rejects_what_it_cannot_split() {
        let p = hybrid_1b();
        let bad = [
            (p, 3),
            (p, 16),
            (p, 0),
            (p, 1), // 128 value columns in one CTA
            (KdaDecodeStepParams { value_dim: 100, ..p }, 8),
            (KdaDecodeStepParams { key_dim: 20, ..p }, 8),
            (KdaDecodeStepParams { key_dim: 130, ..p }, 2),
        ];
        for (q, c) in bad {
            let e = kda_decode_step_cluster(&q, c).expect_err("rejected");
            assert_eq!(e.template, "kda_decode_step_cluster", "{q:?} {c}");
        }
        assert!(kda_decode_step_cluster(&KdaDecodeStepParams { value_dim: 100, ..p }, 4).is_ok());
    }
}
