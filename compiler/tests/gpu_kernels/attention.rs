//! Attention.

use super::*;

struct AttnCase {
    p: AttentionParams,
    s_max: usize,
}

fn attn_cases() -> Vec<AttnCase> {
    let p = |heads, kv_heads, head_dim: usize, window| AttentionParams {
        heads,
        kv_heads,
        head_dim,
        window,
        scale: 1.0 / (head_dim as f32).sqrt(),
    };
    vec![
        AttnCase {
            p: p(8, 2, 64, None),
            s_max: 64,
        },
        AttnCase {
            p: p(4, 4, 128, Some(16)),
            s_max: 52,
        },
        AttnCase {
            p: p(2, 1, 256, Some(8)),
            s_max: 44,
        },
        // Head sizes below one warp and not a multiple of 32: lanes past Dh own no channel.
        AttnCase {
            p: p(4, 2, 8, Some(4)),
            s_max: 44,
        },
        AttnCase {
            p: p(4, 2, 16, None),
            s_max: 64,
        },
        AttnCase {
            p: p(2, 1, 24, Some(8)),
            s_max: 48,
        },
        AttnCase {
            p: p(3, 3, 100, None),
            s_max: 64,
        },
        // Long enough for several tensor-core tiles; 8 query heads per KV head (grouped decode's
        // limit) and a window shorter than a tile.
        AttnCase {
            p: p(8, 1, 128, None),
            s_max: 160,
        },
        AttnCase {
            p: p(4, 2, 64, Some(40)),
            s_max: 180,
        },
    ]
}

/// History, cache buffers (ring or linear) and the per-sequence reference caches.
struct KvSetup {
    k_cache: GpuBuffer<bf16>,
    v_cache: GpuBuffer<bf16>,
    ref_k: Vec<Array>,
    ref_v: Vec<Array>,
}

fn kv_setup(ctx: &Ctx, p: &AttentionParams, s_max: usize, past: &[usize], r: &mut ChaCha8Rng) -> KvSetup {
    let (g, dh) = (p.kv_heads, p.head_dim);
    let b = past.len();
    let mut kc = vec![f64::NAN; b * g * s_max * dh];
    let mut vc = vec![f64::NAN; b * g * s_max * dh];
    let (mut ref_k, mut ref_v) = (Vec::new(), Vec::new());
    for (bi, &pl) in past.iter().enumerate() {
        let hk = round_bf16(&uniform(r, g * pl * dh, -1.5, 1.5));
        let hv = round_bf16(&uniform(r, g * pl * dh, -1.5, 1.5));
        for gi in 0..g {
            for pos in 0..pl {
                let slot = if p.window.is_some() { pos % s_max } else { pos };
                let dst = ((bi * g + gi) * s_max + slot) * dh;
                let src = (gi * pl + pos) * dh;
                kc[dst..dst + dh].copy_from_slice(&hk[src..src + dh]);
                vc[dst..dst + dh].copy_from_slice(&hv[src..src + dh]);
            }
        }
        ref_k.push(arr(&[1, g, pl, dh], hk));
        ref_v.push(arr(&[1, g, pl, dh], hv));
    }
    KvSetup {
        k_cache: ctx.bf16(&kc, "k_cache"),
        v_cache: ctx.bf16(&vc, "v_cache"),
        ref_k,
        ref_v,
    }
}

/// Rows `b·t ..` of sequence `bi` from a dense `[B, T, width]` array, as a `[1, T, width]` one.
fn seq(data: &[f64], bi: usize, t: usize, width: usize) -> Array {
    arr(&[1, t, width], data[bi * t * width..(bi + 1) * t * width].to_vec())
}

fn ref_cfg(p: &AttentionParams) -> AttentionCfg {
    AttentionCfg {
        heads: p.heads,
        kv_heads: p.kv_heads,
        head_dim: p.head_dim,
        causal: true,
        window: p.window,
        scale: p.scale as f64,
    }
}

/// Checks that the new tokens' keys/values landed in their cache slots.
#[allow(clippy::too_many_arguments)]
fn check_appended(
    ctx: &Ctx,
    kv: &KvSetup,
    p: &AttentionParams,
    s_max: usize,
    past: &[usize],
    t: usize,
    k_new: &[f64],
    v_new: &[f64],
    what: &str,
) {
    let (g, dh) = (p.kv_heads, p.head_dim);
    let kc = ctx.get_bf16(&kv.k_cache);
    let vc = ctx.get_bf16(&kv.v_cache);
    for (bi, &pl) in past.iter().enumerate() {
        for ti in 0..t {
            let pos = pl + ti;
            let slot = if p.window.is_some() { pos % s_max } else { pos };
            for gi in 0..g {
                let c = ((bi * g + gi) * s_max + slot) * dh;
                let n = ((bi * t + ti) * g + gi) * dh;
                assert_eq!(
                    &kc[c..c + dh],
                    &k_new[n..n + dh],
                    "{what}: k cache b={bi} pos={pos} g={gi}"
                );
                assert_eq!(
                    &vc[c..c + dh],
                    &v_new[n..n + dh],
                    "{what}: v cache b={bi} pos={pos} g={gi}"
                );
            }
        }
    }
}

