"""Several sequences in one context, batched generation and context state, against the NumPy
reference forward pass and the C API."""

import numpy as np
import pytest

import eurollm

A = "Once upon a time, there was a little girl"
B = "Lily and Ben went to the park"


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_decode_seqs_matches_separate_sequences(model, ctx, cctx, ref):
    ta, tb = model.tokenize(A), model.tokenize(B)
    out = ctx.decode_seqs({0: ta, 3: tb})
    assert set(out) == {0, 3}
    close(out[0], ref.logits(ta)[-1])
    close(out[3], ref.logits(tb)[-1])
    assert ctx.seq_n_past(0) == len(ta) and ctx.seq_n_past(3) == len(tb) and ctx.seq_n_past(1) == 0
    assert ctx.n_past == len(ta)  # the single-sequence calls act on sequence 0
    c_out = cctx.decode_seqs({0: ta, 3: tb})
    np.testing.assert_array_equal(out[0], c_out[0])
    np.testing.assert_array_equal(out[3], c_out[3])
    np.testing.assert_array_equal(ctx.seq_logits(3), out[3])
    # a second round continues each sequence; pairs work as well as a dict
    more = ctx.decode_seqs([(3, model.tokenize(" and", add_bos=False)), (0, [model.eos_id])])
    close(more[3], ref.logits(tb + model.tokenize(" and", add_bos=False))[-1])
    close(more[0], ref.logits(ta + [model.eos_id])[-1])


def test_seq_copy_shares_a_prefix(model, ctx, ref):
    prefix, cont = model.tokenize(A), model.tokenize(" named Lily", add_bos=False)
    ctx.decode(prefix)
    ctx.seq_copy(0, 5)
    assert ctx.seq_n_past(5) == len(prefix)
    close(ctx.decode_seqs({5: cont})[5], ref.logits(prefix + cont)[-1])
    ctx.seq_copy(0, 6, 4)  # only the first 4 positions
    assert ctx.seq_n_past(6) == 4
    close(ctx.decode_seqs({6: cont})[6], ref.logits(prefix[:4] + cont)[-1])


def test_seq_remove_and_keep(model, ctx, ref):
    ta, tb = model.tokenize(A), model.tokenize(B)
    ctx.decode_seqs({0: ta, 1: tb})
    ctx.seq_remove(0, 5)  # keep positions 0..4
    assert ctx.seq_n_past(0) == 5
    close(ctx.decode(ta[5:]), ref.logits(ta)[-1])
    ctx.seq_keep(1)
    assert ctx.seq_n_past(0) == 0 and ctx.seq_n_past(1) == len(tb)
    ctx.seq_remove(1)
    assert ctx.seq_n_past(1) == 0


def test_sequence_errors(model, ctx):
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.decode_seqs({eurollm.MAX_SEQUENCES: [1]})
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.decode_seqs([(1, [1]), (1, [2])])
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.seq_logits(2)  # nothing evaluated
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.seq_n_past(-1)
    with pytest.raises(eurollm.ContextFullError):
        ctx.decode_seqs({0: [1] * 200, 1: [1] * 200})
    assert ctx.seq_n_past(0) == 0 and ctx.seq_n_past(1) == 0  # nothing evaluated
    with pytest.raises(TypeError):
        ctx.decode_seqs([(1,)])
    with pytest.raises(TypeError):
        ctx.decode_seqs({"a": [1]})
    with pytest.raises(ValueError):
        ctx.seq_remove(0, -1)


def test_generators_on_several_sequences_with_step_batch(model, ctx):
    prompts = [A, B, "The cat"]
    want = {}
    for p in prompts:
        with eurollm.Context(model, n_ctx=128, n_threads=1) as c, c.generator(temperature=0.0, max_tokens=12) as g:
            g.append(model.tokenize(p))
            want[p] = [t for t in iter(g.step, None)]
    gens = [ctx.generator(temperature=0.0, max_tokens=12, seq_id=i) for i in range(3)]
    texts = ["", "", ""]
    for g, p in zip(gens, prompts):
        g.append(model.tokenize(p))
    rounds = 0
    while True:
        res = eurollm.Generator.step_batch(gens)
        assert len(res) == 3
        for i, g in enumerate(gens):
            texts[i] += g.text_delta
        rounds += 1
        if all(r is None for r in res):
            break
    assert rounds == 13
    for g, p in zip(gens, prompts):
        assert g.tokens == want[p] and g.seq_id == prompts.index(p)
        assert g.stop_reason == eurollm.StopReason.MAX_TOKENS
    for i, p in enumerate(prompts):
        with eurollm.Context(model, n_ctx=128, n_threads=1) as c:
            assert texts[i] == c.generate(p, temperature=0.0, max_tokens=12)
    for g in gens:
        g.close()


