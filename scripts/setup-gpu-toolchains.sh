#!/usr/bin/env bash
# Installs the GPU compilers the GPU backend builds with, on a fresh Debian/Ubuntu machine (no GPU
# needed: compiling and linking needs none).
#
#   scripts/setup-gpu-toolchains.sh [cuda|hip|all]        (default: all)
#
# CUDA: a system toolkit when there is one ($CUDA_HOME, $CUDA_PATH, /usr/local/cuda, nvcc on PATH);
#       otherwise NVIDIA's PyPI wheels (nvcc, cudart, the C runtime headers, NVVM, CCCL, cuBLAS) in a
#       virtual environment, build-deps/cuda-venv, laid out as a toolkit CMake can use.
# HIP:  ROCm when /opt/rocm has it; otherwise Debian's packages hipcc and libamdhip64-dev (ROCm 5.2,
#       with clang 15; they compile for gfx90a and gfx1030). hipBLAS is not packaged in Debian 12, so
#       that build uses our own GEMM kernel.
#
# Writes build-deps/gpu-toolchains.env, to be sourced: it sets EUROLLM_CUDA_CMAKE_ARGS and
# EUROLLM_HIP_CMAKE_ARGS, the extra CMake arguments for each flavour (scripts/gpu-compile-check.sh
# and scripts/run-gpu-tests.sh use it). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WHAT=${1:-all}
DEPS=$ROOT/build-deps
ENV_FILE=$DEPS/gpu-toolchains.env
mkdir -p "$DEPS"

# The wheel versions are pinned so that every CI run compiles with the same nvcc (a newer nvcc may
# warn about new things, and warnings are errors). Override with EUROLLM_CUDA_WHEELS.
CUDA_WHEELS=${EUROLLM_CUDA_WHEELS:-"nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37 nvidia-nvvm==13.5.37 nvidia-cuda-cccl==13.3.5.0.6 nvidia-cublas==13.10.0.20"}

log() { printf '[setup-gpu] %s\n' "$*" >&2; }

cuda_args=""
hip_args=""

setup_cuda() {
    local root=""
    for cand in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
        if [ -n "$cand" ] && [ -x "$cand/bin/nvcc" ]; then root=$cand; break; fi
    done
    if [ -z "$root" ] && command -v nvcc >/dev/null 2>&1; then
        root=$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)
    fi
    if [ -n "$root" ]; then
        log "CUDA: system toolkit at $root ($("$root/bin/nvcc" --version | tail -n 2 | head -n 1))"
    else
        local venv=$DEPS/cuda-venv
        local stamp=$venv/.eurollm-wheels
        if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$CUDA_WHEELS" ]; then
            log "CUDA: no system toolkit; installing the PyPI wheels into $venv"
            rm -rf "$venv"
            python3 -m venv "$venv"
            # shellcheck disable=SC2086
            "$venv/bin/pip" install --quiet --disable-pip-version-check $CUDA_WHEELS
            echo "$CUDA_WHEELS" >"$stamp"
        fi
        root=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu1[0-9] 2>/dev/null | sort | tail -n 1)
        if [ -z "$root" ] || [ ! -x "$root/bin/nvcc" ]; then
            echo "setup-gpu-toolchains: the CUDA wheels did not provide nvidia/cu*/bin/nvcc" >&2
            exit 1
        fi
        # The wheels ship only versioned sonames; the linker wants the plain names.
        for lib in cudart cublas cublasLt nvrtc; do
            local so
            so=$(ls "$root/lib/lib$lib.so."* 2>/dev/null | grep -E "lib$lib\.so\.[0-9]+$" | head -n 1 || true)
            if [ -n "$so" ] && [ ! -e "$root/lib/lib$lib.so" ]; then ln -s "$(basename "$so")" "$root/lib/lib$lib.so"; fi
        done
        log "CUDA: wheels at $root ($("$root/bin/nvcc" --version | tail -n 2 | head -n 1))"
    fi
    cuda_args="-DCMAKE_CUDA_COMPILER=$root/bin/nvcc -DCUDAToolkit_ROOT=$root"
}

setup_hip() {
    if [ -x /opt/rocm/llvm/bin/clang++ ]; then
        log "HIP: ROCm at /opt/rocm"
        hip_args="-DCMAKE_HIP_COMPILER=/opt/rocm/llvm/bin/clang++ -DCMAKE_PREFIX_PATH=/opt/rocm"
        return
    fi
    if ! command -v hipcc >/dev/null 2>&1 || ! dpkg -s libamdhip64-dev >/dev/null 2>&1; then
        log "HIP: installing Debian's hipcc and libamdhip64-dev"
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
        if ! apt-cache policy hipcc 2>/dev/null | grep -q "Candidate: [0-9]"; then
            $sudo apt-get update -qq
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends hipcc libamdhip64-dev >/dev/null
    fi
    log "HIP: Debian ROCm $(hipconfig --version 2>/dev/null || echo '?') (cmake/gpu.cmake adapts CMake to its /usr layout)"
    hip_args=""
}

case "$WHAT" in
    cuda) setup_cuda ;;
    hip) setup_hip ;;
    all) setup_cuda; setup_hip ;;
    *) echo "usage: $0 [cuda|hip|all]" >&2; exit 2 ;;
esac

# Keep the other flavour's answer from an earlier run.
if [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    old_cuda=$(. "$ENV_FILE"; echo "${EUROLLM_CUDA_CMAKE_ARGS:-}")
    old_hip=$(. "$ENV_FILE"; echo "${EUROLLM_HIP_CMAKE_ARGS:-}")
    [ "$WHAT" = hip ] && cuda_args=$old_cuda
    [ "$WHAT" = cuda ] && hip_args=$old_hip
fi
cat >"$ENV_FILE" <<EOF
# Written by scripts/setup-gpu-toolchains.sh: extra CMake arguments of each GPU flavour.
EUROLLM_CUDA_CMAKE_ARGS="$cuda_args"
EUROLLM_HIP_CMAKE_ARGS="$hip_args"
EOF
log "wrote $ENV_FILE"
