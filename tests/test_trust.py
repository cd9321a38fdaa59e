"""A checkpoint or run dir never chooses the code that runs: every `_target_` a saved config names must be declared
by the user's own config files (conf/), whatever reads it (evaluate.py, resume=, compare, report.py)."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import REPO, job_dirs, run_cli
from csc8607.errors import UserError
from csc8607.sections import run_section
from csc8607.sections.evaluation import evaluate_checkpoint


class Payload:
    """Unpickling this creates `marker`: what a pickle-reading target would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def attacks(tmp: Path) -> dict[str, tuple[str, dict, Path]]:
    """name -> (config key replaced, its new node, the file that must not appear or change)."""
    pickled = tmp / "payload.pkl"
    pickled.write_bytes(pickle.dumps(Payload(tmp / "unpickled")))
    victim = tmp / "victim.txt"
    victim.write_text("the user's file")
    pth = tmp / "site-packages" / "evil.pth"
    return {
        "write_text": ("data", {"_target_": "csc8607.checkpoint.write_text", "path": str(pth), "text": "import os"}, pth),
        "numpy.load": ("model", {"_target_": "numpy.load", "file": str(pickled), "allow_pickle": True}, tmp / "unpickled"),
        "pandas.read_pickle": ("data.source", {"_target_": "pandas.read_pickle", "filepath_or_buffer": str(pickled)},
                               tmp / "unpickled"),
        "joblib.load": ("optim", {"_target_": "torch.optim.AdamW", "lr": 1e-3,  # allowed, but its _args_ are not
                                  "_args_": [{"_target_": "joblib.load", "filename": str(pickled)}]}, tmp / "unpickled"),
        "builtins.open": ("scheduler", {"_target_": "builtins.open", "file": str(victim), "mode": "w"}, victim),
        "Path.touch": ("data", {"_target_": "pathlib.Path.touch", "_args_": [str(tmp / "touched")]}, tmp / "touched"),
    }


def tamper(source: Path, target: Path, key: str, node: dict) -> Path:
    state = torch.load(source, weights_only=True)
    parent = state["config"]
    *path, last = key.split(".")
    for part in path:
        parent = parent[part]
    parent[last] = node
    torch.save(state, target)
    return target


def untouched(tmp: Path, evidence: Path) -> bool:
    if evidence.name == "victim.txt":
        return evidence.read_text() == "the user's file"
    return not evidence.exists() and not (tmp / "unpickled").exists()


def composed(config: str, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name=config, overrides=[f"paths.root={REPO}", *overrides])


NAMES = ["write_text", "numpy.load", "pandas.read_pickle", "joblib.load", "builtins.open", "Path.touch"]


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_refuses_a_checkpoint_naming_undeclared_code(name: str, trained_run: Path, tmp_path: Path) -> None:
    key, node, evidence = attacks(tmp_path)[name]
    evil = tamper(trained_run / "checkpoints" / "best.ckpt", tmp_path / "evil.ckpt", key, node)
    with pytest.raises(UserError, match=rf"{key.split('.')[0]}.*is not a callable declared in conf/"):
        evaluate_checkpoint(composed("eval", f"ckpt={evil}"), [f"ckpt={evil}"], tmp_path / "out")
    assert untouched(tmp_path, evidence)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", NAMES)
def test_resume_refuses_a_checkpoint_naming_undeclared_code(name: str, trained_run: Path, tmp_path: Path) -> None:
    key, node, evidence = attacks(tmp_path)[name]
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    tamper(run / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt", key, node)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="is not a callable declared in conf/"):
        run_section(composed("config", f"resume={run}"), tmp_path / "new")
    assert untouched(tmp_path, evidence)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_cli_refusals_are_one_line_and_a_target_typed_by_the_user_is_built(trained_run: Path, tmp_path: Path) -> None:
    evil = tamper(trained_run / "checkpoints" / "best.ckpt", tmp_path / "evil.ckpt", "data",
                  {"_target_": "pathlib.Path.touch", "_args_": [str(tmp_path / "touched")]})
    proc = run_cli("evaluate.py", f"ckpt={evil}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and not (tmp_path / "touched").exists()
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "data._target_='pathlib.Path.touch'" in proc.stderr
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "last.ckpt").unlink()
    shutil.copyfile(evil, run / "checkpoints" / "last.ckpt")
    metrics = (run / "metrics.json").read_bytes()
    proc = run_cli("train.py", f"resume={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "is not a callable declared in conf/" in proc.stderr
    assert not (tmp_path / "touched").exists() and (run / "metrics.json").read_bytes() == metrics
    # the user's own choice on the command line is theirs to make: the saved data target is replaced by it
    fine = tamper(trained_run / "checkpoints" / "best.ckpt", tmp_path / "fine.ckpt", "data._target_", "numpy.load")
    proc = run_cli("evaluate.py", f"ckpt={fine}", "data._target_=csc8607.data.ImageData", "split=val", cwd=tmp_path)
    assert "val metrics" in proc.stdout


def test_compare_and_report_build_nothing_from_run_dirs(trained_run: Path, tmp_path: Path) -> None:
    """compare and report.py read run dirs as data: a tampered .hydra/config.yaml runs nothing."""
    run = tmp_path / "outputs" / "2026-01-01" / "00-00-00"
    shutil.copytree(trained_run, run)
    config = run / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("_target_: csc8607.models.ConvNet",
                                                 f"_target_: pathlib.Path.touch\n  _args_: [{tmp_path / 'touched'}]"))
    run_cli("train.py", "experiment=compare", f"compare.runs={run}", "compare.by=[lr]", cwd=tmp_path)
    run_cli("report.py", cwd=tmp_path)
    assert not (tmp_path / "touched").exists() and (tmp_path / "report" / "report.md").is_file()
    assert len(job_dirs(tmp_path / "outputs")) == 2
