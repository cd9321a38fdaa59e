"""M8 — Optuna search (TPE) over the grid's space: each trial is a grid job (same failure recording and
summary table), except that a failed trial is told to the study as FAIL; the study lives in persistent storage
(hydra.sweeper.storage) so re-running resumes it."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from csc8607.sections import train
from csc8607.sweep import guarded


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    """Train like `section=train`; a failure becomes failed.json and a FAIL trial (the study goes on)."""
    return guarded(train.run, cfg, run_dir, tell_failure=True)
