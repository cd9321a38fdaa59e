"""Hydra's Optuna sweeper on a storage that fails dead workers' trials (csc8607.study); a Hydra plugin, so it
lives in the `hydra_plugins` namespace package (`hydra.sweeper._target_` of conf/hydra/sweeper/study.yaml)."""
from __future__ import annotations

from typing import Any, List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class StudySweeper(OptunaSweeper):
    """OptunaSweeper whose `storage` URL is opened (and checked) before any trial, as a heartbeat storage holding
    the trials of one experiment."""

    def __init__(self, storage: Any, heartbeat_interval: int, grace_period: int, **options: Any) -> None:
        super().__init__(storage=None, **options)
        self.storage_url, self.heartbeat_interval, self.grace_period = storage, heartbeat_interval, grace_period

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """Open the study; refuse (one line, exit 2) a storage that cannot be used or a study of another
        experiment (data, model, monitor, search space), before any trial."""
        from csc8607.errors import UserError, fail
        from csc8607.study import experiment_identity, open_study

        direction = self.sweeper.direction
        directions = [str(direction)] if isinstance(direction, str) else [str(d) for d in direction]
        try:
            self.sweeper.storage = open_study(self.storage_url, self.sweeper.study_name, directions,
                                              self.heartbeat_interval, self.grace_period, experiment_identity(config))
        except UserError as err:  # SystemExit passes through Hydra
            fail(str(err))
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
    def sweep(self, arguments: List[str]) -> None:
        """Hydra's sweep; a study with no finished trial at all ends like any other all-failed sweep (the summary
        callback reports it), not with Optuna's error on asking for the best of no trial."""
        try:
            return super().sweep(arguments)
        except ValueError:
            import optuna

            impl = self.sweeper
            if impl.storage is None or optuna.load_study(study_name=impl.study_name, storage=impl.storage
                                                         ).get_trials(states=[optuna.trial.TrialState.COMPLETE]):
                raise
