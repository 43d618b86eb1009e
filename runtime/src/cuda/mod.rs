//! The CUDA layer: NVRTC compilation (usable without a GPU), an on-disk PTX/CUBIN cache, a device
//! wrapper with checked launches, and cuBLASLt GEMMs. Everything is loaded dynamically through
//! cudarc, so building needs no CUDA; calls report a clear error where a library is missing.

pub mod device;
pub mod error;
pub mod executor;
pub mod gemm;
pub mod gemv;
pub mod kernel_cache;
pub mod nvrtc;
pub mod tensor_map;

pub use device::{
    device_count, driver_available, gpu_or_skip, Gpu, GpuBuffer, GpuElem, KernelArg, LaunchDims, CHECK_ENV,
};
pub use error::CudaError;
pub use gemm::{cublaslt_available, Gemm, GemmBias, GemmC, GemmOut, GemmOutElem, GemmShape};
pub use gemv::{
    gemv_ex, gemv_raw, gemv_supported, gemv_tensor_takes, load_gemv, GemvPrologue, L2Prefetch, GEMV_MAX_ROWS,
};
pub use kernel_cache::{default_cache_dir, KernelCache, CACHE_DIR_ENV};
pub use nvrtc::{
    check_syntax, compile_cubin, compile_cubin_reporting, compile_ptx, default_include_dirs, device_target,
    nvrtc_available, nvrtc_version, ptxas_report, Cubin, ModuleImage, Ptx, CUDA_INCLUDE_ENV, NVRTC_LIB_ENV,
};
pub use tensor_map::{TensorMap, TileMap2d};
