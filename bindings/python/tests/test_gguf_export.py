"""Model.save_gguf writes what llama.cpp reads: each file is opened with llama.cpp's own Python
reader (the `gguf` package, gguf.GGUFReader) and checked against llama.cpp's tables for the llama
architecture (tensor names, ggml types, shapes in ne order, metadata keys), and its quantized blocks
are decoded with llama.cpp's reference dequantizer and compared with the original weights.
Quantize-at-load (ModelParams.weight_type) and the context precision option are checked too."""

from __future__ import annotations

import json

import numpy as np
import pytest

import eurollm
from llama_ref import read_safetensors

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType


def field(reader, key):
    f = reader.fields[key]
    if hasattr(f, "contents"):
        return f.contents()
    part = f.parts[f.data[0]]  # older gguf packages: a scalar's value, or a string's bytes
    return bytes(part).decode() if part.dtype == np.uint8 else part[0]


def llama_names(n_layer: int, tied: bool) -> set[str]:
    """The weight names llama.cpp's llama architecture looks for, from its own tables."""
    arch = gguf.MODEL_ARCH.LLAMA
    T = gguf.MODEL_TENSOR
    per_model = [T.TOKEN_EMBD, T.OUTPUT_NORM] + ([] if tied else [T.OUTPUT])
    per_block = [T.ATTN_NORM, T.ATTN_Q, T.ATTN_K, T.ATTN_V, T.ATTN_OUT, T.FFN_NORM, T.FFN_GATE, T.FFN_UP, T.FFN_DOWN]
    assert all(t in gguf.MODEL_TENSORS[arch] for t in per_model + per_block)
    names = {gguf.TENSOR_NAMES[t] + ".weight" for t in per_model}
    names |= {gguf.TENSOR_NAMES[t].format(bid=b) + ".weight" for t in per_block for b in range(n_layer)}
    return names


def hf_to_gguf_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (rotary pairs interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("wtype", ["q8_0", "q4_0"])
def test_save_gguf_is_what_llama_cpp_reads(model, stories, tmp_path, wtype):
    path = tmp_path / f"stories260K-{wtype}.gguf"
    model.save_gguf(path, wtype)
    r = gguf.GGUFReader(path)
    cfg = json.loads((stories / "config.json").read_text())

    assert field(r, "GGUF.version") == 3
    assert field(r, gguf.Keys.General.ARCHITECTURE) == "llama"
    K = gguf.Keys.LLM
    A = gguf.Keys.Attention
    expected = {
        K.BLOCK_COUNT: model.n_layer, K.EMBEDDING_LENGTH: model.n_embd, K.FEED_FORWARD_LENGTH: model.n_ff,
        K.CONTEXT_LENGTH: model.n_ctx_train, A.HEAD_COUNT: model.n_head, A.HEAD_COUNT_KV: model.n_head_kv,
        gguf.Keys.Rope.DIMENSION_COUNT: model.head_dim,
    }
    for key, want in expected.items():
        assert field(r, key.format(arch="llama")) == want, key
    assert field(r, A.LAYERNORM_RMS_EPS.format(arch="llama")) == pytest.approx(cfg["rms_norm_eps"])
    assert field(r, gguf.Keys.Rope.FREQ_BASE.format(arch="llama")) == pytest.approx(cfg.get("rope_theta", 10000.0))
    assert field(r, gguf.Keys.Tokenizer.MODEL) == "llama"
    assert len(r.fields[gguf.Keys.Tokenizer.LIST].data) == model.n_vocab
    assert field(r, gguf.Keys.Tokenizer.BOS_ID) == model.bos_id
    assert field(r, gguf.Keys.Tokenizer.EOS_ID) == model.eos_id

    tensors = {t.name: t for t in r.tensors}
    tied = model.tied_embeddings
    assert set(tensors) == llama_names(model.n_layer, tied)
    d, ff, q_dim, kv_dim = model.n_embd, model.n_ff, model.n_head * model.head_dim, model.n_head_kv * model.head_dim
    shapes = {"token_embd": [d, model.n_vocab], "output": [d, model.n_vocab], "output_norm": [d],
              "attn_norm": [d], "ffn_norm": [d], "attn_q": [d, q_dim], "attn_k": [d, kv_dim], "attn_v": [d, kv_dim],
              "attn_output": [q_dim, d], "ffn_gate": [d, ff], "ffn_up": [d, ff], "ffn_down": [ff, d]}
    for name, t in tensors.items():
        kind = name.split(".")[-2]
        assert list(t.shape) == shapes[kind], name  # ne order: the contiguous dimension first
        if len(shapes[kind]) == 1:
            want = Q.F32
        elif t.shape[0] % 32 != 0:
            want = Q.F16  # rows the 32-element blocks do not divide (stories260K's n_ff is 172)
        elif kind == "output" or (kind == "token_embd" and tied):
            want = Q.Q8_0  # llama.cpp keeps the output head above Q4_0 (Q6_K; Q8_0 where it cannot)
        else:
            want = Q.Q8_0 if wtype == "q8_0" else Q.Q4_0
        assert t.tensor_type == want, name
    assert tensors["blk.0.ffn_up.weight"].tensor_type == (Q.Q8_0 if wtype == "q8_0" else Q.Q4_0)

    # The blocks decode, with llama.cpp's reference dequantizer, to the original weights (q/k rows
    # in llama.cpp's interleaved order), within the type's rounding.
    hf = read_safetensors(stories / "model.safetensors")
    pairs = {"token_embd.weight": hf["model.embed_tokens.weight"],
             "blk.0.attn_q.weight": hf_to_gguf_rows(hf["model.layers.0.self_attn.q_proj.weight"], model.n_head),
             "blk.0.attn_k.weight": hf_to_gguf_rows(hf["model.layers.0.self_attn.k_proj.weight"], model.n_head_kv),
             "blk.1.ffn_up.weight": hf["model.layers.1.mlp.up_proj.weight"],
             "blk.1.ffn_down.weight": hf["model.layers.1.mlp.down_proj.weight"],
             "output_norm.weight": hf["model.norm.weight"]}
    for name, ref in pairs.items():
        t = tensors[name]
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref.shape)
        # Per 32-element block: Q8_0 rounds to a grid of amax/127 (half a step, plus the f16 scale's
        # rounding); Q4_0's grid is amax/8, and the side opposite the largest value clamps at 7/8.
        tol = {Q.F32: 0.0, Q.F16: 2.0**-10, Q.Q8_0: 0.6 / 127, Q.Q4_0: 1.07 / 8}[t.tensor_type]
        blocks = ref.reshape(-1, 32)
        amax = np.abs(blocks).max(axis=-1, keepdims=True)
        err = np.abs(got.reshape(blocks.shape) - blocks)
        assert np.all(err <= amax * tol + 1e-7), name


