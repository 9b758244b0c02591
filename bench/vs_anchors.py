#!/usr/bin/python3
"""bench/vs_anchors: few-shot text classification, kotsu against the tools a team would use instead, on the
same real encoder (all-MiniLM-L6-v2 from the PyPI package, assets/models) with the same splits and seeds.
Tasks (../shared/data/text):
  b77-5, b77-10, b77-20  BANKING77, 5/10/20 examples per intent drawn from train.csv with the seed; test.csv (3,080)
  b77-full               BANKING77, all of train.csv (10,003); test.csv
  sst2-100, sst2-500     SST-2, N sentences drawn from train.tsv with the seed; dev.tsv (872)
  sms-200                SMS spam, a stratified 80/20 split (seed 0); N = 200 drawn stratified from the 80% with
                         the seed; the 20% (1,115) tests
  sst2imb-200            imbalanced SST-2 (issue 27 part 4): 180 negative and 20 positive sentences drawn from
                         train.tsv with the seed; dev.tsv (balanced: 428/444) tests, so the minority's recall
                         counts as much as the majority's
Systems: hf_trainer, setfit, fastfit (bench/peer_fewshot.py, run by the bench environment's python: the
reference environment plus scripts/bench-requirements.txt), and kotsu_<strategy> (`kotsu train --strategy S`
with kotsu's defaults otherwise, then `kotsu eval`). Every system gets 2 threads. Variants of kotsu's options
run with --tag and --kotsu-args; those in bench/results: _nobal (--balance none, where the default
rebalances), _cw / _os (--balance class-weights / oversample), _holdout10 (the defaults before issue 27
part 3: 10% of the examples held out for early stopping; contrastive: up to 10 epochs), _e5 / _e10 / _e20
(contrastive for that many epochs; _e5 on sst2-100 is the default before 2026-12-08, whose rule of at least 64
optimizer steps gives 10 epochs at 100 examples and 5 from 200).
Recorded per run: test accuracy and macro-F1 (scikit-learn's definitions), the training process's wall
seconds (peers: their trainer.train() call, measured in-process; kotsu: the whole `kotsu train` process,
loading included), its CPU seconds (user + system, from wait4) and its peak resident memory (ru_maxrss).
Results are cached per task/seed/system in --cache, so an interrupted run continues; the table is printed and
written to --out.
usage: vs_anchors.py BUILD_DIR [--tasks ...] [--seeds 0 1 2] [--systems ...] [--python PY] [--threads 2]"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
MODEL = os.path.join(ROOT, "assets", "models", "all-MiniLM-L6-v2")
TASKS = ["b77-5", "b77-10", "b77-20", "sst2-100", "sst2-500", "sms-200", "b77-full", "sst2imb-200"]
PEERS = ["hf_trainer", "setfit", "fastfit"]
KOTSU = ["kotsu_head", "kotsu_full", "kotsu_lora", "kotsu_contrastive"]
sys.path.insert(0, HERE)
from transfer_text import read_sms, read_sst2, stratified_sample  # noqa: E402


def read_b77(name):
    import csv
    with open(os.path.join(SHARED, "data", "text", "banking77", name), encoding="utf-8", newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def splits(task, seed):
    name, size = task.rsplit("-", 1)
    rng = random.Random(seed)
    if name == "b77":
        pool, test = read_b77("train.csv"), read_b77("test.csv")
        if size == "full":
            train = list(pool)
        else:
            by = {}
            for r in pool:
                by.setdefault(r[1], []).append(r)
            train = [r for y in sorted(by) for r in rng.sample(by[y], int(size))]
        rng.shuffle(train)
        return train, test
    if name == "sst2":
        return rng.sample(read_sst2("train.tsv"), int(size)), read_sst2("dev.tsv")
    if name == "sst2imb":
        pool = read_sst2("train.tsv")
        pos = [r for r in pool if r[1] == "positive"]
        neg = [r for r in pool if r[1] == "negative"]
        n_pos = int(size) // 10
        train = rng.sample(neg, int(size) - n_pos) + rng.sample(pos, n_pos)
        rng.shuffle(train)
        return train, read_sst2("dev.tsv")
    rows = read_sms()
    test = stratified_sample(rows, round(0.2 * len(rows)), 0)
    taken = set(id(r) for r in test)
    return stratified_sample([r for r in rows if id(r) not in taken], int(size), seed), test


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for t, y in rows:
            f.write(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n")


def measured(cmd, log):
    """Runs cmd; returns (wall seconds, CPU seconds, peak RSS MiB) of the process and its children."""
    t0 = time.time()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = open(log, encoding="utf-8", errors="replace").read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{tail}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def scores(y_true, y_pred):
    from sklearn.metrics import accuracy_score, f1_score, recall_score
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
            "min_recall": float(min(recall_score(y_true, y_pred, average=None)))}


def run_peer(system, train, test, seed, a):
    tr, te, out = (os.path.join(a.work, f) for f in ("train.jsonl", "test.jsonl", "peer.json"))
    write_jsonl(tr, train)
    write_jsonl(te, test)
    env_cmd = ["env", f"OMP_NUM_THREADS={a.threads}", a.python, os.path.join(HERE, "peer_fewshot.py"), system, MODEL, tr, te,
               str(seed), str(a.threads), out]
    _, cpu, rss = measured(env_cmd, os.path.join(a.work, system + ".log"))
    got = json.load(open(out))
    r = scores([y for _, y in test], got["pred"])
    r.update({"train_seconds": round(got["train_seconds"], 1), "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(rss)})
    return r


def run_kotsu(system, train, test, seed, a):
    tr, te = os.path.join(a.work, "train.jsonl"), os.path.join(a.work, "test.jsonl")
    write_jsonl(tr, train)
    write_jsonl(te, test)
    out = os.path.join(a.work, system)
    subprocess.run(["rm", "-rf", out], check=True)
    kotsu = os.path.join(a.build, "kotsu")
    cmd = [kotsu, "train", "--model", MODEL, "--data", tr, "--out", out, "--seed", str(seed), "--threads", str(a.threads),
           "--strategy", system[len("kotsu_"):]] + a.kotsu_args
    wall, cpu, rss = measured(cmd, os.path.join(a.work, system + ".log"))
    rep = json.loads(subprocess.run([kotsu, "eval", "--run", out, "--data", te, "--json", "--threads", str(a.threads)],
                                    check=True, capture_output=True, text=True).stdout)
    run = json.load(open(os.path.join(out, "run.json")))
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"], "min_recall": min(c["recall"] for c in rep["per_class"].values()),
            "train_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(rss), "strategy": run["options"].get("strategy")}


def mean_sd(vals, fmt):
    if not vals:
        return "-"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{fmt.format(statistics.mean(vals))} ± {fmt.format(sd)}" if len(vals) > 1 else fmt.format(vals[0])


def table(cache, tasks, systems):
    lines = ["| task | system | seeds | accuracy | macro-F1 | min recall | train s | CPU s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
    for t in tasks:
        for s in systems:
            runs = [v for k, v in sorted(cache.items()) if k.startswith(t + "/") and k.endswith("/" + s)]
            if not runs:
                continue
            cells = [mean_sd([r[k] * 100 for r in runs], "{:.1f}") for k in ("accuracy", "macro_f1")]
            cells.append(mean_sd([r["min_recall"] * 100 for r in runs if "min_recall" in r], "{:.1f}"))  # recorded since 2026-12-07 evening
            cells += [mean_sd([r[k] for r in runs], "{:.0f}") for k in ("train_seconds", "cpu_seconds", "peak_rss_mb")]
            lines.append(f"| {t} | {s} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--systems", nargs="+", default=PEERS + KOTSU)
    ap.add_argument("--python", default=os.path.join(ROOT, "assets", "benchenv", "bin", "python"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kotsu-args", nargs=argparse.REMAINDER, default=[], help="appended to every kotsu train command (last)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "results", "vs_anchors.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "vs_anchors.md"))
    ap.add_argument("--work", default="/tmp/kotsu-vs-anchors")
    ap.add_argument("--tag", default="", help="suffix for the systems' names in the cache (a variant of kotsu's options)")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")) or not os.path.isdir(os.path.join(SHARED, "data", "text")):
        print("bench/vs_anchors: assets/models/all-MiniLM-L6-v2 (scripts/setup) or ../shared/data/text not found; skipped")
        return
    os.makedirs(a.work, exist_ok=True)
    cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
    for task in a.tasks:
        for seed in a.seeds:
            train, test = splits(task, seed)
            for s in a.systems:
                key = f"{task}/{seed}/{s}{a.tag}"
                if key in cache:
                    continue
                r = (run_kotsu if s.startswith("kotsu_") else run_peer)(s, train, test, seed, a)
                r["date"] = time.strftime("%Y-%m-%d")
                if a.kotsu_args and s.startswith("kotsu_"):
                    r["kotsu_args"] = a.kotsu_args
                # re-read before writing: another run of this script (peers and kotsu side by side) may have added keys
                cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
                cache[key] = r
                print(f"{key}: accuracy {r['accuracy']:.4f} macro_f1 {r['macro_f1']:.4f} train {r['train_seconds']}s "
                      f"cpu {r['cpu_seconds']}s rss {r['peak_rss_mb']} MB", flush=True)
                tmp = a.cache + ".tmp"
                json.dump(cache, open(tmp, "w"), indent=1, sort_keys=True)
                os.replace(tmp, a.cache)
    systems = sorted({k.split("/", 2)[2] for k in cache}, key=lambda s: (not s.startswith(tuple(PEERS)), s))
    md = ["# bench/vs_anchors: few-shot text classification against HF Trainer, SetFit and FastFit", "",
          "all-MiniLM-L6-v2 for every system; mean ± std over the seeds run. accuracy, macro-F1 and min recall (the "
          "lowest per-class recall, over the runs that recorded it) in %; train s: "
          "wall seconds of training; CPU s: user + system seconds of the training process; peak RSS of that process. "
          "Made by `/usr/bin/python3 bench/vs_anchors.py build` (splits and systems: the script's docstring); each run's "
          "date is in vs_anchors.json (runs that overlapped on a shared machine have inflated wall seconds).", "",
          table(cache, [t for t in TASKS if any(k.startswith(t + "/") for k in cache)], systems), ""]
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