/// Which prefill kernel a test runs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Prefill {
    /// `attention_prefill` (tensor-core `mma.sync` or SIMT, by shape).
    Default,
    /// `attention_prefill_wgmma` (Hopper only; `ATTN_WGMMA_DEFAULT`, the ping-pong form).
    Wgmma,
    /// Its plain (non-overlapped) main loop.
    WgmmaPlain,
    /// Its overlapped form (every thread loads, no producer warpgroup).
    WgmmaOverlapped,
    /// Another form of it, by variant (the ping-pong ones).
    WgmmaForm(WgmmaVariant),
    /// The other `mma.sync` form than `attention_prefill`'s.
    MmaOther,
    /// A warp-specialised form with its L2 sections fixed at this many KV heads (a text edit of
    /// the tile order, so that small tests walk several sections and a shorter last one).
    WgmmaSections(WgmmaVariant, usize),
    /// A persistent form launched with at most this many blocks (few: each walks many items).
    WgmmaPersistent(WgmmaVariant, usize),
}

/// `src` (a warp-specialised Hopper prefill) with `kv_heads` KV heads per L2 section, whatever
/// the number of keys.
pub(crate) fn fixed_sections(src: &KernelSource, kv_heads: usize) -> KernelSource {
    ablated(
        src,
        &format!("sec{kv_heads}"),
        &[
            ("constexpr long L2_KV_BYTES = 0;", "constexpr long L2_KV_BYTES = 1;"),
            ("int sec_kv = 1;", &format!("int sec_kv = {kv_heads};")),
            ("sec_kv *= 2;", ";"),
        ],
    )
}

/// The `mma.sync` form `attention_prefill` does not emit.
pub(crate) fn other_mma() -> MmaVariant {
    match ATTN_MMA_DEFAULT {
        MmaVariant::Rows16 => MmaVariant::Rows32,
        MmaVariant::Rows32 => MmaVariant::Rows16,
    }
}

/// `skew` shifts q, k and v one column right inside the packed buffer: rows are then not 16-byte
/// aligned, which the tensor-core kernel must detect (it copies element by element instead).
fn run_attn_prefill(ctx: &mut Ctx, case: &AttnCase, past: &[usize], t: usize, skew: usize, seed: u64) {
    run_attn_prefill_with(ctx, Prefill::Default, case, past, t, skew, 5, seed);
}

/// As [`run_attn_prefill`], with the kernel and the output rows' padding `out_pad` (odd: rows
/// not 4-byte aligned, stored a channel at a time; even multiples of 8: paired stores).
#[allow(clippy::too_many_arguments)]
fn run_attn_prefill_with(
    ctx: &mut Ctx,
    kernel: Prefill,
    case: &AttnCase,
    past: &[usize],
    t: usize,
    skew: usize,
    out_pad: usize,
    seed: u64,
) {
    let p = &case.p;
    let (src, launch) = match kernel {
        Prefill::Default => (
            attention_prefill(p).unwrap(),
            attention_prefill_launch(p, past.len(), t),
        ),
        Prefill::Wgmma => (
            attention_prefill_wgmma(p).unwrap(),
            attention_prefill_wgmma_launch(p, past.len(), t),
        ),
        Prefill::MmaOther => (
            attention_prefill_mma(p, other_mma()).unwrap(),
            attention_prefill_mma_launch(p, other_mma(), past.len(), t),
        ),
        Prefill::WgmmaOverlapped => (
            attention_prefill_wgmma_variant(p, WgmmaVariant::Overlapped).unwrap(),
            attention_prefill_wgmma_variant_launch(p, WgmmaVariant::Overlapped, past.len(), t),
        ),
        Prefill::WgmmaPlain => (
            attention_prefill_wgmma_variant(p, WgmmaVariant::Plain).unwrap(),
            attention_prefill_wgmma_variant_launch(p, WgmmaVariant::Plain, past.len(), t),
        ),
        Prefill::WgmmaForm(v) => (
            attention_prefill_wgmma_variant(p, v).unwrap(),
            attention_prefill_wgmma_variant_launch(p, v, past.len(), t),
        ),
        Prefill::WgmmaSections(v, n) => (
            fixed_sections(&attention_prefill_wgmma_variant(p, v).unwrap(), n),
            attention_prefill_wgmma_variant_launch(p, v, past.len(), t),
        ),
        Prefill::WgmmaPersistent(v, blocks) => (
            attention_prefill_wgmma_variant(p, v).unwrap(),
            attention_prefill_wgmma_persistent_launch(p, v, past.len(), t, blocks),
        ),
    };
    let form = match kernel {
        Prefill::WgmmaForm(v) | Prefill::WgmmaSections(v, _) | Prefill::WgmmaPersistent(v, _) => Some(v),
        _ => None,
    };
    ctx.load(&src);
    let mut r = rng(seed);
    let b = past.len();
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let rows = b * t;
    let kv = kv_setup(ctx, p, case.s_max, past, &mut r);
    let q = round_bf16(&uniform(&mut r, rows * h * dh, -1.5, 1.5));
    let k = round_bf16(&uniform(&mut r, rows * g * dh, -1.5, 1.5));
    let v = round_bf16(&uniform(&mut r, rows * g * dh, -1.5, 1.5));
    // q, k, v as column slices of one packed projection output.
    let width = (h + 2 * g) * dh + skew;
    let (k0, v0) = (skew + h * dh, skew + (h + g) * dh);
    let mut packed = embed(&q, rows, h * dh, width, skew, 0.0);
    for row in 0..rows {
        packed[row * width + k0..row * width + v0].copy_from_slice(&k[row * g * dh..(row + 1) * g * dh]);
        packed[row * width + v0..(row + 1) * width].copy_from_slice(&v[row * g * dh..(row + 1) * g * dh]);
    }
    let qkv = ctx.bf16(&packed, "qkv");
    let past_i: Vec<i32> = past.iter().map(|&x| x as i32).collect();
    let past_d = ctx.i32(&past_i, "past_len");
    // Padded output rows: a lane past Dh that stored anyway would leave the head's columns.
    let out_stride = h * dh + out_pad;
    let out = ctx.nan_bf16(rows * out_stride, "out");
    let mut args = vec![
        KernelArg::Ptr(qkv.device_ptr_at(skew).unwrap()),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(k0).unwrap()),
        KernelArg::I32(width as i32),
        KernelArg::Ptr(qkv.device_ptr_at(v0).unwrap()),
        KernelArg::I32(width as i32),
        kv.k_cache.arg(),
        kv.v_cache.arg(),
        past_d.arg(),
        out.arg(),
        KernelArg::I32(out_stride as i32),
        KernelArg::I32(t as i32),
        KernelArg::I32(case.s_max as i32),
    ];
    if form.is_some_and(|v| v.is_persistent()) {
        args.push(KernelArg::I32(b as i32));
    }
    if form.is_some_and(|v| v.takes_tensor_maps()) {
        let maps = attention_prefill_tma_maps(
            p,
            qkv.device_ptr_at(k0).unwrap(),
            width,
            qkv.device_ptr_at(v0).unwrap(),
            width,
            rows,
            kv.k_cache.device_ptr(),
            kv.v_cache.device_ptr(),
            b * g * case.s_max,
        );
        args.extend(maps.iter().map(|m| KernelArg::TensorMap(m.encode().unwrap())));
    }
    ctx.launch(src.name(), launch, &args);
    let mut want = Vec::new();
    for bi in 0..b {
        let (o, _, _) = attention(
            &seq(&q, bi, t, h * dh),
            &seq(&k, bi, t, g * dh),
            &seq(&v, bi, t, g * dh),
            &kv.ref_k[bi],
            &kv.ref_v[bi],
            &ref_cfg(p),
        )
        .unwrap();
        want.extend(o.data);
    }
    let what = format!(
        "attn prefill ({kernel:?}) H={h} G={g} Dh={dh} W={:?} past={past:?} T={t} skew={skew} out_pad={out_pad}",
        p.window
    );
    let got = extract(&ctx.get_bf16(&out), rows, h * dh, out_stride, 0, &what);
    check(&got, &want, BF16_TOL, &what);
    check_appended(ctx, &kv, p, case.s_max, past, t, &k, &v, &what);
}

