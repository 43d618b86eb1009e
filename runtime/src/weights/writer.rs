//! Streaming sharded safetensors writer: converts checkpoints far larger than RAM while holding
//! one tensor at a time.
//!
//! The caller declares every (name, dtype, shape) first, so shard assignment and all headers are
//! known up front; tensors then stream straight to their offsets, in declared order. Within a
//! shard, data follows declared order (not the dtype-alignment order `safetensors::serialize`
//! uses), so readers must not assume aligned data; ours doesn't.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::View;

use super::WeightsError;
use crate::tensor::{DType, HostTensor, TensorView};

/// Name of the index written next to more than one shard.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// Name of the only file of a single-shard checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Write buffer per open shard: large enough that syscalls don't bound throughput.
const BUFFER_BYTES: usize = 8 << 20;
/// Largest single write: big writes straight from a memory-mapped source are slow.
pub const WRITE_CHUNK: usize = 1 << 20;

/// One tensor the writer will receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub key: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn new(key: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Self {
        TensorSpec {
            key: key.into(),
            dtype,
            shape,
        }
    }
}

/// A shard's file name, tensors and serialized header (length prefix included).
#[derive(Debug)]
struct ShardPlan {
    name: String,
    tensors: Range<usize>,
    header: Vec<u8>,
    data_len: u64,
}

#[derive(Debug)]
struct OpenShard {
    shard: usize,
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

/// Writes a declared list of tensors as `model.safetensors`, or as
/// `model-0000i-of-0000N.safetensors` shards plus `model.safetensors.index.json`.
///
/// Shards are filled greedily in declared order, like Hugging Face: a new shard starts when the
/// next tensor would push the current one past `max_shard_size` data bytes; a tensor larger
/// than that gets a shard of its own. Dropping the writer before [`ShardedWriter::finish`]
/// leaves partial files: write inside an [`super::AtomicDir`].
#[derive(Debug)]
pub struct ShardedWriter {
    dir: PathBuf,
    specs: Vec<TensorSpec>,
    declared: HashSet<String>,
    nbytes: Vec<u64>,
    shard_of: Vec<usize>,
    shards: Vec<ShardPlan>,
    next: usize,
    current: Option<OpenShard>,
    failed: bool,
}

impl ShardedWriter {
    /// Plans the shards for `tensors` (in the order they will be written) and creates `dir` if
    /// needed. No file is created until its first tensor arrives.
    pub fn new(dir: &Path, max_shard_size: u64, tensors: Vec<TensorSpec>) -> Result<Self, WeightsError> {
        let mut declared = HashSet::with_capacity(tensors.len());
        let mut nbytes = Vec::with_capacity(tensors.len());
        for spec in &tensors {
            if !declared.insert(spec.key.clone()) {
                return Err(WeightsError::DuplicateDeclared {
                    key: spec.key.clone(),
                    dir: dir.to_path_buf(),
                });
            }
            let n = spec
                .shape
                .iter()
                .try_fold(spec.dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
                .ok_or_else(|| WeightsError::InvalidTensor {
                    key: spec.key.clone(),
                    source: crate::tensor::TensorError::Overflow {
                        dtype: spec.dtype,
                        shape: spec.shape.clone(),
                    },
                })?;
            nbytes.push(n);
        }

        let ranges = assign_shards(&nbytes, max_shard_size);
        let count = ranges.len();
        let mut shard_of = vec![0; tensors.len()];
        let mut shards = Vec::with_capacity(count);
        for (i, range) in ranges.into_iter().enumerate() {
            let name = if count == 1 {
                SINGLE_FILE.to_string()
            } else {
                format!("model-{:05}-of-{count:05}.safetensors", i + 1)
            };
            let (header, data_len) = build_header(&tensors, &nbytes, range.clone());
            for slot in shard_of.get_mut(range.clone()).unwrap_or_default() {
                *slot = i;
            }
            shards.push(ShardPlan {
                name,
                tensors: range,
                header,
                data_len,
            });
        }
        std::fs::create_dir_all(dir).map_err(WeightsError::io(dir))?;
        Ok(ShardedWriter {
            dir: dir.to_path_buf(),
            specs: tensors,
            declared,
            nbytes,
            shard_of,
            shards,
            next: 0,
            current: None,
            failed: false,
        })
    }

    /// The file names the writer will produce (shards, then the index if sharded).
    pub fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shards.iter().map(|s| s.name.clone()).collect();
        if self.shards.len() > 1 {
            names.push(INDEX_FILE.to_string());
        }
        names
    }

    /// The next tensor expected, if any remain.
    pub fn next_key(&self) -> Option<&str> {
        self.specs.get(self.next).map(|s| s.key.as_str())
    }

