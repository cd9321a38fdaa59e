"""M5 — mini grid search: every job of `python train.py experiment=grid` is a short training run (own dir,
checkpoint, TensorBoard run with HParams, explicit run name lr=…_wd=…_<A>=…_<B>=…). A job that fails is
recorded in failed.json instead of ending the sweep; `csc8607.sweep.SweepSummary` writes the summary table."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from csc8607.sections import train
from csc8607.sweep import guarded


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    """Train like `section=train`; a failure becomes failed.json and the worst value for the sweeper."""
    return guarded(train.run, cfg, run_dir)
