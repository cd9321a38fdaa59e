"""Sweeps (grid and Optuna): a job that fails is recorded, not fatal; a Hydra callback writes the summary table.

Each job is a training run in its own dir (metrics.json, checkpoints/best.ckpt, tb/ with HParams). A job that
raises writes `failed.json` (error and wall time) and returns the worst value, so the sweep goes on. When the
sweep ends, `SweepSummary.on_multirun_end` reads every job dir and writes summary.csv and summary.md in the
sweep dir, sorted by the val metric, failed jobs last.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from csc8607 import axes, checkpoint
from csc8607.config import is_number, monitor_mode, task_monitor
from csc8607.engine import Interrupted
from csc8607.errors import ExistingRun, UserError
from csc8607.errors import fail as stop_sweep  # one-line error, exit 2

log = logging.getLogger(__name__)
COLUMNS = ["run", "status", *axes.NAMES, "params", "val_metric", "val_loss", "best_epoch", "wall_time_s", "checkpoint", "error"]


class TrialFailed(Exception):
    """An Optuna trial's job failed (recorded in failed.json): Hydra's Optuna sweeper tells the study FAIL."""


def guarded(job: Callable[[DictConfig, Path], float], cfg: DictConfig, run_dir: Path | str,
            tell_failure: bool = False) -> float:
    """Run `job`; on any exception write failed.json and return the worst value for the sweeper (a grid), or
    raise TrialFailed (`tell_failure`: an Optuna trial, stored as FAIL, not as a value, while the study goes on)."""
    start = time.perf_counter()
    try:
        return job(cfg, Path(run_dir))
    except (Interrupted, ExistingRun):
        raise  # SIGINT/SIGTERM, or a sweep re-run over finished jobs without skip_finished: stop the sweep
    except Exception as err:  # noqa: BLE001 - any failure of one job must not end the sweep
        checkpoint.write_json(Path(run_dir) / "failed.json", {
            "error": f"{type(err).__name__}: {err}".splitlines()[0], "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - start})
        log.error("job failed (recorded in %s): %s: %s", Path(run_dir) / "failed.json", type(err).__name__, err)
        if tell_failure:
            raise TrialFailed(f"{type(err).__name__}: {err}".splitlines()[0]) from None
        try:
            maximize = monitor_mode(cfg.trainer) == "max"
        except UserError:  # the failure was the monitor itself: the sweeper's own direction is unknown here
            maximize = True
        return -math.inf if maximize else math.inf


def job_row(job_dir: Path) -> dict[str, Any]:
    """One summary row from a job dir: its config values, metrics.json (or failed.json). A record that cannot be
    read (damaged, hand-edited) makes a failed row saying so, never a crash of the summary or of full.from_sweep."""
    try:
        return read_row(job_dir)
    except Exception as err:  # noqa: BLE001 - any damage to one job's files is that job's row, not the sweep's end
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        return {"run": job_dir.name, "status": "failed", "params": None, "val_metric": None, "val_loss": None,
                "best_epoch": None, "wall_time_s": None, "checkpoint": "", "monitor": None, "mode": None,
                "error": f"unreadable record in {job_dir.name} ({reason[:200]})"}


def read_row(job_dir: Path) -> dict[str, Any]:
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    row: dict[str, Any] = axes.values(cfg)
    metrics_path, failed_path = job_dir / "metrics.json", job_dir / "failed.json"
    if metrics_path.exists():
        m = checkpoint.read_json(metrics_path)
        best = m["history"][m["best_epoch"] - 1]
        value = m["best_value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"best_value={value!r} is not a finite number")
        if not is_number(best["val/loss"]):  # it breaks ties between equal values: best_first sorts it
            raise ValueError(f"val/loss={best['val/loss']!r} of the best epoch is not a number")
        row.update(run=m["run_name"], status="ok", params=m.get("params"), val_metric=value, val_loss=best["val/loss"],
                   best_epoch=m["best_epoch"], wall_time_s=round(m["wall_time_s"], 2),
                   checkpoint=str((job_dir / "checkpoints" / "best.ckpt").resolve()), error="")
    else:
        failed = checkpoint.read_json(failed_path) if failed_path.exists() else {}
        row.update(run=cfg.get("run_name") or job_dir.name, status="failed", params=None, val_metric=None, val_loss=None,
                   best_epoch=None, wall_time_s=round(failed.get("wall_time_s", 0.0), 2), checkpoint="",
                   error=failed.get("error", "no metrics.json nor failed.json (killed?)"))
    task = (m.get("meta") or {}).get("task") if metrics_path.exists() else cfg.data.get("task")  # monitor: auto
    row["monitor"], row["mode"] = task_monitor(str(cfg.trainer.monitor), task), monitor_mode(cfg.trainer, task)
    return row


def first_config(sweep_dir: Path) -> DictConfig | None:
    """The first job config of the sweep that can be read (it names the model's axes in the table's header)."""
    for path in sorted(sweep_dir.glob("*/.hydra/config.yaml")):
        try:
            return OmegaConf.load(path)
        except Exception:  # noqa: BLE001 - a damaged record is that job's failed row
            continue
    return None


def best_first(ok: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished rows, best first: by the monitored value, and among equal values (accuracy on a small val split
    ties often) by the lower val loss, the better-calibrated model."""
    sign = -1.0 if ok and ok[0]["mode"] == "max" else 1.0
    return sorted(ok, key=lambda r: (sign * r["val_metric"], r["val_loss"] if r["val_loss"] is not None else math.inf))