#[test]
fn attention_prefill_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, case) in attn_cases().iter().enumerate() {
        let s = 100 + 10 * i as u64;
        run_attn_prefill(&mut ctx, case, &[5, 19], 37, 0, s);
        run_attn_prefill(&mut ctx, case, &[0, 3], 1, 0, s + 1);
        run_attn_prefill(&mut ctx, case, &[0], 16, 0, s + 2);
        // Misaligned rows; several query tiles of the tensor-core kernel (64 rows) and key tiles.
        run_attn_prefill(&mut ctx, case, &[3], 20, 1, s + 3);
        if case.s_max >= 150 {
            run_attn_prefill(&mut ctx, case, &[0, 21], 129, 0, s + 4);
        }
    }
}

/// Head size 128 (the Hopper kernel's) over several query tiles of 128 and key tiles of 64/128:
/// GQA ratios 1, 4 and 8, a ring-cache sliding window, T not a multiple of the tiles, T below a
/// tile, B > 1.
fn attn_cases_128() -> Vec<AttnCase> {
    let p = |heads, kv_heads, window| AttentionParams {
        heads,
        kv_heads,
        head_dim: 128,
        window,
        scale: 128f32.powf(-0.5),
    };
    vec![
        AttnCase {
            p: p(8, 2, None),
            s_max: 700,
        },
        AttnCase {
            p: p(4, 4, None),
            s_max: 700,
        },
        AttnCase {
            p: p(16, 2, None),
            s_max: 700,
        },
        AttnCase {
            p: p(8, 1, Some(100)),
            s_max: 420,
        },
        AttnCase {
            p: p(4, 2, Some(200)),
            s_max: 520,
        },
    ]
}

/// Both tensor-core prefills on head size 128, every case of [`attn_cases_128`].
fn run_attn_prefill_128(ctx: &mut Ctx, kernel: Prefill) {
    for (i, case) in attn_cases_128().iter().enumerate() {
        let s = 500 + 10 * i as u64;
        run_attn_prefill_with(ctx, kernel, case, &[0, 37], 300, 0, 8, s);
        run_attn_prefill_with(ctx, kernel, case, &[0], 300, 0, 5, s + 1);
        run_attn_prefill_with(ctx, kernel, case, &[130], 100, 0, 5, s + 2);
        run_attn_prefill_with(ctx, kernel, case, &[5, 0, 200], 1, 0, 8, s + 3);
        run_attn_prefill_with(ctx, kernel, case, &[64], 257, 1, 5, s + 4);
        run_attn_prefill_with(ctx, kernel, case, &[300], 128, 0, 0, s + 5);
    }
}

#[test]
fn attention_prefill_128_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::Default);
}

/// The other `mma.sync` form of the tensor-core prefill, on every tensor-core case.
#[test]
fn attention_prefill_mma_other_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::MmaOther);
    for (i, case) in attn_cases().iter().enumerate() {
        if !tensor_core_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0, 3], 1, 0, 5, s + 1);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0], 16, 0, 5, s + 2);
        run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[3], 20, 1, 5, s + 3);
        if case.s_max >= 150 {
            run_attn_prefill_with(&mut ctx, Prefill::MmaOther, case, &[0, 21], 129, 0, 8, s + 4);
        }
    }
}

/// The plain form of the Hopper prefill (a simpler main loop: isolates descriptor and layout
/// bugs from pipelining ones).
#[test]
fn attention_prefill_wgmma_plain_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::WgmmaPlain);
}

/// The overlapped form of the Hopper prefill (all threads load; block-wide barriers).
#[test]
fn attention_prefill_wgmma_overlapped_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_attn_prefill_128(&mut ctx, Prefill::WgmmaOverlapped);
    for (i, case) in attn_cases().iter().enumerate() {
        if !wgmma_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(&mut ctx, Prefill::WgmmaOverlapped, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(&mut ctx, Prefill::WgmmaOverlapped, case, &[3], 20, 1, 5, s + 3);
    }
}

/// The other warp-specialised forms of the Hopper prefill (without ping-pong; ping-pong with 2
/// stages; ping-pong with k/v loads from the start), on every case of the default Hopper test.
#[test]
fn attention_prefill_wgmma_other_forms_match_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    // The default (ping-pong, FA3 order, lazy rescale) and the TMA form have tests of their own.
    for v in WgmmaVariant::WARP_SPECIALISED {
        if v != ATTN_WGMMA_DEFAULT && v != WgmmaVariant::PingPongTma && !v.is_persistent() {
            run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(v));
        }
    }
}

