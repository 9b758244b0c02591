#!/usr/bin/python3
"""bench/transfer_vision: does fine-tuning a real ImageNet-trained CNN beat a frozen-feature classifier and
training from scratch when only a few labelled pictures exist? Models: MobileNet V2 1.0 (imported with `kotsu
import tflite` from ../shared/models/coral-mobilenet/mobilenet_v2_1.0_224_quant.tflite) and Darknet-Tiny
(`kotsu import tfjs` from ../shared/models/darknet-tiny). Both run at --image-size (default 96: CIFAR pictures
are 32x32, and 96 px costs a fifth of 224 px on a CPU).
Datasets:
  cifar10  ../shared/data/image/cifar10: K pictures per class drawn with the seed from the 500 per class of
           train/ (K = 500 takes them all; the seed then changes the split, order and initialisation);
           scored on test/ (1,000 pictures, 100 per class).
  fmnist   Debian dataset-fashion-mnist: K per class drawn with the seed from the first 500 per class of the
           60,000 training pictures; scored on the first 200 per class of the 10,000 test pictures (2,000); written as PNG files.
Methods (per model):
  frozen_lr     `kotsu embed` features (pooled, eval transform) + standardisation + logistic regression,
                C by 3-fold CV (python3-sklearn LogisticRegressionCV); sees all K per class
  head          kotsu train --strategy head (L-BFGS head on cached features, L2 by CV)
  partial       kotsu train --strategy partial --unfreeze 3 --lr 5e-4 (head fitted first)
  full          kotsu train --strategy full --lr 2e-4 (head fitted first; batch norms frozen)
  scratch       kotsu train --strategy full --init random --lr 2e-3 (same network, batch norms trained)
kotsu's runs hold out 10% of the pictures for early stopping (patience 3) and the best checkpoint; batch 32;
augmentation on (random resized crop, flips, colour jitter); epochs 15 at K=10, 8 at K=50 and K=100, 3 at
K=500. Results are cached per run in --cache, so an interrupted run continues.
usage: transfer_vision.py BUILD_DIR [--k 10 50 500] [--seeds 0 1 2] [--datasets cifar10 fmnist]
       [--models mobilenet_v2 darknet] [--methods ...] [--image-size 96] [--threads 2]"""
import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
CIFAR = os.path.join(SHARED, "data", "image", "cifar10")
FMNIST = "/usr/share/datasets/fashion-mnist"
FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
METHODS = ["frozen_lr", "head", "partial", "full", "scratch"]
EPOCHS = {10: 15, 50: 8, 100: 8, 500: 3}
DEFAULT_K = {"cifar10": [10, 50, 500], "fmnist": [100]}


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("path,label\n")
        for p, y in rows:
            f.write(f"{p},{y}\n")


def cifar_rows(split):
    root = os.path.join(CIFAR, split)
    return [(os.path.join(root, c, n), c) for c in sorted(os.listdir(root)) for n in sorted(os.listdir(os.path.join(root, c)))]


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fmnist_rows(work):
    """The Fashion-MNIST pictures used here as PNG files: 500 per class of the training set (the pool; the
    first 500 per class in file order), the first 200 per class of the test set."""
    from PIL import Image
    out = {}
    for split, name, per in (("train", "train", 500), ("test", "t10k", 200)):
        x, y = idx(f"{FMNIST}/{name}-images-idx3-ubyte.gz"), idx(f"{FMNIST}/{name}-labels-idx1-ubyte.gz")
        rows = []
        for c in range(10):
            d = os.path.join(work, "fmnist", split, str(c))
            os.makedirs(d, exist_ok=True)
            for i in np.nonzero(y == c)[0][:per]:
                p = os.path.join(d, f"{i:05d}.png")
                if not os.path.exists(p):
                    Image.fromarray(x[i]).save(p)
                rows.append((p, FMNIST_CLASSES[c].replace(",", " ")))
        out[split] = rows
    return out["train"], out["test"]


def sample(pool, k, seed):
    by = {}
    for r in pool:
        by.setdefault(r[1], []).append(r)
    rng = random.Random(seed)
    out = []
    for c in sorted(by):
        out += rng.sample(by[c], k) if k < len(by[c]) else list(by[c])
    rng.shuffle(out)
    return out


def import_models(kotsu, work):
    mc = os.path.join(SHARED, "models", "coral-mobilenet")
    labels = os.path.join(work, "darknet_labels.txt")
    ml5 = os.path.join(ROOT, "assets", "npm", "ml5")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "fixtures", "darknet_labels.py"), ml5, labels], check=True)
    subprocess.run([kotsu, "import", "tflite", os.path.join(mc, "mobilenet_v2_1.0_224_quant.tflite"), "--labels",
                    os.path.join(mc, "imagenet_labels.txt"), "--out", os.path.join(work, "mobilenet_v2"), "--force"], check=True)
    subprocess.run([kotsu, "import", "tfjs", os.path.join(SHARED, "models", "darknet-tiny", "model.json"), "--labels", labels,
                    "--out", os.path.join(work, "darknet"), "--force"], check=True)


_FEATURES = {}


def features(kotsu, model, rows, name, work, size, threads):
    """kotsu embed features of `rows` (cached on disk per model, size and row set)."""
    key = (model, name, size)
    if key not in _FEATURES:
        csv = os.path.join(work, f"embed-{name}.csv")
        out = os.path.join(work, f"embed-{os.path.basename(model)}-{name}-{size}.npy")
        if not os.path.exists(out):
            write_csv(csv, rows)
            subprocess.run([kotsu, "embed", "--model", model, "--data", csv, "--out", out, "--image-size", str(size),
                            "--threads", str(threads)], check=True)
        _FEATURES[key] = {p: v for (p, _), v in zip(rows, np.load(out))}
    return _FEATURES[key]


