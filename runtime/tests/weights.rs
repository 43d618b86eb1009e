//! Safetensors reading, sharded writing, layout checks and atomic output directories.

use std::fs;
use std::path::{Path, PathBuf};

use half::bf16;
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::{
    check_layout, write_safetensors, AtomicDir, Checkpoint, LayoutProblem, SafetensorsFile, ShardedWriter, TensorSpec,
    WeightsError, INDEX_FILE,
};
use tempfile::TempDir;

/// Deterministic, distinct-per-tensor values (an LCG), so a mixed-up tensor is caught.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn tensor(seed: u64, dtype: DType, shape: &[usize]) -> HostTensor {
    let n = shape.iter().product();
    HostTensor::from_f32(shape.to_vec(), &values(seed, n))
        .unwrap()
        .cast(dtype)
}

fn write_config(dir: &Path) {
    fs::write(
        dir.join("config.json"),
        r#"{"model_type": "apriel2", "hidden_size": 4}"#,
    )
    .unwrap();
}

/// A small mixed-dtype set of tensors.
fn sample() -> Vec<(String, HostTensor)> {
    vec![
        ("model.embed_tokens.weight".into(), tensor(1, DType::BF16, &[6, 4])),
        ("model.norm.weight".into(), tensor(2, DType::F32, &[4])),
        ("lm_head.weight".into(), tensor(3, DType::F16, &[6, 4])),
        ("model.decoder.blocks.0.mixer.A_log".into(), tensor(4, DType::F32, &[2])),
        ("model.decoder.blocks.0.mixer.D".into(), tensor(5, DType::F64, &[2, 1])),
    ]
}

/// Writes `tensors` with a ShardedWriter in the given order.
fn write_sharded(dir: &Path, max: u64, tensors: &[(String, HostTensor)]) -> Vec<PathBuf> {
    let specs = tensors
        .iter()
        .map(|(k, t)| TensorSpec::new(k.clone(), t.dtype, t.shape.clone()))
        .collect();
    let mut w = ShardedWriter::new(dir, max, specs).unwrap();
    for (k, t) in tensors {
        w.write_tensor(k, t.view()).unwrap();
    }
    w.finish().unwrap()
}

fn assert_same_tensors(ckpt: &Checkpoint, tensors: &[(String, HostTensor)]) {
    assert_eq!(ckpt.len(), tensors.len());
    for (k, t) in tensors {
        let v = ckpt.get(k).unwrap();
        assert_eq!(v.to_host(), *t, "{k}");
        assert_eq!(ckpt.info(k), Some((t.dtype, t.shape.as_slice())), "{k}");
    }
}

fn err_text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[test]
fn single_file_round_trip() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let tensors = sample();
    write_safetensors(&tmp.path().join("model.safetensors"), &tensors).unwrap();
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ckpt.config()["model_type"], "apriel2");
    assert_same_tensors(&ckpt, &tensors);
    let keys: Vec<&str> = ckpt.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(ckpt.files().len(), 1);
    let total: usize = tensors.iter().map(|(_, t)| t.nbytes()).sum();
    assert_eq!(ckpt.total_bytes(), total as u64);
    // Views decode what was written.
    let v = ckpt.get("model.decoder.blocks.0.mixer.D").unwrap();
    assert_eq!(v.to_f64_vec(), tensors[4].1.to_f64_vec());
    assert_eq!(v.shape, &[2, 1]);
}

#[test]
fn streaming_writer_single_shard_matches_safetensors_crate() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let tensors = sample();
    let paths = write_sharded(tmp.path(), u64::MAX, &tensors);
    assert_eq!(paths, vec![tmp.path().join("model.safetensors")]);
    assert!(!tmp.path().join(INDEX_FILE).exists());
    // The reference parser accepts it and reads the same bytes.
    let bytes = fs::read(&paths[0]).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (k, t) in &tensors {
        assert_eq!(st.tensor(k).unwrap().data(), t.data.as_slice(), "{k}");
    }
    // Header length is a multiple of 8 (safetensors alignment convention).
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(n % 8, 0);
    let file = SafetensorsFile::open(&paths[0]).unwrap();
    assert_eq!(file.metadata().get("format").map(String::as_str), Some("pt"));
    assert_same_tensors(&Checkpoint::open(tmp.path()).unwrap(), &tensors);
}

