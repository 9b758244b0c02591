#!/usr/bin/python3
"""Runs bench/lora_step for kotsu and PyTorch in one session (alternating, twice each; medians) and writes the
ratios of tokens/s and of peak resident memory (each process's ru_maxrss), float32 and bf16 base weights.
Targets (issue 8): >= 1.2x PyTorch's tokens/s and <= 0.8x its peak memory. PyTorch also runs tuned, under
jemalloc with kotsu's setting (freed pages kept), to show how much of the ratio is the allocator.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for every command alike (see shared/PLATFORM.md).
usage: run_lora_step.py BUILD_DIR [--out results.md] [--threads 2] [--steps 3] [--rounds 2] [--variants float32 bf16]"""
import argparse
import json
import os
import statistics
import subprocess

from machine import JEMALLOC, JEMALLOC_ENV, cpu_flags, cpu_line

HERE = os.path.dirname(os.path.abspath(__file__))


def native_bf16():
    """Whether the CPU has AVX512-BF16 or AMX-BF16 (else bf16 matmuls run in slow emulation)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def run(cmd, env):
    """The command's JSON line and its peak RSS in MiB."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed: {status}")
    r = json.loads(out.strip().splitlines()[-1])
    r["peak_rss_mib"] = usage.ru_maxrss / 1024
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--force-bf16", action="store_true", help="run bf16 even on a CPU without AVX512-BF16 (very slow)")
    ap.add_argument("--variants", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    common = ["--steps", str(a.steps), "--threads", str(a.threads)]
    rows, skipped = [], []
    for bf16 in [v == "bf16" for v in a.variants]:
        if bf16 and not a.force_bf16 and not native_bf16():
            skipped.append("bf16: skipped, this CPU has no AVX512-BF16 (bf16 matmuls are emulated: one kotsu step took 221 s against "
                           "4.7 s in float32 on the development machine, `build/bench/bench_lora_step --steps 1 --bf16`); --force-bf16 runs it")
            continue
        flag = ["--bf16"] if bf16 else []
        got = {"kotsu": [], "pytorch": [], "tuned": []}
        peer = ["/usr/bin/python3", os.path.join(HERE, "peer_lora_step.py")] + common + flag
        for _ in range(a.rounds):
            got["kotsu"].append(run([os.path.join(a.build, "bench", "bench_lora_step")] + common + flag, env))
            got["pytorch"].append(run(peer, env))
            if os.path.exists(JEMALLOC):
                got["tuned"].append(run(peer, dict(env, **JEMALLOC_ENV)))
        got = {k: v for k, v in got.items() if v}
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("tokens_per_second", "peak_rss_mib")} for k, v in got.items()}
        rows.append((bf16, med, got["kotsu"][0]["parameters"], got["kotsu"][0]["trainable"]))
    lines = ["# bench/lora_step", "",
             f"`/usr/bin/python3 bench/run_lora_step.py build --rounds {a.rounds}` ({a.threads} threads; {a.rounds} alternating runs of {a.steps} steps after a warm-up, medians)", "",
             cpu_line(), "",
             "| base weights | kotsu tokens/s | PyTorch tokens/s | ratio | kotsu peak RSS MiB | PyTorch peak RSS MiB | ratio |",
             "|---|---|---|---|---|---|---|"]
    for bf16, med, params, trainable in rows:
        k, p = med["kotsu"], med["pytorch"]
        lines.append(f"| {'bf16' if bf16 else 'float32'} | {k['tokens_per_second']:.0f} | {p['tokens_per_second']:.0f} | "
                     f"{k['tokens_per_second'] / p['tokens_per_second']:.2f}x | {k['peak_rss_mib']:.0f} | {p['peak_rss_mib']:.0f} | "
                     f"{k['peak_rss_mib'] / p['peak_rss_mib']:.2f}x |")
        if "tuned" in med:
            t = med["tuned"]
            lines.append(f"| {'bf16' if bf16 else 'float32'}, PyTorch under jemalloc (kept pages) | {k['tokens_per_second']:.0f} | "
                         f"{t['tokens_per_second']:.0f} | {k['tokens_per_second'] / t['tokens_per_second']:.2f}x | {k['peak_rss_mib']:.0f} | "
                         f"{t['peak_rss_mib']:.0f} | {k['peak_rss_mib'] / t['peak_rss_mib']:.2f}x |")
    lines += [""] + skipped
    lines += ["", f"Model: Llama-style, {rows[0][2] / 1e6:.1f}M parameters, {rows[0][3]} trainable (rank 8 on q_proj, v_proj); batch 4 x 256 tokens.",
              "Targets: >= 1.2x tokens/s and <= 0.8x peak memory."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
