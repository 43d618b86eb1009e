//! The kernel table `modelc build` prints and writes: the distinct kernels, the launches per
//! layer of one decode token, and the bytes that token moves against the minimum (every weight
//! read once, every state read and written once, the KV cache read up to `past` and appended).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::Codegen;
use crate::ir::Op;
use crate::passes::Placement;
use crate::spec::{MixerSpec, ModelSpec};
use modelc_runtime::program::{Env, Expr, Program, Step};

/// The SM count of an H100 SXM, used where a launch depends on the device.
pub const REPORT_SMS: u64 = 132;

/// The mixer a layer runs under a placement: `kda`, or `stochastic:kda`.
pub fn active_mixer(spec: &ModelSpec, placement: &Placement, layer: usize) -> String {
    match spec.layers.get(layer).map(|b| &b.mixer) {
        Some(MixerSpec::Stochastic(_)) => match active_leaf(spec, placement, layer) {
            Some(m) => format!("stochastic:{}", m.kind().name()),
            None => "stochastic:?".into(),
        },
        Some(m) => m.kind().name().to_string(),
        None => "-".into(),
    }
}

/// The mixer a layer runs under the placement (a stochastic layer's chosen sub-mixer).
fn active_leaf<'s>(spec: &'s ModelSpec, placement: &Placement, layer: usize) -> Option<&'s MixerSpec> {
    match &spec.layers.get(layer)?.mixer {
        MixerSpec::Stochastic(s) => s.get(placement.choices.get(&layer).unwrap_or(&s.main_mixer_name)),
        m => Some(m),
    }
}

/// Whether a layer's active mixer is of `kind` (`kda`, `attention`, `sliding_window`, ...).
pub fn layer_runs(spec: &ModelSpec, placement: &Placement, layer: usize, kind: &str) -> bool {
    let m = active_mixer(spec, placement, layer);
    m == kind || m.strip_prefix("stochastic:") == Some(kind)
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

fn eval(e: &Expr, env: &Env) -> u64 {
    e.eval(env).unwrap_or(0)
}

/// Per-row totals of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerRow {
    /// `None` for the embedding and head.
    pub layer: Option<usize>,
    pub mixer: String,
    pub gemms: usize,
    pub kernels: usize,
    pub bytes: u64,
    pub minimum: u64,
}

