//! An application of a crate that `modelc build SPEC -s SURGERY -o DIR` generated (built and run
//! by `compiler/tests/typed_app.rs`, which names that crate `tiny_kil`). Usage:
//! `typed-app GENERATED_CRATE_DIR WORK_DIR`.
//!
//! It writes a random checkpoint through the typed API, loads it back, converts it with the
//! crate's typed KIL converter, checks the converted tensors against the rows the plan names,
//! runs the result on the CPU reference and compares its logits with the same model built from
//! the spec at run time (spec files, untyped `modelc convert`), and checks that loading a
//! checkpoint with a missing or mis-shaped tensor names the key. Any failure exits non-zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tiny_kil::modelc::ir::lower::lower_model;
use tiny_kil::modelc::passes::{placement::specialize, Placement};
use tiny_kil::modelc::reference::{InterpOptions, Session, WeightStore};
use tiny_kil::modelc::spec::{layout, ModelSpec};
use tiny_kil::modelc::surgery::expr::SliceRange;
use tiny_kil::modelc::surgery::{convert_checkpoint, plan_config, ConvertOptions, Expr, SurgeryFile};
use tiny_kil::modelc_runtime::tensor::{DType, HostTensor};
use tiny_kil::modelc_runtime::typed::TensorDecl;
use tiny_kil::modelc_runtime::weights::{write_safetensors, Checkpoint};
use tiny_kil::{model, source};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("typed-app: {e}");
        std::process::exit(1);
    }
}

fn check(ok: bool, what: String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn run() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [crate_dir, work] = args.as_slice() else {
        return Err("usage: typed-app GENERATED_CRATE_DIR WORK_DIR".into());
    };
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    std::fs::create_dir_all(work)?;

    // A random source checkpoint, written and read back through the typed API.
    let layout: Vec<(String, Vec<usize>)> = source::Model::layout().into_iter().map(|d| (d.key, d.shape)).collect();
    let store = WeightStore::random(&layout, 11);
    let random = source::Model::from_fn(|d: &TensorDecl| {
        let a = store.get(&d.key).expect("every declared tensor has random values");
        HostTensor::from_f64(a.shape.clone(), &a.data)
            .expect("shape and values agree")
            .cast(d.dtype)
    })?;
    let source_dir = random.save(&work.join("source"))?;
    let loaded = source::Model::load(&source_dir)?;
    check(
        loaded == random,
        "the loaded checkpoint differs from the saved one".into(),
    )?;
    println!(
        "typed-app: wrote and loaded a random {}-tensor checkpoint",
        loaded.tensors().len()
    );

    // The typed KIL converter.
    let converted = tiny_kil::convert(&loaded, 0)?;
    converted.validate()?;

    // The same conversion planned at run time from the crate's spec files.
    let spec_dir = crate_dir.join("spec");
    let source_spec = tiny_kil::modelc::spec::load(&spec_dir.join("tiny-attention.yaml"))?;
    let surgery = SurgeryFile::load(&spec_dir.join("hybrid_kil.yaml"))?;
    let surgeries = vec![(surgery.name.clone(), surgery.value.clone())];
    let config = tiny_kil::modelc::spec::to_config_json(&source_spec);
    let conversion = plan_config(&config, None, None, &surgeries)?;
    check(
        conversion.spec == tiny_kil::modelc::typed::spec::<model::Model>()?,
        "the typed model's spec differs from the spec built at run time".into(),
    )?;

    // Every q/k/v/o of each converted KIL mixer holds exactly the source rows the plan names.
    let src: BTreeMap<String, &HostTensor> = loaded.tensors().into_iter().collect();
    let mut checked = 0;
    for (i, layer) in converted.layers.iter().enumerate() {
        let model::Layer::Stochastic(block) = layer else {
            continue;
        };
        let kda = &block.mixer.kda;
        for (name, t) in [
            ("q_proj", &kda.q_proj_weight),
            ("k_proj", &kda.k_proj_weight),
            ("v_proj", &kda.v_proj_weight),
            ("o_proj", &kda.o_proj_weight),
        ] {
            let key = format!("model.decoder.blocks.{i}.mixer.mixers.kda.{name}.weight");
            let expr = conversion.plan.get(&key).ok_or(format!("the plan has no `{key}`"))?;
            let rows = named_rows(expr).ok_or(format!("`{key}` is not made of source rows"))?;
            let expected = gather(&src, &rows)?;
            check(
                t.data == expected,
                format!("`{key}` differs from the source rows {rows:?}"),
            )?;
            checked += 1;
        }
    }
    check(checked >= 4, format!("only {checked} KIL projections checked"))?;
    println!("typed-app: {checked} KIL projections equal the source rows their plan names");

    // Logits of the typed model on the CPU reference, and of the same model built at run time:
    // the spec from the spec files, the weights from `modelc convert` of the same checkpoint.
    let untyped_dir = work.join("untyped");
    let opts = ConvertOptions {
        dtype: Some(DType::BF16),
        ..ConvertOptions::default()
    };
    convert_checkpoint(&source_dir, &untyped_dir, &surgeries, &opts, &mut |_| {})?;
    let declared: Vec<(String, Vec<usize>)> = layout::weights(&conversion.spec)
        .into_iter()
        .map(|w| (w.key, w.shape))
        .collect();
    let untyped = WeightStore::from_checkpoint(&Checkpoint::open(&untyped_dir)?, &declared)?;
    let typed = tiny_kil::modelc::typed::weight_store(&converted);
    let prompt = [3u32, 17, 42, 5, 99, 64];
    for placement in [
        Placement::main(&conversion.spec),
        Placement::all(&conversion.spec, "kda")?,
    ] {
        let a = logits(&conversion.spec, &typed, &placement, &prompt)?;
        let b = logits(&conversion.spec, &untyped, &placement, &prompt)?;
        check(a.iter().all(|x| x.is_finite()), "non-finite logits".into())?;
        // Same weights bit for bit and the same graph: the interpreter gives the same numbers.
        check(a == b, format!("logits differ under placement {:?}", placement.choices))?;
    }
    println!("typed-app: logits equal those of the model built from the spec at run time");

    // A checkpoint with a tensor missing, or mis-shaped, fails to load, naming the key.
    let missing = "model.decoder.blocks.1.mixer.mixers.kda.k_proj.weight";
    let bad = "model.decoder.blocks.0.mlp.down_proj.weight";
    let tensors: Vec<(String, HostTensor)> = converted.tensors().into_iter().map(|(k, t)| (k, t.clone())).collect();
    let dir = write_broken(
        work,
        "missing",
        tensors.iter().filter(|(k, _)| k != missing).cloned().collect(),
    )?;
    expect_load_error(&dir, &format!("missing     `{missing}`"))?;
    let reshaped = tensors
        .iter()
        .map(|(k, t)| {
            let t = match k == bad {
                true => HostTensor::zeros(t.dtype, vec![32, 128]).expect("small"),
                false => t.clone(),
            };
            (k.clone(), t)
        })
        .collect();
    let dir = write_broken(work, "mis-shaped", reshaped)?;
    expect_load_error(
        &dir,
        &format!("wrong shape `{bad}`: expected [64, 128], found [32, 128]"),
    )?;
    println!("typed-app: broken checkpoints fail to load, naming the key");
    println!("typed-app: ok");
    Ok(())
}

