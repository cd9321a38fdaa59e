"""Which run feeds which report section: the latest finished run of each preset under outputs/ and multirun/
(or the one named in `runs.<preset>`), and the exact command that produced it (from its .hydra/overrides.yaml).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from csc8607.errors import UserError

# preset -> the file a finished run of it holds (grid and optuna: their sweep dir's summary.csv)
RESULTS = {"data": "data.json", "baselines": "baselines.json", "sanity": "sanity.json", "overfit": "overfit.json",
           "lr_finder": "lr_finder.json", "grid": "summary.csv", "full": "full.json", "compare": "compare.json",
           "optuna": "summary.csv", "evaluate": "test_metrics.json"}
SWEEPS = {"grid", "optuna"}  # a run of these is the sweep dir (parent of the job dirs)
# the command producing each preset when there is no run of it
HINTS = {name: f"python train.py experiment={name}" for name in RESULTS}
HINTS.update(overfit="python train.py experiment=overfit overfit.num_samples=32",
             compare="python train.py experiment=compare compare.runs=multirun/DATE/TIME",
             evaluate="python evaluate.py ckpt=artifacts/best.ckpt")


def preset_of(job_dir: Path) -> str:
    """A job's preset: `evaluate` for evaluate.py runs, else the `section` key of its recorded config."""
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    return "evaluate" if "ckpt" in cfg else str(cfg.get("section") or "train")


def run_of(job_dir: Path, preset: str) -> Path | None:
    """The run directory a finished job gives `preset` (its sweep dir for grid/optuna), or None if unfinished."""
    run = job_dir.parent if preset in SWEEPS else job_dir
    return run if (run / RESULTS[preset]).exists() else None


def find_runs(root: Path, chosen: dict[str, Any] | None = None) -> dict[str, Path]:
    """preset -> run dir: `chosen[preset]` when set (relative to `root`), else the latest one found."""
    found: dict[str, tuple[float, Path]] = {}
    for top in ("outputs", "multirun"):
        for hydra_dir in (root / top).rglob(".hydra") if (root / top).is_dir() else []:
            job = hydra_dir.parent
            if not (hydra_dir / "config.yaml").exists():
                continue
            try:
                preset = preset_of(job)
                run = run_of(job, preset) if preset in RESULTS else None
                stamp = (run / RESULTS[preset]).stat().st_mtime if run is not None else 0.0
            except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException) as err:  # damaged or vanishing
                print(f"warning: skipped {job}: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}",
                      file=sys.stderr)
                continue
            if run is not None:
                if preset not in found or stamp > found[preset][0]:
                    found[preset] = (stamp, run)
    runs = {preset: run for preset, (_, run) in found.items()}
    for preset, path in (chosen or {}).items():
        if path is None:
            continue
        if preset not in RESULTS:
            raise UserError(f"runs.{preset}: unknown preset (one of {', '.join(RESULTS)})")
        run = Path(str(path)).expanduser()
        run = run if run.is_absolute() else root / run
        if not (run / RESULTS[preset]).exists():
            raise UserError(f"runs.{preset}={path}: {run} holds no {RESULTS[preset]}")
        runs[preset] = run
    return runs


def command(run: Path, preset: str) -> str:
    """The command line that produced `run`, from its recorded overrides; a sweep's (grid or Optuna) from the
    multirun.yaml of its sweep dir: the search space as typed, never one job's values."""
    if (run / "multirun.yaml").exists():
        recorded = OmegaConf.load(run / "multirun.yaml").hydra.overrides
        task = list(recorded.task)
    elif preset in SWEEPS:  # an Optuna sweep run before multirun.yaml was recorded: a trial's overrides less the
        # sampled values (its search space given on the command line is lost)
        first = sorted(run.glob("*/.hydra/hydra.yaml"))[0]
        hydra = OmegaConf.load(first).hydra
        results = run / "optimization_results.yaml"
        best = OmegaConf.load(results).get("best_params") if results.exists() else None
        sampled = set(best or hydra.sweeper.params or {})
        recorded, task = hydra.overrides, [o for o in hydra.overrides.task if o.split("=", 1)[0] not in sampled]
    else:
        recorded = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.overrides
        task = list(recorded.task)
    flags = ["-m"] if preset in SWEEPS or "hydra.mode=MULTIRUN" in recorded.hydra else []
    extra = [o for o in recorded.hydra if not o.startswith("hydra.mode=")]
    script = "evaluate.py" if preset == "evaluate" else "train.py"
    return " ".join(["python", script, *flags, *map(shlex.quote, task + extra)])
