#!/usr/bin/env python3
"""Write deterministic tiny Llama-family models in Hugging Face layout.

    python3 tests/data/make_tiny_models.py OUTDIR
    python3 tests/data/make_tiny_models.py --list      # the models and the switches each covers

Pure Python 3 standard library (no numpy, no torch): CI runs it to build the fixtures of the
end-to-end tests. Every byte of every file is a function of this script alone (own PRNG, fixed
JSON layout), so the sha256 of each file is recorded in the golden files under tests/data/golden/
and a drift in the generator fails the tests loudly.

Each model directory holds config.json, generation_config.json, tokenizer_config.json (no
tokenizer.model: the models are driven by token ids) and model.safetensors, or
model-0000K-of-0000N.safetensors shards + model.safetensors.index.json. The safetensors files are
written by hand: 8-byte little-endian header length, JSON header (dtype, shape, data_offsets,
__metadata__ {"format": "pt"}) padded with spaces to a multiple of 8 bytes, then the raw
little-endian tensor data.

The models together cover every switch of the architecture (see MODELS below and --list):
GQA ratios 1/2/4 and MQA, tied and untied head, rope_theta, linear and llama3 rope scaling,
rms_norm_eps 1e-5 / 1e-6, Mistral sliding window, attention and MLP biases, an explicit head_dim
that differs from hidden/heads, sharded checkpoints, F32 / F16 / BF16 storage, and a list-valued
eos_token_id in generation_config.json.
"""

import hashlib
import json
import math
import os
import struct
import sys

# --------------------------------------------------------------------------------------------
# Deterministic PRNG: splitmix64 -> uniform doubles in [0, 1) from the top 53 bits.
# --------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & _MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def uniform(self, lo, hi):
        u = (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)  # 2**53
        return lo + (hi - lo) * u


