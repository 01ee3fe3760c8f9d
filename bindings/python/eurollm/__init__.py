"""eurollm: run Europe's open language models (EuroLLM, Salamandra, Teuken, ...) in-process.

A thin, typed layer over libeurollm's C API (``capi/eurollm.h``)::

    import eurollm

    with eurollm.Model.load("models/EuroLLM-9B-Instruct", threads=8) as model:
        print(model.generate("Once upon a time", temperature=0.0, max_tokens=64))
        for text in model.stream("The capital of Portugal is", max_tokens=32):
            print(text, end="", flush=True)
        print(model.chat([{"role": "user", "content": "Olá! Quem és tu?"}]))
        vectors = model.embed(["first text", "second text"], normalize=True)   # (2, n_embd) float32

    # explicit objects, one-to-one with the C handles
    ctx = eurollm.Context(model, n_ctx=2048)
    logits = ctx.decode(model.tokenize("Hello"))

Objects map one-to-one onto the C handles: Model (immutable, shareable across threads), Context
(KV cache; one thread at a time), Generator (prepare/step/finalize). Failed calls raise
:class:`Error` subclasses carrying the library's message and :class:`Status`.
"""

from __future__ import annotations

import atexit as _atexit
import contextlib as _contextlib
import logging as _logging
import threading as _threading
import weakref as _weakref
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

from . import _eurollm, chat
from ._eurollm import (
    MAX_SEQUENCES,
    AbortedError,
    BadModelError,
    BufferTooSmallError,
    ContextFullError,
    ContextParams,
    Device,
    DeviceError,
    EmbedParams,
    Error,
    GeneratorParams,
    InvalidArgumentError,
    IoError,
    LogLevel,
    ModelInfo,
    ModelParams,
    OutOfMemoryError,
    Pooling,
    Status,
    StopReason,
    Precision,
    TokenizeFlags,
    UnsupportedError,
    WeightType,
    Dataset,
    LoraTarget,
    LrSchedule,
    TensorPart,
    Trainer,
    TrainerParams,
    TrainMode,
    TrainResult,
    adapter_merge,
    cosine_similarity,
    device_count,
    device_memory,
    device_name,
    set_log_callback,
    status_string,
    version,
    version_number,
)

__all__ = [
    "MAX_SEQUENCES", "AbortedError", "BadModelError", "BufferTooSmallError", "Context", "ContextFullError",
    "ContextParams", "Device", "DeviceError", "EmbedParams", "Error", "Generator", "GeneratorParams",
    "InvalidArgumentError", "IoError", "LogLevel", "Model", "ModelInfo", "ModelParams", "OutOfMemoryError",
    "Pooling", "Precision", "Status", "StopReason", "TokenizeFlags", "UnsupportedError", "WeightType", "cosine_similarity", "device_count", "device_memory", "device_name",
    "set_log_callback", "status_string", "use_python_logging", "version", "version_number", "chat",
    # training (experimental in libeurollm)
    "Dataset", "LoraTarget", "LrSchedule", "TensorPart", "Trainer", "TrainerParams", "TrainMode", "TrainResult",
    "adapter_merge",
]

#: The version of this package, which is the version of the C header it was built against.
__version__ = _eurollm.HEADER_VERSION

Prompt = Union[str, bytes, Sequence[int]]

# No Python callback may run while the interpreter shuts down.
_atexit.register(set_log_callback, None)


