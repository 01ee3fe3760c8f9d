#!/usr/bin/env python3
"""A freshly initialised Llama model directory for training from scratch (pure Python).

    python3 scripts/default_model/init_model.py OUTDIR TOKENIZER.model [key=value ...]

Writes config.json, generation_config.json, tokenizer_config.json, tokenizer.model (copied) and
model.safetensors (BF16) with the usual Llama initialisation: normal(0, 0.02) for every matrix,
output projections (o_proj, down_proj) scaled by 1/sqrt(2 * layers), ones for the norms. The
embedding is tied to the output head. Deterministic for a given seed.
"""
import json
import math
import os
import random
import shutil
import struct
import sys

DEFAULTS = {"hidden": 192, "layers": 5, "heads": 6, "kv_heads": 2, "ffn": 512, "ctx": 256, "seed": 1}


def bf16(values):
    out = bytearray()
    for v in values:
        b = struct.unpack("<I", struct.pack("<f", v))[0]
        b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
        out += struct.pack("<H", b & 0xFFFF)
    return bytes(out)


def main(argv):
    out, tok = argv[1], argv[2]
    cfg = dict(DEFAULTS)
    for kv in argv[3:]:
        k, v = kv.split("=")
        cfg[k] = int(v)
    vocab = int(subprocess_vocab(tok))
    h, L, nh, nkv, ff = cfg["hidden"], cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["ffn"]
    hd = h // nh
    os.makedirs(out, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "intermediate_size": ff, "num_hidden_layers": L, "num_attention_heads": nh,
        "num_key_value_heads": nkv, "head_dim": hd, "vocab_size": vocab,
        "max_position_embeddings": cfg["ctx"], "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": True}, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
                   "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": False,
                   "model_max_length": cfg["ctx"]}, f, indent=2)
    shutil.copyfile(tok, os.path.join(out, "tokenizer.model"))
    rng = random.Random(cfg["seed"])
    specs = [("model.embed_tokens.weight", [vocab, h], 0.02)]
    for i in range(L):
        p = "model.layers.%d." % i
        proj = 0.02 / math.sqrt(2 * L)
        specs += [(p + "input_layernorm.weight", [h], None),
                  (p + "self_attn.q_proj.weight", [nh * hd, h], 0.02),
                  (p + "self_attn.k_proj.weight", [nkv * hd, h], 0.02),
                  (p + "self_attn.v_proj.weight", [nkv * hd, h], 0.02),
                  (p + "self_attn.o_proj.weight", [h, nh * hd], proj),
                  (p + "post_attention_layernorm.weight", [h], None),
                  (p + "mlp.gate_proj.weight", [ff, h], 0.02),
                  (p + "mlp.up_proj.weight", [ff, h], 0.02),
                  (p + "mlp.down_proj.weight", [h, ff], proj)]
    specs.append(("model.norm.weight", [h], None))
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, shape, std in specs:
        n = 1
        for d in shape:
            n *= d
        vals = [1.0] * n if std is None else [rng.gauss(0.0, std) for _ in range(n)]
        raw = bf16(vals)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for b in blobs:
            f.write(b)
    n_params = sum(len(b) // 2 for b in blobs)
    print("initialised %s: %d parameters, vocab %d" % (out, n_params, vocab))
    return 0


def subprocess_vocab(tok):
    """Vocabulary size of a SentencePiece model, read from its protobuf (field 1 = repeated pieces)."""
    data = open(tok, "rb").read()
    pos, count = 0, 0
    while pos < len(data):
        key, pos = varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 2:
            n, pos = varint(data, pos)
            if field == 1:
                count += 1
            pos += n
        elif wire == 0:
            _, pos = varint(data, pos)
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError("unexpected wire type")
    return count


def varint(data, pos):
    v, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, pos
        shift += 7


if __name__ == "__main__":
    sys.exit(main(sys.argv))
