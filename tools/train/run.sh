#!/usr/bin/env bash
# Rebuilds the shipped demo pair from nothing but Debian's fortune packages (see README.md here).
#   PYTHON=/path/to/venv/bin/python STEPS=N bash tools/train/run.sh
# By default the shipped run's schedule is replayed step for step (models/data/training-log.jsonl: its
# step count and each step's learning-rate progress). STEPS=N trains N steps on a plain cosine schedule;
# REPLAY=0 STEPS= bounds the run by wall time (BUDGET_SECONDS, default 4150) as the shipped run was.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-python3}"
work="${WORK:-/tmp/blockserve-train}"
mkdir -p "$work"
cd "$here"
"$py" prepare_corpus.py "$work"
"$py" train_tokenizer.py "$work" "$work/tokenizer.json" --vocab 4096
steps="${STEPS:-}"
rm -rf "$work/run"
if [ -z "$steps" ] && [ "${REPLAY:-1}" = 1 ]; then
  cp "$repo/models/data/training-log.jsonl" "$work/replay.jsonl"
  "$py" train.py "$work" "$work/tokenizer.json" "$work/run" --replay-schedule "$work/replay.jsonl" --threads 1
elif [ -n "$steps" ]; then
  "$py" train.py "$work" "$work/tokenizer.json" "$work/run" --steps "$steps" --threads 1
else
  "$py" train.py "$work" "$work/tokenizer.json" "$work/run" --steps 100000 --threads 1 --budget-seconds "${BUDGET_SECONDS:-4150}"
fi
"$py" export.py "$work" "$work/tokenizer.json" "$work/run" "$repo/models"
cp "$work/val.jsonl" "$repo/models/data/fortunes-val.jsonl"
cp "$work/corpus.json" "$repo/models/data/fortunes-corpus.json"
cp "$work/run/log.jsonl" "$repo/models/data/training-log.jsonl"
cp "$work/run/run.json" "$repo/models/data/training-run.json"
(cd "$repo" && node bin/blockserve.js bench quality --json > "$work/bench.json")
"$py" model_card.py "$work/run" "$repo/models" --bench "$work/bench.json"
