"""Interoperability with Hugging Face transformers, computed live on the same weights.
Skipped (not passed) when torch/transformers are not installed; the goldens under tests/data/golden
(made by transformers) are checked by test_context.py / test_embed.py / test_generator.py anyway."""

import numpy as np
import pytest

import eurollm

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["Once upon a time, there was a little girl", "The sun", "Grüße aus Köln!"]


@pytest.fixture(scope="module")
def hf(stories):
    m = transformers.AutoModelForCausalLM.from_pretrained(str(stories), torch_dtype=torch.float32,
                                                          attn_implementation="eager")
    m.eval()
    return m


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_logits_equal_transformers(model, ctx, hf):
    for text in TEXTS:
        tokens = model.tokenize(text)
        with torch.no_grad():
            want = hf(torch.tensor([tokens])).logits[0].numpy()
        ctx.reset()
        close(ctx.decode_all(tokens), want)


def test_embeddings_equal_transformers(model, ctx, hf):
    for pooling in ("mean", "last", "first"):
        got = ctx.embed(TEXTS, pooling=pooling)
        for row, text in zip(got, TEXTS):
            with torch.no_grad():
                h = hf.model(torch.tensor([model.tokenize(text)])).last_hidden_state[0].numpy()
            close(row, {"mean": h.mean(0), "last": h[-1], "first": h[0]}[pooling])


def test_greedy_generation_equals_transformers(model, hf):
    tokens = model.tokenize("Once upon a time")
    with torch.no_grad():
        out = hf.generate(torch.tensor([tokens]), max_new_tokens=30, do_sample=False)[0].tolist()[len(tokens):]
    with eurollm.Context(model, n_ctx=128, n_threads=1) as c, c.generator(temperature=0.0, max_tokens=30) as g:
        g.append(tokens)
        got = [t for t in iter(g.step, None)]
    eos = set(model.eos_ids)
    want = []
    for t in out:
        if t in eos:
            break
        want.append(t)
    assert got == want


def test_exported_lora_adapter_loads_in_peft(model, stories, tmp_path):
    peft = pytest.importorskip("peft")
    tokens = model.tokenize("Once upon a time, there was a little girl named Lily.")
    with eurollm.Trainer(model, mode="lora", lora_rank=4, lora_alpha=8.0, lr=1e-2,
                         lora_targets=eurollm.LoraTarget.ALL, n_threads=1) as tr:
        for _ in range(3):
            tr.step([tokens])
        want = tr.logits(tokens)
        tr.export_peft(tmp_path / "adapter")
    base = transformers.AutoModelForCausalLM.from_pretrained(str(stories), torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    with_adapter = peft.PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        got = with_adapter(torch.tensor([tokens])).logits[0].numpy()
    close(want, got)
