"""Hydra's Optuna sweeper on a storage that fails dead workers' trials (csc8607.study); a Hydra plugin, so it
lives in the `hydra_plugins` namespace package (`hydra.sweeper._target_` of conf/hydra/sweeper/study.yaml)."""
from __future__ import annotations

from typing import Any, List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class StudySweeper(OptunaSweeper):
    """OptunaSweeper whose `storage` URL is opened (and checked) up front as a heartbeat storage; without a URL
    the study is in memory, in a storage held here so that the end of the sweep can look at its trials."""

    def __init__(self, storage: Any, heartbeat_interval: int, grace_period: int, **options: Any) -> None:
        from optuna.storages import InMemoryStorage

        from csc8607.errors import UserError, fail
        from csc8607.study import open_study

        direction = options["direction"]
        directions = [str(direction)] if isinstance(direction, str) else [str(d) for d in direction]
        try:
            storage = open_study(storage, options["study_name"], directions, heartbeat_interval, grace_period)
        except UserError as err:  # before any trial: one line, exit 2 (SystemExit passes through Hydra)
            fail(str(err))
        super().__init__(storage=storage or InMemoryStorage(), **options)

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
