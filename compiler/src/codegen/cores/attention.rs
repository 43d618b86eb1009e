//! The attention core: the prefill (the `mma.sync` form, and on Hopper the `wgmma` forms as
//! variants) and the split-K decode with its combine.

use super::*;
use crate::codegen::settings::read_setting;
use crate::ir::AttentionParams;

/// Grid of `attn_prefill` (the template's `attention_prefill_launch` as an expression).
pub fn attention_prefill_grid(p: &TAttention) -> [Expr; 3] {
    let tiles = t().cdiv(c(attention_prefill_queries_per_block(p)));
    if tensor_core_prefill(p) {
        [c(p.heads).times(b()), tiles, c(1)]
    } else {
        [tiles, c(p.heads), b()]
    }
}

/// The tensor maps the Hopper prefill's TMA form takes after its common arguments
/// (`attention_prefill_tma_maps`): the call's k and v rows (`batch·tokens` rows of `G·Dh` at
/// their buffers' strides), then the call's cache rows (`batch·G·max_len` rows of `Dh`).
fn attention_prefill_tma_args(p: &TAttention, k: Value, v: Value, kc: &str, vc: &str) -> Vec<KArg> {
    let map = |base: KArg, row_stride: KArg, cols: usize, rows: Expr| {
        KArg::TensorMap(Box::new(KTensorMap {
            base,
            row_stride,
            cols: c(cols),
            rows,
            box_cols: 64,
            box_rows: ATTN_WG_KEYS_PER_TILE as u32,
            l2_promotion: ATTN_TMA_L2_PROMOTION,
        }))
    };
    let (g, dh) = (p.kv_heads, p.head_dim);
    let cache_rows = b().times(c(g)).times(Expr::sym(Sym::MaxLen));
    vec![
        map(KArg::Value(k), KArg::Stride(k), g * dh, rows()),
        map(KArg::Value(v), KArg::Stride(v), g * dh, rows()),
        map(KArg::State(kc.to_string()), KArg::Int(c(dh)), dh, cache_rows.clone()),
        map(KArg::State(vc.to_string()), KArg::Int(c(dh)), dh, cache_rows),
    ]
}

/// Grid of `attn_prefill_wgmma` (`attention_prefill_wgmma_launch`).
pub fn attention_prefill_wgmma_grid(p: &TAttention) -> [Expr; 3] {
    [c(p.heads).times(b()), t().cdiv(c(ATTN_WG_TILE)), c(1)]
}

/// Split-K factor of decode attention (`attention_decode_pick_splits` as an expression): as many
/// splits as fit the resident decode blocks in one wave, `floor(blocks_per_sm·SMs / (B·Y))`, at
/// most one per `attention_decode_min_keys` visible keys, at least one.
pub fn attention_decode_splits(p: &TAttention) -> Expr {
    let keys = match p.window {
        Some(w) => Expr::sym(Sym::Past).plus(c(1)).min(c(w)),
        None => Expr::sym(Sym::Past).plus(c(1)),
    };
    c(attention_decode_blocks_per_sm(p))
        .times(Expr::sym(Sym::Sms))
        .fdiv(b().times(c(attention_decode_heads_per_grid(p))))
        .min(keys.cdiv(c(attention_decode_min_keys(p))))
        .max(c(1))
}

/// Grids of the two decode entries (`attention_decode_launch`): partials, combine.
pub fn attention_decode_grids(p: &TAttention, splits: Expr) -> ([Expr; 3], [Expr; 3]) {
    (
        [splits, c(attention_decode_heads_per_grid(p)), b()],
        [c(p.heads), b(), c(1)],
    )
}

/// Set to `1`: programs launch the attention decode with the combine folded into its last
/// block (`attention_decode_fused`, one launch instead of two) where the tensor-core decode
/// serves the shape and a call has at most [`ATTN_FUSED_MAX_SPLITS`] splits, and leave the
/// combine's step out of those calls; `2`: the same, its blocks also loading their first tiles
/// before they wait for the kernel before; `3`: that, with RoPE folded into the decode (both
/// forms rotate q and the new key themselves, and the rope step has no decode launch) where
/// the layer's q and k come straight from a step that only rotates them. Read when a spec is
/// compiled. Off by default: it has not yet run on a GPU (its tests and its timing are the next
/// device call's, docs/PERFORMANCE.md).
pub const ATTN_DECODE_FUSED_ENV: &str = "MODELC_ATTN_DECODE_FUSED";

