#!/usr/bin/python3
"""bench/audit: does `kotsu audit` find wrong labels? A BANKING77 subset (1,500 rows of
../shared/data/text/banking77/train.csv drawn with seed 0, 77 intents) gets 5% of its labels flipped to
another intent (seed 0); `kotsu audit --model USE-Lite` (a 5-fold head-strategy cv, then confident
learning on the out-of-fold probabilities) ranks every row. Printed: precision among the top 5% of the
ranking and recall of the flipped rows within the top 10%. Targets: >= 0.5 and >= 0.6.
usage: audit.py BUILD_DIR [--rows 1500] [--noise 0.05] [--seed 0] [--threads 2]"""
import argparse
import csv
import json
import os
import random
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
PACKAGE = os.path.join(ROOT, "assets", "npm", "energetic-ai", "node_modules", "@energetic-ai", "model-embeddings-en", "dist")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/kotsu-bench-audit")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "audit.md"))
    a = ap.parse_args()
    kotsu = os.path.join(a.build, "kotsu")
    src = os.path.join(SHARED, "data", "text", "banking77", "train.csv")
    if not os.path.exists(src) or not os.path.exists(PACKAGE + "/model.json"):
        print("bench/audit: ../shared/data/text/banking77 or the USE-Lite npm package (scripts/setup) not found; skipped")
        return
    subprocess.run(["rm", "-rf", a.work], check=True)
    os.makedirs(a.work)
    model = os.path.join(a.work, "use-lite")
    subprocess.run([kotsu, "import", "tfjs", PACKAGE, "--out", model], check=True, capture_output=True)
    rows = list(csv.DictReader(open(src, encoding="utf-8")))
    rng = random.Random(a.seed)
    rng.shuffle(rows)
    rows = rows[:a.rows]
    labels = sorted({r["category"] for r in rows})
    flipped = set(rng.sample(range(len(rows)), round(a.noise * len(rows))))
    data = os.path.join(a.work, "noisy.csv")
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i, r in enumerate(rows):
            y = r["category"]
            if i in flipped:
                y = rng.choice([l for l in labels if l != y])
            w.writerow([r["text"], y])
    t0 = time.time()
    subprocess.run([kotsu, "audit", "--data", data, "--model", model, "--out", os.path.join(a.work, "audit"), "--threads", str(a.threads),
                    "--json"], check=True, capture_output=True)
    secs = time.time() - t0
    rep = json.load(open(os.path.join(a.work, "audit", "audit.json")))
    order = rep["mislabel_order"]
    n = len(order)
    top5, top10 = order[:round(0.05 * n)], order[:round(0.10 * n)]
    precision = sum(i in flipped for i in top5) / len(top5)
    recall = sum(i in flipped for i in top10) / len(flipped)
    cv = json.load(open(os.path.join(a.work, "audit", "cv", "cv.json")))
    md = ["# bench/audit: finding flipped labels in BANKING77", "",
          f"`/usr/bin/python3 bench/audit.py build` ({a.rows} rows, {len(labels)} intents, {len(flipped)} labels flipped "
          f"({a.noise:.0%}, seed {a.seed}); `kotsu audit --model` USE-Lite, 5-fold head-strategy cv; {a.threads} threads, {secs:.0f} s)", "",
          "| measure | value | target |", "|---|---|---|",
          f"| precision among the top 5% of the ranking | {precision:.3f} | >= 0.5 |",
          f"| recall of flipped rows within the top 10% | {recall:.3f} | >= 0.6 |",
          f"| rows the confident joint flags | {rep['likely_mislabels']['suspects']} | |",
          f"| out-of-fold accuracy of the model (against the noisy labels) | {cv['out_of_fold']['accuracy']:.3f} | |", ""]
    open(a.out, "w").write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
