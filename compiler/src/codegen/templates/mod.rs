//! Hand-written CUDA C templates for the mixer cores, specialised with compile-time constants.
//!
//! Each template is a Rust function of a parameter struct that returns a [`KernelSource`]: one
//! standalone CUDA C translation unit (it includes what it needs) whose entry points are named
//! `<base>_<hash>`, `hash` being the first 8 hex digits of the sha256 of the source. Equal
//! parameters give byte-identical sources and names, so kernels deduplicate across layers.
//!
//! Conventions shared by every template (see each file's header for the rest):
//! - activations are bf16 (`__nv_bfloat16`), channels-last `[B, T, C]`: row `b·T + t` of a
//!   buffer starts at `row · stride`, where `stride ≥ C` (in elements) is a kernel argument, so
//!   inputs and outputs may be column slices of wider fused buffers;
//! - recurrent states, gates, decays and small per-channel parameters are f32; all arithmetic
//!   accumulates in f32;
//! - the batch index is `blockIdx.z` unless stated otherwise, and every size that is not a
//!   compile-time constant is an `int` argument.

pub mod attention;
pub mod attention_decode;
pub mod conv1d;
pub mod delta_rule;
pub mod kda_decode_step;
pub mod rope;
pub mod selective_scan;

use modelc_runtime::cuda::LaunchDims;
use sha2::{Digest, Sha256};

/// A template's parameters were out of its supported range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel template `{template}`: {reason}")]
pub struct TemplateError {
    pub template: &'static str,
    pub reason: String,
}

pub(crate) fn check(template: &'static str, ok: bool, reason: impl FnOnce() -> String) -> Result<(), TemplateError> {
    if ok {
        Ok(())
    } else {
        Err(TemplateError {
            template,
            reason: reason(),
        })
    }
}

/// A generated CUDA C translation unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSource {
    /// Entry points (`extern "C" __global__`), in launch order.
    pub entries: Vec<String>,
    /// The full source, as handed to NVRTC.
    pub source: String,
}

impl KernelSource {
    /// The first (often only) entry point; also the name the source is cached under.
    pub fn name(&self) -> &str {
        self.entries.first().map(String::as_str).unwrap_or("kernel")
    }

    /// `entries` as `&str`s, for `Gpu::load_module`.
    pub fn entry_refs(&self) -> Vec<&str> {
        self.entries.iter().map(String::as_str).collect()
    }
}

/// The placeholder that [`finish`] replaces with the source hash.
pub(crate) const HASH: &str = "@HASH@";

/// Hashes `body` (with the placeholder still in it) and substitutes the 8-hex-digit hash.
/// `entries` are entry-point names containing the placeholder.
pub(crate) fn finish(entries: &[&str], body: String) -> KernelSource {
    let digest = Sha256::digest(body.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    KernelSource {
        entries: entries.iter().map(|e| e.replace(HASH, &hash)).collect(),
        source: body.replace(HASH, &hash),
    }
}

/// Helpers shared by all templates, behind an include guard so that several templates may be
/// concatenated into one module.
pub(crate) const PRELUDE: &str = r#"#include <cuda_bf16.h>

#ifndef MODELC_TEMPLATE_PRELUDE
#define MODELC_TEMPLATE_PRELUDE
typedef __nv_bfloat16 bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16(x); }
/* x * sigmoid(x), written so that neither tail overflows. */
__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
/* PyTorch softplus with threshold 20. */
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
#endif
"#;

/// Tensor-core helpers (sm_80 and newer: `cp.async`, `ldmatrix`, `mma.sync` m16n8k16 bf16 → f32,
/// and 16-byte copies that fall back to element copies for unaligned rows),
/// behind their own include guard; templates that use them put this after [`PRELUDE`].
///
/// Fragment layouts of `mma_bf16` (lane = 4·r + c): A (16×16, row-major) `a[0]` = row r, cols
/// 2c..2c+1; `a[1]` = row r+8; `a[2]` = row r, cols 2c+8..; `a[3]` = row r+8, cols 2c+8..; B (16×8,
/// "col") `b0` = rows 2c..2c+1 of col r, `b1` = rows 2c+8..; C/D (16×8) `d[0..2]` = row r, cols
/// 2c..2c+1, `d[2..4]` = row r+8. So two adjacent C tiles, packed to bf16, are one A fragment.
pub(crate) const MMA_PRELUDE: &str = r#"#ifndef MODELC_MMA_PRELUDE
#define MODELC_MMA_PRELUDE
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/* 16-byte global -> shared copy; pred = false zero-fills the destination (reads nothing). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(pred ? 16 : 0));
}
/* cp_async16 for long streams read once (the decode's cached keys and values): L2 fetches the
   whole 128-byte line from DRAM at once (L2::128B) and evicts it first (an evict-first policy). */
