#!/usr/bin/python3
"""bench/int8: what `kotsu export --int8` costs in accuracy and buys in size and speed, on real fine-tunes.
  SST-2     Universal Sentence Encoder Lite (npm, `kotsu import tfjs`) fine-tuned with --strategy full on
            N=2000 sentences of train.tsv (seed 0, 3 epochs: bench/transfer_text's kotsu_full), scored on
            dev.tsv (872 sentences). int8: every dense layer of the encoder (int8 weights and activations).
  CIFAR-10  ImageNet MobileNet V2 (`kotsu import tflite`) fine-tuned with --strategy partial on 50 pictures
            per class (seed 0, 8 epochs at 96x96: bench/transfer_vision's partial), scored on the 1,000 test
            pictures. int8: the convolution weights (per output channel; computed in float32).
For each: accuracy and macro-F1 of the float run and of its int8 export (both by `kotsu eval`), the size of
model.safetensors, and the wall time of `kotsu eval` on the test set (median of 3 runs each, alternating).
usage: int8.py BUILD_DIR [--out bench/results/int8.md] [--threads 2] [--work /tmp/kotsu-int8]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import transfer_text as tt  # noqa: E402
import transfer_vision as tv  # noqa: E402

ROOT = tt.ROOT
SHARED = tt.SHARED


def evaluate(kotsu, run, data, threads):
    t = time.perf_counter()
    rep = json.loads(subprocess.run([kotsu, "eval", "--run", run, "--data", data, "--json", "--threads", str(threads),
                                     "--report", run + "/eval-bench.json"], check=True, capture_output=True, text=True).stdout)
    return rep, time.perf_counter() - t


def compare(kotsu, run, data, threads, work, name):
    q = os.path.join(work, name + "-int8")
    subprocess.run([kotsu, "export", run, "--int8", "--out", q, "--force"], check=True)
    times = {"float": [], "int8": []}
    reps = {}
    for _ in range(3):
        for kind, d in (("float", run), ("int8", q)):
            reps[kind], s = evaluate(kotsu, d, data, threads)
            times[kind].append(s)
    assert reps["int8"].get("int8") is True, "the int8 export was not evaluated as int8"
    size = {k: os.path.getsize(os.path.join(d, "model.safetensors")) for k, d in (("float", run), ("int8", q))}
    return {k: {"accuracy": reps[k]["accuracy"], "macro_f1": reps[k]["macro"]["f1"], "eval_seconds": statistics.median(times[k]),
                "bytes": size[k]} for k in reps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "int8.md"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/kotsu-int8")
    a = ap.parse_args()
    kotsu = os.path.join(a.build, "kotsu")
    if not os.path.isdir(os.path.join(SHARED, "data", "text", "sst2")) or not os.path.isdir(tv.CIFAR) or not os.path.exists(tt.PACKAGE + "/model.json"):
        print("bench/int8: ../shared/data (SST-2, CIFAR-10) or the USE-Lite npm package (scripts/setup) not found; skipped")
        return
    os.makedirs(a.work, exist_ok=True)
    results = {}

    # SST-2 with USE-Lite
    model = os.path.join(a.work, "use-lite")
    subprocess.run([kotsu, "import", "tfjs", tt.PACKAGE, "--out", model, "--force"], check=True)
    train, test = tt.splits("sst2", 2000, 0)
    tr, te = os.path.join(a.work, "sst2-train.jsonl"), os.path.join(a.work, "sst2-dev.jsonl")
    tt.write_jsonl(tr, train)
    tt.write_jsonl(te, test)
    run = os.path.join(a.work, "sst2")
    subprocess.run(["rm", "-rf", run], check=True)
    subprocess.run([kotsu, "train", "--model", model, "--data", tr, "--out", run, "--seed", "0", "--threads", str(a.threads),
                    "--epochs", "3", "--strategy", "full", "--quiet"], check=True)
    results["SST-2, USE-Lite full fine-tune (dev, 872 sentences)"] = compare(kotsu, run, te, a.threads, a.work, "sst2")

    # CIFAR-10 with MobileNet V2
    mc = os.path.join(SHARED, "models", "coral-mobilenet")
    mnv2 = os.path.join(a.work, "mobilenet_v2")
    subprocess.run([kotsu, "import", "tflite", os.path.join(mc, "mobilenet_v2_1.0_224_quant.tflite"), "--labels",
                    os.path.join(mc, "imagenet_labels.txt"), "--out", mnv2, "--force"], check=True)
    pool, test = tv.cifar_rows("train"), tv.cifar_rows("test")
    tr, te = os.path.join(a.work, "cifar-train.csv"), os.path.join(a.work, "cifar-test.csv")
    tv.write_csv(tr, tv.sample(pool, 50, 0))
    tv.write_csv(te, test)
    run = os.path.join(a.work, "cifar10")
    subprocess.run(["rm", "-rf", run], check=True)
    subprocess.run([kotsu, "train", "--model", mnv2, "--data", tr, "--out", run, "--seed", "0", "--threads", str(a.threads),
                    "--epochs", "8", "--batch-size", "32", "--image-size", "96", "--strategy", "partial", "--unfreeze", "3",
                    "--lr", "5e-4", "--quiet"], check=True)
    results["CIFAR-10, MobileNet V2 partial fine-tune (test, 1,000 pictures)"] = compare(kotsu, run, te, a.threads, a.work, "cifar10")

    lines = ["# bench/int8: accuracy, size and speed of `kotsu export --int8`", "",
             f"Made by `/usr/bin/python3 bench/int8.py build` (--threads {a.threads}); see the script's docstring for the runs.", "",
             "| task | float accuracy | int8 accuracy | change (points) | float macro-F1 | int8 macro-F1 | model.safetensors float → int8 | kotsu eval float / int8 seconds | speed ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, r in results.items():
        f, q = r["float"], r["int8"]
        lines.append(f"| {task} | {f['accuracy']:.4f} | {q['accuracy']:.4f} | {100 * (q['accuracy'] - f['accuracy']):+.2f} | "
                     f"{f['macro_f1']:.4f} | {q['macro_f1']:.4f} | {f['bytes'] / 2**20:.1f} → {q['bytes'] / 2**20:.1f} MiB | "
                     f"{f['eval_seconds']:.2f} / {q['eval_seconds']:.2f} | {f['eval_seconds'] / q['eval_seconds']:.2f}x |")
    text = "\n".join(lines) + "\n"
    with open(a.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    with open(os.path.splitext(a.out)[0] + ".json", "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1)
    print(text)


if __name__ == "__main__":
    main()
