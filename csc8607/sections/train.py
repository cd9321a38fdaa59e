"""M6 — full training: fit with best/last checkpoints, the best checkpoint on test, metrics.json, HParams."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from csc8607 import checkpoint, runtime
from csc8607.config import flatten, plain
from csc8607.engine import fit
from csc8607.models import count_parameters
from csc8607.run import run_name, setup
from csc8607.tb import open_writer, write_hparams

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    """Train, keep best/last checkpoints, evaluate best on test, write metrics.json; return the monitored value."""
    run_dir = Path(run_dir)
    wall_start = time.perf_counter()
    s = setup(cfg)
    meta, trainer = s.data.meta, cfg.trainer
    params = count_parameters(s.model)
    log.info("data %s %s  model %s (%s parameters)  device %s precision %s", meta["name"], meta["split_sizes"],
             type(s.model).__name__, f"{params:,}", s.engine.device, s.engine.precision)
    optimizer = s.optimizer()
    scheduler = s.scheduler(optimizer)
    extra = {"config": plain(cfg), "meta": meta, "versions": runtime.library_versions(), "run_name": run_name(cfg)}
    writer = open_writer(run_dir)
    try:
        result = fit(s.engine, s.model, optimizer, s.loader("train", train=True), s.loader("val"),
                     max_epochs=trainer.max_epochs, run_dir=run_dir, monitor=trainer.monitor,
                     mode=trainer.monitor_mode, writer=writer, scheduler=scheduler,
                     log_every=trainer.log_every_n_steps, checkpoint_extra=extra)
        final = result["history"][-1]
        best_state = checkpoint.load(run_dir / "checkpoints" / "best.ckpt")
        best_row = result["history"][best_state["epoch"] - 1]
        test = None
        if trainer.test_after_fit:
            s.model.load_state_dict(best_state["model"])
            test = s.engine.evaluate(s.model, s.loader("test"))
            for key, value in test.items():
                writer.add_scalar(f"test/{key}", value, best_state["epoch"])
        summary = {
            "run_name": extra["run_name"],
            "monitor": trainer.monitor,
            "best_value": result["best_value"],
            "best_epoch": result["best_epoch"],
            "best": {k: v for k, v in best_row.items() if "/" in k},
            "final": {k: v for k, v in final.items() if "/" in k},
            "test": test,
            "params": params,
            "epochs": trainer.max_epochs,
            "train_time_s": result["train_time_s"],
            "wall_time_s": time.perf_counter() - wall_start,
            "device": str(s.engine.device),
            "precision": s.engine.precision,
            "meta": meta,
            "versions": extra["versions"],
            "history": result["history"],
        }
        checkpoint.write_json(run_dir / "metrics.json", summary)
        hp_metrics = {f"hparam/best_{k.replace('/', '_')}": v for k, v in summary["best"].items()}
        hp_metrics.update({f"hparam/final_{k.replace('/', '_')}": v for k, v in summary["final"].items()})
        write_hparams(writer, {**flatten(cfg), "run_name": extra["run_name"]}, hp_metrics)
    finally:
        writer.close()
    log.info("best %s %.4f at epoch %d; test %s; %s", trainer.monitor, result["best_value"], result["best_epoch"],
             {k: round(v, 4) for k, v in (test or {}).items()}, run_dir)
    return float(result["best_value"])
