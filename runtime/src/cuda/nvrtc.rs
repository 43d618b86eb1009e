//! NVRTC: CUDA C source to PTX, with only `libnvrtc` present (no GPU, no driver needed).
//!
//! cudarc loads `libnvrtc` lazily by bare name (`libnvrtc.so`, `libnvrtc.so.13`, ...) and panics
//! when none loads, so every entry point here first checks [`nvrtc_available`]. Where the library
//! sits outside the loader's path (the PyPI wheel that `.ci/nvrtc.sh` installs), setting
//! `MODELC_NVRTC_LIB` to its absolute path makes us load it first: the dynamic loader then
//! resolves cudarc's bare-name `dlopen("libnvrtc.so.13")` to the already loaded object by soname.

use super::error::CudaError;
use cudarc::nvrtc::{result, sys};
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Env var: absolute path of `libnvrtc.so.13` to load before cudarc looks for it.
pub const NVRTC_LIB_ENV: &str = "MODELC_NVRTC_LIB";
/// Env var: folder holding `cuda_bf16.h` / `cuda_fp16.h`, searched first by [`default_include_dirs`].
pub const CUDA_INCLUDE_ENV: &str = "MODELC_CUDA_INCLUDE";
/// Env var: a folder to write each source NVRTC compiles to, as `<name>.cu` (the program name
/// its line info records), so that a profiler (`ncu --page source --print-source cuda,sass
/// --source-folders DIR`) or a debugger can show the CUDA lines of a JIT-compiled kernel.
pub const SOURCE_DIR_ENV: &str = "MODELC_NVRTC_SOURCE_DIR";

/// PTX text for one kernel source, compiled for one virtual architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ptx {
    /// The kernel (or program) name this PTX was compiled under, for error messages.
    pub name: String,
    /// The `sm_XY` the PTX targets (compiled as `compute_XY`).
    pub arch: String,
    text: String,
    log: String,
}

impl Ptx {
    /// Wraps PTX text (from the disk cache, say). Fails if it holds a NUL byte, which the driver
    /// would read as the end of the module.
    pub fn from_text(name: &str, arch: &str, text: String) -> Result<Ptx, CudaError> {
        if text.contains('\0') {
            return Err(CudaError::InvalidKernel {
                kernel: name.to_string(),
                reason: "PTX text contains a NUL byte".to_string(),
            });
        }
        Ok(Ptx {
            name: name.to_string(),
            arch: arch.to_string(),
            text,
            log: String::new(),
        })
    }

    /// The PTX assembly text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// NVRTC's log of the compilation (warnings); empty for PTX read from the cache.
    pub fn log(&self) -> &str {
        &self.log
    }

    pub(crate) fn to_cudarc(&self) -> cudarc::nvrtc::Ptx {
        cudarc::nvrtc::Ptx::from_src(self.text.clone())
    }
}

/// Machine code (an ELF CUBIN) for one real architecture, compiled by NVRTC: the driver loads
/// it as is, with no JIT step, and `sm_90a` code may use Hopper's arch-specific instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cubin {
    /// The kernel (or program) name this CUBIN was compiled under, for error messages.
    pub name: String,
    /// The real architecture, e.g. `sm_90a`.
    pub arch: String,
    bytes: Vec<u8>,
    log: String,
}

impl Cubin {
    /// Wraps CUBIN bytes (from the disk cache, say). Fails unless they start like an ELF file.
    pub fn from_bytes(name: &str, arch: &str, bytes: Vec<u8>) -> Result<Cubin, CudaError> {
        if !bytes.starts_with(b"\x7fELF") {
            return Err(CudaError::InvalidKernel {
                kernel: name.to_string(),
                reason: "CUBIN data is not an ELF image".to_string(),
            });
        }
        Ok(Cubin {
            name: name.to_string(),
            arch: arch.to_string(),
            bytes,
            log: String::new(),
        })
    }

    /// Whether the CUBIN's string table holds `symbol` (a kernel's name, say) as a whole,
    /// NUL-delimited string (neither a prefix nor a suffix of a longer name): a check on a
    /// module that needs no GPU to load it. ELF string tables start with a NUL, so every name
    /// has one before it.
    pub fn holds_symbol(&self, symbol: &str) -> bool {
        let name = format!("\0{symbol}\0");
        self.bytes.windows(name.len()).any(|w| w == name.as_bytes())
    }

