//! Code generation: from a placement-specialised graph to CUDA C kernels and a [`Program`].
//!
//! 1. [`fuse_graph`]: horizontal GEMM merge (packed weights), slice folding, then the fusion
//!    partition (`passes::fuse`) into GEMM, mixer-core and glue steps.
//! 2. [`generate`]: one kernel per glue step (`glue`), the templates of each core step in a
//!    prefill and a decode form (`cores`); identical sources (identical layers) become one
//!    kernel, named `<kind>_<hash of its source>`.
//! 3. `program::build`: buffers, packed weights, states and the two schedules (`program.json`);
//!    `report`: the kernel table of `modelc build`; `sass`: the machine code of a kernel, and a
//!    check on it (`modelc kernels --sass`).
//!
//! [`Program`]: modelc_runtime::program::Program

pub mod cores;
pub mod glue;
pub mod kda_step;
pub mod kernel;
pub mod program;
pub mod report;
pub mod sass;
pub mod settings;
pub mod templates;

use std::collections::HashMap;

use crate::ir::{Graph, IrError, Value};
use crate::passes::conv_merge::{conv_merge, StatePack};
use crate::passes::fuse::{partition, FusionPlan, StepKind};
use crate::passes::gemm_merge::{gemm_merge, PackedWeight};
use crate::passes::{run_verified, slices::fold_slices, verify};
use kernel::{finish_named, Kernel, LaunchSpec, VariantSpec};
use modelc_runtime::tensor::DType;

/// Errors of code generation.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error(transparent)]
    Ir(#[from] IrError),
    #[error("in {scope}: no kernel for `{op}`: {reason}")]
    Unsupported { scope: String, op: String, reason: String },
    #[error("in {scope}: the mixer-core template does not support this shape")]
    Template {
        scope: String,
        #[source]
        source: templates::TemplateError,
    },
    #[error("environment variable {name}={value:?}: expected {expected}")]
    Setting {
        name: String,
        value: String,
        expected: String,
    },
    #[error("codegen internal error: {0}")]
    Internal(String),
}

/// The launches of one plan step (empty for GEMMs: the program describes those directly).
#[derive(Debug, Clone, Default)]
pub struct StepCode {
    pub prefill: Vec<LaunchSpec>,
    pub decode: Vec<LaunchSpec>,
    /// What the step fuses, one line per IR node.
    pub fuses: Vec<String>,
    /// Decode: the plan step whose decode kernel computes this step too (this step then has no
    /// decode launch and, for a GEMM, no decode GEMM).
    pub decode_absorbed_by: Option<usize>,
    /// Decode: values the decode launches read besides the step's inputs (the inputs of the
    /// steps they absorb); their buffers stay live until this step.
    pub decode_reads: Vec<Value>,
}

/// Everything codegen produced for one graph.
#[derive(Debug, Clone)]
pub struct Codegen {
    /// The merged graph the plan partitions.
    pub graph: Graph,
    pub packs: Vec<PackedWeight>,
    pub state_packs: Vec<StatePack>,
    pub plan: FusionPlan,
    /// Distinct kernels, in order of first use (prefill, then decode-only ones).
    pub kernels: Vec<Kernel>,
    /// Parallel to `plan.steps`.
    pub steps: Vec<StepCode>,
    /// Values stored in another dtype than their IR type.
    pub storage: HashMap<Value, DType>,
}

impl Codegen {
    /// The dtype a value is stored in.
    pub fn storage_of(&self, v: Value) -> DType {
        self.storage.get(&v).copied().unwrap_or_else(|| self.graph.ty(v).dtype)
    }

    /// Indices of the plan steps that launch kernel `k`.
    pub fn users_of(&self, k: usize) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&s| {
                self.steps[s]
                    .prefill
                    .iter()
                    .chain(&self.steps[s].decode)
                    .any(|l| l.kernel == k || l.variants.iter().any(|v| v.kernel == k))
            })
            .collect()
    }
}

/// The graph after the merging passes, with what they packed.
#[derive(Debug, Clone)]
pub struct Fused {
    pub graph: Graph,
    /// Packed weights (merged GEMMs and convs).
    pub packs: Vec<PackedWeight>,
    /// Packed states (merged convs).
    pub state_packs: Vec<StatePack>,
    pub plan: FusionPlan,
}

/// Merges GEMMs and convs, folds slices and partitions the graph into steps.
pub fn fuse_graph(placed: Graph) -> Result<Fused, CodegenError> {
    verify(&placed)?;
    let merged = gemm_merge(placed)?;
    verify(&merged.graph).map_err(|e| IrError::Verify(format!("after pass `gemm_merge`: {e}")))?;
    let graph = run_verified("fold_slices", merged.graph, fold_slices)?;
    let convs = conv_merge(graph)?;
    verify(&convs.graph).map_err(|e| IrError::Verify(format!("after pass `conv_merge`: {e}")))?;
    let graph = run_verified("fold_slices", convs.graph, fold_slices)?;
    let plan = partition(&graph)?;
    let mut packs = merged.packs;
    packs.extend(convs.packs);
    Ok(Fused {
        graph,
        packs,
        state_packs: convs.states,
        plan,
    })
}

