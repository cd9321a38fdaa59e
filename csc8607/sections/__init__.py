"""One small module per section of the course report, each running the shared engine.

`section` in the config names the job `train.py` runs; each module listed here has `run(cfg, run_dir)`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csc8607.errors import UserError

SECTIONS = {
    "train": "csc8607.sections.train",  # M6 (and every sweep job): fit, checkpoints, test, metrics.json
}


def run_section(cfg: DictConfig, run_dir: Path | str) -> Any:
    """Run the section the config names (default `train`); its return value goes to Hydra's sweeper."""
    name = cfg.get("section") or "train"
    if name not in SECTIONS:
        raise UserError(f"section={name} is not one of {', '.join(sorted(SECTIONS))}")
    return importlib.import_module(SECTIONS[name]).run(cfg, run_dir)
