"""Config checks and helpers: validation with one-line errors, instantiate with readable errors, flattening."""
from __future__ import annotations

import difflib
import math
import os
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


def defined_keys(conf_dir: Path = MAIN_CONFIG.parent) -> set[str]:
    """Every key path any file of conf/ defines (a group's file under its group, a preset's at the root)."""
    keys: set[str] = set()
    for path in conf_dir.rglob("*.yaml"):
        group = path.parent.relative_to(conf_dir).as_posix()
        if group.startswith("hydra") or path.name == "report.yaml":  # report.py's keys are not a run's
            continue
        node = OmegaConf.load(path)
        # a file of a sub-folder (data/base/) is a block its group's files include `@_here_`: the group's keys
        prefix = "" if group == "." or "@package _global_" in path.read_text()[:200] else group.split("/")[0] + "."
        if isinstance(node, DictConfig):
            keys.update(prefix + key for key in flatten_keys(node) if key != "defaults")
    return keys


def flatten_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Key paths of a config node, inner nodes included, without resolving interpolations."""
    out = []
    for key in node.keys():
        out.append(f"{prefix}{key}")
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            out += flatten_keys(child, f"{prefix}{key}.")
    return out


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse a `+key=value` (or `++`) that no file of conf/ defines: a typo (`+max_epochs=3`,
    `+data.normalize.meen=...`) would be ignored. A key of a `_target_` node with no close match is left to
    instantiate, which refuses what its callable does not take (and accepts e.g. `+optim.amsgrad=true`)."""
    added = [o.split("=", 1)[0].lstrip("+") for o in overrides if o.startswith("+") and "=" in o]
    if not added or not MAIN_CONFIG.exists():
        return
    groups = {path.name for path in MAIN_CONFIG.parent.iterdir() if path.is_dir()}  # `+experiment=x` picks a file
    added = [k for k in added if "/" not in k and k not in groups and not k.startswith(("hydra", "trainer."))]
    known = defined_keys()
    main = set(flatten_keys(OmegaConf.load(MAIN_CONFIG)))  # preferred suggestions: the main config's keys
    for key in added:
        if key in known:
            continue
        parent_key, _, leaf = key.rpartition(".")
        same_leaf = sorted((k for k in known if k.rsplit(".", 1)[-1] == leaf), key=lambda k: (k not in main, k))
        siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent_key]
        similar = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.7)
        close = same_leaf or [f"{parent_key}.{m}".lstrip(".") for m in similar]
        parent = OmegaConf.select(cfg, parent_key) if parent_key else None
        if not close and isinstance(parent, DictConfig) and "_target_" in parent:
            continue
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"+{key} is a key no config defines and would be ignored{hint}")


GROUPS = ("data", "model", "optim")  # the config groups every run builds from (`_target_` nodes)
SCORES = {"accuracy", "f1", "f1_micro", "top5", "r2"}  # logged metrics where higher is better
LOWER = {"loss", "rmse", "mae"}  # logged metrics where lower is better


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TASK_MONITORS = {"regression": "val/rmse", "multilabel": "val/f1"}  # trainer.monitor=auto; others: val/accuracy


def task_monitor(monitor: str, task: str | None) -> str:
    """`trainer.monitor`, `auto` read from the task: val/rmse for regression, val/f1 (macro) for multi-label,
    else val/accuracy. Before the data is built the task is `data.task` (None: a classification guess)."""
    return TASK_MONITORS.get(task or "", "val/accuracy") if monitor == "auto" else monitor


def monitor_mode(trainer: DictConfig, task: str | None = None) -> str:
    """`trainer.monitor_mode`, `auto` read from the metric's name: min for a loss or an error, max for a score;
    an explicit mode that contradicts the metric (a loss maximized) is refused rather than picking the worst epoch."""
    monitor, mode = task_monitor(str(trainer.monitor), task), str(trainer.get("monitor_mode", "auto"))
    check(mode in ("auto", "max", "min"), f"trainer.monitor_mode={mode} must be auto, max or min")
    metric = monitor.rsplit("/", 1)[-1]
    implied = "min" if metric in LOWER else "max" if metric in SCORES else None
    if implied is None:
        check(mode != "auto", f"trainer.monitor={monitor} is not a logged metric (loss, accuracy, f1, top5, rmse, mae "
                              "or r2 of train/ or val/); or set trainer.monitor_mode=max or min")
        return mode
    better = "lower" if implied == "min" else "higher"
    check(mode in ("auto", implied), f"trainer.monitor_mode={mode} contradicts trainer.monitor={monitor} (better "
                                     f"when {better}): use monitor_mode={implied} or auto")
    return implied


