//! Typed weights: the traits that the code `modelc_macros::model!` generates implements.
//!
//! The macro turns a spec into one struct per distinct mixer, MLP and norm layout (one
//! [`HostTensor`] field per checkpoint tensor), a generic `Block`, a `Layer` enum over the mixer
//! kinds present and a `Model`. Parts implement [`Part`]; the model implements [`TypedModel`],
//! whose provided methods load, check, save and iterate. Every tensor is declared with its exact
//! key, shape and dtype ([`TensorDecl`]); loading and [`TypedModel::validate`] check all of them
//! and list every difference at once (`docs/typed-crates.md`).

mod error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::TypedError;

use crate::tensor::{DType, HostTensor};
use crate::weights::{check_entries_dtype, AtomicDir, Checkpoint, ShardedWriter, TensorSpec};

/// One tensor of a typed layout: its checkpoint key, shape and dtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorDecl {
    pub key: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl TensorDecl {
    pub fn new(key: impl Into<String>, shape: &[usize], dtype: DType) -> TensorDecl {
        TensorDecl {
            key: key.into(),
            shape: shape.to_vec(),
            dtype,
        }
    }

    /// Checks that `t` has this declaration's shape and dtype and that its bytes agree with them.
    pub fn check(&self, model: &'static str, t: &HostTensor) -> Result<(), TypedError> {
        if t.shape != self.shape || t.dtype != self.dtype {
            return Err(TypedError::Mismatch {
                model,
                key: self.key.clone(),
                expected_shape: self.shape.clone(),
                expected_dtype: self.dtype,
                found_shape: t.shape.clone(),
                found_dtype: t.dtype,
            });
        }
        t.check().map_err(|source| TypedError::Tensor {
            model,
            key: self.key.clone(),
            source,
        })
    }
}

/// Where a typed model's tensors come from while it is built: asked once per declared tensor,
/// in layout order.
pub type Supply<'s> = dyn FnMut(TensorDecl) -> Result<HostTensor, TypedError> + 's;

/// A part of a typed model (a mixer, MLP, norm or block): its tensors under a key prefix.
pub trait Part: Sized {
    /// Declares the part's tensors under `prefix` (`model.decoder.blocks.3.mixer`), in
    /// checkpoint order.
    fn declare(prefix: &str, out: &mut Vec<TensorDecl>);
    /// Builds the part from `supply`, asking for its tensors in [`Part::declare`] order.
    fn build(prefix: &str, supply: &mut Supply<'_>) -> Result<Self, TypedError>;
    /// Calls `f` with each tensor and its full key, in declared order.
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a HostTensor));
    /// [`Part::visit`] with mutable tensors.
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, &mut HostTensor));
}

/// FNV-1a of a model's resolved config: what typed converters check their types against at
/// compile time (a converter for another config does not compile).
pub const fn config_hash(config_json: &str) -> u64 {
    let bytes = config_json.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// How [`TypedModel::save_with`] writes a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    /// Replace an existing directory (atomically, at the end).
    pub force: bool,
    /// Largest shard, in data bytes.
    pub max_shard_size: u64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            force: false,
            max_shard_size: 5 << 30,
        }
    }
}

/// A whole typed model, generated from a spec. The required items are generated; the provided
/// methods are the API.
pub trait TypedModel: Sized {
    /// The model's name in messages (the module path given to the macro).
    const NAME: &'static str;
    /// The resolved config, as the `config.json` that [`TypedModel::save`] writes.
    const CONFIG_JSON: &'static str;
    /// [`config_hash`] of [`TypedModel::CONFIG_JSON`].
    const CONFIG_HASH: u64;
    /// The dtype of every tensor.
    const DTYPE: DType;

