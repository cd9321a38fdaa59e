"""A run dir belongs to one run: a command refused or repeated never rewrites another run's records.

Hydra writes a job's `.hydra/` (config, hydra, overrides) before the job starts. Here it writes them to this
process's own `.hydra-new-<pid>-<random>/` (`hydra.output_subdir: ${pending_record:}`: two commands started into one
dir never write the same files), and `claim` makes that the job's record only once the dir is known to be free: a dir
that already holds a run is refused (or, with `skip_finished=true`, kept when it ran the same config), and a dir
another process is writing into is refused. The lock is an advisory `flock` on the dir itself, held while the job
runs; the kernel drops it when the process dies, so a killed run never leaves a stale lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from csc8607.errors import ExistingRun, UserError, fail, unwritable_reason
from csc8607.placement import nesting, two_places

PENDING = f".hydra-new-{os.getpid()}-{secrets.token_hex(3)}"  # ${pending_record:}: this process's record until claimed
IGNORED_KEYS = {"skip_finished", "resume"}  # how a command treats earlier runs, not what the run is


def pending_name() -> str:
    """The folder where Hydra wrote this process's pending record (its `hydra.output_subdir`, else PENDING)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().output_subdir or PENDING)
    except ValueError:  # not inside a Hydra app
        return PENDING


if not OmegaConf.has_resolver("pending_record"):
    OmegaConf.register_new_resolver("pending_record", lambda: PENDING)


def resumable(section: str) -> bool:
    """Whether a finished run of `section` may be kept by skip_finished (csc8607.sections.SECTIONS says)."""
    from csc8607.sections import BY_NAME

    return section in BY_NAME and BY_NAME[section].resumable


def held_state(run_dir: Path) -> str | None:
    """What `run_dir` holds: "finished", "interrupted", "failed", "a" (any other run's record) or None."""
    if (run_dir / "metrics.json").exists():
        return "finished"
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        return "interrupted"
    if (run_dir / "failed.json").exists():
        return "failed"
    if (run_dir / ".hydra" / "config.yaml").exists() or (run_dir / "checkpoints").is_dir():
        return "a"
    return None


def refusal(run_dir: Path, state: str, skipping: bool = False) -> str:
    """`skipping`: skip_finished=true was given, and cannot keep this run (not a training section's)."""
    held = f"{run_dir} already holds {'a' if state == 'a' else 'a ' + state} run"
    if skipping:
        return f"{held}, which skip_finished does not keep (training runs only): choose a new hydra.run.dir"
    return (f"{held}: choose a new hydra.run.dir / hydra.sweep.dir, continue it with resume=<dir>, or add "
            "skip_finished=true to keep finished jobs of the same config and resume interrupted ones")


def recorded_differences(run_dir: Path, cfg: DictConfig) -> list[str]:
    """`key: recorded -> requested` for every config key whose value differs from the run's recorded config."""
    from csc8607.config import flatten

    path = run_dir / ".hydra" / "config.yaml"
    try:
        before = flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    except Exception as err:  # noqa: BLE001 - a damaged record is a difference, never a crash
        return [f"{path} is unreadable ({type(err).__name__})"]
    now = flatten(OmegaConf.to_container(cfg, resolve=False))
    keys = sorted(k for k in set(before) | set(now) if k not in IGNORED_KEYS and before.get(k) != now.get(k))
    return [f"{k}: {before.get(k)} -> {now.get(k)}" for k in keys]


