"""M7 — curve comparisons: train loss, val loss and the val metric against the epoch for chosen runs, one PNG
per hyperparameter (LR, weight decay, the model's A and B as its config declares them), each run coloured and
labelled by that value.

`compare.runs` is a sweep dir (every job below it with a metrics.json) or a list of run dirs, all of one dataset
and model (else refused). An axis on which every run has the same value has nothing to compare: no figure, it is
listed under `single_value` in compare.json.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from csc8607 import axes, checkpoint, figures
from csc8607.config import is_number, monitor_mode
from csc8607.errors import UserError
from csc8607.report.runs import DATA_KEYS, MODEL_KEYS
from csc8607.tb import open_writer

log = logging.getLogger(__name__)
# what makes two runs different experiments (curves of two datasets or models are not a comparison of one axis)
EXPERIMENT = DATA_KEYS + MODEL_KEYS


def find_runs(runs: Any, root: Path) -> list[Path]:
    """Run dirs (holding metrics.json and .hydra/config.yaml) from a sweep dir or a list of dirs."""
    if runs is None:
        raise UserError("compare.runs is not set: give a sweep dir (compare.runs=multirun/DATE/TIME) or a list "
                        "(compare.runs='[outputs/A,outputs/B]')")
    items = list(runs) if isinstance(runs, (list, tuple, ListConfig)) else [runs]
    found: list[Path] = []
    for item in items:
        path = Path(str(item)).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_dir():
            raise UserError(f"compare.runs: {path} is not a directory")
        found += sorted(p.parent for p in path.rglob("metrics.json") if (p.parent / ".hydra" / "config.yaml").exists())
    if not found:
        raise UserError(f"compare.runs: no run with metrics.json under {', '.join(map(str, items))}")
    return found


def one_experiment(runs: list[dict[str, Any]]) -> None:
    """Refuse runs of different datasets or models, naming the first key that differs and the runs on each side."""
    for key in EXPERIMENT:
        groups: dict[str, list[str]] = {}
        for r in runs:
            value = r["experiment"][key]
            groups.setdefault("null" if value is None else str(value), []).append(Path(r["dir"]).name)
        if len(groups) > 1:
            sides = " vs ".join(f"{key}={value} ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})"
                                for value, names in groups.items())
            raise UserError(f"compare.runs: the runs are of different experiments ({sides}); compare runs of one "
                            "dataset and model")


def by_key(asked: str, runs: list[dict[str, Any]]) -> str:
    """A `compare.by` item as lr, wd, A or B; the model key an axis names (`width`) is accepted for its letter."""
    if asked in axes.NAMES:
        return asked
    letters = {name for r in runs for name, key in r["keys"].items() if key == f"model.{asked}"}
    if len(letters) == 1:
        return letters.pop()
    raise UserError(f"compare.by: {asked} is not one of {', '.join(axes.NAMES)} nor a model axis of the runs")


def read_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """Each compared run's history, monitor, best value, axis values and experiment; a damaged one: one error."""
    runs = []
    for path in find_runs(cfg.compare.runs, Path(cfg.paths.root)):
        try:
            metrics = checkpoint.read_json(path / "metrics.json")
            conf = OmegaConf.load(path / ".hydra" / "config.yaml")
            run = {"dir": str(path), "name": metrics["run_name"], "history": metrics["history"],
                   "monitor": metrics["monitor"],
                   "mode": monitor_mode(conf.trainer, (metrics.get("meta") or {}).get("task")),  # monitor: auto
                   "best_value": float(metrics["best_value"]), **axes.values(conf), "keys": axes.keys(conf),
                   "experiment": {k: OmegaConf.select(conf, k, default=None, throw_on_resolution_failure=False)
                                  for k in EXPERIMENT}}
            rows = [[row["epoch"], row["train/loss"], row["val/loss"], row[run["monitor"]]] for row in run["history"]]
            check_values(run, rows)
        except Exception as err:  # noqa: BLE001 - a damaged run's records: one line naming it
            raise UserError(f"compare.runs: the records of {path} cannot be read ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:160] if str(err) else ''}); leave that run out") from None
        if not rows:
            raise UserError(f"compare.runs: {path} has no epoch in its history; leave that run out")
        runs.append(run)
    return runs


def check_values(run: dict[str, Any], rows: list[list[Any]]) -> None:
    """Names are strings and the plotted curves numbers (a hand-edited metrics.json crashed the sort or the plot)."""
    if not isinstance(run["name"], str) or not isinstance(run["monitor"], str):
        raise TypeError(f"run_name={run['name']!r} and monitor={run['monitor']!r} must be strings")
    for row in rows:
        bad = [value for value in row if not is_number(value)]
        if bad:
            raise TypeError(f"history of epoch {row[0]!r} holds {bad[0]!r}, not a number")


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    runs = read_runs(cfg)
    one_experiment(runs)
    monitor, mode = runs[0]["monitor"], runs[0]["mode"]  # the compared runs' own metric and direction
    if {(r["monitor"], r["mode"]) for r in runs} != {(monitor, mode)}:
        raise UserError(f"compare.runs: the runs monitor different metrics "
                        f"{sorted({(r['monitor'], r['mode']) for r in runs})}; compare runs of one monitor")
    panels = {"train/loss": "train/loss", "val/loss": "val/loss", monitor: monitor}
    result: dict[str, Any] = {"runs": [{k: v for k, v in r.items() if k not in ("history", "experiment")} for r in runs],
                              "comparisons": {}, "single_value": {}}
    writer = open_writer(run_dir)
    for asked in cfg.compare.by:
        key = by_key(str(asked), runs)
        dotted = ", ".join(sorted({r["keys"].get(key, "?") for r in runs}))
        name = dotted.removeprefix("model.") if key in ("A", "B") and "," not in dotted else key
        if len({str(r[key]) for r in runs}) == 1:  # one value: a one-series figure compares nothing
            result["single_value"][name] = runs[0][key]
            log.info("compare by %s: every run has %s=%s, no figure", key, name, runs[0][key])
            continue
        groups: dict[str, dict[str, list]] = {panel: {} for panel in panels}
        numeric = all(isinstance(r[key], (int, float)) for r in runs)
        for r in sorted(runs, key=lambda r: (r[key] if numeric else str(r[key]), r["name"])):
            epochs = [row["epoch"] for row in r["history"]]
            for panel, tag in panels.items():
                groups[panel].setdefault(f"{name}={r[key]}", []).append((epochs, [row[tag] for row in r["history"]]))
        png = figures.grouped_plot(run_dir / f"compare_{name}.png", groups, "époque",
                                   title=f"M7 : comparaison par {key} ({dotted}), {len(runs)} runs")
        figures.to_tensorboard(writer, f"compare/{name}", png)
        by_value: dict[str, list[float]] = {}
        for r in runs:
            by_value.setdefault(str(r[key]), []).append(r["best_value"])
        result["comparisons"][name] = {"png": png.name, "best_by_value": {
            v: max(b) if mode == "max" else min(b) for v, b in by_value.items()}}
    writer.close()
    checkpoint.write_json(run_dir / "compare.json", result)
    log.info("compared %d runs by %s -> %s", len(runs), ", ".join(map(str, cfg.compare.by)),
             ", ".join(c["png"] for c in result["comparisons"].values()) or "no figure")
    return result