class Model(_eurollm.Model):
    """A loaded model: weights, hyper-parameters, tokenizer.

    ``Model(path, params=None, *, threads=0, n_ctx=0, seed=0, precision="exact", **kwargs)`` (or
    ``Model.load``): ``path`` is a Hugging Face model directory (config.json, *.safetensors,
    tokenizer.model) or a GGUF file; ``params`` a :class:`ModelParams` whose fields keyword arguments
    override (``device="cpu"``, ``use_mmap=False``, ``weight_type="q8_0"`` to quantize at load).
    ``threads``, ``n_ctx``, ``seed`` and ``precision`` (a :class:`Precision`) configure the contexts the convenience methods (:meth:`generate`, :meth:`stream`, :meth:`chat`,
    :meth:`embed`) create: one per thread that calls them, so threads generate in parallel.
    Raises :class:`IoError`, :class:`BadModelError`, :class:`UnsupportedError`.

    Immutable and thread-safe. ``close()`` or a ``with`` block releases it (and its convenience
    contexts); contexts made by the caller keep the weights alive until they close.
    """

    def __init__(self, path, params: Optional[ModelParams] = None, *, threads: int = 0, n_ctx: int = 0,
                 seed: int = 0, precision: Union[Precision, int, str] = Precision.EXACT, **kwargs) -> None:
        super().__init__(path, params, **kwargs)
        self._context_params = ContextParams(n_threads=threads, n_ctx=n_ctx, seed=seed, precision=precision)
        self._local = _threading.local()
        self._pool_lock = _threading.Lock()
        self._contexts: "_weakref.WeakSet[Context]" = _weakref.WeakSet()

    @classmethod
    def load(cls, path, params: Optional[ModelParams] = None, **kwargs) -> "Model":
        """Load a model (the same as the constructor)."""
        return cls(path, params, **kwargs)

    def context(self, params: Optional[ContextParams] = None, **kwargs) -> "Context":
        """A new :class:`Context` on this model (same arguments as ``Context``)."""
        return Context(self, params, **kwargs)

    def close(self) -> None:
        """Release the model and the contexts its convenience methods made (idempotent)."""
        with self._pool_lock:
            contexts = list(self._contexts)
        for c in contexts:
            c.close()
        super().close()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- conveniences on a per-thread context ----

    @_contextlib.contextmanager
    def _borrow(self) -> Iterator["Context"]:
        if self.closed:
            raise ValueError("the model is closed")
        idle = self._local.__dict__.setdefault("idle", [])
        ctx = idle.pop() if idle else None
        if ctx is None or ctx.closed:
            ctx = Context(self, self._context_params)
            with self._pool_lock:
                self._contexts.add(ctx)
        try:
            ctx.reset()
            yield ctx
        finally:
            if not ctx.closed and not self.closed:
                idle.append(ctx)

    def generate(self, prompt: Prompt, params: Optional[GeneratorParams] = None, *, stop: Iterable[str] = (),
                 stop_tokens: Iterable[int] = (), **kwargs) -> str:
        """Generate from ``prompt`` (text or token ids) in a fresh context and return the text.

        Keyword arguments are :class:`GeneratorParams` fields (``max_tokens``, ``temperature``,
        ``top_k``, ``top_p``, ``min_p``, ``seed``, ``ignore_eos``, ...); ``stop`` strings end the
        text (they are not part of it). The native loop runs with the GIL released.
        """
        with self._borrow() as ctx:
            return ctx.generate(prompt, params, stop=stop, stop_tokens=stop_tokens, **kwargs)

    def stream(self, prompt: Prompt, params: Optional[GeneratorParams] = None, *, stop: Iterable[str] = (),
               stop_tokens: Iterable[int] = (), **kwargs) -> Iterator[str]:
        """Like :meth:`generate`, yielding the text as it becomes final."""
        with self._borrow() as ctx:
            yield from ctx.stream(prompt, params, stop=stop, stop_tokens=stop_tokens, **kwargs)

    def chat(self, messages: Sequence[Mapping[str, Any]], params: Optional[GeneratorParams] = None, *,
             template: Optional[str] = None, stop: Iterable[str] = (), **kwargs) -> str:
        """The assistant's reply to ``messages`` (``[{"role": "user", "content": "..."}, ...]``).

        The prompt comes from the model's chat template (see :mod:`eurollm.chat`; ChatML when it
        has none); generation stops at the model's end-of-turn tokens and strings.
        """
        return "".join(self.chat_stream(messages, params, template=template, stop=stop, **kwargs))

    def chat_stream(self, messages: Sequence[Mapping[str, Any]], params: Optional[GeneratorParams] = None, *,
                    template: Optional[str] = None, stop: Iterable[str] = (), **kwargs) -> Iterator[str]:
        """Like :meth:`chat`, yielding the reply as it becomes final."""
        tokens = chat.chat_tokens(self, messages, template=template)
        stops = chat.stop_strings(self, template) + list(stop)
        yield from self.stream(tokens, params, stop=stops, **kwargs)

    def embed(self, texts: Union[str, bytes, Iterable[Union[str, bytes]]], params: Optional[EmbedParams] = None,
              **kwargs):
        """Embeddings of ``texts`` as a float32 array: ``(n, dim)`` for a list, ``(dim,)`` for one
        text. Keywords are :class:`EmbedParams` fields (``pooling="mean"``, ``normalize=True``, ``dim``)."""
        with self._borrow() as ctx:
            return ctx.embed(texts, params, **kwargs)


