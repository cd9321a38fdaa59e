"""The Optuna preset's sampler: TPE whose seed moves on with the study, so that a resumed study explores."""
from __future__ import annotations

from typing import Any

from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial


class StudyTPESampler(TPESampler):
    """TPESampler seeded with `seed + n`, n the number of the first trial this process samples.

    A plain seeded TPESampler replays the same random start-up suggestions every time the command is re-run on
    a stored study (and in every worker process filling it in parallel); offsetting by the study's trial count
    keeps runs reproducible (same study state, same suggestions) without repeating earlier trials.
    """

    def __init__(self, seed: int | None = None, **tpe_options: Any) -> None:
        super().__init__(seed=seed, **tpe_options)
        self.base_seed, self.tpe_options, self.offset_applied = seed, tpe_options, False

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        """Called by Optuna as each trial starts: the first call re-seeds by that trial's number."""
        if not self.offset_applied:
            self.offset_applied = True
            if self.base_seed is not None and trial.number > 0:
                super().__init__(seed=self.base_seed + trial.number, **self.tpe_options)
        return super().infer_relative_search_space(study, trial)
