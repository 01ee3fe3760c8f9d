#!/usr/bin/env bash
# Builds and tests the Java binding from a clean clone:
#   1. libeurollm through the repository's CMake, in a git-ignored build dir (reused when present),
#   2. `mvn test`: SWIG + libeurollm_jni.so (CMake), javac, JUnit 5 (Surefire prints its summary).
# Exits non-zero on any failure. Needs: cmake, ninja, a C/C++ compiler, swig >= 4, JDK 17, Maven.
#
# Environment:
#   EUROLLM_JAVA_CORE_BUILD  build dir of libeurollm (default: <repo>/build-java)
#   EUROLLM_STORIES_DIR      the stories260K model (default: <repo>/../shared/models/stories260K);
#                            the model tests are skipped when it is absent
#   MAVEN_ARGS               extra arguments for mvn (e.g. -o to stay offline)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${EUROLLM_JAVA_CORE_BUILD:-$repo/build-java}"
jobs="${EUROLLM_JOBS:-2}"

for tool in cmake swig javac mvn; do
    command -v "$tool" >/dev/null || { echo "run_tests.sh: '$tool' is not installed (see bindings/java/README.md)" >&2; exit 1; }
done
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

# 1. libeurollm (configure only once; the build itself is incremental)
quiet() { # runs a command, showing its output only when it fails
    local log
    if ! log="$("$@" 2>&1)"; then echo "$log" >&2; echo "run_tests.sh: failed: $*" >&2; exit 1; fi
}
if [ ! -f "$build/CMakeCache.txt" ]; then
    quiet cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DEUROLLM_BUILD_TESTS=OFF
fi
quiet cmake --build "$build" --target eurollm --parallel "$jobs"

# 2. the binding and its tests
cd "$here"
cmake_gen="Unix Makefiles"
if command -v ninja >/dev/null; then cmake_gen="Ninja"; fi
# shellcheck disable=SC2086
exec mvn -B -ntp ${MAVEN_ARGS:-} test -Deurollm.library.dir="$build" -Dcmake.generator="$cmake_gen" -Dnative.jobs="$jobs"
