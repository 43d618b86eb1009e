//! The one error type of the CUDA layer: every cudarc error is wrapped with what was being done
//! (which kernel, which launch configuration, how many bytes), so a failure reads on its own.

use cudarc::cublaslt::result::CublasError;
use cudarc::driver::DriverError;
use cudarc::nvrtc::result::NvrtcError;
use std::path::PathBuf;

/// Errors of NVRTC compilation, the kernel cache, the CUDA driver and cuBLASLt.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// `libnvrtc` could not be loaded: no GPU toolkit and no PyPI wheel on the library path.
    #[error(
        "NVRTC is not available: none of {tried:?} could be loaded (set MODELC_NVRTC_LIB to the \
         path of libnvrtc.so.13, or put its folder on LD_LIBRARY_PATH; `.ci/nvrtc.sh` installs it)"
    )]
    NvrtcUnavailable { tried: Vec<String> },

    /// NVRTC rejected a kernel's source; `log` is the compiler's own message.
    #[error("NVRTC failed to compile kernel `{kernel}` for {arch} ({code}), options {options:?}:\n{log}")]
    Compile {
        kernel: String,
        arch: String,
        code: String,
        options: Vec<String>,
        log: String,
    },

    /// Any other NVRTC call failed (program creation, fetching PTX, version query).
    #[error("NVRTC call `{call}` failed for kernel `{kernel}`: {source}")]
    Nvrtc {
        kernel: String,
        call: &'static str,
        #[source]
        source: NvrtcError,
    },

    /// A kernel source or name that cannot be handed to NVRTC or the driver.
    #[error("invalid kernel `{kernel}`: {reason}")]
    InvalidKernel { kernel: String, reason: String },

    /// `libcuda` could not be loaded: no NVIDIA driver on this machine.
    #[error("no CUDA driver: libcuda could not be loaded (is an NVIDIA driver installed?)")]
    DriverUnavailable,

    /// The driver is there but the requested GPU is not.
    #[error("no CUDA device with ordinal {ordinal}: the driver reports {count} device(s)")]
    NoDevice { ordinal: usize, count: usize },

    /// A driver call failed; `what` says which operation.
    #[error("CUDA driver error while {what}: {source}")]
    Driver {
        what: String,
        #[source]
        source: DriverError,
    },

    /// A device allocation did not fit.
    #[error(
        "out of GPU memory allocating {what}: requested {requested} bytes ({requested_mib:.1} MiB), \
         {free} of {total} bytes free ({free_mib:.1} / {total_mib:.1} MiB)",
        requested_mib = *requested as f64 / 1048576.0,
        free_mib = *free as f64 / 1048576.0,
        total_mib = *total as f64 / 1048576.0
    )]
    OutOfMemory {
        what: String,
        requested: usize,
        free: usize,
        total: usize,
    },

    /// A launch was refused (bad configuration, too much shared memory, wrong arguments).
    #[error("launch of kernel `{kernel}` failed (grid {grid:?}, block {block:?}, {smem} B dynamic smem): {source}")]
    Launch {
        kernel: String,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        smem: u32,
        #[source]
        source: DriverError,
    },

    /// A kernel launched but failed while running (found by the checked-launch synchronize).
    #[error(
        "kernel `{kernel}` failed while running (grid {grid:?}, block {block:?}, {smem} B dynamic smem): {source}"
    )]
    KernelFailed {
        kernel: String,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        smem: u32,
        #[source]
        source: DriverError,
    },

    /// A launch named a kernel that no loaded module provides.
    #[error("kernel `{kernel}` is not loaded (load_module it first); loaded: {loaded:?}")]
    UnknownKernel { kernel: String, loaded: Vec<String> },

    /// Host and device sizes disagree, or a GEMM operand is too small for its shape.
    #[error("size mismatch for {what}: expected {expected} elements, got {got}")]
    SizeMismatch { what: String, expected: usize, got: usize },

    /// A GEMM shape or leading dimension that cuBLASLt cannot take.
    #[error("invalid GEMM {what}")]
    InvalidGemm { what: String },

    /// A cuBLASLt call failed.
    #[error("cuBLASLt call `{call}` failed for {what}: {source}")]
    Cublas {
        call: &'static str,
        what: String,
        #[source]
        source: CublasError,
    },

    /// `libcublasLt` could not be loaded.
    #[error("cuBLASLt is not available: libcublasLt could not be loaded (put the CUDA lib folder on LD_LIBRARY_PATH)")]
    CublasUnavailable,

    /// Writing a kernel's source to `MODELC_NVRTC_SOURCE_DIR` failed.
    #[error("writing the kernel source {path} (MODELC_NVRTC_SOURCE_DIR): {source}")]
    SourceDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing the on-disk kernel cache failed.
    #[error("kernel cache I/O at {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CudaError {
    /// Wraps a driver error with the operation it interrupted.
    pub fn driver(what: impl Into<String>, source: DriverError) -> Self {
        CudaError::Driver {
            what: what.into(),
            source,
        }
    }
}
