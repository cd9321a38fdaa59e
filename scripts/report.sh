#!/usr/bin/env bash
# The whole report pipeline (csc8607/report/pipeline.py): every report section in order (the list in
# csc8607/sections/__init__.py), the test evaluation, then `python report.py`. Runs land in the current directory
# (outputs/, multirun/, artifacts/, report/report.md). Arguments go to every train.py command; without any,
# `trainer.threads=1` (fastest on a small shared CPU).
#   bash scripts/report.sh                       # embedded digits, < 3 min on 2 cores
#   bash scripts/report.sh data=tiny_imagenet    # another dataset, all threads
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m csc8607.report.pipeline "$@"
