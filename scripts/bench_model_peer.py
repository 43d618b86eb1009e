#!/usr/bin/env python3
"""The whole-model peer of `modelc bench specs/hybrid-1b.yaml`: the upstream HF way of running it.

An eager PyTorch forward of the hybrid-1b architecture (specs/hybrid-1b.yaml: 24 layers, 18 KDA +
6 attention, hidden 2048, 16 heads of 128, GQA 16/4, gated SiLU MLP 4096, vocab 32000) built the
way the Apriel2 HF modeling code builds it (reference apriel2.md §2, §7.1): nn.Linear projections,
Mistral RMSNorm in eager PyTorch, attention through SDPA with rotate-half RoPE, KDA through fla's
`chunk_kda` (gate fused in: `use_gate_in_kernel=True`, q/k L2 norm in kernel), its three causal
convolutions through fla's Triton `causal_conv1d` (the HF module calls the `causal_conv1d`
package, not on the device machine; fla's kernel is the same operation), the output gate through
fla's `rms_norm_gated`. Weights are random bf16 (timing only).

Prints a markdown table: prefill of T tokens with logits for every token (as a plain HF forward
does) and with the last token's logits only (`logits_to_keep=1`, as `generate` does), medians of
CUDA-event-timed runs after warm-up (the first calls autotune fla's kernels).

  python3 scripts/bench_model_peer.py [--tokens 512,4096] [--reps 5]
"""
import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--tokens", default="512,4096")
ap.add_argument("--reps", type=int, default=5)
args = ap.parse_args()

from fla.modules.causal_conv1d import causal_conv1d  # noqa: E402
from fla.modules.fused_norm_gate import rms_norm_gated  # noqa: E402
from fla.ops.kda import chunk_kda  # noqa: E402

HIDDEN, VOCAB, HEADS, GROUPS, HEAD, INTER, CONV, EPS = 2048, 32000, 16, 4, 128, 4096, 4, 1e-5
PATTERN = (["kda"] * 3 + ["attn"]) * 6
THETA = 1.0e6
dev, dt = "cuda", torch.bfloat16
torch.manual_seed(0)


def lin(i, o):
    layer = nn.Linear(i, o, bias=False, device=dev, dtype=dt)
    nn.init.normal_(layer.weight, std=0.02)
    return layer


class RMSNorm(nn.Module):  # Mistral: f32 statistics, cast back, weight in the input dtype
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, device=dev, dtype=dt))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)
        return self.weight * xf.to(x.dtype)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = lin(HIDDEN, INTER), lin(HIDDEN, INTER), lin(INTER, HIDDEN)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj = lin(HIDDEN, HEADS * HEAD), lin(HIDDEN, GROUPS * HEAD)
        self.v_proj, self.o_proj = lin(HIDDEN, GROUPS * HEAD), lin(HEADS * HEAD, HIDDEN)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, HEADS, HEAD).transpose(1, 2)
        k = self.k_proj(x).view(b, t, GROUPS, HEAD).transpose(1, 2)
        v = self.v_proj(x).view(b, t, GROUPS, HEAD).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, HEADS * HEAD))


class KDA(nn.Module):
    def __init__(self):
        super().__init__()
        p = HEADS * HEAD
        self.q_proj, self.k_proj, self.v_proj = lin(HIDDEN, p), lin(HIDDEN, p), lin(HIDDEN, p)
        self.convs = [torch.randn(p, CONV, device=dev, dtype=dt) * 0.3 for _ in range(3)]
        self.f_a_proj, self.f_b_proj = lin(HIDDEN, HEAD), lin(HEAD, p)
        self.g_a_proj, self.g_b_proj = lin(HIDDEN, HEAD), lin(HEAD, p)
        self.beta_proj, self.o_proj = lin(HIDDEN, HEADS), lin(p, HIDDEN)
        self.A_log = torch.log(torch.empty(HEADS, device=dev).uniform_(1, 16))
        self.dt_bias = torch.ones(p, device=dev)
        self.norm_weight = torch.ones(HEAD, device=dev, dtype=dt)

    def forward(self, x):
        b, t, _ = x.shape
        qkv = []
        for proj, w in zip((self.q_proj, self.k_proj, self.v_proj), self.convs):
            y, _ = causal_conv1d(proj(x), weight=w, activation="silu")
            qkv.append(y.view(b, t, HEADS, HEAD))
        q, k, v = qkv
        f = self.f_b_proj(self.f_a_proj(x)).view(b, t, HEADS, HEAD)
        beta = self.beta_proj(x).float().sigmoid()
        o, _ = chunk_kda(q, k, v, f, beta, A_log=self.A_log, dt_bias=self.dt_bias, use_gate_in_kernel=True,
                         use_qk_l2norm_in_kernel=True)
        g = self.g_b_proj(self.g_a_proj(x)).view(b, t, HEADS, HEAD)
        o = rms_norm_gated(o, g, self.norm_weight, None, activation="swish", eps=EPS)
        return self.o_proj(o.reshape(b, t, HEADS * HEAD))


class Block(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(HIDDEN), RMSNorm(HIDDEN)
        self.mixer = KDA() if kind == "kda" else Attention()
        self.mlp = MLP()

    def forward(self, h, cos, sin):
        x = self.input_layernorm(h)
        h = h + (self.mixer(x) if self.kind == "kda" else self.mixer(x, cos, sin))
        return h + self.mlp(self.post_attention_layernorm(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN, device=dev, dtype=dt)
        self.layers = nn.ModuleList(Block(k) for k in PATTERN)
        self.norm, self.lm_head = RMSNorm(HIDDEN), lin(HIDDEN, VOCAB)

    def forward(self, ids, logits_to_keep=0):
        t = ids.shape[1]
        inv = 1.0 / (THETA ** (torch.arange(0, HEAD, 2, device=dev, dtype=torch.float32) / HEAD))
        ang = torch.outer(torch.arange(t, device=dev, dtype=torch.float32), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(dt), emb.sin().to(dt)
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, cos, sin)
        h = self.norm(h)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        return self.lm_head(h).float()


def timed(fn, reps):
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


model = Model().eval()
params = sum(p.numel() for p in model.parameters()) + sum(
    sum(w.numel() for w in m.mixer.convs) for m in model.layers if m.kind == "kda")
print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  params {params / 1e9:.3f} B")
print("| peer | prefill tokens | logits | median ms | ktok/s |")
print("|---|---|---|---|---|")
with torch.inference_mode():
    for t in [int(s) for s in args.tokens.split(",")]:
        ids = torch.randint(0, VOCAB, (1, t), device=dev)
        for keep, label in ((0, "all tokens"), (1, "last token")):
            for _ in range(3):  # autotuning and caches
                model(ids, keep)
            torch.cuda.synchronize()
            ms = timed(lambda: model(ids, keep), args.reps)
            print(f"| HF-style eager + fla (chunk_kda, SDPA) | {t} | {label} | {ms:.2f} | {t / ms:.1f} |")
assert math.isfinite(ms)
