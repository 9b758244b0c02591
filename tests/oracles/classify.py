#!/usr/bin/env python3
"""The real libraries' answers for a kotsu text-classification run (tests/test_real_end_to_end.cpp).
Runs in the reference environment (assets/refenv/bin/python). Reads kotsu's files only through the libraries
a user would load them with.
usage: classify.py RUN_DIR TEXTS_JSON [--onnx FILE] [--peft-base BASE_DIR] [--merged DIR]
Prints one JSON object: labels (the run's id2label in id order) and, for the texts of TEXTS_JSON (a list of
strings), float32 logits per text from
  transformers: AutoTokenizer + AutoModelForSequenceClassification.from_pretrained(RUN_DIR) (for a LoRA run,
                transformers' PEFT integration: it sees adapter_config.json and loads base + adapter); for a
                run whose config.json says "kotsu_pooling": "mean" (a BERT), AutoModel.from_pretrained(RUN_DIR)'s
                last hidden states pooled as sentence-transformers' Pooling(mean) + Normalize do, then the
                run's classifier.weight/bias (read with safetensors) on that embedding;
  merged:       AutoModelForSequenceClassification.from_pretrained(DIR), a plain model (kotsu export --merged);
  onnxruntime:  the ONNX file (inputs fed by name from the same tokenizer's output);
  peft:         PeftModel.from_pretrained(the base model with a new head, RUN_DIR) (a LoRA run's adapter);
  peft_merged:  that model after merge_and_unload()."""
import argparse
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer


def logits_of(model, batch):
    with torch.no_grad():
        return model(**batch).logits.float().tolist()


def mean_pooled_logits(run, batch):
    """sentence-transformers' mean pooling + L2 normalisation on transformers' BertModel, then the linear head."""
    from safetensors.torch import load_file
    from transformers import AutoModel
    model = AutoModel.from_pretrained(run).eval()
    with torch.no_grad():
        h = model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
        e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1)
        w = load_file(run + "/model.safetensors")
        return (e @ w["classifier.weight"].T + w["classifier.bias"]).float().tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("texts")
    ap.add_argument("--onnx")
    ap.add_argument("--peft-base")
    ap.add_argument("--merged")
    a = ap.parse_args()
    with open(a.texts, encoding="utf-8") as f:
        texts = json.load(f)
    tok = AutoTokenizer.from_pretrained(a.run)
    batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    config = AutoConfig.from_pretrained(a.run)
    out = {"labels": [config.id2label[i] for i in range(config.num_labels)]}
    if getattr(config, "kotsu_pooling", "cls") == "mean":
        assert config.model_type == "bert", "the oracle pools by the mean for BERT runs only"
        out["transformers"] = mean_pooled_logits(a.run, batch)
    else:
        out["transformers"] = logits_of(AutoModelForSequenceClassification.from_pretrained(a.run).eval(), batch)
    if a.merged:
        out["merged"] = logits_of(AutoModelForSequenceClassification.from_pretrained(a.merged).eval(), batch)
    if a.onnx:
        import onnxruntime as ort
        session = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
        feed = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
        out["onnxruntime"] = session.run(None, feed)[0].tolist()
    if a.peft_base:
        from peft import PeftModel
        base = AutoModelForSequenceClassification.from_pretrained(a.peft_base, num_labels=config.num_labels, id2label=config.id2label,
                                                                  label2id=config.label2id)
        model = PeftModel.from_pretrained(base, a.run).eval()
        out["peft"] = logits_of(model, batch)
        out["peft_merged"] = logits_of(model.merge_and_unload().eval(), batch)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
