"""Training (libeurollm's experimental API): losses against the NumPy reference forward pass,
steps against the C API driven through ctypes, and the files a trainer writes."""

import json

import numpy as np
import pytest

import eurollm
from llama_ref import read_safetensors

TEXTS = ["Once upon a time, there was a little girl named Lily.", "Tom and Sam went to the shop to buy some milk."]


@pytest.fixture
def batch(model):
    seqs = [model.tokenize(t) for t in TEXTS]
    n = min(map(len, seqs))
    return np.array([s[:n] for s in seqs], dtype=np.int32)


def reference_loss(ref, tokens, labels):
    """Mean cross-entropy, Hugging Face convention: position t predicts labels[t + 1]; -100 ignored."""
    total, count = 0.0, 0
    for seq, lab in zip(np.atleast_2d(tokens), np.atleast_2d(labels)):
        logits = ref.logits(list(seq))
        for t in range(len(seq) - 1):
            y = lab[t + 1]
            if y == -100:
                continue
            row = logits[t]
            total += np.log(np.exp(row - row.max()).sum()) + row.max() - row[y]
            count += 1
    return total / count


def test_params_defaults_match_the_c_init(capi):
    from capi_ref import TrainerParams as CTrainerParams, VERSIONS
    import ctypes
    c = CTrainerParams()
    assert capi.lib.eurollm_trainer_params_init(ctypes.byref(c), VERSIONS["trainer"]) == 0
    got = eurollm.TrainerParams().to_dict()
    for name, _ in CTrainerParams._fields_:
        if name != "version":
            assert got[name] == pytest.approx(getattr(c, name)), name
    p = eurollm.TrainerParams(mode="full", schedule="linear", lora_targets=eurollm.LoraTarget.Q | eurollm.LoraTarget.V)
    assert p.mode is eurollm.TrainMode.FULL and p.schedule is eurollm.LrSchedule.LINEAR and p.lora_targets == 5


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_evaluate_and_logits_match_reference_before_training(model, ref, batch, mode):
    with eurollm.Trainer(model, mode=mode, n_threads=1) as tr:
        labels = batch.copy()
        labels[:, :3] = -100  # loss masking: the prompt part is not trained
        assert tr.evaluate(batch, labels) == pytest.approx(reference_loss(ref, batch, labels), rel=1e-4)
        assert tr.evaluate(batch) == pytest.approx(reference_loss(ref, batch, batch), rel=1e-4)
        want = ref.logits(list(batch[0]))
        np.testing.assert_allclose(tr.logits(batch[0]), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_steps_match_the_c_api(model, cmodel, batch, mode):
    kw = dict(mode=1 if mode == "lora" else 0, lr=1e-3, seed=3, n_threads=1, lora_rank=4, lora_alpha=8.0)
    with eurollm.Trainer(model, **{**kw, "mode": mode}) as tr:
        names = tr.tensor_names
        assert names and tr.n_elements > 0
        results = [tr.step(batch) for _ in range(3)]
        values = {n: tr.get_tensor(n) for n in names[:6]}
        assert tr.step_count == 3
    c_results, c_values = cmodel.train([(batch, batch)] * 3, names[:6], **kw)
    for r, c in zip(results, c_results):
        assert (r.loss, r.grad_norm, r.lr, r.tokens, r.loss_tokens, r.step) == \
               (c["loss"], c["grad_norm"], c["lr"], c["tokens"], c["loss_tokens"], c["step"])
    for n in values:
        np.testing.assert_array_equal(values[n], c_values[n])


def test_training_lowers_the_loss_and_step_reports_the_pre_step_loss(model, batch):
    with eurollm.Trainer(model, mode="lora", lr=5e-3, lora_rank=8, lora_targets=eurollm.LoraTarget.ALL,
                         n_threads=1) as tr:
        before = tr.evaluate(batch)
        first = tr.step(batch)
        assert first.loss == pytest.approx(before, rel=1e-5) and first.step == 1
        assert first.tokens == batch.size and first.loss_tokens == batch.shape[0] * (batch.shape[1] - 1)
        for _ in range(15):
            last = tr.step(batch)
        assert tr.evaluate(batch) < before and last.step == 16


def test_bf16_precision_steps_track_exact(model, batch):
    assert eurollm.TrainerParams().precision is eurollm.Precision.EXACT
    assert eurollm.TrainerParams(precision="bf16").precision is eurollm.Precision.BF16
    with pytest.raises(ValueError):
        eurollm.TrainerParams(precision="fp8")
    kw = dict(mode="lora", lr=5e-3, lora_targets=eurollm.LoraTarget.ALL, n_threads=1)
    with eurollm.Trainer(model, **kw) as exact, eurollm.Trainer(model, precision=eurollm.Precision.BF16, **kw) as bf16:
        differ = False
        for _ in range(4):
            a, b = exact.step(batch), bf16.step(batch)
            # bf16 operands: the same training run to within bf16 rounding of the products.
            assert b.loss == pytest.approx(a.loss, rel=2e-2) and b.grad_norm == pytest.approx(a.grad_norm, rel=5e-2)
            differ = differ or b.loss != a.loss
        assert differ, "BF16 gave EXACT's losses bit for bit: the precision did not reach the trainer"
        assert bf16.evaluate(batch) == pytest.approx(exact.evaluate(batch), rel=2e-2)


def test_gradients_and_moments(model, batch):
    with eurollm.Trainer(model, mode="lora", lora_targets=eurollm.LoraTarget.Q, n_threads=1) as tr:
        loss = tr.compute_gradients(batch)
        assert loss == pytest.approx(tr.evaluate(batch), rel=1e-5)
        grads = [tr.get_tensor(n, eurollm.TensorPart.GRAD) for n in tr.tensor_names]
        assert any(np.abs(g).sum() > 0 for g in grads)
        assert tr.step_count == 0
        with pytest.raises(eurollm.InvalidArgumentError):
            tr.get_tensor("no.such.tensor")


def test_bad_batches(model, batch):
    with eurollm.Trainer(model, n_threads=1) as tr:
        with pytest.raises(eurollm.InvalidArgumentError):
            tr.step(batch, np.full_like(batch, -100))  # nothing to learn
        bad = batch.copy()
        bad[0, 1] = model.n_vocab
        with pytest.raises(eurollm.InvalidArgumentError):
            tr.step(bad)
        with pytest.raises(ValueError):
            tr.step(batch, batch[:, :-1])
        with pytest.raises(TypeError):
            tr.step(batch.astype(np.float32))
        with pytest.raises(ValueError):
            tr.step(batch[None])
        with pytest.raises(TypeError):
            tr.step("text")
        assert tr.step_count == 0
        tr.step(batch[0])  # one 1-D sequence is a batch of one
        assert tr.step_count == 1
    with pytest.raises(ValueError):
        tr.step(batch)
    with pytest.raises(TypeError):
        eurollm.Trainer("model")
    with pytest.raises(TypeError):
        eurollm.Trainer(model, bogus=1)
    with pytest.raises(ValueError):
        eurollm.Trainer(model, mode="half")


def test_export_peft(model, batch, tmp_path):
    with eurollm.Trainer(model, mode="lora", lora_rank=4, lora_alpha=8.0, n_threads=1) as tr:
        tr.step(batch)
        tr.export_peft(tmp_path / "adapter")
        cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
        assert cfg["r"] == 4 and cfg["lora_alpha"] == 8
        saved = read_safetensors(tmp_path / "adapter" / "adapter_model.safetensors")
        assert set(saved) == set(tr.tensor_names)
        for name, array in saved.items():
            np.testing.assert_array_equal(array.ravel().astype(np.float32), tr.get_tensor(name))
    with eurollm.Trainer(model, mode="lora", lora_rank=4, lora_alpha=8.0, n_threads=1) as other:
        other.load_peft(tmp_path / "adapter")
        for name in saved:
            np.testing.assert_array_equal(other.get_tensor(name), saved[name].ravel().astype(np.float32))


def test_merged_models_compute_what_the_trainer_does(model, batch, tmp_path):
    with eurollm.Trainer(model, mode="lora", lora_rank=4, lr=1e-2, lora_targets=eurollm.LoraTarget.ALL,
                         n_threads=1) as tr:
        for _ in range(3):
            tr.step(batch)
        want = tr.logits(batch[0])
        tr.save_model(tmp_path / "merged")
        tr.export_peft(tmp_path / "adapter")
    eurollm.adapter_merge(model.path, tmp_path / "adapter", tmp_path / "merged2")
    for d in ("merged", "merged2"):
        with eurollm.Model(tmp_path / d) as m, eurollm.Context(m, n_ctx=64, n_threads=1) as c:
            np.testing.assert_allclose(c.decode_all(batch[0]), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_checkpoints_resume_exactly(model, batch, tmp_path):
    kw = dict(mode="lora", lora_rank=4, lr=1e-3, n_threads=1, seed=9, precision="bf16")
    with eurollm.Trainer(model, **kw) as a:
        a.step(batch)
        a.step(batch)
        a.data_position = (1, 42, 7)
        a.save_checkpoint(tmp_path / "run")
        next_a = a.step(batch)
        names = a.tensor_names
        values_a = [a.get_tensor(n) for n in names]
    params = eurollm.TrainerParams.from_checkpoint(tmp_path / "run")
    assert params.mode is eurollm.TrainMode.LORA and params.lora_rank == 4
    assert params.precision is eurollm.Precision.BF16  # the run's precision comes back with it
    with eurollm.Trainer(model, params, n_threads=1) as b:
        b.load_checkpoint(tmp_path / "run")
        assert b.step_count == 2 and b.data_position == (1, 42, 7)
        next_b = b.step(batch)
        assert (next_b.loss, next_b.step) == (next_a.loss, next_a.step)
        for n, v in zip(names, values_a):
            np.testing.assert_array_equal(b.get_tensor(n), v)
        with pytest.raises(eurollm.IoError):
            b.load_checkpoint(tmp_path / "nothing-here")


def test_dataset(model, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 4))
    ds = eurollm.Dataset(model, path, 16)
    n = len(ds)
    assert n > 0 and ds.seq_len == 16
    tokens, labels = ds.get(0, n)
    assert tokens.shape == labels.shape == (n, 16) and tokens.dtype == np.int32
    # documents are BOS + text + EOS, concatenated and cut into sequences
    stream = []
    for t in TEXTS * 4:
        stream += [model.bos_id] + model.tokenize(t, add_bos=False) + [model.eos_id]
    assert list(tokens.ravel()) == stream[: n * 16]
    held = ds.split(1)
    assert len(held) == 1 and len(ds) == n - 1
    shuffled, _ = ds.get(0, len(ds), seed=5, shuffle=True)
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, tokens[: n - 1]))
    with eurollm.Trainer(model, n_threads=1) as tr:
        assert tr.step(*ds.get(0, 2)).loss_tokens > 0
    with pytest.raises(eurollm.IoError):
        eurollm.Dataset(model, tmp_path / "missing.jsonl", 16)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(eurollm.Error):
        eurollm.Dataset(model, bad, 16)
