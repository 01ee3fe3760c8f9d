#!/usr/bin/env bash
# Installs everything the tests need and runs every suite: the C/C++ suite (ctest) in a release
# build and under AddressSanitizer+UBSan and ThreadSanitizer, each binding's own runner, and the
# GPU compile check. Exits non-zero if any suite fails; ends with one summary line.
#
#   scripts/test.sh              everything
#   scripts/test.sh --quick      release ctest only
# Environment: EUROLLM_STORIES_DIR (default ../shared/models/stories260K), JOBS (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${JOBS:-2}
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

scripts/setup-deps.sh || { echo "setup-deps failed"; exit 1; }

# Sanitizer settings (they affect only the sanitized builds).
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1

passed=0 failed=0 failed_names=()
suite() {  # suite NAME COMMAND...
    local name=$1; shift
    echo "=== ${name}"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1)); echo "=== ${name}: passed ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1)); failed_names+=("$name"); echo "=== ${name}: FAILED ($((SECONDS - t0)) s)"
    fi
}

build() {  # build DIR [cmake args...] [-- ninja targets...]
    local dir=$1; shift
    local args=() targets=()
    while (($#)) && [[ $1 != -- ]]; do args+=("$1"); shift; done
    (($#)) && { shift; targets=("$@"); }
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${args[@]}" >/dev/null &&
        ninja -C "$dir" -j "$jobs" "${targets[@]}" >"$dir.log" 2>&1 || { tail -40 "$dir.log"; return 1; }
}

ctest_in() {  # ctest_in DIR [ctest args...]
    local dir=$1; shift
    ctest --test-dir "$dir" -j "$jobs" --output-on-failure "$@"
}

kernels_at_o0() {
    local out; out=$(mktemp -d)
    for f in kernels/cpu/*.cpp; do
        c++ -O0 -std=gnu++17 -Ikernels -c "$f" -o "$out/$(basename "$f").o" || { rm -rf "$out"; return 1; }
    done
    rm -rf "$out"
}

suite "build (release)" build build/release
suite "ctest (release)" ctest_in build/release
if ((!quick)); then
    suite "build (asan+ubsan)" build build/asan -DEUROLLM_SANITIZE=address
    suite "ctest (asan+ubsan)" ctest_in build/asan
    # ThreadSanitizer: the threading tests (one model shared by several threads and contexts).
    suite "build (tsan)" build build/tsan -DEUROLLM_SANITIZE=thread -- test_generation test_core_units
    suite "ctest (tsan)" ctest_in build/tsan -R 'Threads|ThreadPool'
    # The SIMD kernels at -O0, as a Debug build compiles them: an intrinsic's immediate operand
    # that only constant folding made constant fails here, not in a user's debug build.
    suite "kernels at -O0" kernels_at_o0
    # The bindings reuse the release build of the library where their runners allow it.
    export EUROLLM_LIB_DIR="$root/build/release" EUROLLM_JAVA_CORE_BUILD="$root/build/release"
    for b in python java rust; do
        [[ -x bindings/$b/run_tests.sh ]] && suite "bindings/$b" bindings/$b/run_tests.sh
    done
    [[ -x scripts/gpu-compile-check.sh ]] && suite "gpu compile check" scripts/gpu-compile-check.sh
fi

echo
((failed)) && echo "failed suites: ${failed_names[*]}"
echo "suites: ${passed} passed, ${failed} failed"
((failed == 0))
