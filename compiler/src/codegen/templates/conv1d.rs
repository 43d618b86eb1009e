//! Causal depthwise conv1d (+ optional SiLU) with a carried conv state: Mamba, GDN and KDA all
//! run their q/k/v (or x) channels through it (apriel2.md §2.2).

use super::{blocks, check, dim, finish, KernelSource, Launch, TemplateError, HASH, PRELUDE};

/// Activation applied to the conv output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvActivation {
    Identity,
    Silu,
}

/// Compile-time constants of the conv kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv1dParams {
    /// Taps K (the weight is `[C, 1, K]`); 1 ≤ K ≤ 16.
    pub kernel_size: usize,
    pub activation: ConvActivation,
    /// Whether a `[C]` bias is added before the activation.
    pub has_bias: bool,
}

/// Channels per block (one thread per channel).
pub const CONV_CHANNELS_PER_BLOCK: usize = 128;
/// Tokens per thread.
pub const CONV_TOKENS_PER_THREAD: usize = 16;

/// Emits `conv1d_<hash>`.
///
/// Kernel arguments, in order:
/// `(const bf16* x, int x_stride, const bf16* w, const bf16* bias, const float* state_in,
///   float* state_out, bf16* y, int y_stride, int T, int C)`
/// - x `[B, T, C]` rows of stride `x_stride`; y likewise with `y_stride`;
/// - w `[C, K]` (the `[C, 1, K]` conv weight), bias `[C]` (ignored, may be null, without bias);
/// - state_in `[B, C, K−1]` f32, the K−1 inputs before t = 0, oldest first (null = zeros);
/// - state_out `[B, C, K−1]` f32, the last K−1 inputs of state ++ x (null = not written).
///   It may alias state_in: only the thread that reads a channel's state writes it.
///
/// The decode step is this kernel with T = 1 (row b of x is sequence b's token).
/// Launch with [`conv1d_launch`].
pub fn conv1d(p: &Conv1dParams) -> Result<KernelSource, TemplateError> {
    check("conv1d", (1..=16).contains(&p.kernel_size), || {
        format!("kernel_size {} is outside 1..=16", p.kernel_size)
    })?;
    let k = p.kernel_size;
    let act = match p.activation {
        ConvActivation::Identity => "acc",
        ConvActivation::Silu => "silu_f(acc)",
    };
    // Programmatic dependent launch: waits for the kernels before, lets the next one launch.
    const PDL: &str = crate::codegen::kernel::PDL_DEFINITION;
    let body = format!(
        r#"/*
 * conv1d_{HASH}: causal depthwise conv1d, K = {k} taps, bias = {bias}, activation = {act_name}.
 *   y[b,t,c] = act(bias[c] + sum_j w[c,j] * x[b, t-(K-1)+j, c]); the last tap j = K-1 multiplies
 *   the current token; inputs before t = 0 come from state_in[b, c, :] (oldest first) or zeros.
 *   state_out[b, c, :] = the last K-1 inputs of (state_in ++ x). f32 accumulation.
 * Layouts: x, y [B, T, C] bf16, row strides x_stride / y_stride (elements); w [C, K] bf16;
 *   bias [C] bf16; states [B, C, K-1] f32 (may alias).
 * Grid (ceil(C/{cpb}), ceil(T/{tpt}), B), block {cpb}: one thread per channel and {tpt}-token tile.
 * Decode: the same kernel with T = 1.
 */
{PRELUDE}
{PDL}
extern "C" __global__ void __launch_bounds__({cpb}) conv1d_{HASH}(
    const bf16* __restrict__ x, int x_stride,
    const bf16* __restrict__ w, const bf16* __restrict__ bias,
    const float* state_in, float* state_out,
    bf16* __restrict__ y, int y_stride,
    int T, int C)
{{
    modelc_pdl_enter();
    constexpr int K = {k};
    constexpr int TT = {tpt};
    const int c = blockIdx.x * {cpb} + threadIdx.x;
    const int t0 = blockIdx.y * TT;
    const long b = blockIdx.z;
    if (c >= C) return;
    const float* st = state_in ? state_in + (b * C + c) * (K - 1) : nullptr;

    float wr[K];
#pragma unroll
    for (int j = 0; j < K; ++j) wr[j] = bf2f(w[(long)c * K + j]);
    const float bv = {bias_expr};

    /* win[j] holds the input at t - (K-1) + j for the token t being computed. */
    float win[K];
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {{
        const int tt = t0 - (K - 1) + j;
        win[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
    }}
    /* The first tile writes the final state, after having read state_in: in-place is safe. */
    if (state_out && blockIdx.y == 0) {{
        float fin[K > 1 ? K - 1 : 1];
#pragma unroll
        for (int j = 0; j < K - 1; ++j) {{
            const int tt = T - (K - 1) + j;
            fin[j] = tt >= 0 ? bf2f(x[(b * T + tt) * x_stride + c]) : (st ? st[K - 1 + tt] : 0.0f);
        }}
        float* so = state_out + (b * C + c) * (K - 1);
#pragma unroll
        for (int j = 0; j < K - 1; ++j) so[j] = fin[j];
    }}
    for (int i = 0; i < TT; ++i) {{
        const int t = t0 + i;
        if (t >= T) break;
        win[K - 1] = bf2f(x[(b * T + t) * x_stride + c]);
        float acc = bv;
#pragma unroll
        for (int j = 0; j < K; ++j) acc = fmaf(wr[j], win[j], acc);
        y[(b * T + t) * y_stride + c] = f2bf({act});
#pragma unroll
        for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];
    }}
}}
"#,
        bias = p.has_bias,
        act_name = match p.activation {
            ConvActivation::Identity => "identity",
            ConvActivation::Silu => "silu",
        },
        cpb = CONV_CHANNELS_PER_BLOCK,
        tpt = CONV_TOKENS_PER_THREAD,
        bias_expr = if p.has_bias { "bf2f(bias[c])" } else { "0.0f" },
    );
    Ok(finish(&[&format!("conv1d_{HASH}")], body))
}

/// Launch geometry of [`conv1d`] for `batch` sequences of `tokens` tokens and `channels` channels.
pub fn conv1d_launch(batch: usize, tokens: usize, channels: usize) -> Launch {
    Launch::new(
        (
            blocks(channels, CONV_CHANNELS_PER_BLOCK),
            blocks(tokens, CONV_TOKENS_PER_THREAD),
            dim(batch),
        ),
        (dim(CONV_CHANNELS_PER_BLOCK), 1, 1),
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_baked_in_and_names_differ() {
        let a = conv1d(&Conv1dParams {
            kernel_size: 4,
            activation: ConvActivation::Silu,
            has_bias: false,
        })
        .unwrap();
        let b = conv1d(&Conv1dParams {
            kernel_size: 3,
            activation: ConvActivation::Silu,
            has_bias: false,
        })
        .unwrap();
        assert!(a.source.contains("constexpr int K = 4;"));
        assert!(a.source.contains("silu_f(acc)"));
        assert_ne!(a.name(), b.name());
        assert!(a.name().starts_with("conv1d_"));
        assert!(conv1d(&Conv1dParams {
            kernel_size: 0,
            activation: ConvActivation::Identity,
            has_bias: true
        })
        .is_err());
    }

    #[test]
    fn launch_covers_every_channel_and_token() {
        let l = conv1d_launch(2, 17, 130);
        assert_eq!(l.grid, (2, 2, 2));
        assert_eq!(l.block, (128, 1, 1));
    }
}
