"""Hydra's Optuna sweeper on a storage that fails dead workers' trials (csc8607.study); a Hydra plugin, so it
lives in the `hydra_plugins` namespace package (`hydra.sweeper._target_` of conf/hydra/sweeper/study.yaml)."""
from __future__ import annotations

from typing import Any, List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class StudySweeper(OptunaSweeper):
    """OptunaSweeper whose `storage` URL is opened (and checked) up front as a heartbeat storage."""

    def __init__(self, storage: Any, heartbeat_interval: int, grace_period: int, **options: Any) -> None:
        from csc8607.errors import UserError, fail
        from csc8607.study import open_study

        direction = options["direction"]
        directions = [str(direction)] if isinstance(direction, str) else [str(d) for d in direction]
        try:
            storage = open_study(storage, options["study_name"], directions, heartbeat_interval, grace_period)
        except UserError as err:  # before any trial: one line, exit 2 (SystemExit passes through Hydra)
            fail(str(err))
        super().__init__(storage=storage, **options)

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
