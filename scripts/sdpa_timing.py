"""Timing shared by the SDPA peer scripts (bench_sdpa_decode.py, bench_sdpa_prefill.py): CUDA
events around `warmup` discarded calls, then `singles` single calls (median) and one batch of
`batch` back-to-back calls (mean), optionally with one SDPA backend forced."""
import torch
from torch.nn.attention import sdpa_kernel


def time_sdpa(f, backend=None, warmup=3, singles=20, batch=20):
    """(median of single calls, mean of back-to-back calls), in ms, of `f` under `backend` (None:
    torch's own choice)."""
    ctx = sdpa_kernel([backend]) if backend is not None else torch.autograd.grad_mode.no_grad()
    with ctx, torch.no_grad():
        for _ in range(warmup):
            f()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        ts = []
        for _ in range(singles):
            s.record(); f(); e.record(); e.synchronize(); ts.append(s.elapsed_time(e))
        ts.sort()
        s.record()
        for _ in range(batch):
            f()
        e.record(); e.synchronize()
        return ts[len(ts) // 2], s.elapsed_time(e) / batch


def backend_name(backend):
    return "default" if backend is None else str(backend).split(".")[-1]


def time_after_flush(f, backend=None, runs=7, flush_mib=128):
    """Median of `runs` single calls of `f`, each after `flush_mib` MiB were written to a fresh
    buffer (so the L2 holds none of its data), timed as modelc's single launches are: the host
    clock around the call and a synchronize (`gpu_kernels`' `single_launch_ms`)."""
    import time
    ctx = sdpa_kernel([backend]) if backend is not None else torch.autograd.grad_mode.no_grad()
    with ctx, torch.no_grad():
        f()
        ts = []
        for _ in range(runs):
            scratch = torch.empty(flush_mib << 20, dtype=torch.uint8, device="cuda").fill_(255)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            f()
            torch.cuda.synchronize()
            ts.append((time.perf_counter() - t0) * 1e3)
            del scratch
        ts.sort()
        return ts[len(ts) // 2]