def summarize(sweep_dir: Path | str) -> list[dict[str, Any]]:
    """Write summary.csv and summary.md in `sweep_dir`; returns the sorted rows (best first, failed last)."""
    sweep_dir = Path(sweep_dir)
    rows = [job_row(p.parent) for p in sorted(sweep_dir.glob("*/.hydra")) if p.is_dir()]
    ok = best_first([r for r in rows if r["status"] == "ok"])
    maximize = bool(ok) and ok[0]["mode"] == "max"
    rows = ok + [r for r in rows if r["status"] != "ok"]
    monitor = ok[0]["monitor"] if ok else "val metric"
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    checkpoint.write_text(sweep_dir / "summary.csv", table.getvalue())
    from csc8607.report import table

    first = first_config(sweep_dir)
    header = [monitor if c == "val_metric" else axes.label(first, c) if first is not None else c for c in COLUMNS]
    cells = [[f"{r[c]:.4f}" if isinstance(r.get(c), float) and c in ("val_metric", "val_loss") else
              ("" if r.get(c) is None else str(r[c])) for c in COLUMNS] for r in rows]
    order = "max" if maximize else "min"
    checkpoint.write_text(sweep_dir / "summary.md",
        f"# Sweep {sweep_dir}\n\nSorted by {monitor} ({order}; ties by the lower val_loss), failed jobs last.\n\n" + table(header, cells) + "\n")
    return rows


class SweepModelAxes(Callback):
    """Grid and Optuna presets: also sweep the model's A and B (`model.axes`) over the values of `model.space`,
    unless the command line or the preset sets that key. Runs before the sweeper reads its params."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import open_dict, read_write

        space = OmegaConf.to_container(config.model.get("space") or {}, resolve=True)
        typed = {o.split("=", 1)[0].lstrip("+~") for o in config.hydra.overrides.task}
        with read_write(config.hydra), open_dict(config.hydra):
            params = config.hydra.sweeper.params
            if params is None:
                config.hydra.sweeper.params = params = {}
            for key in (config.model.get("axes") or {}).values():
                dotted = f"model.{key}"
                if dotted not in typed and dotted not in params and space.get(key):  # type: ignore[union-attr]
                    values = ", ".join("null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                                       for v in space[key])  # type: ignore[index]
                    params[dotted] = f"choice({values})"


class SweepLRFromFinder(Callback):
    """M4 feeds M5: with `grid.lr_from=<an experiment=lr_finder run dir>`, the grid's LR axis is that run's
    suggested LR times `grid.lr_factors`, unless the command line sets optim.lr."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import open_dict, read_write

        source = OmegaConf.select(config, "grid.lr_from", default=None)
        typed = {o.split("=", 1)[0].lstrip("+~") for o in config.hydra.overrides.task}
        swept = [o for o in config.hydra.overrides.task if o.startswith("grid.lr_from=") and "," in o
                 and not o.split("=", 1)[1].startswith(("'", '"'))]
        if swept:  # Hydra read the path as a sweep of several dirs
            stop_sweep(f"{swept[0]}: a comma makes this a sweep of several dirs; quote the path: "
                       f"grid.lr_from='{swept[0].split('=', 1)[1]}'")
        if not source or "optim.lr" in typed:
            return
        factors = OmegaConf.select(config, "grid.lr_factors", default=None)
        if not isinstance(factors, (list, ListConfig)):
            stop_sweep(f"grid.lr_factors={factors} must be a list of numbers > 0, e.g. [0.3, 1.0, 3.0]")
        values = lr_axis(Path(str(source)).expanduser(), list(factors))
        refuse_other_experiment(Path(str(source)).expanduser(), config)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweeper.params["optim.lr"] = ",".join(values)
        log.info("grid LR axis from M4 (%s): %s", source, ", ".join(values))


