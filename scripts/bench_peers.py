#!/usr/bin/env python3
"""Peers and ceilings on the GPU, at the shapes of `gpu_kernels --ignored bench_kernels`.

Run on the device machine in the same call as the modelc kernel benchmark (docs/PERFORMANCE.md):
  copy bandwidth (D2D, bytes read + written), bf16 GEMM 4096³ and 8192³ (torch/cuBLAS),
  SDPA causal prefill (B1 T4096 H32 G8 D128) and decode (B8, past 4096),
  fla-core chunk_kda (B1 T4096 H32 D128, q/k L2-norm in kernel) and fused_recurrent_kda (B8 T1).
Times are medians of CUDA-event-timed runs after warm-up (triton.testing.do_bench). fla's chunked
calls are also timed as CUDA graphs ("CUDA graph" rows): eager fla spends much of its time in
Python launching its kernels, which the graph replay removes.
"""
import sys

import torch
import torch.nn.functional as F
from triton.testing import do_bench

# --quick: only the main shapes (T4096; no 8192³ GEMM, T8192 or B8 T2048 H16), for a short lease:
# each fla shape costs Triton compilation and autotuning on first use.
QUICK = "--quick" in sys.argv
# --fla-only: only fla's chunked kernels (no ceilings, SDPA or recurrent step); --fla-shape=B,T,H
# (repeatable) picks their shapes instead of the defaults.
FLA_ONLY = "--fla-only" in sys.argv
FLA_SHAPES = [tuple(int(x) for x in a.split("=", 1)[1].split(",")) for a in sys.argv if a.startswith("--fla-shape=")]
# --fla-profile: also each fla kernel's GPU time per call (torch.profiler), to compare pass by pass.
FLA_PROFILE = "--fla-profile" in sys.argv

torch.manual_seed(0)
dev = "cuda"
print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")


def med(fn):
    return do_bench(fn, warmup=50, rep=300, return_mode="median")


