#!/usr/bin/python3
"""The PyTorch + torchvision peer of bench/vision_step: the same ResNet-18 training step (batch norm in
training mode, AdamW, cross-entropy) and the same picture pipeline (PIL decode + RandomResizedCrop(224) +
RandomHorizontalFlip + ColorJitter(0.2, 0.2, 0.2) + ToTensor + Normalize) in a DataLoader with the same
number of worker processes. Prints one JSON line. --channels-last lays the model and the batch out NHWC
(torch.channels_last, PyTorch's own advice for CNNs on CPU), as kotsu's backbones run.
usage: peer_vision_step.py step [--batch 32] [--size 224] [--steps 5] [--threads 2] [--channels-last]
       peer_vision_step.py loader DIR [--workers 2] [--rounds 3]"""
import argparse
import glob
import json
import os
import statistics
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("mode")
ap.add_argument("dir", nargs="?")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--channels-last", action="store_true")
a = ap.parse_args()

if a.mode == "step":
    torch.set_num_threads(a.threads)
    model = torchvision.models.resnet18(num_classes=10)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for s in range(a.steps + 2):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"variant": "pytorch", "mode": "step", "channels_last": a.channels_last, "batch": a.batch, "size": a.size,
                      "seconds_per_step": med, "images_per_second": a.batch / med}))
else:
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(a.dir, "*.jpg")))
    tf = T.Compose([T.RandomResizedCrop(224, scale=(0.25, 1.0)), T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2, 0.2),
                    T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return tf(Image.open(files[i]).convert("RGB"))

    loader = torch.utils.data.DataLoader(Files(), batch_size=32, num_workers=a.workers, persistent_workers=True)
    rates = []
    for r in range(a.rounds + 1):  # the first round starts the workers
        t = time.perf_counter()
        n = sum(b.shape[0] for b in loader)
        if r > 0:
            rates.append(n / (time.perf_counter() - t))
    print(json.dumps({"variant": "pytorch", "mode": "loader", "workers": a.workers, "images": len(files),
                      "images_per_second": statistics.median(rates)}))
