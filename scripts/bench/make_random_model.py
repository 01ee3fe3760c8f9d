#!/usr/bin/env python3
"""Write a Llama model with EuroLLM-1.7B's exact configuration and random bf16 weights.

    python3 scripts/bench/make_random_model.py OUTDIR [--seed N] [--tokenizer PATH]

Speed does not depend on the weights' values, so the benchmark uses random ones (normal, std 0.02;
norms 1). The safetensors file (~3.3 GB) is streamed tensor by tensor, so the script needs about
1 GB of memory. The tokenizer is a small SentencePiece model (default: the stories260K fixture);
config.json keeps vocab_size 128000 and the ids above the SentencePiece vocabulary are unused.
Never commit the output.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "vocab_size": 128000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "bfloat16",
}


def tensor_shapes(c):
    d, ff, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = d // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd
    yield "model.embed_tokens.weight", (v, d)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (d,)
        yield p + "self_attn.q_proj.weight", (d, d)
        yield p + "self_attn.k_proj.weight", (kv, d)
        yield p + "self_attn.v_proj.weight", (kv, d)
        yield p + "self_attn.o_proj.weight", (d, d)
        yield p + "post_attention_layernorm.weight", (d,)
        yield p + "mlp.gate_proj.weight", (ff, d)
        yield p + "mlp.up_proj.weight", (ff, d)
        yield p + "mlp.down_proj.weight", (d, ff)
    yield "model.norm.weight", (d,)
    yield "lm_head.weight", (v, d)


def bf16_random(rng, shape, is_norm):
    n = int(np.prod(shape))
    if is_norm:
        return np.full(n, 0x3F80, dtype=np.uint16)  # 1.0
    x = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    return (x.view(np.uint32) >> 16).astype(np.uint16)  # truncation is fine for random data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1234)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--tokenizer", default=os.path.join(here, "..", "..", "..", "shared", "models", "stories260K",
                                                         "tokenizer.model"))
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    shapes = list(tensor_shapes(CONFIG))
    header, off = {}, 0
    for name, shape in shapes:
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    rng = np.random.default_rng(args.seed)
    path = os.path.join(args.outdir, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name, shape in shapes:
            f.write(bf16_random(rng, shape, name.endswith("norm.weight")).tobytes())
    os.replace(path + ".tmp", path)
    with open(os.path.join(args.outdir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(os.path.join(args.outdir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f, indent=2)
    with open(os.path.join(args.outdir, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True}, f, indent=2)
    shutil.copyfile(args.tokenizer, os.path.join(args.outdir, "tokenizer.model"))
    print(f"wrote {path} ({off / 1e9:.2f} GB of weights)", file=sys.stderr)


if __name__ == "__main__":
    main()
