"""One small module per section of the course report, each running the shared engine.

`section` in the config names the job `train.py` runs; each module listed here has `run(cfg, run_dir)`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csc8607.config import check_added_keys, check_sweep_direction, check_trainer_keys, command_line_overrides, validate
from csc8607.errors import UserError

SECTIONS = {
    "train": "csc8607.sections.train",  # the training job: fit, checkpoints, test, metrics.json
    "data": "csc8607.sections.data",  # D1–D11: splits, class distribution, examples, batch shape
    "baselines": "csc8607.sections.baselines",  # M0: majority class and uniform random
    "sanity": "csc8607.sections.sanity",  # M1–M2: layer table, initial loss, gradients
    "overfit": "csc8607.sections.overfit",  # M3: memorize a small sample
    "lr_finder": "csc8607.sections.lr_finder",  # M4: LR range test
    "grid": "csc8607.sections.grid",  # M5: one grid job (failures recorded), summary by csc8607.sweep
    "full": "csc8607.sections.full",  # M6: full training, exported to artifacts/
    "compare": "csc8607.sections.compare",  # M7: curve overlays by LR, WD and the model's A and B
    "optuna": "csc8607.sections.optuna",  # M8: one Optuna trial (same job as grid)
}
SWEEP_JOBS = {"grid", "optuna"}  # their jobs record any failure (bad values included) instead of ending the sweep


def run_section(cfg: DictConfig, run_dir: Path | str) -> Any:
    """Run the section the config names (default `train`); its return value goes to Hydra's sweeper."""
    check_trainer_keys(cfg.trainer)  # this command's keys; a resumed run's saved config is not re-judged
    check_added_keys(cfg, command_line_overrides())
    check_sweep_direction(cfg)
    if cfg.get("resume"):
        from csc8607.sections.train import resume_point

        # the run continues in its own job dir with its saved config: its own section (full, grid, ...) runs
        cfg, run_dir, _ = resume_point(cfg)
    name = cfg.get("section") or "train"
    if name not in SECTIONS:
        raise UserError(f"section={name} is not one of {', '.join(sorted(SECTIONS))}")
    if name not in SWEEP_JOBS:
        validate(cfg)  # bad values fail here, before the heavy imports (sweep jobs validate inside their guard)
    from csc8607.rundir import claim

    with claim(cfg, run_dir, name):  # refused if the dir holds another run or another process writes into it
        return importlib.import_module(SECTIONS[name]).run(cfg, run_dir)
