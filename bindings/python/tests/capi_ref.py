"""Independent access to libeurollm's C API through ctypes, used as the reference the binding is
compared with. It loads the very library the extension links (eurollm/libeurollm.so.0 when it is
bundled) but shares no code with the pybind11 module: structs and signatures are transcribed from
capi/eurollm.h."""

from __future__ import annotations

import ctypes as C
import os
import re
from pathlib import Path

import numpy as np

OK, DONE = 0, 1
ERR_BUFFER_TOO_SMALL = -7
TOKENIZE_ADD_BOS, TOKENIZE_PARSE_SPECIAL, TOKENIZE_MODEL_DEFAULT = 1, 2, 4


def _header_versions() -> dict[str, int]:
    """The params-struct versions eurollm.h declares (the structs below follow the latest)."""
    capi = Path(__file__).resolve().parents[3] / "capi"
    text = (capi / "eurollm.h").read_text() + (capi / "eurollm_experimental.h").read_text()
    found = dict(re.findall(r"#define EUROLLM_(\w+)_PARAMS_VERSION (\d+)", text))
    return {k.lower(): int(v) for k, v in found.items()}


VERSIONS = _header_versions()


class ModelParams(C.Structure):
    _fields_ = [("version", C.c_uint32), ("device", C.c_int), ("device_index", C.c_int32),
                ("n_gpu_layers", C.c_int32), ("use_mmap", C.c_bool), ("weight_type", C.c_int)]


class ContextParams(C.Structure):
    _fields_ = [("version", C.c_uint32), ("n_ctx", C.c_uint32), ("n_batch", C.c_uint32),
                ("n_threads", C.c_int32), ("seed", C.c_uint64), ("precision", C.c_int), ("kv_type", C.c_int)]


class GeneratorParams(C.Structure):
    _fields_ = [("version", C.c_uint32), ("max_tokens", C.c_int32), ("temperature", C.c_float),
                ("top_k", C.c_int32), ("top_p", C.c_float), ("min_p", C.c_float),
                ("repetition_penalty", C.c_float), ("frequency_penalty", C.c_float),
                ("presence_penalty", C.c_float), ("penalty_last_n", C.c_int32), ("seed", C.c_uint64),
                ("ignore_eos", C.c_bool), ("seq_id", C.c_int32)]


class TrainerParams(C.Structure):
    _fields_ = [("version", C.c_uint32), ("mode", C.c_int), ("lora_rank", C.c_int32), ("lora_alpha", C.c_float),
                ("lora_dropout", C.c_float), ("lora_targets", C.c_uint32), ("lr", C.c_float), ("beta1", C.c_float),
                ("beta2", C.c_float), ("eps", C.c_float), ("weight_decay", C.c_float), ("schedule", C.c_int),
                ("warmup_steps", C.c_int32), ("total_steps", C.c_int32), ("min_lr_ratio", C.c_float),
                ("micro_batch", C.c_int32), ("max_grad_norm", C.c_float), ("seed", C.c_uint64),
                ("n_threads", C.c_int32), ("precision", C.c_int)]


class TrainResult(C.Structure):
    _fields_ = [("loss", C.c_float), ("grad_norm", C.c_float), ("lr", C.c_float), ("tokens", C.c_int64),
                ("loss_tokens", C.c_int64), ("step", C.c_int64)]


class EmbedParams(C.Structure):
    _fields_ = [("version", C.c_uint32), ("pooling", C.c_int), ("normalize", C.c_bool), ("dim", C.c_uint32),
                ("tokenize_flags", C.c_uint32)]


def _library_path() -> str:
    import eurollm

    bundled = Path(eurollm.__file__).parent / "libeurollm.so.0"
    return str(bundled) if bundled.exists() else "libeurollm.so.0"


class CApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class CApi:
    """A minimal, direct client of eurollm.h."""

    def __init__(self, path: str | None = None):
        lib = self.lib = C.CDLL(path or _library_path())
        P, I32P, SZ, SZP = C.c_void_p, C.POINTER(C.c_int32), C.c_size_t, C.POINTER(C.c_size_t)
        sig = {
            "eurollm_version_string": (C.c_char_p, []),
            "eurollm_version_number": (C.c_int, []),
            "eurollm_status_string": (C.c_char_p, [C.c_int]),
            "eurollm_last_error": (C.c_char_p, []),
            "eurollm_device_count": (C.c_int, [C.c_int]),
            "eurollm_model_params_init": (C.c_int, [C.POINTER(ModelParams), C.c_uint32]),
            "eurollm_context_params_init": (C.c_int, [C.POINTER(ContextParams), C.c_uint32]),
            "eurollm_generator_params_init": (C.c_int, [C.POINTER(GeneratorParams), C.c_uint32]),
            "eurollm_model_load": (C.c_int, [C.c_char_p, C.POINTER(ModelParams), C.POINTER(P)]),
            "eurollm_model_free": (None, [P]),
            "eurollm_model_get_info": (C.c_int, [P, C.c_int, C.POINTER(C.c_int64)]),
            "eurollm_model_architecture": (C.c_char_p, [P]),
            "eurollm_model_chat_template": (C.c_char_p, [P]),
            "eurollm_model_eos_ids": (C.c_int, [P, I32P, SZ, SZP]),
            "eurollm_tokenize": (C.c_int, [P, C.c_char_p, SZ, C.c_uint32, I32P, SZ, SZP]),
            "eurollm_detokenize": (C.c_int, [P, I32P, SZ, C.c_char_p, SZ, SZP]),
            "eurollm_token_to_piece": (C.c_int, [P, C.c_int32, C.c_char_p, SZ, SZP]),
            "eurollm_context_init": (C.c_int, [P, C.POINTER(ContextParams), C.POINTER(P)]),
            "eurollm_context_free": (None, [P]),
            "eurollm_context_n_ctx": (C.c_uint32, [P]),
            "eurollm_context_n_past": (C.c_uint32, [P]),
            "eurollm_context_reset": (C.c_int, [P]),
            "eurollm_context_decode": (C.c_int, [P, I32P, SZ, C.POINTER(C.POINTER(C.c_float))]),
            "eurollm_context_decode_all": (C.c_int, [P, I32P, SZ, C.POINTER(C.c_float), SZ]),
            "eurollm_generator_init": (C.c_int, [P, C.POINTER(GeneratorParams), C.POINTER(P)]),
            "eurollm_generator_free": (None, [P]),
            "eurollm_generator_add_stop_token": (C.c_int, [P, C.c_int32]),
            "eurollm_generator_add_stop_string": (C.c_int, [P, C.c_char_p, SZ]),
            "eurollm_generator_append_tokens": (C.c_int, [P, I32P, SZ]),
            "eurollm_generator_step": (C.c_int, [P, I32P]),
            "eurollm_generator_text_delta": (C.c_int, [P, C.POINTER(C.c_char_p), SZP]),
            "eurollm_generator_logits": (C.c_int, [P, C.POINTER(C.POINTER(C.c_float)), SZP]),
            "eurollm_generator_stop_reason": (C.c_int, [P]),
            "eurollm_generator_n_generated": (SZ, [P]),
            "eurollm_generate_text": (C.c_int, [P, C.c_char_p, SZ, C.POINTER(GeneratorParams), C.c_char_p, SZ, SZP]),
            "eurollm_context_seq_n_past": (C.c_int, [P, C.c_int32, C.POINTER(C.c_uint32)]),
            "eurollm_context_seq_copy": (C.c_int, [P, C.c_int32, C.c_int32, C.c_int32]),
            "eurollm_context_decode_seqs": (C.c_int, [P, I32P, C.POINTER(I32P), SZP, SZ]),
            "eurollm_context_seq_logits": (C.c_int, [P, C.c_int32, C.POINTER(C.POINTER(C.c_float))]),
            "eurollm_context_state_save": (C.c_int, [P, C.c_void_p, SZ, SZP]),
            "eurollm_embed_params_init": (C.c_int, [C.POINTER(EmbedParams), C.c_uint32]),
            "eurollm_embed_texts": (C.c_int, [P, C.POINTER(C.c_char_p), SZP, SZ, C.POINTER(EmbedParams),
                                              C.POINTER(C.c_float), SZ, SZP, SZP]),
            "eurollm_embed_tokens": (C.c_int, [P, C.POINTER(I32P), SZP, SZ, C.POINTER(EmbedParams),
                                               C.POINTER(C.c_float), SZ, SZP, SZP]),
            "eurollm_trainer_params_init": (C.c_int, [C.POINTER(TrainerParams), C.c_uint32]),
            "eurollm_trainer_create": (C.c_int, [P, C.POINTER(TrainerParams), C.POINTER(P)]),
            "eurollm_trainer_free": (None, [P]),
            "eurollm_trainer_step": (C.c_int, [P, I32P, I32P, SZ, SZ, C.POINTER(TrainResult)]),
            "eurollm_trainer_get_tensor": (C.c_int, [P, C.c_char_p, C.c_int, C.POINTER(C.c_float), SZ, SZP]),
            "eurollm_cosine_similarity": (C.c_int, [C.POINTER(C.c_float), C.POINTER(C.c_float), SZ,
                                                    C.POINTER(C.c_float)]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args

    # ---- helpers ----
    def check(self, status: int) -> int:
        if status < 0:
            raise CApiError(status, self.lib.eurollm_last_error().decode())
        return status

    def version_string(self) -> str:
        return self.lib.eurollm_version_string().decode()

    def status_string(self, status: int) -> str:
        return self.lib.eurollm_status_string(status).decode()

    def model_params(self) -> ModelParams:
        p = ModelParams()
        self.check(self.lib.eurollm_model_params_init(C.byref(p), VERSIONS["model"]))
        return p

    def context_params(self, **kw) -> ContextParams:
        p = ContextParams()
        self.check(self.lib.eurollm_context_params_init(C.byref(p), VERSIONS["context"]))
        for k, v in kw.items():
            setattr(p, k, v)
        return p

    def embed_params(self, **kw) -> EmbedParams:
        p = EmbedParams()
        self.check(self.lib.eurollm_embed_params_init(C.byref(p), VERSIONS["embed"]))
        for k, v in kw.items():
            setattr(p, k, v)
        return p

    def trainer_params(self, **kw) -> TrainerParams:
        p = TrainerParams()
        self.check(self.lib.eurollm_trainer_params_init(C.byref(p), VERSIONS["trainer"]))
        for k, v in kw.items():
            setattr(p, k, v)
        return p

    def cosine_similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        a = np.ascontiguousarray(a, dtype=np.float32)
        b = np.ascontiguousarray(b, dtype=np.float32)
        out = C.c_float()
        fp = C.POINTER(C.c_float)
        self.check(self.lib.eurollm_cosine_similarity(a.ctypes.data_as(fp), b.ctypes.data_as(fp), a.size, C.byref(out)))
        return out.value

    def generator_params(self, **kw) -> GeneratorParams:
        p = GeneratorParams()
        self.check(self.lib.eurollm_generator_params_init(C.byref(p), VERSIONS["generator"]))
        for k, v in kw.items():
            setattr(p, k, v)
        return p

    def load(self, path: str | os.PathLike) -> "CModel":
        h = C.c_void_p()
        self.check(self.lib.eurollm_model_load(os.fsencode(path), None, C.byref(h)))
        return CModel(self, h)


def _ids(tokens):
    arr = (C.c_int32 * max(len(tokens), 1))(*tokens)
    return arr, len(tokens)


class CModel:
    def __init__(self, api: CApi, handle: C.c_void_p):
        self.api, self.lib, self.h = api, api.lib, handle

    def free(self):
        self.lib.eurollm_model_free(self.h)
        self.h = None

    def info(self, key: int) -> int:
        v = C.c_int64()
        self.api.check(self.lib.eurollm_model_get_info(self.h, key, C.byref(v)))
        return v.value

    def eos_ids(self) -> list[int]:
        n = C.c_size_t()
        self.lib.eurollm_model_eos_ids(self.h, None, 0, C.byref(n))
        buf = (C.c_int32 * max(n.value, 1))()
        self.api.check(self.lib.eurollm_model_eos_ids(self.h, buf, n.value, C.byref(n)))
        return list(buf[: n.value])

    def tokenize(self, text: bytes, flags: int) -> list[int]:
        n = C.c_size_t()
        st = self.lib.eurollm_tokenize(self.h, text, len(text), flags, None, 0, C.byref(n))
        if st == OK:
            return []
        assert st == ERR_BUFFER_TOO_SMALL, st
        buf = (C.c_int32 * n.value)()
        self.api.check(self.lib.eurollm_tokenize(self.h, text, len(text), flags, buf, n.value, C.byref(n)))
        return list(buf[: n.value])

    def detokenize(self, tokens) -> bytes:
        ids, n = _ids(tokens)
        ln = C.c_size_t()
        st = self.lib.eurollm_detokenize(self.h, ids, n, None, 0, C.byref(ln))
        if st != ERR_BUFFER_TOO_SMALL:
            self.api.check(st)
        buf = C.create_string_buffer(ln.value + 1)
        self.api.check(self.lib.eurollm_detokenize(self.h, ids, n, buf, ln.value + 1, C.byref(ln)))
        return buf.raw[: ln.value]

    def token_to_piece(self, token: int) -> bytes:
        ln = C.c_size_t()
        st = self.lib.eurollm_token_to_piece(self.h, token, None, 0, C.byref(ln))
        if st != ERR_BUFFER_TOO_SMALL:
            self.api.check(st)
        buf = C.create_string_buffer(ln.value + 1)
        self.api.check(self.lib.eurollm_token_to_piece(self.h, token, buf, ln.value + 1, C.byref(ln)))
        return buf.raw[: ln.value]

    def train(self, batches, tensor_names, **params):
        """Run eurollm_trainer_step over (tokens, labels) 2-D int arrays; returns the step results
        (dicts) and the final values of the named tensors."""
        p = self.api.trainer_params(**params)
        t = C.c_void_p()
        self.api.check(self.lib.eurollm_trainer_create(self.h, C.byref(p), C.byref(t)))
        try:
            results = []
            for tokens, labels in batches:
                tok = np.ascontiguousarray(tokens, dtype=np.int32)
                lab = np.ascontiguousarray(labels, dtype=np.int32)
                r = TrainResult()
                ip = C.POINTER(C.c_int32)
                self.api.check(self.lib.eurollm_trainer_step(t, tok.ctypes.data_as(ip), lab.ctypes.data_as(ip),
                                                             tok.shape[0], tok.shape[1], C.byref(r)))
                results.append({f: getattr(r, f) for f, _ in TrainResult._fields_})
            tensors = {}
            for name in tensor_names:
                n = C.c_size_t()
                self.lib.eurollm_trainer_get_tensor(t, name.encode(), 0, None, 0, C.byref(n))
                out = np.zeros(n.value, dtype=np.float32)
                self.api.check(self.lib.eurollm_trainer_get_tensor(t, name.encode(), 0,
                                                                   out.ctypes.data_as(C.POINTER(C.c_float)), n.value,
                                                                   C.byref(n)))
                tensors[name] = out
            return results, tensors
        finally:
            self.lib.eurollm_trainer_free(t)

    def context(self, **kw) -> "CContext":
        p = self.api.context_params(**kw)
        h = C.c_void_p()
        self.api.check(self.lib.eurollm_context_init(self.h, C.byref(p), C.byref(h)))
        return CContext(self, h)


class CContext:
    def __init__(self, model: CModel, handle: C.c_void_p):
        self.model, self.api, self.lib, self.h = model, model.api, model.lib, handle
        self.n_vocab = model.info(0)

    def free(self):
        self.lib.eurollm_context_free(self.h)
        self.h = None

    def n_past(self) -> int:
        return self.lib.eurollm_context_n_past(self.h)

    def decode(self, tokens) -> np.ndarray:
        ids, n = _ids(tokens)
        out = C.POINTER(C.c_float)()
        self.api.check(self.lib.eurollm_context_decode(self.h, ids, n, C.byref(out)))
        return np.ctypeslib.as_array(out, shape=(self.n_vocab,)).copy()

    def decode_all(self, tokens) -> np.ndarray:
        ids, n = _ids(tokens)
        out = np.zeros((n, self.n_vocab), dtype=np.float32)
        self.api.check(self.lib.eurollm_context_decode_all(
            self.h, ids, n, out.ctypes.data_as(C.POINTER(C.c_float)), out.size))
        return out

    def embed_texts(self, texts: list[bytes], **kw) -> np.ndarray:
        p = self.api.embed_params(**kw)
        arr = (C.c_char_p * len(texts))(*texts)
        lens = (C.c_size_t * len(texts))(*[len(t) for t in texts])
        rows, dim = C.c_size_t(), C.c_size_t()
        st = self.lib.eurollm_embed_texts(self.h, arr, lens, len(texts), C.byref(p), None, 0, C.byref(rows), C.byref(dim))
        assert st == ERR_BUFFER_TOO_SMALL, st
        out = np.zeros((rows.value, dim.value), dtype=np.float32)
        self.api.check(self.lib.eurollm_embed_texts(self.h, arr, lens, len(texts), C.byref(p),
                                                    out.ctypes.data_as(C.POINTER(C.c_float)), out.size,
                                                    C.byref(rows), C.byref(dim)))
        return out

    def decode_seqs(self, batch: dict[int, list[int]]) -> dict[int, np.ndarray]:
        seqs = list(batch)
        keep = [(C.c_int32 * max(len(batch[s]), 1))(*batch[s]) for s in seqs]
        ptrs = (C.POINTER(C.c_int32) * len(seqs))(*[C.cast(k, C.POINTER(C.c_int32)) for k in keep])
        counts = (C.c_size_t * len(seqs))(*[len(batch[s]) for s in seqs])
        ids = (C.c_int32 * len(seqs))(*seqs)
        self.api.check(self.lib.eurollm_context_decode_seqs(self.h, ids, ptrs, counts, len(seqs)))
        out = {}
        for s in seqs:
            lp = C.POINTER(C.c_float)()
            self.api.check(self.lib.eurollm_context_seq_logits(self.h, s, C.byref(lp)))
            out[s] = np.ctypeslib.as_array(lp, shape=(self.n_vocab,)).copy()
        return out

    def state_bytes(self) -> bytes:
        n = C.c_size_t()
        st = self.lib.eurollm_context_state_save(self.h, None, 0, C.byref(n))
        assert st == ERR_BUFFER_TOO_SMALL, st
        buf = C.create_string_buffer(n.value)
        self.api.check(self.lib.eurollm_context_state_save(self.h, buf, n.value, C.byref(n)))
        return buf.raw[: n.value]

    def generate_text(self, prompt: bytes, **gen_kw) -> bytes:
        p = self.api.generator_params(**gen_kw)
        ln = C.c_size_t()
        cap = 1 << 16
        buf = C.create_string_buffer(cap)
        self.api.check(self.lib.eurollm_generate_text(self.h, prompt, len(prompt), C.byref(p), buf, cap, C.byref(ln)))
        return buf.raw[: ln.value]

    def run_generator(self, tokens, stop_strings=(), stop_tokens=(), **gen_kw):
        """Drive eurollm_generator_* by hand: returns (tokens, text bytes, stop reason)."""
        p = self.api.generator_params(**gen_kw)
        g = C.c_void_p()
        self.api.check(self.lib.eurollm_generator_init(self.h, C.byref(p), C.byref(g)))
        try:
            for s in stop_strings:
                b = s.encode()
                self.api.check(self.lib.eurollm_generator_add_stop_string(g, b, len(b)))
            for t in stop_tokens:
                self.api.check(self.lib.eurollm_generator_add_stop_token(g, t))
            ids, n = _ids(tokens)
            self.api.check(self.lib.eurollm_generator_append_tokens(g, ids, n))
            out_tokens, text = [], b""
            tok = C.c_int32()
            while True:
                st = self.api.check(self.lib.eurollm_generator_step(g, C.byref(tok)))
                t, ln = C.c_char_p(), C.c_size_t()
                self.api.check(self.lib.eurollm_generator_text_delta(g, C.byref(t), C.byref(ln)))
                text += C.string_at(t, ln.value) if ln.value else b""
                if st == DONE:
                    break
                out_tokens.append(tok.value)
            return out_tokens, text, self.lib.eurollm_generator_stop_reason(g)
        finally:
            self.lib.eurollm_generator_free(g)
