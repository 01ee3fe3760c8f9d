#!/usr/bin/env bash
# Every dynamic symbol libeurollm.so defines is eurollm_* (the version script hides the rest).
set -euo pipefail
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^eurollm_' | grep -v '^EUROLLM_' || true)
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^eurollm_')
if [[ -n "$bad" ]]; then
    echo "symbols outside the eurollm_ namespace are exported:"; echo "$bad"; exit 1
fi
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[[ "$soname" =~ ^libeurollm\.so\.[0-9]+$ ]] || { echo "unexpected SONAME '$soname'"; exit 1; }
echo "exports ok: $count eurollm_* symbols, SONAME $soname"
