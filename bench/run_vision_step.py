#!/usr/bin/python3
"""Runs bench/vision_step for kotsu and PyTorch + torchvision in one session (make bench) and writes the
ratios: images/s of a ResNet-18 training step (batch 32, 224x224) and of the picture pipeline alone
(decode + augment, the same number of workers), on 128 generated 500x375 JPEG photos-like pictures.
Variants alternate, twice each; each number is the median of the runs. The step is also run for a tuned
peer: PyTorch with the model and batch channels-last and jemalloc preloaded with kotsu's setting (freed pages
kept), the two things kotsu does by default, to show how much of the ratio they are.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for every command alike (see shared/PLATFORM.md).
usage: run_vision_step.py BUILD_DIR [--out results.md] [--threads 2]"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

from machine import JEMALLOC, JEMALLOC_ENV, cpu_line

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--out")
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
env = dict(os.environ)
env.pop("OPENBLAS_CORETYPE", None)
env.pop("OPENBLAS_L2_SIZE", None)


tuned_env = dict(env, **JEMALLOC_ENV)


def run(cmd, e=env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=e).stdout
    return json.loads(out.strip().splitlines()[-1])


with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(0)
    for i in range(128):  # smooth colour fields with noise: JPEG sizes like photos (~40-80 KB)
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((500, 375), Image.BICUBIC)
        arr = np.clip(np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (375, 500, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(os.path.join(d, f"{i:03d}.jpg"), quality=90)
    kotsu = [os.path.join(a.build, "bench", "bench_vision_step")]
    peer = ["/usr/bin/python3", os.path.join(HERE, "peer_vision_step.py")]
    res = {}
    for rep in range(2):
        for name, base in (("kotsu", kotsu), ("pytorch", peer)):
            s = run(base + ["step", "--threads", str(a.threads)])
            l = run(base + ["loader", d, "--workers", str(a.threads)])
            res.setdefault((name, "step"), []).append(s["images_per_second"])
            res.setdefault((name, "loader"), []).append(l["images_per_second"])
        if os.path.exists(JEMALLOC):
            t = run(peer + ["step", "--threads", str(a.threads), "--channels-last"], tuned_env)
            res.setdefault(("tuned", "step"), []).append(t["images_per_second"])
    med = {k: statistics.median(v) for k, v in res.items()}
    lines = ["# bench/vision_step", "",
             f"`/usr/bin/python3 bench/run_vision_step.py build` ({a.threads} threads / workers; 2 alternating runs, medians)", "",
             cpu_line(), "",
             "| | kotsu images/s | PyTorch + torchvision images/s | ratio |", "|---|---|---|---|"]
    for mode, label in (("step", "ResNet-18 training step, batch 32, 224x224"),
                        ("loader", "picture pipeline: JPEG decode + random resized crop + flip + jitter")):
        k, p = med[("kotsu", mode)], med[("pytorch", mode)]
        lines.append(f"| {label} | {k:.1f} | {p:.1f} | {k / p:.2f}x |")
    if ("tuned", "step") in med:
        k, p = med[("kotsu", "step")], med[("tuned", "step")]
        lines.append(f"| ResNet-18 step vs PyTorch channels-last + jemalloc (kept pages) | {k:.1f} | {p:.1f} | {k / p:.2f}x |")
    k_loader, k_step = med[("kotsu", "loader")], med[("kotsu", "step")]
    lines += ["", f"kotsu's pipeline delivers {k_loader / k_step:.1f}x the pictures its training step consumes."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)