/// A Hopper prefill form on every case of [`attn_cases_128`] and the small cases of
/// [`attn_cases`] with head size 128.
fn run_wgmma_prefill_cases(ctx: &mut Ctx, kernel: Prefill) {
    run_attn_prefill_128(ctx, kernel);
    for (i, case) in attn_cases().iter().enumerate() {
        if !wgmma_prefill(&case.p) {
            continue;
        }
        let s = 100 + 10 * i as u64;
        run_attn_prefill_with(ctx, kernel, case, &[5, 19], 37, 0, 5, s);
        run_attn_prefill_with(ctx, kernel, case, &[0, 3], 1, 0, 5, s + 1);
        run_attn_prefill_with(ctx, kernel, case, &[3], 20, 1, 5, s + 3);
    }
}

/// The Hopper prefill with TMA k/v loads (tensor maps for new keys and cache rows; tiles that
/// are neither, and unaligned rows, copied by the producer warp), on every case of the default
/// Hopper test.
#[test]
fn attention_prefill_wgmma_tma_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(WgmmaVariant::PingPongTma));
}

/// The L2-section tile order of the warp-specialised Hopper prefill (both producers): sections
/// of 1 and 3 KV heads (so several sections, and a shorter last one where the KV heads of the
/// batch do not divide by 3), on every head-size-128 case. Every (head, query tile) must be
/// computed exactly once: the outputs start as NaN and are checked whole.
#[test]
fn attention_prefill_wgmma_l2_sections_match_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    for v in [ATTN_WGMMA_DEFAULT, WgmmaVariant::PingPongTma] {
        for n in [1, 3] {
            run_attn_prefill_128(&mut ctx, Prefill::WgmmaSections(v, n));
        }
    }
}

/// The persistent forms (`cp.async` and TMA producers) on every case of the default Hopper test:
/// with one item per block (the plain grid), with a few blocks each walking many items (1, 2,
/// 3 and 7: both snake directions, a partial last round, items of unequal length back to back
/// in one pipeline), and with as many blocks as SMs (what programs launch).
#[test]
fn attention_prefill_wgmma_persistent_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    let sms = ctx.gpu.sm_count() as usize;
    for v in [WgmmaVariant::PingPongPersistent, WgmmaVariant::PingPongTmaPersistent] {
        run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaForm(v));
        for blocks in [1, 2, 3, 7, sms] {
            run_wgmma_prefill_cases(&mut ctx, Prefill::WgmmaPersistent(v, blocks));
        }
    }
}

/// The Hopper (`wgmma`, sm_90a) prefill; skipped with a notice on other GPUs.
#[test]
fn attention_prefill_wgmma_matches_reference() {
    let Some(mut ctx) = hopper_setup() else { return };
    run_wgmma_prefill_cases(&mut ctx, Prefill::Wgmma);
}

fn run_attn_decode(ctx: &mut Ctx, case: &AttnCase, past: &[usize], n_splits: usize, seed: u64) {
    run_attn_decode_with(ctx, ATTN_DECODE_DEFAULT, case, past, n_splits, seed);
}

fn run_attn_decode_with(
    ctx: &mut Ctx,
    variant: DecodeVariant,
    case: &AttnCase,
    past: &[usize],
    n_splits: usize,
    seed: u64,
) {
    let p = &case.p;
    let src = attention_decode_variant(p, variant).unwrap();
    ctx.load(&src);
    let b = past.len();
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let (kv, [q, k, v]) = decode_inputs(ctx, case, past, seed);
    let (q_d, k_d, v_d) = (ctx.bf16(&q, "q"), ctx.bf16(&k, "k"), ctx.bf16(&v, "v"));
    let past_i: Vec<i32> = past.iter().map(|&x| x as i32).collect();
    let past_d = ctx.i32(&past_i, "past_len");
    let partial = ctx.nan_f32(attention_decode_workspace_len(p, b, n_splits), "partial");
    let out_stride = h * dh + 7;
    let out = ctx.nan_bf16(b * out_stride, "out");
    let (l1, l2) = attention_decode_variant_launch(p, variant, b, n_splits);
    // The partials kernel's arguments (the fused form's start with them too).
    let decode_args =
        |partial: &GpuBuffer<f32>| partials_args(p, [&q_d, &k_d, &v_d], &kv, &past_d, partial, case.s_max, n_splits);
    ctx.launch(&src.entries[0], l1, &decode_args(&partial));
    launch_combine(ctx, &src, l2, &partial, &out, out_stride, n_splits);
    let want = decode_reference(p, &kv, &q, &k, &v);
    let what = format!(
        "attn decode {variant:?} H={h} G={g} Dh={dh} W={:?} past={past:?} splits={n_splits}",
        p.window
    );
    let got = extract(&ctx.get_bf16(&out), b, h * dh, out_stride, 0, &what);
    check(&got, &want, BF16_TOL, &what);
    check_appended(ctx, &kv, p, case.s_max, past, 1, &k, &v, &what);

    // The default form with the combine in its last block (loading its first tiles before the
    // dependent-launch wait, or after): the same output (the same partials merged in the same
    // order, so equal up to how the compiler contracts the merge's products: one bf16 rounding
    // step), on every element, twice in a row (each launch leaves the counts zero for the next).
    if variant != ATTN_DECODE_DEFAULT {
        return;
    }
    for early in [false, true] {
        let Some(fused) = attention_decode_fused(p, early, None).unwrap() else {
            return;
        };
        ctx.load(&fused);
        let count = ctx.i32(&vec![0; b * g], "count");
        for round in 0..2 {
            let partial = ctx.nan_f32(attention_decode_workspace_len(p, b, n_splits), "partial");
            let what = format!("{what}, combine in the last block (early loads: {early}), launch {round}");
            let rows = (b, h * dh, out_stride);
            check_fused(ctx, &fused, l1, decode_args(&partial), rows, &count, &got, &what);
        }
    }
}