def seed_for(model_name, tensor_name):
    """A per-tensor seed, so adding or reordering tensors never changes the others."""
    h = hashlib.sha256((model_name + "/" + tensor_name).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little")


# --------------------------------------------------------------------------------------------
# Encoding of float values into the storage dtypes.
# --------------------------------------------------------------------------------------------

def _f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _bf16_bits(x):
    """float -> f32 (IEEE round to nearest) -> bf16 by round-to-nearest-even on the f32 bits."""
    b = _f32_bits(x)
    if (b & 0x7F800000) == 0x7F800000:  # inf / nan: never produced here, keep it well defined
        return (b >> 16) | (0x40 if (b & 0x007FFFFF) else 0)
    lsb = (b >> 16) & 1
    return ((b + 0x7FFF + lsb) >> 16) & 0xFFFF


def encode(values, dtype):
    n = len(values)
    if dtype == "F32":
        return struct.pack("<%df" % n, *values)
    if dtype == "F16":
        return struct.pack("<%de" % n, *values)  # struct rounds to nearest even
    if dtype == "BF16":
        return struct.pack("<%dH" % n, *[_bf16_bits(v) for v in values])
    raise ValueError("unknown dtype " + dtype)


DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

# --------------------------------------------------------------------------------------------
# The models. Each entry: name, HF config fields, storage dtype, shard count, generation eos.
# --------------------------------------------------------------------------------------------

_BASE = {
    "num_hidden_layers": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 128,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "initializer_range": 0.02,
    "use_cache": True,
}


def _model(name, covers, dtype, shards, cfg, gen_eos=2):
    config = dict(_BASE)
    config.update(cfg)
    return {"name": name, "covers": covers, "dtype": dtype, "shards": shards, "config": config,
            "gen_eos": gen_eos}


MODELS = [
    _model("tiny_llama_mha_tied_f32",
           ["MHA (GQA ratio 1)", "tied head", "rms_norm_eps 1e-5", "rope_theta 10000", "F32",
            "single file"],
           "F32", 1,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256,
            "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
            "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
            "tie_word_embeddings": True}),
    _model("tiny_llama_gqa2_untied_bf16",
           ["GQA ratio 2", "untied head", "rms_norm_eps 1e-6", "rope_theta 500000", "BF16"],
           "BF16", 1,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 320,
            "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 8,
            "num_key_value_heads": 4, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
            "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
            "tie_word_embeddings": False}),
    _model("tiny_llama_gqa4_linrope_f16",
           ["GQA ratio 4", "linear rope scaling x2 (legacy 'type' key)", "F16",
            "generation_config eos_token_id list [2, 7]"],
           "F16", 1,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256,
            "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 8,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "rope_scaling": {"type": "linear", "factor": 2.0}, "attention_bias": False,
            "mlp_bias": False, "tie_word_embeddings": False},
           gen_eos=[2, 7]),
    _model("tiny_llama_mqa_bias_headdim_f32",
           ["MQA (1 kv head)", "attention_bias", "mlp_bias",
            "explicit head_dim 16 != hidden/heads 12", "tied head", "rms_norm_eps 1e-6", "F32"],
           "F32", 1,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256,
            "hidden_size": 48, "intermediate_size": 96, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 16, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "rope_scaling": None, "attention_bias": True,
            "mlp_bias": True, "tie_word_embeddings": True}),
    _model("tiny_llama3rope_sharded_f32",
           ["llama3 rope scaling ('rope_type' key)", "rope_theta 500000", "3 shards + index",
            "GQA ratio 2 with head_dim 16", "untied head", "F32"],
           "F32", 3,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256,
            "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "max_position_embeddings": 256,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False}),
    _model("tiny_mistral_swa_bf16",
           ["model_type mistral", "sliding_window 4 (< sequence length 20)", "GQA ratio 4",
            "rope_theta 1e6", "untied head", "BF16"],
           "BF16", 1,
           {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "vocab_size": 256,
            "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 8,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
            "sliding_window": 4, "tie_word_embeddings": False}),
    _model("tiny_mistral_swa_mqa_sharded_f16",
           ["model_type mistral", "sliding_window 6", "MQA (1 kv head)", "explicit head_dim 16 (= hidden/heads)",
            "tied head", "3 shards + index", "F16", "generation_config eos_token_id list [2, 5, 9]"],
           "F16", 3,
           {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "vocab_size": 256,
            "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 16, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "sliding_window": 6, "tie_word_embeddings": True},
           gen_eos=[2, 5, 9]),
    _model("tiny_llama_linrope4_sharded_bf16",
           ["linear rope scaling x4 ('rope_type' key)", "3 shards + index", "BF16", "MHA",
            "untied head", "rms_norm_eps 1e-6"],
           "BF16", 3,
           {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 256,
            "hidden_size": 48, "intermediate_size": 80, "num_attention_heads": 6,
            "num_key_value_heads": 6, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 4.0}, "attention_bias": False,
            "mlp_bias": False, "tie_word_embeddings": False}),
]

# --------------------------------------------------------------------------------------------
# Weights.
# --------------------------------------------------------------------------------------------


def tensor_specs(cfg):
    """[(name, shape, kind)] in checkpoint order; kind selects the init distribution."""
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    ff = cfg["intermediate_size"]
    v = cfg["vocab_size"]
    attn_bias = cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)
    specs = [("model.embed_tokens.weight", [v, h], "embed")]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        specs.append((p + "input_layernorm.weight", [h], "norm"))
        for proj, rows, kind in (("q_proj", nh * hd, "qk"), ("k_proj", nkv * hd, "qk"),
                                 ("v_proj", nkv * hd, "lin")):
            specs.append((p + "self_attn." + proj + ".weight", [rows, h], kind))
            if attn_bias:
                specs.append((p + "self_attn." + proj + ".bias", [rows], "bias"))
        specs.append((p + "self_attn.o_proj.weight", [h, nh * hd], "lin"))
        if attn_bias:
            specs.append((p + "self_attn.o_proj.bias", [h], "bias"))
        specs.append((p + "post_attention_layernorm.weight", [h], "norm"))
        for proj, shape in (("gate_proj", [ff, h]), ("up_proj", [ff, h]), ("down_proj", [h, ff])):
            specs.append((p + "mlp." + proj + ".weight", shape, "lin"))
            if mlp_bias:
                specs.append((p + "mlp." + proj + ".bias", [shape[0]], "bias"))
    specs.append(("model.norm.weight", [h], "norm"))
    if not cfg.get("tie_word_embeddings", False):
        specs.append(("lm_head.weight", [v, h], "head"))
    return specs


