"""USE-Lite's forward pass in python3-torch, reading the model.safetensors that `kotsu import tfjs` writes
(kotsu's tensor names; architecture as tests/fixtures/use_lite_reference.py reads it from the TF.js graph).
Used by bench/transfer_text.py for the "frozen USE-Lite + logistic regression" peer, the way a Python user
would probe the encoder; independent of kotsu's C++ code path."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from safetensors_io import load as load_safetensors  # noqa: E402


class UseLite:
    def __init__(self, model_dir):
        self.w = load_safetensors(model_dir + "/model.safetensors")
        self.layers = sum(1 for k in self.w if k.endswith("attention.qkv.weight"))

    def _lin(self, x, p):
        return F.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    def _ln(self, x, p):
        return F.layer_norm(x, (x.shape[-1],), self.w[p + ".weight"], self.w[p + ".bias"], 1e-6)

    @torch.no_grad()
    def embed(self, batch):
        """batch: lists of token ids (at most 128 each) -> [B, 512] unit-length embeddings."""
        B, T = len(batch), max(1, max(len(s) for s in batch))
        ids = torch.zeros(B, T, dtype=torch.long)
        m = torch.zeros(B, T)
        for i, s in enumerate(batch):
            ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
            m[i, :len(s)] = 1
        inv = self.w["use_lite.embeddings.inv_timescales"]
        pos = torch.arange(T).float()[:, None] * inv[None]
        x = 2 * self.w["use_lite.embeddings.word_embeddings.weight"][ids] + torch.cat([pos.sin(), pos.cos()], 1)
        bias = ((1 - m) * -1e9)[:, None, None, :]
        for l in range(self.layers):
            p = f"use_lite.encoder.layer.{l}."
            q, k, v = self._lin(self._ln(x, p + "attention_layer_norm"), p + "attention.qkv").chunk(3, -1)
            D = q.shape[-1]
            dh = D // 4
            heads = lambda t: t.view(B, T, 4, dh).transpose(1, 2)
            a = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) * dh ** -0.5 + bias, -1) @ heads(v)
            a = a.transpose(1, 2).reshape(B, T, D)
            r = self._lin(x, p + "residual") if (p + "residual.weight") in self.w else x
            h = r + self._lin(a, p + "attention.output")
            x = h + self._lin(torch.relu(self._lin(self._ln(h, p + "ffn_layer_norm"), p + "ffn.fc1")), p + "ffn.fc2")
        pooled = (x * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
        t = torch.tanh(self._lin(pooled, "use_lite.pooler.dense"))
        return t / t.norm(dim=1, keepdim=True).clamp_min(1e-6)

    def embed_all(self, id_lists, batch=64):
        return torch.cat([self.embed(id_lists[i:i + batch]) for i in range(0, len(id_lists), batch)]).numpy()
