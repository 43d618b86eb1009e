//! Shared by the `codegen_*` tests: the specs to generate code for, and compiling them.
#![allow(dead_code)]

pub mod exec;

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use modelc::codegen::{generate, Codegen, CodegenError};
use modelc::ir::{lower::lower_model, Graph, Op, Value};
use modelc::passes::fuse::Step;
use modelc::passes::{placement::specialize, Placement};
use modelc::spec::{self, MixerSpec, ModelSpec};

/// The repository root (`MODELC_REPO_ROOT` overrides it, for a test binary run elsewhere).
pub fn repo() -> PathBuf {
    match std::env::var_os("MODELC_REPO_ROOT") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

fn yaml_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn load(paths: Vec<PathBuf>) -> Vec<(String, ModelSpec)> {
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().to_string();
            let spec = spec::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, spec)
        })
        .collect()
}

/// Every spec in `specs/`.
pub fn repo_specs() -> Vec<(String, ModelSpec)> {
    load(yaml_in(&repo().join("specs")))
}

/// The tiny specs of `specs/`.
pub fn tiny_specs() -> Vec<(String, ModelSpec)> {
    repo_specs()
        .into_iter()
        .filter(|(n, _)| n.starts_with("tiny-"))
        .collect()
}

/// The codegen test specs (template-compatible shapes, every mixer and option).
pub fn codegen_specs() -> Vec<(String, ModelSpec)> {
    load(yaml_in(&repo().join("tests/golden/specs")))
}

pub fn all_specs() -> Vec<(String, ModelSpec)> {
    let mut v = repo_specs();
    v.extend(codegen_specs());
    v
}

/// Main placement, then each sub-mixer name for every stochastic layer.
pub fn placements(spec: &ModelSpec) -> Vec<(String, Placement)> {
    let mut names: Vec<String> = Vec::new();
    for b in &spec.layers {
        if let MixerSpec::Stochastic(s) = &b.mixer {
            for (n, _) in &s.mixers {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    let mut out = vec![("main".to_string(), Placement::main(spec))];
    out.extend(
        names
            .iter()
            .map(|n| (n.clone(), Placement::all(spec, n).expect("placement"))),
    );
    out
}

pub fn placed(spec: &ModelSpec, p: &Placement) -> Graph {
    specialize(lower_model(spec).expect("lowers"), p).expect("specialises")
}

/// Codegen for every placement of a spec, labelled `name[placement]`.
pub fn compile_spec(name: &str, spec: &ModelSpec) -> Vec<(String, Result<Codegen, CodegenError>)> {
    placements(spec)
        .into_iter()
        .map(|(pname, p)| (format!("{name}[{pname}]"), generate(placed(spec, &p))))
        .collect()
}

/// A glue step as a standalone graph: input `in{j}` per external input (weights too), the step's
/// nodes, output `out{j}` per step output. The reference interpreter runs it.
pub fn glue_subgraph(graph: &Graph, step: &Step) -> Graph {
    let mut sub = Graph::new();
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (j, v) in step.inputs.iter().enumerate() {
        let ty = graph.ty(*v).clone();
        let n = sub
            .add(
                Op::Input {
                    name: format!("in{j}"),
                    ty,
                },
                &[],
                "",
                None,
            )
            .expect("input");
        map.insert(*v, Value { node: n, output: 0 });
    }
    for &n in &step.nodes {
        let node = graph.node(n);
        let ins: Vec<Value> = graph.inputs(n).iter().map(|v| map[v]).collect();
        let m = sub
            .add(node.op.clone(), &ins, &node.scope, node.layer)
            .expect("copy node");
        for o in 0..node.outputs.len() {
            map.insert(Value { node: n, output: o }, Value { node: m, output: o });
        }
    }
    for (j, v) in step.outputs.iter().enumerate() {
        sub.add(
            Op::Output {
                name: format!("out{j}"),
            },
            &[map[v]],
            "",
            None,
        )
        .expect("output");
    }
    sub
}
