#!/usr/bin/env python3
"""torch SDPA at the attention-decode shape of `gpu_kernels --ignored bench_attention_decode_only`
(also part of `bench_kernels`): one new token per sequence, B8 Hq32 Hkv8 D128 over 4096 cached
keys, bf16, GQA via enable_gqa (q [8,32,1,128], k/v [8,8,4096,128]; no mask: the one query sees
every key). Run it on the device machine in the same call as the modelc benchmark. CUDA events;
10 warm-up calls, then the mean of 100 back-to-back calls, and the median of 20 single calls.
Also times the FLASH_ATTENTION, EFFICIENT_ATTENTION and CUDNN_ATTENTION backends on their own.
"""
import torch, torch.nn.functional as F
from torch.nn.attention import SDPBackend
from sdpa_timing import backend_name, time_sdpa
print("torch", torch.__version__, torch.cuda.get_device_name())
B, HQ, HKV, S, D = 8, 32, 8, 4096, 128
def run(backend=None):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(B, HQ, 1, D, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(B, HKV, S, D, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(B, HKV, S, D, device="cuda", dtype=torch.bfloat16, generator=g)
    f = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    median, mean = time_sdpa(f, backend, warmup=10, singles=20, batch=100)
    kv_bytes = 2.0 * B * HKV * S * D * 2
    print(f"| SDPA {backend_name(backend)} | B8 past4096 H32 G8 Dh128 decode | mean of 100 {mean:.4f} ms, median single {median:.4f} ms | {kv_bytes / mean / 1e9:.2f} TB/s KV |")
run()
for b in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION):
    try:
        run(b)
    except Exception as ex:
        print("backend", b, "failed:", str(ex).splitlines()[0][:120])
