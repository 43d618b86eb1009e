//! What codegen produces per step: kernels (CUDA C modules named by the hash of their source)
//! and launches whose arguments still name IR values; `program` maps those to buffers.

use sha2::{Digest, Sha256};

use crate::ir::{Dim, Value};
use modelc_runtime::program::{ComputeCapability, Cond, Expr, Sym};
use modelc_runtime::tensor::DType;

/// The placeholder a generated source holds where its name goes; the name is derived from the
/// hash of the source with the placeholder in place, so the name never feeds its own hash.
pub const NAME: &str = "@NAME@";

/// One generated CUDA C module.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// `<kind>_<12 hex digits of sha256(source)>` (templates: their own `<base>_<8 hex>`).
    pub name: String,
    pub kind: String,
    /// The complete translation unit, as NVRTC compiles it.
    pub source: String,
    pub entries: Vec<String>,
    /// Per-launch traffic and work (estimates), over the symbolic dims.
    pub bytes_loaded: Expr,
    pub bytes_stored: Expr,
    pub flops: Expr,
    /// The one NVRTC target the module compiles for (`sm_90a`); any device's when `None`.
    pub target: Option<String>,
}

/// The first statement of a kernel entry that takes programmatic dependent launch (PDL): it waits
/// for the kernels before it (`griddepcontrol.wait`) and then lets the next kernel launch
/// (`griddepcontrol.launch_dependents`). A module whose every entry starts with it is launched
/// with PDL ([`modelc_runtime::program::LaunchStep::pdl`]). Defined by [`PDL_DEFINITION`].
pub const PDL_ENTER: &str = "modelc_pdl_enter();";

/// The definition of [`PDL_ENTER`]'s function, behind its own include guard (a no-op below sm_90).
pub const PDL_DEFINITION: &str = r#"#ifndef MODELC_PDL_ENTER
#define MODELC_PDL_ENTER
static __device__ __forceinline__ void modelc_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#endif
"#;

/// Whether every entry of a module starts with [`PDL_ENTER`].
pub fn takes_pdl(k: &Kernel) -> bool {
    k.source.matches(PDL_ENTER).count() >= k.entries.len()
}

/// A kernel argument before buffer assignment.
#[derive(Debug, Clone, PartialEq)]
pub enum KArg {
    /// A pointer to an IR value (a view: its base's buffer, offset by the view's first channel).
    Value(Value),
    /// The row stride (elements) of the buffer holding a value: its base's channels.
    Stride(Value),
    /// A device weight, converted to `dtype`.
    Weight {
        key: String,
        dtype: DType,
    },
    /// A state buffer, at the call's first sequence slot.
    State(String),
    /// `past_len` at the call's first slot (`int32`, one per sequence).
    PastLen,
    /// Per-call scratch: name, dtype and element count.
    Workspace {
        name: String,
        dtype: DType,
        elements: Expr,
    },
    /// `elements` u32 counters shared by every kernel naming them, zero before each launch and
    /// left zero by it (the runtime allocates them zeroed and never poisons them).
    Counters {
        name: String,
        elements: Expr,
    },
    Int(Expr),
    Null,
    /// A TMA tensor map over a pointer argument (see `modelc_runtime::program::TensorMapArg`).
    TensorMap(Box<KTensorMap>),
}

/// A [`KArg::TensorMap`]: `rows` rows of `cols` bf16 elements from `base`, `row_stride` apart
/// (a [`KArg::Stride`] or [`KArg::Int`]), read in `box_rows` × `box_cols` boxes.
#[derive(Debug, Clone, PartialEq)]
pub struct KTensorMap {
    pub base: KArg,
    pub row_stride: KArg,
    pub cols: Expr,
    pub rows: Expr,
    pub box_cols: u32,
    pub box_rows: u32,
    pub l2_promotion: u32,
}

