"""Process-wide functions, enums, errors and the parameter objects."""

import copy
import ctypes

import numpy as np
import pytest

import eurollm
from capi_ref import ContextParams as CContextParams
from capi_ref import EmbedParams as CEmbedParams
from capi_ref import GeneratorParams as CGeneratorParams
from capi_ref import ModelParams as CModelParams


def test_version_matches_the_loaded_library(capi):
    assert eurollm.version() == capi.version_string()
    assert eurollm.version_number() == capi.lib.eurollm_version_number()
    major, minor, patch = (int(x) for x in eurollm.version().split("."))
    assert eurollm.version_number() == major * 10000 + minor * 100 + patch
    assert eurollm.__version__ == eurollm.version()  # built against the header of the loaded library


def test_status_names_come_from_the_library(capi):
    for status in eurollm.Status:
        assert eurollm.status_string(status) == capi.status_string(int(status))
    assert eurollm.status_string(-12345) == capi.status_string(-12345)


def test_device_count(capi):
    for kind in eurollm.Device:
        assert eurollm.device_count(kind) == capi.lib.eurollm_device_count(int(kind))
    assert eurollm.device_count(eurollm.Device.CPU) == 1


def test_device_name_and_memory():
    assert eurollm.device_name(eurollm.Device.CPU) == "cpu"
    assert eurollm.device_memory(eurollm.Device.CPU) == (0, 0)
    for kind in (eurollm.Device.CUDA, eurollm.Device.HIP):
        n = eurollm.device_count(kind)
        for i in range(n):
            assert eurollm.device_name(kind, i)
            total, free = eurollm.device_memory(kind, i)
            assert 0 < free <= total
        with pytest.raises(eurollm.InvalidArgumentError, match="device"):
            eurollm.device_name(kind, n)
        with pytest.raises(eurollm.InvalidArgumentError):
            eurollm.device_memory(kind, n)
    with pytest.raises(eurollm.InvalidArgumentError):
        eurollm.device_name(eurollm.Device.CPU, 1)


def test_error_hierarchy():
    assert issubclass(eurollm.InvalidArgumentError, eurollm.Error)
    assert issubclass(eurollm.InvalidArgumentError, ValueError)
    assert issubclass(eurollm.IoError, OSError)
    assert issubclass(eurollm.OutOfMemoryError, MemoryError)
    for cls, status in [(eurollm.ContextFullError, eurollm.Status.ERR_CONTEXT_FULL),
                        (eurollm.AbortedError, eurollm.Status.ERR_ABORTED),
                        (eurollm.BadModelError, eurollm.Status.ERR_BAD_MODEL),
                        (eurollm.UnsupportedError, eurollm.Status.ERR_UNSUPPORTED),
                        (eurollm.DeviceError, eurollm.Status.ERR_DEVICE)]:
        assert issubclass(cls, eurollm.Error) and cls.status == status


# ---- params: defaults are the library's own (compared with the C structs through ctypes) ----

@pytest.mark.parametrize("py_cls, c_cls, kind", [
    (eurollm.ModelParams, CModelParams, "model"),
    (eurollm.ContextParams, CContextParams, "context"),
    (eurollm.GeneratorParams, CGeneratorParams, "generator"),
    (eurollm.EmbedParams, CEmbedParams, "embed"),
])
def test_params_defaults_match_the_c_init(capi, py_cls, c_cls, kind):
    from capi_ref import VERSIONS
    c = c_cls()
    assert getattr(capi.lib, f"eurollm_{kind}_params_init")(ctypes.byref(c), VERSIONS[kind]) == 0
    expected = {name: getattr(c, name) for name, _ in c_cls._fields_ if name != "version"}
    got = py_cls().to_dict()
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name


def test_params_keywords_attributes_and_copies():
    p = eurollm.GeneratorParams(temperature=0, max_tokens=7, ignore_eos=True, seed=2**64 - 1)
    assert (p.temperature, p.max_tokens, p.ignore_eos, p.seed) == (0.0, 7, True, 2**64 - 1)
    q = p.copy()
    assert q == p and q is not p
    q.top_k = 3
    assert q != p and p.top_k != 3
    assert copy.deepcopy(p) == p
    assert "max_tokens=7" in repr(p)
    m = eurollm.ModelParams(device="cpu", use_mmap=False)
    assert m.device is eurollm.Device.CPU and m.use_mmap is False
    m.device = eurollm.Device.AUTO
    assert m.device == eurollm.Device.AUTO


