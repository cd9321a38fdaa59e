"""User-facing errors: one line on stderr and a non-zero exit instead of a traceback."""
from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable



class UserError(Exception):
    """Bad input the user can fix (config value, path, checkpoint); its message says what to change."""


class ExistingRun(UserError):
    """The job dir already holds a run (or another process is writing one into it): never overwritten."""


def exit_on_user_error(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task: a UserError prints `error: <message>` and exits with status 2 (or its `exit_code`).

    With HYDRA_FULL_ERROR=1 the exception propagates unchanged (full traceback).
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except UserError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(getattr(err, "exit_code", 2))

    return wrapper


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
