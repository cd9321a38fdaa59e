"""Sweeps survive: re-runs keep finished jobs, killed Optuna runs leave no RUNNING trials, workers share a study."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import REPO, job_dirs, read_json, run_cli

TINY = ["model.depth=1", "trainer.max_epochs=1", "trainer.threads=1"]


def optuna_args(storage: str, trials: int, *extra: str) -> list[str]:
    return ["experiment=optuna", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=shared",
            f"hydra.sweeper.n_trials={trials}", "model.width=choice(4, 8)", "model.depth=1", "trainer.threads=1",
            *extra]


def test_rerun_into_the_same_sweep_dir_keeps_finished_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "model.width=4,8", *TINY, f"hydra.sweep.dir={sweep}"]
    run_cli("train.py", *args, cwd=tmp_path)
    first, second = job_dirs(sweep)
    expected = read_json(second / "metrics.json")
    (second / "metrics.json").unlink()  # as if the job had been killed after its last checkpoint
    results = lambda job: {p: p.stat().st_mtime_ns for p in job.rglob("*")  # noqa: E731
                           if p.is_file() and p.parent.name != ".hydra" and p.name != "train.log"}
    before, log_before = results(first), (first / "train.log").read_text()

    refused = run_cli("train.py", *args, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "already holds a finished run" in refused.stderr and "skip_finished=true" in refused.stderr
    run_cli("train.py", *args, "skip_finished=true", cwd=tmp_path)
    assert results(first) == before  # the finished job's results were not touched
    assert (first / "train.log").read_text().startswith(log_before)  # its log only grew
    resumed = read_json(second / "metrics.json")  # the interrupted one was resumed from its last.ckpt
    assert resumed["test"] == expected["test"] and resumed["best_value"] == expected["best_value"]


def test_two_workers_fill_one_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, str(REPO / "train.py"), *optuna_args(storage, 2, *TINY[1:2])],
                                cwd=tmp_path / ".", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    errors = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert len({t.number for t in study.trials}) == 4


def test_killed_optuna_run_leaves_failed_not_running_trials(tmp_path: Path) -> None:
    """A SIGKILLed worker's trial stops beating: once its grace period is over, the next run's first trial
    marks it FAIL (Optuna's heartbeat), whichever host or process that run is."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    beat = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *optuna_args(storage, 1, "trainer.max_epochs=200",
                                                                                    *beat)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            trials = optuna.load_study(study_name="shared", storage=storage).trials
        except KeyError:
            trials = []
        if trials and trials[0].state.name == "RUNNING" and list(tmp_path.glob("multirun/*/*/*/checkpoints")):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert optuna.load_study(study_name="shared", storage=storage).trials[0].state.name == "RUNNING"

    time.sleep(3.5)  # past the grace period
    run_cli("train.py", *optuna_args(storage, 1, "trainer.max_epochs=1", *beat), cwd=tmp_path)
    states = [t.state.name for t in optuna.load_study(study_name="shared", storage=storage).trials]
    assert states == ["FAIL", "COMPLETE"]


