#!/usr/bin/env bash
# Builds the GPU backend for the machine's GPU and runs the GPU suites (tests/gpu): every op against
# the CPU reference forward and backward, greedy generation of stories260K equal to the CPU's, one
# training step close to the CPU's (test_gpu); models loaded on the GPU through the C ABI against
# the same model on the CPU (test_gpu_capi). For anyone with an NVIDIA or AMD GPU.
#
#   scripts/run-gpu-tests.sh [cuda|hip] [gtest arguments...]
#                                  (default kind: cuda when nvidia-smi sees a GPU, else hip)
#
# Architectures: the build's defaults (CUDA 80;90, HIP gfx90a;gfx1030) plus the local GPU's when it
# can be asked (nvidia-smi's compute capability / rocminfo's gfx name). Exits non-zero when a test
# fails; a machine without a device reports the device tests as skipped (and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=""
if [ "${1:-}" = cuda ] || [ "${1:-}" = hip ]; then kind=$1; shift; fi
if [ -z "$kind" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then kind=cuda; else kind=hip; fi
fi

scripts/setup-gpu-toolchains.sh "$kind"
# shellcheck disable=SC1091
. build-deps/gpu-toolchains.env

extra=""
if [ "$kind" = cuda ]; then
    extra=$EUROLLM_CUDA_CMAKE_ARGS
    arch="80;90"
    if command -v nvidia-smi >/dev/null 2>&1; then
        cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
        if [ -n "$cc" ] && [[ ";$arch;" != *";$cc;"* ]]; then arch="$arch;$cc"; fi
    fi
    extra="$extra -DEUROLLM_CUDA_ARCHITECTURES=$arch"
elif [ "$kind" = hip ]; then
    extra=$EUROLLM_HIP_CMAKE_ARGS
    arch="gfx90a;gfx1030"
    if command -v rocminfo >/dev/null 2>&1; then
        gfx=$(rocminfo 2>/dev/null | grep -o -m 1 'gfx[0-9a-f]*' || true)
        if [ -n "$gfx" ] && [[ ";$arch;" != *";$gfx;"* ]]; then arch="$arch;$gfx"; fi
    fi
    extra="$extra -DEUROLLM_HIP_ARCHITECTURES=$arch"
else
    echo "usage: $0 [cuda|hip]" >&2
    exit 2
fi

dir=build-$kind-test
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
# shellcheck disable=SC2086
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DEUROLLM_"${kind^^}"=ON -DEUROLLM_BUILD_TESTS=ON \
    -DEUROLLM_BUILD_CLI=ON $extra
cmake --build "$dir" --target test_gpu test_gpu_capi eurollm_cli -j "$(nproc)"
echo "==== GPU suite ($kind, $arch): the backend's ops, greedy stories260K, a training step"
status=0
"$dir/tests/gpu/test_gpu" "$@" || status=1
echo "==== GPU suite ($kind, $arch): models on the GPU through the C ABI"
"$dir/tests/gpu/test_gpu_capi" "$@" || status=1
exit $status
