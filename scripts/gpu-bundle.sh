#!/usr/bin/env bash
# Packs the CUDA build's GPU suites, the CLI and the shared libraries they need into one folder that
# runs on a GPU machine without this repository's build dependencies (compilers, SentencePiece,
# GoogleTest): there it needs only an NVIDIA driver for CUDA 13 and cuBLAS 13 (a CUDA toolkit, or the
# pip wheel nvidia-cublas, which PyTorch installs). This is how the suite first ran on an H100.
#
#   scripts/gpu-bundle.sh [OUT]          (default: build-deps/gpu-bundle)
#   OUT/run.sh [--bench]                 on the GPU machine; exit 0 when every check passed
#
# The bundle holds bin/ (test_gpu, test_gpu_capi, eurollm), lib/ (libeurollm and the non-system
# libraries they link, except cuBLAS and the driver), stories260K/, make_random_model.py and run.sh
# (scripts/gpu-bundle-run.sh). About 12 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-build-deps/gpu-bundle}
stories=${EUROLLM_STORIES_DIR:-$root/../shared/models/stories260K}
[ -f "$stories/model.safetensors" ] || { echo "gpu-bundle: no stories260K at $stories (set EUROLLM_STORIES_DIR)" >&2; exit 1; }

scripts/gpu-compile-check.sh cuda  # builds build-cuda: test_gpu, test_gpu_capi, libeurollm, the CLI

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cp build-cuda/tests/gpu/test_gpu build-cuda/tests/gpu/test_gpu_capi build-cuda/eurollm "$out/bin/"
# Everything the binaries load that a bare Linux with a GPU driver may lack. The C/C++ runtime stays
# (a newer glibc/libstdc++ there runs what was built here), and so do cuBLAS (hundreds of MB; taken
# from the machine) and the driver.
for bin in "$out"/bin/*; do
    ldd "$bin" | awk '/=> \// { print $1, $3 }'
done | sort -u | while read -r name path; do
    case "$name" in
        libc.so* | libm.so* | libstdc++.so* | libgcc_s.so* | libpthread.so* | librt.so* | libdl.so* | ld-linux*) ;;
        libcublas* | libcuda.so* | libcudart.so*) ;;
        *) cp -L "$path" "$out/lib/$name" ;;
    esac
done
cp -r "$stories" "$out/stories260K"
cp scripts/bench/make_random_model.py "$out/"
cp scripts/gpu-bundle-run.sh "$out/run.sh"
chmod +x "$out/run.sh"
echo "gpu-bundle: $out ($(du -sh "$out" | cut -f1)): copy it to the GPU machine and run $out/run.sh [--bench]"
ls "$out/lib"