#[test]
fn sharded_round_trip_with_three_shards_and_index() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    // Sizes 40, 40, 40, 40, 120 bytes with max 100: greedy gives [a b] [c d] [e] (e alone as
    // it exceeds the limit).
    let tensors: Vec<(String, HostTensor)> = vec![
        ("a".into(), tensor(10, DType::F32, &[10])),
        ("b".into(), tensor(11, DType::BF16, &[4, 5])),
        ("c".into(), tensor(12, DType::F32, &[2, 5])),
        ("d".into(), tensor(13, DType::F16, &[20])),
        ("e".into(), tensor(14, DType::F64, &[15])),
    ];
    let paths = write_sharded(tmp.path(), 100, &tensors);
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors",
            INDEX_FILE
        ]
    );
    let index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join(INDEX_FILE)).unwrap()).unwrap();
    assert_eq!(index["metadata"]["total_size"], 280);
    let map = index["weight_map"].as_object().unwrap();
    let expect = [
        ("a", "model-00001-of-00003.safetensors"),
        ("b", "model-00001-of-00003.safetensors"),
        ("c", "model-00002-of-00003.safetensors"),
        ("d", "model-00002-of-00003.safetensors"),
        ("e", "model-00003-of-00003.safetensors"),
    ];
    assert_eq!(map.len(), expect.len());
    for (k, f) in expect {
        assert_eq!(map[k], f, "{k}");
        let shard = SafetensorsFile::open(&tmp.path().join(f)).unwrap();
        assert!(shard.contains(k), "{f} lacks {k}");
        // The reference parser accepts every shard.
        let bytes = fs::read(tmp.path().join(f)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert!(st.tensor(k).is_ok(), "{f}: {k}");
    }
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ckpt.files().len(), 3);
    assert_eq!(ckpt.total_bytes(), 280);
    assert_same_tensors(&ckpt, &tensors);
}

#[test]
fn fallback_reads_every_safetensors_file() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let tensors = sample();
    write_safetensors(&tmp.path().join("part-a.safetensors"), &tensors[..2]).unwrap();
    write_safetensors(&tmp.path().join("part-b.safetensors"), &tensors[2..]).unwrap();
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ckpt.files().len(), 2);
    assert_same_tensors(&ckpt, &tensors);
}

#[test]
fn empty_plan_writes_an_empty_checkpoint() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let w = ShardedWriter::new(tmp.path(), 10, vec![]).unwrap();
    let paths = w.finish().unwrap();
    assert_eq!(paths, vec![tmp.path().join("model.safetensors")]);
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    assert!(ckpt.is_empty());
}

// ---- read errors ----

fn single_checkpoint() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let path = tmp.path().join("model.safetensors");
    write_safetensors(&path, &sample()).unwrap();
    (tmp, path)
}

#[test]
fn missing_config_is_named() {
    let tmp = TempDir::new().unwrap();
    write_safetensors(&tmp.path().join("model.safetensors"), &sample()).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::MissingConfig { .. }), "{err}");
    assert!(err_text(&err).contains("config.json"), "{err}");
    // A config that is not JSON.
    fs::write(tmp.path().join("config.json"), "{not json").unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::InvalidConfig { .. }), "{err}");
    // No weights at all.
    let empty = TempDir::new().unwrap();
    write_config(empty.path());
    let err = Checkpoint::open(empty.path()).unwrap_err();
    assert!(matches!(err, WeightsError::NoWeights { .. }), "{err}");
}

#[test]
fn truncated_data_names_file_and_tensor() {
    let (tmp, path) = single_checkpoint();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::Truncated { .. }), "{err}");
    let text = err_text(&err);
    assert!(text.contains("model.safetensors"), "{text}");
    // safetensors::serialize puts the largest-alignment dtype (F64: `...D`) first and F16
    // last, so the cut lands in `lm_head.weight`.
    assert!(text.contains("lm_head.weight"), "{text}");
}

#[test]
fn truncated_header_and_tiny_files_are_errors() {
    let (tmp, path) = single_checkpoint();
    let bytes = fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    fs::write(&path, &bytes[..8 + n / 2]).unwrap();
    let err = SafetensorsFile::open(&path).unwrap_err();
    assert!(matches!(err, WeightsError::Truncated { .. }), "{err}");
    assert!(err_text(&err).contains("header length"), "{err}");
    fs::write(&path, [1u8, 2, 3]).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::Truncated { .. }), "{err}");
    // Missing file: an I/O error with the path.
    let err = SafetensorsFile::open(&tmp.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
    assert!(err_text(&err).contains("nope.safetensors"), "{err}");
}

