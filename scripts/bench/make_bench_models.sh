#!/bin/sh
# Makes the benchmark models under DIR (default /tmp/eurollm-bench): the random EuroLLM-1.7B-shaped
# bf16 safetensors directory and its GGUF exports (f16, bf16, q8_0, q4_0). One at a time, to stay
# within memory. Needs a Python with numpy, gguf and sentencepiece (PYTHON, default python3).
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-/tmp/eurollm-bench}"
py="${PYTHON:-python3}"
mkdir -p "$dir"
hf="$dir/eurollm-1.7b-random"
[ -f "$hf/model.safetensors" ] || "$py" "$root/scripts/bench/make_random_model.py" "$hf"
for t in ${TYPES:-f16 q8_0 q4_0 bf16}; do
  out="$dir/eurollm-1.7b-random-$t.gguf"
  [ -f "$out" ] || { "$py" "$root/scripts/convert_hf_to_gguf.py" "$hf" "$out.tmp" --outtype "$t" 2>/dev/null && mv "$out.tmp" "$out"; }
  echo "$out"
done