STUDY_DIRECTION = "CSC8607_STUDY_DIRECTION"  # set by the Optuna sweeper for its trials when `direction: auto` chose


def check_sweep_direction(cfg: DictConfig, task: str | None = None) -> None:
    """An Optuna sweep maximizes or minimizes what each job returns (trainer.monitor): `direction: maximize` on
    val/loss would search for the worst model. Refused before the first trial (`task`: the data's, once built)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        direction = HydraConfig.get().sweeper.get("direction")
    except ValueError:  # not inside a Hydra app
        return
    chosen = str(direction) == "auto" and os.environ.get(STUDY_DIRECTION)  # what `auto` chose for the study
    direction = chosen or direction
    if task is None and isinstance(cfg.get("data"), DictConfig):
        task = cfg.data.get("task")
    mode = monitor_mode(cfg.trainer, task)
    monitor = task_monitor(str(cfg.trainer.monitor), task)
    if isinstance(direction, str) and direction.lower() in ("maximize", "minimize") and direction.lower()[:3] != mode:
        if chosen:  # auto decided before any data was read; the source declared its task (a .ts regression)
            raise UserError(f"hydra.sweeper.direction=auto chose {direction} before the data was read, but this "
                            f"{task} data is scored by {monitor} (monitor_mode {mode}): add data.task={task} or "
                            f"hydra.sweeper.direction={mode}imize")
        raise UserError(f"hydra.sweeper.direction={direction} contradicts trainer.monitor={monitor} "
                        f"(monitor_mode {mode}): set hydra.sweeper.direction={mode}imize")


def validate(cfg: DictConfig) -> None:
    """Reject values that would crash later or silently train nothing, naming the key to change."""
    for group in GROUPS:
        node = cfg.get(group)
        check(isinstance(node, DictConfig) and isinstance(node.get("_target_"), str),
              f"{group}{'._target_' if isinstance(node, DictConfig) else ''} is missing from the config (removed "
              f"with ~?): choose one with {group}=<name> (conf/{group}/*.yaml)")
    validate_trainer(cfg.trainer, cfg.data.get("task"))
    lr = cfg.optim.get("lr")
    check(is_number(lr), f"optim.lr={lr!r} must be a number")
    check(0 < lr < math.inf, f"optim.lr={lr} must be > 0 and finite")
    weight_decay = cfg.optim.get("weight_decay", 0.0)
    check(is_number(weight_decay) and 0 <= weight_decay < math.inf,
          f"optim.weight_decay={weight_decay} must be >= 0 and finite")
    for key, seed in (("seed", cfg.seed), ("data.split_seed", cfg.data.get("split_seed", 0))):
        check(is_int(seed) and 0 <= seed < 2**32, f"{key}={seed!r} must be a whole number in [0, 2**32)")
    scheduler = cfg.get("scheduler") or {}
    for key in ("step_size", "T_max"):  # epochs: 0 divides by zero at the first scheduler step
        if key in scheduler:
            check(is_int(scheduler[key]) and scheduler[key] >= 1, f"scheduler.{key}={scheduler[key]} must be a "
                                                                  "whole number >= 1 (epochs)")
    for key in ("gamma", "eta_min"):
        if key in scheduler:
            check(is_number(scheduler[key]) and scheduler[key] >= 0, f"scheduler.{key}={scheduler[key]!r} must be "
                                                                     "a number >= 0")


def validate_trainer(trainer: DictConfig, task: str | None = None) -> None:
    for key in ("max_epochs", "batch_size", "eval_batch_size", "log_every_n_steps"):
        value = trainer.get(key)
        check(is_int(value) and value >= 1, f"trainer.{key}={value} must be a whole number >= 1")
        check(value < 2**31, f"trainer.{key}={value} is far too large (at most {2**31 - 1})")
    monitor_mode(trainer, task)
    grad_clip = trainer.get("grad_clip")
    check(grad_clip is None or (is_number(grad_clip) and grad_clip > 0),
          f"trainer.grad_clip={grad_clip} must be a number > 0, or null")
    threads = trainer.get("threads")
    check(threads is None or (is_int(threads) and threads >= 1), f"trainer.threads={threads} must be a whole "
                                                                  "number >= 1, or null (all cores)")
    for key, auto in (("channels_last", True), ("progress_bar", True), ("test_after_fit", False),
                      ("tune_malloc", False)):
        value = trainer.get(key, False)
        check(isinstance(value, bool) or (auto and value == "auto"),
              f"trainer.{key}={value} must be true or false{' or auto' if auto else ''}")


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


# where this machine keeps things, never taken from a saved config: key -> its value when this command has none
MACHINE_KEYS = {"paths": None, "data.cache_dir": None, "full.artifacts_dir": "artifacts"}


def with_overrides(saved: Any, composed: DictConfig, overrides: list[str], skip: tuple[str, ...],
                   source: str) -> DictConfig:
    """A run's saved config (read from `source`) with the keys given on this command line taken from `composed`.

    Used by evaluate.py and `resume=`: the checkpoint's config rules, except what the user just typed and where this
    machine keeps its files. A group choice (`data=image_folder`, needed to reach `data.root`) keeps the run's own
    node, not the group's defaults; one naming other callables (`optim=sgd` over an AdamW run) is refused. A saved
    value that was the overridden key's value in the run and is again in this composition (data.source.root =
    data.root) follows it. The result's `_target_`s are checked (csc8607.trust): a saved config runs no code of its
    own.
    """
    if not isinstance(saved, dict) or not saved:
        raise UserError(f"{source} holds no config (was it written by train.py?)")
    cfg = OmegaConf.create(saved)
    for key, fallback in MACHINE_KEYS.items():
        if key == "data.cache_dir" and OmegaConf.select(cfg, key) is None:
            continue  # a cache left off stays off
        if OmegaConf.select(cfg, key.split(".")[0]) is not None or key == "paths":
            OmegaConf.update(cfg, key, OmegaConf.select(composed, key, default=fallback), merge=False, force_add=True)
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in skip or key.startswith("hydra"):
            continue
        if override.startswith("~"):
            raise UserError(f"{override}: a run's recorded config cannot lose keys here (evaluate.py, resume=)")
        new, old = OmegaConf.select(composed, key), OmegaConf.select(cfg, key)
        if isinstance(new, DictConfig) and isinstance(old, DictConfig) and "." not in key:
            theirs, ours = targets(old), targets(new)
            differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            if differ:
                raise UserError(f"{override}: the run was built with {', '.join(map(str, map(theirs.get, differ)))}, "
                                f"not {', '.join(map(str, map(ours.get, differ)))}: evaluate.py and resume= use the "
                                "run's own; start a new run to change it")
            continue
        if isinstance(old, str) and "." in key:
            group = key.split(".", 1)[0]
            copies = [other for other, value in flatten(cfg[group], f"{group}.").items() if value == old and other != key]
            if copies and isinstance(composed.get(group), DictConfig):
                refuse_other_option(override, group, targets(cfg[group]), targets(composed[group]))
            for other in copies:
                if OmegaConf.select(composed, other) == new:
                    OmegaConf.update(cfg, other, new, merge=False)
        OmegaConf.update(cfg, key, new, merge=False, force_add=True)
    from csc8607.trust import check_targets

    check_targets(cfg, source, overrides)
    return cfg


def refuse_other_option(override: str, group: str, theirs: dict[str, str], ours: dict[str, str]) -> None:
    """A key the run copied elsewhere (data.source.root = data.root) follows only through the run's own option:
    over another (evaluate.py's default data), the copy would silently keep the old value."""
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if differ:
        raise UserError(f"{override}: the run's {group}.{differ[0]} is {theirs.get(differ[0])}, not this command's "
                        f"{ours.get(differ[0])}; name its option first ({group}=<its option> {override})")


def targets(node: DictConfig) -> dict[str, str]:
    """The callables a config node names: `_target_` key path -> target."""
    return {key: value for key, value in flatten(node).items() if key.endswith("_target_")}


def command_line_overrides() -> list[str]:
    """This job's command-line overrides (empty outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []
