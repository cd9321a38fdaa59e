"""Where a new run's (or sweep's) dir may lie: not inside another run's or sweep's dir, not above other runs, and
at one place for both the OS and Hydra.

Checked before Hydra writes anything (csc8607.rundir.CheckOutputDir), on the path where the OS puts it: a symlink
into a run's checkpoints/ is inside that run.
"""
from __future__ import annotations

import os
from pathlib import Path


def two_places(directory: Path) -> str | None:
    """Why the OS and Hydra would put `directory` in two places (`link/../x`: the OS takes `..` from the link's
    target, Hydra writes multirun.yaml at the path as typed); None when they agree."""
    real, lexical = os.path.realpath(directory), os.path.realpath(os.path.abspath(directory))
    return f"'..' after a symlink names {real} for the OS but {lexical} for Hydra's records" if real != lexical else None


def nesting(directory: Path, sweep: bool) -> str | None:
    """Why `directory` cannot be a new run's (or sweep's) dir although it holds no run itself: it lies inside
    another run's or sweep's dir (its checkpoints/, tb/, ...), or it holds other runs below it (a date folder,
    outputs/); None when it does not. Only a run's own records count here, never a bare folder name. The path is
    checked where the OS puts it: symlinks followed, `..` after a link taken from the link's target."""
    path = Path(os.path.realpath(directory))
    for parent in path.parents:
        if (parent / ".hydra" / "config.yaml").is_file():  # a run's record (not a bare checkpoints/ folder)
            return f"it is inside the run dir {parent}"
        if (parent / "multirun.yaml").is_file():
            return f"it is inside the sweep dir {parent}"
    found = runs_below(path, sweep) if path.is_dir() else None
    return f"it holds other runs ({found})" if found else None


def runs_below(path: Path, sweep: bool, levels: int = 4) -> Path | None:
    """The first run (a `.hydra/config.yaml`) or sweep (a `multirun.yaml`) in the folders up to `levels` below
    `path`: deep enough for a project root's multirun/DATE/TIME/JOB. A sweep dir's own jobs (one level down) do
    not count; hidden folders (.git, .venv, .hydra) and links are not walked, so this stays a few directory reads."""
    folders = [path]
    for depth in range(1, levels + 1):
        folders = [Path(e.path) for f in folders for e in scandir(f)
                   if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        for folder in folders:
            if (depth > 1 or not sweep) and (folder / ".hydra" / "config.yaml").is_file():
                return folder
            if depth < levels and (folder / "multirun.yaml").is_file():
                return folder
    return None


def scandir(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of `folder` ([] when it cannot be read: a folder the user cannot list holds none of their runs)."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []
