"""On-disk cache of decoded splits: uint8 .npy arrays, memory-mapped on load, keyed by a hash of the config.

A cache entry is a directory `<cache>/<name>-<hash>/` holding `key.json` (the full key, compared on load),
`info.json` (class names, split protocol, train statistics, ...) and `<split>_images.npy` / `_labels.npy`.
It is written to a temporary directory and renamed into place, so a half-written entry is never seen.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the layout or the decoding changes: every older entry is rebuilt


def plain_value(value: Any) -> Any:
    """Config values as JSON-able python; a string naming an existing path becomes its absolute path."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, str) and value and os.path.exists(value):
        return str(Path(value).resolve())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def source_identity(source: Any) -> dict[str, Any] | None:
    """What names a source: its function and arguments (a `_partial_: true` config); None if not cacheable."""
    if isinstance(source, functools.partial):
        func = source.func
        return {"function": f"{func.__module__}.{func.__qualname__}", "args": plain_value(list(source.args)),
                "kwargs": plain_value(source.keywords)}
    return None


def make_key(identity: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "source": identity, "settings": plain_value(settings)}


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def entry_dir(cache_dir: str | Path, name: str, key: dict[str, Any]) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(cache_dir).expanduser() / f"{safe}-{digest(key)}"


def load(path: Path, key: dict[str, Any]) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict] | None:
    """The entry's splits (memory-mapped) and info, or None when it is missing or does not match `key`."""
    try:
        if json.loads((path / "key.json").read_text()) != key:
            log.warning("cache %s does not match this config: rebuilding it", path)
            return None
        info = json.loads((path / "info.json").read_text())
        splits = {}
        for name, size in info["split_sizes"].items():
            # mode "c": copy-on-write, so torch gets a writable view and nothing is ever written back
            images = np.load(path / f"{name}_images.npy", mmap_mode="c")
            labels = np.load(path / f"{name}_labels.npy")
            if len(images) != size or len(labels) != size or list(images.shape[1:]) != info["input_shape"]:
                log.warning("cache %s has arrays of the wrong shape: rebuilding it", path)
                return None
            splits[name] = (torch.from_numpy(images), torch.from_numpy(labels))
        return splits, info
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as err:
        log.warning("cache %s is unreadable (%s): rebuilding it", path, err)
        return None


def save(path: Path, key: dict[str, Any], splits: dict[str, tuple[torch.Tensor, torch.Tensor]], info: dict) -> None:
    """Write an entry atomically (temporary directory, then rename); a stale entry at `path` is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, (images, labels) in splits.items():
            np.save(tmp / f"{name}_images.npy", images.numpy())
            np.save(tmp / f"{name}_labels.npy", labels.numpy())
        (tmp / "info.json").write_text(json.dumps(info))
        (tmp / "key.json").write_text(json.dumps(key, sort_keys=True, indent=1))
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:  # another job of a sweep wrote the same entry first: theirs is as good
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def building(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` while an entry is built: the jobs of a sweep that start together
    on a cold cache wait for the first one's entry instead of each decoding the whole dataset."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, each job builds (and the first rename wins)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
