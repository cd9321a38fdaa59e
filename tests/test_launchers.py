"""Sweeps through the launchers a cluster uses: submitit (locally, as on SLURM) and joblib."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import REPO, job_dirs, read_json, run_cli

TINY = ["model.width=4,8", "model.depth=1", "trainer.max_epochs=1"]


@pytest.mark.parametrize("launcher", ["local", "parallel"])
def test_sweep_through_launcher_completes_every_job(launcher: str, tmp_path: Path) -> None:
    run_cli("train.py", "-m", f"hydra/launcher={launcher}", *TINY, cwd=tmp_path)
    jobs = job_dirs(tmp_path / "multirun")
    assert len(jobs) == 2
    params = sorted(read_json(job / "metrics.json")["params"] for job in jobs)
    assert params[0] < params[1]  # width 4 and width 8: each job ran its own override
    for job in jobs:
        assert (job / "checkpoints" / "best.ckpt").is_file() and (job / "tb").is_dir()
    if launcher == "local":
        assert list((tmp_path / "multirun").rglob(".submitit"))


def test_slurm_preset_composes_with_cluster_settings() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 240
