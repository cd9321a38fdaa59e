"""M8 — Optuna search (TPE) over the grid's space: each trial is a grid job (same failure recording and
summary table); the study lives in persistent storage (hydra.sweeper.storage) so re-running resumes it."""
from csc8607.sections.grid import run

__all__ = ["run"]