/// Generates every kernel of a placement-specialised graph.
pub fn generate(placed: Graph) -> Result<Codegen, CodegenError> {
    let Fused {
        graph,
        packs,
        state_packs,
        plan,
    } = fuse_graph(placed)?;
    // Cores first: they say which dtypes their inputs must be stored in.
    let mut cores: HashMap<usize, cores::CoreCode> = HashMap::new();
    let mut storage: HashMap<Value, DType> = HashMap::new();
    let owner = plan.step_of();
    for (i, step) in plan.steps.iter().enumerate() {
        if let StepKind::Core(core) = &step.kind {
            let code = cores::core_code(&graph, &plan, &owner, step, core)?;
            for (v, dt) in &code.demands {
                let produced_by_glue = owner
                    .get(&v.node)
                    .is_some_and(|s| plan.steps[*s].kind == StepKind::Glue);
                if graph.ty(*v).dtype != *dt {
                    if !produced_by_glue || plan.views.contains_key(&v.node) {
                        let node = graph.node(v.node);
                        return Err(CodegenError::Unsupported {
                            scope: node.scope.clone(),
                            op: node.op.name(),
                            reason: format!("a mixer core reads this value as {dt}, but no glue kernel writes it"),
                        });
                    }
                    storage.insert(*v, *dt);
                }
            }
            cores.insert(i, code);
        }
    }

    let mut kernels: Vec<Kernel> = Vec::new();
    // Kernels are interned by name: a glue name hashes its whole source; a template name hashes
    // the template's body, which fixes its header too.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut intern = |k: Kernel| -> usize {
        *by_name.entry(k.name.clone()).or_insert_with(|| {
            kernels.push(k);
            kernels.len() - 1
        })
    };
    // Decode kernels that absorb whole steps (one kernel per KDA layer).
    let mut kda_steps: HashMap<usize, kda_step::KdaStep> = HashMap::new();
    for i in 0..plan.steps.len() {
        if let Some(k) = kda_step::find(&graph, &plan, &owner, i)? {
            kda_steps.insert(i, k);
        }
    }
    // ... and cores whose decode takes in a step before them (RoPE in the attention decode).
    let absorbed_by: HashMap<usize, usize> = kda_steps
        .iter()
        .flat_map(|(&i, k)| k.absorbed.iter().map(move |&a| (a, i)))
        .chain(
            cores
                .iter()
                .flat_map(|(&i, c)| c.decode_absorbs.iter().map(move |&a| (a, i))),
        )
        .collect();
    let mut steps: Vec<StepCode> = Vec::with_capacity(plan.steps.len());
    // Core steps whose decode launches are resolved after all prefill kernels are numbered.
    let mut decode_pending: Vec<usize> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        match &step.kind {
            StepKind::Gemm { .. } => steps.push(StepCode {
                fuses: step.nodes.iter().map(|&n| glue::describe_node(&graph, n)).collect(),
                ..StepCode::default()
            }),
            StepKind::Glue => {
                let store = |v: Value| storage.get(&v).copied().unwrap_or_else(|| graph.ty(v).dtype);
                let g = glue::glue_kernel(&graph, &plan, step, &store)?;
                let (name, source) = finish_named(&g.kind, &g.body);
                let k = intern(Kernel {
                    entries: vec![name.clone()],
                    name: name.clone(),
                    kind: g.kind,
                    source,
                    bytes_loaded: g.bytes_loaded,
                    bytes_stored: g.bytes_stored,
                    flops: g.flops,
                    target: None,
                });
                let launch = LaunchSpec {
                    kernel: k,
                    entry: name,
                    grid: [kernel::rows(), kernel::c(g.channel_blocks), kernel::c(1)],
                    block: [g.threads, 1, 1],
                    smem: 0,
                    args: g.args,
                    variants: Vec::new(),
                    skip_when: None,
                };
                steps.push(StepCode {
                    prefill: vec![launch.clone()],
                    decode: vec![launch],
                    fuses: g.fuses,
                    ..StepCode::default()
                });
            }
            StepKind::Core(_) => {
                let code = cores
                    .remove(&i)
                    .ok_or_else(|| CodegenError::Internal("core step without code".into()))?;
                // Kernels used by prefill are numbered now; decode-only ones after all steps.
                let used_in_prefill: Vec<bool> = (0..code.kernels.len())
                    .map(|k| {
                        code.prefill
                            .iter()
                            .any(|l| l.kernel == k || l.variants.iter().any(|v| v.kernel == k))
                    })
                    .collect();
                let mut map: Vec<Option<usize>> = vec![None; code.kernels.len()];
                for (k, ck) in code.kernels.iter().enumerate() {
                    if used_in_prefill[k] {
                        map[k] = Some(intern(core_kernel(ck)));
                    }
                }
                let fuses = step.nodes.iter().map(|&n| glue::describe_node(&graph, n)).collect();
                steps.push(StepCode {
                    prefill: code.prefill.iter().map(|l| launch_spec(l, &map)).collect(),
                    decode: Vec::new(),
                    fuses,
                    ..StepCode::default()
                });
                // A KDA layer's decode is its fused step kernel; other cores keep their code to
                // resolve the decode launches after numbering decode-only kernels.
                if !kda_steps.contains_key(&i) {
                    decode_pending.push(i);
                    cores.insert(i, code);
                }
            }
        }
    }
    for i in decode_pending {
        let code = cores
            .remove(&i)
            .ok_or_else(|| CodegenError::Internal("core step without code".into()))?;
        let map: Vec<Option<usize>> = code.kernels.iter().map(|ck| Some(intern(core_kernel(ck)))).collect();
        let decode = code.decode.iter().map(|l| launch_spec(l, &map)).collect();
        if let Some(s) = steps.get_mut(i) {
            s.decode = decode;
            s.decode_reads = code.decode_reads;
        }
    }
    let mut fused: Vec<_> = kda_steps.into_iter().collect();
    fused.sort_by_key(|(i, _)| *i);
    for (i, k) in fused {
        let map: Vec<Option<usize>> = k.kernels.iter().map(|ck| Some(intern(core_kernel(ck)))).collect();
        let s = steps
            .get_mut(i)
            .ok_or_else(|| CodegenError::Internal("absorbing step out of range".into()))?;
        s.decode = vec![launch_spec(&k.launch, &map)];
        s.decode_reads = k.reads;
    }
    for (&a, &by) in &absorbed_by {
        let s = steps
            .get_mut(a)
            .ok_or_else(|| CodegenError::Internal("absorbed step out of range".into()))?;
        s.decode.clear();
        s.decode_absorbed_by = Some(by);
    }
    Ok(Codegen {
        graph,
        packs,
        state_packs,
        plan,
        kernels,
        steps,
        storage,
    })
}

