//! The input grammar of the macros:
//!
//! ```text
//! model!     { ATTRS VIS mod NAME { spec: SOURCE, [surgeries: [SOURCE, ...],] [dtype: DTYPE,] } }
//! converter! { ATTRS VIS fn NAME(SOURCE_TYPE) -> TARGET_TYPE { source: SOURCE, surgeries: [SOURCE, ...], } }
//! SOURCE = "path/relative/to/Cargo.toml" | yaml("inline YAML")
//! DTYPE  = bf16 | f16 | f32 | f64
//! ```

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{braced, bracketed, parenthesized, Attribute, Ident, LitStr, Token, Type, Visibility};

use modelc_runtime::tensor::DType;

/// Where a spec or surgery comes from.
pub enum Source {
    /// A file (or checkpoint directory) relative to the calling crate's manifest.
    Path(LitStr),
    /// YAML text in the macro call.
    Inline(LitStr),
}

impl Source {
    pub fn span(&self) -> Span {
        match self {
            Source::Path(l) | Source::Inline(l) => l.span(),
        }
    }
}

impl Parse for Source {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return Ok(Source::Path(input.parse()?));
        }
        let kw: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a spec: a path in quotes (relative to Cargo.toml) or yaml(\"...\")",
            )
        })?;
        if kw != "yaml" {
            return Err(syn::Error::new(
                kw.span(),
                format!("expected a path in quotes or yaml(\"...\"), found `{kw}`"),
            ));
        }
        let content;
        parenthesized!(content in input);
        Ok(Source::Inline(content.parse()?))
    }
}

/// `key: value` fields inside braces; each key at most once.
struct Fields {
    spec: Option<Source>,
    surgeries: Vec<Source>,
    dtype: Option<(DType, Span)>,
}

impl Fields {
    fn parse(input: ParseStream, allowed: &[&str]) -> syn::Result<Fields> {
        let mut out = Fields {
            spec: None,
            surgeries: Vec::new(),
            dtype: None,
        };
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            let name = key.to_string();
            if !allowed.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown field `{name}`; expected one of: {}", allowed.join(", ")),
                ));
            }
            if seen.contains(&name) {
                return Err(syn::Error::new(key.span(), format!("field `{name}` given twice")));
            }
            seen.push(name.clone());
            input.parse::<Token![:]>()?;
            match name.as_str() {
                "spec" | "source" => out.spec = Some(input.parse()?),
                "surgeries" => {
                    let content;
                    bracketed!(content in input);
                    let list = content.parse_terminated(Source::parse, Token![,])?;
                    out.surgeries = list.into_iter().collect();
                }
                _ => {
                    let id: Ident = input.parse()?;
                    let dtype = match id.to_string().as_str() {
                        "bf16" => DType::BF16,
                        "f16" => DType::F16,
                        "f32" => DType::F32,
                        "f64" => DType::F64,
                        other => {
                            return Err(syn::Error::new(
                                id.span(),
                                format!("unknown dtype `{other}`; expected bf16, f16, f32 or f64"),
                            ))
                        }
                    };
                    out.dtype = Some((dtype, id.span()));
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(out)
    }
}

/// The input of `model!`.
pub struct ModelArgs {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub spec: Source,
    pub surgeries: Vec<Source>,
    pub dtype: DType,
}

impl Parse for ModelArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![mod]>()?;
        let name: Ident = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let fields = Fields::parse(&content, &["spec", "surgeries", "dtype"])?;
        let spec = fields
            .spec
            .ok_or_else(|| syn::Error::new(brace.span.join(), "missing field `spec`"))?;
        Ok(ModelArgs {
            attrs,
            vis,
            name,
            spec,
            surgeries: fields.surgeries,
            dtype: fields.dtype.map_or(DType::BF16, |(d, _)| d),
        })
    }
}

/// The input of `converter!`.
pub struct ConverterArgs {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub source_type: Type,
    pub target_type: Type,
    pub source: Source,
    pub surgeries: Vec<Source>,
}

impl Parse for ConverterArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![fn]>()?;
        let name: Ident = input.parse()?;
        let args;
        parenthesized!(args in input);
        let source_type: Type = args.parse()?;
        input.parse::<Token![->]>()?;
        let target_type: Type = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let fields = Fields::parse(&content, &["source", "surgeries"])?;
        let source = fields
            .spec
            .ok_or_else(|| syn::Error::new(brace.span.join(), "missing field `source`"))?;
        if fields.surgeries.is_empty() {
            return Err(syn::Error::new(
                brace.span.join(),
                "a converter needs `surgeries: [...]` (at least one surgery)",
            ));
        }
        Ok(ConverterArgs {
            attrs,
            vis,
            name,
            source_type,
            target_type,
            source,
            surgeries: fields.surgeries,
        })
    }
}