@pytest.mark.parametrize("kwargs, exc", [
    ({"n_ctx": -1}, ValueError),           # uint32
    ({"n_ctx": 2**32}, ValueError),
    ({"n_ctx": "128"}, TypeError),
    ({"n_ctx": 1.5}, TypeError),
    ({"seed": -1}, ValueError),
    ({"n_threads": 2**31}, ValueError),
    ({"bogus": 1}, TypeError),
])
def test_context_params_rejects_bad_values(kwargs, exc):
    with pytest.raises(exc):
        eurollm.ContextParams(**kwargs)


@pytest.mark.parametrize("kwargs, exc", [
    ({"temperature": "hot"}, TypeError),
    ({"ignore_eos": 1}, TypeError),
    ({"max_tokens": None}, TypeError),
])
def test_generator_params_rejects_bad_types(kwargs, exc):
    with pytest.raises(exc):
        eurollm.GeneratorParams(**kwargs)


def test_enum_fields_take_names():
    with pytest.raises(ValueError):
        eurollm.ModelParams(device="tpu")
    assert eurollm.EmbedParams(pooling="last").pooling is eurollm.Pooling.LAST
    assert eurollm.EmbedParams(pooling=eurollm.Pooling.NONE).pooling is eurollm.Pooling.NONE
    with pytest.raises(ValueError):
        eurollm.EmbedParams(pooling="median")


def test_cosine_similarity_matches_numpy_and_c(capi):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    want = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert eurollm.cosine_similarity(a, b) == pytest.approx(want, rel=1e-5)
    assert eurollm.cosine_similarity(a, b) == capi.cosine_similarity(a, b)
    assert eurollm.cosine_similarity(list(a), a) == pytest.approx(1.0, rel=1e-6)
    assert eurollm.cosine_similarity(np.zeros(3), [1, 2, 3]) == 0.0
    with pytest.raises(ValueError):
        eurollm.cosine_similarity(a, b[:5])
    with pytest.raises(ValueError):
        eurollm.cosine_similarity(np.zeros((2, 2)), np.zeros((2, 2)))


def _load_quietly(path):
    """Load a model that may be refused (no tokenizer): only its log lines matter here."""
    try:
        eurollm.Model(path)
    except eurollm.Error:
        pass


def test_log_callback_receives_library_lines(stories, tmp_path):
    # A model directory without tokenizer.model: the loader logs an INFO line about it.
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(stories / name)
    lines = []
    eurollm.set_log_callback(lambda level, msg: lines.append((level, msg)), eurollm.LogLevel.DEBUG)
    try:
        _load_quietly(tmp_path)
        assert any(level == eurollm.LogLevel.INFO and "tokenizer" in msg for level, msg in lines), lines
        assert all(isinstance(level, eurollm.LogLevel) for level, _ in lines)
        lines.clear()
        eurollm.set_log_callback(lambda level, msg: lines.append(msg), eurollm.LogLevel.ERROR)
        _load_quietly(tmp_path)
        assert lines == []  # INFO is below the threshold
    finally:
        eurollm.set_log_callback(None)


def test_log_callback_exceptions_are_reported_not_raised(stories, tmp_path, monkeypatch):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(stories / name)
    seen = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(u.exc_value))

    def boom(level, msg):
        raise KeyError("from the log callback")

    eurollm.set_log_callback(boom, eurollm.LogLevel.DEBUG)
    try:
        _load_quietly(tmp_path)  # the failing callback does not disturb the call
    finally:
        eurollm.set_log_callback(None)
    assert seen and isinstance(seen[0], KeyError)


def test_python_logging_bridge(stories, tmp_path, caplog):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(stories / name)
    eurollm.use_python_logging(level=eurollm.LogLevel.INFO)
    try:
        with caplog.at_level("INFO", logger="eurollm"):
            _load_quietly(tmp_path)
    finally:
        eurollm.set_log_callback(None)
    assert any(r.name == "eurollm" and "tokenizer" in r.getMessage() for r in caplog.records)


def test_set_log_callback_validates():
    with pytest.raises(TypeError):
        eurollm.set_log_callback(42)
    with pytest.raises(ValueError):
        eurollm.set_log_callback(None, 99)
