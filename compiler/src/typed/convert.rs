//! Typed conversion: a plan (computed when the converter was compiled) evaluated over a typed
//! source model's tensors, each target tensor in the target type's dtype, by the same evaluator
//! as `modelc convert` (so both give identical bytes for the same seed).

use std::collections::HashMap;

use modelc_runtime::tensor::{DType, HostTensor, TensorView};
use modelc_runtime::typed::{TypedError, TypedModel};

use crate::surgery::eval::{evaluate_owned, TensorSource};
use crate::surgery::{Plan, SurgeryError};

/// The tensors of a typed model, borrowed.
struct Borrowed<'a> {
    tensors: HashMap<String, &'a HostTensor>,
}

impl TensorSource for Borrowed<'_> {
    fn info(&self, key: &str) -> Option<(DType, Vec<usize>)> {
        self.tensors.get(key).map(|t| (t.dtype, t.shape.clone()))
    }
    fn view(&self, key: &str) -> Result<TensorView<'_>, SurgeryError> {
        self.tensors
            .get(key)
            .map(|t| t.view())
            .ok_or_else(|| SurgeryError::Checkpoint(format!("tensor `{key}` is not in the source model")))
    }
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.tensors.keys().cloned().collect();
        k.sort();
        k
    }
}

/// Converts `source` into `T` by `plan_json` (a [`Plan`] in its JSON form, from source keys to
/// `T`'s keys); `seed` drives the random `init` tensors, as `modelc convert --seed` does.
pub fn convert<S: TypedModel, T: TypedModel>(source: &S, plan_json: &str, seed: u64) -> Result<T, TypedError> {
    let embedded = |message: String| TypedError::Embedded {
        model: T::NAME,
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(plan_json).map_err(|e| embedded(format!("the converter's plan is not JSON: {e}")))?;
    let plan = Plan::from_json(&value).map_err(|e| embedded(format!("the converter's plan does not parse: {e}")))?;
    source.validate()?;
    let mut tensors = HashMap::new();
    source.visit(&mut |k, t| {
        tensors.insert(k, t);
    });
    let src = Borrowed { tensors };
    T::build(&mut |decl| {
        let fail = |message: String| TypedError::Convert {
            from: S::NAME,
            to: T::NAME,
            key: decl.key.clone(),
            message,
        };
        let expr = plan
            .get(&decl.key)
            .ok_or_else(|| fail("the plan does not produce it".into()))?;
        let t = evaluate_owned(expr, &src, decl.dtype, seed, &decl.key).map_err(|e| fail(e.to_string()))?;
        decl.check(T::NAME, &t)?;
        Ok(t)
    })
}
