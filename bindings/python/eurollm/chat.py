"""Chat prompts: messages -> the text an instruction-tuned model was trained on.

The model's own template (``chat_template`` in tokenizer_config.json) is rendered with Jinja2 the
way Hugging Face ``transformers.apply_chat_template`` does (trim_blocks, lstrip_blocks, loop
controls, ``raise_exception``, ``tojson``, ``strftime_now``); install ``jinja2`` (``pip install
eurollm[chat]``) for it. A model without a template gets the built-in ChatML format, which needs no
Jinja2. When libeurollm's C API gains template rendering, :func:`apply_chat_template` moves onto it.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
from typing import Any, Mapping, Optional, Sequence

from ._eurollm import InvalidArgumentError, UnsupportedError

Message = Mapping[str, Any]

#: ChatML, used for models without a template (as libeurollm's own fallback).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _check_messages(messages: Sequence[Message], fields: Sequence[str] = ("role",)) -> list[dict]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(f"messages[{i}] is not a dict")
        for f in fields:
            if f not in m:
                raise InvalidArgumentError(f"messages[{i}] has no '{f}'")
        out.append(dict(m))
    return out


def _render_chatml(messages: list[dict], add_generation_prompt: bool) -> str:
    messages = _check_messages(messages, ("role", "content"))
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def render_template(template: str, messages: Sequence[Message], add_generation_prompt: bool = True, *,
                    bos_token: str = "", eos_token: str = "", **extra: Any) -> str:
    """Render a Hugging Face chat template with Jinja2, as ``transformers`` does."""
    msgs = _check_messages(messages)
    try:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise UnsupportedError("rendering a chat template needs jinja2 (pip install jinja2)") from e

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return _json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return _dt.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template).render(messages=msgs, add_generation_prompt=add_generation_prompt,
                                                bos_token=bos_token, eos_token=eos_token, **extra)
    except jinja2.exceptions.TemplateError as e:
        raise InvalidArgumentError(f"chat template: {e}") from e


def apply_chat_template(model, messages: Sequence[Message], add_generation_prompt: bool = True, *,
                        template: Optional[str] = None, **extra: Any) -> str:
    """The prompt text for ``messages`` with ``model``'s template (or ``template``; ChatML when the
    model has none). BOS is not part of it: :func:`chat_tokens` adds it as the model wants."""
    tpl = template if template is not None else model.chat_template
    if tpl is None:
        return _render_chatml(messages, add_generation_prompt)
    bos = model.token_to_piece(model.bos_id) if model.bos_id is not None else ""
    eos = model.token_to_piece(model.eos_id) if model.eos_id is not None else ""
    return render_template(tpl, messages, add_generation_prompt, bos_token=bos, eos_token=eos, **extra)


def chat_tokens(model, messages: Sequence[Message], add_generation_prompt: bool = True, *,
                template: Optional[str] = None, **extra: Any) -> list[int]:
    """Token ids of the chat prompt: special tokens parsed, one BOS at the front when the model uses it."""
    text = apply_chat_template(model, messages, add_generation_prompt, template=template, **extra)
    ids = model.tokenize(text, add_bos=False, parse_special=True)
    bos = model.bos_id
    if bos is not None and model.tokenize("", parse_special=True) == [bos] and (not ids or ids[0] != bos):
        ids.insert(0, bos)
    return ids


def stop_strings(model, template: Optional[str] = None) -> list[str]:
    """End-of-turn strings to stop on, besides the model's eos ids."""
    tpl = template if template is not None else model.chat_template
    stops = []
    if tpl is None or "<|im_end|>" in tpl:
        stops.append("<|im_end|>")
    return stops