/// A core launch with its kernels renumbered from the step's list to the codegen's (`map`;
/// `usize::MAX` for one the map lacks, which program building reports).
fn launch_spec(l: &cores::CoreLaunch, map: &[Option<usize>]) -> LaunchSpec {
    let global = |k: usize| map.get(k).copied().flatten().unwrap_or(usize::MAX);
    LaunchSpec {
        kernel: global(l.kernel),
        entry: l.entry.clone(),
        grid: l.grid.clone(),
        block: l.block,
        smem: l.smem,
        args: l.args.clone(),
        variants: l
            .variants
            .iter()
            .map(|v| VariantSpec {
                kernel: global(v.kernel),
                ..v.clone()
            })
            .collect(),
        skip_when: l.skip_when.clone(),
    }
}

fn core_kernel(ck: &cores::CoreKernel) -> Kernel {
    Kernel {
        name: ck.source.name().to_string(),
        kind: ck.kind.clone(),
        source: ck.source.source.clone(),
        entries: ck.source.entries.clone(),
        bytes_loaded: ck.bytes_loaded.clone(),
        bytes_stored: ck.bytes_stored.clone(),
        flops: ck.flops.clone(),
        target: ck.target.clone(),
    }
}

/// Lowers a spec, specialises it to a placement, generates its kernels and builds its program.
pub fn compile(
    spec: &crate::spec::ModelSpec,
    placement: &crate::passes::Placement,
    model: &str,
) -> Result<(Codegen, modelc_runtime::program::Program), CodegenError> {
    let lowered = crate::ir::lower::lower_model(spec)?;
    let placed = run_verified("placement", lowered, |g| {
        crate::passes::placement::specialize(g, placement)
    })?;
    let cg = generate(placed)?;
    let program = program::build(&cg, model, placement)?;
    Ok((cg, program))
}

/// Kernels used by the plan steps that `keep` selects, in kernel order.
pub fn kernels_of_steps(cg: &Codegen, keep: impl Fn(&crate::passes::fuse::Step) -> bool) -> Vec<usize> {
    let mut used = std::collections::BTreeSet::new();
    for (s, step) in cg.plan.steps.iter().enumerate() {
        if keep(step) {
            if let Some(code) = cg.steps.get(s) {
                for l in code.prefill.iter().chain(&code.decode) {
                    used.insert(l.kernel);
                    used.extend(l.variants.iter().map(|v| v.kernel));
                }
            }
        }
    }
    used.into_iter().filter(|&k| k < cg.kernels.len()).collect()
}
