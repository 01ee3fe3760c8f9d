"""Fixtures shared by the eurollm binding tests.

The stories260K fixture model is found through EUROLLM_STORIES_DIR, defaulting to
<repo>/../shared/models/stories260K; tests that need it are skipped (not passed) without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def stories_dir() -> Path:
    return Path(os.environ.get("EUROLLM_STORIES_DIR", REPO.parent / "shared" / "models" / "stories260K"))


def golden(name: str) -> Path:
    return REPO / "tests" / "data" / "golden" / name


@pytest.fixture(scope="session")
def stories() -> Path:
    d = stories_dir()
    if not (d / "config.json").is_file():
        pytest.skip(f"stories260K fixture not found at {d} (set EUROLLM_STORIES_DIR)")
    return d


@pytest.fixture(scope="session")
def model(stories):
    import eurollm

    return eurollm.Model(stories)


@pytest.fixture
def ctx(model):
    import eurollm

    with eurollm.Context(model, n_ctx=256, n_threads=1) as c:
        yield c


@pytest.fixture(scope="session")
def capi():
    from capi_ref import CApi

    return CApi()


@pytest.fixture(scope="session")
def cmodel(capi, stories):
    m = capi.load(stories)
    yield m
    m.free()


@pytest.fixture
def cctx(cmodel):
    c = cmodel.context(n_ctx=256, n_threads=1)
    yield c
    c.free()


@pytest.fixture(scope="session")
def sp(stories):
    spm = pytest.importorskip("sentencepiece")
    return spm.SentencePieceProcessor(model_file=str(stories / "tokenizer.model"))


@pytest.fixture(scope="session")
def ref(stories):
    from llama_ref import LlamaRef

    return LlamaRef(stories)