    /// Streams `key`'s little-endian bytes to its place. `key` must be the next declared
    /// tensor and `data` exactly its size.
    pub fn write(&mut self, key: &str, data: &[u8]) -> Result<(), WeightsError> {
        self.write_parts(key, &[data])
    }

    /// [`ShardedWriter::write`] for a tensor given as pieces whose concatenation is its bytes
    /// (so a caller need not concatenate them first). Bytes go out in chunks of at most
    /// `WRITE_CHUNK`: one huge `write` from a memory-mapped source is about 2.5× slower than
    /// chunked writes on ext4 (measured, see docs/PERFORMANCE.md "Conversion").
    pub fn write_parts(&mut self, key: &str, parts: &[&[u8]]) -> Result<(), WeightsError> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if self.failed {
            return Err(WeightsError::WriterFailed { dir: self.dir.clone() });
        }
        let index = self.next;
        let Some(spec) = self.specs.get(index) else {
            return Err(WeightsError::UnexpectedWrite {
                key: key.to_string(),
                dir: self.dir.clone(),
            });
        };
        if spec.key != key {
            if !self.declared.contains(key) {
                return Err(WeightsError::Undeclared {
                    key: key.to_string(),
                    dir: self.dir.clone(),
                });
            }
            return Err(WeightsError::OutOfOrder {
                key: key.to_string(),
                expected: spec.key.clone(),
                dir: self.dir.clone(),
            });
        }
        let expected = self.nbytes.get(index).copied().unwrap_or(0);
        if total != expected {
            return Err(WeightsError::WrongByteCount {
                key: key.to_string(),
                dtype: spec.dtype,
                shape: spec.shape.clone(),
                expected,
                found: total,
            });
        }
        let result = self.write_unchecked(index, parts);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// [`ShardedWriter::write`] that also checks dtype and shape against the declaration.
    pub fn write_tensor(&mut self, key: &str, tensor: TensorView<'_>) -> Result<(), WeightsError> {
        if let Some(spec) = self.specs.get(self.next).filter(|s| s.key == key) {
            if spec.dtype != tensor.dtype || spec.shape != tensor.shape {
                return Err(WeightsError::WrongTensor {
                    key: key.to_string(),
                    expected_dtype: spec.dtype,
                    expected_shape: spec.shape.clone(),
                    found_dtype: tensor.dtype,
                    found_shape: tensor.shape.to_vec(),
                });
            }
        }
        self.write(key, tensor.data)
    }

    fn write_unchecked(&mut self, index: usize, parts: &[&[u8]]) -> Result<(), WeightsError> {
        let shard = self.shard_of.get(index).copied().unwrap_or(0);
        if self.current.as_ref().map(|c| c.shard) != Some(shard) {
            self.close_current()?;
            self.current = Some(self.open_shard(shard)?);
        }
        if let Some(current) = self.current.as_mut() {
            // Large tensors bypass the buffer (one copy less); small ones are coalesced.
            let direct = parts.iter().map(|p| p.len()).sum::<usize>() >= WRITE_CHUNK;
            if direct {
                current.out.flush().map_err(WeightsError::io(&current.path))?;
            }
            for chunk in parts.iter().flat_map(|p| p.chunks(WRITE_CHUNK)) {
                let result = if direct {
                    current.out.get_mut().write_all(chunk)
                } else {
                    current.out.write_all(chunk)
                };
                result.map_err(WeightsError::io(&current.path))?;
                current.written += chunk.len() as u64;
            }
        }
        self.next = index + 1;
        let last_of_shard = self.shards.get(shard).is_some_and(|s| s.tensors.end == self.next);
        if last_of_shard {
            self.close_current()?;
        }
        Ok(())
    }

    fn open_shard(&self, shard: usize) -> Result<OpenShard, WeightsError> {
        let plan = self
            .shards
            .get(shard)
            .ok_or_else(|| WeightsError::WriterFailed { dir: self.dir.clone() })?;
        let path = self.dir.join(&plan.name);
        let file = File::create(&path).map_err(WeightsError::io(&path))?;
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, file);
        out.write_all(&plan.header).map_err(WeightsError::io(&path))?;
        Ok(OpenShard {
            shard,
            path,
            out,
            written: 0,
        })
    }

