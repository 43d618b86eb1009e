//! On-disk kernel cache (PTX and CUBIN), so that a warm start compiles nothing.
//!
//! Key: sha256 of (source, arch, NVRTC version, the kind of output and the NVRTC options other
//! than include paths). Layout: `<dir>/<name>-<first 16 hex of the key>.ptx` or `.cubin`, written
//! to a temporary file and renamed, so that concurrent processes never read a half-written entry.

use super::error::CudaError;
use super::nvrtc::{
    compile_cubin, compile_options, compile_ptx, cubin_options, default_include_dirs, nvrtc_version, Cubin, Ptx,
};
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The two kinds of entry.
#[derive(Clone, Copy)]
enum Kind {
    Ptx,
    Cubin,
}

impl Kind {
    fn extension(self) -> &'static str {
        match self {
            Kind::Ptx => "ptx",
            Kind::Cubin => "cubin",
        }
    }
}

/// Env var: root of modelc's caches; kernels go to `$MODELC_CACHE_DIR/kernels`.
pub const CACHE_DIR_ENV: &str = "MODELC_CACHE_DIR";

/// Compiles through NVRTC at most once per (source, arch, NVRTC version), across processes.
#[derive(Debug)]
pub struct KernelCache {
    dir: PathBuf,
    include_dirs: Vec<PathBuf>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The default cache folder: `$MODELC_CACHE_DIR/kernels`, else `$XDG_CACHE_HOME/modelc/kernels`,
/// else `$HOME/.cache/modelc/kernels`; `None` when none of these variables is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_DIR_ENV) {
        return Some(PathBuf::from(d).join("kernels"));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("modelc").join("kernels"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/modelc/kernels"))
}

/// Keeps file names portable: anything but `[A-Za-z0-9_]` becomes `_`.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .take(80)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if s.is_empty() {
        "kernel".to_string()
    } else {
        s
    }
}

