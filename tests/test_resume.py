"""Interrupted runs continue exactly: SIGKILL (from the last epoch) and SIGTERM (mid-epoch)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, job_dirs, read_json, run_cli
from csc8607 import checkpoint
from csc8607.data import BatchLoader, ImageData
from csc8607.data.digits import load_digits
from csc8607.engine import Engine, Interrupted, fit
from csc8607.models import ConvNet

SMALL = ["trainer.batch_size=16", "trainer.max_epochs=3", "model.width=8", "model.depth=1", "model.dropout=0.2"]


class SignalAt(BatchLoader):
    """The real loader, which sends this process a real SIGTERM after batch `at_batch` of epoch `at_epoch`."""

    at_epoch, at_batch = 2, 5

    def __iter__(self):
        for number, batch in enumerate(super().__iter__()):
            yield batch
            if self.epoch == self.at_epoch and number == self.at_batch:
                os.kill(os.getpid(), signal.SIGTERM)


def fresh(data: ImageData) -> tuple[torch.nn.Module, torch.optim.Optimizer, Engine]:
    torch.manual_seed(0)
    model = ConvNet(data.meta["input_shape"], 10, width=8, depth=1, dropout=0.3)
    return model, torch.optim.AdamW(model.parameters(), lr=3e-3), Engine("multiclass", 10, torch.device("cpu"))


def test_sigterm_mid_epoch_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    data = ImageData(load_digits, 0.15, 0.15, channels=1, augment={"crop_padding": 1})
    args = dict(max_epochs=3, monitor="val/accuracy", mode="max")

    def loader(cls=BatchLoader):
        return cls(data.splits["train"], 32, data.transform(train=True), shuffle=True, seed=1)

    model, optimizer, engine = fresh(data)
    torch.manual_seed(123)
    reference = fit(engine, model, optimizer, loader(), data.loader("val", 256), run_dir=tmp_path / "a", **args)

    model, optimizer, engine = fresh(data)
    torch.manual_seed(123)
    with pytest.raises(Interrupted) as stopped:
        fit(engine, model, optimizer, loader(SignalAt), data.loader("val", 256), run_dir=tmp_path / "b", **args)
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    saved = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert saved["epoch"] == 1 and saved["progress"]["batches_done"] == SignalAt.at_batch + 2  # the batch in flight completes
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    model, optimizer, engine = fresh(data)
    torch.manual_seed(999)  # the checkpoint's RNG state must win over whatever the process did since
    resumed = fit(engine, model, optimizer, loader(), data.loader("val", 256), run_dir=tmp_path / "b", resume=saved,
                  **args)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]  # noqa: E731
    assert strip(resumed["history"]) == strip(reference["history"])


def test_preemption_signal_saves_the_partial_epoch_before_the_job_handler_requeues(tmp_path: Path) -> None:
    """SLURM's time-limit signal (USR2) in a submitit job: the loop stops at the batch boundary and saves
    last.ckpt with the partial epoch, and only then does the handler that awaited the signal (submitit's
    requeue-and-exit, here a stand-in that records what it finds and exits like it) run."""
    data = ImageData(load_digits, 0.15, 0.15, channels=1, augment={"crop_padding": 1})
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    found = []

    def requeue_and_exit(signum: int, _frame: object) -> None:
        found.append((signum, checkpoint.load(ckpt) if ckpt.exists() else None))
        raise SystemExit(-1)

    class UsrAt(SignalAt):
        def __iter__(self):
            for number, batch in enumerate(BatchLoader.__iter__(self)):
                yield batch
                if self.epoch == 1 and number == 3:
                    os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, requeue_and_exit)
    try:
        model, optimizer, engine = fresh(data)
        with pytest.raises(SystemExit):
            fit(engine, model, optimizer, UsrAt(data.splits["train"], 32, data.transform(train=True), shuffle=True,
                                                seed=1), data.loader("val", 256), max_epochs=2, run_dir=tmp_path)
        assert signal.getsignal(signal.SIGUSR2) is requeue_and_exit  # restored for the rest of the job
    finally:
        signal.signal(signal.SIGUSR2, previous)
    ((signum, saved),) = found
    assert signum == signal.SIGUSR2 and saved is not None
    assert saved["epoch"] == 0 and saved["progress"]["batches_done"] == 5 and saved["step"] == 5


def wait_for_epoch(run_root: Path, epoch: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for ckpt in run_root.glob("outputs/*/*/checkpoints/last.ckpt"):
            if torch.load(ckpt, weights_only=True)["epoch"] >= epoch:
                return
        time.sleep(0.05)
    raise AssertionError(f"no epoch {epoch} checkpoint (exit {proc.poll()})")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_cli_run_resumes_to_the_same_final_metrics(sig: int, tmp_path: Path) -> None:
    killed_root, reference_root = tmp_path / "killed", tmp_path / "reference"
    killed_root.mkdir()
    reference_root.mkdir()
    env = {**os.environ, "CSC8607_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *SMALL], cwd=killed_root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_epoch(killed_root, 1, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    (job,) = job_dirs(killed_root / "outputs")
    assert not (job / "metrics.json").exists()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert f"resume={job}" in stderr and stderr.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM")
    else:
        assert proc.returncode == -signal.SIGKILL
    run_cli("train.py", f"resume={job}", cwd=killed_root)
    run_cli("train.py", *SMALL, cwd=reference_root)
    (reference,) = job_dirs(reference_root / "outputs")
    resumed, expected = read_json(job / "metrics.json"), read_json(reference / "metrics.json")
    for key in ("final", "best", "test", "best_epoch"):
        assert resumed[key] == expected[key], key
    assert [row["val/loss"] for row in resumed["history"]] == [row["val/loss"] for row in expected["history"]]


def test_resume_runs_the_saved_section_in_its_own_dir(tmp_path: Path) -> None:
    """`python train.py resume=<an M6 run>` (the hint printed on SIGTERM) continues that run as M6: same dir,
    then the export to artifacts/ — not a plain training job in a new dir."""
    small = ["model.width=4", "model.depth=1", "trainer.threads=1"]
    run_cli("train.py", "experiment=full", "trainer.max_epochs=1", *small, cwd=tmp_path)
    (job,) = job_dirs(tmp_path / "outputs")
    (job / "full.json").unlink()  # as if it had been stopped before its export
    run_cli("train.py", f"resume={job}", "trainer.max_epochs=2", cwd=tmp_path)
    (new,) = [d for d in job_dirs(tmp_path / "outputs") if d != job]  # Hydra's dir of the command: its log only
    assert not (new / "metrics.json").exists() and not (new / "checkpoints").exists()
    export = read_json(job / "full.json")
    assert export["epochs"] == 2 and len(read_json(job / "metrics.json")["history"]) == 2
    assert (tmp_path / "artifacts" / "best.ckpt").is_file()
