"""Bad input: a clear message, a non-zero exit, and no earlier result touched."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from conftest import REPO, read_json, run_cli
from csc8607 import checkpoint
from csc8607.config import with_overrides
from csc8607.errors import UserError, exit_on_user_error
from csc8607.sections import run_section
from csc8607.sections.evaluation import evaluate_checkpoint

CASES = [
    # (args, expected exit code, text the message must contain)
    (["optim.lr=0"], 2, "optim.lr=0 must be > 0"),
    (["optim.lr=-1e-3"], 2, "must be > 0"),
    (["optim.lr=inf"], 2, "optim.lr=inf must be > 0 and finite"),  # it trained until 'loss became nan'
    (["optim.weight_decay=nan"], 2, "optim.weight_decay=nan must be >= 0 and finite"),
    (["trainer.batch_size=0"], 2, "trainer.batch_size=0 must be a whole number >= 1"),
    (["trainer.max_epochs=0"], 2, "trainer.max_epochs=0"),
    (["trainer.monitor_mode=up"], 2, "monitor_mode=up must be auto, max or min"),
    (["optim.lr=fast"], 2, "optim.lr='fast' must be a number"),
    (["trainer.precision=8"], 2, "trainer.precision=8 is not one of"),
    (["trainer.device=cuda"], 2, "CUDA is not available"),
    (["model.width=0", "trainer.max_epochs=1"], 2, "model.width=0 must be at least 1"),
    (["+model.widht=3"], 2, "+model.widht is a key no config defines and would be ignored (did you mean model.width?)"),
    (["model=resnet", "model.blocks=[]"], 2, "model.blocks=[] lists no stage"),
    (["model=torchvision", "model.name=resnet1"], 2, "model.name=resnet1 is not a torchvision model (did you mean"),
    (["data.val_fraction=1.5"], 2, "data.val_fraction=1.5 must be between 0 and 1"),
    (["trainer.monitor=val/auc", "trainer.max_epochs=1"], 2, "trainer.monitor=val/auc is not a logged metric"),
    (["model=resnet999"], 1, "Could not find 'model/resnet999'"),
    (["experiment=nope"], 1, "Could not find 'experiment/nope'"),
    (["trainer.max_epoch=3"], 1, "Key 'max_epoch' is not in struct"),
    (["+trainer.max_epoch=3"], 2, "trainer.max_epoch is not a trainer setting and would be ignored (did you mean "
                                  "trainer.max_epochs?)"),
    (["experiment=grid", "model.width="], 2, "sweep axis model.width has an empty value"),
    (["experiment=grid", "optim.lr=-1.0", "optim.weight_decay=0.0", "model.width=4", "model.depth=1"], 2,
     "all 1 jobs of the sweep failed (first error: UserError: optim.lr=-1.0 must be > 0 and finite)"),
    (["experiment=optuna", "hydra.sweeper.storage=null", "hydra.sweeper.n_trials=1", "model.width=0", "model.depth=1"],
     2, "all 1 jobs of the sweep failed (first error: UserError: cannot build model"),  # an in-memory study
    (["section=report"], 2, "section=report is not one of"),
    (["experiment=sanity", "++sanity.tolerance=1e-9", "model.width=4", "model.depth=1"], 2,
     "widen the check with ++sanity.tolerance=..."),
    (["hydra.run.dir=/dev/null/run"], 2, "cannot write the output dir /dev/null/run (/dev/null is not a directory)"),
    (["-m", "hydra.sweep.dir=/dev/null/sweep", "model.width=4,8"], 2, "cannot write the output dir /dev/null/sweep"),
]


@pytest.mark.parametrize("args,code,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_train_bad_input(args: list[str], code: int, message: str, in_process) -> None:
    """train.py's entry point (in this process): the exit code, the message, no traceback, one `error:` line."""
    err = in_process("train.py", *args, exit_code=code)
    assert message in err
    assert "Traceback" not in err
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("error: ")
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_a_sweep_refused_before_any_job_leaves_nothing(in_process, tmp_path: Path) -> None:
    """A grid whose every job is refused (a monitor contradiction, a misspelt key) exits 2 in one line and leaves
    no sweep dir (it left one holding only multirun.yaml); so does an Optuna sweep refused by its sweeper."""
    for args, message in [(["experiment=grid", "trainer.monitor=val/loss", "trainer.monitor_mode=max"],
                           "trainer.monitor_mode=max contradicts trainer.monitor=val/loss"),
                          (["-m", "model.width=4,8", "+trainer.max_epoch=3"], "did you mean trainer.max_epochs?"),
                          (["experiment=optuna", "hydra.sweeper.direction=sideways"],
                           "hydra.sweeper.direction=sideways must be auto, maximize or minimize")]:
        err = in_process("train.py", *args, "trainer.max_epochs=1", exit_code=2)
        assert message in err and err.count("error:") == 1, (args, err)
        assert list(tmp_path.iterdir()) == [], args