def test_step_batch_rules(model, ctx):
    assert eurollm.Generator.step_batch([]) == []
    with ctx.generator(seq_id=0, max_tokens=2) as g0, ctx.generator(seq_id=1, max_tokens=2) as g1:
        with pytest.raises(eurollm.InvalidArgumentError):
            ctx.generator(seq_id=1)  # one generator per sequence
        g0.append([1])
        g1.append([1])
        with eurollm.Context(model, n_ctx=32, n_threads=1) as other, other.generator() as g2:
            with pytest.raises(ValueError):
                eurollm.Generator.step_batch([g0, g2])
        with pytest.raises(TypeError):
            eurollm.Generator.step_batch([g0, "g1"])
        g1.close()
        with pytest.raises(ValueError):
            eurollm.Generator.step_batch([g0, g1])
        assert eurollm.Generator.step_batch([g0])[0] is not None


def test_step_batch_callback_exception(model, ctx):
    with ctx.generator(seq_id=0, max_tokens=5) as g0, ctx.generator(seq_id=1, max_tokens=5) as g1:
        g0.append([1])
        g1.append([1])

        def boom(tok, text):
            raise KeyError("cb")

        g1.set_callback(boom)
        with pytest.raises(KeyError):
            eurollm.Generator.step_batch([g0, g1])
        assert len(g0.tokens) == 1  # the step stands for the others


def test_stream_on_another_sequence(model, ctx):
    a = ctx.generate(A, temperature=0.0, max_tokens=10, seq_id=2)
    assert ctx.seq_n_past(2) > 0 and ctx.seq_n_past(0) == 0
    with eurollm.Context(model, n_ctx=128, n_threads=1) as c:
        assert a == c.generate(A, temperature=0.0, max_tokens=10)
    with pytest.raises(eurollm.InvalidArgumentError):
        ctx.generate([], seq_id=3)


# ---- state ----

def test_state_round_trip(model, ctx, cctx, ref):
    ta, tb = model.tokenize(A), model.tokenize(B)
    ctx.decode_seqs({0: ta, 1: tb})
    state = ctx.state_save()
    assert isinstance(state, bytes) and len(state) > 0
    cctx.decode_seqs({0: ta, 1: tb})
    assert state == cctx.state_bytes()
    ctx.reset()
    assert ctx.seq_n_past(0) == 0
    ctx.state_load(state)
    assert ctx.seq_n_past(0) == len(ta) and ctx.seq_n_past(1) == len(tb)
    close(ctx.seq_logits(1), ref.logits(tb)[-1])
    close(ctx.decode([2]), ref.logits(ta + [2])[-1])
    ctx.state_load(memoryview(bytearray(state)))  # any contiguous bytes-like
    assert ctx.seq_n_past(0) == len(ta)
    with eurollm.Context(model, n_ctx=256, n_threads=1) as other:
        other.state_load(state)
        close(other.decode([2]), ref.logits(ta + [2])[-1])


def test_state_files(model, ctx, tmp_path, ref):
    ta = model.tokenize(A)
    ctx.decode(ta)
    path = tmp_path / "ctx.state"
    ctx.state_save_file(path)
    assert path.is_file() and path.read_bytes() == ctx.state_save()
    ctx.reset()
    ctx.state_load_file(str(path))
    close(ctx.decode([2]), ref.logits(ta + [2])[-1])
    with pytest.raises(eurollm.IoError):
        ctx.state_load_file(tmp_path / "missing")
    with pytest.raises(eurollm.Error):
        ctx.state_save_file(tmp_path / "no-such-dir" / "x.state")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_bad_state_leaves_the_context_unchanged(model, ctx, damage):
    ctx.decode(model.tokenize(A))
    state = ctx.state_save()
    ctx.reset()
    ctx.decode([1, 403])
    before = ctx.state_save()
    bad = {"truncate": state[: len(state) // 2], "garbage": b"\x00\xff" * 64, "empty": b""}[damage]
    with pytest.raises(eurollm.Error):
        ctx.state_load(bad)
    assert ctx.state_save() == before


def test_state_load_type_errors(ctx):
    with pytest.raises(TypeError):
        ctx.state_load("text is not bytes")
    with pytest.raises((BufferError, TypeError, ValueError)):
        ctx.state_load(np.zeros((4, 4), dtype=np.uint8)[:, ::2])  # not contiguous
