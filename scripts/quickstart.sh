#!/usr/bin/env bash
# The main job on a fresh machine: install the build dependencies, build libeurollm and its CLI,
# and generate text with the embedded default model (a small multilingual Llama that libeurollm
# trained from scratch on the Debian fortune packages; see scripts/train_default_model.sh).
#   scripts/quickstart.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh --runtime
cmake -S . -B build/quickstart -G Ninja -DCMAKE_BUILD_TYPE=Release -DEUROLLM_BUILD_TESTS=OFF >/dev/null
ninja -C build/quickstart eurollm_cli >/dev/null
model=samples/models/fortunes-tiny
bin=build/quickstart/eurollm
"$bin" info "$model" >&2
for prompt in "${1:-The meaning of life is}" "Das Leben ist" "La vita è" "Życie jest" "Животът е"; do
    printf '\n> %s' "$prompt"
    "$bin" generate "$model" -p "$prompt" -n 48 --temp 0.7 --top-p 0.9 --seed 7
done