class Context(_eurollm.Context):
    """A KV cache, scratch space and threads on a model; one thread at a time.

    ``Context(model, params=None, **kwargs)``: ``params`` a :class:`ContextParams` whose fields
    keyword arguments override (``n_ctx=2048``, ``n_threads=4``, ``seed=7``).
    """

    def generator(self, params: Optional[GeneratorParams] = None, **kwargs) -> "Generator":
        """A new :class:`Generator` on this context (same arguments as ``Generator``)."""
        return Generator(self, params, **kwargs)

    def stream(
        self,
        prompt: Prompt,
        params: Optional[GeneratorParams] = None,
        *,
        stop: Iterable[str] = (),
        stop_tokens: Iterable[int] = (),
        **kwargs,
    ) -> Iterator[str]:
        """Generate from ``prompt`` and yield the text as it becomes final.

        ``prompt`` is text (tokenized with the model's default rules, as eurollm_generate_text
        does) or a list of token ids. ``stop`` strings and ``stop_tokens`` end generation (a stop
        string is not part of the output). ``params`` / keyword arguments are those of
        :class:`GeneratorParams` (``temperature=0.0`` is greedy; ``seq_id`` picks the sequence).
        Like the C API, the prompt continues what the sequence already holds; call :meth:`reset`
        (or :meth:`seq_remove`) first for a fresh start.
        """
        tokens = self.model.tokenize(prompt) if isinstance(prompt, (str, bytes, bytearray)) else list(prompt)
        with Generator(self, params, **kwargs) as gen:
            if not tokens and self.seq_n_past(gen.seq_id) == 0:
                raise InvalidArgumentError("the prompt is empty and the sequence holds nothing to continue")
            for s in stop:
                gen.add_stop_string(s)
            for t in stop_tokens:
                gen.add_stop_token(t)
            gen.append(tokens)
            yield from gen

    def generate(
        self,
        prompt: Prompt,
        params: Optional[GeneratorParams] = None,
        *,
        stop: Iterable[str] = (),
        stop_tokens: Iterable[int] = (),
        **kwargs,
    ) -> str:
        """Generate from ``prompt`` until done and return the text (see :meth:`stream`). The native
        loop runs with the GIL released."""
        tokens = self.model.tokenize(prompt) if isinstance(prompt, (str, bytes, bytearray)) else list(prompt)
        with Generator(self, params, **kwargs) as gen:
            if not tokens and self.seq_n_past(gen.seq_id) == 0:
                raise InvalidArgumentError("the prompt is empty and the sequence holds nothing to continue")
            for s in stop:
                gen.add_stop_string(s)
            for t in stop_tokens:
                gen.add_stop_token(t)
            gen.append(tokens)
            return gen.read_all()


class Generator(_eurollm.Generator):
    """Token-by-token generation on a context (prepare / step / finalize).

    ``Generator(context, params=None, **kwargs)``: ``params`` a :class:`GeneratorParams` whose
    fields keyword arguments override. A context holds one generator at a time: ``close()`` it (or
    use ``with``) before making the next. Iterating yields the text as it becomes final::

        with ctx.generator(temperature=0.0, max_tokens=32) as gen:
            gen.append(model.tokenize("Once upon a time"))
            for text in gen:
                print(text, end="")
            print(gen.stop_reason)
    """

    @staticmethod
    def step_batch(generators: Sequence["Generator"]) -> "list[Optional[int]]":
        """One step of several generators of one context in a single batch (see the C API's
        eurollm_generator_step_batch): each one's new token, or None for those that are done."""
        return _eurollm.Generator.step_batch(generators)

    def __iter__(self) -> Iterator[str]:
        while True:
            token = self.step()
            text = self.text_delta
            if text:
                yield text
            if token is None:
                return


def use_python_logging(logger: Optional[_logging.Logger] = None, level: LogLevel = LogLevel.INFO) -> None:
    """Send the library's log lines to a :mod:`logging` logger (default ``logging.getLogger("eurollm")``)."""
    log = logger if logger is not None else _logging.getLogger("eurollm")
    to_python = {
        LogLevel.DEBUG: _logging.DEBUG,
        LogLevel.INFO: _logging.INFO,
        LogLevel.WARN: _logging.WARNING,
        LogLevel.ERROR: _logging.ERROR,
    }

    def forward(lvl: LogLevel, message: str) -> None:
        log.log(to_python.get(lvl, _logging.ERROR), "%s", message)

    set_log_callback(forward, level)
