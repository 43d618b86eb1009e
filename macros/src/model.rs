//! `model!`: a spec's typed layout as Rust: a module holding one struct per distinct part
//! layout, a generic `Block`, a `Layer` enum, `LayerKind`, and `Model` implementing
//! `modelc_runtime::typed::TypedModel`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use modelc::spec::{self, parameter_count, ModelSpec};
use modelc_runtime::tensor::DType;

use crate::args::ModelArgs;
use crate::layout::{ranges, rust_name, Body, Field, PartDef, TypedLayout, VariantDef};
use crate::source;

/// A field or sub-mixer identifier (a keyword gets a trailing underscore).
pub fn ident(name: &str) -> Ident {
    syn::parse_str::<Ident>(name).unwrap_or_else(|_| Ident::new(&format!("{name}_"), Span::call_site()))
}

fn dtype_tokens(d: DType) -> TokenStream {
    let v = format_ident!("{}", format!("{d:?}"));
    quote!(::modelc_runtime::tensor::DType::#v)
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// `model.decoder.blocks.{i}.mixer` (layers 0, 2-3)
fn use_lines(part: &PartDef) -> Vec<String> {
    part.uses
        .iter()
        .map(|(pattern, layers)| {
            if layers.is_empty() {
                format!("`{pattern}`")
            } else {
                format!("`{pattern}` (layers {})", ranges(&dedup(layers)))
            }
        })
        .collect()
}

fn dedup(layers: &[usize]) -> Vec<usize> {
    let mut v = layers.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Unique identifiers for a list of names (`a-b` and `a_b` both become `a_b`: the second gets
/// a suffix).
fn unique_idents(names: impl Iterator<Item = String>) -> Vec<Ident> {
    let mut seen: Vec<String> = Vec::new();
    names
        .map(|n| {
            let mut name = n.clone();
            let mut k = 2;
            while seen.contains(&name) {
                name = format!("{n}_{k}");
                k += 1;
            }
            seen.push(name.clone());
            ident(&name)
        })
        .collect()
}

fn part_tokens(layout: &TypedLayout, part: &PartDef, dtype: DType) -> TokenStream {
    let name = format_ident!("{}", part.name);
    let uses = use_lines(part);
    let mut doc = vec![
        format!(" A {} (one layout of its kind). Checkpoint prefixes:", part.what),
        String::new(),
    ];
    doc.extend(uses.iter().map(|u| format!(" - {u}")));
    match &part.body {
        Body::Tensors(fields) => tensors_part(&name, &doc, fields, &uses, dtype),
        Body::Stochastic(subs) => {
            let main = part.main.clone().unwrap_or_default();
            let idents = unique_idents(subs.iter().map(|(n, _)| rust_name(n)));
            let mut fields = Vec::new();
            let (mut declare, mut build, mut visit, mut visit_mut) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((sub_name, idx), id) in subs.iter().zip(&idents) {
                let Some(sub) = layout.parts.get(*idx) else { continue };
                let ty = format_ident!("{}", sub.name);
                let main_note = if *sub_name == main { " (the main mixer)" } else { "" };
                let d = format!(" Sub-mixer `{sub_name}`{main_note}: `{{prefix}}.mixers.{sub_name}.*`.");
                fields.push(quote! { #[doc = #d] pub #id: #ty, });
                let p = quote!(&::std::format!("{}.mixers.{}", prefix, #sub_name));
                declare.push(quote! { <#ty as Part>::declare(#p, out); });
                build.push(quote! { #id: <#ty as Part>::build(#p, supply)?, });
                visit.push(quote! { self.#id.visit(#p, f); });
                visit_mut.push(quote! { self.#id.visit_mut(#p, f); });
            }
            let imp = impl_part(&name, &declare, &build, &visit, &visit_mut);
            quote! {
                #(#[doc = #doc])*
                #[derive(Debug, Clone, PartialEq)]
                pub struct #name { #(#fields)* }
                impl #name {
                    /// The sub-mixer a layer runs unless a placement picks another.
                    pub const MAIN_MIXER: &'static str = #main;
                }
                #imp
            }
        }
    }
}

fn tensors_part(name: &Ident, doc: &[String], fields: &[Field], uses: &[String], dtype: DType) -> TokenStream {
    let dt = &dtype_tokens(dtype);
    let idents = unique_idents(fields.iter().map(Field::name));
    let mut defs = Vec::new();
    let (mut declare, mut build, mut visit, mut visit_mut) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let patterns: Vec<String> = uses
        .iter()
        .filter_map(|u| u.split('`').nth(1).map(str::to_string))
        .collect();
    for (f, id) in fields.iter().zip(&idents) {
        let keys: Vec<String> = patterns.iter().map(|p| format!("`{p}.{}`", f.rel)).collect();
        let d = format!(" {}: shape `{}`, {dtype}.", keys.join(" or "), shape_text(&f.shape));
        defs.push(quote! { #[doc = #d] pub #id: HostTensor, });
        let rel = &f.rel;
        let shape = &f.shape;
        let decl = quote!(TensorDecl::new(::std::format!("{}.{}", prefix, #rel), &[#(#shape),*], #dt));
        declare.push(quote! { out.push(#decl); });
        build.push(quote! { #id: supply(#decl)?, });
        visit.push(quote! { f(::std::format!("{}.{}", prefix, #rel), &self.#id); });
        visit_mut.push(quote! { f(::std::format!("{}.{}", prefix, #rel), &mut self.#id); });
    }
    let imp = impl_part(name, &declare, &build, &visit, &visit_mut);
    quote! {
        #(#[doc = #doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct #name { #(#defs)* }
        #imp
    }
}

/// `impl Part for NAME` from the statements for each field: declare its tensors, build it from
/// the supply (a field initialiser), visit it, visit it mutably.
fn impl_part(
    name: &Ident,
    declare: &[TokenStream],
    build: &[TokenStream],
    visit: &[TokenStream],
    visit_mut: &[TokenStream],
) -> TokenStream {
    quote! {
        impl Part for #name {
            fn declare(prefix: &str, out: &mut ::std::vec::Vec<TensorDecl>) { #(#declare)* }
            fn build(prefix: &str, supply: &mut Supply<'_>) -> ::std::result::Result<Self, TypedError> {
                ::std::result::Result::Ok(#name { #(#build)* })
            }
            fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &'a HostTensor)) { #(#visit)* }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &mut HostTensor)) { #(#visit_mut)* }
        }
    }
}

fn block_tokens() -> TokenStream {
    quote! {
        /// A decoder block `model.decoder.blocks.{i}`: `u = h + mixer(input_layernorm(h))`,
        /// `h' = u + mlp(post_attention_layernorm(u))`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Block<M, P, N> {
            /// `model.decoder.blocks.{i}.input_layernorm.*`
            pub input_layernorm: N,
            /// `model.decoder.blocks.{i}.mixer.*`
            pub mixer: M,
            /// `model.decoder.blocks.{i}.post_attention_layernorm.*`
            pub post_attention_layernorm: N,
            /// `model.decoder.blocks.{i}.mlp.*`
            pub mlp: P,
        }
        impl<M: Part, P: Part, N: Part> Part for Block<M, P, N> {
            fn declare(prefix: &str, out: &mut ::std::vec::Vec<TensorDecl>) {
                N::declare(&::std::format!("{}.input_layernorm", prefix), out);
                M::declare(&::std::format!("{}.mixer", prefix), out);
                N::declare(&::std::format!("{}.post_attention_layernorm", prefix), out);
                P::declare(&::std::format!("{}.mlp", prefix), out);
            }
            fn build(prefix: &str, supply: &mut Supply<'_>) -> ::std::result::Result<Self, TypedError> {
                ::std::result::Result::Ok(Block {
                    input_layernorm: N::build(&::std::format!("{}.input_layernorm", prefix), supply)?,
                    mixer: M::build(&::std::format!("{}.mixer", prefix), supply)?,
                    post_attention_layernorm: N::build(&::std::format!("{}.post_attention_layernorm", prefix), supply)?,
                    mlp: P::build(&::std::format!("{}.mlp", prefix), supply)?,
                })
            }
            fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &'a HostTensor)) {
                self.input_layernorm.visit(&::std::format!("{}.input_layernorm", prefix), f);
                self.mixer.visit(&::std::format!("{}.mixer", prefix), f);
                self.post_attention_layernorm.visit(&::std::format!("{}.post_attention_layernorm", prefix), f);
                self.mlp.visit(&::std::format!("{}.mlp", prefix), f);
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &mut HostTensor)) {
                self.input_layernorm.visit_mut(&::std::format!("{}.input_layernorm", prefix), f);
                self.mixer.visit_mut(&::std::format!("{}.mixer", prefix), f);
                self.post_attention_layernorm.visit_mut(&::std::format!("{}.post_attention_layernorm", prefix), f);
                self.mlp.visit_mut(&::std::format!("{}.mlp", prefix), f);
            }
        }
    }
}

fn layer_tokens(layout: &TypedLayout) -> TokenStream {
    let part = |i: usize| {
        let name = layout.parts.get(i).map_or("Missing", |p| p.name.as_str());
        format_ident!("{}", name)
    };
    let mut variants = Vec::new();
    let mut kinds = Vec::new();
    let mut kind_of = Vec::new();
    let mut mixer_names = Vec::new();
    let mut declare = Vec::new();
    let mut build = Vec::new();
    let mut visit = Vec::new();
    let mut visit_mut = Vec::new();
    for v in &layout.variants {
        let VariantDef {
            name,
            kind,
            mixer,
            mlp,
            norm,
            layers,
        } = v;
        let id = format_ident!("{}", name);
        let (m, p, n) = (part(*mixer), part(*mlp), part(*norm));
        let ty = quote!(Block<#m, #p, #n>);
        let doc = format!(" `{}` layers: {}.", kind.name(), ranges(layers));
        variants.push(quote! { #[doc = #doc] #id(#ty), });
        kinds.push(quote! { #[doc = #doc] #id, });
        kind_of.push(quote! { Layer::#id(_) => LayerKind::#id, });
        let kname = kind.name();
        mixer_names.push(quote! { LayerKind::#id => #kname, });
        declare.push(quote! { LayerKind::#id => <#ty as Part>::declare(prefix, out), });
        build.push(quote! { LayerKind::#id => Layer::#id(<#ty as Part>::build(prefix, supply)?), });
        visit.push(quote! { Layer::#id(b) => b.visit(prefix, f), });
        visit_mut.push(quote! { Layer::#id(b) => b.visit_mut(prefix, f), });
    }
    let per_layer = layout.layer_variant.iter().map(|&v| {
        let name = layout.variants.get(v).map_or("Missing", |v| v.name.as_str());
        let id = format_ident!("{}", name);
        quote!(LayerKind::#id)
    });
    let n = layout.layer_variant.len();
    quote! {
        /// One decoder layer: a block whose mixer is one of the kinds this model has.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Layer { #(#variants)* }

        /// Which `Layer` variant a layer is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum LayerKind { #(#kinds)* }

        /// The kind of each layer, as the spec declares it.
        pub const LAYER_KINDS: [LayerKind; #n] = [#(#per_layer),*];

        impl LayerKind {
            /// The mixer kind as the CLI names it (`attention`, `sliding_window`, `kda`, ...).
            pub fn mixer(self) -> &'static str {
                match self { #(#mixer_names)* }
            }
        }

        impl Layer {
            pub fn kind(&self) -> LayerKind {
                match self { #(#kind_of)* }
            }
            fn declare(kind: LayerKind, prefix: &str, out: &mut ::std::vec::Vec<TensorDecl>) {
                match kind { #(#declare)* }
            }
            fn build(kind: LayerKind, prefix: &str, supply: &mut Supply<'_>) -> ::std::result::Result<Layer, TypedError> {
                ::std::result::Result::Ok(match kind { #(#build)* })
            }
            fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &'a HostTensor)) {
                match self { #(#visit)* }
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(::std::string::String, &mut HostTensor)) {
                match self { #(#visit_mut)* }
            }
        }
    }
}

fn model_tokens(layout: &TypedLayout, name: &str, dtype: DType) -> TokenStream {
    let dt = dtype_tokens(dtype);
    let head = format_ident!(
        "{}",
        layout
            .parts
            .get(layout.head_norm)
            .map_or("Missing", |p| p.name.as_str())
    );
    let embed = &layout.embed;
    let embed_doc = format!(" `model.embed_tokens.weight`: shape `{}`, {dtype}.", shape_text(embed));
    let (lm_field, lm_declare, lm_build, lm_init, lm_visit, lm_visit_mut) = match &layout.lm_head {
        Some(shape) => {
            let doc = format!(" `lm_head.weight`: shape `{}`, {dtype}.", shape_text(shape));
            let decl = quote!(TensorDecl::new("lm_head.weight", &[#(#shape),*], #dt));
            (
                quote! { #[doc = #doc] pub lm_head: HostTensor, },
                quote! { out.push(#decl); },
                quote! { let lm_head = supply(#decl)?; },
                quote! { lm_head, },
                quote! { f("lm_head.weight".into(), &self.lm_head); },
                quote! { f("lm_head.weight".into(), &mut self.lm_head); },
            )
        }
        None => Default::default(),
    };
    let model_name = format!("{name}::Model");
    let n = layout.layer_variant.len();
    let embed_decl = quote!(TensorDecl::new("model.embed_tokens.weight", &[#(#embed),*], #dt));
    quote! {
        /// The whole model: embeddings, layers, final norm and (unless tied) `lm_head`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Model {
            #[doc = #embed_doc]
            pub embed_tokens: HostTensor,
            /// `model.decoder.blocks.{i}`, one per layer, of the kinds in [`LAYER_KINDS`].
            pub layers: ::std::vec::Vec<Layer>,
            /// `model.norm.*`
            pub norm: #head,
            #lm_field
        }

        impl TypedModel for Model {
            const NAME: &'static str = #model_name;
            const CONFIG_JSON: &'static str = CONFIG_JSON;
            const CONFIG_HASH: u64 = ::modelc_runtime::typed::config_hash(CONFIG_JSON);
            const DTYPE: ::modelc_runtime::tensor::DType = DTYPE;

            fn declare(out: &mut ::std::vec::Vec<TensorDecl>) {
                out.push(#embed_decl);
                for (i, kind) in LAYER_KINDS.iter().enumerate() {
                    Layer::declare(*kind, &::std::format!("model.decoder.blocks.{}", i), out);
                }
                <#head as Part>::declare("model.norm", out);
                #lm_declare
            }
            fn build(supply: &mut Supply<'_>) -> ::std::result::Result<Self, TypedError> {
                let embed_tokens = supply(#embed_decl)?;
                let mut layers = ::std::vec::Vec::with_capacity(#n);
                for (i, kind) in LAYER_KINDS.iter().enumerate() {
                    layers.push(Layer::build(*kind, &::std::format!("model.decoder.blocks.{}", i), supply)?);
                }
                let norm = <#head as Part>::build("model.norm", supply)?;
                #lm_build
                ::std::result::Result::Ok(Model { embed_tokens, layers, norm, #lm_init })
            }
            fn visit<'a>(&'a self, f: &mut dyn FnMut(::std::string::String, &'a HostTensor)) {
                f("model.embed_tokens.weight".into(), &self.embed_tokens);
                for (i, layer) in self.layers.iter().enumerate() {
                    layer.visit(&::std::format!("model.decoder.blocks.{}", i), f);
                }
                self.norm.visit("model.norm", f);
                #lm_visit
            }
            fn visit_mut(&mut self, f: &mut dyn FnMut(::std::string::String, &mut HostTensor)) {
                f("model.embed_tokens.weight".into(), &mut self.embed_tokens);
                for (i, layer) in self.layers.iter_mut().enumerate() {
                    layer.visit_mut(&::std::format!("model.decoder.blocks.{}", i), f);
                }
                self.norm.visit_mut("model.norm", f);
                #lm_visit_mut
            }
            fn check_layers(&self) -> ::std::result::Result<(), TypedError> {
                if self.layers.len() != LAYER_KINDS.len() {
                    return ::std::result::Result::Err(TypedError::Layers {
                        model: #model_name,
                        message: ::std::format!("{} layers, but the spec declares {}", self.layers.len(), LAYER_KINDS.len()),
                    });
                }
                for (i, (layer, kind)) in self.layers.iter().zip(LAYER_KINDS.iter()).enumerate() {
                    if layer.kind() != *kind {
                        return ::std::result::Result::Err(TypedError::Layers {
                            model: #model_name,
                            message: ::std::format!("layer {} is a {:?} layer, but the spec declares {:?}", i, layer.kind(), kind),
                        });
                    }
                }
                ::std::result::Result::Ok(())
            }
        }

        /// The [`TypedModel`] API without importing the trait.
        impl Model {
            /// Every tensor's key, shape and dtype, in checkpoint order.
            pub fn layout() -> ::std::vec::Vec<TensorDecl> { <Model as TypedModel>::layout() }
            /// Loads a checkpoint directory, checking every tensor's key, shape and dtype.
            pub fn load(dir: &::std::path::Path) -> ::std::result::Result<Model, TypedError> { <Model as TypedModel>::load(dir) }
            /// Builds the model from (key, tensor) pairs, checked as a checkpoint is.
            pub fn from_tensors(tensors: impl IntoIterator<Item = (::std::string::String, HostTensor)>) -> ::std::result::Result<Model, TypedError> {
                <Model as TypedModel>::from_tensors(tensors)
            }
            /// Builds the model from a function of each tensor's declaration.
            pub fn from_fn(f: impl FnMut(&TensorDecl) -> HostTensor) -> ::std::result::Result<Model, TypedError> { <Model as TypedModel>::from_fn(f) }
            /// Re-checks the layer list and every tensor against the layout.
            pub fn validate(&self) -> ::std::result::Result<(), TypedError> { <Model as TypedModel>::validate(self) }
            /// Every (key, tensor), in checkpoint order.
            pub fn tensors(&self) -> ::std::vec::Vec<(::std::string::String, &HostTensor)> { <Model as TypedModel>::tensors(self) }
            /// Validates, then writes `config.json` and `model.safetensors` into a new directory.
            pub fn save(&self, dir: &::std::path::Path) -> ::std::result::Result<::std::path::PathBuf, TypedError> { <Model as TypedModel>::save(self, dir) }
        }
    }
}

fn module_doc(spec: &ModelSpec, layout: &TypedLayout, described: &str, dtype: DType) -> Vec<String> {
    let mut doc = vec![
        String::new(),
        format!(" Typed weights of {described} (generated by `modelc_macros::model!`)."),
        String::new(),
        format!(
            " {} layers, hidden size {}, vocabulary {}, {} parameters, every tensor {dtype}.",
            spec.layers.len(),
            spec.hidden_size,
            spec.vocab_size,
            parameter_count(spec)
        ),
        " Layers:".to_string(),
        String::new(),
    ];
    for v in &layout.variants {
        doc.push(format!(
            " - [`Layer::{}`] ({}): layers {}",
            v.name,
            v.kind.name(),
            ranges(&v.layers)
        ));
    }
    doc
}

pub fn expand(args: ModelArgs) -> syn::Result<TokenStream> {
    let resolved = source::resolve(&args.spec, &args.surgeries)?;
    let spec = &resolved.spec;
    let layout = crate::layout::typed_layout(spec);
    let config = serde_json::to_string_pretty(&spec::to_config_json(spec))
        .map_err(|e| syn::Error::new(args.spec.span(), format!("cannot write the resolved config: {e}")))?;
    let dtype = args.dtype;
    let dt = dtype_tokens(dtype);
    let parts = layout.parts.iter().map(|p| part_tokens(&layout, p, dtype));
    let block = block_tokens();
    let layers = layer_tokens(&layout);
    let model = model_tokens(&layout, &args.name.to_string(), dtype);
    let track = source::track(&resolved.files);
    let doc = module_doc(spec, &layout, &resolved.described, dtype);
    let ModelArgs { attrs, vis, name, .. } = args;
    let n = spec.layers.len();
    Ok(quote! {
        #(#attrs)*
        #(#[doc = #doc])*
        #vis mod #name {
            use ::modelc_runtime::tensor::HostTensor;
            use ::modelc_runtime::typed::{Part, Supply, TensorDecl, TypedError, TypedModel};

            #track

            /// The dtype of every tensor.
            pub const DTYPE: ::modelc_runtime::tensor::DType = #dt;
            /// The resolved config (what `save` writes as `config.json`).
            pub const CONFIG_JSON: &str = #config;
            /// Number of decoder layers.
            pub const NUM_LAYERS: usize = #n;

            #(#parts)*
            #block
            #layers
            #model
        }
    })
}