/// A decode call's random history (`kv_setup`) and its new q, k and v rows (bf16 values).
fn decode_inputs(ctx: &Ctx, case: &AttnCase, past: &[usize], seed: u64) -> (KvSetup, [Vec<f64>; 3]) {
    let p = &case.p;
    let mut r = rng(seed);
    let b = past.len();
    let kv = kv_setup(ctx, p, case.s_max, past, &mut r);
    let rows =
        [p.heads, p.kv_heads, p.kv_heads].map(|heads| round_bf16(&uniform(&mut r, b * heads * p.head_dim, -1.5, 1.5)));
    (kv, rows)
}

/// The decode partials kernel's arguments: dense q `[B, H·Dh]`, k and v `[B, G·Dh]` rows, `kv`'s
/// caches, the positions and the partials.
#[allow(clippy::too_many_arguments)]
fn partials_args(
    p: &AttentionParams,
    [q, k, v]: [&GpuBuffer<bf16>; 3],
    kv: &KvSetup,
    past_len: &GpuBuffer<i32>,
    partial: &GpuBuffer<f32>,
    s_max: usize,
    n_splits: usize,
) -> Vec<KernelArg> {
    let (hd, gd) = ((p.heads * p.head_dim) as i32, (p.kv_heads * p.head_dim) as i32);
    vec![
        q.arg(),
        KernelArg::I32(hd),
        k.arg(),
        KernelArg::I32(gd),
        v.arg(),
        KernelArg::I32(gd),
        kv.k_cache.arg(),
        kv.v_cache.arg(),
        past_len.arg(),
        partial.arg(),
        KernelArg::I32(s_max as i32),
        KernelArg::I32(n_splits as i32),
    ]
}

/// The reference decode of q, k, v rows (one token per sequence) over `kv`'s caches.
fn decode_reference(p: &AttentionParams, kv: &KvSetup, q: &[f64], k: &[f64], v: &[f64]) -> Vec<f64> {
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let mut want = Vec::new();
    for bi in 0..kv.ref_k.len() {
        let (o, _, _) = attention(
            &seq(q, bi, 1, h * dh),
            &seq(k, bi, 1, g * dh),
            &seq(v, bi, 1, g * dh),
            &kv.ref_k[bi],
            &kv.ref_v[bi],
            &ref_cfg(p),
        )
        .unwrap();
        want.extend(o.data);
    }
    want
}

/// The decode module's combine entry over `partial` into `out`.
fn launch_combine(
    ctx: &Ctx,
    src: &KernelSource,
    l2: LaunchDims,
    partial: &GpuBuffer<f32>,
    out: &GpuBuffer<bf16>,
    out_stride: usize,
    n_splits: usize,
) {
    ctx.launch(
        &src.entries[1],
        l2,
        &[
            partial.arg(),
            out.arg(),
            KernelArg::I32(out_stride as i32),
            KernelArg::I32(n_splits as i32),
        ],
    );
}

