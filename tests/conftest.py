"""Shared helpers: run the real command-line entry points in a scratch directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(script: str, *args: str, cwd: Path, check: bool = True, timeout: int = 600,
            env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `python <repo>/<script> args...` with `cwd` as working dir (so outputs/ and multirun/ land there).

    `env` adds to (or replaces in) the environment the command gets; `prefix` is a wrapper command that
    receives the python command line as its arguments.
    """
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(CSC8607_CACHE=str(cwd / "cache"), PYTHONUNBUFFERED="1", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    # launcher subprocesses (submitit, joblib) import csc8607 by name: make it this checkout's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    proc = subprocess.run([*prefix, sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def app_config(*overrides: str, multirun: bool = False):
    """The config `python train.py [-m] overrides...` composes, with its `hydra` node, set as the running app's
    (so that `${hydra:...}` in it and in recorded job configs resolves, as inside train.py)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = GlobalHydra.instance().config_loader().load_configuration(
            "config", list(overrides), run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN)
    HydraConfig.instance().set_config(cfg)
    return cfg


def job_dirs(root: Path) -> list[Path]:
    """Hydra job dirs (those holding .hydra/) below `root`."""
    return sorted(p.parent for p in root.rglob(".hydra"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python train.py` exactly as the README runs it (embedded default): its job dir."""
    cwd = tmp_path_factory.mktemp("default_run")
    run_cli("train.py", cwd=cwd)
    (job,) = job_dirs(cwd / "outputs")
    return job
