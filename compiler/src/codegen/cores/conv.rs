//! The causal conv1d core (one launch, prefill and decode alike).

use super::*;

/// Grid of `conv1d` (`conv1d_launch`).
pub fn conv_grid(channels: usize) -> [Expr; 3] {
    [
        c(channels).cdiv(c(CONV_CHANNELS_PER_BLOCK)),
        t().cdiv(c(CONV_TOKENS_PER_THREAD)),
        b(),
    ]
}

/// The conv1d core's kernel and launch.
pub(super) fn conv_core(cx: &CoreCx, kk: &usize, bias: &bool, silu: &bool) -> Result<CoreCode, CodegenError> {
    let CoreCx { graph, n, fuses, .. } = *cx;
    let input = |i: usize| cx.input(i);
    let terr = template_err(graph, n);
    let x = input(0)?;
    let chn = ch(graph, x);
    let tp = Conv1dParams {
        kernel_size: *kk,
        activation: if *silu {
            ConvActivation::Silu
        } else {
            ConvActivation::Identity
        },
        has_bias: *bias,
    };
    let (state_port, bias_arg) = if *bias {
        (3, weight(graph, input(2)?, DType::BF16)?)
    } else {
        (2, KArg::Null)
    };
    let st = state_name(graph, n, state_port)?;
    let y = Value { node: n, output: 0 };
    let src = conv1d(&tp).map_err(&terr)?;
    let entry = src.name().to_string();
    let state_bytes = b().times(c(chn * kk.saturating_sub(1) * 4));
    let loaded = rows()
        .times(c(chn * 2))
        .plus(c(chn * (kk + usize::from(*bias)) * 2))
        .plus(state_bytes.clone());
    let stored = rows().times(c(chn * 2)).plus(state_bytes);
    let flops = rows().times(c(chn * (2 * kk + 6)));
    let (block, smem) = block_smem(conv1d_launch(1, 1, chn));
    let launch = CoreLaunch {
        kernel: 0,
        entry,
        grid: conv_grid(chn),
        block,
        smem,
        args: vec![
            KArg::Value(x),
            KArg::Stride(x),
            weight(graph, input(1)?, DType::BF16)?,
            bias_arg,
            KArg::State(st.clone()),
            KArg::State(st),
            KArg::Value(y),
            KArg::Stride(y),
            KArg::Int(t()),
            KArg::Int(c(chn)),
        ],
        variants: Vec::new(),
        skip_when: None,
    };
    Ok(CoreCode {
        kernels: vec![kernel("conv1d", src, fuses, loaded, stored, flops)],
        prefill: vec![launch.clone()],
        decode: vec![launch],
        demands: vec![],
        decode_absorbs: Vec::new(),
        decode_reads: Vec::new(),
    })
}
