#!/usr/bin/python3
"""Data-parallel training on this machine (make bench): kotsu with 1 process x 2 threads against 2 processes x
1 thread at the same global batch, beside the peer, PyTorch (Debian python3-torch) in the same two shapes
(plain, and DistributedDataParallel on Gloo); then the all-reduce bandwidth of kotsu's worker group
(bench/allreduce, c10d Gloo) beside torch.distributed.all_reduce (the same engine, from Python).
Model: a BERT classifier of 4 layers, hidden 256, 4 heads, intermediate 1024, random weights (--init
random; the tiny fixture's tokenizer); data: 2048 rows of 62 vocabulary words (64 tokens each), so every
batch is the peer's shape. kotsu's examples/s is its second epoch's (run.json, training time only); the
peer's is the median step. Variants are interleaved and repeated; medians are printed.
usage: ddp.py BUILD_DIR [--reps N] [--out results.md]"""
import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = {"hidden": 256, "layers": 4, "heads": 4, "inter": 1024}
SEQ, ROWS, GLOBAL_BATCH = 64, 2048, 32
BUCKETS = (1, 4, 25)  # --bucket-mb values compared
GRAD_MIB = 0.0


def gradient_mib(vocab):
    h, L, i = MODEL["hidden"], MODEL["layers"], MODEL["inter"]
    layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h
    params = (vocab + 128 + 2) * h + 2 * h + L * layer + h * h + h + 2 * h + 2
    return params * 4 / 1048576


