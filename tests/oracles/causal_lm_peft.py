#!/usr/bin/env python3
"""peft's and transformers' answers for a kotsu causal-LM LoRA run (tests/test_real_models.cpp).
Runs in the reference environment (assets/refenv/bin/python).
usage: causal_lm_peft.py ADAPTER_DIR BATCH.safetensors OUT.safetensors [--merged DIR]
BATCH.safetensors (written by kotsu): input_ids, attention_mask. OUT.safetensors gets float32 logits of
  logits:        peft.PeftModel.from_pretrained(the adapter's base model, ADAPTER_DIR);
  logits_merged: that model after merge_and_unload();
  logits_kotsu_merged: AutoModelForCausalLM.from_pretrained(DIR) (kotsu export --merged), with --merged."""
import argparse
import json
import os

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("adapter")
    ap.add_argument("batch")
    ap.add_argument("out")
    ap.add_argument("--merged")
    a = ap.parse_args()
    batch = load_file(a.batch)
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        base = json.load(f)["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32), a.adapter).eval()
    out = {}
    with torch.no_grad():
        out["logits"] = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        out["logits_merged"] = model.merge_and_unload()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        if a.merged:
            merged = AutoModelForCausalLM.from_pretrained(a.merged, torch_dtype=torch.float32).eval()
            out["logits_kotsu_merged"] = merged(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    save_file({k: v.float().contiguous() for k, v in out.items()}, a.out)


if __name__ == "__main__":
    main()
