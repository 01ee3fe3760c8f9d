#!/usr/bin/env python3
"""A terminal chat with an instruction-tuned model (EuroLLM-9B-Instruct, Salamandra-7B-instruct, ...).

    python samples/python/chat.py models/EuroLLM-9B-Instruct
    python samples/python/chat.py models/EuroLLM-9B-Instruct --system "Answer in Portuguese."

The prompt comes from the model's chat template (eurollm.chat; install jinja2 for models that have
one, ChatML otherwise). The conversation is rendered in full each turn, and only the text the
context does not hold yet is evaluated: the KV cache carries the conversation, so earlier turns
are not read again. An empty line or EOF ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import eurollm
except ImportError:  # running from a source checkout: use the in-place build
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
    import eurollm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--system", default="", help="a system prompt")
    ap.add_argument("-n", "--max-tokens", type=int, default=512, help="per reply")
    ap.add_argument("--temp", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    try:
        model = eurollm.Model(args.model)
        ctx = eurollm.Context(model, n_ctx=args.ctx, n_threads=args.threads, seed=args.seed)
    except eurollm.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stops = eurollm.chat.stop_strings(model)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    fed = ""  # the conversation text the context holds
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        messages.append({"role": "user", "content": line.strip()})
        try:
            prompt = eurollm.chat.apply_chat_template(model, messages)
        except eurollm.Error as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if fed and prompt.startswith(fed):  # continue the cached conversation
            tokens = model.tokenize(prompt[len(fed):], add_bos=False)
        else:  # first turn, or the template rewrote history: start over
            ctx.reset()
            tokens = eurollm.chat.chat_tokens(model, messages)
        reply = []
        try:
            for piece in ctx.stream(tokens, temperature=args.temp, max_tokens=args.max_tokens, stop=stops):
                print(piece, end="", flush=True)
                reply.append(piece)
        except eurollm.ContextFullError:
            print("\n(the conversation no longer fits in the context; starting over)", file=sys.stderr)
            ctx.reset()
            messages, fed = messages[:1] if args.system else [], ""
            continue
        print()
        messages.append({"role": "assistant", "content": "".join(reply)})
        fed = prompt + "".join(reply)


if __name__ == "__main__":
    sys.exit(main())