/// Launches a fused decode (`args`: the partials kernel's; its output rows, `b` of `width` at
/// `out_stride`, and `count` follow) and checks that every element equals the two launches'
/// output `got` up to one bf16 rounding step (the same partials merged in the same order; the
/// compiler may contract the merge's products differently) and that it left the counts zero.
#[allow(clippy::too_many_arguments)]
fn check_fused(
    ctx: &Ctx,
    fused: &KernelSource,
    l1: LaunchDims,
    mut args: Vec<KernelArg>,
    (b, width, out_stride): (usize, usize, usize),
    count: &GpuBuffer<i32>,
    got: &[f64],
    what: &str,
) {
    let out = ctx.nan_bf16(b * out_stride, "fused out");
    args.extend([out.arg(), KernelArg::I32(out_stride as i32), count.arg()]);
    ctx.launch(&fused.entries[0], l1, &args);
    let fused_got = extract(&ctx.get_bf16(&out), b, width, out_stride, 0, what);
    for (i, (f, u)) in fused_got.iter().zip(got).enumerate() {
        assert!(
            (f - u).abs() <= u.abs() * 2f64.powi(-7),
            "{what}: element {i} is {f}, the combine wrote {u}"
        );
    }
    let counts = ctx.gpu.download(count, "count").unwrap();
    assert!(counts.iter().all(|&c| c == 0), "{what}: counts left {counts:?}");
}

/// The decode with RoPE folded in (`attention_decode_rope`, then its combine; and the fused
/// form, early loads included) on unrotated q and k rows: against the reference's RoPE then
/// attention (each rotated row rounded to bf16, as the rope kernel stores it). The rotated
/// key lands in the cache; the kernels never read their `q` and `k` arguments (NaN here).
fn run_attn_decode_rope(ctx: &mut Ctx, case: &AttnCase, past: &[usize], n_splits: usize, seed: u64) {
    use modelc::reference::ops::rope::rope;
    let p = &case.p;
    let theta = 1.0e4;
    let (Some(src), Some(fused)) = (
        attention_decode_rope(p, theta).unwrap(),
        attention_decode_fused(p, true, Some(theta)).unwrap(),
    ) else {
        return;
    };
    ctx.load(&src);
    ctx.load(&fused);
    let b = past.len();
    let (h, g, dh) = (p.heads, p.kv_heads, p.head_dim);
    let (kv, [q, k, v]) = decode_inputs(ctx, case, past, seed);
    let positions: Vec<f64> = past.iter().map(|&x| x as f64).collect();
    let rotate = |x: &[f64], width: usize| {
        let rotated = rope(
            &arr(&[b, 1, width], x.to_vec()),
            &arr(&[b, 1], positions.clone()),
            dh,
            theta,
        )
        .unwrap();
        round_bf16(&rotated.data)
    };
    let (q_rot, k_rot) = (rotate(&q, h * dh), rotate(&k, g * dh));
    let (q_d, k_d, v_d) = (ctx.bf16(&q, "q_in"), ctx.bf16(&k, "k_in"), ctx.bf16(&v, "v"));
    let (q_nan, k_nan) = (
        ctx.nan_bf16(b * h * dh, "q (unread)"),
        ctx.nan_bf16(b * g * dh, "k (unread)"),
    );
    let past_i: Vec<i32> = past.iter().map(|&x| x as i32).collect();
    let past_d = ctx.i32(&past_i, "past_len");
    let pos_d = ctx.i32(&past_i, "positions");
    let out_stride = h * dh + 7;
    let (l1, l2) = attention_decode_launch(p, b, n_splits);
    let args = |partial: &GpuBuffer<f32>| {
        let mut args = partials_args(p, [&q_nan, &k_nan, &v_d], &kv, &past_d, partial, case.s_max, n_splits);
        args.extend([
            q_d.arg(),
            KernelArg::I32((h * dh) as i32),
            k_d.arg(),
            KernelArg::I32((g * dh) as i32),
            pos_d.arg(),
        ]);
        args
    };
    let want = decode_reference(p, &kv, &q_rot, &k_rot, &v);
    let what = format!(
        "attn decode with RoPE H={h} G={g} Dh={dh} W={:?} past={past:?} splits={n_splits}",
        p.window
    );
    // The two launches.
    let partial = ctx.nan_f32(attention_decode_workspace_len(p, b, n_splits), "partial");
    let out = ctx.nan_bf16(b * out_stride, "out");
    ctx.launch(&src.entries[0], l1, &args(&partial));
    launch_combine(ctx, &src, l2, &partial, &out, out_stride, n_splits);
    let got = extract(&ctx.get_bf16(&out), b, h * dh, out_stride, 0, &what);
    check(&got, &want, BF16_TOL, &what);
    // The rotated key in the cache: the kernel's sincos is f32 (the rope kernel's), the
    // reference's f64, so a row may differ by one bf16 rounding step.
    let kc = ctx.get_bf16(&kv.k_cache);
    for (bi, &pl) in past.iter().enumerate() {
        let slot = if p.window.is_some() { pl % case.s_max } else { pl };
        for gi in 0..g {
            let c = ((bi * g + gi) * case.s_max + slot) * dh;
            let n = (bi * g + gi) * dh;
            for (d, (got, want)) in kc[c..c + dh].iter().zip(&k_rot[n..n + dh]).enumerate() {
                assert!(
                    (got - want).abs() <= want.abs() * 2f64.powi(-7) + 1e-6,
                    "{what}: cached key b={bi} g={gi} channel {d}: {got}, the reference {want}"
                );
            }
        }
    }
    // The fused form: the combine's output, up to a bf16 rounding step; counts left zero.
    let count = ctx.i32(&vec![0; b * g], "count");
    let partial = ctx.nan_f32(attention_decode_workspace_len(p, b, n_splits), "partial");
    let what = format!("{what}, fused");
    check_fused(
        ctx,
        &fused,
        l1,
        args(&partial),
        (b, h * dh, out_stride),
        &count,
        &got,
        &what,
    );
}