def test_bad_checkpoints_leave_the_run_untouched(trained_run: Path, tmp_path: Path, in_process) -> None:
    """evaluate.py and resume= (through their entry points, in this process) refuse each bad checkpoint in one
    line, exit 2, and the run is left as it was."""
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()}
    cases = [
        ([f"ckpt={tmp_path / 'missing.ckpt'}"], "does not exist"),
        ([f"ckpt={trained_run / 'metrics.json'}"], "corrupt, truncated or not a PyTorch file"),
        ([f"ckpt={ckpt}", "model.width=16"], "config differs (model.width: 32 -> 16)"),
        ([f"ckpt={ckpt}", "split=holdout"], "split=holdout must be train, val or test"),
        ([], "Missing mandatory value: ckpt"),
        ([f"ckpt={tmp_path / 'code.ckpt'}"], "refused by the safe loader"),
    ]
    torch.save({"format": "csc8607-checkpoint-v1", "model": {}, "hook": print}, tmp_path / "code.ckpt")
    for args, message in cases:
        err = in_process("evaluate.py", *args, exit_code=2)
        assert message in err and "Traceback" not in err, (args, err[-1500:])
    for args, message in [([f"resume={tmp_path / 'nowhere'}"], "does not exist"),
                          ([f"resume={trained_run}", "model.width=16", "trainer.max_epochs=16"], "does not match the model")]:
        err = in_process("train.py", *args, exit_code=2)
        assert message in err, (args, err[-1500:])
    after = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()}
    assert after == before


def composed(config: str, overrides: list[str]) -> DictConfig:
    """The config a command line composes (conf/ as train.py/evaluate.py see it), with Hydra's runtime set."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def refusal(task, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run `task` as the scripts do (exit_on_user_error): its exit code and its stderr."""
    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(task)()
    return stop.value.code, capsys.readouterr().err


