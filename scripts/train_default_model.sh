#!/usr/bin/env bash
# Train the embedded default model from nothing: a SentencePiece tokenizer and a small Llama
# trained on the multilingual Debian fortune packages (en, de, it, es, pl, cs, ga, bg).
#
#   apt-get install fortunes fortunes-de fortunes-it fortunes-es fortunes-pl fortunes-cs fortunes-ga fortunes-bg
#   scripts/train_default_model.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR holds the built `eurollm` CLI (default build); OUT_DIR (default BUILD_DIR/default-model)
# receives data/, tokenizer/, init/, run/ (checkpoints, resumable with the same command) and
# model/, the trained model directory (BF16, ~2 MB). Deterministic for the same machine and
# settings; STEPS, BATCH, SEQ_LEN, LR, THREADS, VOCAB can be overridden from the environment.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
OUT="${2:-$BUILD/default-model}"
STEPS="${STEPS:-5000}" BATCH="${BATCH:-16}" SEQ_LEN="${SEQ_LEN:-128}" LR="${LR:-3e-3}" VOCAB="${VOCAB:-2048}"
THREADS="${THREADS:-0}"
EUROLLM="$BUILD/eurollm"
[ -x "$EUROLLM" ] || { echo "no eurollm CLI in $BUILD (build it first)" >&2; exit 1; }
mkdir -p "$OUT"

# 1. Text: fortunes per language, balanced, de-duplicated, 2% held out.
python3 "$ROOT/scripts/default_model/prepare_fortunes.py" "$OUT/data" --per-language 400000

# 2. Tokenizer: SentencePiece BPE with byte fallback (every byte of every language is encodable).
mkdir -p "$OUT/tokenizer"
if [ ! -f "$OUT/tokenizer/tok.model" ]; then
  spm_train --input="$OUT/data/corpus.txt" --model_prefix="$OUT/tokenizer/tok" --vocab_size="$VOCAB" \
    --model_type=bpe --character_coverage=0.9995 --byte_fallback=true --split_digits=true \
    --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --max_sentence_length=4096 \
    --num_threads=2 --random_seed=1 > "$OUT/tokenizer/spm_train.log" 2>&1
fi

# 3. A freshly initialised model (hidden 128, 4 layers, 4 heads / 2 kv heads, FFN 384, tied head).
[ -f "$OUT/init/model.safetensors" ] || python3 "$ROOT/scripts/default_model/init_model.py" "$OUT/init" \
  "$OUT/tokenizer/tok.model" hidden=128 layers=4 heads=4 kv_heads=2 ffn=384 ctx=256 seed=1

# 4. Full training from scratch (resumes if interrupted), held-out loss at the end.
"$EUROLLM" train "$OUT/init" --full --data "$OUT/data/train.jsonl" --eval-data "$OUT/data/val.jsonl" \
  --out "$OUT/run" --steps "$STEPS" --batch "$BATCH" --seq-len "$SEQ_LEN" --lr "$LR" --warmup 20 \
  --min-lr-ratio 0.1 --weight-decay 0.1 --save-every 50 --eval-every 100 --seed 1 --threads "$THREADS" \
  --resume --log-format json | tee "$OUT/train_log.jsonl"
rm -rf "$OUT/model" && cp -r "$OUT/run/model" "$OUT/model"

# 5. Samples: one prompt per language, greedy-free sampling with a fixed seed.
for prompt in "The meaning of life is" "Das Leben ist" "La vita è" "La vida es" "Życie jest" \
              "Život je" "Is fearr" "Животът е"; do
  printf '%s => ' "$prompt"
  "$EUROLLM" generate "$OUT/model" -p "$prompt" -n 40 --temp 0.7 --seed 1 | tr '\n' ' '
  echo
done | tee "$OUT/samples.txt"
du -sh "$OUT/model"
