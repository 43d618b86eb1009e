//! Mamba-1 selective scan, M1 grouped variant (apriel2.md §2.6): B is shared by the `r = Hc/Gx`
//! heads of an x-group, C is per head. With the optional `delta_bias` + softplus on Δ, the
//! `D·u` skip and the `y·SiLU(z)` gate fused, as `selective_scan_fn(..., z, delta_bias,
//! delta_softplus=True)` does.
//!
//! One kernel serves prefill and decode (decode is T = 1): each thread owns one inner channel and
//! its N states in registers and walks the tokens in order; the state may be updated in place.
//! Any `1 ≤ N ≤ 128` and any channel count work: there are no warp operations or barriers, and
//! the threads past `Di` in the last block return at once. `A[N]` and `s[N]` live in registers:
//! up to N = 96 without spills (253 registers on sm_90); N = 128 spills about 200 bytes (correct,
//! slower).

use super::{blocks, check, dim, finish, KernelSource, Launch, TemplateError, HASH, PRELUDE};

/// Compile-time constants of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelectiveScanParams {
    /// N = state_size (channels per head as well): 1..=128 (above 96 the state spills).
    pub state_size: usize,
    /// r = Hc / Gx: heads per x/B group.
    pub heads_per_group: usize,
    /// Add `delta_bias[c]` to Δ before the softplus.
    pub delta_bias: bool,
    /// Δ ← softplus(Δ).
    pub delta_softplus: bool,
    /// Add `D[c]·u`.
    pub has_d: bool,
    /// Multiply the output by `SiLU(z)`.
    pub has_z: bool,
}

impl SelectiveScanParams {
    /// Apriel2's Mamba: delta bias (the dt_proj bias, applied a second time, §7.2.3), softplus,
    /// D skip and z gate all on.
    pub fn apriel2(state_size: usize, heads_per_group: usize) -> Self {
        SelectiveScanParams {
            state_size,
            heads_per_group,
            delta_bias: true,
            delta_softplus: true,
            has_d: true,
            has_z: true,
        }
    }
}

/// Channels per block.
pub const SCAN_CHANNELS_PER_BLOCK: usize = 128;

