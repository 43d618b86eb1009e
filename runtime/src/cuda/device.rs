//! One GPU: a cudarc context and one stream, device buffers, loaded kernels and checked launches.
//!
//! Everything runs on a single stream, in order, so cudarc's per-buffer event tracking is turned
//! off (it would add two events per buffer and a wait per launch argument). Kernel arguments are
//! raw device pointers and scalars ([`KernelArg`]), the shape generated launch code needs.

use super::error::CudaError;
use super::kernel_cache::KernelCache;
use super::nvrtc::{device_target, ModuleImage};
use super::tensor_map::TensorMap;
use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute, CUresult};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr, DriverError, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Env var: `1` turns on a synchronize-and-check after every launch (also on in debug builds).
pub const CHECK_ENV: &str = "MODELC_CUDA_CHECK";

/// Shared memory (static and dynamic) a kernel may use without opting in.
const DEFAULT_SMEM_LIMIT: u32 = 48 * 1024;

/// Element types a [`GpuBuffer`] may hold: plain data valid for every bit pattern, including zero.
pub trait GpuElem: DeviceRepr + ValidAsZeroBits + Copy + Default + Unpin + 'static {}
impl GpuElem for f32 {}
impl GpuElem for f64 {}
impl GpuElem for half::bf16 {}
impl GpuElem for half::f16 {}
impl GpuElem for i32 {}
impl GpuElem for i64 {}
impl GpuElem for u8 {}
impl GpuElem for u16 {}
impl GpuElem for u32 {}

/// A device allocation of `len` elements of `T`, freed on drop (stream-ordered).
#[derive(Debug)]
pub struct GpuBuffer<T: GpuElem> {
    slice: CudaSlice<T>,
    stream: Arc<CudaStream>,
}

impl<T: GpuElem> GpuBuffer<T> {
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slice.len() == 0
    }

    pub fn num_bytes(&self) -> usize {
        self.slice.len() * std::mem::size_of::<T>()
    }

    /// The raw device address (`CUdeviceptr`), for kernel arguments and cuBLASLt.
    pub fn device_ptr(&self) -> u64 {
        let (ptr, _sync) = self.slice.device_ptr(&self.stream);
        ptr
    }

    /// The address `offset` elements in, for launching on a slice of the buffer; `None` past the end.
    pub fn device_ptr_at(&self, offset: usize) -> Option<u64> {
        (offset <= self.len()).then(|| self.device_ptr() + (offset * std::mem::size_of::<T>()) as u64)
    }

    /// This buffer as a kernel argument (`T*` on the device side).
    pub fn arg(&self) -> KernelArg {
        KernelArg::Ptr(self.device_ptr())
    }

    pub(crate) fn slice(&self) -> &CudaSlice<T> {
        &self.slice
    }

    pub(crate) fn slice_mut(&mut self) -> &mut CudaSlice<T> {
        &mut self.slice
    }
}

/// One kernel parameter, passed by value. `Ptr` is a device address (any `T*`); `TensorMap` a
/// TMA descriptor (a `__grid_constant__` parameter of 128 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KernelArg {
    Ptr(u64),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    TensorMap(TensorMap),
}

impl<T: GpuElem> From<&GpuBuffer<T>> for KernelArg {
    fn from(b: &GpuBuffer<T>) -> Self {
        b.arg()
    }
}
impl From<i32> for KernelArg {
    fn from(v: i32) -> Self {
        KernelArg::I32(v)
    }
}
impl From<u32> for KernelArg {
    fn from(v: u32) -> Self {
        KernelArg::U32(v)
    }
}
impl From<i64> for KernelArg {
    fn from(v: i64) -> Self {
        KernelArg::I64(v)
    }
}
impl From<f32> for KernelArg {
    fn from(v: f32) -> Self {
        KernelArg::F32(v)
    }
}

/// Grid, block and dynamic shared memory of one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDims {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub smem: u32,
}

impl LaunchDims {
    pub fn new(grid: (u32, u32, u32), block: (u32, u32, u32), smem: u32) -> LaunchDims {
        LaunchDims { grid, block, smem }
    }
}

/// Whether `libcuda` can be loaded (cached; loading the driver library has no side effect).
pub fn driver_available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen candidate names.
    *PRESENT.get_or_init(|| unsafe { cudarc::driver::sys::is_culib_present() })
}

