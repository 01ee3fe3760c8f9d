"""Embeddings against the NumPy reference forward pass, the C API, and the transformers golden."""

import json

import numpy as np
import pytest

import eurollm
from conftest import golden

TEXTS = ["Once upon a time, there was a little dog.", "The sun", "Grüße aus Köln!"]


def pooled(h, pooling):
    return {"mean": h.mean(axis=0), "last": h[-1], "first": h[0]}[pooling]


def close(got, want, rtol=1e-4):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_pooled_embeddings_match_reference(model, ctx, ref, pooling):
    got = ctx.embed(TEXTS, pooling=pooling)
    assert got.shape == (len(TEXTS), model.n_embd) and got.dtype == np.float32
    for row, text in zip(got, TEXTS):
        close(row, pooled(ref.hidden(model.tokenize(text)), pooling))


def test_pooling_none_gives_one_row_per_token(model, ctx, ref):
    got = ctx.embed(TEXTS, pooling=eurollm.Pooling.NONE)
    toks = [model.tokenize(t) for t in TEXTS]
    assert got.shape == (sum(map(len, toks)), model.n_embd)
    close(got, np.concatenate([ref.hidden(t) for t in toks]))
    single = ctx.embed(TEXTS[1], pooling="none")
    assert single.shape == (len(toks[1]), model.n_embd)


def test_normalize_and_dim(model, ctx, ref):
    h = ref.hidden(model.tokenize(TEXTS[0])).mean(axis=0)
    v = ctx.embed(TEXTS[0], normalize=True)
    assert v.shape == (model.n_embd,)
    close(v, h / np.linalg.norm(h))
    v16 = ctx.embed(TEXTS[0], eurollm.EmbedParams(dim=16, normalize=True))
    close(v16, h[:16] / np.linalg.norm(h[:16]))
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.embed(TEXTS[0], dim=model.n_embd + 1)


def test_matches_c_api_and_tokens_path(model, ctx, cctx):
    got = ctx.embed(TEXTS, pooling="last", normalize=True)
    np.testing.assert_array_equal(got, cctx.embed_texts([t.encode() for t in TEXTS], pooling=1, normalize=True))
    from_tokens = ctx.embed_tokens([model.tokenize(t) for t in TEXTS], pooling="last", normalize=True)
    np.testing.assert_array_equal(got, from_tokens)
    flags = ctx.embed(TEXTS, tokenize_flags=eurollm.TokenizeFlags.NONE)
    close(flags[1], ctx.embed_tokens([model.tokenize(TEXTS[1], add_bos=False)])[0])


def test_each_text_is_embedded_as_if_alone(ctx):
    batch = ctx.embed(TEXTS)
    for i, t in enumerate(TEXTS):
        close(ctx.embed(t), batch[i], rtol=1e-5)


def test_golden_if_present(model, ctx):
    path = golden("stories260K_embed.json")
    if not path.is_file():
        pytest.skip("no embedding golden file")
    items = json.loads(path.read_text())["items"]
    for item in items:
        assert model.tokenize(item["text"]) == item["tokens"]
    got_mean = ctx.embed_tokens([i["tokens"] for i in items])
    got_last = ctx.embed_tokens([i["tokens"] for i in items], pooling="last")
    for i, item in enumerate(items):
        close(got_mean[i], np.asarray(item["mean"]))
        close(got_last[i], np.asarray(item["last"]))


def test_similarity_of_embeddings(ctx):
    e = ctx.embed(["The dog ran.", "The dog ran.", "Grüße aus Köln!"], normalize=True)
    assert eurollm.cosine_similarity(e[0], e[1]) == pytest.approx(1.0, abs=1e-5)
    assert eurollm.cosine_similarity(e[0], e[2]) == pytest.approx(float(e[0] @ e[2]), abs=1e-5)


def test_embedding_clears_the_context(model, ctx):
    ctx.decode([1, 403])
    ctx.embed("The sun")
    assert ctx.n_past == 0


def test_embed_errors(model, ctx):
    with pytest.raises(TypeError):
        ctx.embed(42)
    with pytest.raises(TypeError):
        ctx.embed(["ok", 3])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.embed([b"\xff\xfe"])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.embed_tokens([[1, model.n_vocab]])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.embed("x", pooling=9)
    with pytest.raises(TypeError):
        ctx.embed_tokens("text")
    with pytest.raises(eurollm.ContextFullError):
        ctx.embed_tokens([[1] * (ctx.n_ctx + 1)])
    assert ctx.embed([]).shape[0] == 0
    with pytest.raises(TypeError):
        ctx.embed("x", bogus=True)