def env(extra=None):
    e = dict(os.environ)
    e.pop("OPENBLAS_CORETYPE", None)
    e.pop("OPENBLAS_L2_SIZE", None)
    for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_WORLD_SIZE", "KOTSU_WORKER"):
        e.pop(k, None)
    if extra:
        e.update(extra)
    return e


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def workers(cmd, n, extra_env=None):
    """Runs cmd as n processes with torchrun's variables; returns rank 0's last stdout line as JSON."""
    port = free_port()
    procs = []
    for r in range(n):
        e = env({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(n), "RANK": str(r),
                 "OMP_NUM_THREADS": "1", **(extra_env or {})})
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e))
    outs = [p.communicate() for p in procs]
    for p, (o, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit("%s failed: %s" % (" ".join(cmd), err.strip()[-2000:]))
    return json.loads(outs[0][0].strip().splitlines()[-1])


def make_model_and_data(build, tmp):
    fixture = os.path.join(build, "fixtures", "tiny_bert_init")
    if not os.path.isdir(fixture):
        raise SystemExit("bench/ddp: %s missing; build the fixtures first (make test makes them)" % fixture)
    model = os.path.join(tmp, "model")
    shutil.copytree(fixture, model)
    os.remove(os.path.join(model, "model.safetensors"))
    cfg = json.load(open(os.path.join(model, "config.json")))
    cfg.update({"hidden_size": MODEL["hidden"], "num_hidden_layers": MODEL["layers"], "num_attention_heads": MODEL["heads"],
                "intermediate_size": MODEL["inter"], "max_position_embeddings": 128})
    json.dump(cfg, open(os.path.join(model, "config.json"), "w"), indent=2)
    vocab = [w.strip() for w in open(os.path.join(model, "vocab.txt"))]
    words = [w for w in vocab if w.isalpha() and w.islower() and len(w) > 1]
    rng = random.Random(0)
    data = os.path.join(tmp, "train.csv")
    with open(data, "w") as f:
        f.write("text,label\n")
        for i in range(ROWS):
            f.write("%s,%s\n" % (" ".join(rng.choice(words) for _ in range(SEQ - 2)), "ab"[i % 2]))
    return model, data, cfg["vocab_size"]


def kotsu_run(build, model, data, tmp, nproc, bucket_mb=None):
    out = tempfile.mkdtemp(dir=tmp)
    shutil.rmtree(out)
    cmd = [os.path.join(build, "kotsu"), "train", "--model", model, "--data", data, "--out", out, "--init", "random",
           "--validation", "false", "--epochs", "2", "--max-len", str(SEQ), "--head-first", "false", "--quiet",
           "--batch-size", str(GLOBAL_BATCH // nproc), "--threads", str(2 // nproc)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    if bucket_mb:
        cmd += ["--bucket-mb", str(bucket_mb)]
    subprocess.run(cmd, check=True, env=env(), capture_output=True, text=True)
    last = json.load(open(os.path.join(out, "run.json")))["history"][-1]
    shutil.rmtree(out)
    if bucket_mb:
        return last["examples_per_second"], last["gradient_buckets"], last["allreduce_wait_ms_per_step"]
    return last["examples_per_second"]


def peer_run(vocab, nproc):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "peer_ddp.py"), "train", "--vocab", str(vocab), "--seq", str(SEQ),
           "--batch", str(GLOBAL_BATCH // nproc), "--threads", str(2 // nproc)] + \
          sum([["--" + k, str(v)] for k, v in MODEL.items()], [])
    return workers(cmd, nproc, {"GLOO_SOCKET_IFNAME": "lo"})["examples_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ddp.md"))
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="kotsu-bench-ddp-")
    try:
        model, data, vocab = make_model_and_data(build, tmp)
        global GRAD_MIB
        GRAD_MIB = gradient_mib(vocab)
        res = {k: [] for k in ("kotsu1", "kotsu2", "peer1", "peer2")}
        buckets = {mb: [] for mb in BUCKETS}
        bucket_counts = {}
        for rep in range(a.reps):
            res["kotsu1"].append(kotsu_run(build, model, data, tmp, 1))
            res["kotsu2"].append(kotsu_run(build, model, data, tmp, 2))
            res["peer1"].append(peer_run(vocab, 1))
            res["peer2"].append(peer_run(vocab, 2))
            for mb in BUCKETS:
                ex, n, wait = kotsu_run(build, model, data, tmp, 2, mb)
                buckets[mb].append(ex)
                bucket_counts.setdefault(mb, (n, []))[1].append(wait)
            print("rep %d: %s %s" % (rep, {k: round(v[-1], 1) for k, v in res.items()}, {k: round(v[-1], 1) for k, v in buckets.items()}),
                  file=sys.stderr)
        med = {k: statistics.median(v) for k, v in res.items()}
        ar_kotsu = workers([os.path.join(build, "bench", "bench_allreduce")], 2)
        # the peer on the interface kotsu's local group uses (loopback), so both measure the same path
        ar_peer = workers(["/usr/bin/python3", os.path.join(HERE, "peer_ddp.py"), "allreduce"], 2, {"GLOO_SOCKET_IFNAME": "lo"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = ["# bench/ddp, %s" % time.strftime("%Y-%m-%d"),
             "command: `/usr/bin/python3 bench/ddp.py build` (%d repetitions, medians; %d CPU cores)" % (a.reps, os.cpu_count()),
             "",
             "BERT classifier, 4 layers, hidden 256, 4 heads, intermediate 1024, sequences of %d tokens, %d examples per step, "
             "AdamW + clip; training examples/s" % (SEQ, GLOBAL_BATCH),
             "",
             "| shape | kotsu | PyTorch | kotsu vs PyTorch |",
             "|---|---|---|---|",
             "| 1 process x 2 threads, batch %d | %.1f | %.1f | %.2fx |" % (GLOBAL_BATCH, med["kotsu1"], med["peer1"], med["kotsu1"] / med["peer1"]),
             "| 2 processes x 1 thread, batch %d each (PyTorch: DDP) | %.1f | %.1f | %.2fx |" % (
                 GLOBAL_BATCH // 2, med["kotsu2"], med["peer2"], med["kotsu2"] / med["peer2"]),
             "| 2x1 vs 1x2 | %.2fx | %.2fx | |" % (med["kotsu2"] / med["kotsu1"], med["peer2"] / med["peer1"]),
             "",
             "Gradient bucket size, kotsu 2 processes x 1 thread (%.1f MiB of gradients per step, step about %.0f ms): examples/s, and the "
             "time per step spent waiting for gradient sums after the backward pass (the communication it did not hide; run.json's "
             "allreduce_wait_ms_per_step, rank 0)" % (GRAD_MIB, 1000 * GLOBAL_BATCH / statistics.median(res["kotsu2"])),
             "",
             "| --bucket-mb | buckets | wait after backward, ms per step | examples/s |",
             "|---|---|---|---|"] + [
             "| %d | %d | %.1f | %.1f |" % (mb, bucket_counts[mb][0], statistics.median(bucket_counts[mb][1]), statistics.median(buckets[mb]))
             for mb in BUCKETS] + [
             "",
             "All-reduce of one float32 buffer over 2 processes on this machine (Gloo over loopback TCP, both on the `lo` "
             "interface): median ms and algorithm bandwidth (bytes / time)",
             "",
             "| bytes | kotsu ms | kotsu GB/s | torch.distributed ms | torch.distributed GB/s | kotsu vs torch.distributed |",
             "|---|---|---|---|---|---|"]
    for k, p in zip(ar_kotsu["sizes"], ar_peer["sizes"]):
        lines.append("| %s | %.3f | %.3f | %.3f | %.3f | %.2fx |" % (format(k["bytes"], ","), k["ms"], k["gb_per_s"], p["ms"], p["gb_per_s"],
                                                                  p["ms"] / k["ms"]))
    lines.append("")
    lines.append("raw: " + json.dumps({**res, **{"bucket_mb_%d" % k: v for k, v in buckets.items()}}))
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