/// `(source key, first row, end row)` pieces, when `expr` is source rows concatenated along
/// dim 0 (a whole tensor, a row slice, or a concat of those).
fn named_rows(expr: &Expr) -> Option<Vec<(String, Option<(usize, usize)>)>> {
    match expr {
        Expr::Ref { key } => Some(vec![(key.clone(), None)]),
        Expr::Slice { expr, slices } => match (&**expr, slices.as_slice()) {
            (
                Expr::Ref { key },
                [SliceRange {
                    start: Some(a),
                    stop: Some(b),
                    step: None | Some(1),
                }],
            ) => Some(vec![(key.clone(), Some((*a, *b)))]),
            _ => None,
        },
        Expr::Concat { exprs, dim: 0 } => {
            let mut out = Vec::new();
            for e in exprs {
                out.extend(named_rows(e)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// The bytes of the named rows, in order.
fn gather(src: &BTreeMap<String, &HostTensor>, rows: &[(String, Option<(usize, usize)>)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (key, range) in rows {
        let t = src.get(key).ok_or(format!("the source has no `{key}`"))?;
        let row_bytes = t.data.len() / t.shape.first().copied().unwrap_or(1).max(1);
        let (a, b) = range.unwrap_or((0, t.shape.first().copied().unwrap_or(1)));
        out.extend_from_slice(t.data.get(a * row_bytes..b * row_bytes).ok_or("rows out of range")?);
    }
    Ok(out)
}

fn logits(spec: &ModelSpec, weights: &WeightStore, placement: &Placement, prompt: &[u32]) -> Result<Vec<f64>> {
    let graph = specialize(lower_model(spec)?, placement)?;
    let mut session = Session::new(&graph, weights, 1, InterpOptions::default())?;
    Ok(session.forward(&[prompt.to_vec()])?.data)
}

fn write_broken(work: &Path, name: &str, tensors: Vec<(String, HostTensor)>) -> Result<PathBuf> {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("config.json"), model::CONFIG_JSON)?;
    write_safetensors(&dir.join("model.safetensors"), &tensors)?;
    Ok(dir)
}

fn expect_load_error(dir: &Path, needle: &str) -> Result<()> {
    match model::Model::load(dir) {
        Ok(_) => Err(format!("{} loaded, but it is broken", dir.display()).into()),
        Err(e) => check(
            e.to_string().contains(needle),
            format!("the error does not say `{needle}`: {e}"),
        ),
    }
}