def init_values(model_name, tensor_name, shape, kind):
    """Uniform init scaled so that attention is peaked (rope / window / mask errors show) and
    logits spread over a few units, while embeddings are small enough that rms_norm_eps matters."""
    n = 1
    for d in shape:
        n *= d
    fan_in = shape[-1]
    rng = SplitMix64(seed_for(model_name, tensor_name))
    if kind == "norm":
        lo, hi = 0.9, 1.1
    elif kind == "embed":
        lo, hi = -0.02, 0.02
    elif kind == "qk":
        a = 2.5 / math.sqrt(fan_in)
        lo, hi = -a, a
    elif kind == "head":
        a = 2.0 / math.sqrt(fan_in)
        lo, hi = -a, a
    elif kind == "bias":
        lo, hi = -0.2, 0.2
    else:  # "lin"
        a = 1.5 / math.sqrt(fan_in)
        lo, hi = -a, a
    return [rng.uniform(lo, hi) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# File writers.
# --------------------------------------------------------------------------------------------


def dumps(obj):
    """The one JSON layout of every file written here (stable across Python versions)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_safetensors(path, tensors):
    """tensors: [(name, dtype, shape, raw bytes)] written in this order, no gaps."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, _, _, raw in tensors:
            f.write(raw)
    return offset


def shard_groups(names, n_shards, n_layers):
    """Embeddings + first half of the layers / the rest of the layers / final norm + head."""
    if n_shards == 1:
        return [names]
    assert n_shards == 3

    def which(name):
        if name.startswith("model.embed_tokens"):
            return 0
        if name.startswith("model.layers."):
            layer = int(name.split(".")[2])
            return 0 if layer < (n_layers + 1) // 2 else 1
        return 2

    groups = [[], [], []]
    for name in names:
        groups[which(name)].append(name)
    return groups


def write_model(outdir, spec):
    name = spec["name"]
    cfg = spec["config"]
    dtype = spec["dtype"]
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)

    config = dict(cfg)
    config["torch_dtype"] = DTYPE_NAMES[dtype]
    write_text(os.path.join(d, "config.json"), dumps(config))
    write_text(os.path.join(d, "generation_config.json"),
               dumps({"bos_token_id": 1, "eos_token_id": spec["gen_eos"], "do_sample": False}))
    write_text(os.path.join(d, "tokenizer_config.json"),
               dumps({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                      "eos_token": "</s>", "unk_token": "<unk>",
                      "model_max_length": cfg["max_position_embeddings"]}))

    specs = tensor_specs(cfg)
    data = {}
    for tname, shape, kind in specs:
        data[tname] = (shape, encode(init_values(name, tname, shape, kind), dtype))

    names = [s[0] for s in specs]
    groups = shard_groups(names, spec["shards"], cfg["num_hidden_layers"])
    if len(groups) == 1:
        write_safetensors(os.path.join(d, "model.safetensors"),
                          [(n, dtype, data[n][0], data[n][1]) for n in names])
    else:
        weight_map = {}
        total = 0
        for k, group in enumerate(groups):
            fname = "model-%05d-of-%05d.safetensors" % (k + 1, len(groups))
            total += write_safetensors(os.path.join(d, fname),
                                       [(n, dtype, data[n][0], data[n][1]) for n in group])
            for n in group:
                weight_map[n] = fname
        write_text(os.path.join(d, "model.safetensors.index.json"),
                   dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return d


def file_hashes(model_dir):
    out = {}
    for fname in sorted(os.listdir(model_dir)):
        with open(os.path.join(model_dir, fname), "rb") as f:
            out[fname] = hashlib.sha256(f.read()).hexdigest()
    return out


def main(argv):
    if "--list" in argv[1:]:
        for spec in MODELS:
            print("%-36s %s" % (spec["name"], "; ".join(spec["covers"])))
        return 0
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: make_tiny_models.py OUTDIR | --list\n")
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    for spec in MODELS:
        d = write_model(outdir, spec)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print("%-36s %7d bytes  %s" % (spec["name"], size, d))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