/// Emits `selective_scan_<hash>`.
///
/// Kernel arguments, in order:
/// `(const bf16* u, int u_stride, const bf16* delta, int delta_stride, const float* a_log,
///   const bf16* Bm, int b_stride, const bf16* Cm, int c_stride, const float* D,
///   const float* delta_bias, const bf16* z, int z_stride, const float* state_in,
///   float* state_out, bf16* y, int y_stride, int T, int Di)`
/// - u, delta (pre-softplus dt), z, y `[B, T, Di]`; Bm `[B, T, Gx·N]`; Cm `[B, T, Di]` (= Hc·N):
///   bf16 rows with the given strides (elements);
/// - a_log `[Di, N]`, D `[Di]`, delta_bias `[Di]` f32 (unused ones may be null);
/// - state_in / state_out `[B, Di, N]` f32 (state_in null = zeros; they may alias).
///
/// Launch with [`selective_scan_launch`].
pub fn selective_scan(p: &SelectiveScanParams) -> Result<KernelSource, TemplateError> {
    check("selective_scan", (1..=128).contains(&p.state_size), || {
        format!("state_size {} must be in 1..=128", p.state_size)
    })?;
    check("selective_scan", p.heads_per_group >= 1, || {
        "heads_per_group must be ≥ 1".into()
    })?;
    let flag = |b: bool| if b { "true" } else { "false" };
    let body = format!(
        r#"/*
 * selective_scan_{HASH}: Mamba-1 selective scan, M1 grouped x/B, N = {n}, r = Hc/Gx = {r},
 *   delta_bias = {db}, softplus = {sp}, D skip = {hd}, z gate = {hz}.
 *   Channel c, head h = c / N, group h / r. dt = softplus(delta + delta_bias);
 *   s[n] <- exp(dt * A[c,n]) s[n] + dt u B[group, n];  y = <s, C[h, :]> + D u;  y *= silu(z).
 *   A = -exp(a_log). f32 state and arithmetic.
 * Layouts: u, delta, z, y [B,T,Di]; Bm [B,T,Gx*N]; Cm [B,T,Hc*N] bf16 rows with strides;
 *   a_log [Di,N], D [Di], delta_bias [Di] f32; state_in / state_out [B,Di,N] f32 (may alias).
 * Grid (ceil(Di/{cpb}), 1, B), block {cpb}: one thread per channel, tokens in order. Decode: T = 1.
 */
{PRELUDE}
extern "C" __global__ void __launch_bounds__({cpb}) selective_scan_{HASH}(
    const bf16* __restrict__ u, int u_stride,
    const bf16* __restrict__ delta, int delta_stride,
    const float* __restrict__ a_log,
    const bf16* __restrict__ Bm, int b_stride,
    const bf16* __restrict__ Cm, int c_stride,
    const float* __restrict__ D, const float* __restrict__ delta_bias,
    const bf16* __restrict__ z, int z_stride,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int Di)
{{
    constexpr int N = {n};
    constexpr int R = {r};
    constexpr bool HAS_DELTA_BIAS = {db};
    constexpr bool SOFTPLUS = {sp};
    constexpr bool HAS_D = {hd};
    constexpr bool HAS_Z = {hz};
    const int c = blockIdx.x * {cpb} + threadIdx.x;
    const long b = blockIdx.z;
    if (c >= Di) return;
    const int h = c / N;
    const int grp = h / R;
    float A[N], s[N];
    const long sbase = (b * Di + c) * (long)N;
#pragma unroll
    for (int n = 0; n < N; ++n) {{
        A[n] = -expf(a_log[(long)c * N + n]);
        s[n] = state_in ? state_in[sbase + n] : 0.0f;
    }}
    const float dc = HAS_D ? D[c] : 0.0f;
    const float dbias = HAS_DELTA_BIAS ? delta_bias[c] : 0.0f;
    for (int t = 0; t < T; ++t) {{
        const long row = b * T + t;
        const float uu = bf2f(u[row * u_stride + c]);
        float dt = bf2f(delta[row * delta_stride + c]) + dbias;
        if (SOFTPLUS) dt = softplus_f(dt);
        const bf16* bp = Bm + row * b_stride + (long)grp * N;
        const bf16* cp = Cm + row * c_stride + (long)h * N;
        const float du = dt * uu;
        float acc = 0.0f;
#pragma unroll
        for (int n = 0; n < N; ++n) {{
            s[n] = fmaf(expf(dt * A[n]), s[n], du * bf2f(bp[n]));
            acc = fmaf(s[n], bf2f(cp[n]), acc);
        }}
        if (HAS_D) acc = fmaf(dc, uu, acc);
        if (HAS_Z) acc *= silu_f(bf2f(z[row * z_stride + c]));
        y[row * y_stride + c] = f2bf(acc);
    }}
    if (state_out) {{
#pragma unroll
        for (int n = 0; n < N; ++n) state_out[sbase + n] = s[n];
    }}
}}
"#,
        n = p.state_size,
        r = p.heads_per_group,
        db = flag(p.delta_bias),
        sp = flag(p.delta_softplus),
        hd = flag(p.has_d),
        hz = flag(p.has_z),
        cpb = SCAN_CHANNELS_PER_BLOCK,
    );
    Ok(finish(&[&format!("selective_scan_{HASH}")], body))
}

/// Launch geometry of [`selective_scan`] for `batch` sequences of `d_inner` channels.
pub fn selective_scan_launch(batch: usize, d_inner: usize) -> Launch {
    Launch::new(
        (blocks(d_inner, SCAN_CHANNELS_PER_BLOCK), 1, dim(batch)),
        (dim(SCAN_CHANNELS_PER_BLOCK), 1, 1),
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_compile_time_constants() {
        let a = selective_scan(&SelectiveScanParams::apriel2(16, 4)).unwrap();
        assert!(a.source.contains("constexpr int N = 16;"));
        assert!(a.source.contains("constexpr bool HAS_Z = true;"));
        let b = selective_scan(&SelectiveScanParams {
            has_z: false,
            ..SelectiveScanParams::apriel2(16, 4)
        })
        .unwrap();
        assert_ne!(a.name(), b.name());
        assert!(selective_scan(&SelectiveScanParams::apriel2(0, 4)).is_err());
        assert!(selective_scan(&SelectiveScanParams::apriel2(16, 0)).is_err());
    }
}