/// Number of CUDA devices; an error when there is no driver.
pub fn device_count() -> Result<usize, CudaError> {
    if !driver_available() {
        return Err(CudaError::DriverUnavailable);
    }
    cudarc::driver::result::init().map_err(|e| CudaError::driver("initialising the driver", e))?;
    let n = CudaContext::device_count().map_err(|e| CudaError::driver("counting devices", e))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A loaded kernel and its static shared memory (read once, at load: launches past the default
/// limit together with their dynamic shared memory must opt in).
struct LoadedKernel {
    f: CudaFunction,
    static_smem: u32,
}

/// A GPU with one stream, its loaded kernels, and launch checking.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    ordinal: usize,
    name: String,
    compute_capability: (i32, i32),
    arch: String,
    max_smem_optin: u32,
    sms: u32,
    kernels: HashMap<String, LoadedKernel>,
    /// Modules stay loaded as long as the `Gpu` lives (functions hold them too).
    modules: Vec<Arc<CudaModule>>,
    checked: bool,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name)
            .field("arch", &self.arch)
            .field("kernels", &self.kernels.len())
            .field("checked", &self.checked)
            .finish()
    }
}

impl Gpu {
    /// Opens device `ordinal`. Fails with [`CudaError::DriverUnavailable`] when there is no
    /// driver and [`CudaError::NoDevice`] when the ordinal does not exist.
    pub fn new(ordinal: usize) -> Result<Gpu, CudaError> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| CudaError::driver(format!("creating a context on device {ordinal}"), e))?;
        // SAFETY: this `Gpu` issues all work on its one stream, in order (see the module doc).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| CudaError::driver("creating a stream", e))?;
        let name = ctx
            .name()
            .map_err(|e| CudaError::driver("reading the device name", e))?;
        let compute_capability = ctx
            .compute_capability()
            .map_err(|e| CudaError::driver("reading the compute capability", e))?;
        let max_smem_optin = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(|e| CudaError::driver("reading the shared-memory limit", e))?;
        let sms = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| CudaError::driver("reading the multiprocessor count", e))?;
        let checked = cfg!(debug_assertions) || std::env::var(CHECK_ENV).is_ok_and(|v| v == "1" || v == "true");
        Ok(Gpu {
            ctx,
            stream,
            ordinal,
            name,
            arch: device_target(compute_capability.0, compute_capability.1),
            compute_capability,
            max_smem_optin: u32::try_from(max_smem_optin).unwrap_or(DEFAULT_SMEM_LIMIT),
            sms: u32::try_from(sms).unwrap_or(1).max(1),
            kernels: HashMap::new(),
            modules: Vec::new(),
            checked,
        })
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device's marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `(major, minor)`.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.compute_capability
    }

    /// The NVRTC target for this device, `sm_<major><minor>`, `sm_90a` on Hopper
    /// ([`device_target`]); kernels are compiled to CUBIN for it.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// The largest dynamic shared memory a block may opt into, in bytes.
    pub fn max_shared_memory_per_block(&self) -> u32 {
        self.max_smem_optin
    }

    /// The device's SM (multiprocessor) count.
    pub fn sm_count(&self) -> u32 {
        self.sms
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Whether every launch is followed by a synchronize and an error check.
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// Turns launch checking on or off (on by default in debug builds or with `MODELC_CUDA_CHECK=1`).
    pub fn set_checked(&mut self, checked: bool) {
        self.checked = checked;
    }

    /// `(free, total)` device memory in bytes.
    pub fn mem_info(&self) -> Result<(usize, usize), CudaError> {
        self.ctx
            .mem_get_info()
            .map_err(|e| CudaError::driver("querying free memory", e))
    }

    fn alloc_error(&self, what: &str, requested: usize, e: DriverError) -> CudaError {
        if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            let (free, total) = self.mem_info().unwrap_or((0, 0));
            CudaError::OutOfMemory {
                what: what.to_string(),
                requested,
                free,
                total,
            }
        } else {
            CudaError::driver(format!("allocating {requested} bytes for {what}"), e)
        }
    }

    /// A zero-filled buffer of `len` elements; `what` names it in errors.
    pub fn alloc_zeros<T: GpuElem>(&self, len: usize, what: &str) -> Result<GpuBuffer<T>, CudaError> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        let slice = self
            .stream
            .alloc_zeros::<T>(len)
            .map_err(|e| self.alloc_error(what, bytes, e))?;
        Ok(GpuBuffer {
            slice,
            stream: self.stream.clone(),
        })
    }

    /// A new buffer holding a copy of `data`.
    pub fn upload<T: GpuElem>(&self, data: &[T], what: &str) -> Result<GpuBuffer<T>, CudaError> {
        let mut buf = self.alloc_zeros::<T>(data.len(), what)?;
        self.upload_into(data, &mut buf, what)?;
        Ok(buf)
    }

    /// Copies `data` into the start of `buf`; `data` may be shorter than the buffer.
    pub fn upload_into<T: GpuElem>(&self, data: &[T], buf: &mut GpuBuffer<T>, what: &str) -> Result<(), CudaError> {
        if data.len() > buf.len() {
            return Err(CudaError::SizeMismatch {
                what: format!("upload into {what} (buffer of {} elements)", buf.len()),
                expected: buf.len(),
                got: data.len(),
            });
        }
        self.stream
            .memcpy_htod(data, buf.slice_mut())
            .map_err(|e| CudaError::driver(format!("copying {} bytes to {what}", std::mem::size_of_val(data)), e))
    }

    /// Copies the whole buffer to the host, after all queued work.
    pub fn download<T: GpuElem>(&self, buf: &GpuBuffer<T>, what: &str) -> Result<Vec<T>, CudaError> {
        let mut out = vec![T::default(); buf.len()];
        self.stream
            .memcpy_dtoh(buf.slice(), &mut out)
            .map_err(|e| CudaError::driver(format!("copying {} bytes from {what}", buf.num_bytes()), e))?;
        self.synchronize()?;
        Ok(out)
    }

    /// Waits for all queued work; reports an asynchronous kernel failure.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(|e| CudaError::driver("synchronizing the stream", e))
    }

    /// Device-to-device copy bandwidth in bytes per second (bytes read plus bytes written, as
    /// copy rates are quoted): the median of `reps` copies of `bytes` between two buffers, after
    /// one warm-up copy. Allocates `2 · bytes` for the duration of the call.
    pub fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, CudaError> {
        let src = self.alloc_zeros::<u8>(bytes, "copy-bandwidth source")?;
        let mut dst = self.alloc_zeros::<u8>(bytes, "copy-bandwidth destination")?;
        let mut times = Vec::with_capacity(reps.max(1));
        for i in 0..=reps.max(1) {
            self.synchronize()?;
            let t = std::time::Instant::now();
            self.stream
                .memcpy_dtod(src.slice(), dst.slice_mut())
                .map_err(|e| CudaError::driver("timing a device-to-device copy", e))?;
            self.synchronize()?;
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2].max(1e-9);
        Ok(2.0 * bytes as f64 / median)
    }

    /// Loads a PTX module and registers `kernel_names` from it for [`Gpu::launch`]. Loading a
    /// name that is already registered replaces it.
    pub fn load_module(&mut self, image: &ModuleImage, kernel_names: &[&str]) -> Result<(), CudaError> {
        let module = self
            .ctx
            .load_module(image.to_cudarc())
            .map_err(|e| CudaError::driver(format!("loading the module of `{}`", image.name()), e))?;
        for &name in kernel_names {
            if name.contains('\0') {
                return Err(CudaError::InvalidKernel {
                    kernel: name.to_string(),
                    reason: "name contains a NUL byte".into(),
                });
            }
            let f = module
                .load_function(name)
                .map_err(|e| CudaError::driver(format!("finding kernel `{name}` in module `{}`", image.name()), e))?;
            let static_smem = f
                .shared_size_bytes()
                .map_err(|e| CudaError::driver(format!("reading the shared memory of kernel `{name}`"), e))?;
            let static_smem = u32::try_from(static_smem).unwrap_or(0);
            self.kernels.insert(name.to_string(), LoadedKernel { f, static_smem });
        }
        self.modules.push(module);
        Ok(())
    }

    /// Compiles (or fetches from `cache`) `src` for this device and loads `kernel_names` from it.
    pub fn compile_and_load(&mut self, cache: &KernelCache, src: &str, kernel_names: &[&str]) -> Result<(), CudaError> {
        let name = kernel_names.first().copied().unwrap_or("module");
        let cubin = cache.get_or_compile_cubin(src, name, &self.arch)?;
        self.load_module(&ModuleImage::Cubin(cubin), kernel_names)
    }

    /// [`Gpu::compile_and_load`] of several modules (`(source, kernel names)`): their CUBINs
    /// compiled (or fetched) in parallel ([`KernelCache::get_or_compile_cubins`]), then loaded
    /// in order; the first failure, in that order, is returned.
    pub fn compile_and_load_all(
        &mut self,
        cache: &KernelCache,
        modules: &[(String, Vec<String>)],
    ) -> Result<(), CudaError> {
        let jobs: Vec<(&str, &str)> = modules
            .iter()
            .map(|(src, names)| (src.as_str(), names.first().map_or("module", String::as_str)))
            .collect();
        let cubins = cache.get_or_compile_cubins(&jobs, &self.arch);
        for (cubin, (_, names)) in cubins.into_iter().zip(modules) {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.load_module(&ModuleImage::Cubin(cubin?), &names)?;
        }
        Ok(())
    }

    /// Whether `kernel` has been loaded.
    pub fn has_kernel(&self, kernel: &str) -> bool {
        self.kernels.contains_key(kernel)
    }

    /// Launches a loaded kernel on the stream. Dynamic shared memory above 48 KiB is opted into
    /// automatically. With checking on, synchronizes and reports a failure naming the kernel.
    ///
    /// # Safety
    /// `args` must match the kernel's parameter list in number, order and type, and every pointer
    /// must address a live allocation large enough for what the kernel reads and writes.
    pub unsafe fn launch(&self, kernel: &str, dims: LaunchDims, args: &[KernelArg]) -> Result<(), CudaError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.launch_ex(kernel, dims, args, false) }
    }

    /// Whether the device takes programmatic dependent launches (compute capability 9.0 and up):
    /// see [`Gpu::launch_ex`].
    pub fn supports_pdl(&self) -> bool {
        self.compute_capability.0 >= 9
    }

    /// [`Gpu::launch`], optionally as a programmatic dependent launch (`pdl`, ignored where
    /// [`Gpu::supports_pdl`] is false): the kernel may start while the previous kernel on the
    /// stream is still finishing (once all of its blocks have exited or executed
    /// `griddepcontrol.launch_dependents`). Such a kernel must execute `griddepcontrol.wait`
    /// before it touches memory the previous kernels write or read, or reads what they write;
    /// before that it may only read constant data (weights). Captured into CUDA graphs as a
    /// programmatic edge.
    ///
    /// # Safety
    /// As [`Gpu::launch`]; with `pdl`, the kernel must follow the rule above.
    pub unsafe fn launch_ex(
        &self,
        kernel: &str,
        dims: LaunchDims,
        args: &[KernelArg],
        pdl: bool,
    ) -> Result<(), CudaError> {
        let f = self.kernel_with_smem(kernel, dims)?;
        let launch_err = |source| CudaError::Launch {
            kernel: kernel.to_string(),
            grid: dims.grid,
            block: dims.block,
            smem: dims.smem,
            source,
        };
        if pdl && self.supports_pdl() {
            // SAFETY: forwarded from the caller.
            unsafe { self.launch_pdl(f, dims, args) }.map_err(launch_err)?;
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.launch_plain(f, dims, args) }.map_err(launch_err)?;
        }
        if self.checked {
            self.stream.synchronize().map_err(|source| CudaError::KernelFailed {
                kernel: kernel.to_string(),
                grid: dims.grid,
                block: dims.block,
                smem: dims.smem,
                source,
            })?;
        }
        Ok(())
    }

    /// How many clusters of `kernel` (compiled with `__cluster_dims__`) the device holds at
    /// once with the launch geometry `dims` (`cuOccupancyMaxActiveClusters`): fewer than the
    /// grid's clusters means the launch runs in waves.
    pub fn max_active_clusters(&self, kernel: &str, dims: LaunchDims) -> Result<u32, CudaError> {
        let f = self.kernel_with_smem(kernel, dims)?;
        let cfg = LaunchConfig {
            grid_dim: dims.grid,
            block_dim: dims.block,
            shared_mem_bytes: dims.smem,
        };
        f.occupancy_max_active_clusters(cfg, &self.stream)
            .map_err(|e| CudaError::driver(format!("the cluster occupancy of `{kernel}`"), e))
    }

    /// How many blocks of `kernel` an SM holds at once with the launch geometry `dims`
    /// (`cuOccupancyMaxActiveBlocksPerMultiprocessor`).
    pub fn max_blocks_per_sm(&self, kernel: &str, dims: LaunchDims) -> Result<u32, CudaError> {
        let f = self.kernel_with_smem(kernel, dims)?;
        let threads = dims.block.0 * dims.block.1 * dims.block.2;
        f.occupancy_max_active_blocks_per_multiprocessor(threads, dims.smem as usize, None)
            .map_err(|e| CudaError::driver(format!("the occupancy of `{kernel}`"), e))
    }

    /// A loaded kernel, opted into `dims.smem` bytes of dynamic shared memory (as a launch does).
    fn kernel_with_smem(&self, kernel: &str, dims: LaunchDims) -> Result<&CudaFunction, CudaError> {
        let LoadedKernel { f, static_smem } = self.kernels.get(kernel).ok_or_else(|| {
            let mut loaded: Vec<String> = self.kernels.keys().cloned().collect();
            loaded.sort();
            CudaError::UnknownKernel {
                kernel: kernel.to_string(),
                loaded,
            }
        })?;
        // The default limit holds static and dynamic shared memory together.
        if dims.smem > 0 && dims.smem.saturating_add(*static_smem) > DEFAULT_SMEM_LIMIT {
            f.set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                i32::try_from(dims.smem).unwrap_or(i32::MAX),
            )
            .map_err(|e| {
                CudaError::driver(
                    format!("opting `{kernel}` into {} bytes of shared memory", dims.smem),
                    e,
                )
            })?;
        }
        Ok(f)
    }

    /// `cuLaunchKernel` through cudarc's builder.
    ///
    /// # Safety
    /// As [`Gpu::launch_ex`].
    unsafe fn launch_plain(&self, f: &CudaFunction, dims: LaunchDims, args: &[KernelArg]) -> Result<(), DriverError> {
        let mut builder = self.stream.launch_builder(f);
        for a in args {
            match a {
                KernelArg::Ptr(v) => builder.arg(v),
                KernelArg::I32(v) => builder.arg(v),
                KernelArg::U32(v) => builder.arg(v),
                KernelArg::I64(v) => builder.arg(v),
                KernelArg::U64(v) => builder.arg(v),
                KernelArg::F32(v) => builder.arg(v),
                KernelArg::TensorMap(v) => builder.arg(v),
            };
        }
        let cfg = LaunchConfig {
            grid_dim: dims.grid,
            block_dim: dims.block,
            shared_mem_bytes: dims.smem,
        };
        // SAFETY: the caller of `launch_ex` guarantees the arguments match the kernel.
        unsafe { builder.launch(cfg) }?;
        Ok(())
    }

    /// `cuLaunchKernelEx` with `CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION`.
    ///
    /// # Safety
    /// As [`Gpu::launch_ex`].
    unsafe fn launch_pdl(&self, f: &CudaFunction, dims: LaunchDims, args: &[KernelArg]) -> Result<(), DriverError> {
        use cudarc::driver::sys;
        // Each scalar gets an 8-byte slot whose first bytes hold it (little-endian, as the driver
        // reads a parameter of its declared size); a tensor map is passed from where it lies.
        let mut slots: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                KernelArg::Ptr(v) | KernelArg::U64(v) => v,
                KernelArg::I32(v) => u64::from(v as u32),
                KernelArg::U32(v) => u64::from(v),
                KernelArg::I64(v) => v as u64,
                KernelArg::F32(v) => u64::from(v.to_bits()),
                KernelArg::TensorMap(_) => 0,
            })
            .collect();
        let mut params: Vec<*mut std::ffi::c_void> = slots
            .iter_mut()
            .zip(args)
            .map(|(s, a)| match a {
                KernelArg::TensorMap(m) => (m as *const TensorMap).cast_mut().cast::<std::ffi::c_void>(),
                _ => (s as *mut u64).cast::<std::ffi::c_void>(),
            })
            .collect();
        // SAFETY: an all-zero attribute is a valid (ignored) attribute; we set id and value.
        let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
        attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attr.value.programmaticStreamSerializationAllowed = 1;
        let cfg = sys::CUlaunchConfig {
            gridDimX: dims.grid.0,
            gridDimY: dims.grid.1,
            gridDimZ: dims.grid.2,
            blockDimX: dims.block.0,
            blockDimY: dims.block.1,
            blockDimZ: dims.block.2,
            sharedMemBytes: dims.smem,
            hStream: self.stream.cu_stream(),
            attrs: &mut attr,
            numAttrs: 1,
        };
        self.ctx.bind_to_thread()?;
        // SAFETY: `cfg`, `attr`, `params` and `slots` outlive the call; the caller guarantees the
        // arguments match the kernel's parameters.
        unsafe { sys::cuLaunchKernelEx(&cfg, f.cu_function(), params.as_mut_ptr(), std::ptr::null_mut()) }.result()
    }

    /// Number of loaded modules (for tests of module reuse).
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }
}

/// For tests that need a GPU: the first one (launches checked), or `None` after printing
/// "skipped: no GPU" and why (naming `what`) to stderr, visible with `--nocapture`. With
/// `MODELC_REQUIRE_GPU` set, a missing GPU fails the test instead.
#[doc(hidden)]
pub fn gpu_or_skip(what: &str) -> Option<Gpu> {
    match Gpu::new(0) {
        Ok(mut gpu) => {
            gpu.set_checked(true);
            Some(gpu)
        }
        Err(e) => {
            assert!(
                std::env::var("MODELC_REQUIRE_GPU").is_err(),
                "MODELC_REQUIRE_GPU is set but no GPU: {e}"
            );
            eprintln!("skipped: no GPU ({what}: {e})");
            None
        }
    }
}
