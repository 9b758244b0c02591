#!/usr/bin/python3
"""Runs bench/tokenize for WordPiece, byte-level BPE and SentencePiece (kotsu's native BPE on the llama.cpp
GGUF vocabulary and on the llama tokenizer.model read natively) and the python3-sentencepiece peer on the same texts,
in one session, single thread; writes a markdown table (make bench).
Texts: SST-2 train sentences, one text per line; and a long English text (all SST-2 dev and test
sentences joined into one ~300 KB string).
usage: run_tokenize.py BUILD_DIR [--out results.md] [--passes N]"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))


def sentences(path):
    rows = open(path, encoding="utf-8").read().split("\n")[1:]
    return [r.split("\t", 1)[1] for r in rows if "\t" in r]


def run_json(cmd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    build = sys.argv[1]
    out_path = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    passes = sys.argv[sys.argv.index("--passes") + 1] if "--passes" in sys.argv else "5"
    sst = os.path.join(SHARED, "data", "text", "sst2")
    vocab = os.path.join(SHARED, "tokenizers", "llama.cpp-vocab")
    spm_model = os.path.join(SHARED, "tokenizers", "llama-sentencepiece", "tokenizer.model")
    if not (os.path.isdir(sst) and os.path.isdir(vocab) and os.path.exists(spm_model)):
        print("bench/tokenize: ../shared (SST-2, llama.cpp vocabularies, llama tokenizer.model) not found; skipped")
        return
    tmp = tempfile.mkdtemp()
    lines_path = os.path.join(tmp, "sst2_train.txt")
    long_path = os.path.join(tmp, "long.txt")
    with open(lines_path, "w", encoding="utf-8") as f:
        f.write("\n".join(sentences(os.path.join(sst, "train.tsv"))) + "\n")
    with open(long_path, "w", encoding="utf-8") as f:
        f.write(" ".join(sentences(os.path.join(sst, "dev.tsv")) + sentences(os.path.join(sst, "test.tsv"))))
    exe = os.path.join(build, "bench", "bench_tokenize")
    subjects = [("WordPiece (bert-bge GGUF)", os.path.join(vocab, "ggml-vocab-bert-bge.gguf")),
                ("byte-level BPE (gpt-2 GGUF)", os.path.join(vocab, "ggml-vocab-gpt-2.gguf")),
                ("SentencePiece BPE, native (llama-spm GGUF)", os.path.join(vocab, "ggml-vocab-llama-spm.gguf")),
                ("SentencePiece .model, native reader (llama tokenizer.model)", spm_model)]
    lines = [f"# bench/tokenize, {time.strftime('%Y-%m-%d')}",
             f"command: `python3 bench/run_tokenize.py {build}` (single thread, {passes} passes; MB/s of UTF-8 input, "
             "median of the passes after the first; cold = first pass)", ""]
    for label, text_path, whole in [("SST-2 train sentences (67,349 texts)", lines_path, False),
                                     ("long English text (one ~300 KB string)", long_path, True)]:
        extra = ["--whole"] if whole else []
        peer = run_json(["/usr/bin/python3", os.path.join(HERE, "peer_tokenize.py"), spm_model, text_path, "--passes", passes] + extra)
        lines += [f"## {label}", "", "| tokenizer | tokens | MB/s | cold MB/s | vs python3-sentencepiece |", "|---|---|---|---|---|"]
        for name, model in subjects:
            r = run_json([exe, "--model", model, "--text", text_path, "--passes", passes] + extra)
            lines.append(f"| kotsu {name} | {r['tokens']} | {r['mb_s']:.1f} | {r['first_mb_s']:.1f} | {r['mb_s'] / peer['mb_s']:.2f}x |")
            print(lines[-1], flush=True)
        lines.append(f"| {peer['tokenizer']} (llama tokenizer.model) | {peer['tokens']} | {peer['mb_s']:.1f} | {peer['first_mb_s']:.1f} | 1.00x |")
        lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
