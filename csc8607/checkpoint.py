"""Self-describing checkpoints, written atomically and read back with `weights_only=True`."""
from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import tempfile
import shutil
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import torch

from csc8607.config import is_number
from csc8607.errors import UserError, disk_full

FORMAT = "csc8607-checkpoint-v1"


@contextlib.contextmanager
def atomic(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path` with one rename, so a
    reader never sees a half-written file and an interrupted write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the filesystem allows (every writer here replaces files by rename, so the two never
    change together), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def duplicate(source: Path, target: Path) -> None:
    """Atomically make `target` the same bytes as `source` (linked or copied)."""
    with atomic(target) as tmp:
        tmp.unlink()
        link_or_copy(source, tmp)


def keep_previous(path: Path) -> Path | None:
    """Hard-link (or copy) an existing `path` to `<stem>.<mtime>.<suffix>` beside it; returns the kept copy."""
    if not path.exists():
        return None
    stamp = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S-%f")
    kept = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    n = 1
    while kept.exists():
        kept, n = path.with_name(f"{path.stem}.{stamp}-{n}{path.suffix}"), n + 1
    link_or_copy(path, kept)
    return kept


def install(path: Path, write: Any) -> Path | None:
    """Write a new `path` via `write(tmp_path)` and an atomic rename, keeping the previous file first."""
    with atomic(path) as tmp:
        write(tmp)
        kept = keep_previous(path)
    return kept


def save(path: Path | str, state: dict[str, Any]) -> Path:
    """Write `state` (plus a format tag) atomically. A full disk leaves the previous file as it was and says so
    (torch.save writes through a Python file here so that the OS error, not a zip-writer error, comes back)."""
    try:
        with atomic(path) as tmp, open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
    except (OSError, RuntimeError) as err:
        cause: BaseException | None = err  # torch's zip writer may raise its own error while closing after it
        while cause is not None and not disk_full(cause):
            cause = cause.__context__
        if cause is None:
            raise
        run_dir = Path(path).parent.parent if Path(path).parent.name == "checkpoints" else "<the run dir>"
        raise UserError(f"{os.strerror(cause.errno).lower()} while writing {path}: the previous checkpoints are "
                        f"kept; free some space and continue with `python train.py resume={run_dir}`") from err
    return Path(path)


def load(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save`; any other file gets a one-line UserError saying why."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir() and (path / "multirun.yaml").is_file():  # a sweep: the student meant one of its jobs
            raise UserError(f"checkpoint {path} is a sweep dir: name one of its jobs (its summary.csv ranks them), "
                            f"e.g. ckpt={path}/<job>")
        raise UserError(f"checkpoint {path} does not exist" if not path.exists() else f"checkpoint {path} is not a file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is cut short or foreign
        raise UserError(f"checkpoint {path} is corrupt, truncated or not a PyTorch file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if "unsupported global" in line.lower()]
        if not lines:
            raise UserError(f"checkpoint {path} is corrupt or truncated (unreadable pickle)") from err
        reason = lines[0].split(" was not")[0].split(": ", 1)[-1]
        raise UserError(f"checkpoint {path} was refused by the safe loader (weights_only=True): it carries "
                        f"pickled code or objects ({reason[:160]})") from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise UserError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a csc8607 checkpoint (no '{FORMAT}' tag): was it written by train.py?")
    return state


def check_fields(state: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint (hand-made or damaged) that lacks what evaluate.py and resume= read from it."""
    best, epoch = state.get("best_value"), state.get("epoch")
    problems = [f"no `{key}`" for key in ("config", "model") if not isinstance(state.get(key), dict)]
    if best is not None and not (isinstance(best, (int, float)) and not isinstance(best, bool)):
        problems.append(f"best_value={best!r} is not a number")
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        problems.append(f"epoch={epoch!r} is not a whole number")
    for key, kind in (("monitor", str), ("meta", dict), ("run_name", str), ("history", list)):
        if state.get(key) is not None and not isinstance(state[key], kind):
            problems.append(f"`{key}` is not a {kind.__name__}")
    if problems:
        raise UserError(f"checkpoint {path} is incomplete or damaged ({'; '.join(problems)}): use a checkpoint "
                        "written by train.py")


PROGRESS_FIELDS = {"batches_done", "loss_sum", "seen", "score_counts"}  # engine.EpochProgress, as asdict() writes it


def is_count(value: Any) -> bool:
    """A whole number >= 0 (True is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def resume_problems(state: dict[str, Any]) -> list[str]:
    """What in a last.ckpt resume= cannot continue from: the counters, the history, the optimizer, RNG and
    partial-epoch records it restores (types and ranges a run writes; an edited file gets a reason, not a crash)."""
    history, epoch, best_epoch = state.get("history"), state.get("epoch"), state.get("best_epoch")
    if not isinstance(history, list):
        return ["no `history` list"]
    problems = [f"{key}={state.get(key)!r} is not a whole number >= 0" for key in ("epoch", "step", "best_epoch")
                if not is_count(state.get(key))]
    for i, row in enumerate(history):
        if not (isinstance(row, dict) and all(is_number(v) for v in row.values()) and row.get("epoch") == i + 1):
            problems.append(f"history[{i}] is not a row of numbers for epoch {i + 1}")
            break
    if is_count(epoch) and epoch != len(history):
        problems.append(f"epoch={epoch} but its history holds {len(history)} epochs")
    if is_count(best_epoch) and not (best_epoch <= len(history) and (best_epoch >= 1) == bool(history)):
        problems.append(f"best_epoch={best_epoch} is not an epoch of its history (1..{len(history)})")
    optimizer, rng, progress = state.get("optimizer"), state.get("rng"), state.get("progress")
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list) and optimizer["param_groups"]):
        problems.append("`optimizer` is not an optimizer's state (state and param_groups)")
    if not (isinstance(rng, dict) and isinstance(rng.get("python"), (list, tuple)) and len(rng["python"]) == 3
            and isinstance(rng.get("numpy"), (list, tuple)) and len(rng["numpy"]) == 5
            and isinstance(rng["numpy"][1], torch.Tensor) and isinstance(rng.get("torch"), torch.Tensor)):
        problems.append("`rng` is not the python/numpy/torch random states")
    if progress is not None and not (isinstance(progress, dict) and set(progress) == PROGRESS_FIELDS
                                     and is_count(progress["batches_done"]) and is_count(progress["seen"])
                                     and is_number(progress["loss_sum"]) and isinstance(progress["score_counts"], dict)):
        problems.append(f"`progress` is not a partial epoch ({', '.join(sorted(PROGRESS_FIELDS))} >= 0)")
    return problems + best_problems(state, history)


def best_problems(state: dict[str, Any], history: list) -> list[str]:
    """resume= goes on choosing best.ckpt against the best value a last.ckpt recorded: it must be a finite number,
    the monitored value its history holds at `best_epoch` (else an edited file, or a run that diverged)."""
    best, epoch, monitor = state.get("best_value"), state.get("best_epoch"), state.get("monitor")
    if best is None and not history:
        return []  # stopped before its first epoch ended: no best yet
    if not (is_number(best) and math.isfinite(best)):
        return [f"best_value={best!r} is not a finite number"]
    row = history[epoch - 1] if is_count(epoch) and 1 <= epoch <= len(history) else None
    if monitor is not None and not (isinstance(row, dict) and row.get(monitor) == best):
        return [f"best_value={best!r} is not the {monitor} of its history at best_epoch={epoch}"]
    return []


def check_resumable(state: dict[str, Any], path: Path) -> None:
    """Refuse, before anything runs, a last.ckpt that resume= cannot continue exactly (see resume_problems)."""
    problems = resume_problems(state)
    if problems:
        raise UserError(f"checkpoint {path} cannot be resumed, it is damaged, edited or diverged "
                        f"({'; '.join(problems)}): train a new run")


@contextlib.contextmanager
def restoring(path: Path | str, field: str) -> Iterator[None]:
    """Turn a failure while loading a checkpoint's `field` into the model/optimizer/... into one line."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise UserError(f"checkpoint {path}: its `{field}` cannot be restored ({type(err).__name__}: {reason}): "
                        "damaged, edited, or written by another optimizer/scheduler; train a new run") from err


def write_text(path: Path | str, text: str) -> Path:
    """Write a text file atomically, like checkpoints."""
    with atomic(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: Path | str, data: Any) -> Path:
    """Write JSON atomically, like checkpoints."""
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(value: Any) -> Any:
    """Every string of a record on one line (control characters -> a space): a name read back from a file (a
    dataset's, a class's, a run's) cannot open a heading or break a table where the report or a log shows it."""
    if isinstance(value, str):
        return CONTROL.sub(" ", value)
    if isinstance(value, dict):
        return {one_line(k): one_line(v) for k, v in value.items()}
    if isinstance(value, list):
        return [one_line(v) for v in value]
    return value


def read_json(path: Path | str) -> Any:
    return one_line(json.loads(Path(path).read_text()))
