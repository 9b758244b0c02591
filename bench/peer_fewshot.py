"""bench/peer_fewshot: one few-shot text-classification run of a peer library, for bench/vs_anchors.py.
usage: python peer_fewshot.py SYSTEM MODEL_DIR TRAIN.jsonl TEST.jsonl SEED THREADS OUT.json
SYSTEM: hf_trainer | setfit | fastfit. Reads {"text", "label"} rows, trains on TRAIN with the library's own
recipe (below), predicts TEST and writes {"pred": [...], "train_seconds": s} to OUT.json.
  hf_trainer  transformers' Trainer on AutoModelForSequenceClassification with TrainingArguments' defaults
              (AdamW lr 5e-5, batch 8, linear decay, no warm-up, no weight decay) except the epoch count
              (few-shot: 10 epochs up to 2,000 examples; 3 above: the library's default), the last model kept.
  setfit      SetFit's defaults (batch (16, 2), body lr 2e-5, one contrastive epoch, logistic-regression head)
              with num_iterations=20 pairs per sentence (the SetFit paper's R): SetFit 1.x's default
              "oversampling" draws every negative pair once, about N^2 pairs (146,000 at 5 x 77), which
              takes days on 2 cores.
  fastfit     FastFit's README recipe (40 epochs, batch 32, num_repeats 4, adafactor, clf_loss_factor 0.1,
              max_text_length 128) without fp16 (CPU); inference with its FastFit class.
Run by the reference environment's python with the bench pins (scripts/bench-requirements.txt)."""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


def read(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def hf_trainer(model_dir, xtr, ytr, xte, seed, work):
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments
    labels = sorted(set(ytr))
    ids = {y: i for i, y in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ids)

    class Rows(torch.utils.data.Dataset):
        def __init__(self, texts, ys=None):
            self.enc = tok(texts, truncation=True, max_length=128)
            self.ys = ys

        def __len__(self):
            return len(self.enc["input_ids"])

        def __getitem__(self, i):
            item = {k: v[i] for k, v in self.enc.items()}
            if self.ys is not None:
                item["labels"] = self.ys[i]
            return item

    from transformers import DataCollatorWithPadding
    args = TrainingArguments(output_dir=os.path.join(work, "hf"), num_train_epochs=10 if len(xtr) <= 2000 else 3, seed=seed,
                             save_strategy="no", report_to=[], logging_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(xtr, [ids[y] for y in ytr]),
                      data_collator=DataCollatorWithPadding(tok))
    t0 = time.time()
    trainer.train()
    secs = time.time() - t0
    logits = trainer.predict(Rows(xte)).predictions
    return [labels[i] for i in np.argmax(logits, axis=1)], secs


def setfit(model_dir, xtr, ytr, xte, seed, work):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    labels = sorted(set(ytr))
    model = SetFitModel.from_pretrained(model_dir, labels=labels)
    args = TrainingArguments(output_dir=os.path.join(work, "setfit"), num_iterations=20, seed=seed, report_to="none",
                             save_strategy="no", logging_strategy="no", show_progress_bar=False)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": xtr, "label": ytr}))
    t0 = time.time()
    trainer.train()
    secs = time.time() - t0
    return [str(p) for p in model.predict(xte, show_progress_bar=False)], secs


def fastfit(model_dir, xtr, ytr, xte, seed, work):
    from datasets import Dataset, DatasetDict
    import fastfit.train
    from fastfit import FastFit, FastFitTrainer

    class Accuracy:  # FastFit fetches datasets' "accuracy" script from GitHub for its eval metric; it is never used here
        def compute(self, predictions, references):
            return {"accuracy": sum(int(p == r) for p, r in zip(predictions, references)) / max(1, len(references))}

    fastfit.train.load_metric = lambda *a, **k: Accuracy()
    from transformers import AutoTokenizer
    train = Dataset.from_dict({"text": xtr, "label": ytr})
    trainer = FastFitTrainer(model_name_or_path=model_dir, label_column_name="label", text_column_name="text",
                             num_train_epochs=40, per_device_train_batch_size=32, per_device_eval_batch_size=64,
                             max_text_length=128, dataloader_drop_last=False, num_repeats=4, optim="adafactor",
                             clf_loss_factor=0.1, fp16=False, seed=seed, output_dir=os.path.join(work, "fastfit"),
                             overwrite_output_dir=True, report_to="none", save_strategy="no", use_cpu=True,
                             disable_tqdm=True, dataset=DatasetDict({"train": train, "validation": train, "test": train}))
    t0 = time.time()
    model = trainer.train()
    secs = time.time() - t0
    # the trained model as FastFit's inference class (what its export_model gives: that saves and loads, which
    # fails under transformers 4.46, whose save_pretrained builds the config without arguments), in eval mode;
    # its README's pipeline passes token_type_ids, which FastFit's forward does not take with a BERT tokenizer,
    # so the texts go through the same tokenizer and forward by hand, 64 at a time
    import torch
    model.__class__ = FastFit
    model.eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    pred = []
    for i in range(0, len(xte), 64):
        enc = tok(xte[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        pred += [model.config.id2label[int(j)] for j in logits.argmax(-1)]
    return pred, secs


def main():
    system, model_dir, train, test, seed, threads, out = sys.argv[1:8]
    import torch
    torch.set_num_threads(int(threads))
    import transformers.generation.utils as gen_utils  # Debian's torch 1.13: its FSDP import fails on python 3.11
    gen_utils.is_fsdp_managed_module = lambda m: False
    xtr, ytr = read(train)
    xte, _ = read(test)
    work = os.path.dirname(os.path.abspath(out))
    pred, secs = {"hf_trainer": hf_trainer, "setfit": setfit, "fastfit": fastfit}[system](model_dir, xtr, ytr, xte, int(seed), work)
    json.dump({"pred": pred, "train_seconds": secs}, open(out, "w"))


if __name__ == "__main__":
    main()
