"""On-disk cache of decoded splits: .npy arrays, memory-mapped on load, keyed by a hash of the config.

A cache entry is a directory `<cache>/<name>-<hash>/` holding `key.json` (the full key, compared on load),
`info.json` (class names, split protocol, train statistics, ...) and `<split>_inputs.npy` / `_targets.npy`.
It is written to a temporary directory and renamed into place, so a half-written entry is never seen.
`checksums.json` records the SHA-256 of info.json and, per array, a CRC-32 of its bytes, one of 64 evenly spaced rows, and the file's size
and modification time: every load checks the rows' CRC (a few kB read), and the whole CRC when the file's size
or time changed since the build; a mismatch rebuilds the entry.
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
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)
FORMAT = 3  # bump when the layout or the decoding changes: every older entry is rebuilt
TAG = "CACHEDIR.TAG"  # marks the cache dir (the Cache Directory Tagging convention): folder scans skip it
SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"


def tag(cache_dir: Path) -> None:
    """Mark `cache_dir` as a cache, so that a dataset scan that reaches it (a cache placed under data.root/train)
    does not take it for a class folder; backup tools and `tar --exclude-caches` skip it too."""
    if not (cache_dir / TAG).is_file():
        (cache_dir / TAG).write_text(f"{SIGNATURE}\n# decoded datasets of csc8607 (safe to delete)\n")


def is_cache(folder: Path) -> bool:
    """Does `folder` hold a tagged cache (ours or another program's)?"""
    try:
        return (folder / TAG).read_text(errors="replace").startswith(SIGNATURE)
    except OSError:
        return False


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


def files_stamp(identity: dict[str, Any], skip: Path | None = None) -> str | None:
    """A digest of the names, sizes and modification times of the files the source reads (the existing paths
    among its arguments, walked recursively; `skip`: the cache dir itself, and any tagged cache): it changes when a file is added,
    removed, replaced or edited in place, so an entry built from other files is not served. None: no files."""
    def paths(value: Any) -> list[Path]:
        if isinstance(value, dict):
            return [p for v in value.values() for p in paths(v)]
        if isinstance(value, list):
            return [p for v in value for p in paths(v)]
        return [Path(value)] if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value) else []

    roots = sorted(set(paths([identity.get("args"), identity.get("kwargs")])))
    if not roots:
        return None
    skip_dir = str(skip.resolve()) if skip is not None else None
    lines: list[str] = []

    seen: set[str] = set()  # real paths walked: a link to a folder is followed (the loader follows it), once

    def walk(folder: str) -> None:
        real = os.path.realpath(folder)
        if real in seen or real == skip_dir or is_cache(Path(folder)):  # any cache under data.root: not data
            return
        seen.add(real)
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir():
                    walk(entry.path)
                else:
                    stat = entry.stat()
                    lines.append(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}")

    for root in roots:
        if root.is_dir():
            walk(str(root))
        else:
            stat = root.stat()
            lines.append(f"{root}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def make_key(identity: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "source": identity, "settings": plain_value(settings)}


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def entry_dir(cache_dir: str | Path, name: str, key: dict[str, Any]) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(cache_dir).expanduser() / f"{safe}-{digest(key)}"


def sample_rows(array: np.ndarray) -> np.ndarray:
    """Up to 64 evenly spaced rows of an array (the cheap part of its check)."""
    return array[np.unique(np.linspace(0, len(array) - 1, min(len(array), 64)).astype(np.int64))]


def crc(array: np.ndarray) -> int:
    """CRC-32 of an array's bytes, read by 64 MB chunks (memory-mapped arrays are not loaded whole)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    value = 0
    for start in range(0, len(flat), 1 << 26):
        value = zlib.crc32(flat[start : start + (1 << 26)], value)
    return value


def fingerprint(file: Path, array: np.ndarray) -> dict[str, int]:
    stat = file.stat()
    return {"crc32": crc(array), "rows_crc32": crc(sample_rows(array)), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def intact(file: Path, array: np.ndarray, recorded: dict[str, int]) -> bool:
    """The array still holds what was written at build time: its sampled rows always, all of it when the
    file was rewritten since (another size or modification time)."""
    if crc(sample_rows(array)) != recorded["rows_crc32"]:
        return False
    stat = file.stat()
    if (stat.st_size, stat.st_mtime_ns) != (recorded["size"], recorded["mtime_ns"]):
        return crc(array) == recorded["crc32"]
    return True


def load(path: Path, key: dict[str, Any], stamp: str | None = None
         ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict] | None:
    """The entry's splits (memory-mapped) and info, or None when it is missing, does not match `key`, was built
    from other source files (`stamp`, see files_stamp), or an array differs from its build-time checksum."""
    try:
        if json.loads((path / "key.json").read_text()) != key:
            log.warning("cache %s does not match this config: rebuilding it", path)
            return None
        text = (path / "info.json").read_text()
        sums = json.loads((path / "checksums.json").read_text())
        if sums.get("info.json") != text_digest(text):  # class names, statistics: as used, as built
            log.warning("cache %s: info.json differs from what was built: rebuilding it", path)
            return None
        info = json.loads(text)
        if info.get("files_stamp") != stamp:
            log.warning("cache %s was built from files that changed since (added, removed or edited): rebuilding it",
                        path)
            return None
        splits = {}
        for name, size in info["split_sizes"].items():
            arrays = []
            for kind in ("inputs", "targets"):
                file = path / f"{name}_{kind}.npy"
                # mode "c": copy-on-write, so torch gets a writable view and nothing is ever written back
                array = np.load(file, mmap_mode="c")
                if len(array) != size or not intact(file, array, sums[file.name]):
                    log.warning("cache %s: %s differs from what was built (size or checksum): rebuilding it",
                                path, file.name)
                    return None
                arrays.append(torch.from_numpy(array))
            if list(arrays[0].shape[1:]) != info["input_shape"]:
                log.warning("cache %s has arrays of the wrong shape: rebuilding it", path)
                return None
            splits[name] = (arrays[0], arrays[1])
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
        sums = {}
        for name, (inputs, targets) in splits.items():
            for kind, tensor in (("inputs", inputs), ("targets", targets)):
                array = np.ascontiguousarray(tensor.numpy())
                np.save(tmp / f"{name}_{kind}.npy", array)
                sums[f"{name}_{kind}.npy"] = fingerprint(tmp / f"{name}_{kind}.npy", array)
        text = json.dumps(info)
        sums["info.json"] = text_digest(text)
        (tmp / "checksums.json").write_text(json.dumps(sums, indent=1))
        (tmp / "info.json").write_text(text)
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
    tag(path.parent)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
