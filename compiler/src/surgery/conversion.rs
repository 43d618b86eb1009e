//! The whole conversion: the source format's renaming plan, then one `plan_surgery` per surgery,
//! composed into one plan from source tensors to the final target tensors (reference §4.9
//! `build_plan`). Each step's plan is checked against the step's source and target layouts, so a
//! bad surgery is reported at the step that introduces it.

use std::collections::HashMap;

use serde_json::Value;

use crate::spec::{layout, ModelSpec};

use super::algebra::{finalize, surgery_chain};
use super::error::SurgeryError;
use super::expr::Plan;
use super::planner::{layer_inits, plan_surgery};
use super::sources::{Imported, SourceFormat};

/// A planned conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub source_format: SourceFormat,
    /// The source expressed as an Apriel2 config (before any surgery).
    pub source_config: Value,
    pub source_spec: ModelSpec,
    /// Apriel2 keys of the source → source checkpoint keys (renames only).
    pub import_plan: Plan,
    /// Source checkpoint keys → final tensors, in the final layout's order.
    pub plan: Plan,
    /// The final config (no `init` fields).
    pub config: Value,
    pub spec: ModelSpec,
    /// Checkpoint tensors the conversion may leave unread.
    pub ignorable_prefixes: Vec<String>,
    /// Notes of the import (assumptions, corrected bias flags).
    pub notes: Vec<String>,
}

fn resolve(config: &Value, context: &str) -> Result<ModelSpec, SurgeryError> {
    crate::spec::from_json_value(config, context).map_err(|e| SurgeryError::Spec {
        context: context.to_string(),
        source: Box::new(e),
    })
}

/// `(key, shape)` of every tensor of a spec, in layout order.
pub fn layout_of(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    layout::weights(spec).into_iter().map(|w| (w.key, w.shape)).collect()
}

/// Plans `surgeries` (name, partial config) on an imported source.
pub fn build_conversion(imported: Imported, surgeries: &[(String, Value)]) -> Result<Conversion, SurgeryError> {
    let source_spec = resolve(&imported.config, "the source config (as Apriel2)")?;
    let source_layout = layout_of(&source_spec);
    let import_plan = imported.plan.reordered(source_layout.iter().map(|(k, _)| k.as_str()));
    let mut plan = import_plan.clone();
    let mut config = finalize(&imported.config)?;
    let mut spec = source_spec.clone();
    let mut current_layout = source_layout;
    for step in surgery_chain(&imported.config, surgeries)? {
        let in_step = |e: SurgeryError| SurgeryError::InSurgery {
            origin: step.origin.clone(),
            source: Box::new(e),
        };
        let next_config = finalize(&step.target).map_err(in_step)?;
        let next_spec = resolve(&next_config, &format!("the config after {}", step.origin))?;
        let inits = layer_inits(&step.target, next_spec.layers.len());
        let p = plan_surgery(&spec, &next_spec, &inits).map_err(in_step)?;
        let next_layout = layout_of(&next_spec);
        let known: HashMap<&str, &Vec<usize>> = current_layout.iter().map(|(k, s)| (k.as_str(), s)).collect();
        let shapes = |k: &str| known.get(k).map(|s| (*s).clone());
        p.check_layout(&shapes, &next_layout).map_err(|e| in_step(e.into()))?;
        let p = p.reordered(next_layout.iter().map(|(k, _)| k.as_str()));
        plan = plan.compose(&p);
        config = next_config;
        spec = next_spec;
        current_layout = next_layout;
    }
    plan.source_format = imported.format.name().to_string();
    Ok(Conversion {
        source_format: imported.format,
        source_config: imported.config,
        source_spec,
        import_plan,
        plan,
        config,
        spec,
        ignorable_prefixes: imported.ignorable_prefixes,
        notes: imported.notes,
    })
}
