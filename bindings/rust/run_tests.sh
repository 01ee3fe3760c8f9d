#!/usr/bin/env bash
# Test the Rust crates from a clean clone: install what is missing (install_deps.sh), build
# libeurollm.so and the eurollm CLI with CMake into <repo>/build-rust (git-ignored) unless
# EUROLLM_LIB_DIR names a build already made, then `cargo test` the workspace (unit, integration
# and doc tests of eurollm-sys, eurollm and samples/rust). Extra arguments go to cargo test.
#
# Environment: EUROLLM_LIB_DIR (skip the CMake build), EUROLLM_BUILD_DIR (where to build),
# EUROLLM_STORIES_DIR (the stories260K model; default <repo>/../shared/models/stories260K),
# EUROLLM_CLI (the C CLI to compare with), JOBS (parallel jobs, default 2), EUROLLM_SKIP_DEPS=1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
jobs="${JOBS:-2}"

if [ "${EUROLLM_SKIP_DEPS:-0}" != 1 ]; then
  "$here/install_deps.sh"
fi

if [ -z "${EUROLLM_LIB_DIR:-}" ]; then
  build="${EUROLLM_BUILD_DIR:-$repo/build-rust}"
  generator=()
  if command -v ninja >/dev/null 2>&1 && [ ! -f "$build/Makefile" ]; then generator=(-G Ninja); fi
  echo "run_tests.sh: building libeurollm and the eurollm CLI in $build"
  cmake -S "$repo" -B "$build" "${generator[@]}" -DEUROLLM_BUILD_TESTS=OFF -DEUROLLM_BUILD_CLI=ON \
        -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target eurollm eurollm_cli --parallel "$jobs"
  export EUROLLM_LIB_DIR="$build"
fi
if [ -z "${EUROLLM_CLI:-}" ] && [ -x "$EUROLLM_LIB_DIR/eurollm" ]; then
  export EUROLLM_CLI="$EUROLLM_LIB_DIR/eurollm"
fi
stories="${EUROLLM_STORIES_DIR:-$repo/../shared/models/stories260K}"
if [ ! -f "$stories/config.json" ]; then
  echo "run_tests.sh: NOTE: stories260K not found at $stories: tests and doctests that need it SKIP"
fi

cd "$here"
# The experimental API (training) is tested when the library exports it; it always compiles. (grep
# reads all of nm's output: with -q it would stop early and pipefail would report nm's SIGPIPE.)
features=()
lib="$EUROLLM_LIB_DIR/libeurollm.so"
if [ -f "$lib" ] && nm -D --defined-only "$lib" 2>/dev/null | grep -E ' eurollm_trainer_create(@@[A-Z_0-9]+)?$' >/dev/null; then
  features=(--features eurollm/experimental)
else
  echo "run_tests.sh: NOTE: $lib has no training API: the experimental (Trainer) tests are not run"
  cargo build --quiet -j "$jobs" -p eurollm --features experimental
fi
cargo test -j "$jobs" --workspace "${features[@]}" "$@"