def test_failed_trial_is_fail_in_the_study_and_the_study_goes_on(tmp_path: Path) -> None:
    """A trial whose job fails is FAIL in the study (no value: Optuna's tools and M8 count it as failed), not a
    COMPLETE trial worth -inf; the next trials still run and the summary lists the failure."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_cli("train.py", "experiment=optuna", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=s",
            "hydra.sweeper.n_trials=3", "model.width=choice(0, 4)", "model.depth=1", "trainer.max_epochs=1",
            "trainer.threads=1", "hydra.sweeper.sampler.seed=3", cwd=tmp_path)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    by_width = {(t.params["model.width"], t.state.name, t.value) for t in trials}
    assert len(trials) == 3 and {w for w, _, _ in by_width} == {0, 4}, by_width  # both kinds ran
    assert all(state == "FAIL" and value is None for w, state, value in by_width if w == 0)
    assert all(state == "COMPLETE" and value > 0 for w, state, value in by_width if w == 4)
    summary = next(tmp_path.glob("multirun/*/*/summary.md")).read_text()
    assert "| failed |" in summary and "model.width=0 must be at least 1" in summary


def test_resumed_study_does_not_replay_earlier_suggestions(tmp_path: Path) -> None:
    """Each run of the preset's sampler on a stored study starts from seed + trials so far: a second run explores
    new points and is itself reproducible; a plain seeded TPESampler replays the first run's suggestions."""
    from csc8607.study_sampler import StudyTPESampler

    def run(sampler: optuna.samplers.BaseSampler, db: str, trials: int = 3) -> list[float]:
        study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / db}", sampler=sampler,
                                    load_if_exists=True)
        before = len(study.trials)
        study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=trials)
        return [t.params["lr"] for t in study.trials[before:]]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plain_first, plain_second = run(optuna.samplers.TPESampler(seed=7), "plain.db"), run(
        optuna.samplers.TPESampler(seed=7), "plain.db")
    assert plain_first == plain_second  # the problem: a re-run repeats itself
    first, second = run(StudyTPESampler(seed=7), "ours.db"), run(StudyTPESampler(seed=7), "ours.db")
    assert first == plain_first  # a fresh study samples exactly as TPE with that seed
    assert not set(first) & set(second)
    again_first, again_second = run(StudyTPESampler(seed=7), "again.db"), run(StudyTPESampler(seed=7), "again.db")
    assert (again_first, again_second) == (first, second)


def test_a_trial_failed_by_another_worker_while_it_stalled_is_left_as_fail_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Worker A's trial stops beating (its process stalled) past the grace period; worker B, starting its next
    trial, fails it. When A's trial then finishes, telling its result (as Hydra's sweeper does after each job)
    warns instead of raising Optuna's `finished trial` error, which used to end A's whole sweep."""
    from csc8607.study import open_study

    url = f"sqlite:///{tmp_path / 'study.db'}"
    stalled = open_study(url, "shared", ["maximize"], heartbeat_interval=600, grace_period=1, identity={})  # 1 beat
    other = open_study(url, "shared", ["maximize"], heartbeat_interval=1, grace_period=1, identity={})
    study_a, study_b = (optuna.load_study(study_name="shared", storage=s) for s in (stalled, other))
    trial = study_a.ask()
    time.sleep(2.1)  # past the grace period (sqlite times heartbeats to the second) without a heartbeat
    study_b.ask()  # B's next trial: A's is stale, so FAIL
    with caplog.at_level("WARNING", logger="csc8607.study"):
        study_a.tell(trial, 0.9)
        study_a.tell(study_a.ask(), 0.8)  # and A's sweep goes on
    assert f"trial {trial.number} was marked FAIL by another worker" in caplog.text
    states = [t.state.name for t in optuna.load_study(study_name="shared", storage=url).trials]
    assert states == ["FAIL", "RUNNING", "COMPLETE"]


def test_a_study_per_experiment(tmp_path: Path) -> None:
    """The default study is named after the data and the model; its identity (data, model, monitor, search space)
    decides whether a run may add trials to it."""
    from conftest import app_config
    from csc8607.study import experiment_identity, identity_differences

    def config(*overrides: str):  # composed as `python train.py -m experiment=optuna ...` composes it
        return app_config("experiment=optuna", *overrides, multirun=True)

    digits, uea = config(), config("data=uea", f"data.root={tmp_path}", "data.name=Basic", "model=cnn1d")
    assert (digits.hydra.sweeper.study_name, uea.hydra.sweeper.study_name) == ("digits-cnn", "uea-cnn1d")
    assert identity_differences(experiment_identity(digits), experiment_identity(config())) == []
    more_trials = config("hydra.sweeper.n_trials=2", "trainer.threads=1")  # a re-run adding trials: same study
    assert identity_differences(experiment_identity(digits), experiment_identity(more_trials)) == []
    other_space = config("model.width=choice(4, 8)")
    assert identity_differences(experiment_identity(digits), experiment_identity(other_space)) == [
        "space.model.width: None -> choice(4, 8)"]
    assert identity_differences(experiment_identity(digits), experiment_identity(config("trainer.monitor=val/loss",
                                "hydra.sweeper.direction=minimize"))) == [
        "monitor.direction: auto -> minimize", "monitor.metric: val/accuracy -> val/loss"]
