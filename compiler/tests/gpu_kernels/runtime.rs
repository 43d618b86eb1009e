//! Runtime behaviour.

use super::*;

#[test]
fn runtime_errors_name_what_failed() {
    let Some(mut ctx) = setup() else { return };
    assert!(ctx.gpu.arch().starts_with("sm_"), "{}", ctx.gpu.arch());
    eprintln!(
        "device: {} ({}), {:?}",
        ctx.gpu.name(),
        ctx.gpu.arch(),
        ctx.gpu.mem_info().unwrap()
    );

    // Unknown kernel.
    // SAFETY: the launch is refused before reaching the driver.
    let err = unsafe {
        ctx.gpu
            .launch("no_such_kernel", LaunchDims::new((1, 1, 1), (1, 1, 1), 0), &[])
    }
    .unwrap_err();
    assert!(
        matches!(err, CudaError::UnknownKernel { .. }) && err.to_string().contains("no_such_kernel"),
        "{err}"
    );

    // A launch the driver refuses (more threads than a block may have) names kernel and config.
    let src = conv1d(&Conv1dParams {
        kernel_size: 4,
        activation: ConvActivation::Silu,
        has_bias: false,
    })
    .unwrap();
    ctx.load(&src);
    let dummy = ctx.nan_f32(16, "dummy");
    let args = [
        dummy.arg(),
        KernelArg::I32(1),
        dummy.arg(),
        KernelArg::Ptr(0),
        KernelArg::Ptr(0),
        KernelArg::Ptr(0),
        dummy.arg(),
        KernelArg::I32(1),
        KernelArg::I32(1),
        KernelArg::I32(1),
    ];
    // SAFETY: the driver rejects the configuration before running anything.
    let err = unsafe {
        ctx.gpu
            .launch(src.name(), LaunchDims::new((1, 1, 1), (4096, 1, 1), 0), &args)
    }
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, CudaError::Launch { .. }) && msg.contains(src.name()) && msg.contains("4096"),
        "{msg}"
    );

    // Out of memory: the message carries the request and the free/total memory.
    let err = ctx.gpu.alloc_zeros::<u8>(1 << 50, "a petabyte").unwrap_err();
    match &err {
        CudaError::OutOfMemory { requested, total, .. } => {
            assert_eq!(*requested, 1 << 50);
            assert!(*total > 0);
        }
        other => panic!("expected OutOfMemory, got {other}"),
    }
    assert!(err.to_string().contains("a petabyte"), "{err}");

    // Warm start: a second cache over the same folder compiles nothing.
    let warm = KernelCache::new(ctx.cache.dir());
    ctx.gpu.compile_and_load(&warm, &src.source, &src.entry_refs()).unwrap();
    assert_eq!((warm.hits(), warm.misses()), (1, 0));
}
