"""End to end through train.py and evaluate.py on the embedded digits dataset."""
from __future__ import annotations

import time

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import job_dirs, read_json, run_cli

EPOCH_TAGS = {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "val/f1", "lr"}


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def hparams_of(acc: EventAccumulator) -> dict:
    """The hparam values recorded in the run's session-start summary."""
    content = acc.PluginTagToContent("hparams")
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            out = {}
            for key, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                out[key] = getattr(value, kind)
            return out
    raise AssertionError("no HParams session in the run")


def test_default_run_writes_everything(trained_run: Path) -> None:
    metrics = read_json(trained_run / "metrics.json")
    sizes = metrics["meta"]["split_sizes"]
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    majority_rate = 28 / 270  # the largest digit class has 28 of the 270 stratified val images
    assert metrics["best"]["val/accuracy"] >= 0.95 > majority_rate
    assert metrics["best_value"] == metrics["best"]["val/accuracy"]
    assert len(metrics["history"]) == 15 and metrics["params"] > 0
    acc = events(trained_run)
    tags = set(acc.Tags()["scalars"])
    assert EPOCH_TAGS <= tags
    assert len(acc.Scalars("val/accuracy")) == 15
    assert {"test/accuracy", "hparam/best_val_accuracy", "hparam/final_val_accuracy"} <= tags
    hp = hparams_of(acc)
    assert hp["optim.lr"] == pytest.approx(3e-3) and hp["model.width"] == 32 and hp["run_name"] == "default"
    for name in ("best.ckpt", "last.ckpt"):
        state = torch.load(trained_run / "checkpoints" / name, weights_only=True)
        assert state["format"] == "csc8607-checkpoint-v1"
        assert state["config"]["optim"]["lr"] == pytest.approx(3e-3)
        assert state["meta"]["num_classes"] == 10 and "torch" in state["versions"]
        assert {"model", "optimizer", "epoch", "step", "best_value"} <= set(state)
    last = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(trained_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert last["epoch"] == 15 and best["epoch"] == metrics["best_epoch"]
    assert best["best_value"] == pytest.approx(metrics["best_value"])


def test_evaluate_reproduces_training_test_metrics(trained_run: Path, tmp_path: Path) -> None:
    proc = run_cli("evaluate.py", f"ckpt={trained_run / 'checkpoints' / 'best.ckpt'}", cwd=tmp_path)
    assert "accuracy" in proc.stdout and "gap val - test" in proc.stdout
    (eval_dir,) = job_dirs(tmp_path / "outputs")
    result = read_json(eval_dir / "test_metrics.json")
    trained = read_json(trained_run / "metrics.json")["test"]
    for key in ("loss", "accuracy", "f1"):
        assert result["metrics"][key] == pytest.approx(trained[key], abs=1e-6)
    matrix = torch.tensor(result["metrics"]["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 270
    assert len(result["metrics"]["per_class_accuracy"]) == 10
    assert result["val_minus_test"] == pytest.approx(trained_run and result["val_from_checkpoint"]["val/accuracy"]
                                                      - result["metrics"]["accuracy"])
    assert "test/accuracy" in events(eval_dir).Tags()["scalars"]


def test_evaluate_other_split_with_override(trained_run: Path, tmp_path: Path) -> None:
    run_cli("evaluate.py", f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}", "split=val",
            "trainer.eval_batch_size=7", cwd=tmp_path)
    (eval_dir,) = job_dirs(tmp_path / "outputs")
    result = read_json(eval_dir / "val_metrics.json")
    assert result["epoch"] == 15 and sum(map(sum, result["metrics"]["confusion_matrix"])) == 270


def test_evaluate_a_run_dir_means_its_best_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    proc = run_cli("evaluate.py", f"ckpt={trained_run}", "split=val", cwd=tmp_path)
    (eval_dir,) = job_dirs(tmp_path / "outputs")
    result = read_json(eval_dir / "val_metrics.json")
    assert result["checkpoint"] == str((trained_run / "checkpoints" / "best.ckpt").resolve())
    assert result["epoch"] == read_json(trained_run / "metrics.json")["best_epoch"]
    assert "gap val - val" not in proc.stdout + proc.stderr  # no gap of a split with itself
    assert f"written: {eval_dir / 'val_metrics.json'}" in proc.stdout  # where to find it (train.py says its dir)


def test_multirun_grid_gives_one_complete_job_per_combination(tmp_path: Path) -> None:
    run_cli("train.py", "-m", "optim.lr=1e-3,3e-3", "model.width=8,16", "trainer.max_epochs=2", cwd=tmp_path)
    jobs = job_dirs(tmp_path / "multirun")
    assert len(jobs) == 4
    names = sorted(job.name.split("_", 1)[1] for job in jobs)
    assert names == sorted(f"model.width={w},optim.lr={lr},trainer.max_epochs=2" for w in (8, 16)
                           for lr in ("0.001", "0.003"))
    seen = set()
    for job in jobs:
        metrics = read_json(job / "metrics.json")
        assert len(metrics["history"]) == 2 and metrics["run_name"] == job.name.split("_", 1)[1]
        assert (job / "checkpoints" / "best.ckpt").is_file() and (job / "checkpoints" / "last.ckpt").is_file()
        assert EPOCH_TAGS <= set(events(job).Tags()["scalars"])
        seen.add((metrics["meta"]["split_sizes"]["train"], read_json(job / "metrics.json")["params"]))
    assert len(seen) == 2  # two widths, two parameter counts, same data


def test_two_sweeps_started_together_get_different_dirs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import REPO

    cmd = [sys.executable, str(REPO / "train.py"), "--cfg", "hydra", "--resolve", "--package", "hydra.sweep"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    dirs = [next(line for line in out.splitlines() if "dir:" in line) for out in outs]
    assert dirs[0] != dirs[1]


def test_first_batch_time_counts_from_the_script_not_its_launcher(tmp_path: Path) -> None:
    """A wrapper that waits, then execs python (bash -c, job scripts) keeps its process: the start-up time in
    metrics.json still counts from the script's start only."""
    start = time.time()
    run_cli("train.py", "experiment=smoke", "trainer.threads=1", cwd=tmp_path,
            prefix=("bash", "-c", 'sleep 4 && exec "$0" "$@"'))
    elapsed = time.time() - start
    (job,) = job_dirs(tmp_path / "outputs")
    first_batch = read_json(job / "metrics.json")["first_batch_after_s"]
    assert 0 < first_batch < elapsed - 4
