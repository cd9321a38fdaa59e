"""The report's four hyperparameters of a run: LR, weight decay and the model's own A and B.

A model config names its two "model hyperparameters" once: `axes: {A: width, B: depth}` (keys of the model
node). The sweep summary, `experiment=compare`, the run names of the grid and Optuna presets and the report
read them from here; nothing else knows which model keys they are.
"""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

NAMES = ("lr", "wd", "A", "B")  # summary columns and `compare.by` keys


def keys(cfg: Any) -> dict[str, str]:
    """report name -> dotted config key: lr, wd, and the A and B the model declares (absent when it declares none)."""
    axes = OmegaConf.select(cfg, "model.axes", default=None) or {}
    return {"lr": "optim.lr", "wd": "optim.weight_decay", **{name: f"model.{key}" for name, key in axes.items()}}


def values(cfg: Any) -> dict[str, Any]:
    """report name -> value in `cfg` (None for an axis the model does not declare)."""
    found = keys(cfg)
    return {name: OmegaConf.select(cfg, found[name], default=None) if name in found else None for name in NAMES}


def label(cfg: Any, name: str) -> str:
    """How a column is titled: `A (width)`, `lr`."""
    key = keys(cfg).get(name)
    return f"{name} ({key.removeprefix('model.')})" if name in ("A", "B") and key else name


def describe(cfg: Any) -> str:
    """`A (width) = 32`, `B (depth) = 2`: the model's two hyperparameters as its config declares them."""
    found, declared = values(cfg), keys(cfg)
    return ", ".join(f"`{label(cfg, k)} = {found[k]}`" for k in ("A", "B") if k in declared)


def run_name_part(*, _root_: Any) -> str:
    """`${model_axes:}` in a preset's run name: `_width=16_depth=2` for the model's A and B (empty without axes)."""
    axes = OmegaConf.select(_root_, "model.axes", default=None) or {}
    return "".join(f"_{key}={OmegaConf.select(_root_, f'model.{key}')}" for key in axes.values())


if not OmegaConf.has_resolver("model_axes"):
    OmegaConf.register_new_resolver("model_axes", run_name_part)
