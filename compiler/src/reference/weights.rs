//! The interpreter's weights: every checkpoint tensor as an f64 [`Array`], from a checkpoint
//! (checked against the declared layout) or drawn at random from a seed.

use std::collections::BTreeMap;

use modelc_runtime::weights::{check_layout, Checkpoint};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::{Array, RefError};

/// Checkpoint key → value.
#[derive(Debug, Clone, Default)]
pub struct WeightStore {
    tensors: BTreeMap<String, Array>,
}

impl WeightStore {
    pub fn new(tensors: BTreeMap<String, Array>) -> Self {
        WeightStore { tensors }
    }

    pub fn get(&self, key: &str) -> Result<&Array, RefError> {
        self.tensors
            .get(key)
            .ok_or_else(|| RefError::MissingWeight(key.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Array)> {
        self.tensors.iter()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Loads exactly the `layout` tensors (key, shape) from a checkpoint: missing, unexpected or
    /// mis-shaped tensors are all reported at once.
    pub fn from_checkpoint(ckpt: &Checkpoint, layout: &[(String, Vec<usize>)]) -> Result<WeightStore, RefError> {
        check_layout(ckpt, layout)?;
        let mut tensors = BTreeMap::new();
        for (key, shape) in layout {
            let view = ckpt.get(key)?;
            tensors.insert(key.clone(), Array::new(shape.clone(), view.to_f64_vec()));
        }
        Ok(WeightStore { tensors })
    }

    /// Random weights for a layout, each tensor drawn from its own stream seeded by
    /// `(seed, key)`, so a tensor does not depend on which others exist or their order.
    /// Values are bf16-representable, so a bf16 copy of them is exact.
    pub fn random(layout: &[(String, Vec<usize>)], seed: u64) -> WeightStore {
        let tensors = layout
            .iter()
            .map(|(k, s)| (k.clone(), random_tensor(k, s, seed)))
            .collect();
        WeightStore { tensors }
    }
}

/// The RNG stream of one tensor.
pub fn tensor_rng(key: &str, seed: u64) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    ChaCha8Rng::from_seed(digest)
}

/// A plausible random value for a tensor, by the role its key names: norms near 1, decays in a
/// stable range, linears with variance 1/fan_in.
fn random_tensor(key: &str, shape: &[usize], seed: u64) -> Array {
    let mut rng = tensor_rng(key, seed);
    let n: usize = shape.iter().product();
    let name = key.rsplit('.').next().unwrap_or(key);
    let parent = key.rsplit('.').nth(1).unwrap_or("");
    let mut uni = |lo: f64, hi: f64| lo + (hi - lo) * rng.random::<f64>();
    let data: Vec<f64> = match (parent, name) {
        (_, "A_log") if shape.len() == 2 => {
            // Mamba S4D-real init plus noise: A = −(1..N).
            (0..n)
                .map(|i| ((i % shape[1]) as f64 + 1.0).ln() + uni(-0.1, 0.1))
                .collect()
        }
        (_, "A_log") => (0..n).map(|_| uni(-2.5, 0.5)).collect(),
        (_, "dt_bias") => (0..n).map(|_| uni(-1.0, 1.0)).collect(),
        (_, "D") => (0..n).map(|_| uni(0.5, 1.5)).collect(),
        ("dt_proj", "bias") => {
            // Inverse softplus of dt in [1e-3, 1e-1] (log-uniform), as Mamba initialises it.
            (0..n)
                .map(|_| {
                    let dt = (uni(0.001f64.ln(), 0.1f64.ln())).exp();
                    dt + (-(-dt).exp_m1()).ln()
                })
                .collect()
        }
        (_, "bias") => (0..n).map(|_| uni(-0.1, 0.1)).collect(),
        (p, "weight") if shape.len() == 1 && (p.ends_with("norm") || p.ends_with("layernorm")) => {
            (0..n).map(|_| uni(0.5, 1.5)).collect()
        }
        (_, "weight") if shape.len() == 3 => {
            let k = shape[2] as f64;
            (0..n).map(|_| uni(-1.0, 1.0) / k.sqrt()).collect()
        }
        ("embed_tokens", _) => (0..n).map(|_| uni(-1.0, 1.0)).collect(),
        _ => {
            let fan_in = shape.last().copied().unwrap_or(1).max(1) as f64;
            let bound = (3.0 / fan_in).sqrt();
            (0..n).map(|_| uni(-bound, bound)).collect()
        }
    };
    let data = data.into_iter().map(|x| half::bf16::from_f64(x).to_f64()).collect();
    Array::new(shape.to_vec(), data)
}