# in process (the scripts' path from composition to the error line is the one tested above): (overrides, message)
REFUSED = [
    (["trainer.grad_clip=abc"], "trainer.grad_clip=abc must be a number > 0, or null"),
    (["trainer.threads=-1"], "trainer.threads=-1 must be a whole number >= 1"),
    (["trainer.threads=abc"], "trainer.threads=abc must be a whole number >= 1"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 must be a whole number >= 1"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size=0 must be a whole number >= 1"),
    (["scheduler=cosine", "scheduler.T_max=0"], "scheduler.T_max=0 must be a whole number >= 1"),
    (["scheduler=step", "scheduler.gamma=abc"], "scheduler.gamma='abc' must be a number >= 0"),
    (["trainer.channels_last=abc"], "trainer.channels_last=abc must be true or false or auto"),
    (["seed=100000000000000000000000"], "seed=100000000000000000000000 must be a whole number in [0, 2**32)"),
    (["seed=-1"], "seed=-1 must be a whole number in [0, 2**32)"),
    (["trainer.device=meta"], "trainer.device=meta is not supported"),
    (["trainer.device=xpu"], "trainer.device=xpu is not supported"),
    (["~optim"], "optim is missing from the config (removed with ~?): choose one with optim=<name>"),
    (["~data"], "data is missing from the config"),
    (["~model._target_"], "model._target_ is missing from the config"),
    (["optim.lr=${nope.x}"], "config: Interpolation key 'nope.x' not found"),
    (["data.augment.crop_padding=abc"], "data.augment.crop_padding='abc' must be a whole number >= 0"),
    (["data.augment.hflip=maybe"], "data.augment.hflip='maybe' must be true or false"),
    (["+max_epochs=3"], "+max_epochs is a key no config defines and would be ignored (did you mean "
                        "trainer.max_epochs?)"),
    (["+data.normalize.meen=[0.5]"], "+data.normalize.meen is a key no config defines and would be ignored (did you "
                                     "mean data.normalize.mean?)"),
    (["trainer.monitor=val/loss", "trainer.monitor_mode=max"], "trainer.monitor_mode=max contradicts "
                                                                "trainer.monitor=val/loss"),
    (["trainer.monitor=val/accuracy", "trainer.monitor_mode=min"], "use monitor_mode=max or auto"),
    (["experiment=optuna", "trainer.monitor=val/loss", "hydra.sweeper.direction=maximize"],
     "hydra.sweeper.direction=maximize contradicts trainer.monitor=val/loss (monitor_mode min)"),
    (["experiment=optuna", "data.task=regression", "hydra.sweeper.direction=maximize"],
     "hydra.sweeper.direction=maximize contradicts trainer.monitor=val/rmse (monitor_mode min): set "
     "hydra.sweeper.direction=minimize"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=[" ".join(c[0]) for c in REFUSED])
def test_refused_in_one_line(overrides: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache"))
    cfg = composed("config", [*overrides, "trainer.max_epochs=1"])
    code, err = refusal(lambda: run_section(cfg, tmp_path / "run"), capsys)
    assert code == 2 and message in err, err
    assert err.count("error:") == 1 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_plus_keys_that_a_config_defines_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`+` is how a key of another option or preset is added: those pass (and so do a callable's own arguments)."""
    from csc8607.config import check_added_keys

    for overrides in (["+data.decode_workers=0"], ["+optim.amsgrad=true"], ["++overfit.num_samples=8"]):
        check_added_keys(composed("config", overrides), overrides)
    with pytest.raises(UserError, match="did you mean optim.momentum"):
        check_added_keys(composed("config", ["+optim.momentun=0.9"]), ["+optim.momentun=0.9"])


def test_auto_monitor_mode_keeps_the_lowest_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.monitor=val/loss with monitor_mode left alone: best.ckpt is the epoch of the lowest val/loss."""
    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache"))
    cfg = composed("config", ["trainer.monitor=val/loss", "trainer.max_epochs=3", "model.width=4", "model.depth=1",
                              "optim.lr=0.05", "trainer.threads=1", "trainer.test_after_fit=false"])
    run_section(cfg, tmp_path / "run")
    metrics = read_json(tmp_path / "run" / "metrics.json")
    losses = [row["val/loss"] for row in metrics["history"]]
    assert metrics["best_value"] == min(losses) and losses.index(min(losses)) + 1 == metrics["best_epoch"]
    assert torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)["best_value"] == min(losses)


def evaluate_in_process(args: list[str], out: Path) -> None:
    cfg = composed("eval", args)
    evaluate_checkpoint(cfg, list(HydraConfig.get().overrides.task), out)


def test_evaluate_refuses_another_split_or_preprocessing(trained_run: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    state = torch.load(ckpt, weights_only=True)
    other = dict(state, meta=dict(state["meta"], split_fingerprint="0" * 16))  # the same config, other labels
    checkpoint.save(tmp_path / "other_split.ckpt", other)
    checkpoint.save(tmp_path / "no_config.ckpt", {k: v for k, v in state.items() if k != "config"})
    checkpoint.save(tmp_path / "text_best.ckpt", dict(state, best_value="high"))
    cases = [
        ([f"ckpt={ckpt}", "data.test_fraction=0.6"], "data.test_fraction: 0.15 -> 0.6 would change them"),
        ([f"ckpt={ckpt}", "data.normalize.mean=[0.5]"], "data.normalize.mean: auto -> [0.5] would change them"),
        ([f"ckpt={ckpt}", "data=image_folder", f"data.root={tmp_path}"],
         "data=image_folder: the run was built with csc8607.data.digits.load_digits, not "
         "csc8607.data.folders.load_image_folder"),
        ([f"ckpt={tmp_path / 'other_split.ckpt'}"], "is not the data the run recorded (split_fingerprint"),
        ([f"ckpt={tmp_path / 'no_config.ckpt'}"], "is incomplete or damaged (no `config`)"),
        ([f"ckpt={tmp_path / 'text_best.ckpt'}"], "best_value='high' is not a number"),
        (["ckpt=null"], "Missing mandatory value: ckpt"),
        ([f"ckpt={ckpt}", "+data.normalize.meen=[0.5]"], "did you mean data.normalize.mean?"),
    ]
    for args, message in cases:
        code, err = refusal(lambda: evaluate_in_process(args, tmp_path / "eval"), capsys)
        assert code == 2 and message in err and err.count("error:") == 1, (args, err)
    assert not (tmp_path / "eval").exists()
    evaluate_in_process([f"ckpt={ckpt}", "trainer.eval_batch_size=7", "seed=3"], tmp_path / "eval")  # allowed
    assert read_json(tmp_path / "eval" / "test_metrics.json")["meta"]["split_sizes"] == state["meta"]["split_sizes"]


def test_resume_refuses_another_optimizer(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()}
    for args, message in (([f"resume={trained_run}", "optim=sgd"], "optim=sgd: the run was built with "
                                                                   "torch.optim.AdamW, not torch.optim.SGD"),
                          ([f"resume={trained_run}", "scheduler=step"], "scheduler=step: the run was built with"),
                          ([f"resume={trained_run}", "data.test_fraction=0.5"],
                           "resume= continues on the split the run recorded, with its preprocessing: "
                           "data.test_fraction: 0.15 -> 0.5 would change them")):
        cfg = composed("config", args)
        code, err = refusal(lambda: run_section(cfg, tmp_path / "run"), capsys)
        assert code == 2 and message in err, err
    assert {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()} == before


def test_resume_refuses_a_tampered_best_value(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A last.ckpt whose best value is NaN, infinite or not its history's (edited by hand) is refused in one line:
    resuming would rank every later epoch against it (NaN: no epoch is ever better; best.ckpt stays stale)."""
    import math
    import shutil

    run = tmp_path / "interrupted"
    shutil.copytree(trained_run, run)
    (run / "metrics.json").unlink()  # a run stopped before its end: resume= continues it
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    for value, message in [(math.nan, "best_value=nan is not a finite number"),
                           (math.inf, "best_value=inf is not a finite number"),
                           (0.123, f"best_value=0.123 is not the {state['monitor']} of its history at best_epoch=")]:
        torch.save(dict(state, best_value=value), last)
        before = snapshot_files(run)
        cfg = composed("config", [f"resume={run}"])
        code, err = refusal(lambda: run_section(cfg, tmp_path / "new"), capsys)
        assert code == 2 and message in err and err.count("error:") == 1, err
        assert snapshot_files(run) == before and not (tmp_path / "new").exists()


def without(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


def partial_epoch(**changes) -> dict:
    return {"batches_done": 1, "loss_sum": 0.5, "seen": 8, "score_counts": {}, **changes}


DAMAGED_LAST = [  # (edit of a real last.ckpt, the reason its one line gives)
    (lambda s: without(s, "step"), "step=None is not a whole number >= 0"),
    (lambda s: without(s, "rng"), "`rng` is not the python/numpy/torch random states"),
    (lambda s: dict(s, rng={"python": 1, "numpy": 2, "torch": 3}), "`rng` is not the python/numpy/torch"),
    (lambda s: without(s, "optimizer"), "`optimizer` is not an optimizer's state"),
    (lambda s: dict(s, optimizer={"state": {}, "param_groups": []}), "`optimizer` is not an optimizer's state"),
    (lambda s: dict(s, progress={"bogus": 1}), "`progress` is not a partial epoch"),
    (lambda s: dict(s, progress=partial_epoch(batches_done=-3)), "`progress` is not a partial epoch"),
    (lambda s: dict(s, epoch=-1), "epoch=-1 is not a whole number >= 0"),
    (lambda s: dict(s, epoch=s["epoch"] - 1), "but its history holds"),
    (lambda s: dict(s, best_epoch=True), "best_epoch=True is not a whole number >= 0"),
    (lambda s: dict(s, history=["x", *s["history"][1:]]), "history[0] is not a row of numbers for epoch 1"),
    # these two fit the checkpoint's types: the run's own loader and optimizer refuse them
    (lambda s: dict(s, progress=partial_epoch(batches_done=10**9)), "progress.batches_done=1000000000 is more than"),
    (lambda s: dict(s, optimizer={**s["optimizer"], "param_groups": s["optimizer"]["param_groups"] * 2}),
     "its `optimizer` cannot be restored (ValueError"),
]


def test_resume_refuses_a_damaged_last_checkpoint(trained_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    """resume= of a last.ckpt missing or mangling what it restores (step, RNG, optimizer, a partial epoch, the
    history and its counters) is one line naming the field, not a traceback or a run continued from nonsense."""
    import shutil

    run = tmp_path / "interrupted"
    shutil.copytree(trained_run, run)
    (run / "metrics.json").unlink()
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    for edit, message in DAMAGED_LAST:
        torch.save(edit(state), last)
        before = snapshot_files(run / "checkpoints")
        cfg = composed("config", [f"resume={run}"])
        code, err = refusal(lambda: run_section(cfg, tmp_path / "new"), capsys)
        assert code == 2 and message in err and err.count("error:") == 1 and "Traceback" not in err, err
        assert snapshot_files(run / "checkpoints") == before and not (run / "metrics.json").exists()


def test_full_from_sweep_takes_only_a_sweep_dir(trained_run: Path, tmp_path: Path) -> None:
    """full.from_sweep= of a folder of single runs (outputs/DATE, runs/) exported its best run as M5's winner: it
    is refused in one line, as is a multirun of another section; a grid's dir (multirun.yaml) is taken."""
    import shutil

    from conftest import app_config
    from csc8607.sections.full import sweep_winner

    day = tmp_path / "outputs" / "2026-01-01"
    shutil.copytree(trained_run, day / "10-00-00")
    cfg = app_config("experiment=full", f"full.from_sweep={day}")
    with pytest.raises(UserError, match="is not a sweep dir \\(no multirun.yaml\\)"):
        sweep_winner(cfg)
    (day / "multirun.yaml").write_text("section: overfit\n")
    with pytest.raises(UserError, match="is a multirun of section=overfit, not a grid or Optuna sweep"):
        sweep_winner(cfg)
    (day / "multirun.yaml").write_text("section: grid\n")
    assert sweep_winner(cfg)[1]["job"] == str(day / "10-00-00")


def test_compare_and_the_sweep_table_refuse_mangled_metrics(trained_run: Path, tmp_path: Path) -> None:
    """A metrics.json whose curve holds a dict or whose run name is a list crashed experiment=compare (TypeError
    traceback, after making its run dir); a job whose best val/loss is a string crashed full.from_sweep's tie
    break. Now: compare refuses in one line naming the run; the sweep table makes that job a failed row."""
    import json
    import shutil

    from omegaconf import OmegaConf

    from csc8607.sections.compare import read_runs
    from csc8607.sweep import job_row

    run = tmp_path / "runs" / "a"
    shutil.copytree(trained_run, run)
    metrics = read_json(run / "metrics.json")
    cfg = OmegaConf.create({"compare": {"runs": str(run.parent)}, "paths": {"root": str(tmp_path)}})
    assert read_runs(cfg)[0]["name"] == metrics["run_name"]
    curve = [dict(metrics["history"][0], **{"train/loss": {"a": 1}}), *metrics["history"][1:]]
    for damaged, reason in [({"history": curve}, "holds {'a': 1}, not a number"),
                            ({"run_name": ["x"]}, "run_name=['x'] and monitor=")]:
        (run / "metrics.json").write_text(json.dumps({**metrics, **damaged}))
        with pytest.raises(UserError) as refused:
            read_runs(cfg)
        assert f"records of {run} cannot be read" in str(refused.value) and reason in str(refused.value)
    history = [dict(row, **{"val/loss": "x"}) for row in metrics["history"]]
    (run / "metrics.json").write_text(json.dumps({**metrics, "history": history}))
    row = job_row(run)
    assert row["status"] == "failed" and "val/loss='x' of the best epoch is not a number" in row["error"]


def snapshot_files(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_a_group_choice_keeps_the_runs_own_settings_and_moves_the_root() -> None:
    """`evaluate.py ckpt=R data=image_folder data.root=NEW` (the group is needed to reach data.root): R's own
    image size, not the group's default, and the source reads NEW (it read R's root through ${..root})."""
    saved = {"seed": 1, "data": {"_target_": "csc8607.data.ImageData", "root": "/old", "image_size": [16, 16],
                                 "source": {"_target_": "csc8607.data.folders.load_image_folder", "root": "/old"}}}
    cfg = composed("eval", ["ckpt=x", "data=image_folder", "data.root=/new"])
    result = with_overrides(saved, cfg, ["ckpt=x", "data=image_folder", "data.root=/new"], skip=("ckpt",),
                            source="a test checkpoint")
    assert result.data.image_size == [16, 16] and result.data.root == "/new" and result.data.source.root == "/new"


def test_a_data_key_over_another_data_option_is_refused_not_dropped() -> None:
    """`evaluate.py ckpt=R data.root=NEW` of an image-folder run composes the default data (digits): its source has
    no root to follow, so NEW was silently ignored (the run's data evaluated, NEW recorded). Now: one line."""
    saved = {"seed": 1, "data": {"_target_": "csc8607.data.ImageData", "root": "/old", "image_size": [16, 16],
                                 "source": {"_target_": "csc8607.data.folders.load_image_folder", "root": "/old"}}}
    cfg = composed("eval", ["ckpt=x", "data.root=/new"])
    with pytest.raises(UserError, match=r"^data.root=/new: the run's data.source._target_ is csc8607.data.folders."
                                        r"load_image_folder, not this command's csc8607.data.digits.load_digits; name "
                                        r"its option first \(data=<its option> data.root=/new\)$"):
        with_overrides(saved, cfg, ["ckpt=x", "data.root=/new"], skip=("ckpt",), source="a test checkpoint")


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only): a real full disk."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE case covers the same path)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


FILL = """
import resource, signal, sys
from pathlib import Path
import torch
from csc8607 import checkpoint
from csc8607.errors import UserError
folder, limited = Path(sys.argv[1]), sys.argv[2] == "1"
checkpoint.save(folder / "last.ckpt", {"model": {"w": torch.zeros(1000)}, "epoch": 1})
if limited:  # a size limit instead of a full disk: writes past it fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    checkpoint.save(folder / "last.ckpt", {"model": {"w": torch.zeros(100_000)}, "epoch": 2})
except UserError as err:
    print(err)
"""


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit"])
def test_full_disk_keeps_the_previous_checkpoint(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue("small_filesystem") if kind == "tmpfs" else tmp_path
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", FILL, str(folder), str(int(kind == "rlimit"))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    reason = "no space left on device" if kind == "tmpfs" else "file too large"
    assert f"{reason} while writing {folder / 'last.ckpt'}: the previous checkpoints are kept" in proc.stdout
    assert checkpoint.load(folder / "last.ckpt")["epoch"] == 1
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def fifo_is_read(fifo: Path) -> bool:
    """True once a process opened `fifo` for reading (then this opens it for writing, and keeps it open)."""
    try:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # left open: the reader stays blocked until it is killed
        return True
    except OSError as err:
        assert err.errno == errno.ENXIO
        return False


@pytest.mark.parametrize("moment", ["start-up", "cache decode"])
def test_ctrl_c_exits_130_without_traceback(moment: str, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) before training: one line, exit 130."""
    from image_fixtures import write_image_folder

    root = write_image_folder(tmp_path / "ds", per_class=3)
    fifo = root / "train" / "cat" / "zz_blocks.png"  # an image whose read blocks: the decode is under way
    os.mkfifo(fifo)
    args = ["data=image_folder", f"data.root={root}", "data.decode_workers=2", "trainer.max_epochs=1"]
    env = dict(os.environ, CSC8607_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if moment == "start-up":  # Hydra made the run dir: the job is importing torch, building data
            wait_for(lambda: any((tmp_path / "outputs").glob("*/*/.hydra")))
        else:
            wait_for(lambda: fifo_is_read(fifo))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().endswith("error: interrupted (Ctrl-C)")  # after a decode bar
    assert err.count("error:") == 1


def storage_cases(tmp: Path) -> list[tuple[str, str]]:
    """(hydra.sweeper.storage, message): every way the Optuna storage can be wrong."""
    corrupt = tmp / "corrupt.db"
    corrupt.write_bytes(b"not a database" * 100)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    other = f"sqlite:///{tmp / 'minimize.db'}"
    minimized = optuna.create_study(study_name="digits-cnn", storage=other, direction="minimize")
    minimized.tell(minimized.ask(), 1.0)
    mixed = optuna.create_study(study_name="digits-cnn", storage=f"sqlite:///{tmp / 'mixed.db'}",
                                direction="minimize")  # the digits at another root (a regression): another experiment
    mixed.set_system_attr("csc8607:identity", __import__("json").dumps({"data": {"choice": "digits", "root": "/d"}}))
    junk = optuna.create_study(study_name="digits-cnn", storage=f"sqlite:///{tmp / 'junk.db'}", direction="maximize")
    junk.set_system_attr("csc8607:identity", "[1, 2")  # a hand-edited identity
    readonly = tmp / "readonly.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{readonly}")
    port = __import__("socket").socket()
    port.bind(("127.0.0.1", 0))
    down = port.getsockname()[1]
    port.close()
    return [
        (f"sqlite:///{corrupt}", "cannot open the study storage (file is not a database)"),
        (f"sqlite:///{tmp / 'no' / 'dir' / 'optuna.db'}", "unable to open database file: does its directory exist?"),
        ("optuna.db", "not a database URL: write it as sqlite:///path/to/optuna.db"),
        (f"sqlite:///file:{readonly}?mode=ro&uri=true", "cannot write the study `digits-cnn` (attempt to write a readonly"),
        (other, "study `digits-cnn` exists with another direction"),
        (f"sqlite:///{tmp / 'mixed.db'}", "study `digits-cnn` holds trials of another experiment (data.root: /d -> None;"),
        (f"sqlite:///{tmp / 'junk.db'}", "holds trials of another experiment (csc8607:identity: unreadable ('[1, 2'))"),
        (f"postgresql://optuna@127.0.0.1:{down}/postgres", "cannot open the study storage (connection to server at"),
        ("mysql://user@localhost/optuna", "the Python driver for this database is not installed"),
    ]


def test_bad_optuna_storage_is_one_line_and_keeps_the_study(tmp_path: Path) -> None:
    """Corrupt, missing dir, not a URL, read-only, other direction, another experiment, server down, no driver:
    a UserError naming the storage before any trial, the files left as they were; through train.py (the
    sweeper's set-up), one `error:` line and exit 2."""
    from conftest import app_config
    from csc8607.study import experiment_identity, open_study

    identity = experiment_identity(app_config("experiment=optuna", multirun=True))
    cases = storage_cases(tmp_path)
    for storage, message in cases:
        files = {p: p.read_bytes() for p in tmp_path.glob("*.db")}
        with pytest.raises(UserError) as refused:
            open_study(storage, "digits-cnn", ["maximize"], 10, 60, identity)
        assert message in str(refused.value) and "\n" not in str(refused.value), storage
        assert {p: p.read_bytes() for p in tmp_path.glob("*.db")} == files, storage
    for storage, message in (cases[0], cases[5]):  # the command line: a broken file, a study of another experiment
        files = {p: p.read_bytes() for p in tmp_path.glob("*.db")}
        proc = run_cli("train.py", "experiment=optuna", f"hydra.sweeper.storage='{storage}'", "hydra.sweeper.n_trials=1",
                       "trainer.max_epochs=1", cwd=tmp_path, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (storage, proc.stderr[-2000:])
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr
        assert not list(tmp_path.glob("multirun/*/*/*/.hydra")), storage  # no trial ran
        assert {p: p.read_bytes() for p in tmp_path.glob("*.db")} == files, storage


def test_slurm_launcher_without_sbatch_is_one_line(tmp_path: Path) -> None:
    import sys

    proc = run_cli("train.py", "-m", "hydra/launcher=slurm", "model.width=4", cwd=tmp_path, check=False,
                   env={"PATH": str(Path(sys.executable).parent)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: hydra/launcher=slurm submits with SLURM's sbatch, which is not on PATH (not on a cluster?): run the "
        "sweep here with hydra/launcher=local"]


def test_a_sweep_dir_as_checkpoint_and_a_train_folder_as_root_say_what_was_meant(tmp_path: Path) -> None:
    """Two slips of a first real run: `evaluate.py ckpt=<sweep dir>` (one of its jobs was meant) and
    `data.root=<dataset>/train` (the dataset dir was meant): each one line naming the fix."""
    from csc8607 import checkpoint
    from csc8607.data.folders import load_image_folder

    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(UserError, match=r"is a sweep dir: name one of its jobs .*ckpt=.*/sweep/<job>$"):
        checkpoint.load(tmp_path / "sweep")
    (tmp_path / "pets" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match=r"pets/train/train is missing: .* folders \(data.root=.*/pets\?\)$"):
        load_image_folder(root=str(tmp_path / "pets" / "train"))