    /// Declares every tensor, in checkpoint order.
    fn declare(out: &mut Vec<TensorDecl>);
    /// Builds the model from `supply`, asking for each tensor in [`TypedModel::declare`] order.
    fn build(supply: &mut Supply<'_>) -> Result<Self, TypedError>;
    /// Calls `f` with each tensor and its key, in declared order.
    fn visit<'a>(&'a self, f: &mut dyn FnMut(String, &'a HostTensor));
    /// [`TypedModel::visit`] with mutable tensors.
    fn visit_mut(&mut self, f: &mut dyn FnMut(String, &mut HostTensor));
    /// Checks the layer list: as many layers as the spec, each of its declared kind.
    fn check_layers(&self) -> Result<(), TypedError>;

    /// Every tensor's key, shape and dtype, in checkpoint order.
    fn layout() -> Vec<TensorDecl> {
        let mut out = Vec::new();
        Self::declare(&mut out);
        out
    }

    /// Loads a checkpoint directory (`model.safetensors`, or shards and their index). Every
    /// declared tensor must be present with its exact shape and dtype, and nothing else may be;
    /// all differences are reported at once, each naming the key.
    fn load(dir: &Path) -> Result<Self, TypedError> {
        let ckpt = Checkpoint::open(dir)?;
        let layout = Self::layout();
        let found = ckpt
            .keys()
            .filter_map(|k| ckpt.info(k).map(|(dtype, shape)| (k, dtype, shape)));
        let location = format!("{} (as {})", dir.display(), Self::NAME);
        check_entries_dtype(&location, found, expected(&layout))?;
        Self::build(&mut |decl| Ok(ckpt.get(&decl.key)?.to_host()))
    }

    /// Builds the model from (key, tensor) pairs, checked as [`TypedModel::load`] checks a
    /// checkpoint.
    fn from_tensors(tensors: impl IntoIterator<Item = (String, HostTensor)>) -> Result<Self, TypedError> {
        let mut map: BTreeMap<String, HostTensor> = tensors.into_iter().collect();
        let layout = Self::layout();
        let found = map.iter().map(|(k, t)| (k.as_str(), t.dtype, t.shape.as_slice()));
        let location = format!("the tensors given to {}", Self::NAME);
        check_entries_dtype(&location, found, expected(&layout))?;
        Self::build(&mut |decl| {
            let t = map.remove(&decl.key).ok_or_else(|| TypedError::Layers {
                model: Self::NAME,
                message: format!("tensor `{}` was asked for twice", decl.key),
            })?;
            decl.check(Self::NAME, &t)?;
            Ok(t)
        })
    }

    /// Builds the model from a function of each declaration (random or zero weights, say);
    /// a tensor that does not match its declaration is an error naming its key.
    fn from_fn(mut f: impl FnMut(&TensorDecl) -> HostTensor) -> Result<Self, TypedError> {
        Self::build(&mut |decl| {
            let t = f(&decl);
            decl.check(Self::NAME, &t)?;
            Ok(t)
        })
    }

    /// Re-checks a model that may have been edited: the layer list, and every tensor's shape,
    /// dtype and byte length against the layout.
    fn validate(&self) -> Result<(), TypedError> {
        self.check_layers()?;
        let layout = Self::layout();
        let mut found = Vec::with_capacity(layout.len());
        self.visit(&mut |k, t| found.push((k, t)));
        let entries = found.iter().map(|(k, t)| (k.as_str(), t.dtype, t.shape.as_slice()));
        check_entries_dtype(Self::NAME, entries, expected(&layout))?;
        for (key, t) in &found {
            t.check().map_err(|source| TypedError::Tensor {
                model: Self::NAME,
                key: key.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Every (key, tensor), in checkpoint order.
    fn tensors(&self) -> Vec<(String, &HostTensor)> {
        let mut out = Vec::new();
        self.visit(&mut |k, t| out.push((k, t)));
        out
    }

    /// Validates, then writes `config.json` and `model.safetensors` into a new directory `dir`
    /// (refused if it exists), atomically. Returns the directory.
    fn save(&self, dir: &Path) -> Result<PathBuf, TypedError> {
        self.save_with(dir, &SaveOptions::default())
    }

    /// [`TypedModel::save`] with options (replace an existing directory, shard size).
    fn save_with(&self, dir: &Path, opts: &SaveOptions) -> Result<PathBuf, TypedError> {
        self.validate()?;
        let out = AtomicDir::create(dir, opts.force)?;
        let config = out.path().join("config.json");
        std::fs::write(&config, format!("{}\n", Self::CONFIG_JSON)).map_err(|source| {
            TypedError::Weights(crate::weights::WeightsError::Io {
                path: config.clone(),
                source,
            })
        })?;
        let tensors = self.tensors();
        let specs = tensors
            .iter()
            .map(|(k, t)| TensorSpec::new(k.clone(), t.dtype, t.shape.clone()))
            .collect();
        let mut writer = ShardedWriter::new(out.path(), opts.max_shard_size, specs)?;
        for (key, t) in &tensors {
            writer.write_tensor(key, t.view())?;
        }
        writer.finish()?;
        Ok(out.commit()?)
    }
}

/// A layout as the (key, shape, dtype) triples the layout check takes.
fn expected(layout: &[TensorDecl]) -> impl Iterator<Item = (&str, &[usize], DType)> {
    layout.iter().map(|d| (d.key.as_str(), d.shape.as_slice(), d.dtype))
}
