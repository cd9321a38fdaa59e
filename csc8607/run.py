"""Build a run from its config: data, model (from the data's meta), engine, loaders, optimizer."""
from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from csc8607 import runtime
from csc8607.config import MACHINE_KEYS, build, check_sweep_direction, flatten, monitor_mode, task_monitor, validate
from csc8607.data import Dataset
from csc8607.engine import Engine
from csc8607.errors import UserError
from csc8607.models import build_model

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """Everything a section needs, built once from the config."""

    cfg: DictConfig
    data: Dataset
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


def setup(cfg: DictConfig, train_steps: int | None = None) -> Setup:
    """Validate the config, prepare the process, and build data, model and engine (model from data.meta).
    `train_steps`: the optimizer steps the section will take (trainer.compile=auto weighs them against the
    compile time); None = trainer.max_epochs epochs of the train split."""
    validate(cfg)
    trainer = cfg.trainer
    if trainer.get("tune_malloc", True):
        runtime.tune_malloc()
    if trainer.get("threads"):
        torch.set_num_threads(int(trainer.threads))
    runtime.seed_everything(cfg.seed)
    device = runtime.pick_device(str(trainer.device))
    precision, why = runtime.pick_precision(trainer.precision, device)
    log.info("precision %s on %s (%s)", "fp32" if precision == "32" else precision, device, why)
    channels_last = trainer.channels_last
    if channels_last == "auto":
        channels_last = device.type == "cuda" or precision == "bf16"
    data = build(cfg.data, "data")
    meta = data.meta
    resolve_monitor(cfg, meta["task"])
    runtime.seed_everything(cfg.seed)  # model init does not depend on how much randomness the data used
    model = build_model(cfg.model, meta, trainer.batch_size, device)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    steps = train_steps if train_steps is not None else \
        trainer.max_epochs * math.ceil(meta["split_sizes"].get("train", 0) / trainer.batch_size)
    compiled, compile_why = runtime.pick_compile(trainer.get("compile", False), device, steps)
    if compiled:
        model.compile()  # in place: state_dict keys stay the module's own, so checkpoints never see the compiler
    log.info("compile %s (%s)", "on" if compiled else "off", compile_why)
    progress = trainer.progress_bar
    progress = sys.stderr.isatty() if progress == "auto" else bool(progress)
    engine = Engine(meta["task"], meta["num_classes"], device, precision, trainer.get("grad_clip"), progress,
                    meta.get("loss"))
    engine.precision_why = why
    engine.compiled, engine.compile_why = compiled, compile_why
    return Setup(cfg, data, model, engine, bool(channels_last))


REGRESSION_MONITORS = ("val/rmse", "val/mae", "val/loss", "val/r2")


def resolve_monitor(cfg: DictConfig, task: str) -> None:
    """Write the monitor the task implies into cfg.trainer (`auto`: val/rmse for regression, val/f1 for
    multi-label, else val/accuracy) with its mode, so that every later reader sees the metric itself; an explicit
    monitor stays, but a regression run has no accuracy: its monitor must be one of its metrics."""
    trainer = cfg.trainer
    if task == "regression" and trainer.monitor not in ("auto", *REGRESSION_MONITORS):
        raise UserError(f"data.task=regression is scored by {', '.join(REGRESSION_MONITORS)}, not "
                        f"trainer.monitor={trainer.monitor}: set trainer.monitor=val/rmse or leave it auto")
    mode = monitor_mode(trainer, task)
    trainer.monitor, trainer.monitor_mode = task_monitor(str(trainer.monitor), task), mode
    check_sweep_direction(cfg, task)  # again with the task known (a .ts file may declare a regression target)


def run_name(cfg: DictConfig) -> str:
    """Explicit run name: `run_name` if set, else the job's overrides (`optim.lr=0.001,optim.weight_decay=0.0`)."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().job.override_dirname or "default"
    except ValueError:  # not inside a Hydra app
        return "default"


def config_differences(saved: dict[str, Any], cfg: DictConfig, prefixes: tuple[str, ...] = ("model.", "data.")) -> list[str]:
    """`key: saved -> now` for the model/data keys whose values differ between a checkpoint's config and `cfg`."""
    before, now = flatten(saved), flatten(cfg)
    keys = sorted(k for k in set(before) | set(now) if k.startswith(prefixes) and before.get(k) != now.get(k)
                  and not k.startswith(tuple(MACHINE_KEYS)))
    return [f"{k}: {before.get(k)} -> {now.get(k)}" for k in keys]


MOVABLE = ("data.root", "data.source.root", "data.cache_dir", "data.decode_workers")  # where the data is, not what


def check_same_split(saved: dict[str, Any], cfg: DictConfig, who: str) -> None:
    """Refuse data keys that change the splits or the preprocessing of a recorded run (evaluate.py, resume=):
    `data.test_fraction=0.6` would put training images in its test split."""
    changed = [line for line in config_differences(saved, cfg, ("data.",)) if not line.startswith(MOVABLE)]
    if changed:
        raise UserError(f"{who} the split the run recorded, with its preprocessing: {'; '.join(changed)} would "
                        f"change them (only {', '.join(MOVABLE)} may differ)")


def check_matches(state: dict[str, Any], model: torch.nn.Module, path: Path, cfg: DictConfig | None = None) -> None:
    """Refuse a checkpoint whose weights do not fit the model built from the (possibly overridden) config,
    naming the config keys that differ from the checkpoint's own."""
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
        changed = config_differences(state.get("config", {}), cfg) if cfg is not None else []
        if changed:
            parts.insert(0, "config differs (" + ", ".join(changed[:4]) + ")")
        raise UserError(f"checkpoint {path} does not match the model built from its config: {'; '.join(parts)}")


def check_same_vocabulary(saved: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    """Text: the rebuilt data must turn words into the ids the checkpoint was trained on."""
    theirs, ours = (saved.get("input") or {}).get("vocab_sha256"), (meta.get("input") or {}).get("vocab_sha256")
    if theirs and theirs != ours:
        raise UserError(f"the vocabulary built now ({meta.get('vocab_size')} tokens) is not the one checkpoint {path} "
                        f"was trained with ({saved.get('vocab_size')} tokens): keep its data.root, data.tokenizer, "
                        "data.vocab_size and data.min_freq")