    /// The ELF image.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// NVRTC's log of the compilation; empty for a CUBIN read from the cache.
    pub fn log(&self) -> &str {
        &self.log
    }
}

/// What the driver loads for one kernel source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleImage {
    /// PTX, compiled to machine code by the driver when loaded (any newer GPU can run it).
    Ptx(Ptx),
    /// Machine code for exactly one architecture.
    Cubin(Cubin),
}

impl ModuleImage {
    /// The name the image was compiled under.
    pub fn name(&self) -> &str {
        match self {
            ModuleImage::Ptx(p) => &p.name,
            ModuleImage::Cubin(c) => &c.name,
        }
    }

    pub(crate) fn to_cudarc(&self) -> cudarc::nvrtc::Ptx {
        match self {
            ModuleImage::Ptx(p) => p.to_cudarc(),
            ModuleImage::Cubin(c) => cudarc::nvrtc::Ptx::from_binary(c.bytes.clone()),
        }
    }
}

/// The target of Hopper (compute capability 9.0) devices, with its arch-specific instructions.
pub const HOPPER_TARGET: &str = "sm_90a";

/// The NVRTC target for a device of compute capability `(major, minor)`: `sm_<major><minor>`,
/// with the `a` suffix on Hopper (9.0), whose arch-specific instructions (`wgmma`, `setmaxnreg`)
/// exist only for `sm_90a`. Such targets are compiled to CUBIN: their PTX runs nowhere else.
pub fn device_target(major: i32, minor: i32) -> String {
    if (major, minor) == (9, 0) {
        HOPPER_TARGET.to_string()
    } else {
        format!("sm_{major}{minor}")
    }
}

struct NvrtcLoad {
    available: bool,
    /// Keeps the pre-loaded libraries mapped for the life of the process.
    _preloaded: Vec<libloading::Library>,
}

fn nvrtc_load() -> &'static NvrtcLoad {
    static LOAD: OnceLock<NvrtcLoad> = OnceLock::new();
    LOAD.get_or_init(|| {
        let mut preloaded = Vec::new();
        if let Some(path) = std::env::var_os(NVRTC_LIB_ENV) {
            let path = PathBuf::from(path);
            // The builtins library is dlopen'ed by NVRTC by bare name; pre-load it from the same
            // folder so that no LD_LIBRARY_PATH is needed either.
            if let Some(dir) = path.parent() {
                for builtins in builtins_candidates(dir) {
                    // SAFETY: loading NVIDIA's library runs only its own initialisers.
                    if let Ok(lib) = unsafe { libloading::Library::new(&builtins) } {
                        preloaded.push(lib);
                    }
                }
            }
            // SAFETY: as above.
            if let Ok(lib) = unsafe { libloading::Library::new(&path) } {
                preloaded.push(lib);
            }
        }
        // SAFETY: `is_culib_present` only tries to dlopen candidate names.
        let available = unsafe { sys::is_culib_present() };
        NvrtcLoad {
            available,
            _preloaded: preloaded,
        }
    })
}

fn builtins_candidates(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc-builtins.so"))
        })
        .collect();
    found.sort();
    found
}

/// Whether `libnvrtc` can be loaded (after the `MODELC_NVRTC_LIB` pre-load).
pub fn nvrtc_available() -> bool {
    nvrtc_load().available
}

/// For tests that need NVRTC: true when it loads; false (after a notice naming `what`) when it
/// does not, except under CI (`CI` set and not `0`/`false`), where a missing NVRTC fails the test:
/// CI installs it (`.ci/nvrtc.sh`), so its absence there is a set-up bug, not a skip.
#[doc(hidden)]
pub fn nvrtc_or_skip(what: &str) -> bool {
    if nvrtc_available() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "CI is set but libnvrtc cannot be loaded: run `eval \"$(.ci/nvrtc.sh)\"` first"
    );
    eprintln!("NOTICE: skipping {what}: libnvrtc not loadable (see .ci/nvrtc.sh)");
    false
}

fn require_nvrtc() -> Result<(), CudaError> {
    if nvrtc_available() {
        Ok(())
    } else {
        Err(CudaError::NvrtcUnavailable {
            tried: cudarc::get_lib_name_candidates("nvrtc"),
        })
    }
}

