"""Model loading, properties and the tokenizer, against the C API (ctypes), config.json and the
sentencepiece library."""

import gc
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import eurollm
from conftest import golden

TEXTS = [
    "Once upon a time, there was a little girl",
    "",
    " leading space",
    "Lily said: \"Hello!\"\nThe end.",
    "Grüße aus Köln — ça va? 🙂",  # bytes the tiny vocabulary only has as byte-fallback pieces
    "<s> not special here </s>",
]


def test_loads_from_str_and_pathlike(stories):
    assert eurollm.Model(str(stories)).n_vocab == eurollm.Model(Path(stories)).n_vocab
    assert eurollm.Model(bytes(stories)).path == str(stories)


def test_properties_match_config_and_c_api(model, cmodel, stories):
    cfg = json.loads((stories / "config.json").read_text())
    assert model.n_vocab == cfg["vocab_size"]
    assert model.n_embd == cfg["hidden_size"]
    assert model.n_layer == cfg["num_hidden_layers"]
    assert model.n_head == cfg["num_attention_heads"]
    assert model.n_head_kv == cfg["num_key_value_heads"]
    assert model.head_dim == cfg["head_dim"]
    assert model.n_ff == cfg["intermediate_size"]
    assert model.n_ctx_train == cfg["max_position_embeddings"]
    assert model.bos_id == cfg["bos_token_id"] and model.eos_id == cfg["eos_token_id"]
    assert model.tied_embeddings is cfg["tie_word_embeddings"]
    assert model.architecture == cmodel.lib.eurollm_model_architecture(cmodel.h).decode() == "llama"
    assert model.chat_template is None and cmodel.lib.eurollm_model_chat_template(cmodel.h) is None
    assert model.eos_ids == cmodel.eos_ids()
    for key in eurollm.ModelInfo:
        assert model.info(key) == cmodel.info(int(key)), key
    assert model.pad_id is None if cmodel.info(int(eurollm.ModelInfo.PAD_ID)) < 0 else model.pad_id >= 0
    # n_params counted from the weights file itself
    from llama_ref import read_safetensors
    assert model.n_params == sum(a.size for a in read_safetensors(stories / "model.safetensors").values())


def test_unknown_info_key_is_an_error(model):
    with pytest.raises(eurollm.InvalidArgumentError) as e:
        model.info(999)
    assert e.value.status == eurollm.Status.ERR_INVALID_ARGUMENT and str(e.value)


@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_matches_sentencepiece_and_c(model, cmodel, sp, text):
    ids = model.tokenize(text, add_bos=False, parse_special=False)
    assert ids == sp.encode(text)
    assert model.tokenize(text, add_bos=True, parse_special=False) == [model.bos_id] + sp.encode(text)
    for flags in range(8):
        assert model.tokenize(text, flags=flags) == cmodel.tokenize(text.encode(), flags), flags
    # the default is EUROLLM_TOKENIZE_MODEL_DEFAULT; bytes are accepted as UTF-8
    assert model.tokenize(text) == cmodel.tokenize(text.encode(), 4)
    assert model.tokenize(text.encode()) == model.tokenize(text)


def test_tokenize_keyword_defaults_follow_the_model(model, cmodel):
    text = "Once upon a time"
    # add_bos=None keeps the model's choice (tokenizer_config add_bos_token: true here)
    assert model.tokenize(text, parse_special=False) == cmodel.tokenize(text.encode(), 1)
    assert model.tokenize(text, add_bos=False) == cmodel.tokenize(text.encode(), 2)
    with pytest.raises(TypeError):
        model.tokenize(text, add_bos=True, flags=1)


def test_tokenize_golden_if_present(model):
    path = golden("stories260K_tokenize.json")
    if not path.is_file():
        pytest.skip("no tokenizer golden file")
    data = json.loads(path.read_text())
    assert data["flags"] == "EUROLLM_TOKENIZE_ADD_BOS" and data["cases"]
    for case in data["cases"]:
        assert model.tokenize(case["text"], flags=eurollm.TokenizeFlags.ADD_BOS) == case["ids"], case["text"]
        if "decoded" in case:
            assert model.detokenize(case["ids"]) == case["decoded"], case["text"]


@pytest.mark.parametrize("text", TEXTS)
def test_detokenize_matches_sentencepiece_and_c(model, cmodel, sp, text):
    ids = sp.encode(text)
    assert model.detokenize(ids) == sp.decode(ids)
    assert model.detokenize_bytes(ids) == cmodel.detokenize(ids)
    assert model.detokenize([model.bos_id] + ids + [model.eos_id]) == model.detokenize(ids)
    assert model.detokenize(np.array(ids, dtype=np.int64)) == model.detokenize(ids)


