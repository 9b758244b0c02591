#!/usr/bin/python3
"""Peer for bench/tokenize: python3-sentencepiece encoding the same text, single thread, same passes.
usage: peer_tokenize.py MODEL TEXT [--whole] [--passes N]"""
import json
import statistics
import sys
import time

import sentencepiece as spm


def main():
    model, path = sys.argv[1], sys.argv[2]
    whole = "--whole" in sys.argv
    passes = int(sys.argv[sys.argv.index("--passes") + 1]) if "--passes" in sys.argv else 5
    sp = spm.SentencePieceProcessor(model_file=model, num_threads=1)
    raw = open(path, encoding="utf-8").read()
    texts = [raw] if whole else [t for t in raw.split("\n") if t]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    rates = []
    tokens = 0
    for _ in range(passes):
        t0 = time.perf_counter()
        tokens = sum(len(sp.encode(t)) for t in texts)
        rates.append(mb / (time.perf_counter() - t0))
    rest = rates[1:] or rates
    print(json.dumps({"tokenizer": "python3-sentencepiece " + spm.__version__, "mb": mb, "texts": len(texts),
                      "tokens": tokens, "first_mb_s": rates[0], "mb_s": statistics.median(rest)}))


if __name__ == "__main__":
    main()
