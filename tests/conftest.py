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
    env.update(CSC8607_CACHE=str(cwd / "cache"), PYTHONUNBUFFERED="1", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
               HF_HOME=str(cwd / "hf"))  # the HF `datasets` arrow cache stays in the test's dir, not ~/.cache
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


@pytest.fixture(scope="session", autouse=True)
def hf_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """HF `datasets` keeps an arrow copy of every local file it loads: in the tests' tmp dir, not ~/.cache
    (set before any test imports `datasets`, which reads it once)."""
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
    os.environ.pop("HF_DATASETS_CACHE", None)


@pytest.fixture(autouse=True)
def no_hydra_config_left():
    """Tests that compose a config as an app does (app_config, test_bad_input.composed) set Hydra's global config;
    the next test must not see it (resume= reads the command line's overrides from it)."""
    yield
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None  # type: ignore[assignment]


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


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`python <script> args` run in this process from `tmp_path` (Hydra multirun and Optuna included): the
    command line's code path without a new interpreter; what the scripts change in the process is put back."""
    import logging
    import runpy
    import signal

    import torch
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("CSC8607_STUDY_DIRECTION", "")  # what an Optuna sweep sets for its trials is undone after
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    path = list(sys.path)  # a student's module dir is added by the model's import
    monkeypatch.setattr(sys, "path", list(path))
    sigint, handlers, level = signal.getsignal(signal.SIGINT), logging.root.handlers[:], logging.root.level
    threads, hydra_config = torch.get_num_threads(), HydraConfig.instance().cfg  # Hydra leaves the last job's set

    def forget_test_modules() -> None:
        """Drop the modules imported from the test's dir (a student's model file), as a new process would."""
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
                del sys.modules[name]

    def run(script: str, *args: str, exit_code: int = 0, cwd: Path = tmp_path) -> str:
        """Run the script from `cwd` as a fresh process would import the student's module; its stderr."""
        sys.argv, sys.path[:] = [script, *args], path
        forget_test_modules()
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            runpy.run_path(str(REPO / script), run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err
        assert code == exit_code, f"{script} {' '.join(args)} exited {code}: {err[-3000:]}"
        return err

    yield run
    signal.signal(signal.SIGINT, sigint)
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
    torch.set_num_threads(threads)
    HydraConfig.instance().cfg = hydra_config
    forget_test_modules()
