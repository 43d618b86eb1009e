//! Seeded initialisers for new tensors (reference §4.6).
//!
//! Each `Init` node carries a `seed_key` (the target key that introduced it). Its values come
//! from a ChaCha8 stream seeded by `SHA-256("modelc-init-v1" ‖ seed as u64 LE ‖ seed_key)`, so a
//! tensor depends only on (seed, seed_key, kind, shape): never on the order in which tensors are
//! produced, nor on whether a plan was composed or applied step by step. Values are drawn in f64,
//! in row-major order, and rounded once to the output dtype; a uniform is `(next_u64 >> 11)·2⁻⁵³`.
//! Torch's RNG is not reproduced.
//!
//! Distributions:
//! * `kaiming`: rank ≥ 2: `U(−1/√fan_in, 1/√fan_in)`, `fan_in = shape[1]` (so a depthwise conv
//!   `[C, 1, K]` draws from `U(−1, 1)`); rank 1: `N(0, 0.02²)`.
//! * `normal`: `N(0, std²)`, std 0.02 by default. Normals use Box–Muller on pairs of uniforms.
//! * `dt_bias`: `dt = exp(u·(ln dt_max − ln dt_min) + ln dt_min)`, `u ~ U(0, 1)`, clamped below
//!   at `dt_init_floor`, stored as `dt + ln(−expm1(−dt))` (the inverse of softplus).
//! * `s4d`: `[rows, N]` with `ln(n + 1)` in column `n`; `identity_conv` / `scaled_identity_conv`:
//!   `[C, 1, K]` zeros with the last tap 1 / 0.5; `slow_decay`: `ln 0.1` everywhere.

use modelc_runtime::tensor::{DType, HostTensor};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How an `Init` node fills its tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum InitKind {
    Zeros,
    Ones,
    Kaiming,
    Normal {
        std: f64,
    },
    S4d,
    DtBias {
        dt_min: f64,
        dt_max: f64,
        dt_init_floor: f64,
    },
    IdentityConv,
    ScaledIdentityConv,
    SlowDecay,
}

/// `ln 0.1` (of the f64 nearest 0.1, as Python's `math.log(0.1)`): the per-head decay scale `A_log` that DIL/KIL/random init give GDN and KDA.
pub const SLOW_DECAY: f64 = -2.302_585_092_994_045_5;

impl InitKind {
    /// The `init_type` name used in plan JSON and trees.
    pub fn name(&self) -> &'static str {
        match self {
            InitKind::Zeros => "zeros",
            InitKind::Ones => "ones",
            InitKind::Kaiming => "kaiming",
            InitKind::Normal { .. } => "normal",
            InitKind::S4d => "s4d",
            InitKind::DtBias { .. } => "dt_bias",
            InitKind::IdentityConv => "identity_conv",
            InitKind::ScaledIdentityConv => "scaled_identity_conv",
            InitKind::SlowDecay => "slow_decay",
        }
    }

    /// Whether the values come from the random stream (the rest are constants).
    pub fn is_random(&self) -> bool {
        matches!(
            self,
            InitKind::Kaiming | InitKind::Normal { .. } | InitKind::DtBias { .. }
        )
    }

    /// The `init_params` of plan JSON.
    pub fn params(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match *self {
            InitKind::Normal { std } => {
                m.insert("std".into(), Value::from(std));
            }
            InitKind::DtBias {
                dt_min,
                dt_max,
                dt_init_floor,
            } => {
                m.insert("dt_min".into(), Value::from(dt_min));
                m.insert("dt_max".into(), Value::from(dt_max));
                m.insert("dt_init_floor".into(), Value::from(dt_init_floor));
            }
            _ => {}
        }
        m
    }

    /// Parses `init_type` and `init_params` (missing params take their defaults).
    pub fn from_parts(name: &str, params: &Map<String, Value>) -> Result<InitKind, String> {
        let num = |key: &str, default: f64| -> Result<f64, String> {
            match params.get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("init param `{key}` must be a number, found {v}")),
            }
        };
        Ok(match name {
            "zeros" => InitKind::Zeros,
            "ones" => InitKind::Ones,
            "kaiming" => InitKind::Kaiming,
            "normal" => InitKind::Normal { std: num("std", 0.02)? },
            "s4d" => InitKind::S4d,
            "dt_bias" => InitKind::DtBias {
                dt_min: num("dt_min", 0.001)?,
                dt_max: num("dt_max", 0.1)?,
                dt_init_floor: num("dt_init_floor", 1e-4)?,
            },
            "identity_conv" => InitKind::IdentityConv,
            "scaled_identity_conv" => InitKind::ScaledIdentityConv,
            "slow_decay" => InitKind::SlowDecay,
            other => {
                return Err(format!(
                    "unknown init_type `{other}` (expected zeros, ones, kaiming, normal, s4d, \
                     dt_bias, identity_conv, scaled_identity_conv, slow_decay)"
                ))
            }
        })
    }

    /// Checks that the kind can fill a tensor of `shape`.
    pub fn check_shape(&self, shape: &[usize]) -> Result<(), String> {
        match self {
            InitKind::S4d if shape.len() != 2 => Err(format!("s4d init needs a [rows, state] shape, not {shape:?}")),
            InitKind::IdentityConv | InitKind::ScaledIdentityConv if shape.len() != 3 || shape[2] == 0 => Err(format!(
                "{} init needs a [channels, 1, kernel] shape with kernel ≥ 1, not {shape:?}",
                self.name()
            )),
            InitKind::Kaiming if shape.len() >= 2 && shape[1] == 0 => {
                Err(format!("kaiming init needs fan_in = shape[1] > 0, not {shape:?}"))
            }
            InitKind::Kaiming if shape.is_empty() => Err("kaiming init needs at least one dimension".into()),
            InitKind::DtBias {
                dt_min,
                dt_max,
                dt_init_floor,
            } if !(*dt_min > 0.0 && *dt_max >= *dt_min && *dt_init_floor > 0.0) => Err(format!(
                "dt_bias init needs 0 < dt_min ≤ dt_max and dt_init_floor > 0, \
                 found dt_min {dt_min}, dt_max {dt_max}, dt_init_floor {dt_init_floor}"
            )),
            _ => Ok(()),
        }
    }
}