/// One launch of an entry of a kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// Index into the kernel list of the [`super::Codegen`].
    pub kernel: usize,
    pub entry: String,
    pub grid: [Expr; 3],
    pub block: [u32; 3],
    pub smem: u32,
    pub args: Vec<KArg>,
    /// Launches in place of this one on some devices or calls (the same arguments, then their
    /// `extra_args`).
    pub variants: Vec<VariantSpec>,
    /// Calls where this holds leave the launch out (an earlier launch's variant does its work).
    pub skip_when: Option<Cond>,
}

/// A [`LaunchSpec`]'s alternative: another entry and geometry where `cc` / `when` say.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSpec {
    pub cc: Option<ComputeCapability>,
    pub when: Option<Cond>,
    /// Index into the kernel list of the [`super::Codegen`].
    pub kernel: usize,
    pub entry: String,
    pub grid: [Expr; 3],
    pub block: [u32; 3],
    pub smem: u32,
    /// Arguments its entry takes after the launch's own.
    pub extra_args: Vec<KArg>,
}

/// Names a source: hashes it (with the placeholder) and substitutes `<kind>_<hash12>`.
pub fn finish_named(kind: &str, body: &str) -> (String, String) {
    let digest = Sha256::digest(body.as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = format!("{kind}_{hash}");
    (name.clone(), body.replace(NAME, &name))
}

/// sha256 of a text, hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `layers.12.mixer` → `layers.*.mixer`: identical layers give identical kernel headers.
pub fn abstract_scope(scope: &str) -> String {
    let parts: Vec<&str> = scope.split('.').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let after_layers = i > 0 && parts[i - 1] == "layers";
        if after_layers && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            out.push("*");
        } else {
            out.push(p);
        }
    }
    let s = out.join(".");
    if s.is_empty() {
        "model".to_string()
    } else {
        s
    }
}

/// A symbolic IR dim as a program expression.
pub fn dim_expr(d: &Dim) -> Expr {
    match d {
        Dim::Const(n) => Expr::from(*n),
        Dim::Sym(crate::ir::Sym::Batch) => Expr::sym(Sym::Batch),
        Dim::Sym(crate::ir::Sym::Tokens) => Expr::sym(Sym::Tokens),
        Dim::Sym(crate::ir::Sym::Past) => Expr::sym(Sym::Past),
        Dim::Add(a, b) => dim_expr(a).plus(dim_expr(b)),
        Dim::Min(a, b) => dim_expr(a).min(dim_expr(b)),
    }
}

/// `batch·tokens`: the rows of every activation.
pub fn rows() -> Expr {
    Expr::sym(Sym::Batch).times(Expr::sym(Sym::Tokens))
}

/// `n` as an expression.
pub fn c(n: usize) -> Expr {
    Expr::from(n)
}

/// The CUDA C element type of a storage dtype.
pub fn c_type(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F32 => "float",
        DType::I32 => "int",
        DType::F16 => "__half",
        DType::F64 => "double",
        DType::I64 => "long long",
        DType::U8 => "unsigned char",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_lose_their_layer_index_only() {
        assert_eq!(
            abstract_scope("layers.12.mixer.mixers.kda"),
            "layers.*.mixer.mixers.kda"
        );
        assert_eq!(abstract_scope("layers.3"), "layers.*");
        assert_eq!(abstract_scope("head"), "head");
        assert_eq!(abstract_scope(""), "model");
        assert_eq!(abstract_scope("layers.x.mlp"), "layers.x.mlp");
    }

    #[test]
    fn names_carry_the_hash_of_the_source() {
        let (a, sa) = finish_named("rms_norm", "void @NAME@() {}");
        let (b, _) = finish_named("rms_norm", "void @NAME@() { }");
        assert_ne!(a, b);
        assert!(a.starts_with("rms_norm_") && a.len() == "rms_norm_".len() + 12);
        assert!(sa.contains(&a) && !sa.contains(NAME));
    }
}
