"""Hydra's Optuna sweeper on a storage that fails dead workers' trials (csc8607.study); a Hydra plugin, so it
lives in the `hydra_plugins` namespace package (`hydra.sweeper._target_` of conf/hydra/sweeper/study.yaml)."""
from __future__ import annotations

from typing import Any, List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class StudySweeper(OptunaSweeper):
    """OptunaSweeper whose `storage` URL is opened (and checked) before any trial, as a heartbeat storage holding
    the trials of one experiment; without a URL the study is in memory, in a storage held here so that the end
    of the sweep can look at its trials."""

    def __init__(self, storage: Any, heartbeat_interval: int, grace_period: int, **options: Any) -> None:
        super().__init__(storage=None, **options)
        self.storage_url, self.heartbeat_interval, self.grace_period = storage, heartbeat_interval, grace_period

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """Open the study; refuse (one line, exit 2) a storage that cannot be used or a study of another
        experiment (data, model, monitor, search space), before any trial."""
        from optuna.storages import InMemoryStorage

        from csc8607.errors import UserError
        from csc8607.study import experiment_identity, open_study

        direction = self.sweeper.direction
        named = [direction] if isinstance(direction, str) else list(direction)
        if any(str(d) not in ("auto", "maximize", "minimize") for d in named) or (len(named) > 1 and "auto" in named):
            refuse(config, f"hydra.sweeper.direction={direction} must be auto, maximize or minimize")
        try:
            if str(direction) == "auto":  # what the jobs return, trainer.monitor, says which way is better
                import os

                from csc8607.config import STUDY_DIRECTION, monitor_mode

                direction = self.sweeper.direction = \
                    "minimize" if monitor_mode(config.trainer, config.data.get("task")) == "min" else "maximize"
                os.environ[STUDY_DIRECTION] = direction  # each trial checks it once its data's task is known
            directions = [str(direction)] if isinstance(direction, str) else [str(d) for d in direction]
            self.sweeper.storage = open_study(self.storage_url, self.sweeper.study_name, directions,
                                              self.heartbeat_interval, self.grace_period, experiment_identity(config))
        except UserError as err:  # SystemExit passes through Hydra
            refuse(config, str(err))
        self.sweeper.storage = self.sweeper.storage or InMemoryStorage()
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        """Hydra's sweep; a study with no finished trial at all ends like any other all-failed sweep (the summary
        callback says so in one line, exit 2), not with Optuna's error on asking for the best of no trial."""
        try:
            return super().sweep(arguments)
        except ValueError:
            import optuna

            impl = self.sweeper
            names = [impl.study_name] if impl.study_name else [
                s.study_name for s in optuna.get_all_study_summaries(impl.storage)]  # in memory: this run's study
            if any(optuna.load_study(study_name=name, storage=impl.storage).get_trials(
                    states=[optuna.trial.TrialState.COMPLETE]) for name in names):
                raise


def refuse(config: Any, message: str) -> None:
    """One `error:` line, exit 2, before any trial; the sweep dir goes if it holds only the multirun.yaml that
    the summary callback recorded a moment ago (a refused command leaves nothing)."""
    from pathlib import Path

    from csc8607.errors import fail
    from csc8607.rundir import discard_sweep_record

    discard_sweep_record(Path(str(config.hydra.sweep.dir)))
    fail(message)