#[test]
fn corrupt_header_bytes_are_reported() {
    let (tmp, path) = single_checkpoint();
    let mut bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[8], b'{');
    bytes[8] = b'#';
    bytes[9] = 0xFF;
    fs::write(&path, &bytes).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::CorruptHeader { .. }), "{err}");
    assert!(err_text(&err).contains("model.safetensors"), "{err}");
    // An absurd length prefix.
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let err = SafetensorsFile::open(&path).unwrap_err();
    assert!(matches!(err, WeightsError::CorruptHeader { .. }), "{err}");
}

/// A file with a hand-written header and `data_len` zero bytes of data.
fn raw_file(path: &Path, header: &str, data_len: usize) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    fs::write(path, bytes).unwrap();
}

#[test]
fn bad_offsets_and_unsupported_dtypes_name_the_tensor() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("x.safetensors");
    // A gap between tensors.
    raw_file(
        &path,
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#,
        16,
    );
    let err = SafetensorsFile::open(&path).unwrap_err();
    assert!(matches!(err, WeightsError::CorruptHeader { .. }), "{err}");
    assert!(err_text(&err).contains("`v`"), "{err}");
    // Offsets inconsistent with the shape.
    raw_file(&path, r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8);
    let err = SafetensorsFile::open(&path).unwrap_err();
    assert!(
        err_text(&err).contains("`w`") && err_text(&err).contains("12 bytes"),
        "{err}"
    );
    // Data offsets past the end of the file.
    raw_file(&path, r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8);
    let err = SafetensorsFile::open(&path).unwrap_err();
    assert!(matches!(err, WeightsError::Truncated { .. }), "{err}");
    assert!(err_text(&err).contains("`w`"), "{err}");
    // Dtypes the runtime does not support, known or not to the safetensors crate.
    for dtype in ["BOOL", "F8_E4M3", "Q4_K"] {
        raw_file(
            &path,
            &format!(r#"{{"m":{{"dtype":"{dtype}","shape":[8],"data_offsets":[0,8]}}}}"#),
            8,
        );
        let err = SafetensorsFile::open(&path).unwrap_err();
        assert!(matches!(err, WeightsError::UnsupportedDtype { .. }), "{err}");
        let text = err_text(&err);
        assert!(
            text.contains("`m`") && text.contains(dtype) && text.contains("x.safetensors"),
            "{text}"
        );
    }
}

#[test]
fn unknown_key_is_named() {
    let (tmp, _) = single_checkpoint();
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    let err = ckpt.get("model.nope").unwrap_err();
    assert!(matches!(err, WeightsError::KeyNotFound { .. }), "{err}");
    assert!(err_text(&err).contains("model.nope"), "{err}");
    assert!(ckpt.info("model.nope").is_none());
}

fn sharded_checkpoint() -> TempDir {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    // 48 + 16 | 48 + 8 | 16 bytes with a 64-byte limit: three shards.
    let paths = write_sharded(tmp.path(), 64, &sample());
    assert_eq!(paths.len(), 4);
    tmp
}

#[test]
fn index_naming_a_missing_shard() {
    let tmp = sharded_checkpoint();
    let victim = tmp.path().join("model-00002-of-00003.safetensors");
    assert!(victim.exists());
    fs::remove_file(&victim).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::MissingShard { .. }), "{err}");
    let text = err_text(&err);
    assert!(
        text.contains("model-00002-of-00003.safetensors") && text.contains(INDEX_FILE),
        "{text}"
    );
}

#[test]
fn index_mapping_a_key_to_the_wrong_shard() {
    let tmp = sharded_checkpoint();
    let index_path = tmp.path().join(INDEX_FILE);
    let mut index: serde_json::Value = serde_json::from_str(&fs::read_to_string(&index_path).unwrap()).unwrap();
    let map = index["weight_map"].as_object_mut().unwrap();
    // A key the shards lack, mapped to an existing shard.
    map.insert("ghost.weight".into(), "model-00001-of-00003.safetensors".into());
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::IndexKeyMissing { .. }), "{err}");
    let text = err_text(&err);
    assert!(
        text.contains("ghost.weight") && text.contains("model-00001-of-00003"),
        "{text}"
    );
    // A shard name escaping the directory is rejected.
    index["weight_map"]["ghost.weight"] = "../model-00001-of-00003.safetensors".into();
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::InvalidIndex { .. }), "{err}");
}

