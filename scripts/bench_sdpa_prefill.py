#!/usr/bin/env python3
"""torch SDPA at the attention-prefill shapes of `gpu_kernels --ignored bench_attention_prefill_only`
(also part of `bench_kernels`): B1 Hq32 Hkv8 D128 causal bf16, T 4096 and 8192, GQA via
enable_gqa. Run it on the device machine in the same call as the modelc benchmark, so that the
ratio comes from one run. CUDA events; 3 warm-up calls, then 20 single calls (median) and one
batch of 20 back-to-back calls (mean: comparable to the modelc rows, which time batches of 10).
Also times the FLASH_ATTENTION and CUDNN_ATTENTION backends on their own. With --flush, also
the median of 7 single calls each after 128 MiB were written elsewhere (the L2 holds none of
q, k, v), host clock around the call: the way `MODELC_BENCH_SINGLE=1` times modelc's forms
"after a flush".
"""
import sys
import torch, torch.nn.functional as F
print("torch", torch.__version__, torch.cuda.get_device_name())
from torch.nn.attention import SDPBackend
from sdpa_timing import backend_name, time_after_flush, time_sdpa
FLUSH = "--flush" in sys.argv[1:]
def run(T, backend=None):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, 32, T, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(1, 8, T, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(1, 8, T, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    median, batch = time_sdpa(f, backend, warmup=3, singles=20, batch=20)
    flops = 2.0 * 32 * T * T * 128
    print(f"| SDPA {backend_name(backend)} | B1 T{T} H32 G8 Dh128 causal | median {median:.3f} ms, batch mean {batch:.3f} ms | {flops / batch / 1e9:.1f} TFLOP/s |")
    if FLUSH:
        flushed = time_after_flush(f, backend)
        print(f"| SDPA {backend_name(backend)}, after a flush | B1 T{T} H32 G8 Dh128 causal | median {flushed:.3f} ms (host clock) | {flops / flushed / 1e9:.1f} TFLOP/s |")
for T in (4096, 8192):
    run(T)
    for b in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION):
        try:
            run(T, b)
        except Exception as ex:
            print("backend", b, "failed:", str(ex).splitlines()[0][:120])
