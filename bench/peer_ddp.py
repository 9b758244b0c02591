#!/usr/bin/python3
"""Benchmark peer for bench/ddp.py: PyTorch (Debian python3-torch) data-parallel training and all-reduce on
the same c10d Gloo engine kotsu uses. Run once per worker with torchrun's variables (MASTER_ADDR,
MASTER_PORT, WORLD_SIZE, RANK); WORLD_SIZE 1 runs one process without DDP.
  peer_ddp.py train --batch B --seq T --threads N ...   BERT classifier steps (bench/peer_train_step.py's
                                                        model) under DistributedDataParallel
  peer_ddp.py allreduce                                 torch.distributed.all_reduce bandwidth
Rank 0 prints one JSON line."""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_train_step import Bert  # noqa: E402


def allreduce():
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    sizes = []
    warm = torch.ones(1 << 18)
    for _ in range(20):  # connections and buffers set up before timing
        dist.all_reduce(warm)
    b = 1 << 12
    while b <= 64 << 20:
        t = torch.ones(b // 4)
        reps = 5 if b >= 16 << 20 else 20
        ms = []
        for i in range(reps + 2):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            if i >= 2:
                ms.append((time.perf_counter() - t0) * 1000)
        med = statistics.median(ms)
        sizes.append({"bytes": b, "ms": med, "gb_per_s": b / (med / 1000) / 1e9})
        b *= 4
    if dist.get_rank() == 0:
        print(json.dumps({"workers": dist.get_world_size(), "sizes": sizes}))
    dist.destroy_process_group()


def train(a):
    torch.set_num_threads(a.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = Bert(a.vocab, a.hidden, a.layers, a.heads, a.inter)
    model.train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)
    named = list(model.named_parameters())
    decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
    plain = [p for n, p in named if n.endswith("bias") or "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}], lr=2e-5)
    g = torch.Generator().manual_seed(1 + rank)
    times = []
    for step in range(a.warmup + a.steps):
        ids = torch.randint(1, a.vocab, (a.batch, a.seq), generator=g)
        mask = torch.ones(a.batch, a.seq, dtype=torch.long)
        labels = torch.randint(0, 2, (a.batch,), generator=g)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(ids, mask).float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    if rank == 0:
        print(json.dumps({"peer": "pytorch-ddp" if world > 1 else "pytorch", "workers": world, "threads": a.threads,
                          "examples_per_second": world * a.batch / statistics.median(times), "torch": torch.__version__}))
    if world > 1:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "allreduce"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--inter", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=182)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    allreduce() if a.mode == "allreduce" else train(a)


if __name__ == "__main__":
    main()
