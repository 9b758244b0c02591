#!/usr/bin/python3
"""The peer of bench/serve: the same BERT classifier served the way a Python team would serve it, with FastAPI +
uvicorn (Debian python3-fastapi, python3-uvicorn) and python3-torch, answering kotsu's request shape
(POST /v1/models/NAME:predict with {"inputs": [...]}) with labels and probabilities. The model is
modeling_bert.py's eager forward written by hand (transformers is not packaged); the tokenizer is BERT's
basic + WordPiece (lower case, punctuation split, greedy longest match with "##"), enough for the
benchmark's vocab.txt. One uvicorn worker process, torch at --threads, an async handler: requests run one at a
time on the event loop (a plain def handler runs in FastAPI's 40-thread pool, where each request's torch
threads oversubscribe the cores: 12 requests/s on this 2-core machine against 1,200 this way).
With --use-lite IDS.json the model is a USE-Lite classifier run (bench/use_lite_torch.py's forward pass, then
the run's head: logits = classifier(sqrt(512) * embedding)); USE-Lite's SentencePiece-style tokenizer is not
written in Python here, so the peer looks the token ids of the benchmark's sentences up in IDS.json (made by
`kotsu tokenize`): its tokenization costs nothing, which favours the peer.
usage: peer_serve.py MODEL_DIR --port P [--threads 2] [--use-lite IDS.json]"""
import argparse
import json
import math
import os
import sys
import unicodedata

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import safetensors_io  # noqa: E402


class WordPiece:
    def __init__(self, vocab_path, max_len):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {w.rstrip("\n"): i for i, w in enumerate(f)}
        self.max_len = max_len

    def words(self, text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, cur = [], ""
        for c in text:
            if c.isspace():
                if cur:
                    out.append(cur)
                cur = ""
            elif unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47 or 58 <= ord(c) <= 64 or 91 <= ord(c) <= 96 or 123 <= ord(c) <= 126):
                if cur:
                    out.append(cur)
                out.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            out.append(cur)
        return out

    def encode(self, text):
        ids = [self.vocab["[CLS]"]]
        for w in self.words(text):
            start, pieces = 0, []
            while start < len(w):
                end = len(w)
                while end > start:
                    piece = ("##" if start else "") + w[start:end]
                    if piece in self.vocab:
                        break
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                pieces.append(self.vocab[piece])
                start = end
            ids += pieces
        ids = ids[:self.max_len - 1] + [self.vocab["[SEP]"]]
        return ids


class Bert(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, w

    def forward(self, ids, mask):
        c, w = self.cfg, self.w
        B, T = ids.shape
        H, heads = c["hidden_size"], c["num_attention_heads"]
        d = H // heads
        eps = c["layer_norm_eps"]
        x = (w["bert.embeddings.word_embeddings.weight"][ids] + w["bert.embeddings.position_embeddings.weight"][:T][None]
             + w["bert.embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (H,), w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"], eps)
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(c["num_hidden_layers"]):
            p = f"bert.encoder.layer.{i}."
            lin = lambda t, n: F.linear(t, w[p + n + ".weight"], w[p + n + ".bias"])  # noqa: E731
            s = lambda t: t.view(B, T, heads, d).transpose(1, 2)  # noqa: E731
            q, k, v = s(lin(x, "attention.self.query")), s(lin(x, "attention.self.key")), s(lin(x, "attention.self.value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, -1) @ v
            a = lin(a.transpose(1, 2).reshape(B, T, H), "attention.output.dense")
            x = F.layer_norm(a + x, (H,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            m = lin(F.gelu(lin(x, "intermediate.dense")), "output.dense")
            x = F.layer_norm(m + x, (H,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        pooled = torch.tanh(F.linear(x[:, 0], w["bert.pooler.dense.weight"], w["bert.pooler.dense.bias"]))
        return F.linear(pooled, w["classifier.weight"], w["classifier.bias"])


class UseLiteClassifier:
    def __init__(self, model_dir, ids_path):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from use_lite_torch import UseLite
        self.enc = UseLite(model_dir)
        with open(ids_path, encoding="utf-8") as f:
            self.ids = json.load(f)

    def encode(self, text):
        return self.ids[text]

    def logits(self, enc):
        e = self.enc.embed(enc)
        return F.linear(e * math.sqrt(e.shape[-1]), self.enc.w["classifier.weight"], self.enc.w["classifier.bias"])


def make_app(model_dir, use_lite_ids=None):
    from fastapi import FastAPI, HTTPException, Request

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    labels = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    if use_lite_ids:
        model = UseLiteClassifier(model_dir, use_lite_ids)
        tok = model
    else:
        weights = safetensors_io.load(os.path.join(model_dir, "model.safetensors"))
        model = Bert(cfg, weights).eval()
        tok = WordPiece(os.path.join(model_dir, "vocab.txt"), cfg["max_position_embeddings"])
    app = FastAPI()

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, body: dict):  # on the event loop: one forward pass at a time (a sync
        # handler runs in a 40-thread pool where torch threads oversubscribe the cores: 12 requests/s here)
        texts = body.get("inputs")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise HTTPException(status_code=400, detail="inputs: must be a non-empty array of strings")
        try:
            enc = [tok.encode(t) for t in texts]
        except KeyError:
            raise HTTPException(status_code=400, detail="inputs: a text the peer has no token ids for")
        with torch.inference_mode():
            if use_lite_ids:
                logits = model.logits(enc)
            else:
                T = max(len(e) for e in enc)
                ids = torch.tensor([e + [0] * (T - len(e)) for e in enc])
                mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e in enc])
                logits = model(ids, mask)
            probs = torch.softmax(logits, -1).tolist()
        return {"model": name, "predictions": [
            {"label": labels[max(range(len(p)), key=p.__getitem__)], "probabilities": dict(zip(labels, p))} for p in probs]}

    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--use-lite", help="token ids of the served sentences (JSON text -> ids): the model is a USE-Lite run")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import uvicorn
    uvicorn.run(make_app(a.model, a.use_lite), host="127.0.0.1", port=a.port, workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