/// The decode with RoPE folded in, on every case the tensor-core decode serves, at positions
/// from 0 to past the first hundred (the angles' range grows with the position).
#[test]
fn attention_decode_with_rope_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, case) in attn_cases().iter().enumerate() {
        if !mma_decode(&case.p) {
            continue;
        }
        let s = 900 + 10 * i as u64;
        run_attn_decode_rope(&mut ctx, case, &[0, 40], 1, s);
        run_attn_decode_rope(&mut ctx, case, &[7, 40], 4, s + 1);
        if case.s_max >= 150 {
            run_attn_decode_rope(&mut ctx, case, &[140, 99, 0], 3, s + 2);
        }
    }
}

#[test]
fn attention_decode_matches_reference() {
    let Some(mut ctx) = setup() else { return };
    for (i, case) in attn_cases().iter().enumerate() {
        let s = 200 + 10 * i as u64;
        run_attn_decode(&mut ctx, case, &[0, 40], 1, s);
        run_attn_decode(&mut ctx, case, &[7, 40], 4, s + 1);
        // More splits than visible keys: empty splits must merge away.
        run_attn_decode(&mut ctx, case, &[2, 1], 8, s + 2);
        // Several shared-memory tiles per split in the grouped kernel.
        if case.s_max >= 150 {
            run_attn_decode(&mut ctx, case, &[140, 99, 0], 2, s + 3);
        }
        run_attn_decode_extra(&mut ctx, ATTN_DECODE_DEFAULT, case, s + 5);
    }
}

/// Longer histories: several tiles per split, the split counts the executor picks, splits that
/// end inside a tile, and ring caches that wrapped (windowed cases, past beyond S_max).
fn run_attn_decode_extra(ctx: &mut Ctx, variant: DecodeVariant, case: &AttnCase, s: u64) {
    let p = &case.p;
    if p.window.is_some() {
        let long = [case.s_max + 13, 3 * case.s_max + 1];
        run_attn_decode_with(ctx, variant, case, &long, 1, s);
        run_attn_decode_with(ctx, variant, case, &long, 3, s + 1);
        run_attn_decode_with(ctx, variant, case, &[2 * case.s_max, 5], 5, s + 2);
    } else {
        let full = case.s_max - 1;
        run_attn_decode_with(ctx, variant, case, &[full, full / 2], 1, s);
        run_attn_decode_with(ctx, variant, case, &[full, 17], 3, s + 1);
        let picked = attention_decode_pick_splits(p, 2, full, 132);
        run_attn_decode_with(ctx, variant, case, &[full, full - 33], picked, s + 2);
    }
}

/// Every form of the decode on the shapes the tensor-core form serves (the others fall back to
/// the same kernels as the default, covered above).
#[test]
fn attention_decode_variants_match_reference() {
    let Some(mut ctx) = setup() else { return };
    for variant in DECODE_VARIANTS {
        for (i, case) in attn_cases().iter().chain(&attn_cases_128()).enumerate() {
            if !mma_decode(&case.p) {
                continue;
            }
            let s = 900 + 10 * i as u64;
            run_attn_decode_with(&mut ctx, variant, case, &[0, 40], 1, s);
            run_attn_decode_with(&mut ctx, variant, case, &[7, 40], 4, s + 1);
            run_attn_decode_with(&mut ctx, variant, case, &[2, 1], 8, s + 2);
            run_attn_decode_extra(&mut ctx, variant, case, s + 5);
        }
    }
}

/// The decode forms the variant test and the benchmark run.
pub(crate) const DECODE_VARIANTS: [DecodeVariant; 4] = [
    DecodeVariant::Cuda,
    DecodeVariant::Mma(3),
    DecodeVariant::Mma(4),
    DecodeVariant::Mma(6),
];
