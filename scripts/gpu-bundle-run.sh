#!/usr/bin/env bash
# run.sh of a GPU bundle (made by scripts/gpu-bundle.sh), on a machine with an NVIDIA GPU:
#   1. test_gpu: every op of the GPU backend against the CPU, forward and backward; a training step;
#      greedy stories260K through the forward pass; device-resident forward and partial offload.
#   2. test_gpu_capi: models loaded on the GPU through the C ABI against the same model on the CPU.
#   3. the CLI: 64 greedy tokens with --device cpu, cuda, and cuda --gpu-layers 3, byte-equal.
#   4. with --bench: a random EuroLLM-1.7B-shaped bf16 model (numpy), `eurollm bench` on the GPU,
#      with half the layers offloaded, and on the CPU (all cores), as JSON.
# Results (gtest XML, outputs, bench JSON) go to $OUT, or ./gpu-results. Exit 0 when 1-3 passed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
results=${OUT:-$PWD/gpu-results}
mkdir -p "$results"
bench=0
[ "${1:-}" = --bench ] && bench=1

# cuBLAS 13: already on the loader's path, or from a CUDA toolkit, or from a pip wheel.
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13'; then
    cub=$(find /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /opt /usr/lib /usr/local/lib \
               -name 'libcublas.so.13' 2>/dev/null | head -n 1)
    if [ -n "$cub" ]; then
        export LD_LIBRARY_PATH="$(dirname "$cub")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    else
        echo "run.sh: libcublas.so.13 not found (install a CUDA 13 toolkit or: pip install nvidia-cublas)" >&2
    fi
fi
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EUROLLM_STORIES_DIR="$here/stories260K"
stories=$EUROLLM_STORIES_DIR

if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "run.sh: no NVIDIA GPU here (nvidia-smi sees none); the suites would only report skips" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader | tee "$results/gpu.txt"

status=0
check() {  # check NAME COMMAND...: runs it, records pass/fail
    local name=$1; shift
    echo "==== $name"
    if "$@"; then echo "---- $name: passed"; else echo "---- $name: FAILED"; status=1; fi
}
check test_gpu "$here/bin/test_gpu" --gtest_output="xml:$results/test_gpu.xml"
check test_gpu_capi "$here/bin/test_gpu_capi" --gtest_output="xml:$results/test_gpu_capi.xml"

greedy() {  # greedy NAME DEVICE-ARGS...: 64 greedy tokens into $results/greedy_NAME.txt
    local name=$1; shift
    "$here/bin/eurollm" generate "$stories" -p "Once upon a time" -n 64 --temp 0 --ignore-eos "$@" \
        >"$results/greedy_$name.txt"
}
cli_greedy() {
    greedy cpu --device cpu && greedy cuda --device cuda && greedy cuda_3_layers --device cuda:0 --gpu-layers 3 &&
        cmp "$results/greedy_cpu.txt" "$results/greedy_cuda.txt" &&
        cmp "$results/greedy_cpu.txt" "$results/greedy_cuda_3_layers.txt" && head -c 240 "$results/greedy_cuda.txt" && echo
}
check "CLI greedy: cpu == cuda == cuda with 3 layers" cli_greedy

if ((bench)); then
    model=${EUROLLM_BENCH_MODEL:-/tmp/eurollm-1.7b-random}
    [ -f "$model/model.safetensors" ] ||
        python3 "$here/make_random_model.py" "$model" --tokenizer "$stories/tokenizer.model" >/dev/null
    for run in "cuda --device cuda" "cuda_half --device cuda --gpu-layers 12" "cpu --device cpu"; do
        set -- $run
        name=$1; shift
        echo "==== bench $name"
        "$here/bin/eurollm" bench "$model" "$@" -p 512 -n 128 -r 3 --format json | tee "$results/bench_$name.json"
    done
fi
echo "==== results in $results; status $status"
exit $status
