"""Which run feeds which report section: the latest finished run of each preset under outputs/ and multirun/
(or the one named in `runs.<preset>`), and the exact command that produced it (from its .hydra/overrides.yaml).
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from csc8607.errors import UserError
from csc8607.sections import REPORTED

# read from the sections' declarations (csc8607/sections/__init__.py), in the report's order
RESULTS = {s.name: s.result for s in REPORTED}  # preset -> the file a finished run holds (a sweep: its sweep dir's)
SWEEPS = {s.name for s in REPORTED if s.sweep}  # a run of these is the sweep dir (parent of the job dirs)
MODEL_PRESETS = {s.name for s in REPORTED if s.model}
HINTS = {s.name: s.command for s in REPORTED}  # the command producing each preset when there is no run of it
# what tells two experiments apart in a run's config: its data, and for MODEL_PRESETS, its model
DATA_KEYS = ("data._target_", "data.source._target_", "data.name", "data.root", "data.task")
MODEL_KEYS = ("model._target_", "model.name")


def preset_of(job_dir: Path) -> str:
    """A job's preset: `evaluate` for evaluate.py runs, else the `section` key of its recorded config."""
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    return "evaluate" if "ckpt" in cfg else str(cfg.get("section") or "train")


def run_of(job_dir: Path, preset: str) -> Path | None:
    """The run directory a finished job gives `preset` (its sweep dir for grid/optuna), or None if unfinished."""
    run = job_dir.parent if preset in SWEEPS else job_dir
    return run if (run / RESULTS[preset]).exists() else None


def trained_config(run: Path, preset: str) -> Path:
    """The config file of what a run trained (an evaluation: of its checkpoint's run; a sweep: of its first job;
    a comparison: of the first run it compared, since `experiment=compare` is typed without the data's keys)."""
    if preset == "compare":
        return Path(json.loads((run / RESULTS[preset]).read_text())["runs"][0]["dir"]) / ".hydra" / "config.yaml"
    if preset == "evaluate":
        ckpt = Path(json.loads((run / RESULTS[preset]).read_text())["checkpoint"])
        exported = ckpt.parent / "config.yaml"  # artifacts/config.yaml beside artifacts/best.ckpt
        return exported if exported.is_file() else ckpt.parents[1] / ".hydra" / "config.yaml"
    if preset in SWEEPS:
        return sorted(run.glob("*/.hydra/config.yaml"))[0]
    return run / "config.yaml" if (run / "config.yaml").is_file() else run / ".hydra" / "config.yaml"


def experiment_of(run: Path, preset: str) -> tuple[str, ...] | None:
    """What a run was about: its data (source, name, root, task) and, for the sections that train, its model
    (`_target_`, name), as configured; None: cannot tell."""
    try:
        return experiment_in(OmegaConf.load(trained_config(run, preset)), preset)
    except Exception:  # noqa: BLE001 - an unreadable or unresolvable record: that run is not judged
        return None


def experiment_in(cfg: Any, preset: str) -> tuple[str, ...]:
    """The values of DATA_KEYS (and MODEL_KEYS for a preset that trains) in a config, as strings."""
    keys = DATA_KEYS + (MODEL_KEYS if preset in MODEL_PRESETS else ())
    return tuple(str(OmegaConf.select(cfg, key, default=None)) for key in keys)


def same_experiment(ours: tuple[str, ...] | None, reference: tuple[str, ...] | None) -> bool:
    """Equal on what both describe (a data run is not judged by the model); unknown is never a difference."""
    if ours is None or reference is None:
        return True
    common = min(len(ours), len(reference))
    return ours[:common] == reference[:common]


def describe(experiment: tuple[str, ...]) -> str:
    """`load_digits (régression), modèle ConvNet`: the names a student recognises."""
    fields = dict(zip(DATA_KEYS + MODEL_KEYS, experiment))
    source = fields["data.source._target_"] if fields["data.source._target_"] != "None" else fields["data._target_"]
    text = fields["data.name"] if fields["data.name"] != "None" else source.rsplit(".", 1)[-1]
    text += f" ({fields['data.root']})" if fields["data.root"] != "None" else ""
    text += f", tâche {fields['data.task']}" if fields["data.task"] != "None" else ""
    if "model._target_" in fields:
        model = fields["model.name"] if fields["model.name"] != "None" else fields["model._target_"].rsplit(".", 1)[-1]
        text += f", modèle {model}"
    return text


def one_dataset(found: dict[str, list[tuple[float, Path]]]) -> tuple[dict[str, Path], list[str]]:
    """The latest run of each preset on the report's experiment (the data and model of the latest M6 run, else
    of the latest run), and a note for each preset whose latest run was about something else (left out: a report
    describes one experiment)."""
    latest = {preset: max(runs)[1] for preset, runs in found.items()}
    if not latest:
        return {}, []
    anchor = "full" if "full" in latest else max((max(runs)[0], preset) for preset, runs in found.items())[1]
    reference = experiment_of(latest[anchor], anchor)
    chosen, notes = {}, []
    for preset, runs in found.items():
        same = [(stamp, run) for stamp, run in runs if same_experiment(experiment_of(run, preset), reference)]
        if same:
            chosen[preset] = max(same)[1]
        if not same or chosen[preset] != latest[preset]:
            other = experiment_of(latest[preset], preset)
            mine = reference[:len(other)] if other and reference else reference
            notes.append(f"{preset} : le dernier run (`{latest[preset]}`) porte sur une autre expérience "
                         f"({describe(other) if other else '?'}) que ce rapport "
                         f"({describe(mine) if mine else '?'}) ; il n'est pas repris")
    return chosen, notes


def find_runs(root: Path, chosen: dict[str, Any] | None = None) -> tuple[dict[str, Path], list[str]]:
    """preset -> run dir: `chosen[preset]` when set (relative to `root`), else the latest one found on the
    report's dataset; and notes on the latest runs left out because they used other data."""
    found: dict[str, list[tuple[float, Path]]] = {}
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
            if run is not None and (stamp, run) not in found.setdefault(preset, []):
                found[preset].append((stamp, run))
    runs, notes = one_dataset({preset: runs for preset, runs in found.items() if runs})
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
    return runs, notes


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
