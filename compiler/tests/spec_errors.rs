//! The malformed-spec corpus (`tests/spec_errors/`): each file must fail with the recorded message
//! fragment, key path and line:column. YAML files carry the expectation in their first line,
//! `# expect: L:C | key.path | message fragment`; JSON files (no comments) are listed in `JSON`.
//! A fuzz-ish test mutates valid specs and asserts the parser returns (Ok or Err), never panics.

use std::path::{Path, PathBuf};

use modelc::spec::{self, ErrorKind, Format, SpecError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/spec_errors")
}

struct Expect {
    line: usize,
    column: usize,
    path: String,
    fragment: String,
}

/// `# expect: L:C | path | fragment`.
fn parse_expect(first_line: &str) -> Option<Expect> {
    let rest = first_line.strip_prefix("# expect:")?.trim();
    let mut parts = rest.splitn(3, '|').map(str::trim);
    let (pos, path, fragment) = (parts.next()?, parts.next()?, parts.next()?);
    let (l, c) = pos.split_once(':')?;
    Some(Expect {
        line: l.parse().ok()?,
        column: c.parse().ok()?,
        path: path.to_string(),
        fragment: fragment.to_string(),
    })
}

/// JSON cases: file, line, column, key path, fragment.
const JSON: &[(&str, usize, usize, &str, &str)] = &[
    (
        "json_wrong_type_heads.json",
        17,
        18,
        "decoder.block.mixer.heads",
        "expected an integer (the number of query heads, > 0), found the string \"4\"",
    ),
    (
        "json_mamba_unknown_key.json",
        22,
        9,
        "decoder.block.mixer.dt_rnak",
        "unknown key `dt_rnak` (did you mean `dt_rank`?)",
    ),
    (
        "json_vision_encoder.json",
        38,
        3,
        "vision_encoder",
        "vision encoder is not supported yet",
    ),
    (
        "json_syntax_double_comma.json",
        10,
        21,
        "",
        "invalid JSON: key must be a string",
    ),
    ("json_empty.json", 1, 1, "", "the spec is empty"),
];

fn check(file: &Path, e: &SpecError, want: &Expect) -> Result<(), String> {
    let shown = e.to_string();
    let name = file.display().to_string();
    let mut problems = Vec::new();
    if e.position() != Some((want.line, want.column)) {
        problems.push(format!(
            "position {:?}, want {}:{}",
            e.position(),
            want.line,
            want.column
        ));
    }
    if e.key_path().unwrap_or("") != want.path {
        problems.push(format!("key path {:?}, want {:?}", e.key_path(), want.path));
    }
    if !shown.contains(&want.fragment) {
        problems.push(format!("message lacks {:?}", want.fragment));
    }
    let prefix = format!("{name}:{}:{}", want.line, want.column);
    if !shown.starts_with(&prefix) {
        problems.push(format!("display does not start with {prefix:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}\n    got: {shown}", file.display(), problems.join("; ")))
    }
}

