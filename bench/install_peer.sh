#!/bin/sh
# Installs the benchmark peer: llama.cpp through the npm package node-llama-cpp (prebuilt CPU
# binaries). Bench-only: not part of the build or CI. node_modules/ stays git-ignored.
set -eu
cd "$(dirname "$0")"
[ -f package.json ] || cat > package.json <<'JSON'
{
  "name": "eurollm-bench",
  "private": true,
  "type": "module",
  "dependencies": { "node-llama-cpp": "3.22.1" }
}
JSON
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund
