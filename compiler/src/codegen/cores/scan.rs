//! The selective scan core (Mamba; one launch, prefill and decode alike).

use super::*;

/// Grid of `selective_scan` (`selective_scan_launch`).
pub fn scan_grid(d_inner: usize) -> [Expr; 3] {
    [c(d_inner).cdiv(c(SCAN_CHANNELS_PER_BLOCK)), c(1), b()]
}

/// The selective scan core's kernel and launch.
pub(super) fn scan_core(cx: &CoreCx, core: &Core, state_size: &usize) -> Result<CoreCode, CodegenError> {
    let CoreCx { graph, n, fuses, .. } = *cx;
    let input = |i: usize| cx.input(i);
    let terr = template_err(graph, n);
    let Core::Scan {
        delta,
        delta_bias,
        softplus,
        z,
        out,
        ..
    } = core
    else {
        return Err(cx.mismatch());
    };
    let nst = *state_size;
    let (u, bm, cm) = (input(0)?, input(3)?, input(4)?);
    let di = ch(graph, u);
    let gx = ch(graph, bm) / nst.max(1);
    let heads = di / nst.max(1);
    let tp = SelectiveScanParams {
        state_size: nst,
        heads_per_group: heads / gx.max(1),
        delta_bias: delta_bias.is_some(),
        delta_softplus: *softplus,
        has_d: true,
        has_z: z.is_some(),
    };
    let st = state_name(graph, n, 6)?;
    let src = selective_scan(&tp).map_err(&terr)?;
    let entry = src.name().to_string();
    let state_bytes = b().times(c(di * nst * 4));
    let per_row = di * (3 + usize::from(z.is_some())) + gx * nst;
    let loaded = rows()
        .times(c(per_row * 2))
        .plus(c(di * (nst + 2) * 4))
        .plus(state_bytes.clone());
    let stored = rows().times(c(di * 2)).plus(state_bytes);
    let flops = rows().times(c(di * (6 * nst + 12)));
    let (z_ptr, z_stride) = match z {
        Some(z) => (KArg::Value(*z), KArg::Stride(*z)),
        None => (KArg::Null, KArg::Int(c(0))),
    };
    let (block, smem) = block_smem(selective_scan_launch(1, di));
    let launch = CoreLaunch {
        kernel: 0,
        entry,
        grid: scan_grid(di),
        block,
        smem,
        args: vec![
            KArg::Value(u),
            KArg::Stride(u),
            KArg::Value(*delta),
            KArg::Stride(*delta),
            weight(graph, input(2)?, DType::F32)?,
            KArg::Value(bm),
            KArg::Stride(bm),
            KArg::Value(cm),
            KArg::Stride(cm),
            weight(graph, input(5)?, DType::F32)?,
            match delta_bias {
                Some(bv) => weight(graph, *bv, DType::F32)?,
                None => KArg::Null,
            },
            z_ptr,
            z_stride,
            KArg::State(st.clone()),
            KArg::State(st),
            KArg::Value(*out),
            KArg::Stride(*out),
            KArg::Int(t()),
            KArg::Int(c(di)),
        ],
        variants: Vec::new(),
        skip_when: None,
    };
    Ok(CoreCode {
        kernels: vec![kernel("selective_scan", src, fuses, loaded, stored, flops)],
        prefill: vec![launch.clone()],
        decode: vec![launch],
        demands: vec![],
        decode_absorbs: Vec::new(),
        decode_reads: Vec::new(),
    })
}