#[test]
fn corpus_errors_are_located() {
    let dir = corpus_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut failures = Vec::new();
    let (mut yaml_cases, mut json_cases) = (0, 0);
    for file in &entries {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let want = match ext {
            "yaml" => {
                yaml_cases += 1;
                let text = std::fs::read_to_string(file).unwrap_or_default();
                match parse_expect(text.lines().next().unwrap_or("")) {
                    Some(w) => w,
                    None => {
                        // Show what the parser says, to help write the expectation.
                        let got = spec::load(file).err().map(|e| e.to_string()).unwrap_or_default();
                        failures.push(format!(
                            "{}: no `# expect: L:C | path | fragment` first line\n    got: {got}",
                            file.display()
                        ));
                        continue;
                    }
                }
            }
            "json" => {
                json_cases += 1;
                let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match JSON.iter().find(|(n, ..)| *n == name) {
                    Some(&(_, line, column, path, fragment)) => Expect {
                        line,
                        column,
                        path: path.into(),
                        fragment: fragment.into(),
                    },
                    None => {
                        failures.push(format!("{}: not listed in JSON", file.display()));
                        continue;
                    }
                }
            }
            _ => continue,
        };
        match spec::load(file) {
            Ok(_) => failures.push(format!("{}: parsed, but should fail", file.display())),
            Err(e) => {
                if let Err(msg) = check(file, &e, &want) {
                    failures.push(msg);
                }
            }
        }
    }
    assert!(
        yaml_cases + json_cases >= 35,
        "corpus too small: {yaml_cases} YAML + {json_cases} JSON"
    );
    assert!(json_cases >= 2, "need JSON cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Mutations of a valid spec: delete a line, duplicate a line, swap a scalar's type, truncate,
/// insert junk characters, re-indent a line.
fn mutate(src: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    let i = rng.random_range(0..lines.len());
    match rng.random_range(0..7) {
        0 => {
            lines.remove(i);
        }
        1 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        2 => {
            // Swap the value after the last `: ` for something of another type.
            let repl = [
                "\"text\"",
                "-1",
                "0",
                "[1, 2]",
                "{a: 1}",
                "null",
                "true",
                "3.5",
                "999999999999999999999999",
            ];
            let r = repl[rng.random_range(0..repl.len())];
            if let Some(p) = lines[i].rfind(": ") {
                let (head, _) = lines[i].split_at(p + 2);
                lines[i] = format!("{head}{r}");
            }
        }
        3 => {
            let total: usize = lines.iter().map(|l| l.len() + 1).sum();
            let cut = rng.random_range(0..=total);
            let joined = lines.join("\n");
            let mut end = cut.min(joined.len());
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            return joined[..end].to_string();
        }
        4 => {
            let junk = [
                "{", "}", "[", "]", ":", "- ", "&a ", "*a", "!!int ", "\t", "'", "\"", "#", "<<: ",
            ];
            let j = junk[rng.random_range(0..junk.len())];
            let l = &lines[i];
            let mut at = rng.random_range(0..=l.len());
            while !l.is_char_boundary(at) {
                at -= 1;
            }
            lines[i] = format!("{}{j}{}", &l[..at], &l[at..]);
        }
        5 => {
            let l = lines[i].trim_start().to_string();
            let indent = rng.random_range(0..10);
            lines[i] = format!("{}{l}", " ".repeat(indent));
        }
        _ => {
            // Rename a key to a near miss.
            if let Some(p) = lines[i].find(':') {
                let (k, v) = lines[i].split_at(p);
                lines[i] = format!("{k}x{v}");
            }
        }
    }
    lines.join("\n")
}

#[test]
fn mutated_specs_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut rng = ChaCha8Rng::seed_from_u64(0x5bec);
    let mut outcomes = [0usize; 2];
    for name in ["tiny-attention.yaml", "tiny-hybrid.yaml", "tiny-supernet.yaml"] {
        let src = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_string_pretty(&spec::to_config_json(
            &spec::parse_str(&src, name, Format::Yaml).unwrap_or_else(|e| panic!("{e}")),
        ))
        .unwrap_or_default();
        for round in 0..150 {
            let mut m = src.clone();
            for _ in 0..=(round % 3) {
                m = mutate(&m, &mut rng);
            }
            let r = std::panic::catch_unwind(|| spec::parse_str(&m, "mutant.yaml", Format::Yaml));
            match r {
                Ok(Ok(_)) => outcomes[0] += 1,
                Ok(Err(e)) => {
                    // Every content error from text carries a position.
                    if e.kind() != Some(ErrorKind::Empty) {
                        assert!(e.position().is_some(), "unlocated error {e}\n--- input:\n{m}");
                    }
                    outcomes[1] += 1
                }
                Err(_) => panic!("parser panicked on:\n{m}"),
            }
            let mj = mutate(&json, &mut rng);
            let r = std::panic::catch_unwind(|| spec::parse_str(&mj, "mutant.json", Format::Json));
            assert!(r.is_ok(), "JSON parser panicked on:\n{mj}");
        }
    }
    // The mutations must actually exercise both paths.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "outcomes {outcomes:?}");
}