/// The 32-byte ChaCha seed of one `Init` node.
pub fn derive_seed(seed: u64, seed_key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"modelc-init-v1");
    h.update(seed.to_le_bytes());
    h.update(seed_key.as_bytes());
    h.finalize().into()
}

/// Draws `N(0, std²)` by Box–Muller, two values per pair of uniforms.
struct Normals {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl Normals {
    /// `U[0, 1)` with 53 random bits: `(u64 >> 11) · 2⁻⁵³`.
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // 1 − U[0,1) is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Elements are encoded to the output dtype in blocks of this many, bounding the f64 scratch.
const BLOCK: usize = 1 << 14;

/// Fills a tensor of `shape` in `dtype`.
pub fn generate(
    kind: &InitKind,
    shape: &[usize],
    seed: u64,
    seed_key: &str,
    dtype: DType,
) -> Result<HostTensor, String> {
    kind.check_shape(shape)?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let nbytes = numel
        .checked_mul(dtype.size())
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if matches!(kind, InitKind::Zeros) {
        return HostTensor::zeros(dtype, shape.to_vec()).map_err(|e| e.to_string());
    }
    let rng = ChaCha8Rng::from_seed(derive_seed(seed, seed_key));
    let mut normals = Normals { rng, spare: None };
    let last = shape.last().copied().unwrap_or(1).max(1);
    let mut data = Vec::with_capacity(nbytes);
    let mut block = Vec::with_capacity(BLOCK.min(numel));
    let mut i = 0;
    while i < numel {
        let n = BLOCK.min(numel - i);
        block.clear();
        // One match per block, tight loops inside: this runs unoptimised in debug builds.
        match *kind {
            InitKind::Zeros => block.resize(n, 0.0),
            InitKind::Ones => block.resize(n, 1.0),
            InitKind::SlowDecay => block.resize(n, SLOW_DECAY),
            InitKind::S4d => block.extend((i..i + n).map(|j| ((j % last) as f64 + 1.0).ln())),
            InitKind::IdentityConv | InitKind::ScaledIdentityConv => {
                let tap = if matches!(kind, InitKind::IdentityConv) {
                    1.0
                } else {
                    0.5
                };
                block.extend((i..i + n).map(|j| if j % last == last - 1 { tap } else { 0.0 }));
            }
            InitKind::Kaiming if shape.len() >= 2 => {
                let bound = 1.0 / (shape[1] as f64).sqrt();
                block.extend((0..n).map(|_| bound * (2.0 * normals.uniform() - 1.0)));
            }
            InitKind::Kaiming => block.extend((0..n).map(|_| 0.02 * normals.next())),
            InitKind::Normal { std } => block.extend((0..n).map(|_| std * normals.next())),
            InitKind::DtBias {
                dt_min,
                dt_max,
                dt_init_floor,
            } => {
                let (lo, hi) = (dt_min.ln(), dt_max.ln());
                block.extend((0..n).map(|_| {
                    let dt = (normals.uniform() * (hi - lo) + lo).exp().max(dt_init_floor);
                    dt + (-(-dt).exp_m1()).ln()
                }));
            }
        }
        let t = HostTensor::from_f64(vec![n], &block).map_err(|e| e.to_string())?;
        data.extend_from_slice(&t.cast(dtype).data);
        i += n;
    }
    HostTensor::new(dtype, shape.to_vec(), data).map_err(|e| e.to_string())
}
