#!/bin/sh
# Builds bench/ceilings.cpp against the CPU kernels (kernels/ only; no model code) and runs it.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${TMPDIR:-/tmp}/eurollm-ceilings"
c++ -O2 -std=c++17 -pthread -I"$root/kernels" "$root/bench/ceilings.cpp" "$root"/kernels/cpu/*.cpp -o "$out"
exec "$out" "${1:-2}"