    /// Flushes the open shard and checks it received exactly its planned bytes.
    fn close_current(&mut self) -> Result<(), WeightsError> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let expected = self.shards.get(current.shard).map(|s| s.data_len).unwrap_or(0);
        let file = current.out.into_inner().map_err(|e| WeightsError::Io {
            path: current.path.clone(),
            source: e.into_error(),
        })?;
        drop(file);
        if current.written != expected {
            return Err(WeightsError::Truncated {
                path: current.path,
                detail: format!(
                    "writer closed the shard after {} of {expected} data bytes",
                    current.written
                ),
            });
        }
        Ok(())
    }

    /// Checks every declared tensor was written, closes the last shard and writes the index
    /// (when sharded). Returns the paths written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, WeightsError> {
        if self.failed {
            return Err(WeightsError::WriterFailed { dir: self.dir });
        }
        if let Some(first) = self.specs.get(self.next) {
            return Err(WeightsError::Incomplete {
                missing: self.specs.len() - self.next,
                first: first.key.clone(),
                dir: self.dir,
            });
        }
        self.close_current()?;
        // Only an empty plan leaves a shard untouched: write its header-only file.
        for shard in 0..self.shards.len() {
            let empty = self.shards.get(shard).is_some_and(|s| s.tensors.is_empty());
            if empty {
                self.current = Some(self.open_shard(shard)?);
                self.close_current()?;
            }
        }
        let mut paths: Vec<PathBuf> = self.shards.iter().map(|s| self.dir.join(&s.name)).collect();
        if self.shards.len() > 1 {
            let path = self.dir.join(INDEX_FILE);
            std::fs::write(&path, self.index_json()).map_err(WeightsError::io(&path))?;
            paths.push(path);
        }
        Ok(paths)
    }

    fn index_json(&self) -> Vec<u8> {
        let total: u64 = self.nbytes.iter().sum();
        let mut order: Vec<(&str, &str)> = self
            .specs
            .iter()
            .zip(&self.shard_of)
            .map(|(spec, &s)| {
                let name = self.shards.get(s).map(|p| p.name.as_str()).unwrap_or("");
                (spec.key.as_str(), name)
            })
            .collect();
        order.sort_unstable();
        let weight_map: serde_json::Map<String, serde_json::Value> = order
            .into_iter()
            .map(|(k, f)| (k.to_string(), serde_json::Value::from(f)))
            .collect();
        let index = serde_json::json!({
            "metadata": { "total_size": total },
            "weight_map": weight_map,
        });
        let mut bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Greedy shard ranges over tensor sizes (at least one range, possibly empty).
fn assign_shards(nbytes: &[u64], max_shard_size: u64) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut size = 0u64;
    for (i, &n) in nbytes.iter().enumerate() {
        if i > start && size.saturating_add(n) > max_shard_size {
            ranges.push(start..i);
            start = i;
            size = 0;
        }
        size = size.saturating_add(n);
    }
    ranges.push(start..nbytes.len());
    ranges
}

/// The header of one shard: length prefix, then JSON padded with spaces to 8 bytes.
fn build_header(specs: &[TensorSpec], nbytes: &[u64], range: Range<usize>) -> (Vec<u8>, u64) {
    let mut json = serde_json::Map::new();
    json.insert("__metadata__".to_string(), serde_json::json!({ "format": "pt" }));
    let mut offset = 0u64;
    for (spec, &n) in specs
        .get(range.clone())
        .unwrap_or_default()
        .iter()
        .zip(nbytes.get(range).unwrap_or_default())
    {
        json.insert(
            spec.key.clone(),
            serde_json::json!({
                "dtype": spec.dtype.safetensors_name(),
                "shape": spec.shape,
                "data_offsets": [offset, offset + n],
            }),
        );
        offset += n;
    }
    let mut body = serde_json::to_vec(&json).unwrap_or_default();
    body.resize(body.len().next_multiple_of(8), b' ');
    let mut header = Vec::with_capacity(8 + body.len());
    header.extend_from_slice(&(body.len() as u64).to_le_bytes());
    header.extend_from_slice(&body);
    (header, offset)
}

/// Adapter so `safetensors::serialize_to_file` can read a [`HostTensor`].
struct AsView<'a>(&'a HostTensor);

impl View for AsView<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.0.dtype.to_safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.0.data)
    }
    fn data_len(&self) -> usize {
        self.0.data.len()
    }
}

/// Writes small tensor sets to one safetensors file (tests, small outputs), through the
/// `safetensors` crate's serializer.
pub fn write_safetensors(path: &Path, tensors: &[(String, HostTensor)]) -> Result<(), WeightsError> {
    let mut seen = HashSet::with_capacity(tensors.len());
    for (key, t) in tensors {
        t.check().map_err(|source| WeightsError::InvalidTensor {
            key: key.clone(),
            source,
        })?;
        if !seen.insert(key.as_str()) {
            return Err(WeightsError::DuplicateDeclared {
                key: key.clone(),
                dir: path.to_path_buf(),
            });
        }
    }
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(
        tensors.iter().map(|(k, t)| (k.as_str(), AsView(t))),
        Some(metadata),
        path,
    )
    .map_err(|e| WeightsError::Io {
        path: path.to_path_buf(),
        source: match e {
            safetensors::SafeTensorError::IoError(io) => io,
            other => std::io::Error::other(other),
        },
    })
}