/// Most splits the fused decode's last block merges (it reads `R·Dh·splits` partials alone,
/// where the combine kernel spreads them over `H·B` blocks).
pub const ATTN_FUSED_MAX_SPLITS: usize = 16;

/// The fused attention decode [`ATTN_DECODE_FUSED_ENV`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedDecode {
    /// `1`: the combine in the last block.
    LastBlock,
    /// `2`: that, and the first tiles loaded before the wait for the kernel before.
    EarlyLoads,
    /// `3`: that, and RoPE folded into the decode.
    Rope,
}

impl FusedDecode {
    /// Whether the fused form loads its first tiles before the dependent-launch wait.
    fn early_loads(self) -> bool {
        matches!(self, Self::EarlyLoads | Self::Rope)
    }
}

/// What [`ATTN_DECODE_FUSED_ENV`] asks for: nothing where it is unset, empty or `0`.
pub fn attention_decode_fused_in_programs() -> Result<Option<FusedDecode>, CodegenError> {
    let expected = "0 or unset (off), 1 (the combine in the last block), 2 (that, and the first tiles \
                    loaded before the wait) or 3 (that, and RoPE folded in)";
    read_setting(ATTN_DECODE_FUSED_ENV, expected, |v| match v {
        "1" => Some(FusedDecode::LastBlock),
        "2" => Some(FusedDecode::EarlyLoads),
        "3" => Some(FusedDecode::Rope),
        _ => None,
    })
}

/// RoPE folded into the attention decode: the glue step that rotates the core's q and k (and
/// does nothing else), what it reads, and its theta.
struct RopeFold {
    step: usize,
    q_in: Value,
    k_in: Value,
    positions: Value,
    theta: f64,
}

/// The rope step the attention decode can take in, if any: q and k (the core's inputs 0 and 1)
/// are the outputs of two rotate-half RoPEs over the core's head size, of one theta and one
/// positions input, which make up a glue step of their own that only this core reads.
fn rope_fold(cx: &CoreCx, p: &AttentionParams) -> Result<Option<RopeFold>, CodegenError> {
    let graph = cx.graph;
    let (q, k) = (cx.input(0)?, cx.input(1)?);
    let rope = |v: Value| match graph.node(v.node).op {
        Op::Rope { head_dim, theta } if head_dim == p.head_dim && v.output == 0 => match graph.inputs(v.node)[..] {
            [x, positions] => Some((x, positions, theta)),
            _ => None,
        },
        _ => None,
    };
    let (Some((q_in, pq, tq)), Some((k_in, pk, tk))) = (rope(q), rope(k)) else {
        return Ok(None);
    };
    let (Some(&step), Some(&k_step), Some(&core_step)) =
        (cx.owner.get(&q.node), cx.owner.get(&k.node), cx.owner.get(&cx.n))
    else {
        return Ok(None);
    };
    let Some(s) = cx.plan.steps.get(step) else {
        return Ok(None);
    };
    let only_ropes =
        s.kind == StepKind::Glue && s.nodes.len() == 2 && s.nodes.contains(&q.node) && s.nodes.contains(&k.node);
    let positions_input = matches!(graph.node(pq.node).op, Op::Input { .. });
    if pq != pk || tq != tk || step != k_step || !only_ropes || !positions_input {
        return Ok(None);
    }
    // No other step reads what it makes.
    let made: Vec<Value> = [q, k].iter().map(|&v| cx.plan.resolve(graph, v).base).collect();
    let read_elsewhere = cx.plan.steps.iter().enumerate().any(|(i, other)| {
        i != core_step
            && other
                .inputs
                .iter()
                .any(|&x| made.contains(&cx.plan.resolve(graph, x).base))
    });
    if read_elsewhere || s.outputs.iter().any(|v| !made.contains(v)) {
        return Ok(None);
    }
    Ok(Some(RopeFold {
        step,
        q_in,
        k_in,
        positions: pq,
        theta: tq,
    }))
}

/// The templates' parameters of an attention node.
pub(super) fn template_params(p: &AttentionParams) -> TAttention {
    TAttention {
        heads: p.heads,
        kv_heads: p.kv_heads,
        head_dim: p.head_dim,
        window: p.window,
        scale: p.scale as f32,
    }
}