impl KernelCache {
    /// A cache in `dir` (created on first write), with [`default_include_dirs`] for compiling.
    pub fn new(dir: impl Into<PathBuf>) -> KernelCache {
        KernelCache {
            dir: dir.into(),
            include_dirs: default_include_dirs(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache in [`default_cache_dir`].
    pub fn from_env() -> Result<KernelCache, CudaError> {
        let dir = default_cache_dir().ok_or_else(|| CudaError::Cache {
            path: PathBuf::from("~/.cache/modelc/kernels"),
            source: std::io::Error::new(
                ErrorKind::NotFound,
                "neither MODELC_CACHE_DIR, XDG_CACHE_HOME nor HOME is set",
            ),
        })?;
        Ok(KernelCache::new(dir))
    }

    /// Replaces the include folders handed to NVRTC.
    pub fn with_include_dirs(mut self, include_dirs: Vec<PathBuf>) -> KernelCache {
        self.include_dirs = include_dirs;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn include_dirs(&self) -> &[PathBuf] {
        &self.include_dirs
    }

    /// Lookups answered from disk since creation.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that had to run NVRTC since creation.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The hex key of a (source, arch) pair's PTX under the loaded NVRTC.
    pub fn key(&self, src: &str, arch: &str) -> Result<String, CudaError> {
        self.key_for(src, arch, Kind::Ptx)
    }

    fn key_for(&self, src: &str, arch: &str, kind: Kind) -> Result<String, CudaError> {
        let (major, minor) = nvrtc_version()?;
        let mut h = Sha256::new();
        h.update(Sha256::digest(src.as_bytes()));
        h.update(arch.as_bytes());
        h.update(format!("\0nvrtc {major}.{minor}\0{}\0", kind.extension()).as_bytes());
        // Options minus include paths: the same headers live at different paths on different machines.
        let options = match kind {
            Kind::Ptx => compile_options(arch, &[]),
            Kind::Cubin => cubin_options(arch, &[]),
        };
        for opt in options.unwrap_or_default() {
            h.update(opt.as_bytes());
            h.update([0u8]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Where the PTX of `(src, name, arch)` is (or would be) stored.
    pub fn entry_path(&self, src: &str, name: &str, arch: &str) -> Result<PathBuf, CudaError> {
        self.path_for(src, name, arch, Kind::Ptx)
    }

    /// Where the CUBIN of `(src, name, arch)` is (or would be) stored.
    pub fn cubin_path(&self, src: &str, name: &str, arch: &str) -> Result<PathBuf, CudaError> {
        self.path_for(src, name, arch, Kind::Cubin)
    }

    fn path_for(&self, src: &str, name: &str, arch: &str, kind: Kind) -> Result<PathBuf, CudaError> {
        let key = self.key_for(src, arch, kind)?;
        let short = key.get(..16).unwrap_or(&key);
        Ok(self
            .dir
            .join(format!("{}-{short}.{}", sanitize(name), kind.extension())))
    }

    /// The CUBIN of `src` for the real `arch`: read from disk if present and sound, else
    /// compiled and stored.
    pub fn get_or_compile_cubin(&self, src: &str, name: &str, arch: &str) -> Result<Cubin, CudaError> {
        let path = self.cubin_path(src, name, arch)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Ok(cubin) = Cubin::from_bytes(name, arch, bytes) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(cubin);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => return Err(CudaError::Cache { path, source }),
        }
        let cubin = compile_cubin(src, name, arch, &self.include_dirs)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.store(&path, cubin.bytes())?;
        Ok(cubin)
    }

    /// [`KernelCache::get_or_compile_cubin`] of every `(src, name)` of `modules` for `arch`, in
    /// their order; the misses compile on up to [`std::thread::available_parallelism`] threads at
    /// once (NVRTC programs are independent; a model's modules took 5.5 s one after another on
    /// two cores, the GEMV kernels 15 s).
    pub fn get_or_compile_cubins(&self, modules: &[(&str, &str)], arch: &str) -> Vec<Result<Cubin, CudaError>> {
        crate::parallel::par_map(modules, |(src, name)| self.get_or_compile_cubin(src, name, arch))
    }

    /// The PTX of `src` for `arch`: read from disk if present, else compiled and stored.
    pub fn get_or_compile(&self, src: &str, name: &str, arch: &str) -> Result<Ptx, CudaError> {
        let path = self.entry_path(src, name, arch)?;
        match std::fs::read_to_string(&path) {
            // A PTX module always declares its target; anything else is a damaged entry.
            Ok(text) if text.contains(".target") => {
                if let Ok(ptx) = Ptx::from_text(name, arch, text) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(ptx);
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidData => {}
            Err(source) => return Err(CudaError::Cache { path, source }),
        }
        let ptx = compile_ptx(src, name, arch, &self.include_dirs)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.store(&path, ptx.text().as_bytes())?;
        Ok(ptx)
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), CudaError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CudaError::Cache { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        // A temporary name of this process and this write: threads may store at once.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_names_portable() {
        assert_eq!(sanitize("attn_prefill_ab12"), "attn_prefill_ab12");
        assert_eq!(sanitize("../x y"), "___x_y");
        assert_eq!(sanitize(""), "kernel");
    }

    const SRC: &str = "#include <cuda_bf16.h>\nextern \"C\" __global__ void scale_bf16(__nv_bfloat16* x, float a, int n) {\n  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) x[i] = __float2bfloat16(a * __bfloat162float(x[i]));\n}\n";

    /// Warm start: a second cache over the same folder compiles nothing.
    #[test]
    fn second_lookup_is_a_hit_and_survives_a_new_cache_object() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the kernel cache test") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path());
        let a = cache.get_or_compile(SRC, "scale_bf16", "sm_90").unwrap();
        assert_eq!((cache.hits(), cache.misses()), (0, 1));
        assert!(a.text().contains(".entry scale_bf16"), "{}", a.text());
        let b = cache.get_or_compile(SRC, "scale_bf16", "sm_90").unwrap();
        assert_eq!((cache.hits(), cache.misses()), (1, 1));
        assert_eq!(a.text(), b.text());

        let warm = KernelCache::new(dir.path());
        warm.get_or_compile(SRC, "scale_bf16", "sm_90").unwrap();
        assert_eq!((warm.hits(), warm.misses()), (1, 0));
        // Another arch is another entry.
        warm.get_or_compile(SRC, "scale_bf16", "sm_80").unwrap();
        assert_eq!((warm.hits(), warm.misses()), (1, 1));
        // A damaged entry is recompiled, not returned.
        let path = warm.entry_path(SRC, "scale_bf16", "sm_90").unwrap();
        std::fs::write(&path, "garbage").unwrap();
        let c = warm.get_or_compile(SRC, "scale_bf16", "sm_90").unwrap();
        assert_eq!(warm.misses(), 2);
        assert_eq!(c.text(), a.text());
    }

    /// The CUBIN path: compiled once, then read back; PTX and CUBIN of one source are two
    /// entries; a damaged CUBIN is recompiled.
    #[test]
    fn cubin_entries_are_cached_apart_from_ptx() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the kernel cache test") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path());
        let a = cache.get_or_compile_cubin(SRC, "scale_bf16", "sm_90a").unwrap();
        assert!(a.bytes().starts_with(b"\x7fELF"));
        let b = cache.get_or_compile_cubin(SRC, "scale_bf16", "sm_90a").unwrap();
        assert_eq!((cache.hits(), cache.misses()), (1, 1));
        assert_eq!(a.bytes(), b.bytes());
        let path = cache.cubin_path(SRC, "scale_bf16", "sm_90a").unwrap();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("cubin"));
        assert_ne!(path, cache.entry_path(SRC, "scale_bf16", "sm_90a").unwrap());
        std::fs::write(&path, "garbage").unwrap();
        let c = cache.get_or_compile_cubin(SRC, "scale_bf16", "sm_90a").unwrap();
        assert_eq!(cache.misses(), 2);
        assert_eq!(c.bytes(), a.bytes());
    }

    /// Several modules at once: each compiled once (in parallel), results in the modules'
    /// order and the same bytes as one at a time; a broken one fails alone, named; a second
    /// call reads them all back.
    #[test]
    fn modules_compile_in_parallel_in_order() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the kernel cache test") {
            return;
        }
        let sources: Vec<String> = (1..=4)
            .map(|a| SRC.replace("scale_bf16", &format!("scale{a}")))
            .collect();
        let names: Vec<String> = (1..=4).map(|a| format!("scale{a}")).collect();
        let broken = "extern \"C\" __global__ void broken() { undeclared_y = 1; }";
        let mut modules: Vec<(&str, &str)> = sources
            .iter()
            .map(String::as_str)
            .zip(names.iter().map(String::as_str))
            .collect();
        modules.insert(2, (broken, "broken_m"));
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path());
        let got = cache.get_or_compile_cubins(&modules, "sm_90a");
        assert_eq!(got.len(), 5);
        for (r, (src, name)) in got.iter().zip(&modules) {
            if *name == "broken_m" {
                let msg = r.as_ref().unwrap_err().to_string();
                assert!(msg.contains("broken_m") && msg.contains("undeclared_y"), "{msg}");
                continue;
            }
            let cubin = r.as_ref().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cubin.name, *name);
            let alone = KernelCache::new(tempfile::tempdir().unwrap().path()).get_or_compile_cubin(src, name, "sm_90a");
            assert_eq!(cubin.bytes(), alone.unwrap().bytes(), "{name}");
        }
        assert_eq!((cache.hits(), cache.misses()), (0, 4));
        let again = cache.get_or_compile_cubins(&modules, "sm_90a");
        assert!(again[0].is_ok() && again[2].is_err());
        assert_eq!((cache.hits(), cache.misses()), (4, 4));
        // Only finished entries are left in the folder (no temporaries).
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 4);
    }

    #[test]
    fn compile_error_names_the_kernel_and_carries_the_log() {
        if !crate::cuda::nvrtc::nvrtc_or_skip("the kernel cache test") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path());
        let err = cache
            .get_or_compile(
                "extern \"C\" __global__ void broken() { undeclared_x = 1; }",
                "broken_k",
                "sm_90",
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken_k") && msg.contains("undeclared_x"), "{msg}");
        assert_eq!(cache.misses(), 0);
    }
}
