#!/usr/bin/env python3
"""Convert a Hugging Face Llama-family directory (config.json, safetensors, tokenizer.model) to GGUF v3.

    python3 scripts/convert_hf_to_gguf.py MODEL_DIR OUT.gguf [--outtype f32|f16|bf16|q8_0|q4_0]

Writes what llama.cpp's convert_hf_to_gguf.py writes for a `llama` model: the `llama.*` metadata,
the SentencePiece vocabulary as `tokenizer.ggml.*` (model "llama", padded with [PADn] tokens up to
vocab_size as llama.cpp does), the chat template, and the tensors under llama.cpp's names, with the
rows of attn_q / attn_k permuted from Hugging Face's rotate-half rope layout to the interleaved one
llama.cpp expects. 1-D tensors (norms) stay F32; 2-D weights take --outtype (quantized with the
`gguf` package's reference quantizers, the same rules as ggml's). Needs numpy, gguf, sentencepiece.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import gguf


def read_safetensors(path):
    """name -> (dtype, shape, numpy memmap of the raw bytes)"""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    base = 8 + hlen
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], raw[base + a: base + b])
    return out


def to_f32(dtype, shape, raw):
    if dtype == "F32":
        return raw.view(np.float32).reshape(shape)
    if dtype == "F16":
        return raw.view(np.float16).astype(np.float32).reshape(shape)
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    raise SystemExit(f"unsupported dtype {dtype}")


def load_tensors(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(os.path.join(model_dir, f)))
    return tensors


def permute(w, n_head, n_head_kv):
    """HF rotate-half row order -> llama.cpp interleaved order (llama.cpp's LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


QTYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "bf16": gguf.GGMLQuantizationType.BF16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
    "q4_0": gguf.GGMLQuantizationType.Q4_0,
}
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}


def add_vocab(w, model_dir, n_vocab, tok_config):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        else:
            t = gguf.TokenType.NORMAL
        types.append(t)
    added = (tok_config or {}).get("added_tokens_decoder", {})
    for tid in range(len(tokens), n_vocab):
        a = added.get(str(tid))
        if a:
            tokens.append(a["content"].encode("utf-8"))
            scores.append(-1000.0)
            types.append(gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(f"[PAD{tid}]".encode("utf-8"))
            scores.append(-1000.0)
            types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    if sp.unk_id() >= 0:
        w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(bool((tok_config or {}).get("add_bos_token", True)))
    w.add_add_eos_token(bool((tok_config or {}).get("add_eos_token", False)))
    if tok_config and isinstance(tok_config.get("chat_template"), str):
        w.add_chat_template(tok_config["chat_template"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", default="f16", choices=sorted(QTYPES))
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model_dir, "config.json")))
    tok_cfg_path = os.path.join(args.model_dir, "tokenizer_config.json")
    tok_cfg = json.load(open(tok_cfg_path)) if os.path.exists(tok_cfg_path) else None
    if cfg.get("model_type") not in ("llama", "mistral"):
        raise SystemExit("only llama / mistral models")
    n_head, n_head_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    d = cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or d // n_head
    n_vocab = cfg["vocab_size"]

    w = gguf.GGUFWriter(args.out, "llama", use_temp_file=False)
    w.add_name(os.path.basename(os.path.normpath(args.model_dir)))
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(d)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    if head_dim != d // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-5))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rs["factor"])
    elif rs:
        raise SystemExit(f"rope_scaling {rs} is not handled by this converter")
    if cfg.get("sliding_window"):
        raise SystemExit("sliding window models are not handled by this converter")
    w.add_vocab_size(n_vocab)
    w.add_file_type(FILE_TYPES[args.outtype])
    add_vocab(w, args.model_dir, n_vocab, tok_cfg)

    t = load_tensors(args.model_dir)
    names = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight")]
    if not cfg.get("tie_word_embeddings", False):
        names.append(("lm_head.weight", "output.weight"))
    hf_names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                "mlp.down_proj": "ffn_down"}
    for l in range(cfg["num_hidden_layers"]):
        for hf, gg in hf_names.items():
            names.append((f"model.layers.{l}.{hf}.weight", f"blk.{l}.{gg}.weight"))
            if f"model.layers.{l}.{hf}.bias" in t:
                names.append((f"model.layers.{l}.{hf}.bias", f"blk.{l}.{gg}.bias"))
    qtype = QTYPES[args.outtype]
    for hf, gg in names:
        if hf not in t:
            raise SystemExit(f"missing tensor {hf}")
        dtype, shape, raw = t[hf]
        x = to_f32(dtype, shape, raw)
        if gg.endswith("attn_q.weight") or gg.endswith("attn_q.bias"):
            x = permute(x, n_head, n_head)
        elif gg.endswith("attn_k.weight") or gg.endswith("attn_k.bias"):
            x = permute(x, n_head, n_head_kv)
        x = np.ascontiguousarray(x)
        q = qtype
        block = gguf.GGML_QUANT_SIZES[q][0]
        if x.ndim == 2 and x.shape[1] % block != 0:
            q = gguf.GGMLQuantizationType.F16  # as llama.cpp falls back for rows the blocks do not divide
        if x.ndim == 1 or q == gguf.GGMLQuantizationType.F32:
            w.add_tensor(gg, x.astype(np.float32))
        elif q == gguf.GGMLQuantizationType.F16:
            w.add_tensor(gg, x.astype(np.float16))
        else:
            w.add_tensor(gg, gguf.quants.quantize(x, q), raw_dtype=q)
        print(f"{gg:32s} {str(list(x.shape)):16s} {q.name if x.ndim == 2 else 'F32'}", file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()


if __name__ == "__main__":
    main()
