//! One memory-mapped safetensors file, its header parsed and checked up front.
//!
//! Checking every entry at open time (supported dtype, size consistent with the shape,
//! contiguous offsets, data inside the file) means `get` afterwards can only fail on an unknown
//! key, and every error names the file and tensor.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::TensorInfo;

use super::WeightsError;
use crate::tensor::{DType, TensorView};

/// Header size limit of the `safetensors` crate: larger is surely not a safetensors file.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Where one tensor lives in the mapped file.
#[derive(Debug, Clone)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

/// A memory-mapped `.safetensors` file. Tensors are read as borrowed [`TensorView`]s.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    entries: BTreeMap<String, Entry>,
    metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    /// Maps `path` and validates its header against the file's size.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let file = File::open(path).map_err(WeightsError::io(path))?;
        let len = file.metadata().map_err(WeightsError::io(path))?.len();
        if len < 8 {
            return Err(WeightsError::Truncated {
                path: path.to_path_buf(),
                detail: format!("{len} bytes, shorter than the 8-byte header length prefix"),
            });
        }
        // SAFETY: the map is read-only; as with every mmap, another process truncating or
        // rewriting the file while it is mapped is undefined behaviour, which we accept for
        // checkpoints (the same contract as the `safetensors` and candle loaders).
        let mmap = unsafe { Mmap::map(&file) }.map_err(WeightsError::io(path))?;
        let (entries, metadata) = parse_header(path, &mmap)?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap,
            entries,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Dtype and shape of `key`, without touching its data.
    pub fn info(&self, key: &str) -> Option<(DType, &[usize])> {
        self.entries.get(key).map(|e| (e.dtype, e.shape.as_slice()))
    }

    /// A zero-copy view of `key`'s data.
    pub fn get(&self, key: &str) -> Result<TensorView<'_>, WeightsError> {
        let entry = self.entries.get(key).ok_or_else(|| WeightsError::KeyNotFound {
            key: key.to_string(),
            location: self.path.display().to_string(),
        })?;
        let data = self
            .mmap
            .get(entry.start..entry.end)
            .ok_or_else(|| WeightsError::Truncated {
                path: self.path.clone(),
                detail: format!("tensor `{key}` lies past the end of the mapped file"),
            })?;
        Ok(TensorView {
            dtype: entry.dtype,
            shape: &entry.shape,
            data,
        })
    }

    /// Drops `key`'s pages from this process's resident set; they stay in the page cache and
    /// fault back in on the next access. Lets a streaming conversion hold about one tensor in
    /// RSS instead of the whole mapped checkpoint. Unknown keys and failures are ignored (it is
    /// only a hint).
    pub fn release(&self, key: &str) {
        if let Some(e) = self.entries.get(key) {
            // SAFETY: the map is shared and read-only, so MADV_DONTNEED only unmaps the pages
            // from this process: a later read (even through a live view) faults the same file
            // contents back in. Nothing is written through the mapping.
            let _ = unsafe {
                self.mmap
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, e.start, e.end - e.start)
            };
        }
    }

    /// Sum of the tensors' data bytes (the index's `total_size` convention).
    pub fn data_bytes(&self) -> u64 {
        self.entries.values().map(|e| (e.end - e.start) as u64).sum()
    }

    /// The header's `__metadata__` map (empty if absent).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }
}

