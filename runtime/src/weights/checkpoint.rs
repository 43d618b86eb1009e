//! A Hugging Face checkpoint directory: `config.json` plus one or more safetensors files.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{SafetensorsFile, WeightsError};
use crate::tensor::{DType, TensorView};

const CONFIG: &str = "config.json";
const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";

/// An opened checkpoint: the config (unparsed: turning it into a model is the compiler's job)
/// and every tensor of its memory-mapped safetensors files.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    config: serde_json::Value,
    files: Vec<SafetensorsFile>,
    /// Tensor name -> index into `files`.
    index: BTreeMap<String, usize>,
}

impl Checkpoint {
    /// Opens `dir`: `config.json`, then `model.safetensors`, else `model.safetensors.index.json`
    /// and the shards it names, else every `*.safetensors` in the directory.
    ///
    /// Fails if a tensor appears in two files, if the index names a missing shard, or maps a
    /// tensor to a shard that lacks it. Tensors present in a shard but absent from the index
    /// are kept (as transformers does: it loads whole shards).
    pub fn open(dir: &Path) -> Result<Self, WeightsError> {
        let config = read_config(dir)?;
        let single = dir.join(SINGLE);
        let index_path = dir.join(INDEX);
        let (files, weight_map) = if exists(&single)? {
            (vec![SafetensorsFile::open(&single)?], None)
        } else if exists(&index_path)? {
            let weight_map = read_index(&index_path)?;
            let files = open_shards(dir, &index_path, &weight_map)?;
            (files, Some(weight_map))
        } else {
            let paths = glob_safetensors(dir)?;
            if paths.is_empty() {
                return Err(WeightsError::NoWeights { dir: dir.to_path_buf() });
            }
            let files = paths
                .iter()
                .map(|p| SafetensorsFile::open(p))
                .collect::<Result<Vec<_>, _>>()?;
            (files, None)
        };

        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            for key in file.keys() {
                if let Some(&first) = index.get(key) {
                    return Err(WeightsError::DuplicateKey {
                        key: key.to_string(),
                        first: path_of(&files, first),
                        second: file.path().to_path_buf(),
                    });
                }
                index.insert(key.to_string(), i);
            }
        }
        if let Some(weight_map) = weight_map {
            for (key, shard) in &weight_map {
                let shard_path = dir.join(shard);
                let in_named = index.get(key).is_some_and(|&i| path_of(&files, i) == shard_path);
                if !in_named {
                    return Err(WeightsError::IndexKeyMissing {
                        index: index_path.clone(),
                        key: key.clone(),
                        shard: shard_path,
                    });
                }
            }
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            files,
            index,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// Tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Dtype and shape of `key`, without touching its data.
    pub fn info(&self, key: &str) -> Option<(DType, &[usize])> {
        let &i = self.index.get(key)?;
        self.files.get(i)?.info(key)
    }

    /// A zero-copy view of `key`'s data.
    pub fn get(&self, key: &str) -> Result<TensorView<'_>, WeightsError> {
        let file = self
            .index
            .get(key)
            .and_then(|&i| self.files.get(i))
            .ok_or_else(|| WeightsError::KeyNotFound {
                key: key.to_string(),
                location: format!("checkpoint {}", self.dir.display()),
            })?;
        file.get(key)
    }

    /// See [`SafetensorsFile::release`]: drops `key`'s pages from the resident set.
    pub fn release(&self, key: &str) {
        if let Some(file) = self.index.get(key).and_then(|&i| self.files.get(i)) {
            file.release(key);
        }
    }

    /// The safetensors files, in load order.
    pub fn files(&self) -> &[SafetensorsFile] {
        &self.files
    }

    /// Total tensor data bytes (headers excluded), as in an index's `total_size`.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(SafetensorsFile::data_bytes).sum()
    }
}

fn path_of(files: &[SafetensorsFile], i: usize) -> PathBuf {
    files.get(i).map(|f| f.path().to_path_buf()).unwrap_or_default()
}

fn exists(path: &Path) -> Result<bool, WeightsError> {
    path.try_exists().map_err(WeightsError::io(path))
}

fn read_config(dir: &Path) -> Result<serde_json::Value, WeightsError> {
    let path = dir.join(CONFIG);
    if !exists(&path)? {
        if !exists(dir)? {
            return Err(WeightsError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint directory does not exist"),
            });
        }
        return Err(WeightsError::MissingConfig { dir: dir.to_path_buf() });
    }
    let text = std::fs::read_to_string(&path).map_err(WeightsError::io(&path))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| WeightsError::InvalidConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(WeightsError::InvalidConfig {
            path,
            reason: "expected a JSON object".to_string(),
        });
    }
    Ok(value)
}

/// The index's `weight_map`: tensor name -> shard file name.
fn read_index(path: &Path) -> Result<BTreeMap<String, String>, WeightsError> {
    let invalid = |reason: String| WeightsError::InvalidIndex {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(WeightsError::io(path))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| invalid("expected an object `weight_map`".to_string()))?;
    let mut weight_map = BTreeMap::new();
    for (key, shard) in map {
        let shard = shard
            .as_str()
            .ok_or_else(|| invalid(format!("`weight_map[\"{key}\"]` is not a file name")))?;
        let mut components = Path::new(shard).components();
        let plain = matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        );
        if !plain {
            return Err(invalid(format!(
                "`weight_map[\"{key}\"]` = {shard:?} is not a file name in the checkpoint directory"
            )));
        }
        weight_map.insert(key.clone(), shard.to_string());
    }
    Ok(weight_map)
}

fn open_shards(
    dir: &Path,
    index_path: &Path,
    weight_map: &BTreeMap<String, String>,
) -> Result<Vec<SafetensorsFile>, WeightsError> {
    // Shard name -> first key mapped to it (for the error message), in name order.
    let mut shards: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, shard) in weight_map {
        shards.entry(shard.as_str()).or_insert(key.as_str());
    }
    let mut files = Vec::with_capacity(shards.len());
    for (shard, key) in shards {
        let path = dir.join(shard);
        if !exists(&path)? {
            return Err(WeightsError::MissingShard {
                index: index_path.to_path_buf(),
                shard: path,
                key: key.to_string(),
            });
        }
        files.push(SafetensorsFile::open(&path)?);
    }
    Ok(files)
}

fn glob_safetensors(dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(WeightsError::io(dir))? {
        let entry = entry.map_err(WeightsError::io(dir))?;
        let path = entry.path();
        let is_file = entry.file_type().map_err(WeightsError::io(&path))?.is_file();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".safetensors") && !n.starts_with('.'));
        if is_file && named {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