def graph_med(fn):
    """fn captured once in a CUDA graph (after do_bench has autotuned its Triton kernels) and
    replayed: fla's GPU time without Python's launch overhead, the figure to set next to ours
    (our runtime replays CUDA graphs too). None, with the reason on stderr, if capture fails."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return med(graph.replay)
    except Exception as err:  # an extra figure: report, go on
        print(f"# CUDA graph capture failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return None


def print_kernel_times(label, fn, calls=10):
    """Each GPU kernel of `fn`: ms per call and launches per call, the longest first (stderr)."""
    try:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                fn()
            torch.cuda.synchronize()
        kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
        kernels.sort(key=lambda e: -e.device_time_total)
        for e in kernels:
            print(f"# {label}: {e.device_time_total / calls / 1e3:.4f} ms, {e.count / calls:g}x  {e.key[:90]}",
                  file=sys.stderr, flush=True)
    except Exception as err:  # a profile is an extra: report, go on
        print(f"# {label}: profile failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)


rows = []
if not FLA_ONLY:
    n = 1 << 28  # 512 MiB of bf16... per buffer: 2^28 elements × 2 B
    a = torch.randn(n, device=dev, dtype=torch.bfloat16)
    b = torch.empty_like(a)
    ms = med(lambda: b.copy_(a))
    rows.append(("copy D2D", "512 MiB", ms, f"{2 * a.numel() * 2 / ms / 1e9:.2f} TB/s"))
    del a, b
    for s in (4096,) if QUICK else (4096, 8192):
        x = torch.randn(s, s, device=dev, dtype=torch.bfloat16)
        w = torch.randn(s, s, device=dev, dtype=torch.bfloat16)
        ms = med(lambda: x @ w.T)
        rows.append(("torch bf16 GEMM", f"{s}³", ms, f"{2 * s ** 3 / ms / 1e9:.0f} TFLOP/s"))

    # SDPA causal prefill, GQA 32/8, head 128.
    H, G, D = 32, 8, 128
    for T in (4096,) if QUICK else (4096, 8192):
        q = torch.randn(1, H, T, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn(1, G, T, D, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, G, T, D, device=dev, dtype=torch.bfloat16)
        ms = med(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
        flops = 4 * T * T * D * H / 2
        rows.append(("SDPA causal prefill", f"B1 T{T} H32 G8 Dh128", ms, f"{flops / ms / 1e9:.1f} TFLOP/s"))
    # SDPA decode: one query per sequence over a 4096-token cache.
    B, P = 8, 4096
    qd = torch.randn(B, H, 1, D, device=dev, dtype=torch.bfloat16)
    kd = torch.randn(B, G, P, D, device=dev, dtype=torch.bfloat16)
    vd = torch.randn(B, G, P, D, device=dev, dtype=torch.bfloat16)
    ms = med(lambda: F.scaled_dot_product_attention(qd, kd, vd, enable_gqa=True))
    kv_bytes = 2 * B * G * P * D * 2
    rows.append(("SDPA decode", "B8 past4096 H32 G8 Dh128", ms, f"{kv_bytes / ms / 1e9:.2f} TB/s KV"))

try:
    from fla.ops.kda import chunk_kda, fused_recurrent_kda
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    D = 128
    default_shapes = ((1, 4096, 32),) if QUICK else ((1, 4096, 32), (1, 8192, 32), (8, 2048, 16))
    for B, T, H in FLA_SHAPES or default_shapes:
        qk = lambda: torch.randn(B, T, H, D, device=dev, dtype=torch.bfloat16)
        q, k, v = qk(), qk(), qk()
        g = -torch.rand(B, T, H, D, device=dev, dtype=torch.float32) * 0.1
        g1 = -torch.rand(B, T, H, device=dev, dtype=torch.float32) * 0.1
        beta = torch.rand(B, T, H, device=dev, dtype=torch.float32).to(torch.bfloat16)
        s0 = torch.zeros(B, H, D, D, device=dev, dtype=torch.float32)
        run = lambda: chunk_kda(q, k, v, g, beta, initial_state=s0, output_final_state=True, use_qk_l2norm_in_kernel=True)
        run_gdn = lambda: chunk_gated_delta_rule(q, k, v, g1, beta, initial_state=s0, output_final_state=True,
                                                 use_qk_l2norm_in_kernel=True)
        with torch.inference_mode():
            ms = med(run)
            ms_gdn = med(run_gdn)
            graphed = [graph_med(run), graph_med(run_gdn)]
        shape = f"B{B} T{T} H{H} Dk=Dv=128"
        rows.append(("fla chunk_kda", shape, ms, f"{B * T / ms:.0f} ktok/s"))
        rows.append(("fla chunk_gated_delta_rule", shape, ms_gdn, f"{B * T / ms_gdn:.0f} ktok/s"))
        for name, g_ms in zip(("chunk_kda", "chunk_gated_delta_rule"), graphed):
            if g_ms is not None:
                rows.append((f"fla {name}, CUDA graph", shape, g_ms, f"{B * T / g_ms:.0f} ktok/s"))
        # progress (autotuning takes minutes): the table comes at the end
        g_txt = ", ".join(f"{x:.3f}" if x is not None else "-" for x in graphed)
        print(f"# fla B{B} T{T} H{H}: chunk_kda {ms:.3f} ms, chunk_gated_delta_rule {ms_gdn:.3f} ms"
              f" (as CUDA graphs: {g_txt})", file=sys.stderr, flush=True)
        if FLA_PROFILE:
            with torch.inference_mode():
                print_kernel_times(f"chunk_kda B{B} T{T} H{H}", run)
                print_kernel_times(f"chunk_gated_delta_rule B{B} T{T} H{H}", run_gdn)
    if not FLA_ONLY:  # the recurrent step: not a chunked kernel
        T, H = 4096, 32
        B = 8
        q1 = torch.randn(B, 1, H, D, device=dev, dtype=torch.bfloat16)
        k1 = torch.randn(B, 1, H, D, device=dev, dtype=torch.bfloat16)
        v1 = torch.randn(B, 1, H, D, device=dev, dtype=torch.bfloat16)
        g1 = -torch.rand(B, 1, H, D, device=dev, dtype=torch.float32) * 0.1
        b1 = torch.rand(B, 1, H, device=dev, dtype=torch.bfloat16)
        st = torch.zeros(B, H, D, D, device=dev, dtype=torch.float32)
        run1 = lambda: fused_recurrent_kda(q1, k1, v1, g1, b1, initial_state=st, output_final_state=True, use_qk_l2norm_in_kernel=True)
        with torch.inference_mode():
            ms = med(run1)
        state_bytes = 2 * B * H * D * D * 4
        rows.append(("fla fused_recurrent_kda", "B8 T1 H32 Dk=Dv=128", ms, f"{state_bytes / ms / 1e9:.2f} TB/s state"))
except Exception as e:  # a missing or failing peer is reported, not hidden
    rows.append(("fla-core", "-", float("nan"), f"failed: {type(e).__name__}: {e}"[:120]))

print("| peer / ceiling | shape | median ms | rate |")
print("|---|---|---|---|")
for name, shape, ms, rate in rows:
    print(f"| {name} | {shape} | {ms:.3f} | {rate} |")
