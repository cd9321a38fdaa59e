"""Scale-out on the real engines: sweeps through a real SLURM (sbatch, time limits, requeue, scancel) and an
Optuna study on a real PostgreSQL server filled by SLURM jobs. The services are started once for this module
(tests/cluster.py) and stopped after it. Where their binaries are missing the tests are skipped, unless
CSC8607_CLUSTER_TESTS=required (as `.ci/run` sets it, after installing them): then they fail.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

import optuna
import pytest

from cluster import Services, missing_binaries, start_munge, start_postgres, start_slurm
from conftest import REPO, job_dirs, read_json, run_cli


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    missing = missing_binaries()
    why = (f"needs {', '.join(missing)} (apt-get install slurm-wlm slurmdbd munge mariadb-server postgresql)"
           if missing else None if os.geteuid() == 0 else "needs root (slurmd runs jobs as root here)")
    if why:
        if os.environ.get("CSC8607_CLUSTER_TESTS") == "required":
            pytest.fail(f"cluster lane required but {why}")
        pytest.skip(why)
    services = Services(tmp_path_factory.mktemp("cluster"))
    try:
        start_munge(services)
        start_slurm(services)
        start_postgres(services)
        yield services
    finally:
        services.stop()


def readme_slurm_command(marker: str = "slurm-sweep") -> list[str]:
    """A command of README's cluster section (the ```bash block after `<!-- marker -->`)."""
    text = (REPO / "README.md").read_text()
    block = text.split(f"<!-- {marker} -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = shlex.split([line for line in block.replace("\\\n", " ").splitlines() if line.strip()][0])
    assert command[:2] == ["python", "train.py"]
    return command[2:]


def wait_until(check, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def option(args: list[str], key: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
    return value


def epochs_outlasting(seconds: float, args: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Enough epochs of `python train.py args` that a job of it surely still trains `seconds` after it started,
    on this machine (SLURM's node): a short run of the same config times its start-up and an epoch here."""
    short = [re.sub(r"^trainer\.max_epochs=.*", "trainer.max_epochs=6", a) for a in args]
    subprocess.run([sys.executable, str(REPO / "train.py"), *short, f"hydra.sweep.dir={cwd}"], env=env, check=True,
                   capture_output=True, timeout=300)
    (job,) = job_dirs(cwd)
    timing = read_json(job / "metrics.json")
    epoch_s = sorted(row["epoch_time_s"] for row in timing["history"])[3]  # the median, not the first (warm-up)
    # 1.4: a margin for a machine that speeds up (other load ending); half the start-up measured here counts as spent
    return math.ceil(1.4 * (seconds - timing["first_batch_after_s"] / 2) / epoch_s)


def start_readme_optuna(cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """README's Optuna study whose trials are SLURM jobs, started in `cwd` (its sqlite study lands there)."""
    cwd.mkdir()
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *readme_slurm_command("slurm-optuna")], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def check_readme_optuna(run: subprocess.Popen, cwd: Path) -> None:
    """Its two trials ran as two SLURM jobs, each trained in its own dir and was told COMPLETE to the study."""
    assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
    trials = optuna.load_study(study_name="digits-cnn", storage=f"sqlite:///{cwd / 'optuna.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    (sweep,) = (cwd / "multirun").glob("*/*")
    assert len(list(sweep.glob(".submitit/*/*_submitted.pkl"))) == 2  # each trial a SLURM job
    assert len(job_dirs(sweep)) == 2 and all((job / "metrics.json").exists() for job in job_dirs(sweep))


def test_readme_slurm_sweep_jobs_requeue_at_the_time_limit_and_match_an_uninterrupted_run(
        cluster: Services, tmp_path: Path) -> None:
    """README's command through sbatch: each job a SLURM job in its own dir; the failing one recorded. The other
    trains longer than its 1-minute limit: SLURM's own timer sends it USR2 (`--signal`, nothing here signals it),
    the loop saves the partial epoch in last.ckpt, submitit requeues the job, and the requeued job continues from
    that very batch, ending with the metrics of an uninterrupted run with the same seed."""
    args = readme_slurm_command()
    env = {**os.environ, **cluster.env, "PYTHONPATH": str(REPO), "CSC8607_CACHE": str(tmp_path / "cache")}
    reference_args = [a for a in args if not a.startswith(("hydra/launcher", "hydra.launcher"))]
    reference_args = [re.sub(r"^model\.width=.*", "model.width=4", a) for a in reference_args]
    # SLURM checks time limits every 30 s and signals at the first check within signal_delay_s + 30 s of the
    # limit: training that outlasts limit - signal_delay_s is sure to get the signal, whatever the check's phase
    limit_s = 60 * int(option(args, "hydra.launcher.timeout_min"))
    signal_by = limit_s - int(option(args, "hydra.launcher.signal_delay_s"))
    epochs = epochs_outlasting(signal_by, reference_args, tmp_path / "timing", env)
    args, reference_args = ([re.sub(r"^trainer\.max_epochs=.*", f"trainer.max_epochs={epochs}", a) for a in a_list]
                            for a_list in (args, reference_args))
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    # the uninterrupted run, here, while SLURM runs the sweep
    reference = subprocess.Popen([sys.executable, str(REPO / "train.py"), *reference_args], cwd=reference_dir,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    study_run = start_readme_optuna(tmp_path / "study", env)  # meanwhile, on the node's other CPU
    sweep_log = tmp_path / "sweep.log"
    sweep_run = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=env,
                               stdout=sweep_log.open("w"), stderr=subprocess.STDOUT, timeout=600)
    assert sweep_run.returncode == 0, sweep_log.read_text()[-3000:]
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]
    check_readme_optuna(study_run, tmp_path / "study")

    sweep = next((tmp_path / "multirun").glob("*/*"))
    ok, failed = sorted(job_dirs(sweep), key=lambda j: "width=0" in j.name)
    assert "model.width=0 must be at least 1" in read_json(failed / "failed.json")["error"]
    assert len(list((sweep / ".submitit").glob("*/*_submitted.pkl"))) == 2  # two SLURM jobs (an array)
    logs = {p.name: "".join(f.read_text() for f in sorted(p.glob("*_log.*"))) for p in (sweep / ".submitit").iterdir()}
    (job_id,) = [job for job, text in logs.items() if "Requeued job" in text]  # submitit's log (out, then err)
    train_log = (ok / "train.log").read_text()
    stopped = re.search(r"SIGUSR2 in epoch (\d+) after batch (\d+) \(step \d+\): last.ckpt saved", train_log)
    assert stopped and "Caught signal SIGUSR2" in logs[job_id], (train_log[-2000:], logs[job_id][-2000:])
    started, caught = (datetime.strptime(re.search(rf"submitit \w+ \(([^)]+)\) - {what}", logs[job_id])[1],
                                         "%Y-%m-%d %H:%M:%S,%f") for what in ("Starting with", "Caught signal"))
    assert signal_by - 30 - 5 <= (caught - started).total_seconds() <= signal_by  # SLURM's time-limit signal
    epoch, batch = int(stopped[1]), int(stopped[2])
    assert f"after epoch {epoch - 1} and {batch} batches of epoch {epoch}" in train_log  # from that very batch
    restarts = re.search(r"Restarts=(\d+)", cluster.run("scontrol", "show", "job", job_id).stdout)
    assert restarts and int(restarts[1]) >= 1  # SLURM requeued it (submitit's scontrol requeue)
    resumed, (uninterrupted,) = read_json(ok / "metrics.json"), job_dirs(reference_dir / "multirun")
    uninterrupted = read_json(uninterrupted / "metrics.json")
    metrics = lambda m: [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in m["history"]]  # noqa: E731
    assert metrics(resumed) == metrics(uninterrupted) and resumed["best_value"] == uninterrupted["best_value"]
    summary = (sweep / "summary.md").read_text()
    assert "| ok |" in summary and "| failed |" in summary and "model.width=0 must be at least 1" in summary


def test_unknown_partition_is_one_line(cluster: Services, tmp_path: Path) -> None:
    proc = run_cli("train.py", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "model.width=4",
                   cwd=tmp_path, env=cluster.env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: hydra.launcher.partition=gpu does not exist on this cluster (partitions: debug)"]
    assert not list(tmp_path.glob("multirun/*/*/*/.hydra"))


def sbatch(cluster: Services, cwd: Path, *args: str) -> str:
    """Submit `python train.py args` as a SLURM batch job (it inherits this environment); returns its job id."""
    command = shlex.join([sys.executable, str(REPO / "train.py"), *args])
    env = {**os.environ, **cluster.env, "PYTHONPATH": str(REPO), "CSC8607_CACHE": str(cwd / "cache")}
    out = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", "--mem=1G", f"--chdir={cwd}",
                          f"--output={cwd}/slurm-%j.out", "--wrap", command], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def finished(cluster: Services, job: str) -> bool:
    return cluster.run("squeue", "--noheader", "-j", job).stdout.strip() == ""


def test_two_slurm_workers_fill_one_postgresql_study_and_a_killed_one_fails_its_trial(
        cluster: Services, tmp_path: Path) -> None:
    """Two SLURM jobs run the Optuna preset on one PostgreSQL study; one is SIGKILLed mid-trial. Its trial stops
    beating and the other worker, still running, marks it FAIL (Optuna's heartbeat, not a pid on this host);
    every trial is counted once; the killed trial's run resumes; report.py's M8 reads that storage."""
    study = [f"hydra.sweeper.storage={cluster.postgres_url}", "hydra.sweeper.study_name=shared",
             "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3", "experiment=optuna",
             "model.width=choice(4, 8)", "model.depth=1", "trainer.threads=1"]
    doomed = sbatch(cluster, tmp_path, *study, "hydra.sweeper.n_trials=1", "trainer.max_epochs=500",
                    f"hydra.sweep.dir={tmp_path}/multirun/doomed")
    survivor = sbatch(cluster, tmp_path, *study, "hydra.sweeper.n_trials=4", "trainer.max_epochs=20",
                      f"hydra.sweep.dir={tmp_path}/multirun/survivor")
    wait_until(lambda: list((tmp_path / "multirun" / "doomed").glob("*/checkpoints/last.ckpt")))
    assert cluster.run("scancel", "--signal=KILL", "--full", doomed).returncode == 0
    wait_until(lambda: finished(cluster, doomed) and finished(cluster, survivor))

    trials = optuna.load_study(study_name="shared", storage=cluster.postgres_url).trials
    (killed,) = job_dirs(tmp_path / "multirun" / "doomed")
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE"] * 4 + ["FAIL"], (states, (tmp_path / f"slurm-{survivor}.out").read_text()[-3000:])
    assert len({t.number for t in trials}) == 5 and len(job_dirs(tmp_path / "multirun")) == 5
    assert not (killed / "metrics.json").exists()  # it was killed mid-trial: the FAIL is the heartbeat's doing
    # what scancel left is resumable: one more epoch from its last.ckpt, in its own dir
    done = max(int(e) for e in re.findall(r"epoch (\d+)/500", (killed / "train.log").read_text()))
    run_cli("train.py", f"resume='{killed}'", f"trainer.max_epochs={done + 1}", cwd=tmp_path)
    assert read_json(killed / "metrics.json")["epochs"] == done + 1

    report = run_cli("report.py", cwd=tmp_path, check=False)
    m8 = (tmp_path / "report" / "report.md").read_text() if (tmp_path / "report" / "report.md").exists() else ""
    assert "terminés = 4, en échec = 1" in m8, report.stderr[-2000:]
    assert "postgresql://optuna@127.0.0.1" in m8