/// Decode bytes and launches per layer for one token at `past`, batch 1.
pub fn decode_rows(
    cg: &Codegen,
    program: &Program,
    spec: &ModelSpec,
    placement: &Placement,
    past: u64,
) -> Vec<LayerRow> {
    let env = Env {
        batch: 1,
        tokens: 1,
        past,
        max_len: past + 1,
        slots: 1,
        slot: 0,
        sms: REPORT_SMS,
    };
    let mut rows: BTreeMap<Option<usize>, LayerRow> = BTreeMap::new();
    fn row(rows: &mut BTreeMap<Option<usize>, LayerRow>, l: Option<usize>) -> &mut LayerRow {
        rows.entry(l).or_insert_with(|| LayerRow {
            layer: l,
            ..LayerRow::default()
        })
    }
    for s in &program.decode.steps {
        let r = row(&mut rows, s.layer());
        match s {
            Step::Gemm(g) => {
                r.gemms += 1;
                r.bytes += eval(&g.bytes, &env);
            }
            Step::Launch(l) => {
                r.kernels += 1;
                // A module's cost covers all its entries: count it at its first entry.
                if let Some(m) = program.kernels.iter().find(|k| k.name == l.module) {
                    if m.entries.first() == Some(&l.entry) {
                        r.bytes += eval(&m.bytes_loaded, &env) + eval(&m.bytes_stored, &env);
                    }
                }
            }
        }
    }
    // Minimum: weights once (an embedding table only its row), states read + written once.
    let graph = &cg.graph;
    for n in graph.g.node_indices() {
        let node = graph.node(n);
        let Op::Weight { shape, dtype, .. } = &node.op else {
            continue;
        };
        let users = graph.users(n);
        let gathered = !users.is_empty()
            && users
                .iter()
                .all(|(u, p)| matches!(graph.node(*u).op, Op::Embedding) && p.input == 1);
        let bytes = if gathered {
            shape.get(1).copied().unwrap_or(0)
        } else {
            shape.iter().product()
        } * dtype.size();
        row(&mut rows, node.layer).minimum += bytes as u64;
    }
    for st in &program.states {
        let layer = st
            .name
            .strip_prefix("layers.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse().ok());
        let size = eval(&st.per_slot(), &env) * st.dtype.size() as u64;
        let cache_len = st
            .shape
            .iter()
            .find(|d| d.uses(modelc_runtime::program::Sym::MaxLen))
            .map(|d| eval(d, &env));
        let bytes = if let Some(cap) = cache_len {
            // KV cache: read the cached tokens and append one; a sliding window reads at most
            // the W tokens its query sees.
            let window = layer.and_then(|l| match active_leaf(spec, placement, l) {
                Some(MixerSpec::Attention(a)) => a.window_size.map(|w| w as u64),
                _ => None,
            });
            let tokens = (past + 1).min(cap).min(window.unwrap_or(u64::MAX));
            size / cap.max(1) * tokens
        } else {
            2 * size
        };
        row(&mut rows, layer).minimum += bytes;
    }
    // Token id in, logits out.
    for io in program.inputs.iter().take(2).chain(&program.outputs) {
        row(&mut rows, None).minimum += eval(&io.elements, &env) * io.dtype.size() as u64;
    }
    rows.into_values()
        .map(|mut r| {
            r.mixer = r
                .layer
                .map_or("embed+head".into(), |i| active_mixer(spec, placement, i));
            r
        })
        .collect()
}

/// The table: kernels, then decode launches and bytes per layer.
pub fn table(cg: &Codegen, program: &Program, spec: &ModelSpec, placement: &Placement, past: u64) -> String {
    let mut out = String::new();
    let entries: usize = program.kernels.iter().map(|k| k.entries.len()).sum();
    let _ = writeln!(
        out,
        "kernels: {} modules, {entries} entry points",
        program.kernels.len()
    );
    let _ = writeln!(
        out,
        "  {:<44} {:<25} {:>7} {:>6}  layers",
        "module", "kind", "entries", "steps"
    );
    for (k, kernel) in cg.kernels.iter().enumerate() {
        let users = cg.users_of(k);
        // Ascending numerically, as ranges (`-` for steps outside any layer).
        let layers: BTreeSet<Option<usize>> = users.iter().map(|&s| cg.plan.steps[s].layer).collect();
        let numbered: Vec<usize> = layers.iter().flatten().copied().collect();
        let mut shown = Vec::new();
        if layers.contains(&None) {
            shown.push("-".to_string());
        }
        if !numbered.is_empty() {
            shown.push(crate::ir::summary::ranges(&numbered));
        }
        let _ = writeln!(
            out,
            "  {:<44} {:<25} {:>7} {:>6}  {}{}",
            kernel.name,
            kernel.kind,
            kernel.entries.len(),
            users.len(),
            shown.join(", "),
            // A single-target module runs only as a launch variant on that target's devices.
            kernel
                .target
                .as_deref()
                .map_or(String::new(), |t| format!("  ({t} only: a launch variant)"))
        );
    }
    let rows = decode_rows(cg, program, spec, placement, past);
    let _ = writeln!(
        out,
        "decode, one token (batch 1, past {past}): launches and bytes moved per layer"
    );
    let _ = writeln!(
        out,
        "  {:>5}  {:<22} {:>5} {:>7} {:>8} {:>12} {:>12} {:>6}",
        "layer", "mixer", "gemms", "kernels", "launches", "bytes", "minimum", "ratio"
    );
    let mut total = LayerRow::default();
    for r in &rows {
        let _ = writeln!(
            out,
            "  {:>5}  {:<22} {:>5} {:>7} {:>8} {:>12} {:>12} {:>6.2}",
            r.layer.map_or("-".to_string(), |l| l.to_string()),
            r.mixer,
            r.gemms,
            r.kernels,
            r.gemms + r.kernels,
            human(r.bytes),
            human(r.minimum),
            r.bytes as f64 / r.minimum.max(1) as f64
        );
        total.gemms += r.gemms;
        total.kernels += r.kernels;
        total.bytes += r.bytes;
        total.minimum += r.minimum;
    }
    let _ = writeln!(
        out,
        "  {:>5}  {:<22} {:>5} {:>7} {:>8} {:>12} {:>12} {:>6.2}",
        "total",
        "",
        total.gemms,
        total.kernels,
        total.gemms + total.kernels,
        human(total.bytes),
        human(total.minimum),
        total.bytes as f64 / total.minimum.max(1) as f64
    );
    out
}

/// The fusion plan as text: one line per step (kind, layer, kernels), then the nodes it fuses.
pub fn steps_text(cg: &Codegen) -> String {
    steps_text_filtered(cg, |_| true)
}

/// [`steps_text`] for the steps `keep` selects.
pub fn steps_text_filtered(cg: &Codegen, keep: impl Fn(&crate::passes::fuse::Step) -> bool) -> String {
    use crate::passes::fuse::StepKind;
    let mut out = String::new();
    for (i, (step, code)) in cg.plan.steps.iter().zip(&cg.steps).enumerate() {
        if !keep(step) {
            continue;
        }
        let kind = match &step.kind {
            StepKind::Gemm { linear, residual } => {
                let key = cg
                    .graph
                    .inputs(*linear)
                    .get(1)
                    .and_then(|w| match &cg.graph.node(w.node).op {
                        Op::Weight { key, .. } => Some(key.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let short = key.strip_suffix(".weight").unwrap_or(&key);
                let short = short.rsplit('.').next().unwrap_or(short);
                format!(
                    "gemm {short}{}",
                    if residual.is_some() {
                        " + residual (beta = 1)"
                    } else {
                        ""
                    }
                )
            }
            StepKind::Core(_) | StepKind::Glue => {
                let names: Vec<&str> = code
                    .prefill
                    .iter()
                    .chain(&code.decode)
                    .filter_map(|l| cg.kernels.get(l.kernel).map(|k| k.name.as_str()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                names.join(" / ")
            }
        };
        let scope = if step.scope.is_empty() {
            "model"
        } else {
            step.scope.as_str()
        };
        let absorbed = match code.decode_absorbed_by {
            Some(by) => format!("  (decode: in step {by}'s kernel)"),
            None => String::new(),
        };
        let _ = writeln!(out, "step {i:>3}  {scope:<28} {kind}{absorbed}");
        for f in &code.fuses {
            let _ = writeln!(out, "             {f}");
        }
    }
    out
}
