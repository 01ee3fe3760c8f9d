#!/usr/bin/env bash
# CI's GPU check: installs the toolchains if needed, then configures and builds the library and
# the GPU test suite for CUDA (sm_80, sm_90) and for HIP (gfx90a, gfx1030), warnings as errors in
# device code and in the GPU backend. Needs no GPU. Exits non-zero when either flavour fails.
#
#   scripts/gpu-compile-check.sh [cuda|hip|all]     (default: all)
#
# Then runs the GPU suites of each build, which on a machine without a device report their device
# tests as skipped and check that the GPU-enabled library answers "no device" (gpu_runtime.*,
# gpu_capi.DeviceQueriesWithoutOrWithDevice).
# Build directories: build-cuda, build-hip (kept between runs, so a re-run compiles what changed).
# EUROLLM_GPU_JOBS sets the parallel jobs (default: the cores).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
JOBS=${EUROLLM_GPU_JOBS:-$(nproc)}
start_all=$(date +%s)

scripts/setup-gpu-toolchains.sh "$WHAT"
# shellcheck disable=SC1091
. build-deps/gpu-toolchains.env

generator=()
keep_going=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); keep_going=(-- -k 0); fi
launcher=()
if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

status=0
summary=()
check() {
    local flavour=$1 dir=$2 extra=$3
    local t0
    t0=$(date +%s)
    echo "==== GPU compile check: $flavour ($dir)"
    # shellcheck disable=SC2086
    if cmake -S . -B "$dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
            -DEUROLLM_"${flavour^^}"=ON -DEUROLLM_GPU_WERROR=ON -DEUROLLM_BUILD_TESTS=ON -DEUROLLM_BUILD_CLI=ON \
            $extra >"build-deps/$dir.configure.log" 2>&1 \
        && grep -E "GPU backend:" "build-deps/$dir.configure.log" \
        && cmake --build "$dir" --target test_gpu test_gpu_capi eurollm eurollm_cli -j "$JOBS" "${keep_going[@]}" \
            >"build-deps/$dir.build.log" 2>&1; then
        local t1
        t1=$(date +%s)
        echo "---- $flavour: compiled and linked in $((t1 - t0)) s; running its GPU suites (no device: skips)"
        if (cd "$dir" && ./tests/gpu/test_gpu --gtest_brief=1 && ./tests/gpu/test_gpu_capi --gtest_brief=1); then
            summary+=("$flavour: OK ($((t1 - t0)) s to build)")
        else
            summary+=("$flavour: built, but its GPU suite FAILED")
            status=1
        fi
    else
        echo "---- $flavour: FAILED; the end of the log:"
        tail -n 60 "build-deps/$dir.configure.log" 2>/dev/null | sed 's/^/    /'
        tail -n 60 "build-deps/$dir.build.log" 2>/dev/null | sed 's/^/    /'
        summary+=("$flavour: FAILED (see build-deps/$dir.configure.log, build-deps/$dir.build.log)")
        status=1
    fi
}

case "$WHAT" in
    cuda) check cuda build-cuda "$EUROLLM_CUDA_CMAKE_ARGS" ;;
    hip) check hip build-hip "$EUROLLM_HIP_CMAKE_ARGS" ;;
    all)
        check cuda build-cuda "$EUROLLM_CUDA_CMAKE_ARGS"
        check hip build-hip "$EUROLLM_HIP_CMAKE_ARGS"
        ;;
    *) echo "usage: $0 [cuda|hip|all]" >&2; exit 2 ;;
esac

echo "==== GPU compile check summary ($(( $(date +%s) - start_all )) s in all)"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
