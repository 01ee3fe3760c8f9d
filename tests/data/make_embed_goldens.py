#!/usr/bin/env python3
"""Embedding goldens from Hugging Face transformers for stories260K.

Runs in the reference virtualenv (scripts/reference/setup_reference_env.sh):
    ~/.venvs/eurollm-ref/bin/python tests/data/make_embed_goldens.py --stories ../shared/models/stories260K
    ... --check    re-computes and compares with the stored file (exit 1 on mismatch)

Writes tests/data/golden/stories260K_embed.json: for each text, the token ids (SentencePiece with
BOS, as libeurollm's default tokenization), the mean of the final hidden states over all tokens
(LlamaModel's last_hidden_state, i.e. after the final norm) and the last token's final hidden state.
"""
import argparse
import json
import os
import sys

import sentencepiece as spm
import torch
import transformers
from transformers import AutoModelForCausalLM

TEXTS = [
    "Once upon a time, there was a little dog.",
    "Lily liked to play in the park with her red ball every day.",
    "The sun",
    "Tom and Sam went to the shop to buy some milk and bread for their mom, who was very tired.",
    "Grüße aus Köln!",
]

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "stories260K_embed.json")


def compute(stories):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(stories, "tokenizer.model"))
    model = AutoModelForCausalLM.from_pretrained(stories, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    items = []
    with torch.no_grad():
        for text in TEXTS:
            ids = [sp.bos_id()] + sp.encode(text)
            hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            items.append({
                "text": text,
                "tokens": ids,
                "mean": [float(f"{v:.8e}") for v in hidden.mean(dim=0).tolist()],
                "last": [float(f"{v:.8e}") for v in hidden[-1].tolist()],
            })
    return {
        "note": "final hidden states (after the last RMSNorm) of transformers' LlamaModel, float32, eager attention",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "items": items,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", required=True)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    fresh = compute(args.stories)
    if args.check:
        stored = json.load(open(OUT))
        worst = 0.0
        for a, b in zip(stored["items"], fresh["items"]):
            if a["tokens"] != b["tokens"]:
                print("token mismatch for", a["text"]); sys.exit(1)
            for key in ("mean", "last"):
                scale = max(abs(v) for v in b[key])
                worst = max(worst, max(abs(x - y) for x, y in zip(a[key], b[key])) / scale)
        print(f"worst relative difference {worst:.2e}")
        sys.exit(0 if worst < 1e-6 else 1)
    with open(OUT, "w") as f:
        json.dump(fresh, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