def run_frozen_lr(train, test, pool, kotsu, model, work, size, threads, dataset, **_):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    ftr = features(kotsu, model, pool, f"{dataset}-pool", work, size, threads)
    fte = features(kotsu, model, test, f"{dataset}-test", work, size, threads)
    xtr, ytr = np.stack([ftr[p] for p, _ in train]), [y for _, y in train]
    xte, yte = np.stack([fte[p] for p, _ in test]), [y for _, y in test]
    clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1], cv=3, max_iter=2000))
    pred = clf.fit(xtr, ytr).predict(xte)
    return {"accuracy": float(accuracy_score(yte, pred)), "macro_f1": float(f1_score(yte, pred, average="macro"))}


def run_kotsu(train, test, kotsu, model, work, method, k, seed, threads, size, **_):
    tr, te = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
    write_csv(tr, train)
    write_csv(te, test)
    out = os.path.join(work, "run")
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [kotsu, "train", "--model", model, "--data", tr, "--out", out, "--seed", str(seed), "--threads", str(threads),
           "--epochs", str(EPOCHS[k]), "--batch-size", "32", "--image-size", str(size), "--quiet"]
    cmd += {"head": ["--strategy", "head"], "partial": ["--strategy", "partial", "--unfreeze", "3", "--lr", "5e-4"],
            "full": ["--strategy", "full", "--lr", "2e-4"],
            "scratch": ["--strategy", "full", "--init", "random", "--lr", "2e-3"]}[method]
    subprocess.run(cmd, check=True)
    rep = json.loads(subprocess.run([kotsu, "eval", "--run", out, "--data", te, "--json", "--threads", str(threads)],
                                    check=True, capture_output=True, text=True).stdout)
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"]}


def table(cache, dataset, ks, models, methods):
    title = {"cifar10": "CIFAR-10 (test: 1,000 pictures)", "fmnist": "Fashion-MNIST (test: 2,000 pictures, 200 per class)"}[dataset]
    lines = [f"\n### {title}\n", "| model | method | " + " | ".join(f"{k}/class accuracy | {k}/class macro-F1" for k in ks) + " |",
             "|---|---|" + "---|---|" * len(ks)]
    for mo in models:
        for m in methods:
            cells = []
            for k in ks:
                runs = [v for key, v in cache.items() if key.startswith(f"{dataset}/{k}/") and key.endswith(f"/{mo}/{m}")]
                for name in ("accuracy", "macro_f1"):
                    vals = [r[name] for r in runs]
                    if not vals:
                        cells.append("-")
                        continue
                    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                    cells.append(f"{statistics.mean(vals):.3f} ± {sd:.3f}" + ("" if len(vals) == 3 else f" ({len(vals)} seeds)"))
            lines.append(f"| {mo} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "transfer_vision.md"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "results", "transfer_vision.json"))
    ap.add_argument("--k", type=int, nargs="+", help="pictures per class (default: 10 50 500 for CIFAR-10, 100 for Fashion-MNIST)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=["cifar10", "fmnist"])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "darknet"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/kotsu-transfer-vision")
    a = ap.parse_args()
    kotsu = os.path.join(a.build, "kotsu")
    if not os.path.isdir(CIFAR) or not os.path.isdir(os.path.join(SHARED, "models", "darknet-tiny")):
        print("bench/transfer_vision: ../shared/data/image/cifar10 or ../shared/models not found; skipped")
        return
    if "fmnist" in a.datasets and not os.path.isdir(FMNIST):
        print("bench/transfer_vision: Fashion-MNIST (Debian dataset-fashion-mnist, scripts/setup) not found; left out")
        a.datasets = [d for d in a.datasets if d != "fmnist"]
    os.makedirs(a.work, exist_ok=True)
    import_models(kotsu, a.work)
    cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
    data = {"cifar10": (cifar_rows("train"), cifar_rows("test"))}
    if "fmnist" in a.datasets:
        data["fmnist"] = fmnist_rows(a.work)
    jobs = sorted({(k, d) for d in a.datasets for k in (a.k or DEFAULT_K[d])})
    for k, d in jobs:
        pool, test = data[d]
        for seed in a.seeds:
            train = sample(pool, k, seed)
            for mo in a.models:
                for m in a.methods:
                    key = f"{d}/{k}/{seed}/{mo}/{m}"
                    if key in cache:
                        continue
                    t0 = time.time()
                    fn = run_frozen_lr if m == "frozen_lr" else run_kotsu
                    r = fn(train, test, pool=pool, kotsu=kotsu, model=os.path.join(a.work, mo), work=a.work, method=m, k=k,
                           seed=seed, threads=a.threads, size=a.image_size, dataset=d)
                    r["seconds"] = round(time.time() - t0, 1)
                    cache[key] = r
                    print(f"{key}: accuracy {r['accuracy']:.4f} macro_f1 {r['macro_f1']:.4f} ({r['seconds']}s)", flush=True)
                    tmp = a.cache + ".tmp"
                    json.dump(cache, open(tmp, "w"), indent=1, sort_keys=True)
                    os.replace(tmp, a.cache)
    md = ["# bench/transfer_vision: fine-tuning ImageNet CNNs vs. baselines on few pictures", "",
          f"Mean ± std over seeds {', '.join(map(str, a.seeds))}; input {a.image_size}x{a.image_size}. Made by "
          "`/usr/bin/python3 bench/transfer_vision.py build` (see the script's docstring for splits and methods)."]
    for d in a.datasets:
        ks = sorted({int(key.split("/")[1]) for key in cache if key.startswith(d + "/")})
        md.append(table(cache, d, ks, a.models, a.methods))
    md.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
