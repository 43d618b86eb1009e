//! Apriel2 checkpoints: the config as it is; the identity plan (every declared tensor to itself).

use serde_json::Value;

use crate::surgery::error::SurgeryError;
use crate::surgery::expr::{Expr, Plan};

use super::{Imported, SourceFormat};

pub fn import(config: &Value) -> Result<Imported, SurgeryError> {
    let spec = crate::spec::from_json_value(config, "the source config").map_err(|e| SurgeryError::Spec {
        context: "the source config".into(),
        source: Box::new(e),
    })?;
    let mut plan = Plan::new("apriel2", "apriel2");
    for w in crate::spec::layout::weights(&spec) {
        plan.insert(w.key.clone(), Expr::reference(w.key))?;
    }
    Ok(Imported {
        format: SourceFormat::Apriel2,
        config: config.clone(),
        plan,
        ignorable_prefixes: Vec::new(),
    })
}