def test_save_gguf_round_trips_and_rejects_bad_input(model, tmp_path):
    f32 = tmp_path / "f32.gguf"
    model.save_gguf(f32, eurollm.WeightType.F32)
    r = gguf.GGUFReader(f32)
    assert {t.tensor_type for t in r.tensors} == {Q.F32}
    ids = model.tokenize("Once upon a time, there was a little girl")
    with eurollm.Model(f32) as g:
        assert g.tokenize("Once upon a time, there was a little girl") == ids
        ref = model.context().decode_all(ids)
        got = g.context().decode_all(ids)
        assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-5
    with pytest.raises(ValueError):
        model.save_gguf(tmp_path / "x.gguf", "q5_k")
    with pytest.raises(eurollm.InvalidArgumentError):
        model.save_gguf(tmp_path / "x.gguf", 42)
    with pytest.raises(eurollm.IoError):
        model.save_gguf(tmp_path / "missing" / "x.gguf", "q8_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f32.gguf"]


def test_quantize_at_load_and_precision(stories, tmp_path):
    path = tmp_path / "q8.gguf"
    with eurollm.Model(stories) as m:
        ids = m.tokenize("One day, Tom and his dog went to the beach.")
        m.save_gguf(path, "q8_0")
    assert eurollm.ModelParams().weight_type == eurollm.WeightType.AUTO
    assert eurollm.ContextParams().precision == eurollm.Precision.EXACT
    with eurollm.Model(stories, weight_type="q8_0") as mem, eurollm.Model(path) as file:
        assert np.array_equal(mem.context().decode_all(ids), file.context().decode_all(ids))
    with eurollm.Model(stories, weight_type=eurollm.WeightType.BF16, precision="bf16") as m:
        exact = m.context(precision=eurollm.Precision.EXACT).decode_all(ids)
        rounded = m.context(precision="bf16").decode_all(ids)
        assert np.max(np.abs(rounded - exact)) / np.max(np.abs(exact)) < 1e-2
        assert m.generate("Once upon a time", temperature=0.0, max_tokens=20)  # convenience contexts take it
    with pytest.raises(ValueError):
        eurollm.ContextParams(precision="fp8")


def test_f16_kv_cache(stories):
    assert eurollm.ContextParams().kv_type == eurollm.WeightType.F32
    with eurollm.Model(stories) as m:
        ids = m.tokenize("One day, Tom and his dog went to the beach.")
        f32 = m.context().decode_all(ids)
        f16 = m.context(kv_type="f16").decode_all(ids)
        err = np.max(np.abs(f16 - f32)) / np.max(np.abs(f32))
        assert 0 < err < 1e-2  # rounded keys and values: close, not equal
        with pytest.raises(eurollm.InvalidArgumentError, match="kv_type"):
            m.context(kv_type=eurollm.WeightType.Q8_0)
    with pytest.raises(eurollm.InvalidArgumentError):
        eurollm.Model(stories, weight_type=99)
