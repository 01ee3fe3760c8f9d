#!/usr/bin/env bash
# Build, install and test the eurollm Python package from a clean clone.
#
#   bindings/python/run_tests.sh [pytest args...]
#
# 1. bindings/python/.venv: a virtual environment with the build and test requirements
#    (requirements-test.txt: scikit-build-core, pybind11, numpy, pytest, sentencepiece, jinja2, gguf).
# 2. `pip install ./bindings/python`: scikit-build-core builds libeurollm and the extension
#    (build tree kept in bindings/python/build/<wheel tag>, so later runs are incremental) and
#    installs the package, libeurollm.so.0 bundled, into the venv.
# 3. pytest on bindings/python/tests against the installed package.
# Idempotent. Environment: PYTHON (interpreter for the venv, default python3), JOBS (default 2),
# EUROLLM_STORIES_DIR (the stories260K fixture; tests needing it skip without it).
# System packages: cmake, ninja-build, g++, python3-dev, python3-venv, plus libeurollm's own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
export CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}"

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import scikit_build_core, pybind11, numpy, pytest, sentencepiece, jinja2, gguf" 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements-test.txt"
fi

echo "building and installing eurollm (pip install ./bindings/python)"
"$PY" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall "$HERE"

# The pytest script (not `python -m pytest`) keeps the source tree off sys.path, so the tests
# import the installed package.
cd "$HERE/tests"
export PYTHONFAULTHANDLER=1  # a crash in native code prints the Python stack
exec "$VENV/bin/pytest" "$HERE/tests" -p no:cacheprovider "$@"
