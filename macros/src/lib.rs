//! modelc proc-macros: typed weight layouts and typed converters, from specs read at compile
//! time (`docs/typed-crates.md`).
//!
//! ```ignore
//! modelc_macros::model! {
//!     /// The tiny hybrid.
//!     pub mod hybrid { spec: "specs/tiny-hybrid.yaml" }
//! }
//! modelc_macros::model! {
//!     pub mod kil { spec: "specs/tiny-attention.yaml", surgeries: ["specs/surgery/hybrid_kil.yaml"] }
//! }
//! modelc_macros::model! { pub mod attention { spec: "specs/tiny-attention.yaml", dtype: f32 } }
//! modelc_macros::converter! {
//!     pub fn to_kil(attention::Model) -> kil::Model {
//!         source: "specs/tiny-attention.yaml",
//!         surgeries: ["specs/surgery/hybrid_kil.yaml"],
//!     }
//! }
//! ```
//!
//! Paths are relative to the calling crate's `Cargo.toml`; `yaml("...")` gives a spec inline.
//! A spec or surgery that does not resolve is a compile error at its literal, carrying the
//! spec's own `file:line:column` message. The generated code uses `modelc_runtime` (the
//! layouts) and, for converters, `modelc`.

use proc_macro::TokenStream;
use syn::parse_macro_input;

mod args;
mod converter;
mod layout;
mod model;
mod source;

/// Typed weights of a spec: a module with one struct per distinct mixer / MLP / norm layout
/// (one `HostTensor` field per checkpoint tensor, documented with its key pattern, shape and
/// dtype), a generic `Block`, a `Layer` enum over the mixer kinds present and a `Model`
/// implementing `modelc_runtime::typed::TypedModel` (`load`, `validate`, `save`, `tensors`).
///
/// Fields: `spec` (a path or `yaml("...")`), optional `surgeries: [...]` applied in order, and
/// optional `dtype: bf16 | f16 | f32 | f64` (default `bf16`).
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let args = parse_macro_input!(input as args::ModelArgs);
    model::expand(args).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// A typed converter: `fn NAME(source: &SOURCE, seed: u64) -> Result<TARGET, TypedError>` that
/// runs the conversion plan of `surgeries` applied to `source` (KIL, DIL, MIL, passthrough and
/// random init alike). The types must be the `Model`s of `model!` calls with the same spec (and,
/// for the target, the same surgeries): anything else is a compile error.
#[proc_macro]
pub fn converter(input: TokenStream) -> TokenStream {
    let args = parse_macro_input!(input as args::ConverterArgs);
    converter::expand(args).unwrap_or_else(|e| e.to_compile_error()).into()
}
