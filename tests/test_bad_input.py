"""Bad input: a clear message, a non-zero exit, and no earlier result touched."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_cli

CASES = [
    # (args, expected exit code, text the message must contain)
    (["optim.lr=0"], 2, "optim.lr=0 must be > 0"),
    (["optim.lr=-1e-3"], 2, "must be > 0"),
    (["trainer.batch_size=0"], 2, "trainer.batch_size=0 must be a whole number >= 1"),
    (["trainer.max_epochs=0"], 2, "trainer.max_epochs=0"),
    (["trainer.monitor_mode=up"], 2, "monitor_mode=up must be max or min"),
    (["optim.lr=fast"], 2, "optim.lr='fast' must be a number"),
    (["trainer.precision=8"], 2, "trainer.precision=8 is not one of"),
    (["trainer.device=cuda"], 2, "CUDA is not available"),
    (["model.width=0", "trainer.max_epochs=1"], 2, "model.width=0 must be at least 1"),
    (["+model.widht=3"], 2, "cannot build model"),
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
     "all 1 jobs of the sweep failed (first error: UserError: optim.lr=-1.0 must be > 0)"),
    (["section=report"], 2, "section=report is not one of"),
    (["hydra.run.dir=/dev/null/run"], 2, "cannot write the output dir /dev/null/run (/dev/null is not a directory)"),
    (["-m", "hydra.sweep.dir=/dev/null/sweep", "model.width=4,8"], 2, "cannot write the output dir /dev/null/sweep"),
]


@pytest.mark.parametrize("args,code,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_train_bad_input(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    proc = run_cli("train.py", *args, cwd=tmp_path, check=False)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 2:
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
        assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1


def test_bad_checkpoints_leave_the_run_untouched(trained_run: Path, tmp_path: Path) -> None:
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
        proc = run_cli("evaluate.py", *args, cwd=tmp_path, check=False)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr[-1500:])
        assert "Traceback" not in proc.stderr
    for args, message in [([f"resume={tmp_path / 'nowhere'}"], "does not exist"),
                          ([f"resume={trained_run}", "model.width=16"], "does not match the model")]:
        proc = run_cli("train.py", *args, cwd=tmp_path, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr[-1500:])
    after = {p: p.stat().st_mtime_ns for p in trained_run.rglob("*") if p.is_file()}
    assert after == before
