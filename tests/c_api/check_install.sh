#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a C consumer twice: once through
# pkg-config, once through find_package(eurollm). Both must link and run.
set -euo pipefail
build=$1; src=$2
prefix=$(mktemp -d); trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cat > "$prefix/app.c" <<'C'
#include <stdio.h>
#include "eurollm.h"
int main(void) {
    eurollm_model *m = NULL;
    eurollm_status st = eurollm_model_load("/nonexistent-model", NULL, &m);
    printf("%s %s\n", eurollm_version_string(), eurollm_status_string(st));
    return st == EUROLLM_ERR_IO ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -std=c99 -Wall -Werror "$prefix/app.c" $(pkg-config --cflags --libs eurollm) -Wl,-rpath,"$(pkg-config --variable=libdir eurollm)" -o "$prefix/app_pc"
"$prefix/app_pc"
mkdir -p "$prefix/cm"
cat > "$prefix/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.22)
project(consumer C)
find_package(eurollm REQUIRED)
add_executable(app ../app.c)
target_link_libraries(app eurollm::eurollm)
CM
cmake -S "$prefix/cm" -B "$prefix/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cm/build" >/dev/null
"$prefix/cm/build/app"
echo "install ok: pkg-config and find_package consumers build and run"