type Parsed = (BTreeMap<String, Entry>, HashMap<String, String>);

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Parsed, WeightsError> {
    let corrupt = |detail: String| WeightsError::CorruptHeader {
        path: path.to_path_buf(),
        detail,
    };
    let file_len = bytes.len() as u64;
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_BYTES {
        return Err(corrupt(format!(
            "header length prefix says {n} bytes (limit {MAX_HEADER_BYTES}); not a safetensors file?"
        )));
    }
    let header_end = 8 + n;
    if header_end > file_len {
        return Err(WeightsError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "the header length prefix says {n} bytes but only {} bytes follow it",
                file_len - 8
            ),
        });
    }
    // Both bounds are at most file_len, which fits in usize since the file is mapped.
    let header = bytes.get(8..header_end as usize).unwrap_or_default();
    let text = std::str::from_utf8(header).map_err(|e| corrupt(format!("header is not UTF-8: {e}")))?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| corrupt(format!("header is not a JSON object: {e}")))?;

    let mut entries = BTreeMap::new();
    let mut metadata = HashMap::new();
    for (key, value) in json {
        if key == "__metadata__" {
            metadata = serde_json::from_value(value)
                .map_err(|e| corrupt(format!("`__metadata__` is not a string map: {e}")))?;
            continue;
        }
        let entry = parse_entry(path, &key, value)?;
        entries.insert(key, entry);
    }

    // Offsets must tile the data section from 0 without gaps or overlaps.
    let mut order: Vec<(&String, &Entry)> = entries.iter().collect();
    order.sort_by_key(|(_, e)| (e.start, e.end));
    let mut cursor = 0usize;
    for (key, e) in &order {
        if e.start != cursor {
            return Err(corrupt(format!(
                "tensor `{key}` data starts at offset {} but the previous tensor ends at {cursor} \
                 (offsets must be contiguous from 0)",
                e.start
            )));
        }
        cursor = e.end;
    }
    let data_len = cursor as u64;
    let available = file_len - header_end;
    if data_len > available {
        let first_past = order
            .iter()
            .find(|(_, e)| e.end as u64 > available)
            .map(|(k, e)| format!("tensor `{k}` ends at data offset {}", e.end))
            .unwrap_or_default();
        return Err(WeightsError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "{first_past} but the data section has only {available} bytes \
                 (file is {file_len} bytes, the header describes {})",
                header_end + data_len
            ),
        });
    }
    if data_len < available {
        return Err(corrupt(format!(
            "{} trailing bytes after the last tensor (header describes {} bytes, file is {file_len})",
            available - data_len,
            header_end + data_len
        )));
    }

    // Turn data offsets into absolute file offsets.
    let base = header_end as usize;
    for e in entries.values_mut() {
        e.start += base;
        e.end += base;
    }
    Ok((entries, metadata))
}

fn parse_entry(path: &Path, key: &str, value: serde_json::Value) -> Result<Entry, WeightsError> {
    let corrupt = |detail: String| WeightsError::CorruptHeader {
        path: path.to_path_buf(),
        detail: format!("tensor `{key}`: {detail}"),
    };
    // An unsupported dtype is its own error even where the safetensors crate does not know it.
    if let Some(name) = value.get("dtype").and_then(|d| d.as_str()) {
        if DType::from_safetensors_name(name).is_none() {
            return Err(WeightsError::UnsupportedDtype {
                path: path.to_path_buf(),
                key: key.to_string(),
                dtype: name.to_string(),
            });
        }
    }
    let info: TensorInfo = serde_json::from_value(value)
        .map_err(|e| corrupt(format!("bad entry ({e}); expected {{dtype, shape, data_offsets}}")))?;
    let dtype = DType::from_safetensors(info.dtype).ok_or_else(|| WeightsError::UnsupportedDtype {
        path: path.to_path_buf(),
        key: key.to_string(),
        dtype: format!("{:?}", info.dtype),
    })?;
    let (start, end) = info.data_offsets;
    let nbytes = info
        .shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| corrupt(format!("shape {:?} overflows", info.shape)))?;
    if end < start {
        return Err(corrupt(format!("data_offsets [{start}, {end}] are reversed")));
    }
    if end - start != nbytes {
        return Err(corrupt(format!(
            "{dtype} shape {:?} needs {nbytes} bytes but data_offsets [{start}, {end}] span {}",
            info.shape,
            end - start
        )));
    }
    Ok(Entry {
        dtype,
        shape: info.shape,
        start,
        end,
    })
}
