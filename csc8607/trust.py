"""Which code a saved config may run: only the callables that the user's own config files declare.

A checkpoint, a run dir's `.hydra/config.yaml` or a sweep's `multirun.yaml` can come from anyone (students swap
checkpoints; a teacher evaluates a hundred of them). `weights_only=True` keeps their tensors inert, but their
config names `_target_`s that `instantiate` would import and call. So before a saved config is built, every
`_target_` in it must be one that this project's `conf/` (or a config dir the user adds with `hydra.searchpath`)
declares, or one typed on this command line; anything else is refused with one line.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from csc8607.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _targets(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every `_target_` in a plain container, `_args_` lists and nested nodes included."""
    if isinstance(node, dict):
        for name, value in node.items():
            dotted = f"{key}.{name}" if key else str(name)
            if name == "_target_":
                yield dotted, value
            else:
                yield from _targets(value, dotted)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _targets(value, f"{key}[{i}]")


@functools.lru_cache(maxsize=8)
def declared_targets(config_dirs: tuple[str, ...]) -> frozenset[str]:
    """Every `_target_` written in the YAML files of `config_dirs` (the project's conf/ and the user's own)."""
    found: set[str] = set()
    for directory in config_dirs:
        for path in sorted(Path(directory).rglob("*.yaml")):
            try:
                node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            except (OmegaConfBaseException, OSError, ValueError):
                continue  # not a config this app composes (or unreadable): it declares nothing
            found.update(value for _, value in _targets(node) if isinstance(value, str))
    return frozenset(found)


def user_config_dirs() -> tuple[str, ...]:
    """conf/ plus the `file://` dirs of this command's `hydra.searchpath` (empty outside a Hydra app)."""
    dirs = [str(CONF_DIR)]
    try:
        from hydra.core.hydra_config import HydraConfig

        searchpath = HydraConfig.get().get("searchpath") or []
    except ValueError:
        searchpath = []
    dirs += [entry[len("file://"):] for entry in map(str, searchpath) if entry.startswith("file://")]
    return tuple(dirs)


def typed_targets(overrides: list[str]) -> set[str]:
    """`_target_` values the user typed on this command line (`model._target_=mypkg.Net`)."""
    out = set()
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.split(".")[-1] == "_target_" and value:
            out.add(value.strip("'\""))
    return out


def check_targets(cfg: DictConfig | dict, source: str, overrides: list[str] | None = None) -> None:
    """Refuse `cfg` (read from `source`) if any `_target_` in it is not declared by the user's config files."""
    try:
        node = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    except OmegaConfBaseException as err:
        raise UserError(f"{source}: its config cannot be resolved ({str(err).splitlines()[0]})") from None
    allowed = declared_targets(user_config_dirs()) | typed_targets(overrides or [])
    for key, value in _targets(node):
        if not isinstance(value, str) or value not in allowed:
            raise UserError(
                f"{source}: {key}={value!r} is not a callable declared in conf/ (or a hydra.searchpath config dir), so "
                "it is not built: a checkpoint or run dir never chooses the code that runs. If you trust it, declare "
                f"it in a config file of yours or give {key.split('[')[0]}=... on the command line")
