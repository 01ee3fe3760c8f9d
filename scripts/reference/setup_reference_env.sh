#!/usr/bin/env bash
# Create the reference virtual environment that produces and re-checks the golden files
# (tests/data/make_goldens.py): torch, transformers, safetensors, sentencepiece, numpy, peft,
# protobuf. NOT used in CI: PyPI's torch wheel pulls several GB of CUDA libraries.
#
#   scripts/reference/setup_reference_env.sh            # creates ~/.venvs/eurollm-ref
#   EUROLLM_REF_VENV=/some/dir scripts/reference/setup_reference_env.sh
#
# Then:
#   ~/.venvs/eurollm-ref/bin/python tests/data/make_goldens.py --stories ../shared/models/stories260K
#   ~/.venvs/eurollm-ref/bin/python tests/data/make_goldens.py --stories ../shared/models/stories260K --check
#
# The goldens committed in tests/data/golden/ record the versions that made them (transformers
# 5.23.0, torch 2.15.0, sentencepiece 0.2.3, Python 3.11). Set EUROLLM_REF_PIN=1 to install exactly
# those versions instead of the newest ones.
set -euo pipefail

VENV="${EUROLLM_REF_VENV:-$HOME/.venvs/eurollm-ref}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch, transformers, safetensors, sentencepiece, numpy, peft, google.protobuf' 2>/dev/null; then
    echo "reference environment already complete: $VENV"
    "$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip

if [ "${EUROLLM_REF_PIN:-0}" = "1" ]; then
    PKGS=(torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 sentencepiece==0.2.3 numpy==2.4.6
          peft==0.21.2 protobuf==7.36.2)
else
    PKGS=(torch transformers safetensors sentencepiece numpy peft protobuf)
fi
"$VENV/bin/python" -m pip install "${PKGS[@]}"

"$VENV/bin/python" -c 'import torch, transformers, safetensors, sentencepiece, numpy, peft, google.protobuf; print("torch", torch.__version__, "transformers", transformers.__version__, "sentencepiece", sentencepiece.__version__)'
echo "reference environment ready: $VENV"
