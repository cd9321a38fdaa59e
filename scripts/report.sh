#!/usr/bin/env bash
# The whole report pipeline: every section preset in order, the test evaluation, then `python report.py`.
# Runs land in the current directory (outputs/, multirun/, artifacts/, report/report.md). Arguments go to
# every train.py command; without any, `trainer.threads=1` (fastest on a small shared CPU).
#   bash scripts/report.sh                       # embedded digits, < 3 min on 2 cores
#   bash scripts/report.sh data=tiny_imagenet    # another dataset, all threads
set -euo pipefail
PYTHON=${PYTHON:-python}
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- trainer.threads=1
GRID=multirun/$(date +%Y-%m-%d)/$(date +%H-%M-%S)-grid   # a known path, so that compare can point at it
for preset in data baselines sanity overfit lr_finder; do
  "$PYTHON" "$REPO/train.py" experiment=$preset "$@"
done
"$PYTHON" "$REPO/train.py" experiment=grid hydra.sweep.dir="$GRID" "$@"
"$PYTHON" "$REPO/train.py" experiment=full full.from_sweep="$GRID" "$@"   # M6 trains M5's winner
"$PYTHON" "$REPO/train.py" experiment=compare compare.runs="$GRID" "$@"
"$PYTHON" "$REPO/train.py" experiment=optuna "$@"
"$PYTHON" "$REPO/evaluate.py" ckpt=artifacts/best.ckpt
"$PYTHON" "$REPO/report.py"
