"""What `train.py` and `evaluate.py` do: build data, model and engine from the config, run, record."""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from csc8607 import checkpoint, runtime
from csc8607.config import build, flatten, plain, validate
from csc8607.data import ImageData
from csc8607.engine import Engine, fit
from csc8607.errors import UserError
from csc8607.models import count_parameters
from csc8607.tb import open_writer, write_hparams

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """Everything a section needs, built once from the config."""

    cfg: DictConfig
    data: ImageData
    model: torch.nn.Module
    engine: Engine
    channels_last: bool

    def loader(self, split: str, train: bool = False, batch_size: int | None = None) -> Any:
        size = batch_size or (self.cfg.trainer.batch_size if train else self.cfg.trainer.eval_batch_size)
        return self.data.loader(split, size, device=self.engine.device, train=train, seed=self.cfg.seed,
                                channels_last=self.channels_last)

    def optimizer(self) -> torch.optim.Optimizer:
        return build(self.cfg.optim, "optim", _partial_=False, params=self.model.parameters())

    def scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        node = self.cfg.get("scheduler")
        return build(node, "scheduler", _partial_=False, optimizer=optimizer) if node and node.get("_target_") else None


def setup(cfg: DictConfig, data: ImageData | None = None) -> Setup:
    """Validate the config, prepare the process, and build data, model and engine (model from data.meta)."""
    validate(cfg)
    trainer = cfg.trainer
    if trainer.get("tune_malloc", True):
        runtime.tune_malloc()
    if trainer.get("threads"):
        torch.set_num_threads(int(trainer.threads))
    runtime.seed_everything(cfg.seed)
    device = runtime.pick_device(str(trainer.device))
    precision = runtime.pick_precision(trainer.precision, device)
    channels_last = trainer.channels_last
    if channels_last == "auto":
        channels_last = device.type == "cuda" or precision == "bf16"
    if data is None:
        data = build(cfg.data, "data")
    meta = data.meta
    runtime.seed_everything(cfg.seed)  # model init does not depend on how much randomness the data used
    model = build(cfg.model, "model", input_shape=meta["input_shape"], num_outputs=meta["num_outputs"])
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    progress = trainer.progress_bar
    progress = sys.stderr.isatty() if progress == "auto" else bool(progress)
    engine = Engine(meta["task"], meta["num_classes"], device, precision, trainer.get("grad_clip"), progress)
    return Setup(cfg, data, model, engine, bool(channels_last))


def run_name(cfg: DictConfig) -> str:
    """Explicit run name: `run_name` if set, else the job's overrides (`optim.lr=0.001,model.width=16`)."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().job.override_dirname or "default"
    except ValueError:  # not inside a Hydra app
        return "default"


def train(cfg: DictConfig, run_dir: Path | str) -> float:
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


def check_matches(state: dict[str, Any], model: torch.nn.Module, path: Path) -> None:
    """Refuse a checkpoint whose weights do not fit the model built from the (possibly overridden) config."""
    own = model.state_dict()
    theirs = state["model"]
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    shapes = [k for k in own if k in theirs and tuple(own[k].shape) != tuple(theirs[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]}: checkpoint "
                         f"{tuple(theirs[shapes[0]].shape)} vs model {tuple(own[shapes[0]].shape)})")
        if missing:
            parts.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        raise UserError(f"checkpoint {path} does not match the model built from its config: {'; '.join(parts)}")
