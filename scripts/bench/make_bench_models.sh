#!/bin/sh
# Makes the benchmark models under DIR (default /tmp/eurollm-bench): the random EuroLLM-1.7B-shaped
# bf16 safetensors directory and its GGUF exports (f16, q8_0, q4_0, bf16) written by
# `eurollm quantize` (the same files feed llama.cpp, which is how the benchmark also shows that
# llama.cpp reads them). One at a time, to stay within memory. With the gguf package in PYTHON, also
# a Q4_K_M-shaped file of random k-quant blocks (scripts/bench/make_kquant_model.py).
#   EUROLLM=build/eurollm PYTHON=python3 scripts/bench/make_bench_models.sh [DIR]
# Needs a Python with numpy (PYTHON, default python3; gguf too for the Q4_K_M file) and a built
# CLI (EUROLLM, default build/eurollm).
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-/tmp/eurollm-bench}"
py="${PYTHON:-python3}"
cli="${EUROLLM:-$root/build/eurollm}"
[ -x "$cli" ] || { echo "no eurollm CLI at $cli (set EUROLLM)" >&2; exit 1; }
mkdir -p "$dir"
hf="$dir/eurollm-1.7b-random"
[ -f "$hf/model.safetensors" ] || "$py" "$root/scripts/bench/make_random_model.py" "$hf"
for t in ${TYPES:-f16 q8_0 q4_0 bf16}; do
  out="$dir/eurollm-1.7b-random-$t.gguf"
  [ -f "$out" ] || "$cli" quantize "$hf" "$out" --type "$t" >&2
  echo "$out"
done
kq="$dir/eurollm-1.7b-random-q4_k_m.gguf"
if [ ! -f "$kq" ] && [ -f "$dir/eurollm-1.7b-random-f16.gguf" ] && "$py" -c "import gguf" 2>/dev/null; then
  "$py" "$root/scripts/bench/make_kquant_model.py" "$dir/eurollm-1.7b-random-f16.gguf" "$kq" >&2
fi
[ ! -f "$kq" ] || echo "$kq"
