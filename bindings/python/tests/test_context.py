"""Contexts: logits against the NumPy reference forward pass and the C API, the KV cache,
errors that leave the context usable, the abort callback, threads and lifetimes."""

import gc
import json
import threading

import numpy as np
import pytest

import eurollm
from conftest import golden

PROMPT = "Once upon a time, there was a little girl"


def test_decode_all_matches_reference_forward(model, ctx, ref):
    tokens = model.tokenize(PROMPT)
    got = ctx.decode_all(tokens)
    assert got.shape == (len(tokens), model.n_vocab) and got.dtype == np.float32
    assert got.flags.c_contiguous and got.flags.writeable
    want = ref.logits(tokens)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert ctx.n_past == len(tokens)


def test_decode_matches_c_api_and_reference(model, ctx, cctx, ref):
    tokens = model.tokenize(PROMPT)
    want = ref.logits(tokens)
    # incremental decoding through the binding: a prefix, then one token at a time
    rows = [ctx.decode(tokens[:5])]
    rows += [ctx.decode([t]) for t in tokens[5:]]
    c_rows = [cctx.decode(tokens[:5])] + [cctx.decode([t]) for t in tokens[5:]]
    for i, (row, c_row) in enumerate(zip(rows, c_rows)):
        assert row.shape == (model.n_vocab,) and row.dtype == np.float32
        np.testing.assert_array_equal(row, c_row)
        np.testing.assert_allclose(row, want[4 + i], rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_decode_all_matches_c_api_exactly(model, ctx, cctx):
    tokens = model.tokenize(PROMPT)
    np.testing.assert_array_equal(ctx.decode_all(tokens), cctx.decode_all(tokens))


def test_logits_golden_if_present(model, ctx):
    path = golden("stories260K_logits.json")
    if not path.is_file():
        pytest.skip("no logits golden file")
    data = json.loads(path.read_text())
    assert model.tokenize(data["prompt"]) == data["tokens"]
    want = np.asarray(data["logits"], dtype=np.float64)
    got = ctx.decode_all(data["tokens"])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_returned_logits_are_copies(model, ctx):
    a = ctx.decode([1, 403])
    keep = a.copy()
    ctx.decode([407])  # the library's buffer is reused; our array must not change
    np.testing.assert_array_equal(a, keep)


def test_token_inputs_accept_numpy_and_iterables(model, ctx):
    tokens = model.tokenize(PROMPT)
    a = ctx.decode_all(np.array(tokens, dtype=np.int32))
    ctx.reset()
    b = ctx.decode_all(iter(tokens))
    ctx.reset()
    c = ctx.decode_all(tuple(np.array(tokens, dtype=np.uint16)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError):
        ctx.decode(np.array([[1, 2]]))


def test_reset_and_n_past(model, ctx):
    assert ctx.n_past == 0 and ctx.n_ctx == 256
    first = ctx.decode([1, 403, 407])
    assert ctx.n_past == 3
    ctx.reset()
    assert ctx.n_past == 0
    np.testing.assert_array_equal(ctx.decode([1, 403, 407]), first)


def test_default_n_ctx_follows_the_model(model):
    with eurollm.Context(model, n_threads=1) as c:
        assert c.n_ctx == min(model.n_ctx_train, 4096)
    with eurollm.Context(model, eurollm.ContextParams(n_ctx=64), n_threads=1) as c:
        assert c.n_ctx == 64


def test_errors_leave_the_context_intact(model, ctx):
    before = ctx.decode([1, 403])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.decode([407, model.n_vocab])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.decode([-1])
    with pytest.raises(eurollm.ContextFullError) as e:
        ctx.decode([5] * (ctx.n_ctx + 1))
    assert e.value.status == eurollm.Status.ERR_CONTEXT_FULL
    with pytest.raises(eurollm.ContextFullError):
        ctx.decode_all([5] * ctx.n_ctx)
    assert ctx.n_past == 2
    after = ctx.decode([407])
    ctx.reset()
    ctx.decode([1, 403])
    np.testing.assert_array_equal(after, ctx.decode([407]))
    assert before.shape == after.shape


def test_empty_decode_is_what_the_c_api_says(model, ctx, cctx):
    from capi_ref import CApiError
    with pytest.raises(CApiError) as c_err:
        cctx.decode([])
    with pytest.raises(eurollm.Error) as e:
        ctx.decode([])
    assert e.value.status == c_err.value.status
    with pytest.raises(eurollm.Error):
        ctx.decode_all([])


def test_context_can_be_filled_exactly(model):
    with eurollm.Context(model, n_ctx=16, n_threads=1) as c:
        c.decode([1] + [5] * 15)
        assert c.n_past == 16
        with pytest.raises(eurollm.ContextFullError):
            c.decode([5])


def test_abort_callback(model, ctx):
    calls = []

    def stop_now():
        calls.append(1)
        return True

    ctx.set_abort_callback(stop_now)
    with pytest.raises(eurollm.AbortedError):
        ctx.decode(model.tokenize(PROMPT))
    assert calls
    ctx.set_abort_callback(lambda: None)  # None/False: keep going
    ctx.reset()
    ctx.decode([1, 403])
    ctx.set_abort_callback(None)
    ctx.reset()
    assert ctx.decode([1, 403]).shape == (model.n_vocab,)


def test_abort_callback_exception_propagates(model, ctx):
    def broken():
        raise ZeroDivisionError("inside the abort callback")

    ctx.set_abort_callback(broken)
    with pytest.raises(ZeroDivisionError):
        ctx.decode([1, 403])
    ctx.set_abort_callback(None)
    ctx.reset()
    assert ctx.decode([1, 403]).shape == (model.n_vocab,)  # usable again


def test_abort_callback_may_not_reenter(model, ctx):
    seen = []

    def reenter():
        try:
            ctx.decode([1])
        except RuntimeError as e:
            seen.append(e)
        return False

    ctx.set_abort_callback(reenter)
    ctx.decode([1, 403])
    ctx.set_abort_callback(None)
    assert seen and "already in use" in str(seen[0])


def test_abort_callback_can_stop_another_thread(model):
    stop = threading.Event()
    with eurollm.Context(model, n_ctx=512, n_threads=1) as c:
        c.set_abort_callback(stop.is_set)
        errors = []

        def work():
            try:
                while True:
                    c.reset()
                    c.decode([1] + [5] * 500)
            except eurollm.AbortedError as e:
                errors.append(e)

        t = threading.Thread(target=work)
        t.start()
        stop.set()
        t.join(timeout=60)
        assert not t.is_alive() and errors


def test_bad_arguments(model, ctx):
    with pytest.raises(TypeError):
        eurollm.Context("not a model")
    with pytest.raises(TypeError):
        eurollm.Context(model, bogus=1)
    with pytest.raises(TypeError):
        ctx.set_abort_callback(5)
    with pytest.raises(TypeError):
        ctx.decode("text")


def test_close_semantics(model):
    c = eurollm.Context(model, n_ctx=32, n_threads=1)
    assert c.model is model and not c.closed
    with c:
        c.decode([1])
    assert c.closed and "closed" in repr(c)
    for call in (lambda: c.decode([1]), lambda: c.n_past, c.reset, lambda: eurollm.Generator(c)):
        with pytest.raises(ValueError):
            call()
    c.close()


def test_shared_model_across_threads(model, ref):
    prompts = [PROMPT, "Lily and Ben went to the park", "The sun was shining", "One day, a cat"]
    want = {p: ref.logits(model.tokenize(p)) for p in prompts}
    results, errors = {}, []

    def work(p):
        try:
            with eurollm.Context(model, n_ctx=64, n_threads=1) as c:
                for _ in range(3):
                    c.reset()
                    results[p] = c.decode_all(model.tokenize(p))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for p in prompts:
        np.testing.assert_allclose(results[p], want[p], rtol=1e-4, atol=1e-4 * np.abs(want[p]).max())


def test_one_context_used_from_many_threads_is_serialised(model):
    with eurollm.Context(model, n_ctx=256, n_threads=1) as c:
        errors = []

        def work():
            try:
                for _ in range(20):
                    c.decode([5])
            except eurollm.ContextFullError:
                pass
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        c.decode([1])
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and c.n_past == 81


@pytest.mark.parametrize("order", ["model-first", "context-first"])
def test_any_release_order_is_safe(stories, order):
    m = eurollm.Model(stories)
    c = eurollm.Context(m, n_ctx=32, n_threads=1)
    g = eurollm.Generator(c, max_tokens=2)
    g.append([1])
    if order == "model-first":
        del m
        gc.collect()
        del c
        gc.collect()
        assert g.step() is not None  # the generator still holds what it needs
        del g
    else:
        del g
        del c
        assert m.n_vocab == 512
        del m
    gc.collect()
