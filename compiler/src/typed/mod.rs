//! What typed crates (code from `modelc_macros`) need of the compiler at run time, and the crate
//! that `modelc build` writes.
//!
//! [`convert`] runs a conversion plan computed at compile time by `modelc_macros::converter!`
//! over a typed source model; [`spec()`] and [`weight_store`] put a typed model on the CPU
//! reference interpreter; [`package`] writes the files of a generated crate
//! (`docs/typed-crates.md`).

mod convert;
pub mod package;

pub use convert::convert;

use modelc_runtime::typed::{TypedError, TypedModel};

use crate::reference::{Array, WeightStore};
use crate::spec::{self, Format, ModelSpec};

/// The resolved spec of a typed model (its embedded config, parsed again).
pub fn spec<M: TypedModel>() -> Result<ModelSpec, TypedError> {
    spec::parse_str(M::CONFIG_JSON, M::NAME, Format::Json).map_err(|e| TypedError::Embedded {
        model: M::NAME,
        message: format!("the embedded config does not parse: {e}"),
    })
}

/// A typed model's tensors as the reference interpreter's weights (exact: every float dtype
/// widens to f64 without rounding).
pub fn weight_store<M: TypedModel>(model: &M) -> WeightStore {
    let mut tensors = std::collections::BTreeMap::new();
    model.visit(&mut |key, t| {
        tensors.insert(key, Array::new(t.shape.clone(), t.to_f64_vec()));
    });
    WeightStore::new(tensors)
}
