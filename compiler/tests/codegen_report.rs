//! The decode table's "minimum" is a lower bound: on every spec in `specs/` (every placement of
//! the supernet), each layer's kernels move at least the minimum bytes. A row below 1 means one of
//! the two counts is wrong (it caught a sliding-window cache counted as `past` tokens).

use std::path::Path;

use modelc::codegen::{compile, report::decode_rows};
use modelc::passes::Placement;
use modelc::spec::{self, MixerSpec};

#[test]
fn every_layer_moves_at_least_the_minimum_bytes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("specs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let spec = spec::load(&path).expect("spec");
        let mut placements = vec![Placement::main(&spec)];
        if let Some(MixerSpec::Stochastic(s)) = spec.layers.first().map(|l| &l.mixer) {
            for (name, _) in &s.mixers {
                placements.push(Placement::all(&spec, name).expect("placement"));
            }
        }
        for p in &placements {
            let (cg, program) = compile(&spec, p, "report-test").expect("compiles");
            for past in [0, 3, 1024] {
                for row in decode_rows(&cg, &program, &spec, p, past) {
                    assert!(
                        row.bytes >= row.minimum,
                        "{} {p:?} past {past}: layer {:?} ({}) moves {} bytes, below the minimum {}",
                        path.display(),
                        row.layer,
                        row.mixer,
                        row.bytes,
                        row.minimum
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} rows checked");
}

/// The kernel table lists each module's layers numerically, as ranges: `0-11`, not
/// `0,1,10,11,2,...` (string order).
#[test]
fn kernel_table_lists_layers_as_numeric_ranges() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/tiny-attention.yaml");
    let mut spec = spec::load(&path).expect("spec");
    let block = spec.layers[0].clone();
    spec.layers = vec![block; 12];
    let p = Placement::main(&spec);
    let (cg, program) = compile(&spec, &p, "ranges").expect("compiles");
    let table = modelc::codegen::report::table(&cg, &program, &spec, &p, 16);
    let modules: Vec<&str> = table.lines().skip(2).take_while(|l| !l.starts_with("decode")).collect();
    assert!(!modules.is_empty(), "{table}");
    let per_layer: Vec<&&str> = modules.iter().filter(|l| l.ends_with("  0-11")).collect();
    assert!(!per_layer.is_empty(), "no module used by layers 0-11:\n{table}");
    assert!(
        modules.iter().all(|l| !l.contains("0,1") && !l.contains("10,")),
        "layers not as ranges:\n{table}"
    );
}
