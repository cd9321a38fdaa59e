"""User-facing errors: one line on stderr and a non-zero exit instead of a traceback."""
from __future__ import annotations

import errno
import functools
import os
import signal
import sys
from typing import Any, Callable

from hydra.experimental.callback import Callback


class UserError(Exception):
    """Bad input the user can fix (config value, path, checkpoint); its message says what to change."""


class ExistingRun(UserError):
    """The job dir already holds a run (or another process is writing one into it): never overwritten."""


def exit_on_user_error(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task: a UserError prints `error: <message>` and exits with status 2 (or its `exit_code`).

    So do the failures that are the user's input too, not a bug: a config that does not resolve (OmegaConf's
    errors: `${nope.x}`, a removed node), a full disk, and Ctrl-C (exit 130).
    With HYDRA_FULL_ERROR=1 the exception propagates unchanged (full traceback).
    """
    from omegaconf.errors import OmegaConfBaseException

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except (UserError, OmegaConfBaseException, OSError, KeyboardInterrupt) as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or (isinstance(err, OSError) and not disk_full(err)):
                raise
            from csc8607.rundir import discard_unclaimed

            discard_unclaimed()  # a refused command leaves no empty run dir behind
            fail(user_message(err), getattr(err, "exit_code", 130 if isinstance(err, KeyboardInterrupt) else 2))

    return wrapper


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def user_message(err: BaseException) -> str:
    """The one line that says what went wrong and what to change."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if disk_full(err):
        return f"{os.strerror(err.errno).lower()} while writing {getattr(err, 'filename', None) or 'a file'}"
    if isinstance(err, UserError):
        return str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    key = getattr(err, "full_key", None)
    return f"config: {first}" + (f" (at {key})" if key and str(key) not in first else "")


def quiet_interrupts() -> None:
    """Ctrl-C before a job's own handling starts (imports, config composition, a dataset's first decode):
    one `error:` line and exit 130, no traceback. Called first by the command-line scripts only."""

    def exit_130(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while exiting stays quiet too
        fail("interrupted (Ctrl-C)", 130)

    signal.signal(signal.SIGINT, exit_130)


def unwritable_reason(directory: str) -> str | None:
    """Why `directory` cannot be created or written (None when it can): checks its first existing ancestor."""
    path = os.path.abspath(directory)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        return f"{path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


class CheckLauncher(Callback):  # type: ignore[misc,valid-type]
    """Hydra callback: a sweep on `hydra/launcher=slurm` needs `sbatch` and, when one is named, an existing
    partition; checked before anything is submitted (one-line error, exit 2) instead of submitit's traceback."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        import shutil
        import subprocess

        launcher = config.hydra.launcher
        if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
            return
        if shutil.which("sbatch") is None:
            fail("hydra/launcher=slurm submits with SLURM's sbatch, which is not on PATH (not on a cluster?): "
                 "run the sweep here with hydra/launcher=local")
        listed = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True)
        if listed.returncode != 0:
            fail(f"SLURM does not answer (sinfo: {(listed.stderr.strip() or '?').splitlines()[-1]})")
        known = [p.rstrip("*") for p in listed.stdout.split()]
        partition = launcher.get("partition")
        if partition and str(partition) not in known:
            fail(f"hydra.launcher.partition={partition} does not exist on this cluster (partitions: "
                 f"{', '.join(known) or 'none'})")