def lr_axis(run_dir: Path, factors: list[float]) -> list[str]:
    """The suggested LR of an lr_finder run times each factor, as sweep values (3 significant digits)."""
    path = run_dir / "lr_finder.json"
    if not path.is_file():
        stop_sweep(f"grid.lr_from={run_dir}: no lr_finder.json there (give the run dir of "
                   "`python train.py experiment=lr_finder`, e.g. outputs/DATE/TIME)")
    try:
        suggested = checkpoint.read_json(path)["suggested_lr"]
        if isinstance(suggested, bool):
            raise TypeError(f"suggested_lr={suggested} is not a number")
        suggested = float(suggested)
    except (ValueError, KeyError, TypeError, OverflowError) as err:
        stop_sweep(f"grid.lr_from={run_dir}: lr_finder.json unreadable ({type(err).__name__}: {err})")
    if not math.isfinite(suggested) or suggested <= 0:
        stop_sweep(f"grid.lr_from={run_dir}: the LR finder suggested no usable LR ({suggested}); set optim.lr=...")
    if not factors or any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < math.inf
                          for f in factors):
        stop_sweep(f"grid.lr_factors={factors} must list finite numbers > 0")
    values = [repr(float(f"{suggested * f:.3g}")) for f in factors]  # always a float to Hydra: "1.0", not "1"
    if len(set(values)) < len(values) or "inf" in values:
        stop_sweep(f"grid.lr_factors={factors}: LRs {', '.join(values)} repeat a value or overflow (one job each)")
    return values


def refuse_other_experiment(run_dir: Path, config: DictConfig) -> None:
    """An LR suggested on other data or for another model says nothing of this grid's: exit 2 naming what differs
    (the data and model keys that tell two experiments apart in the report, csc8607.report.runs)."""
    from csc8607.report.runs import DATA_KEYS, MODEL_KEYS, experiment_in, experiment_of

    recorded = experiment_of(run_dir, "lr_finder")
    try:
        now = experiment_in(config, "grid")
    except Exception:  # noqa: BLE001 - a key that resolves only inside a job: not judged here
        return
    if recorded is None:
        return
    changed = [f"{key}: {before} -> {after}" for key, before, after in zip(DATA_KEYS + MODEL_KEYS, recorded, now)
               if before != after]
    if changed:
        what = " and ".join(sorted({"other data" if c.startswith("data") else "another model" for c in changed}))
        stop_sweep(f"grid.lr_from={run_dir}: that LR finder ran on {what} ({'; '.join(changed)}): run "
                   "experiment=lr_finder on this experiment, or set optim.lr=...")


def empty_axes(config: DictConfig) -> list[str]:
    """Sweep axes with no value or an empty item (`optim.weight_decay=`, `optim.lr=1e-3,,3e-3`)."""
    axes = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    axes += [o for o in config.hydra.overrides.task if "=" in o and not o.startswith("hydra.")]
    bad = []
    for axis in axes:
        key, value = axis.split("=", 1)
        simple_list = "(" not in value and "[" not in value
        if not value.strip() or (simple_list and "," in value and any(not v.strip() for v in value.split(","))):
            bad.append(key.lstrip("+~"))
    return bad


class SweepSummary(Callback):
    """`hydra.callbacks.summary._target_: csc8607.sweep.SweepSummary`: checks the axes and records the command line
    (multirun.yaml) when a sweep starts, writes the summary table when it ends, and exits non-zero when every job
    failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        bad = empty_axes(config)
        if bad:
            stop_sweep(f"sweep axis {', '.join(bad)} has an empty value: give it one or more comma-separated values")
        # the sweep's own command line, as Hydra's grid sweeper records it (the Optuna sweeper records none; its
        # jobs' overrides hold the sampled values instead of the command's search space)
        checkpoint.write_text(Path(config.hydra.sweep.dir) / "multirun.yaml", OmegaConf.to_yaml(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        rows = summarize(config.hydra.sweep.dir)
        failed = sum(r["status"] != "ok" for r in rows)
        summary = Path(config.hydra.sweep.dir) / "summary.md"
        log.info("sweep summary: %d jobs (%d failed) -> %s", len(rows), failed, summary)
        if rows and failed == len(rows):
            stop_sweep(f"all {failed} jobs of the sweep failed (first error: {rows[0]['error']}); see {summary}")