/// NVRTC's `(major, minor)` version; part of the kernel cache key.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    require_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are valid for writes; the library is loaded (checked above).
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|source| CudaError::Nvrtc {
            kernel: String::new(),
            call: "nvrtcVersion",
            source,
        })?;
    Ok((major, minor))
}

/// Include folders that hold `cuda_bf16.h`, in search order: `$MODELC_CUDA_INCLUDE`,
/// `$CUDA_PATH/include`, `$CUDA_HOME/include`, `/usr/local/cuda/include`.
pub fn default_include_dirs() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(CUDA_INCLUDE_ENV) {
        candidates.push(PathBuf::from(p));
    }
    for var in ["CUDA_PATH", "CUDA_HOME"] {
        if let Some(p) = std::env::var_os(var) {
            candidates.push(PathBuf::from(p).join("include"));
        }
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    for c in candidates {
        if c.join("cuda_bf16.h").is_file() && !dirs.contains(&c) {
            dirs.push(c);
        }
    }
    dirs
}

/// `sm_90` → `compute_90` (also `sm_90a` → `compute_90a`); `None` if `arch` is not `sm_<digits>[a]`.
pub fn virtual_arch(arch: &str) -> Option<String> {
    let rest = arch.strip_prefix("sm_")?;
    let digits = rest.strip_suffix('a').unwrap_or(rest);
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("compute_{rest}"))
}

/// The NVRTC options [`compile_ptx`] uses; also hashed into the kernel cache key.
pub fn compile_options(arch: &str, include_dirs: &[PathBuf]) -> Option<Vec<String>> {
    let virt = virtual_arch(arch)?;
    let mut options = vec![
        format!("--gpu-architecture={virt}"),
        "--std=c++17".to_string(),
        // Line info costs nothing at run time and lets compute-sanitizer name source lines.
        "--generate-line-info".to_string(),
    ];
    for dir in include_dirs {
        options.push(format!("--include-path={}", dir.display()));
    }
    Some(options)
}

/// Writes `src` to `dir/<name>.cu` ([`SOURCE_DIR_ENV`]), creating `dir`.
fn write_source(dir: &Path, name: &str, src: &str) -> Result<(), CudaError> {
    let path = dir.join(format!("{name}.cu"));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, src))
        .map_err(|source| CudaError::SourceDir { path, source })
}

fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Frees an NVRTC program on every exit path.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by `create_program` and destroyed exactly once, here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// The error for an `arch` that is not `sm_<digits>[a]`.
fn bad_arch(name: &str, arch: &str) -> CudaError {
    CudaError::InvalidKernel {
        kernel: name.to_string(),
        reason: format!("architecture `{arch}` is not of the form sm_XY"),
    }
}

/// Compiles CUDA C `src` to PTX for `arch` (`"sm_90"`). Needs only `libnvrtc`. `name` names the
/// kernel in errors (the NVRTC log is included verbatim) and the program (`<name>.cu`).
pub fn compile_ptx(src: &str, name: &str, arch: &str, include_dirs: &[PathBuf]) -> Result<Ptx, CudaError> {
    let options = compile_options(arch, include_dirs).ok_or_else(|| bad_arch(name, arch))?;
    let (text, log) = compile_with(src, name, arch, options, Output::Ptx)?;
    Ok(Ptx {
        name: name.to_string(),
        arch: arch.to_string(),
        text: String::from_utf8_lossy(&text).into_owned(),
        log,
    })
}

/// Options for machine code: the real `arch` (`sm_90a`) in place of the virtual one.
pub fn cubin_options(arch: &str, include_dirs: &[PathBuf]) -> Option<Vec<String>> {
    let mut options = compile_options(arch, include_dirs)?;
    if let Some(first) = options.first_mut() {
        *first = format!("--gpu-architecture={arch}");
    }
    Some(options)
}

/// Compiles CUDA C `src` to a CUBIN for the real `arch` (`"sm_90a"`). Needs only `libnvrtc`
/// (NVRTC runs the assembler itself).
pub fn compile_cubin(src: &str, name: &str, arch: &str, include_dirs: &[PathBuf]) -> Result<Cubin, CudaError> {
    let options = cubin_options(arch, include_dirs).ok_or_else(|| bad_arch(name, arch))?;
    cubin_with(src, name, arch, options)
}

