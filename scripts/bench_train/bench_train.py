#!/usr/bin/env python3
"""Training speed: libeurollm vs PyTorch (transformers + PEFT) on the same CPU, same model, same data.

    ~/.venvs/eurollm-ref/bin/python scripts/bench_train/bench_train.py MODEL_DIR --cli build/eurollm \
        [--seq-len 512] [--steps 3] [--threads 0] [--precision bf16] [--peer-dtypes bfloat16,float32]

MODEL_DIR: the EuroLLM-1.7B-shaped random model (scripts/bench/make_random_model.py). Both sides run
LoRA r=16, alpha=32 on q,k,v,o over the frozen BF16 base, AdamW, one sequence of seq_len random
token ids per step; the first step (page-in, allocation, oneDNN kernel selection) is not timed.
libeurollm: `eurollm train --log-format json --precision P` (tokens_per_s per step; bf16 = bf16 products with
f32 master weights and moments, the counterpart of the bfloat16 peer; exact = f32 activations). PyTorch: the same model loaded
with transformers in the given dtype(s), PEFT LoRA (adapters in float32, as PEFT casts them), loss
backward + AdamW step, timed with time.perf_counter. Prints one JSON line per engine and a summary.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time


def ours(args, data, out):
    cmd = [args.cli, "train", args.model, "--data", data, "--out", out, "--steps", str(args.steps), "--batch", "1",
           "--seq-len", str(args.seq_len), "--lora", "r=16,alpha=32,targets=q,k,v,o", "--eval-fraction", "0",
           "--save-every", "100000", "--log-format", "json", "--threads", str(args.threads), "--clip", "1",
           "--precision", args.precision]
    p = subprocess.run(cmd, check=True, capture_output=True, text=True)
    steps = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{") and "tokens_per_s" in l]
    rates = [s["tokens_per_s"] for s in steps[1:]]
    dtype = "bf16 compute, f32 master" if args.precision == "bf16" else "bf16 weights, f32 compute"
    return {"engine": "libeurollm", "dtype": dtype, "precision": args.precision, "tokens_per_s": statistics.median(rates),
            "steps_timed": len(rates), "losses": [s["loss"] for s in steps]}


def peer(args, tokens, dtype_name):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, dtype_name)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.tensor([tokens])
    times, losses = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        losses.append(float(out.loss))
    rates = [len(tokens) / t for t in times[1:]]
    return {"engine": "pytorch %s" % torch.__version__, "dtype": dtype_name, "tokens_per_s": statistics.median(rates),
            "steps_timed": len(rates), "losses": losses, "threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", choices=["bf16", "exact"], default="bf16")
    ap.add_argument("--peer-dtypes", default="bfloat16")
    ap.add_argument("--skip-ours", action="store_true")
    args = ap.parse_args()
    rng = random.Random(0)
    with open(os.path.join(args.model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    tokens = [1] + [rng.randrange(3, min(32000, vocab)) for _ in range(args.seq_len - 1)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.jsonl")
        with open(data, "w") as f:
            for _ in range(4):
                f.write(json.dumps({"tokens": tokens}) + "\n")
        if not args.skip_ours:
            results.append(ours(args, data, os.path.join(tmp, "run")))
            print(json.dumps(results[-1]), flush=True)
    for dt in [d for d in args.peer_dtypes.split(",") if d]:
        results.append(peer(args, tokens, dt))
        print(json.dumps(results[-1]), flush=True)
    if not args.skip_ours:
        for r in results[1:]:
            print("ratio libeurollm / %s (%s): %.2fx" % (r["engine"], r["dtype"], results[0]["tokens_per_s"] / r["tokens_per_s"]))


if __name__ == "__main__":
    sys.exit(main())
