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
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from csc8607 import checkpoint
from csc8607.engine import Interrupted
from csc8607.errors import ExistingRun

log = logging.getLogger(__name__)
# summary column -> config key (lr, wd and the model hyperparameters A and B of the report)
PARAMS = {"lr": "optim.lr", "wd": "optim.weight_decay", "width": "model.width", "depth": "model.depth"}
COLUMNS = ["run", "status", *PARAMS, "val_metric", "val_loss", "best_epoch", "wall_time_s", "checkpoint", "error"]


def guarded(job: Callable[[DictConfig, Path], float], cfg: DictConfig, run_dir: Path | str) -> float:
    """Run `job`; on any exception write failed.json and return the worst value for the sweeper."""
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
        return -math.inf if cfg.trainer.monitor_mode == "max" else math.inf


def job_row(job_dir: Path) -> dict[str, Any]:
    """One summary row from a job dir: its config values, metrics.json (or failed.json)."""
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    row: dict[str, Any] = {key: OmegaConf.select(cfg, path) for key, path in PARAMS.items()}
    metrics_path, failed_path = job_dir / "metrics.json", job_dir / "failed.json"
    if metrics_path.exists():
        m = checkpoint.read_json(metrics_path)
        best = m["history"][m["best_epoch"] - 1]
        row.update(run=m["run_name"], status="ok", val_metric=m["best_value"], val_loss=best["val/loss"],
                   best_epoch=m["best_epoch"], wall_time_s=round(m["wall_time_s"], 2),
                   checkpoint=str((job_dir / "checkpoints" / "best.ckpt").resolve()), error="")
    else:
        failed = checkpoint.read_json(failed_path) if failed_path.exists() else {}
        row.update(run=cfg.get("run_name") or job_dir.name, status="failed", val_metric=None, val_loss=None,
                   best_epoch=None, wall_time_s=round(failed.get("wall_time_s", 0.0), 2), checkpoint="",
                   error=failed.get("error", "no metrics.json nor failed.json (killed?)"))
    row["monitor"], row["mode"] = cfg.trainer.monitor, cfg.trainer.monitor_mode
    return row


def summarize(sweep_dir: Path | str) -> list[dict[str, Any]]:
    """Write summary.csv and summary.md in `sweep_dir`; returns the sorted rows (best first, failed last)."""
    sweep_dir = Path(sweep_dir)
    rows = [job_row(p.parent) for p in sorted(sweep_dir.glob("*/.hydra"))]
    ok = [r for r in rows if r["status"] == "ok"]
    maximize = bool(rows) and rows[0]["mode"] == "max"
    ok.sort(key=lambda r: r["val_metric"], reverse=maximize)
    rows = ok + [r for r in rows if r["status"] != "ok"]
    monitor = rows[0]["monitor"] if rows else "val metric"
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    checkpoint.write_text(sweep_dir / "summary.csv", table.getvalue())
    from csc8607.report import table

    header = [c if c != "val_metric" else monitor for c in COLUMNS]
    cells = [[f"{r[c]:.4f}" if isinstance(r[c], float) and c in ("val_metric", "val_loss") else
              ("" if r[c] is None else str(r[c])) for c in COLUMNS] for r in rows]
    order = "max" if maximize else "min"
    checkpoint.write_text(sweep_dir / "summary.md",
        f"# Sweep {sweep_dir}\n\nSorted by {monitor} ({order}), failed jobs last.\n\n" + table(header, cells) + "\n")
    return rows


def empty_axes(config: DictConfig) -> list[str]:
    """Sweep axes with no value or an empty item (`model.width=`, `optim.lr=1e-3,,3e-3`)."""
    axes = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    axes += [o for o in config.hydra.overrides.task if "=" in o and not o.startswith("hydra.")]
    bad = []
    for axis in axes:
        key, value = axis.split("=", 1)
        simple_list = "(" not in value and "[" not in value
        if not value.strip() or (simple_list and "," in value and any(not v.strip() for v in value.split(","))):
            bad.append(key.lstrip("+~"))
    return bad


def stop_sweep(message: str) -> None:
    """End the whole sweep with a one-line error and exit status 2 (SystemExit passes through Hydra)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


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


def _worker_alive(key: str, started: float, stale_after_hours: float) -> bool:
    """Is the sweep process registered as `csc8607_worker:<host>:<pid>` still running (as far as we can tell)?"""
    import os
    import socket

    _, host, pid = key.rsplit(":", 2)
    if host != socket.gethostname():
        return time.time() - started < stale_after_hours * 3600
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FailStaleTrials(Callback):
    """Optuna: trials left RUNNING by a killed sweep are marked FAIL when the study is resumed.

    Each sweep process registers itself (host, pid) in the study while it runs. When a sweep starts and no
    registered worker is alive (on this host: its pid is gone; elsewhere: registered more than
    `stale_after_hours` ago), the study's RUNNING trials can only be leftovers, and become FAIL. While another
    worker is alive they are left alone, since they may be its trials.
    """

    def __init__(self, stale_after_hours: float = 24.0) -> None:
        self.stale_after_hours = stale_after_hours
        self.study: Any = None
        self.key = ""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import os
        import socket

        import optuna

        sweeper = config.hydra.sweeper
        direction = sweeper.direction if isinstance(sweeper.direction, str) else None
        directions = None if direction else list(sweeper.direction)
        self.study = optuna.create_study(study_name=sweeper.study_name, storage=sweeper.storage,
                                         direction=direction, directions=directions, load_if_exists=True)
        workers = {k: v for k, v in self.study.system_attrs.items() if k.startswith("csc8607_worker:") and v}
        if not any(_worker_alive(k, v, self.stale_after_hours) for k, v in workers.items()):
            stale = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            for trial in stale:
                self.study._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
            if stale:
                log.warning("marked %d trial(s) left RUNNING by a killed sweep as FAIL: %s", len(stale),
                            [t.number for t in stale])
        self.key = f"csc8607_worker:{socket.gethostname()}:{os.getpid()}"
        self.study.set_system_attr(self.key, time.time())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.study is not None:
            self.study.set_system_attr(self.key, None)