/// Runs NVRTC with machine-code `options` and wraps the result.
fn cubin_with(src: &str, name: &str, arch: &str, options: Vec<String>) -> Result<Cubin, CudaError> {
    let (bytes, log) = compile_with(src, name, arch, options, Output::Cubin)?;
    Ok(Cubin {
        name: name.to_string(),
        arch: arch.to_string(),
        bytes,
        log,
    })
}

/// Compiles `src` all the way to machine code for the real `arch` with `ptxas -v`, and returns
/// NVRTC's log: registers, spills, stack and shared memory per kernel. Catches what only the
/// assembler checks (static shared memory over 48 KiB, say) on a machine without a GPU.
pub fn ptxas_report(src: &str, name: &str, arch: &str, include_dirs: &[PathBuf]) -> Result<String, CudaError> {
    let options = report_options(name, arch, include_dirs)?;
    compile_with(src, name, arch, options, Output::LogOnly).map(|(_, log)| log)
}

/// [`compile_cubin`] with `ptxas -v`: the CUBIN and, as its log, the report of [`ptxas_report`]
/// (one compilation for tests that check both the entries and the assembler's figures).
pub fn compile_cubin_reporting(
    src: &str,
    name: &str,
    arch: &str,
    include_dirs: &[PathBuf],
) -> Result<Cubin, CudaError> {
    cubin_with(src, name, arch, report_options(name, arch, include_dirs)?)
}

/// Runs only NVRTC's front end on `src` for `arch` (`-fdevice-syntax-only`): the errors of the
/// source itself (a redefinition, an undeclared name) in a fraction of a compilation's time,
/// with no code generated. Returns the log (warnings).
pub fn check_syntax(src: &str, name: &str, arch: &str, include_dirs: &[PathBuf]) -> Result<String, CudaError> {
    let mut options = compile_options(arch, include_dirs).ok_or_else(|| bad_arch(name, arch))?;
    options.push("-fdevice-syntax-only".to_string());
    compile_with(src, name, arch, options, Output::LogOnly).map(|(_, log)| log)
}

/// [`cubin_options`] with `ptxas -v`.
fn report_options(name: &str, arch: &str, include_dirs: &[PathBuf]) -> Result<Vec<String>, CudaError> {
    let mut options = cubin_options(arch, include_dirs).ok_or_else(|| bad_arch(name, arch))?;
    options.push("--ptxas-options=-v".to_string());
    Ok(options)
}

/// What [`compile_with`] hands back besides the log.
#[derive(Clone, Copy, PartialEq)]
enum Output {
    Ptx,
    Cubin,
    LogOnly,
}