/// The attention core's kernels and launches.
pub(super) fn attention_core(cx: &CoreCx, p: &AttentionParams) -> Result<CoreCode, CodegenError> {
    let CoreCx { graph, n, fuses, .. } = *cx;
    let input = |i: usize| cx.input(i);
    let terr = template_err(graph, n);
    if !p.causal {
        return Err(CodegenError::Unsupported {
            scope: graph.node(n).scope.clone(),
            op: "attention".into(),
            reason: "only causal attention has a template".into(),
        });
    }
    let tp = template_params(p);
    let (q, k, v) = (input(0)?, input(1)?, input(2)?);
    let o = Value { node: n, output: 0 };
    let (kc, vc) = (state_name(graph, n, 3)?, state_name(graph, n, 4)?);
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let kv_len = match p.window {
        Some(w) => Expr::sym(Sym::Past).plus(t()).min(c(w)),
        None => Expr::sym(Sym::Past).plus(t()),
    };
    let qkv_bytes = rows().times(c((h + 2 * g) * dh * 2));
    let cache_read = b().times(kv_len.clone()).times(c(2 * g * dh * 2));
    let out_bytes = rows().times(c(h * dh * 2)).plus(rows().times(c(2 * g * dh * 2)));
    let flops = rows().times(kv_len.clone()).times(c(4 * h * dh));
    let pre = attention_prefill(&tp).map_err(&terr)?;
    let mut dec = attention_decode(&tp).map_err(&terr)?;
    let common = vec![
        KArg::Value(q),
        KArg::Stride(q),
        KArg::Value(k),
        KArg::Stride(k),
        KArg::Value(v),
        KArg::Stride(v),
        KArg::State(kc.clone()),
        KArg::State(vc.clone()),
        KArg::PastLen,
    ];
    // Decode split-K: one wave of resident blocks (`attention_decode_splits`).
    let splits = attention_decode_splits(&tp);
    let partial_elems = b().times(c(h)).times(splits.clone()).times(c(dh + 2));
    let workspace = KArg::Workspace {
        name: "attn_partial".into(),
        dtype: DType::F32,
        elements: partial_elems.clone(),
    };
    let mut pre_args = common.clone();
    pre_args.extend([
        KArg::Value(o),
        KArg::Stride(o),
        KArg::Int(t()),
        KArg::Int(Expr::sym(Sym::MaxLen)),
    ]);
    let mut dec_args = common;
    dec_args.extend([
        workspace.clone(),
        KArg::Int(Expr::sym(Sym::MaxLen)),
        KArg::Int(splits.clone()),
    ]);
    let combine_args = vec![workspace, KArg::Value(o), KArg::Stride(o), KArg::Int(splits.clone())];
    // Where ATTN_DECODE_FUSED_ENV asks for it, the decode with the combine in its last block, and
    // at 3 both decode forms with RoPE folded in (reading the rope step's inputs instead).
    let form = attention_decode_fused_in_programs()?;
    let rope = match form {
        Some(FusedDecode::Rope) if mma_decode(&tp) => rope_fold(cx, p)?,
        _ => None,
    };
    if let Some(r) = &rope {
        if let Some(d) = attention_decode_rope(&tp, r.theta).map_err(&terr)? {
            dec = d;
        }
        dec_args.extend([
            KArg::Value(r.q_in),
            KArg::Stride(r.q_in),
            KArg::Value(r.k_in),
            KArg::Stride(r.k_in),
            KArg::Value(r.positions),
        ]);
    }
    // The decode kernels' headers name what they fuse: the rope's nodes too where they take it in.
    let mut dec_fuses: Vec<String> = match &rope {
        Some(r) => cx.plan.steps[r.step]
            .nodes
            .iter()
            .map(|&m| describe_op(graph, m))
            .collect(),
        None => Vec::new(),
    };
    dec_fuses.extend(fuses.iter().cloned());
    let fused = match form {
        Some(form) => attention_decode_fused(&tp, form.early_loads(), rope.as_ref().map(|r| r.theta)).map_err(&terr)?,
        None => None,
    };
    let dec_entries = dec.entries.clone();
    let (Some(dec0), Some(dec1)) = (dec_entries.first(), dec_entries.get(1)) else {
        return Err(CodegenError::Internal(
            "attention decode template has two entries".into(),
        ));
    };
    let pre_entry = pre.name().to_string();
    let kernels = vec![
        kernel(
            "attention_prefill",
            pre,
            fuses,
            qkv_bytes.clone().plus(cache_read.clone()),
            out_bytes.clone(),
            flops.clone(),
        ),
        kernel(
            "attention_decode",
            dec,
            &dec_fuses,
            qkv_bytes.plus(cache_read).plus(partial_elems.clone().times(c(4))),
            out_bytes.plus(partial_elems.times(c(4))),
            flops,
        ),
    ];
    // The prefill's q/k/v tiles are dynamic shared memory (above 48 KiB for Dh > 128).
    let (pre_block, pre_smem) = block_smem(attention_prefill_launch(&tp, 1, 1));
    // On Hopper, the wgmma prefill (sm_90a only) in place of the mma.sync one.
    let mut kernels = kernels;
    let mut pre_variants = Vec::new();
    if wgmma_prefill(&tp) {
        // The TMA form where a call's k/v stay small enough for L2 (it is faster there),
        // else the cp.async form (faster at T8192 on an H200: docs/PERFORMANCE.md).
        let kv_rows = b().times(Expr::sym(Sym::Past).plus(t()));
        let forms = [
            (
                WgmmaVariant::PingPongTma,
                Some(Cond::lt(kv_rows, c(ATTN_TMA_MAX_KEYS + 1))),
                attention_prefill_tma_args(&tp, k, v, &kc, &vc),
            ),
            (ATTN_WGMMA_DEFAULT, None, Vec::new()),
        ];
        for (form, when, extra_args) in forms {
            let wg = attention_prefill_wgmma_variant(&tp, form).map_err(&terr)?;
            let (block, smem) = block_smem(attention_prefill_wgmma_variant_launch(&tp, form, 1, 1));
            pre_variants.push(VariantSpec {
                cc: Some(ComputeCapability::HOPPER),
                when,
                kernel: kernels.len(),
                entry: wg.name().to_string(),
                grid: attention_prefill_wgmma_grid(&tp),
                block,
                smem,
                extra_args,
            });
            let mut k = kernels[0].clone();
            k.kind = "attention_prefill_wgmma".into();
            k.source = with_header(wg, fuses, &k.bytes_loaded, &k.bytes_stored, &k.flops);
            k.target = Some(HOPPER_TARGET.into());
            kernels.push(k);
        }
    }
    // The fused decode as the decode step's variant, for calls of few enough splits (the
    // combine's step is skipped exactly then).
    let fused = fused.map(|src| {
        let when = Cond::lt(splits.clone(), c(ATTN_FUSED_MAX_SPLITS + 1));
        let (block, smem) = block_smem(attention_decode_launch(&tp, 1, 1).0);
        let variant = VariantSpec {
            cc: None,
            when: Some(when.clone()),
            kernel: kernels.len(),
            entry: src.name().to_string(),
            grid: attention_decode_grids(&tp, splits.clone()).0,
            block,
            smem,
            extra_args: vec![
                KArg::Value(o),
                KArg::Stride(o),
                KArg::Counters {
                    name: "attn_decode".into(),
                    elements: b().times(c(g)),
                },
            ],
        };
        let mut k = kernels[1].clone();
        k.kind = "attention_decode_fused".into();
        k.source = with_header(src, &dec_fuses, &k.bytes_loaded, &k.bytes_stored, &k.flops);
        kernels.push(k);
        (variant, when)
    });
    let (dec_launch, combine_launch) = attention_decode_launch(&tp, 1, 1);
    let (dec_block, dec_smem) = block_smem(dec_launch);
    let (combine_block, combine_smem) = block_smem(combine_launch);
    let prefill = vec![CoreLaunch {
        kernel: 0,
        entry: pre_entry,
        grid: attention_prefill_grid(&tp),
        block: pre_block,
        smem: pre_smem,
        args: pre_args,
        variants: pre_variants,
        skip_when: None,
    }];
    let decode = vec![
        CoreLaunch {
            kernel: 1,
            entry: dec0.clone(),
            grid: attention_decode_grids(&tp, splits.clone()).0,
            block: dec_block,
            smem: dec_smem,
            args: dec_args,
            variants: fused.iter().map(|(v, _)| v.clone()).collect(),
            skip_when: None,
        },
        CoreLaunch {
            kernel: 1,
            entry: dec1.clone(),
            grid: attention_decode_grids(&tp, splits).1,
            block: combine_block,
            smem: combine_smem,
            args: combine_args,
            variants: Vec::new(),
            skip_when: fused.map(|(_, when)| when),
        },
    ];
    Ok(CoreCode {
        kernels,
        prefill,
        decode,
        demands: vec![],
        decode_absorbs: rope.iter().map(|r| r.step).collect(),
        decode_reads: rope.iter().flat_map(|r| [r.q_in, r.k_in, r.positions]).collect(),
    })
}
