#!/usr/bin/env python3
"""libeurollm vs llama.cpp (node-llama-cpp) on the same weights, same threads: one table of ratios.

    bench/install_peer.sh                                   # once: node-llama-cpp under bench/
    EUROLLM=build/eurollm scripts/bench/make_bench_models.sh /tmp/eurollm-bench   # numpy + the CLI
    python3 bench/run_bench.py --eurollm build/eurollm --models /tmp/eurollm-bench [--rounds 3]

Each round runs every pair once, ours and the peer back to back (so both see the same machine
load), each in a fresh process: load, prefill of --prompt-tokens in one batch, --gen-tokens of
decode, then embedding of --embed-texts token lists of --embed-tokens tokens (mean pooling). The
figures are medians over the rounds; ratios are ours / peer (higher is better for speeds, lower for
load time and memory). A second table gives, for the speeds, the median over the rounds of each
round's ratio: the two runs of a round are seconds apart, so it is steadier when the machine's speed
drifts between rounds. --batched adds our 8-sequences-together against 1-sequence decode figure.
Pure standard library.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, ours, peer, our extra flags): paths relative to --models. "exact" keeps the activations in
# f32 against bf16 weights; "bf16" rounds them to bf16, as llama.cpp does. The peer
# keeps its KV cache in f16 (node-llama-cpp's default); ours is f32 unless "kv f16" says otherwise.
PAIRS = [
    ("bf16 exact vs f16", "eurollm-1.7b-random", "eurollm-1.7b-random-f16.gguf", ["--precision", "exact"]),
    ("bf16 bf16 vs f16", "eurollm-1.7b-random", "eurollm-1.7b-random-f16.gguf", ["--precision", "bf16"]),
    ("bf16 bf16 vs bf16", "eurollm-1.7b-random", "eurollm-1.7b-random-bf16.gguf", ["--precision", "bf16"]),
    # The same f16 GGUF file on both sides (f16 weights on AMX tiles: two bf16 terms per weight).
    ("f16 exact", "eurollm-1.7b-random-f16.gguf", "eurollm-1.7b-random-f16.gguf", ["--precision", "exact"]),
    ("f16 bf16", "eurollm-1.7b-random-f16.gguf", "eurollm-1.7b-random-f16.gguf", ["--precision", "bf16"]),
    ("q8_0", "eurollm-1.7b-random-q8_0.gguf", "eurollm-1.7b-random-q8_0.gguf", []),
    ("q4_0", "eurollm-1.7b-random-q4_0.gguf", "eurollm-1.7b-random-q4_0.gguf", []),
    # Q4_K_M-shaped (q4_k and q6_k blocks, random values): the usual GGUF download's format.
    ("q4_k_m", "eurollm-1.7b-random-q4_k_m.gguf", "eurollm-1.7b-random-q4_k_m.gguf", []),
    ("q8_0 kv f16", "eurollm-1.7b-random-q8_0.gguf", "eurollm-1.7b-random-q8_0.gguf", ["--kv-type", "f16"]),
    ("q4_0 kv f16", "eurollm-1.7b-random-q4_0.gguf", "eurollm-1.7b-random-q4_0.gguf", ["--kv-type", "f16"]),
    # BF16 precision on quantized weights: prefills of 64 rows or more on bf16 tiles, the blocks
    # dequantized (AMX); decode stays on the integer kernels.
    ("q8_0 bf16", "eurollm-1.7b-random-q8_0.gguf", "eurollm-1.7b-random-q8_0.gguf", ["--precision", "bf16"]),
    ("q4_0 bf16", "eurollm-1.7b-random-q4_0.gguf", "eurollm-1.7b-random-q4_0.gguf", ["--precision", "bf16"]),
    ("q8_0 bf16 kv f16", "eurollm-1.7b-random-q8_0.gguf", "eurollm-1.7b-random-q8_0.gguf",
     ["--precision", "bf16", "--kv-type", "f16"]),
]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def warm(path):
    """Read the files once so both engines load from the page cache."""
    files = [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eurollm", required=True)
    ap.add_argument("--models", default="/tmp/eurollm-bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--pairs", default=",".join(p[0] for p in PAIRS))
    ap.add_argument("--embed-texts", type=int, default=8)
    ap.add_argument("--embed-tokens", type=int, default=64)
    ap.add_argument("--batched", action="store_true",
                    help="also time ours decoding 8 sequences together against 1 (bf16 model, both precisions)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    pairs = [p for p in PAIRS if p[0] in args.pairs.split(",")]
    common = ["--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
              "--threads", str(args.threads), "--embed-texts", str(args.embed_texts),
              "--embed-tokens", str(args.embed_tokens)]
    results = {p[0]: {"ours": [], "peer": []} for p in pairs}
    loads = []
    for r in range(args.rounds):
        for label, ours, peer, extra in pairs:
            o, p = os.path.join(args.models, ours), os.path.join(args.models, peer)
            warm(o)
            loads.append(os.getloadavg()[0])
            results[label]["ours"].append(run_json([args.eurollm, "bench", o, *common, *extra, "--reps", "1", "--format", "json"]))
            warm(p)
            results[label]["peer"].append(run_json(["node", os.path.join(HERE, "peer_llama_cpp.mjs"), p, *common, "--reps", "1"]))
            print(f"round {r + 1} {label}: ours {results[label]['ours'][-1]['decode_tok_s']:.2f} / peer "
                  f"{results[label]['peer'][-1]['decode_tok_s']:.2f} decode tok/s", file=sys.stderr)
    keys = [("prefill_tok_s", "prefill tok/s"), ("decode_tok_s", "decode tok/s"), ("embed_tok_s", "embed tok/s"),
            ("load_s", "load s"), ("peak_rss_mb", "peak RSS MB")]
    print(f"machine: {os.cpu_count()} CPUs, load average during the runs {statistics.median(loads):.1f}; "
          f"{args.threads} threads; prefill {args.prompt_tokens}, decode {args.gen_tokens}; "
          f"medians of {args.rounds} rounds\n")
    print("| weights (ours vs llama.cpp) | " + " | ".join(f"{k[1]} ours / peer / ratio" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    table = {}
    for label, _, _, _ in pairs:
        row = [label]
        table[label] = {}
        for key, _ in keys:
            a = statistics.median(x[key] for x in results[label]["ours"])
            b = statistics.median(x[key] for x in results[label]["peer"])
            table[label][key] = {"ours": a, "peer": b, "ratio": a / b if b else None}
            row.append(f"{a:.2f} / {b:.2f} / **{a / b:.2f}x**" if b else f"{a:.2f} / - / -")
        print("| " + " | ".join(row) + " |")
    speeds = keys[:3]
    print("\n| weights | " + " | ".join(f"{k[1]}: median of per-round ratios (min-max)" for k in speeds) + " |")
    print("|---|" + "---|" * len(speeds))
    for label, _, _, _ in pairs:
        row = [label]
        for key, _ in speeds:
            rs = [o[key] / p[key] for o, p in zip(results[label]["ours"], results[label]["peer"]) if p[key]]
            table[label][key]["paired_ratio"] = statistics.median(rs) if rs else None
            row.append(f"**{statistics.median(rs):.2f}x** ({min(rs):.2f}-{max(rs):.2f})" if rs else "-")
        print("| " + " | ".join(row) + " |")
    batched = batched_decode(args) if args.batched else {}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"table": table, "raw": results, "batched": batched, "time": time.time()}, f, indent=1)


def batched_decode(args):
    """Ours alone: 8 sequences decoded together (one shared prompt) against 1, same process settings."""
    model = os.path.join(args.models, "eurollm-1.7b-random")
    warm(model)
    out = {}
    print("\n| precision | decode tok/s, 1 sequence | decode tok/s, 8 sequences together | ratio |\n|---|---|---|---|")
    for precision in ("exact", "bf16"):
        runs = {1: [], 8: []}
        for _ in range(args.rounds):
            for seqs in (1, 8):
                runs[seqs].append(run_json([args.eurollm, "bench", model, "--prompt-tokens", "32", "--gen-tokens",
                                            "32", "--seqs", str(seqs), "--threads", str(args.threads),
                                            "--precision", precision, "--reps", "1", "--format", "json"])
                                  ["decode_tok_s"])
        one, eight = statistics.median(runs[1]), statistics.median(runs[8])
        out[precision] = {"one": one, "eight": eight, "ratio": eight / one}
        print(f"| {precision} | {one:.2f} | {eight:.2f} | **{eight / one:.2f}x** |")
    return out


if __name__ == "__main__":
    main()
