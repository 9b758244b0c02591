#!/usr/bin/python3
"""bench/serve: load test of `kotsu serve` against FastAPI + uvicorn + python3-torch (bench/peer_serve.py)
serving the same model, with wrk (Debian) on loopback, in one run.

Model: a BERT-tiny-size classifier with random weights (2 layers, hidden 128, 2 heads, 2 labels; vocabulary:
the fixture's base words plus the 3,000 most frequent words of ../shared's SST-2 train split), written by
tests/fixtures/make_tiny_bert.py. Each request classifies one SST-2 sentence. Both servers run torch with
--threads (2); wrk runs one thread. Measured:
  1. sanity: both servers' probabilities for 8 sentences (the peer's tokenizer is hand-written; the
     difference is printed);
  2. each server at --connections for --duration seconds: requests/s, p50/p99 latency, non-2xx, socket errors;
  3. kotsu at twice the connections (overload): answers by status code (503 is the only non-200 allowed);
  4. kotsu soak for --soak seconds: resident memory at the start and at the end.
Targets (issue 9): >= 2,000 requests/s with p99 <= 50 ms, >= 3x the peer, zero 5xx other than 503 under
twice the load, memory flat over a 5-minute soak.
With --model use-lite the served model is Universal Sentence Encoder Lite (npm, `kotsu import tfjs`) with a
head trained on 500 SST-2 sentences (`kotsu train --strategy head`); the peer runs bench/use_lite_torch.py's
forward pass and looks token ids up in a table made by `kotsu tokenize` (no tokenizer cost for the peer).
With --int8 kotsu serves with --int8 (dense layers in int8); the peer stays float32.
With --baseline OTHER_BUILD another build's kotsu serves the same model too and is measured in the same run.
usage: serve.py BUILD_DIR [--model bert-tiny|use-lite] [--int8] [--duration 15] [--connections 32] [--soak 300] [--threads 2]
                [--baseline OTHER_BUILD] [--out FILE]"""
