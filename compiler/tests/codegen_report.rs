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