#[test]
fn duplicate_key_across_files() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let tensors = sample();
    write_safetensors(&tmp.path().join("a.safetensors"), &tensors[..3]).unwrap();
    write_safetensors(&tmp.path().join("b.safetensors"), &tensors[2..]).unwrap();
    let err = Checkpoint::open(tmp.path()).unwrap_err();
    assert!(matches!(err, WeightsError::DuplicateKey { .. }), "{err}");
    let text = err_text(&err);
    assert!(
        text.contains(&tensors[2].0) && text.contains("a.safetensors") && text.contains("b.safetensors"),
        "{text}"
    );
}

// ---- writer errors ----

fn plan() -> (Vec<(String, HostTensor)>, Vec<TensorSpec>) {
    let tensors = sample();
    let specs = tensors
        .iter()
        .map(|(k, t)| TensorSpec::new(k.clone(), t.dtype, t.shape.clone()))
        .collect();
    (tensors, specs)
}

#[test]
fn writer_rejects_out_of_order_wrong_size_and_unknown_tensors() {
    let tmp = TempDir::new().unwrap();
    let (tensors, specs) = plan();
    let mut w = ShardedWriter::new(tmp.path(), 1 << 20, specs).unwrap();
    let err = w.write(&tensors[1].0, &tensors[1].1.data).unwrap_err();
    assert!(matches!(err, WeightsError::OutOfOrder { .. }), "{err}");
    let text = err_text(&err);
    assert!(text.contains(&tensors[1].0) && text.contains(&tensors[0].0), "{text}");
    let err = w.write("not.declared", &[]).unwrap_err();
    assert!(matches!(err, WeightsError::Undeclared { .. }), "{err}");
    let short = &tensors[0].1.data[1..];
    let err = w.write(&tensors[0].0, short).unwrap_err();
    assert!(
        matches!(
            err,
            WeightsError::WrongByteCount {
                expected: 48,
                found: 47,
                ..
            }
        ),
        "{err}"
    );
    assert!(err_text(&err).contains(&tensors[0].0), "{err}");
    let wrong = HostTensor::zeros(DType::F32, vec![6, 2]).unwrap();
    let err = w.write_tensor(&tensors[0].0, wrong.view()).unwrap_err();
    assert!(matches!(err, WeightsError::WrongTensor { .. }), "{err}");
    // Rejected writes leave the writer usable.
    assert_eq!(w.next_key(), Some(tensors[0].0.as_str()));
    for (k, t) in &tensors[..3] {
        w.write(k, &t.data).unwrap();
    }
    let err = w.finish().unwrap_err();
    assert!(matches!(err, WeightsError::Incomplete { missing: 2, .. }), "{err}");
    assert!(err_text(&err).contains(&tensors[3].0), "{err}");
}

#[test]
fn writer_rejects_duplicates_and_extra_writes() {
    let tmp = TempDir::new().unwrap();
    let dup = vec![
        TensorSpec::new("x", DType::F32, vec![1]),
        TensorSpec::new("x", DType::F32, vec![1]),
    ];
    let err = ShardedWriter::new(tmp.path(), 10, dup).unwrap_err();
    assert!(matches!(err, WeightsError::DuplicateDeclared { .. }), "{err}");
    let mut w = ShardedWriter::new(tmp.path(), 10, vec![TensorSpec::new("x", DType::F32, vec![1])]).unwrap();
    w.write("x", &[0; 4]).unwrap();
    let err = w.write("x", &[0; 4]).unwrap_err();
    assert!(matches!(err, WeightsError::UnexpectedWrite { .. }), "{err}");
    w.finish().unwrap();
}

// ---- atomic output ----

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn atomic_dir_leaves_nothing_on_drop_and_commits_by_rename() {
    let parent = TempDir::new().unwrap();
    let out = parent.path().join("out");
    {
        let dir = AtomicDir::create(&out, false).unwrap();
        assert_eq!(dir.path().parent(), Some(parent.path()));
        write_sharded(dir.path(), 100, &sample());
        assert_eq!(listing(parent.path()).len(), 1);
        // Dropped without commit, as on an error.
    }
    assert!(listing(parent.path()).is_empty(), "{:?}", listing(parent.path()));

    let dir = AtomicDir::create(&out, false).unwrap();
    write_config(dir.path());
    write_sharded(dir.path(), 100, &sample());
    assert!(!out.exists(), "nothing at the final path before commit");
    assert_eq!(dir.commit().unwrap(), out);
    assert_eq!(listing(parent.path()), ["out"]);
    assert_same_tensors(&Checkpoint::open(&out).unwrap(), &sample());

    // An existing output is refused without force...
    let err = AtomicDir::create(&out, false).unwrap_err();
    assert!(matches!(err, WeightsError::AlreadyExists { .. }), "{err}");
    assert!(err_text(&err).contains("out"), "{err}");
    // ...and with force it survives until commit, then is replaced.
    let dir = AtomicDir::create(&out, true).unwrap();
    fs::write(dir.path().join("new.txt"), "new").unwrap();
    assert!(out.join(INDEX_FILE).exists());
    drop(dir);
    assert!(
        out.join(INDEX_FILE).exists(),
        "a dropped forced dir keeps the old output"
    );
    let dir = AtomicDir::create(&out, true).unwrap();
    fs::write(dir.path().join("new.txt"), "new").unwrap();
    dir.commit().unwrap();
    assert_eq!(listing(&out), ["new.txt"]);
    assert_eq!(listing(parent.path()), ["out"]);
}