def hydra_output_dir() -> Path | None:
    """This job's Hydra output dir (None outside a Hydra app, or in a config composed without one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        directory = OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=None)
    except ValueError:  # not inside a Hydra app
        return None
    return Path(directory) if directory else None


@contextlib.contextmanager
def lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `run_dir` (refused at once if another process holds it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{run_dir} is in use: another process is writing a run into it; wait for it to end "
                            "or choose another dir") from None
        yield
    finally:
        os.close(fd)


def requeued() -> bool:
    """Is this process a SLURM job that SLURM requeued (`scontrol requeue`, as submitit does at a time limit)?"""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


@contextlib.contextmanager
def claim(cfg: DictConfig, run_dir: Path | str, section: str) -> Iterator[None]:
    """Lock `run_dir` for this job, refuse it if it holds another run, and make Hydra's pending record the job's."""
    run_dir = Path(run_dir)
    hydra_dir = hydra_output_dir() or run_dir
    pending = hydra_dir / pending_name()  # its own: another process's pending record is never taken nor removed
    created = not run_dir.exists()
    claimed = False
    try:
        with lock(run_dir):
            state = None if cfg.get("resume") else held_state(run_dir)
            if state and requeued():
                pass  # SLURM requeued this very job (time limit, preemption): its dir is its own, to continue
            elif state and (not cfg.get("skip_finished") or not resumable(section) or state == "a"):
                raise ExistingRun(refusal(run_dir, state, skipping=bool(cfg.get("skip_finished"))))
            if state:
                changed = recorded_differences(run_dir, cfg)
                if changed:
                    raise ExistingRun(f"{run_dir} holds a {state} run of another config ({'; '.join(changed[:4])}"
                                      f"{'; ...' if len(changed) > 4 else ''}): skip_finished keeps only runs of the "
                                      "same config; choose a new hydra.sweep.dir / hydra.run.dir")
            elif pending.is_dir() and held_state(hydra_dir) is None:
                shutil.rmtree(hydra_dir / ".hydra", ignore_errors=True)
                pending.rename(hydra_dir / ".hydra")
                claimed = True
            try:
                yield
            except UserError:
                if claimed and held_state(hydra_dir) == "a" and not (hydra_dir / "checkpoints").exists():
                    shutil.rmtree(hydra_dir / ".hydra", ignore_errors=True)  # refused input: no run to hold the dir
                raise
    finally:
        shutil.rmtree(pending, ignore_errors=True)
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # a job refused before it wrote anything leaves no empty dir behind


def refuse_held_dirs(config: Any, directory: Path, key: str, sweep: bool) -> None:
    """Before Hydra writes anything: exit 2 when the run (or any job of the sweep) dir holds a run."""
    split = two_places(directory)
    if split:
        fail(f"{key}={directory}: {split}: write {key} without '..'")
    reason = unwritable_reason(str(directory))
    if reason:
        fail(f"cannot write the output dir {directory} ({reason}): set {key} to a writable path")
    nested = nesting(directory, sweep)
    if nested:
        fail(f"{key}={directory}: {nested}; a run needs a dir of its own: leave {key} unset or choose a new path")
    if config.get("resume") or config.get("skip_finished"):
        return  # the job itself decides (same config kept, different config refused)
    dirs = sorted(p.parent.parent for p in directory.glob("*/.hydra/config.yaml")) if sweep else [directory]
    held = [(d, s) for d in dirs if (s := held_state(d))]
    if held:
        more = f" (and {len(held) - 1} more job dirs)" if len(held) > 1 else ""
        fail(refusal(held[0][0], held[0][1]) + more)


class CheckOutputDir(Callback):  # type: ignore[misc,valid-type]
    """Hydra callback, before Hydra creates the run (or sweep) dir: one-line error and exit 2 for a dir that cannot
    be written or that holds a run; a sweep re-run with skip_finished keeps the previous multirun.yaml."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        refuse_held_dirs(config, Path(config.hydra.run.dir), "hydra.run.dir", sweep=False)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        refuse_held_dirs(config, sweep_dir, "hydra.sweep.dir", sweep=True)
        recorded = sweep_dir / "multirun.yaml"
        if config.get("skip_finished") and recorded.is_file():
            changed = command_differences(recorded, list(config.hydra.overrides.task))
            if changed:
                fail(f"{sweep_dir} holds a sweep of another command ({', '.join(changed[:4])}): skip_finished re-runs "
                     "the same command; choose a new hydra.sweep.dir")
        from csc8607.checkpoint import keep_previous

        keep_previous(recorded)  # the command that ran before stays on record


def command_differences(recorded: Path, task: list[str]) -> list[str]:
    """The overrides that differ between a sweep's recorded command and this one (skip_finished aside)."""
    def same_run(overrides: list[str]) -> set[str]:
        return {o for o in overrides if not o.lstrip("+").startswith(("skip_finished=", "hydra.sweep.dir="))}

    try:
        before = same_run(list(OmegaConf.load(recorded).hydra.overrides.task))
    except Exception as err:  # noqa: BLE001 - an unreadable record is not the same command
        return [f"{recorded.name} unreadable ({type(err).__name__})"]
    now = same_run(task)
    return sorted(before ^ now)


def discard_unclaimed() -> None:
    """After a refusal: remove what Hydra made for this command (the dir, its log, the pending record) when the
    command claimed nothing there, so that a refused command leaves no run dir behind (its error was printed)."""
    directory = hydra_output_dir()
    if directory is None or not directory.is_dir() or (directory / ".hydra").exists():
        return
    entries = list(directory.iterdir())
    if all(p.name == pending_name() or (p.suffix == ".log" and p.is_file()) for p in entries):
        shutil.rmtree(directory, ignore_errors=True)
        sweep_dir = hydra_sweep_dir()
        if sweep_dir is not None:
            discard_sweep_record(sweep_dir)  # the first job refused: the sweep ran nothing
        remove_empty_parents(directory)


def remove_empty_parents(directory: Path) -> None:
    """Remove the folders above a removed `directory` that it left empty (outputs/<date>/), up to the launch dir."""
    cwd = Path.cwd().resolve()
    for parent in directory.resolve().parents:
        if not parent.exists():
            continue
        if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def hydra_sweep_dir() -> Path | None:
    """The sweep dir of this job's multirun (None in a single run or outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
    except ValueError:  # not inside a Hydra app
        return None
    return Path(str(hydra.sweep.dir)) if hydra.mode == RunMode.MULTIRUN and hydra.sweep.dir else None


def discard_sweep_record(sweep_dir: Path) -> None:
    """Remove a sweep dir that holds only the multirun.yaml the summary callback recorded when the sweep started:
    a sweep refused before any job left a record (its error was printed), nothing else."""
    if sweep_dir.is_dir() and [p.name for p in sweep_dir.iterdir()] == ["multirun.yaml"]:
        shutil.rmtree(sweep_dir, ignore_errors=True)
        remove_empty_parents(sweep_dir)
