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
STAMP=$(date +%Y-%m-%d)/$(date +%H-%M-%S)
LR_FINDER=outputs/$STAMP-lr_finder   # known paths: the grid takes its LR axis from M4, compare and M6 use the grid
GRID=multirun/$STAMP-grid
STEP=0
step() { STEP=$((STEP + 1)); echo "== make report: step $STEP/11: $1 ($(date +%H:%M:%S))" >&2; }
for preset in data baselines sanity overfit; do
  step "experiment=$preset"
  "$PYTHON" "$REPO/train.py" experiment=$preset "$@"
done
step "experiment=lr_finder (M4)"
"$PYTHON" "$REPO/train.py" experiment=lr_finder hydra.run.dir="$LR_FINDER" "$@"
step "experiment=grid around M4's LR (M5)"
"$PYTHON" "$REPO/train.py" experiment=grid grid.lr_from="$LR_FINDER" hydra.sweep.dir="$GRID" "$@"
step "experiment=full from the grid's best job (M6)"
"$PYTHON" "$REPO/train.py" experiment=full full.from_sweep="$GRID" "$@"
step "experiment=compare (M7)"
"$PYTHON" "$REPO/train.py" experiment=compare compare.runs="$GRID" "$@"
step "experiment=optuna (M8)"
"$PYTHON" "$REPO/train.py" experiment=optuna "$@"
step "evaluate.py on the test split (M9)"
"$PYTHON" "$REPO/evaluate.py" ckpt=artifacts/best.ckpt
step "report.py"
"$PYTHON" "$REPO/report.py"