// ---- layout ----

#[test]
fn layout_check_reports_every_problem_together() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let mut tensors = sample();
    tensors.push(("ids".into(), HostTensor::from_i64(vec![3], &[1, 2, 3]).unwrap()));
    tensors.push(("extra.bias".into(), tensor(9, DType::F32, &[7])));
    write_safetensors(&tmp.path().join("model.safetensors"), &tensors).unwrap();
    let ckpt = Checkpoint::open(tmp.path()).unwrap();

    let mut expected: Vec<(String, Vec<usize>)> = sample().into_iter().map(|(k, t)| (k, t.shape)).collect();
    expected[0].1 = vec![4, 6]; // embed_tokens transposed
    expected.push(("ids".into(), vec![3]));
    expected.push(("model.missing.weight".into(), vec![5, 5]));
    let err = check_layout(&ckpt, &expected).unwrap_err();
    assert_eq!(
        err.problems,
        vec![
            LayoutProblem::Unexpected {
                key: "extra.bias".into(),
                shape: vec![7]
            },
            LayoutProblem::NotFloat {
                key: "ids".into(),
                dtype: DType::I64
            },
            LayoutProblem::WrongShape {
                key: "model.embed_tokens.weight".into(),
                expected: vec![4, 6],
                found: vec![6, 4],
            },
            LayoutProblem::Missing {
                key: "model.missing.weight".into(),
                expected: vec![5, 5]
            },
        ]
    );
    let text = err.to_string();
    assert!(text.contains("1 missing") && text.contains("1 unexpected"), "{text}");
    assert!(text.contains("expected [4, 6], found [6, 4]"), "{text}");

    // The matching layout passes.
    let exact: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .filter(|(k, _)| k != "ids")
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect();
    let ckpt_ok = {
        let ok = TempDir::new().unwrap();
        write_config(ok.path());
        let floats: Vec<_> = tensors.iter().filter(|(k, _)| k != "ids").cloned().collect();
        write_safetensors(&ok.path().join("model.safetensors"), &floats).unwrap();
        (Checkpoint::open(ok.path()).unwrap(), ok)
    };
    check_layout(&ckpt_ok.0, &exact).unwrap();
}

#[test]
fn layout_report_is_capped() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    write_safetensors(&tmp.path().join("model.safetensors"), &sample()).unwrap();
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    let expected: Vec<(String, Vec<usize>)> = (0..100).map(|i| (format!("missing.{i:03}"), vec![1])).collect();
    let err = check_layout(&ckpt, &expected).unwrap_err();
    assert_eq!(err.problems.len(), 105);
    let text = err.to_string();
    let lines = text.lines().count();
    assert!(lines <= 30, "{lines} lines");
    assert!(text.contains("and 80 more"), "{text}");
    // Sorted: the first listed problem is the smallest key.
    assert!(text.lines().nth(1).unwrap().contains("lm_head.weight"), "{text}");
}

#[test]
fn bf16_data_reads_back_exactly_through_mmap() {
    let tmp = TempDir::new().unwrap();
    write_config(tmp.path());
    let vals: Vec<bf16> = (0..64).map(|i| bf16::from_f32(i as f32 * 0.125 - 3.0)).collect();
    let t = HostTensor::from_bf16(vec![8, 8], &vals).unwrap();
    write_sharded(tmp.path(), u64::MAX, &[("w".into(), t)]);
    let ckpt = Checkpoint::open(tmp.path()).unwrap();
    let got = ckpt.get("w").unwrap().to_f32_vec();
    let want: Vec<f32> = vals.iter().map(|x| x.to_f32()).collect();
    assert_eq!(got, want);
}
