#!/usr/bin/python3
"""The peer of bench/lora_step: the same Llama-style model (hidden 768, 12 layers, 12 heads, SwiGLU 2048,
vocabulary 16000, tied embeddings, random weights) and LoRA step (rank 8 on q_proj and v_proj, alpha 16,
dropout 0.05; batch 4 x 256; next-token loss; backward; AdamW on the adapters) in PyTorch (Debian
python3-torch 1.13), written by hand as modeling_llama.py's eager path and PEFT's lora.Linear compute it
(PEFT is not packaged). --bf16: the frozen base in bf16, adapters float32. Prints one JSON line.
usage: peer_lora_step.py [--steps 3] [--threads 2] [--bf16]"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

V, H, L, HEADS, I, SEQ, BATCH = 16000, 768, 12, 12, 2048, 256, 4


class LoraLinear(torch.nn.Module):
    def __init__(self, base, r=8, alpha=16, dropout=0.05):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = torch.nn.Linear(base.in_features, r, bias=False)
        self.lora_B = torch.nn.Linear(r, base.out_features, bias=False)
        torch.nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x):
        y = self.base(x)
        return y + (self.lora_B(self.lora_A(self.dropout(x.to(self.lora_A.weight.dtype)))) * self.scaling).to(y.dtype)


def rms(x, w, eps=1e-6):
    t = x.float()
    return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)  # noqa: E731
        self.q, self.k, self.v, self.o = LoraLinear(lin(H, H)), lin(H, H), LoraLinear(lin(H, H)), lin(H, H)
        self.gate, self.up, self.down = lin(H, I), lin(H, I), lin(I, H)
        self.n1, self.n2 = torch.nn.Parameter(torch.ones(H)), torch.nn.Parameter(torch.ones(H))

    def forward(self, x, cos, sin, causal):
        B, T, _ = x.shape
        d = H // HEADS
        h = rms(x, self.n1)
        q = self.q(h).view(B, T, HEADS, d).transpose(1, 2)
        k = self.k(h).view(B, T, HEADS, d).transpose(1, 2)
        v = self.v(h).view(B, T, HEADS, d).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        a = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d)
        a = a.masked_fill(~causal, torch.finfo(a.dtype).min)
        a = torch.softmax(a.float(), -1).to(q.dtype)
        x = x + self.o(torch.matmul(a, v).transpose(1, 2).reshape(B, T, H))
        m = rms(x, self.n2)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(L))
        self.norm = torch.nn.Parameter(torch.ones(H))

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed(ids)
        d = H // HEADS
        inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float) / d))
        f = torch.arange(T, dtype=torch.float)[:, None] * inv[None]
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos().to(x.dtype)[None, None], emb.sin().to(x.dtype)[None, None]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None]
        for layer in self.layers:
            x = layer(x, cos, sin, causal)
        return F.linear(rms(x, self.norm), self.embed.weight)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model()
    for p in model.parameters():
        p.requires_grad_(False)
    for mod in model.modules():
        if isinstance(mod, LoraLinear):
            mod.lora_A.weight.requires_grad_(True)
            mod.lora_B.weight.requires_grad_(True)
    if a.bf16:
        for name, p in model.named_parameters():
            if "lora_" not in name:
                p.data = p.data.to(torch.bfloat16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    model.train()
    ids = torch.randint(0, V, (BATCH, SEQ))
    labels = torch.full((BATCH, SEQ), -100)
    labels[:, :-1] = ids[:, 1:]
    times = []
    for s in range(a.steps + 1):
        t = time.time()
        logits = model(ids)
        loss = F.cross_entropy(logits.float().reshape(-1, V), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if s >= 1:
            times.append(time.time() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"variant": "pytorch", "bf16": a.bf16, "parameters": sum(p.numel() for p in model.parameters()),
                      "trainable": sum(p.numel() for p in params), "seconds_per_step": round(med, 3),
                      "tokens_per_second": round(BATCH * SEQ / med, 1)}))


if __name__ == "__main__":
    main()
