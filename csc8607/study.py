"""The Optuna study's storage, shared by every worker (processes, SLURM jobs, other nodes) that fills the study.

Hydra's Optuna sweeper asks and tells trials itself, so Optuna's own liveness mechanism, which `study.optimize`
runs, has to be run here: each trial this process starts gets a heartbeat in the storage (every
`heartbeat_interval` s, from a daemon thread), and before a trial is created, RUNNING trials whose heartbeat is
older than `grace_period` s become FAIL (`RDBStorage.fail_stale_trials`). A worker killed on any node, by
`scancel`, a node failure or the kernel, stops beating: its trial becomes FAIL once its grace period is over,
seen by any other worker or the next run. The database clock timestamps the heartbeats, so node clocks need
not agree.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable

import optuna
from optuna.storages import RDBStorage

from csc8607.config import task_monitor
from csc8607.errors import UserError

log = logging.getLogger(__name__)
# Optuna's own handler colours its lines (colorlog) even into a redirected or SLURM log file: its lines go through
# the logging of the process instead (Hydra's handlers: plain text, Hydra's format)
optuna.logging.disable_default_handler()
optuna.logging.enable_propagation()
IDENTITY = "csc8607:identity"  # the study's system attribute: what its trials are comparable on


class OtherExperiment(UserError):
    """The study holds trials of another experiment."""


class HeartbeatStorage(RDBStorage):
    """An RDBStorage that beats for the trials this process created and fails the stale ones of other workers."""

    def __init__(self, url: str, heartbeat_interval: int, grace_period: int) -> None:
        super().__init__(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        self.beating: set[int] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self.beat, name="optuna-heartbeat", daemon=True).start()

    def _create_new_trial(self, study_id: int, template_trial: Any = None) -> Any:
        """Every new trial goes through here (optuna's cached storage calls it directly)."""
        stale = self.fail_stale_trials(study_id)
        if stale:
            numbers = [self.get_trial_number_from_id(t) for t in stale]
            log.warning("trial(s) %s had no heartbeat for %d s (worker killed?): marked FAIL", numbers,
                        self.grace_period)
        trial = super()._create_new_trial(study_id, template_trial)
        self.record_heartbeat(trial._trial_id)
        with self.lock:
            self.beating.add(trial._trial_id)
        return trial

    def _update_trial(self, trial_id: int, **updates: Any) -> bool:
        """Every write of a trial's result goes through here (optuna's cached storage calls it directly). A trial
        of this process that stalled past the grace period (a suspended job, a database out of reach) was failed
        by another worker: the study keeps that FAIL, the result told now is left out with a warning (its job dir
        still holds it), and the sweep goes on instead of stopping on Optuna's `finished trial` error."""
        try:
            return super()._update_trial(trial_id, **updates)
        except RuntimeError:
            trial = self.get_trial(trial_id)
            if not trial.state.is_finished():
                raise
            log.warning("trial %d was marked %s by another worker while it ran (no heartbeat for %d s): the study "
                        "keeps it as %s; its result stays in its job dir only", trial.number, trial.state.name,
                        self.grace_period, trial.state.name)
            return False

    def beat(self) -> None:
        """Record a heartbeat for each unfinished trial of this process, every `heartbeat_interval` seconds."""
        while True:
            time.sleep(self.heartbeat_interval)
            with self.lock:
                trial_ids = list(self.beating)
            for trial_id in trial_ids:
                try:
                    if self.get_trial(trial_id).state.is_finished():
                        with self.lock:
                            self.beating.discard(trial_id)
                    else:
                        self.record_heartbeat(trial_id)
                except Exception as err:  # noqa: BLE001 - a database hiccup: the next beat tries again
                    log.warning("heartbeat of trial id %d not recorded: %s", trial_id, storage_problem(err))


def transient(err: Exception) -> bool:
    """A race between workers started together on one database (tables created twice, sqlite's write lock),
    not a broken storage: worth trying again."""
    from sqlalchemy.exc import IntegrityError

    text = " ".join(str(e) for e in (err, err.__cause__) if e is not None).lower()
    return isinstance(err, IntegrityError) or "locked" in text or "already exists" in text


def retried(make: Callable[[], Any], attempts: int = 6) -> Any:
    """`make()`, tried again (with a growing pause) while it fails for a transient reason."""
    for attempt in range(attempts):
        try:
            return make()
        except Exception as err:  # noqa: BLE001 - only transient failures are retried; the rest propagate
            if attempt == attempts - 1 or not transient(err):
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def create_storage(url: str, heartbeat_interval: int, grace_period: int) -> HeartbeatStorage:
    """HeartbeatStorage(url); workers started together on an empty database race to create Optuna's tables:
    the losers try again once the winner's tables exist."""
    return retried(lambda: HeartbeatStorage(url, heartbeat_interval, grace_period))


def describe_url(url: str) -> str:
    """The URL as messages show it: password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: shown as typed
        return url


def open_study(url: str | None, study_name: str | None, directions: list[str], heartbeat_interval: int,
               grace_period: int, identity: dict[str, Any]) -> HeartbeatStorage | None:
    """Open (create if needed) the study in its storage and check it can be written, has the same direction(s)
    and holds this experiment's trials only; every way this fails is a UserError naming the URL. None = in
    memory (no storage)."""
    if url is None:
        return None
    shown = describe_url(str(url))
    key = "hydra.sweeper.storage"
    try:
        storage = create_storage(str(url), heartbeat_interval, grace_period)
    except ImportError as err:
        raise UserError(f"{key}={shown}: the Python driver for this database is not installed ({err}); "
                        "for PostgreSQL: pip install psycopg2-binary") from None
    except Exception as err:  # noqa: BLE001 - sqlalchemy's errors, any database
        raise UserError(f"{key}={shown}: cannot open the study storage ({storage_problem(err)})") from None
    try:
        def open_and_mark() -> None:
            try:  # an existing study is judged by its experiment first, then by its direction
                existing = optuna.load_study(study_name=study_name, storage=storage)
            except KeyError:
                existing = None
            changed = recorded_differences(existing.system_attrs.get(IDENTITY), identity) if existing else []
            if changed:
                raise OtherExperiment(f"{key}={shown}: study `{study_name}` holds trials of another experiment "
                                      f"({'; '.join(changed[:3])}{'; ...' if len(changed) > 3 else ''}), which would "
                                      "be ranked with these: set hydra.sweeper.study_name to a new name")
            study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                        load_if_exists=True)
            # a read-only storage fails here, not at the first trial
            study.set_system_attr(IDENTITY, json.dumps(identity, sort_keys=True))

        retried(open_and_mark)
    except OtherExperiment:
        raise
    except ValueError as err:  # "Cannot overwrite study direction from [...] to [...]"
        raise UserError(f"{key}={shown}: study `{study_name}` exists with another direction ({err}); set "
                        "hydra.sweeper.direction to match it or choose another hydra.sweeper.study_name") from None
    except Exception as err:  # noqa: BLE001
        raise UserError(f"{key}={shown}: cannot write the study `{study_name}` ({storage_problem(err)})") from None
    return storage


def storage_problem(err: Exception) -> str:
    """The first line of a database error, without sqlalchemy's class prefix and background link."""
    while err.__cause__ is not None:  # optuna's StorageInternalError wraps the database's own error
        err = err.__cause__  # type: ignore[assignment]
    text = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
    if "not parse" in text and "URL" in text:
        return "not a database URL: write it as sqlite:///path/to/optuna.db or postgresql://user@host/db"
    if "unable to open database file" in text:
        return f"{text}: does its directory exist?"
    return text


def experiment_identity(config: Any) -> dict[str, Any]:
    """What makes two runs' trials one study: the data, the model, the monitored metric and the search space.
    Trials that differ in any of these would be ranked together wrongly (a digits trial as Tiny ImageNet's best)."""
    from omegaconf import OmegaConf

    from csc8607.config import flatten

    choices = config.hydra.runtime.choices
    root = config.data.get("root")
    space = OmegaConf.to_container(config.hydra.sweeper.get("params") or {}, resolve=True)
    for override in config.hydra.overrides.task:  # the command line's sweep axes join the preset's (they win)
        key, _, value = str(override).lstrip("+").partition("=")
        if not key.startswith("hydra.") and ("(" in value or "," in value):
            space[key] = value  # type: ignore[index]
    return {
        "data": {"choice": choices.get("data"), "name": config.data.get("name"), "task": config.data.get("task"),
                 "root": os.path.abspath(str(root)) if root else None},
        "model": {"choice": choices.get("model"),  # every fixed argument too (model.width=4 vs 8 are not one study)
                  **{key: str(value) for key, value in sorted(flatten(OmegaConf.to_container(
                      config.model, resolve=True)).items()) if key.split(".")[0] not in ("axes", "space")}},
        "monitor": {"metric": task_monitor(str(config.trainer.get("monitor")), config.data.get("task")),  # not `auto`
                    "direction": str(config.hydra.sweeper.direction)},
        "space": {str(k): str(v) for k, v in sorted(space.items())},  # type: ignore[union-attr]
    }


def recorded_differences(recorded: Any, identity: dict[str, Any]) -> list[str]:
    """The differences between the identity a study recorded (JSON; None: a study from before identities, taken
    as this one) and this experiment's; a record that is not an identity is one difference."""
    if recorded is None:
        return []
    try:
        before = json.loads(recorded)
        if not isinstance(before, dict) or not all(isinstance(v, dict) for v in before.values()):
            raise ValueError("not an identity")
    except (TypeError, ValueError):
        return [f"{IDENTITY}: unreadable ({str(recorded)[:60]!r})"]
    return identity_differences(before, identity)


def identity_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`part.key: before -> now` for each difference between two identities."""
    keys = sorted({(part, key) for ident in (before, now) for part, values in ident.items() for key in values})
    return [f"{part}.{key}: {before.get(part, {}).get(key)} -> {now.get(part, {}).get(key)}" for part, key in keys
            if before.get(part, {}).get(key) != now.get(part, {}).get(key)]
