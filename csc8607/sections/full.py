"""M6 — full training (10–20 epochs, no scheduler): the training job, then its best checkpoint (by the val
metric) exported to `artifacts/best.ckpt` with its config as `artifacts/config.yaml`, and the curves as PNG.

An existing artifacts/best.ckpt (and config.yaml) is kept, renamed with its modification time, before the new
one replaces it; every write goes through a temporary file and a rename, so best.ckpt is never missing.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from omegaconf import DictConfig, OmegaConf

from csc8607 import checkpoint, figures
from csc8607.sections import train
from csc8607.tb import open_writer

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    run_dir = Path(run_dir)
    value = train.run(cfg, run_dir)
    metrics = checkpoint.read_json(run_dir / "metrics.json")
    name = cfg.trainer.monitor.split("/", 1)[-1]
    png = figures.history_curves(run_dir / "curves.png", metrics["history"],
                                 metric=name if name != "loss" else "accuracy",
                                 title=f"M6 full training ({len(metrics['history'])} epochs)")
    writer = open_writer(run_dir)
    figures.to_tensorboard(writer, "full/curves", png)
    writer.close()
    artifacts = Path(cfg.paths.root) / cfg.full.artifacts_dir
    best = run_dir / "checkpoints" / "best.ckpt"
    kept_ckpt = checkpoint.install(artifacts / "best.ckpt", lambda tmp: shutil.copyfile(best, tmp))
    kept_cfg = checkpoint.install(artifacts / "config.yaml",
                                  lambda tmp: tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True)))
    export = {"best_ckpt": str(artifacts / "best.ckpt"), "config": str(artifacts / "config.yaml"),
              "previous_kept": [str(p) for p in (kept_ckpt, kept_cfg) if p], "best_epoch": metrics["best_epoch"],
              "monitor": metrics["monitor"], "best_value": metrics["best_value"], "test": metrics["test"],
              "epochs": metrics["epochs"], "scheduler": (cfg.get("scheduler") or {}).get("_target_"),
              "figures": [png.name]}
    checkpoint.write_json(run_dir / "full.json", export)
    log.info("exported %s (epoch %d, %s %.4f)%s", export["best_ckpt"], export["best_epoch"], export["monitor"],
             export["best_value"], f"; previous kept as {', '.join(export['previous_kept'])}" if kept_ckpt else "")
    return value