/// Runs NVRTC with `options`; returns (the PTX text or CUBIN bytes `output` asks for, log).
fn compile_with(
    src: &str,
    name: &str,
    arch: &str,
    options: Vec<String>,
    output: Output,
) -> Result<(Vec<u8>, String), CudaError> {
    let invalid = |reason: String| CudaError::InvalidKernel {
        kernel: name.to_string(),
        reason,
    };
    let c_src = CString::new(src).map_err(|_| invalid("source contains a NUL byte".into()))?;
    let c_name = CString::new(format!("{name}.cu")).map_err(|_| invalid("name contains a NUL byte".into()))?;
    if options.iter().any(|o| o.contains('\0')) {
        return Err(invalid("an include path contains a NUL byte".into()));
    }
    require_nvrtc()?;
    if let Some(dir) = std::env::var_os(SOURCE_DIR_ENV) {
        write_source(Path::new(&dir), name, src)?;
    }
    let nvrtc_err = |call: &'static str| {
        move |source| CudaError::Nvrtc {
            kernel: name.to_string(),
            call,
            source,
        }
    };
    let prog = Program(result::create_program(&c_src, Some(&c_name)).map_err(nvrtc_err("nvrtcCreateProgram"))?);
    // SAFETY: `prog.0` is a live program; options hold no NUL (checked above).
    let compiled = unsafe { result::compile_program(prog.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(prog.0) }
        .map(|l| c_chars_to_string(&l))
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(CudaError::Compile {
            kernel: name.to_string(),
            arch: arch.to_string(),
            code: format!("{:?}", e.0),
            options,
            log,
        });
    }
    let out = match output {
        Output::Ptx => {
            // SAFETY: as above; the program compiled.
            let raw = unsafe { result::get_ptx(prog.0) }.map_err(nvrtc_err("nvrtcGetPTX"))?;
            c_chars_to_string(&raw).into_bytes()
        }
        Output::Cubin => {
            let mut size = 0usize;
            // SAFETY: as above; `size` is a valid out-pointer.
            unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
                .result()
                .map_err(nvrtc_err("nvrtcGetCUBINSize"))?;
            let mut bytes = vec![0u8; size];
            // SAFETY: `bytes` holds the `size` bytes NVRTC writes.
            unsafe { sys::nvrtcGetCUBIN(prog.0, bytes.as_mut_ptr().cast()) }
                .result()
                .map_err(nvrtc_err("nvrtcGetCUBIN"))?;
            bytes
        }
        Output::LogOnly => Vec::new(),
    };
    Ok((out, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_arch_maps_real_to_virtual() {
        assert_eq!(virtual_arch("sm_90").as_deref(), Some("compute_90"));
        assert_eq!(virtual_arch("sm_90a").as_deref(), Some("compute_90a"));
        assert_eq!(virtual_arch("sm_120").as_deref(), Some("compute_120"));
        assert_eq!(virtual_arch("compute_90"), None);
        assert_eq!(virtual_arch("sm_9"), None);
        assert_eq!(virtual_arch("sm_9x"), None);
    }

    #[test]
    fn hopper_gets_the_arch_specific_target() {
        assert_eq!(device_target(9, 0), "sm_90a");
        assert_eq!(device_target(8, 0), "sm_80");
        assert_eq!(device_target(12, 0), "sm_120");
    }

    #[test]
    fn cubin_is_machine_code_for_the_real_target() {
        if !nvrtc_or_skip("the CUBIN test") {
            return;
        }
        // wgmma exists only on sm_90a: the fence compiles there and is refused for sm_90.
        let src = "extern \"C\" __global__ void k(float* x) {\n  asm volatile(\"wgmma.fence.sync.aligned;\");\n  x[threadIdx.x] = 1.0f;\n}\n";
        let cubin = compile_cubin(src, "k", "sm_90a", &default_include_dirs()).unwrap();
        assert!(cubin.bytes().starts_with(b"\x7fELF"));
        assert!(Cubin::from_bytes("k", "sm_90a", cubin.bytes().to_vec()).is_ok());
        assert!(Cubin::from_bytes("k", "sm_90a", b"garbage".to_vec()).is_err());
        let err = compile_cubin(src, "k", "sm_90", &default_include_dirs()).unwrap_err();
        assert!(err.to_string().contains("wgmma"), "{err}");
    }

    #[test]
    fn bad_arch_is_an_error_not_a_panic() {
        let err = compile_ptx("", "k", "gfx90a", &[]).unwrap_err();
        assert!(err.to_string().contains("gfx90a"), "{err}");
    }

    #[test]
    fn nul_in_source_is_an_error_not_a_panic() {
        let err = compile_ptx("a\0b", "k", "sm_90", &[]).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn from_text_rejects_nul() {
        assert!(Ptx::from_text("k", "sm_90", "x\0".into()).is_err());
        assert_eq!(
            Ptx::from_text("k", "sm_90", "ok".into())
                .map(|p| p.text().to_string())
                .ok(),
            Some("ok".to_string())
        );
    }

    #[test]
    fn source_dir_gets_the_program_file_and_a_bad_dir_is_named() {
        let dir = std::env::temp_dir().join(format!("modelc-nvrtc-src-{}", std::process::id()));
        write_source(&dir.join("sub"), "kern_ab12", "// text\n").unwrap();
        let written = std::fs::read_to_string(dir.join("sub/kern_ab12.cu")).unwrap();
        assert_eq!(written, "// text\n");
        // A file where the folder should be: an error naming the path, not a panic.
        std::fs::write(dir.join("file"), "x").unwrap();
        let err = write_source(&dir.join("file"), "k", "y").unwrap_err().to_string();
        assert!(
            err.contains("file/k.cu") && err.contains("MODELC_NVRTC_SOURCE_DIR"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
