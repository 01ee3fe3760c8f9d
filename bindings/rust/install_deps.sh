#!/usr/bin/env bash
# Installs what the Rust crates need on a fresh Debian/Ubuntu machine, and nothing when it is all
# there already (a few checks, no network):
#  - to build libeurollm.so: a C++ compiler, CMake, Ninja, pkg-config, SentencePiece, nlohmann-json
#    (and Protobuf once the repository has proto/*.proto files);
#  - for eurollm-sys's header sync test (bindgen): libclang and clang's builtin headers
#    (Debian package libclang-dev).
# Rust itself (cargo, rustc >= 1.82) comes from rustup and must already be installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

need=()
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if ! pkg-config --exists sentencepiece 2>/dev/null; then need+=(libsentencepiece-dev); fi
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
if compgen -G "$repo/proto/*.proto" >/dev/null; then
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  [ -d /usr/include/google/protobuf ] || need+=(libprotobuf-dev)
fi
# bindgen loads libclang at run time and needs clang's own headers (stddef.h, stdbool.h).
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null && ! compgen -G "/usr/lib/*/libclang-[0-9]*.so*" >/dev/null \
   || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null; then
  [ -n "${LIBCLANG_PATH:-}" ] || need+=(libclang-dev)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "install_deps.sh: installing ${need[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "install_deps.sh: not root and no sudo: install ${need[*]} by hand" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install_deps.sh: cargo not found: install Rust (>= 1.82) with rustup" >&2
  exit 1
fi
