#!/usr/bin/env python3
"""Rank documents by similarity to a query with a model's embeddings.

    python samples/python/embed.py models/EuroLLM-1.7B "Where is the harbour?" docs/*.txt
    python samples/python/embed.py ../shared/models/stories260K "a dog" - < lines.txt   (one document a line)

Embeddings are the final hidden states, mean-pooled and L2-normalised, so a dot product is the
cosine similarity."""

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
    ap.add_argument("query")
    ap.add_argument("documents", nargs="+", help="files, or - to read one document per line from stdin")
    ap.add_argument("--pooling", default="mean", choices=["mean", "last", "first"])
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    docs: list[tuple[str, str]] = []
    for d in args.documents:
        if d == "-":
            docs += [(f"stdin:{i + 1}", line.strip()) for i, line in enumerate(sys.stdin) if line.strip()]
        else:
            docs.append((d, Path(d).read_text(encoding="utf-8")))
    if not docs:
        print("no documents", file=sys.stderr)
        return 1
    try:
        model = eurollm.Model(args.model)
        longest = max(len(model.tokenize(text)) for _, text in docs + [("query", args.query)])
        with eurollm.Context(model, n_ctx=max(longest, 16), n_threads=args.threads) as ctx:
            params = eurollm.EmbedParams(pooling=args.pooling, normalize=True)
            query = ctx.embed(args.query, params)
            vectors = ctx.embed([text for _, text in docs], params)
    except eurollm.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    scores = vectors @ query
    for i in scores.argsort()[::-1][: args.top]:
        print(f"{scores[i]:.4f}  {docs[i][0]}  {docs[i][1][:60]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