import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from machine import cpu_line

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SST2 = os.path.join(ROOT, "..", "shared", "data", "text", "sst2", "train.tsv")

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("KOTSU_BENCH_BODY")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function response(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do io.write(string.format("status %d %d\n", k, v)) end
  end
  io.write(string.format("p50_us %d\np99_us %d\n", latency:percentile(50), latency:percentile(99)))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, seconds=120):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"bench/serve: server exited with {proc.returncode}")
        try:
            post(url, {"inputs": ["ready?"]})
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench/serve: {url} not ready after {seconds} s")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wrk(url, connections, duration, lua, body):
    env = dict(os.environ, KOTSU_BENCH_BODY=json.dumps(body))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", lua, url],
                         capture_output=True, text=True, env=env, check=True).stdout
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
         "p50_ms": int(re.search(r"p50_us (\d+)", out).group(1)) / 1000, "p99_ms": int(re.search(r"p99_us (\d+)", out).group(1)) / 1000,
         "codes": collections.Counter(), "socket_errors": 0}
    for code, n in re.findall(r"status (\d+) (\d+)", out):
        r["codes"][int(code)] += int(n)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--soak", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", choices=["bert-tiny", "use-lite"], default="bert-tiny")
    ap.add_argument("--int8", action="store_true", help="kotsu serves with --int8 (the peer stays float32)")
    ap.add_argument("--baseline", help="another build's directory: its kotsu serves too, measured in the same run "
                                     "(to compare two versions of the server on the same machine at the same moment)")
    ap.add_argument("--out")
    a = ap.parse_args()
    if not os.path.exists(SST2):
        print("bench/serve: ../shared/data/text/sst2 not found; skipped")
        return
    for tool in ("wrk",):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            raise SystemExit(f"bench/serve: {tool} not installed (scripts/setup installs it)")
    tmp = tempfile.mkdtemp(prefix="kotsu-bench-serve-")
    # train.tsv: "label<TAB>sentence" after a header line
    sentences = [line.split("\t", 1)[1] for line in open(SST2, encoding="utf-8").read().splitlines()[1:] if "\t" in line]
    counts = collections.Counter(w for s in sentences for w in s.lower().split())
    with open(os.path.join(tmp, "words.txt"), "w") as f:
        f.write(" ".join(w for w, _ in counts.most_common(3000)))
    kotsu_bin = os.path.join(a.build, "kotsu")
    peer_extra = []
    if a.model == "bert-tiny":
        model = os.path.join(tmp, "bert-tiny")
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "fixtures", "make_tiny_bert.py"), model, "--hidden", "128",
                        "--layers", "2", "--heads", "2", "--labels", "2", "--words", os.path.join(tmp, "words.txt")], check=True)
    else:
        package = os.path.join(ROOT, "assets", "npm", "energetic-ai", "node_modules", "@energetic-ai", "model-embeddings-en", "dist")
        if not os.path.exists(os.path.join(package, "model.json")):
            print("bench/serve: the USE-Lite npm package (scripts/setup) not found; skipped")
            return
        base, model = os.path.join(tmp, "use-lite"), os.path.join(tmp, "use-lite-run")
        subprocess.run([kotsu_bin, "import", "tfjs", package, "--out", base], check=True, stdout=subprocess.DEVNULL)
        rows = [line.split("\t", 1) for line in open(SST2, encoding="utf-8").read().splitlines()[1:501]]
        with open(os.path.join(tmp, "train.jsonl"), "w", encoding="utf-8") as f:
            for y, t in rows:
                f.write(json.dumps({"text": t, "label": "positive" if y == "1" else "negative"}) + "\n")
        subprocess.run([kotsu_bin, "train", "--model", base, "--data", os.path.join(tmp, "train.jsonl"), "--out", model,
                        "--strategy", "head", "--quiet"], check=True)
        served = ["ready?"] + sentences[1:9]
        with open(os.path.join(tmp, "texts.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(served) + "\n")
        out = subprocess.run([kotsu_bin, "tokenize", "--model", model, "--ids", "--max-length", "128", "--file", os.path.join(tmp, "texts.txt")],
                             check=True, capture_output=True, text=True).stdout.split("\n")
        with open(os.path.join(tmp, "ids.json"), "w", encoding="utf-8") as f:
            json.dump({t: [int(x) for x in line.split()] for t, line in zip(served, out)}, f)
        peer_extra = ["--use-lite", os.path.join(tmp, "ids.json")]
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    body = {"inputs": [sentences[1]]}
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)

    kp, pp = free_port(), free_port()
    kotsu = subprocess.Popen([os.path.join(a.build, "kotsu"), "serve", f"m={model}", "--port", str(kp), "--threads", str(a.threads)]
                             + (["--int8"] if a.int8 else []),
                             stdout=subprocess.DEVNULL, env=env)
    peer = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "peer_serve.py"), model, "--port", str(pp), "--threads", str(a.threads)]
                            + peer_extra, env=env)
    kurl, purl = f"http://127.0.0.1:{kp}/v1/models/m:predict", f"http://127.0.0.1:{pp}/v1/models/m:predict"
    servers = [("kotsu", kurl), ("FastAPI + PyTorch", purl)]
    procs = [kotsu, peer]
    if a.baseline:
        bp = free_port()
        procs.append(subprocess.Popen([os.path.join(a.baseline, "kotsu"), "serve", f"m={model}", "--port", str(bp), "--threads", str(a.threads)]
                                      + (["--int8"] if a.int8 else []), stdout=subprocess.DEVNULL, env=env))
        servers.append((f"kotsu baseline ({a.baseline})", f"http://127.0.0.1:{bp}/v1/models/m:predict"))
    rows = {}
    try:
        for (_, url), proc in zip(servers, procs):
            wait_ready(url, proc)
        probe = sentences[1:9]
        kp_, pp_ = post(kurl, {"inputs": probe}), post(purl, {"inputs": probe})
        diff = max(abs(x["probabilities"][k] - y["probabilities"][k])
                   for x, y in zip(kp_["predictions"], pp_["predictions"]) for k in x["probabilities"])
        print(f"sanity: max |p_kotsu - p_peer| over 8 sentences = {diff:.2e}", flush=True)
        for name, url in servers:
            wrk(url, a.connections, 3, lua, body)  # warm-up
            rows[name] = wrk(url, a.connections, a.duration, lua, body)
            print(name, rows[name], flush=True)
        overload = wrk(kurl, 2 * a.connections, a.duration, lua, body)
        print("overload", overload, flush=True)
        rss0 = rss_mib(kotsu.pid)
        soak = wrk(kurl, a.connections, a.soak, lua, body) if a.soak > 0 else None
        rss1 = rss_mib(kotsu.pid)
        print("soak", soak, rss0, rss1, flush=True)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    k, p = rows["kotsu"], rows["FastAPI + PyTorch"]
    lines = [f"# bench/serve ({a.model}{', kotsu int8' if a.int8 else ''})", "",
             f"`/usr/bin/python3 bench/serve.py build --model {a.model}{' --int8' if a.int8 else ''} --duration {a.duration} --connections {a.connections} --soak {a.soak}` "
             f"(torch threads {a.threads} in both servers; wrk 1 thread, {a.connections} connections, on the same machine), "
             f"measured {time.strftime('%Y-%m-%d')}. {cpu_line()}", "",
             "| server | requests/s | p50 ms | p99 ms | non-200 | socket errors |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        non200 = sum(n for c, n in r["codes"].items() if c != 200)
        lines.append(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {non200} | {r['socket_errors']} |")
    codes = ", ".join(f"{c}: {n}" for c, n in sorted(overload["codes"].items()))
    bad5xx = sum(n for c, n in overload["codes"].items() if c >= 500 and c != 503)
    lines += ["", f"Ratio: kotsu serves {k['rps'] / p['rps']:.1f}x the peer's requests/s; p99 {k['p99_ms']:.1f} ms vs {p['p99_ms']:.1f} ms.",
              f"Overload (kotsu, {2 * a.connections} connections): {overload['rps']:.0f} requests/s, answers by status {{{codes}}}, "
              f"{bad5xx} 5xx other than 503, {overload['socket_errors']} socket errors."]
    if a.baseline:
        b = rows[servers[2][0]]
        lines.append(f"Against the baseline build {a.baseline}: {k['rps'] / b['rps']:.2f}x its requests/s; p99 {k['p99_ms']:.1f} ms vs {b['p99_ms']:.1f} ms.")
    if soak:
        lines.append(f"Soak (kotsu, {a.soak} s at {a.connections} connections, {soak['rps']:.0f} requests/s): resident memory "
                     f"{rss0:.0f} MiB at the start, {rss1:.0f} MiB at the end ({rss1 - rss0:+.1f} MiB).")
    lines += [f"Sanity: the two servers' probabilities differ by at most {diff:.1e} on 8 sentences.",
              "Targets: >= 2,000 requests/s with p99 <= 50 ms, >= 3x the peer, no 5xx but 503 at twice the load, flat memory."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