def test_detokenize_cut_utf8_does_not_raise(model, cmodel, sp):
    ids = sp.encode("🙂")  # byte-fallback pieces: cutting them leaves an incomplete sequence
    assert len(ids) > 1
    for cut in range(1, len(ids)):
        exact = model.detokenize_bytes(ids[:cut])
        assert exact == cmodel.detokenize(ids[:cut])
        assert model.detokenize(ids[:cut]) == exact.decode("utf-8", errors="replace")


def test_token_to_piece_matches_sentencepiece(model, cmodel, sp):
    for tok in range(model.n_vocab):
        piece = model.token_to_piece(tok)
        assert piece.encode() == cmodel.token_to_piece(tok)
        assert piece == sp.id_to_piece(tok)


@pytest.mark.parametrize("bad", [-1, 512, 2**31 - 1])
def test_out_of_range_ids_raise(model, bad):
    with pytest.raises(eurollm.InvalidArgumentError):
        model.detokenize([5, bad])
    with pytest.raises(eurollm.InvalidArgumentError):
        model.token_to_piece(bad)


def test_bad_text_and_bad_types(model):
    with pytest.raises(eurollm.InvalidArgumentError):
        model.tokenize(b"\xff\xfe invalid utf-8")
    with pytest.raises(UnicodeEncodeError):
        model.tokenize("lone surrogate \ud800")
    with pytest.raises(TypeError):
        model.tokenize(42)
    with pytest.raises(TypeError):
        model.detokenize("not tokens")
    with pytest.raises(TypeError):
        model.detokenize([1.0, 2.0])
    with pytest.raises(TypeError):
        model.detokenize(np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        model.detokenize([2**40])
    with pytest.raises(TypeError):
        model.detokenize(None)


def test_missing_model_is_an_io_error(tmp_path):
    with pytest.raises(eurollm.IoError) as e:
        eurollm.Model(tmp_path / "does-not-exist")
    assert isinstance(e.value, OSError) and e.value.status == eurollm.Status.ERR_IO
    assert "does-not-exist" in str(e.value)
    with pytest.raises(eurollm.InvalidArgumentError):
        eurollm.Model("")
    with pytest.raises(ValueError):
        eurollm.Model("a\0b")
    with pytest.raises(TypeError):
        eurollm.Model(None)


def _copy_model(stories, dst):
    dst.mkdir()
    for f in stories.iterdir():
        shutil.copy(f, dst / f.name)
    return dst


@pytest.mark.parametrize("damage", ["truncate", "header", "config"])
def test_corrupt_model_is_a_bad_model_error(stories, tmp_path, damage):
    d = _copy_model(stories, tmp_path / "m")
    st = d / "model.safetensors"
    if damage == "truncate":
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    elif damage == "header":
        data = bytearray(st.read_bytes())
        data[0:8] = (2**60).to_bytes(8, "little")
        st.write_bytes(bytes(data))
    else:
        cfg = json.loads((d / "config.json").read_text())
        cfg["hidden_size"] = 96
        (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(eurollm.BadModelError) as e:
        eurollm.Model(d)
    assert str(e.value)


def test_device_selection(stories):
    assert eurollm.Model(stories, device="cpu").n_vocab == 512
    assert eurollm.Model(stories, eurollm.ModelParams(use_mmap=False)).n_vocab == 512
    if eurollm.device_count(eurollm.Device.CUDA) == 0:
        with pytest.raises(eurollm.UnsupportedError):
            eurollm.Model(stories, device=eurollm.Device.CUDA)
    with pytest.raises(eurollm.InvalidArgumentError):
        eurollm.Model(stories, device=17)
    with pytest.raises(eurollm.InvalidArgumentError):
        eurollm.Model(stories, device_index=-1)
    with pytest.raises(TypeError):
        eurollm.Model(stories, eurollm.ContextParams())


def test_close_and_context_manager(stories):
    with eurollm.Model(stories) as m:
        assert not m.closed
        ctx = eurollm.Context(m, n_ctx=32, n_threads=1)
    assert m.closed
    with pytest.raises(ValueError):
        m.tokenize("x")
    with pytest.raises(ValueError):
        _ = m.n_vocab
    with pytest.raises(ValueError):
        eurollm.Context(m)
    m.close()  # idempotent
    assert "closed" in repr(m)
    # the context keeps the weights alive after its model was closed
    assert ctx.decode([1, 403]).shape == (512,)
    del ctx
    gc.collect()
