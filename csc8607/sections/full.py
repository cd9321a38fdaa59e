"""M6 — full training (10–20 epochs, no scheduler): the training job, then its best checkpoint (by the val
metric) exported to `artifacts/best.ckpt` with its config as `artifacts/config.yaml`, and the curves as PNG.

With `full.from_sweep=<a grid or Optuna sweep dir>` the run trains the sweep's best job's optimizer and model
settings (keys typed on the command line still win) on the same data, and full.json says where they came from.

An existing artifacts/best.ckpt (and config.yaml) is kept, renamed with its modification time, before the new
one replaces it; every write goes through a temporary file and a rename, so best.ckpt is never missing.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from omegaconf import DictConfig, OmegaConf

from csc8607 import checkpoint, figures
from csc8607.config import command_line_overrides, flatten
from csc8607.errors import UserError
from csc8607.metrics import headline
from csc8607.sections import train
from csc8607.tb import open_writer
from csc8607.trust import check_targets

FROM_SWEEP = ("optim", "model")  # what M6 takes from M5's winner: the learning rate, weight decay, model A and B

log = logging.getLogger(__name__)


SWEEPS = ("grid", "optuna", "train")  # experiment=grid, experiment=optuna, or `train.py -m` over train jobs


def check_sweep_dir(sweep: Path, given: str) -> None:
    """Only a sweep's jobs were ranked against each other on one val split: a folder of separate runs (outputs/DATE,
    a runs/ dir) is refused, as is a multirun of other sections (overfit, lr_finder: no trained winner)."""
    try:
        section = OmegaConf.load(sweep / "multirun.yaml").get("section", "train")
    except Exception as err:  # noqa: BLE001 - missing, unreadable or not a mapping: not a sweep dir, said in one line
        reason = "no multirun.yaml" if not (sweep / "multirun.yaml").is_file() else f"unreadable multirun.yaml: {err}"
        raise UserError(f"{given}: {sweep} is not a sweep dir ({reason.splitlines()[0][:160]}); give the dir of a "
                        "grid or Optuna sweep, e.g. multirun/DATE/TIME") from err
    if section not in SWEEPS:
        raise UserError(f"{given}: {sweep} is a multirun of section={section}, not a grid or Optuna sweep; give the "
                        "dir of `python train.py experiment=grid` (or experiment=optuna), e.g. multirun/DATE/TIME")


def sweep_winner(cfg: DictConfig) -> tuple[DictConfig, dict]:
    """`cfg` with the optim and model nodes of the best finished job of `full.from_sweep`, and where they came from."""
    from csc8607.sweep import best_first, job_row

    sweep = Path(str(cfg.full.from_sweep)).expanduser()
    sweep = sweep if sweep.is_absolute() else Path(cfg.paths.root) / sweep
    check_sweep_dir(sweep, f"full.from_sweep={cfg.full.from_sweep}")
    rows = [job_row(p.parent) for p in sorted(sweep.glob("*/.hydra"))]
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise UserError(f"full.from_sweep={cfg.full.from_sweep}: no finished job under {sweep} (give a grid or "
                        "Optuna sweep dir, e.g. multirun/DATE/TIME)")
    best = best_first(ok)[0]
    job = Path(best["checkpoint"]).parents[1]
    recorded = OmegaConf.load(job / ".hydra" / "config.yaml")
    check_targets(recorded, f"{job / '.hydra' / 'config.yaml'}")
    data_now, data_then = flatten(cfg.data), flatten(recorded.data)
    changed = sorted(k for k in set(data_now) | set(data_then)
                     if k != "cache_dir" and data_now.get(k) != data_then.get(k))
    if changed:
        raise UserError(f"full.from_sweep: the sweep's best job {job} ran on other data (data.{changed[0]}: "
                        f"{data_then.get(changed[0])} -> {data_now.get(changed[0])}); train on the sweep's data")
    typed = {o.split("=", 1)[0].lstrip("+~") for o in command_line_overrides()}
    chosen = cfg.copy()
    for group in FROM_SWEEP:
        chosen[group] = OmegaConf.create(OmegaConf.to_container(recorded[group], resolve=True))
        for key in (k for k in typed if k.startswith(group + ".")):
            OmegaConf.update(chosen, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    source = {"sweep": str(sweep), "job": str(job), "monitor": best["monitor"], "value": best["val_metric"],
              "taken": {k: v for k, v in flatten(OmegaConf.masked_copy(chosen, list(FROM_SWEEP))).items()
                        if not k.endswith("_target_")}}
    return chosen, source


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    run_dir = Path(run_dir)
    source = None
    if cfg.full.get("from_sweep") and not cfg.get("resume"):  # a resumed run already holds the winner's values
        cfg, source = sweep_winner(cfg)
        log.info("M6 from the sweep's best job %s (%s %.4f)", source["job"], source["monitor"], source["value"])
    value = train.run(cfg, run_dir)
    metrics = checkpoint.read_json(run_dir / "metrics.json")
    name = metrics["monitor"].split("/", 1)[-1]
    png = figures.history_curves(run_dir / "curves.png", metrics["history"],
                                 metric=name if name != "loss" else headline(metrics["meta"]["task"]),
                                 title=f"M6 : entraînement complet, {len(metrics['history'])} époque"
                                 + ("s" if len(metrics["history"]) > 1 else ""))
    writer = open_writer(run_dir)
    figures.to_tensorboard(writer, "full/curves", png)
    writer.close()
    artifacts = Path(cfg.paths.root) / cfg.full.artifacts_dir
    best = run_dir / "checkpoints" / "best.ckpt"
    kept_ckpt = checkpoint.install(artifacts / "best.ckpt", lambda tmp: shutil.copyfile(best, tmp))
    checkpoint.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))  # what trained (M5's winner)
    kept_cfg = checkpoint.install(artifacts / "config.yaml",
                                  lambda tmp: tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True)))
    export = {"best_ckpt": str(artifacts / "best.ckpt"), "config": str(artifacts / "config.yaml"),
              "previous_kept": [str(p) for p in (kept_ckpt, kept_cfg) if p], "best_epoch": metrics["best_epoch"],
              "monitor": metrics["monitor"], "best_value": metrics["best_value"], "test": metrics["test"],
              "epochs": metrics["epochs"], "scheduler": (cfg.get("scheduler") or {}).get("_target_"),
              "figures": [png.name], "from_sweep": source}
    checkpoint.write_json(run_dir / "full.json", export)
    log.info("exported %s (epoch %d, %s %.4f)%s", export["best_ckpt"], export["best_epoch"], export["monitor"],
             export["best_value"], f"; previous kept as {', '.join(export['previous_kept'])}" if kept_ckpt else "")
    return value
