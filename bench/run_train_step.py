#!/usr/bin/python3
"""Runs bench/train_step for kotsu and its peers in one session and prints ratios (make bench).

Peers, same model, same step (forward, cross-entropy, backward, clip 1.0, AdamW), same thread count:
  pytorch         Python PyTorch (Debian python3-torch), as a user runs it (default allocator)
  pytorch+jemalloc  the same with libjemalloc preloaded, for fairness
  libtorch        plain libtorch C++: torch::dropout, dense gradients, torch::optim::AdamW
Variants are interleaved and repeated; each number is the median over repetitions of per-run medians.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for every command alike (see shared/PLATFORM.md).
usage: run_train_step.py BUILD_DIR [--quick] [--out results.md]"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def env():
    e = dict(os.environ)
    e.pop("OPENBLAS_CORETYPE", None)
    e.pop("OPENBLAS_L2_SIZE", None)
    return e


def run_json(cmd, extra_env=None):
    e = env()
    if extra_env:
        e.update(extra_env)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=e).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_peak():
    info = open("/proc/cpuinfo").read()
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split())
    mhz = max(float(x) for x in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M))
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    cores = os.cpu_count()
    return cores * 2 * lanes * 2 * mhz / 1000, lanes, mhz, "avx512_bf16" in flags


def sgemm_rate(threads):
    code = ("import torch,time;torch.set_num_threads(%d);a=torch.randn(2048,2048);b=torch.randn(2048,2048)\n"
            "for _ in range(5): a@b\nt=time.perf_counter()\nfor _ in range(10): a@b\n"
            "print(2*2048**3*10/(time.perf_counter()-t)/1e9)") % threads
    return float(subprocess.run(["/usr/bin/python3", "-c", code], check=True, capture_output=True, text=True, env=env()).stdout)


def bf16_rate(threads):
    code = ("import torch,time;torch.set_num_threads(%d);a=torch.randn(1024,1024).bfloat16();b=torch.randn(1024,1024).bfloat16()\n"
            "for _ in range(2): a@b\nt=time.perf_counter()\nfor _ in range(3): a@b\n"
            "print(2*1024**3*3/(time.perf_counter()-t)/1e9)") % threads
    return float(subprocess.run(["/usr/bin/python3", "-c", code], check=True, capture_output=True, text=True, env=env()).stdout)


def step_flops(h, layers, batch=16, seq=128):
    inter = 4 * h
    fwd = layers * (2 * batch * seq * (4 * h * h + 2 * h * inter) + 2 * 2 * batch * seq * seq * h)
    return 3 * fwd


def main():
    build = sys.argv[1]
    quick = "--quick" in sys.argv
    out_path = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    threads = os.cpu_count()
    exe = os.path.join(build, "bench", "bench_train_step")
    peer = os.path.join(HERE, "peer_train_step.py")
    peak, lanes, mhz, has_bf16 = cpu_peak()
    sgemm = sgemm_rate(threads)
    lines = [f"# bench/train_step, {time.strftime('%Y-%m-%d')}",
             f"command: `python3 bench/run_train_step.py {build}{' --quick' if quick else ''}` ({threads} threads)",
             f"CPU: {threads} cores, {lanes}-lane FMA, {mhz:.0f} MHz: nominal fp32 peak {peak:.0f} GFLOP/s; "
             f"measured sgemm 2048^3 {sgemm:.0f} GFLOP/s", ""]
    configs = [("tiny (2 layers, hidden 128, 2 heads)", 128, 2, 30 if not quick else 10, 5, 3 if not quick else 1),
               ("base-size layers (2 layers, hidden 768, 12 heads)", 768, 12, 8 if not quick else 3, 2, 2 if not quick else 1)]
    lines.append("| model | kotsu ms | libtorch ms | PyTorch ms | PyTorch+jemalloc ms | kotsu vs PyTorch | vs PyTorch+jemalloc | vs libtorch | kotsu GFLOP/s | % nominal peak | % sgemm |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, h, heads, steps, warm, reps in configs:
        res = {"kotsu": [], "libtorch": [], "pytorch": [], "pytorch+jemalloc": []}
        common = ["--hidden", str(h), "--heads", str(heads), "--steps", str(steps), "--warmup", str(warm), "--threads", str(threads)]
        for _ in range(reps):
            res["kotsu"].append(run_json([exe, "--variant", "kotsu"] + common)["ms"])
            res["pytorch"].append(run_json(["/usr/bin/python3", peer] + common)["ms"])
            res["libtorch"].append(run_json([exe, "--variant", "libtorch"] + common)["ms"])
            res["pytorch+jemalloc"].append(run_json(["/usr/bin/python3", peer] + common, {"LD_PRELOAD": JEMALLOC})["ms"])
        m = {k: statistics.median(v) for k, v in res.items()}
        gflops = step_flops(h, 2) / (m["kotsu"] / 1000) / 1e9
        lines.append(f"| {name} | {m['kotsu']:.1f} | {m['libtorch']:.1f} | {m['pytorch']:.1f} | {m['pytorch+jemalloc']:.1f} | "
                     f"{m['pytorch'] / m['kotsu']:.2f}x | {m['pytorch+jemalloc'] / m['kotsu']:.2f}x | {m['libtorch'] / m['kotsu']:.2f}x | "
                     f"{gflops:.0f} | {100 * gflops / peak:.0f}% | {100 * gflops / sgemm:.0f}% |")
        print(lines[-1], flush=True)
    lines.append("")
    head = run_json([exe, "--head-epoch", "--threads", str(threads), "--epochs", "2" if quick else "3"])
    lines.append(f"head strategy, {head['examples']} examples of 128 tokens, tiny model: epoch without feature cache "
                 f"{head['uncached_epoch_s']:.3f} s, with cache {head['cached_epoch_s'] * 1000:.1f} ms "
                 f"(**{head['uncached_epoch_s'] / head['cached_epoch_s']:.0f}x**; the cache costs one encoder pass, "
                 f"{head['encode_once_s']:.3f} s, once)")
    # bf16 autocast step, tiny model: kotsu --bf16 vs PyTorch's torch.autocast(bfloat16), same step otherwise.
    # Without AVX512-BF16 both run emulated bf16 matmuls, so only the ratio means anything there.
    common = ["--hidden", "128", "--heads", "2", "--steps", "4" if quick else "8", "--warmup", "2", "--threads", str(threads), "--bf16"]
    kb, pb = [], []
    for _ in range(1 if quick else 3):
        kb.append(run_json([exe, "--variant", "kotsu"] + common)["ms"])
        pb.append(run_json(["/usr/bin/python3", peer] + common)["ms"])
    kb, pb = statistics.median(kb), statistics.median(pb)
    lines.append(f"bf16 autocast step, tiny model: kotsu --bf16 {kb:.1f} ms vs PyTorch autocast {pb:.1f} ms (**{pb / kb:.2f}x**)"
                 + ("" if has_bf16 else f"; this CPU has no AVX512-BF16, so bf16 matmuls are emulated ({bf16_rate(threads):.1f} "
                    f"GFLOP/s for a 1024^3 bf16 matmul against {sgemm:.0f} in float32) and both bf16 steps are slower than float32 here"))
    text = "\n".join(lines) + "\n"
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