__device__ __forceinline__ void cp_async16_stream(void* dst, const void* src, bool pred) {
    asm volatile(
        "{\n.reg .b64 pol;\ncreatepolicy.fractional.L2::evict_first.b64 pol, 1.0;\n"
        "cp.async.cg.shared.global.L2::cache_hint.L2::128B [%0], [%1], 16, %2, pol;\n}\n" ::"r"(smem_addr(dst)),
        "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
/* Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i. */
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d += A (16x16, row) * B (16x8, col): bf16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
__device__ __forceinline__ void copy8_to_smem(bf16* dst, const bf16* src, bool pred, bool vec) {
    if (vec) {
        cp_async16(dst, src, pred);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = pred ? src[i] : f2bf(0.0f);
}
__device__ __forceinline__ void copy8_global(bf16* dst, const bf16* src, bool vec) {
    if (vec) {
        *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = src[i];
}
#endif
"#;

/// mbarrier helpers (`mbarrier.*` in PTX), behind their own include guard; after
/// [`MMA_PRELUDE`] (`smem_addr`). `mbar_wait` and `mbar_expect_tx` are sm_90 instructions: below
/// sm_90 they trap, so that a module for every target may hold a Hopper-only entry.
pub(crate) const MBAR_PRELUDE: &str = r#"#ifndef MODELC_MBAR_PRELUDE
#define MODELC_MBAR_PRELUDE
__device__ __forceinline__ void mbar_init(unsigned long long* bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long* bar) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(smem_addr(bar)) : "memory");
}
/* The barrier tracks this thread's earlier cp.async copies: one arrival when they have landed. */
__device__ __forceinline__ void mbar_arrive_cp_async(unsigned long long* bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
/* Blocks until the phase of parity `parity` has completed. */
__device__ __forceinline__ void mbar_wait(unsigned long long* bar, unsigned parity) {
#if __CUDA_ARCH__ >= 900
    asm volatile(
        "{\n.reg .pred done;\nWAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n}\n" ::"r"(smem_addr(bar)), "r"(parity) : "memory");
#else
    __trap();
#endif
}
/* One arrival that also makes the barrier's phase wait for `bytes` more of async copies. */
__device__ __forceinline__ void mbar_expect_tx(unsigned long long* bar, unsigned bytes) {
#if __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#else
    __trap();
#endif
}
#endif
"#;

/// Helpers for thread-block clusters (sm_90: distributed shared memory, cluster barriers, bulk
/// copies multicast to a cluster), in PTX, behind their own include guard. Below sm_90 they trap, so that a module for every target may hold a
/// Hopper-only entry.
pub(crate) const CLUSTER_HELPERS: &str = r#"#ifndef MODELC_CLUSTER_HELPERS
#define MODELC_CLUSTER_HELPERS
#if __CUDA_ARCH__ >= 900
#define MODELC_SM90_ASM(...) asm volatile(__VA_ARGS__)
#else
#define MODELC_SM90_ASM(...) __trap()
#endif
/* This CTA's rank in its cluster. */
__device__ __forceinline__ unsigned cluster_ctarank() {
    unsigned r = 0;
    MODELC_SM90_ASM("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}
/* Writes v to the variable at p (this CTA's shared memory) in every CTA of the cluster. */
template <int CL>
__device__ __forceinline__ void cluster_put(float* p, float v) {
    const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
#pragma unroll
    for (int r = 0; r < CL; ++r) {
        unsigned ra = 0;
        MODELC_SM90_ASM("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(a), "r"(r));
        MODELC_SM90_ASM("st.shared::cluster.f32 [%0], %1;" :: "r"(ra), "f"(v) : "memory");
    }
}
/* The cluster barrier, split: arrive (release: this thread's shared-memory writes, local and
 * remote, become visible to the cluster; relaxed: no ordering) and wait (acquire). */
__device__ __forceinline__ void cluster_arrive_relaxed() { MODELC_SM90_ASM("barrier.cluster.arrive.relaxed;" ::: "memory"); }
__device__ __forceinline__ void cluster_arrive() { MODELC_SM90_ASM("barrier.cluster.arrive.release;" ::: "memory"); }
__device__ __forceinline__ void cluster_wait() { MODELC_SM90_ASM("barrier.cluster.wait.acquire;" ::: "memory"); }
__device__ __forceinline__ void cluster_sync() { cluster_arrive(); cluster_wait(); }
/* `bytes` (a multiple of 16, both addresses 16-byte aligned) from global src to dst in the
 * shared memory of every CTA of `mask` in the cluster (dst and bar at this CTA's offsets); each
 * destination's barrier bar completes the bytes. */
__device__ __forceinline__ void bulk_copy_multicast(void* dst, const void* src, unsigned bytes,
                                                    unsigned long long* bar, unsigned short mask) {
    MODELC_SM90_ASM(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1], %2, [%3], %4;\n"
        ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(dst))), "l"(src), "r"(bytes),
          "r"(static_cast<unsigned>(__cvta_generic_to_shared(bar))), "h"(mask)
        : "memory");
}
#endif
"#;

/// Asynchronous remote stores into a cluster's shared memory, completing on mbarriers, for the
/// KDA step's asynchronous exchange and the delta rule's scan with the output; after
/// [`MBAR_PRELUDE`] and [`CLUSTER_HELPERS`].
pub(crate) const CLUSTER_ASYNC_HELPERS: &str = r#"#ifndef MODELC_CLUSTER_ASYNC_HELPERS
#define MODELC_CLUSTER_ASYNC_HELPERS
/* Writes v to the variable at p (this CTA's shared memory) in every CTA of the cluster, each an
 * asynchronous store that completes 4 bytes on that CTA's mbarrier at bar (this CTA's offset). */
template <int CL>
__device__ __forceinline__ void cluster_put_async(unsigned long long* bar, float* p, float v) {
    const unsigned a = smem_addr(p), m = smem_addr(bar);
#pragma unroll
    for (int r = 0; r < CL; ++r) {
        unsigned ra = 0, rm = 0;
        MODELC_SM90_ASM("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(a), "r"(r));
        MODELC_SM90_ASM("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(rm) : "r"(m), "r"(r));
        MODELC_SM90_ASM("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];"
                        :: "r"(ra), "r"(__float_as_uint(v)), "r"(rm) : "memory");
    }
}
/* Blocks until the phase of parity `parity` has completed, acquiring at cluster scope what the
 * other CTAs' asynchronous stores wrote. */
__device__ __forceinline__ void mbar_wait_cluster(unsigned long long* bar, unsigned parity) {
    MODELC_SM90_ASM(
        "{\n.reg .pred done;\nWAIT_%=:\n"
        "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n}\n" ::"r"(smem_addr(bar)), "r"(parity) : "memory");
}
#endif
"#;

/// Formats an f32 constant so that NVRTC parses back exactly the same value.
pub(crate) fn f32_lit(x: f32) -> String {
    if x.is_finite() {
        format!("{x:e}f")
    } else if x.is_nan() {
        "__int_as_float(0x7fc00000)".to_string()
    } else if x > 0.0 {
        "__int_as_float(0x7f800000)".to_string()
    } else {
        "__int_as_float(0xff800000)".to_string()
    }
}

/// `ceil(a / b)` as a grid dimension (0 stays 0; saturates instead of wrapping).
pub(crate) fn blocks(a: usize, b: usize) -> u32 {
    u32::try_from(a.div_ceil(b.max(1))).unwrap_or(u32::MAX)
}

pub(crate) fn dim(a: usize) -> u32 {
    u32::try_from(a).unwrap_or(u32::MAX)
}

/// Launch geometry re-exported for callers of the templates.
pub type Launch = LaunchDims;

/// Replaces the one occurrence of `anchor` in `s` by `with` (a template's text edited for one of
/// its forms; the anchor's uniqueness is asserted: templates are ours, not user input).
pub(super) fn splice_once(s: &mut String, anchor: &str, with: &str) {
    assert_eq!(s.matches(anchor).count(), 1, "anchor {anchor:?}");
    *s = s.replacen(anchor, with, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_names_by_hash_and_is_deterministic() {
        let a = finish(&["k_@HASH@"], "void k_@HASH@() {}".into());
        let b = finish(&["k_@HASH@"], "void k_@HASH@() {}".into());
        let c = finish(&["k_@HASH@"], "void k_@HASH@() { }".into());
        assert_eq!(a, b);
        assert_ne!(a.entries, c.entries);
        assert_eq!(a.name().len(), "k_".len() + 8);
        assert!(a.source.contains(a.name()));
        assert!(!a.source.contains(HASH));
    }

    #[test]
    fn f32_literals_round_trip() {
        for x in [0.125f32, 1.0 / 11.0f32.sqrt(), 1e-6, -3.5] {
            let lit = f32_lit(x);
            let parsed: f32 = lit.trim_end_matches('f').parse().unwrap();
            assert_eq!(parsed, x, "{lit}");
        }
    }
}
