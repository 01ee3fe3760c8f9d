#!/usr/bin/env bash
# Installs the system packages libeurollm needs to build and test, on Debian/Ubuntu.
# Idempotent and quiet: packages already present are skipped, and apt runs only if one is missing.
#   scripts/setup-deps.sh            build + test dependencies
#   scripts/setup-deps.sh --runtime  only what building the library and the CLI needs
set -euo pipefail

runtime=(build-essential cmake ninja-build pkg-config libsentencepiece-dev sentencepiece nlohmann-json3-dev
         libprotobuf-dev protobuf-compiler python3)
tests=(libgtest-dev libgmock-dev swig pybind11-dev python3-venv python3-dev openjdk-17-jdk-headless maven
       libclang-dev clang fortunes fortunes-de fortunes-it fortunes-es fortunes-pl fortunes-cs fortunes-ga fortunes-bg)

want=("${runtime[@]}")
[[ "${1:-}" == "--runtime" ]] || want+=("${tests[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup-deps: installing ${missing[*]}" >&2
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust comes from rustup on most developer machines; Debian's cargo is the fallback.
if [[ "${1:-}" != "--runtime" ]] && ! command -v cargo >/dev/null; then
    echo "setup-deps: installing cargo from Debian" >&2
    ${SUDO:-} apt-get install -y -qq --no-install-recommends cargo rustc >/dev/null
fi
