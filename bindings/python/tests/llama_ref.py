"""A plain NumPy forward pass of a Llama decoder in Hugging Face layout (float32 safetensors, one
file), written from the transformers LlamaForCausalLM definition: an independent reference for
the logits the binding returns. Enough for the stories260K fixture; not a general loader."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise NotImplementedError(f"{name}: dtype {info['dtype']}")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[base + a : base + b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


class LlamaRef:
    def __init__(self, model_dir: Path):
        cfg = json.loads((model_dir / "config.json").read_text())
        self.w = read_safetensors(model_dir / "model.safetensors")
        self.n_layer = cfg["num_hidden_layers"]
        self.n_head = cfg["num_attention_heads"]
        self.n_head_kv = cfg.get("num_key_value_heads", self.n_head)
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.n_head
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        assert not cfg.get("rope_scaling"), "rope scaling is not modelled here"
        self.lm_head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        self.act = None  # optional rounding of every product's activations (quantized weight types)

    def _mm(self, x, w):
        return (x if self.act is None else self.act(x)) @ w.T

    def _norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def _rope(self, x, pos):  # x: (T, H, D); HF rotate_half convention
        d = self.head_dim
        inv = 1.0 / (self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        ang = np.outer(pos, inv)  # (T, D/2)
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
        rot = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], axis=-1)
        return x * cos + rot * sin

    def logits(self, tokens: list[int]) -> np.ndarray:
        """Logits (float64) after every token of `tokens`, shape (len(tokens), n_vocab)."""
        return self._mm(self.hidden(tokens), self.lm_head)

    def hidden(self, tokens: list[int]) -> np.ndarray:
        """Final hidden states (after the last RMSNorm), shape (len(tokens), n_embd)."""
        w, T = self.w, len(tokens)
        x = w["model.embed_tokens.weight"][np.asarray(tokens)]
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        group = self.n_head // self.n_head_kv
        for i in range(self.n_layer):
            p = f"model.layers.{i}."
            h = self._norm(x, w[p + "input_layernorm.weight"])
            q = self._mm(h, w[p + "self_attn.q_proj.weight"]).reshape(T, self.n_head, self.head_dim)
            k = self._mm(h, w[p + "self_attn.k_proj.weight"]).reshape(T, self.n_head_kv, self.head_dim)
            v = self._mm(h, w[p + "self_attn.v_proj.weight"]).reshape(T, self.n_head_kv, self.head_dim)
            q, k = self._rope(q, pos), self._rope(k, pos)
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            att = np.einsum("thd,shd->hts", q, k) / np.sqrt(self.head_dim) + mask
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", att, v).reshape(T, -1)
            x = x + self._mm(o, w[p + "self_attn.o_proj.weight"])
            h = self._norm(x, w[p + "post_attention_layernorm.weight"])
            g = self._mm(h, w[p + "mlp.gate_proj.weight"])
            u = self._mm(h, w[p + "mlp.up_proj.weight"])
            x = x + self._mm((g / (1.0 + np.exp(-g))) * u, w[p + "mlp.down_proj.weight"])
        return self._norm(x, w["model.norm.weight"])
