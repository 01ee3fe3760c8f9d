#!/usr/bin/env python3
"""Stream a completion from a model: the smallest useful eurollm program.

    python samples/python/generate.py models/EuroLLM-1.7B -p "The capital of Portugal is" -n 64
    python samples/python/generate.py ../shared/models/stories260K --temp 0    (greedy)

Needs the eurollm package: `pip install bindings/python`, or run bindings/python/run_tests.sh once
and this script finds the in-tree build."""

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
    ap.add_argument("model", help="a Hugging Face model directory (config.json, *.safetensors, tokenizer.model)")
    ap.add_argument("-p", "--prompt", default="Once upon a time")
    ap.add_argument("-n", "--max-tokens", type=int, default=128)
    ap.add_argument("--temp", type=float, default=0.8, help="0 = greedy")
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0, help="0 = the context's seed")
    ap.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="0 = one per core")
    ap.add_argument("--ctx", type=int, default=0, help="context size; 0 = the model's (at most 4096)")
    args = ap.parse_args(argv)

    try:
        model = eurollm.Model(args.model)
        with eurollm.Context(model, n_ctx=args.ctx, n_threads=args.threads) as ctx:
            params = eurollm.GeneratorParams(max_tokens=args.max_tokens, temperature=args.temp, top_k=args.top_k,
                                             top_p=args.top_p, seed=args.seed, ignore_eos=args.ignore_eos)
            sys.stdout.write(args.prompt)
            for text in ctx.stream(args.prompt, params, stop=args.stop):
                sys.stdout.write(text)
                sys.stdout.flush()
            sys.stdout.write("\n")
    except eurollm.Error as e:
        print(f"error: {e} ({e.status.name})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
