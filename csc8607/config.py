"""Config checks and helpers: validation with one-line errors, instantiate with readable errors, flattening."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from csc8607.errors import UserError


def check(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


MAIN_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "config.yaml"


def check_trainer_keys(trainer: DictConfig) -> None:
    """A trainer key that conf/config.yaml does not define (added with `+`, e.g. a typo) would be ignored."""
    if not MAIN_CONFIG.exists():
        return
    known = set(OmegaConf.load(MAIN_CONFIG).trainer)
    for key in sorted(set(trainer) - known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean trainer.{close[0]}?)" if close else f"; known: {', '.join(sorted(known))}"
        raise UserError(f"trainer.{key} is not a trainer setting and would be ignored{hint}")


def validate(cfg: DictConfig) -> None:
    """Reject values that would crash later or silently train nothing, naming the key to change."""
    trainer = cfg.trainer
    for key in ("max_epochs", "batch_size", "eval_batch_size"):
        value = trainer.get(key)
        check(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
              f"trainer.{key}={value} must be a whole number >= 1")
    check(trainer.monitor_mode in ("max", "min"), f"trainer.monitor_mode={trainer.monitor_mode} must be max or min")
    lr = cfg.optim.get("lr")
    check(isinstance(lr, (int, float)) and not isinstance(lr, bool), f"optim.lr={lr!r} must be a number")
    check(lr > 0, f"optim.lr={lr} must be > 0")
    weight_decay = cfg.optim.get("weight_decay", 0.0)
    check(isinstance(weight_decay, (int, float)) and weight_decay >= 0, f"optim.weight_decay={weight_decay} must be >= 0")
    if trainer.get("grad_clip") is not None:
        check(trainer.grad_clip > 0, f"trainer.grad_clip={trainer.grad_clip} must be > 0 or null")
    check(isinstance(cfg.seed, int), f"seed={cfg.seed!r} must be a whole number")


def build(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` whose failures become a one-line UserError naming `what` and the cause."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(err).splitlines()[0]
        raise UserError(f"cannot build {what} from its config: {detail.splitlines()[0]}") from err


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"optim.lr": 0.003, ...} with values TensorBoard's HParams can show."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=True)
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix[:-1]
    if isinstance(node, bool) or isinstance(node, (int, float, str)):
        out[key] = node
    else:
        out[key] = str(node)
    return out


def plain(cfg: DictConfig) -> dict[str, Any]:
    """Resolved config as plain python containers (what checkpoints and JSON files store)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


MACHINE_KEYS = ("paths", "data.cache_dir")  # where this machine keeps things: never taken from a saved config


def with_overrides(saved: Any, composed: DictConfig, overrides: list[str], skip: tuple[str, ...],
                   source: str) -> DictConfig:
    """A run's saved config (read from `source`) with the keys given on this command line taken from `composed`.

    Used by evaluate.py and `resume=`: the checkpoint's config rules, except what the user just typed and where this
    machine keeps its files. Its `_target_`s are checked first (csc8607.trust): a saved config runs no code of its own.
    """
    if not isinstance(saved, dict) or not saved:
        raise UserError(f"{source} holds no config (was it written by train.py?)")
    cfg = OmegaConf.create(saved)
    typed = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    machine = [k for k in MACHINE_KEYS if OmegaConf.select(cfg, k) is not None]  # a cache left off stays off
    for key in [*machine, *typed]:
        if key in skip or key.startswith("hydra"):
            continue
        OmegaConf.update(cfg, key, OmegaConf.select(composed, key), merge=False, force_add=True)
    from csc8607.trust import check_targets

    check_targets(cfg, source, overrides)
    return cfg


def command_line_overrides() -> list[str]:
    """This job's command-line overrides (empty outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []
