//! Reading the specs and surgeries a macro names, at compile time. Every error becomes a
//! compile error at the literal that named the file, carrying the spec's own
//! `file:line:column: key.path: message`; paths in messages are as written in the call.

use std::path::{Path, PathBuf};

use proc_macro2::Span;

use modelc::spec::{self, Format, ModelSpec};
use modelc::surgery::load::locate_all;
use modelc::surgery::{plan_config, Conversion, SourceFormat, SurgeryError, SurgeryFile};

use crate::args::Source;

/// Text of one spec or surgery.
struct Text {
    text: String,
    /// How messages name it: the path as written, or `inline YAML`.
    origin: String,
    format: Format,
    /// The file read, for rebuilding when it changes.
    file: Option<PathBuf>,
}

/// The directory relative paths start from: the calling crate's manifest directory.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn read(src: &Source, what: &str) -> syn::Result<Text> {
    let lit = match src {
        Source::Inline(lit) => {
            return Ok(Text {
                text: lit.value(),
                origin: "inline YAML".into(),
                format: Format::Yaml,
                file: None,
            })
        }
        Source::Path(lit) => lit,
    };
    let written = lit.value();
    let path = manifest_dir().join(&written);
    let (file, format) = if what == "spec" {
        spec::spec_file(&path).map_err(|_| {
            syn::Error::new(
                lit.span(),
                format!("{written}: not a spec: expected a .yaml, .yml or .json file, or a checkpoint directory holding config.json"),
            )
        })?
    } else {
        let json = written.to_ascii_lowercase().ends_with(".json");
        (path, if json { Format::Json } else { Format::Yaml })
    };
    // Messages name the file as written (a checkpoint directory's config.json below it).
    let origin = match file.file_name() {
        Some(name) if !written.ends_with(&*name.to_string_lossy()) => {
            format!("{}/{}", written.trim_end_matches('/'), name.to_string_lossy())
        }
        _ => written.clone(),
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!("{origin}: cannot read the {what}: {e} (paths are relative to the crate's Cargo.toml)"),
        )
    })?;
    Ok(Text {
        text,
        origin,
        format,
        file: Some(file),
    })
}

/// A model: its resolved spec, and the conversion that made it when surgeries were given.
pub struct Resolved {
    pub spec: ModelSpec,
    /// What it was made from, for docs (`specs/a.yaml` after `specs/surgery/b.yaml`).
    pub described: String,
    /// Files read, for rebuilds.
    pub files: Vec<PathBuf>,
    /// The source spec (before surgeries).
    pub source: ModelSpec,
    pub conversion: Option<Conversion>,
}

/// Reads `spec`, applies `surgeries` in order (as `modelc build -s` and `modelc convert -s` do)
/// and plans the conversion.
pub fn resolve(spec_src: &Source, surgeries: &[Source]) -> syn::Result<Resolved> {
    let text = read(spec_src, "spec")?;
    let source = spec::parse_str(&text.text, &text.origin, text.format)
        .map_err(|e| syn::Error::new(spec_src.span(), e.to_string()))?;
    let mut files: Vec<PathBuf> = text.file.into_iter().collect();
    let mut described = format!("`{}`", text.origin);
    if surgeries.is_empty() {
        return Ok(Resolved {
            spec: source.clone(),
            described,
            files,
            source,
            conversion: None,
        });
    }
    let mut loaded = Vec::with_capacity(surgeries.len());
    for s in surgeries {
        let t = read(s, "surgery")?;
        let file = SurgeryFile::parse(&t.text, &t.origin).map_err(|e| syn::Error::new(s.span(), e.to_string()))?;
        files.extend(t.file);
        loaded.push((file, s.span()));
    }
    let names: Vec<String> = loaded.iter().map(|(f, _)| format!("`{}`", f.name)).collect();
    described = format!("{described} after {}", names.join(", then "));
    let pairs: Vec<(String, serde_json::Value)> =
        loaded.iter().map(|(f, _)| (f.name.clone(), f.value.clone())).collect();
    let config = spec::to_config_json(&source);
    let conversion = plan_config(&config, Some(SourceFormat::Apriel2), None, &pairs).map_err(|e| {
        let files: Vec<SurgeryFile> = loaded.iter().map(|(f, _)| f.clone()).collect();
        let e = locate_all(e, &files);
        let span = blamed(&e, &loaded).unwrap_or_else(|| spec_src.span());
        syn::Error::new(span, e.to_string())
    })?;
    Ok(Resolved {
        spec: conversion.spec.clone(),
        described,
        files,
        source,
        conversion: Some(conversion),
    })
}

/// The span of the surgery an error is about, if it names one.
fn blamed(e: &SurgeryError, loaded: &[(SurgeryFile, Span)]) -> Option<Span> {
    let origin = match e {
        SurgeryError::InSurgery { origin, .. } | SurgeryError::Config { origin, .. } => origin,
        _ => return None,
    };
    loaded.iter().find(|(f, _)| &f.name == origin).map(|(_, s)| *s)
}

/// `include_bytes!` of each file read, so that editing a spec rebuilds the crate.
pub fn track(files: &[PathBuf]) -> proc_macro2::TokenStream {
    let paths = files.iter().filter_map(|p| absolute(p).to_str().map(str::to_string));
    quote::quote! { #( const _: &[u8] = include_bytes!(#paths); )* }
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::LitStr;

    fn path(p: &str) -> Source {
        Source::Path(LitStr::new(p, Span::call_site()))
    }

    /// Every YAML case of the malformed-spec corpus fails in the macro with its recorded
    /// `file:line:column` (the file as the macro call wrote it) and message.
    #[test]
    fn corpus_errors_keep_their_file_line_and_column() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/spec_errors");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus") {
            let file = entry.expect("entry").path();
            if file.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let name = file.file_name().expect("name").to_string_lossy().to_string();
            let text = std::fs::read_to_string(&file).expect("reads");
            let Some(expect) = text.lines().next().and_then(|l| l.strip_prefix("# expect:")) else {
                continue;
            };
            let mut parts = expect.splitn(3, '|').map(str::trim);
            let (pos, fragment) = (parts.next().expect("pos"), parts.nth(1).expect("fragment"));
            let rel = format!("../tests/spec_errors/{name}");
            let err = match resolve(&path(&rel), &[]) {
                Ok(_) => panic!("{name} resolved"),
                Err(e) => e.to_string(),
            };
            assert!(err.starts_with(&format!("{rel}:{pos}: ")), "{name}: {err}");
            assert!(err.contains(fragment), "{name}: {err}");
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} corpus cases");
    }

    #[test]
    fn surgery_and_missing_file_errors_say_where() {
        let surgery = Source::Inline(LitStr::new(
            "decoder:\n  block:\n    mixer: {init: maybe}\n",
            Span::call_site(),
        ));
        let err = match resolve(&path("../specs/tiny-attention.yaml"), &[surgery]) {
            Ok(_) => panic!("resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("inline YAML:3:13: decoder.block.mixer.init: "), "{err}");
        let err = match resolve(&path("../specs"), &[]) {
            Ok(_) => panic!("resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("../specs/config.json: cannot read the spec"), "{err}");
    }
}
