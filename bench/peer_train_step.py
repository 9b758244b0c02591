#!/usr/bin/python3
"""Benchmark peer: one BERT-classifier training step in Python PyTorch (python3-torch), as a user would write
it: the same module structure as Hugging Face's BertForSequenceClassification (eager attention), AdamW with
decoupled weight decay (none on biases/LayerNorm), gradient clipping, optional bf16 autocast.
Prints one JSON line: {"ms": median ms per step, ...}."""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, heads, inter, p):
        super().__init__()
        self.heads, self.d, self.p = heads, h // heads, p
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out, self.attn_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=1e-12)
        self.inter, self.out, self.out_norm = nn.Linear(h, inter), nn.Linear(inter, h), nn.LayerNorm(h, eps=1e-12)

    def forward(self, x, bias):
        B, T, H = x.shape
        s = lambda t: t.view(B, T, self.heads, self.d).permute(0, 2, 1, 3)  # noqa: E731
        q, k, v = s(self.query(x)), s(self.key(x)), s(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + bias
        probs = F.dropout(torch.softmax(scores, -1), self.p, self.training)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(B, T, H)
        a = self.attn_norm(F.dropout(self.attn_out(ctx), self.p, self.training) + x)
        return self.out_norm(F.dropout(self.out(F.gelu(self.inter(a))), self.p, self.training) + a)


class Bert(nn.Module):
    def __init__(self, vocab, h, layers, heads, inter, labels=2, p=0.1):
        super().__init__()
        self.word = nn.Embedding(vocab, h, padding_idx=0)
        self.pos, self.tt = nn.Embedding(512, h), nn.Embedding(2, h)
        self.norm = nn.LayerNorm(h, eps=1e-12)
        self.layers = nn.ModuleList([Layer(h, heads, inter, p) for _ in range(layers)])
        self.pooler, self.classifier, self.p = nn.Linear(h, h), nn.Linear(h, labels), p

    def forward(self, ids, mask):
        T = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(T).unsqueeze(0)) + self.tt(torch.zeros_like(ids))
        x = F.dropout(self.norm(x), self.p, self.training)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(F.dropout(pooled, self.p, self.training))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--active", type=int, default=4000, help="distinct token ids the batches draw from")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Bert(a.vocab, a.hidden, a.layers, a.heads, 4 * a.hidden)
    model.train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "norm" in n)]
    plain = [p for n, p in model.named_parameters() if n.endswith("bias") or "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}], lr=2e-5)
    g = torch.Generator().manual_seed(1)
    active = torch.randperm(a.vocab - 1000, generator=g)[: a.active] + 1000
    times = []
    for step in range(a.warmup + a.steps):
        ids = active[torch.randint(0, a.active, (a.batch, a.seq), generator=g)]
        mask = torch.ones(a.batch, a.seq, dtype=torch.long)
        labels = torch.randint(0, 2, (a.batch,), generator=g)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(ids, mask)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt * 1000)
    print(json.dumps({"peer": "pytorch", "ms": statistics.median(times), "bf16": a.bf16, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
