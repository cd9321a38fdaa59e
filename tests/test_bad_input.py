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


def storage_cases(tmp: Path) -> list[tuple[str, str]]:
    """(hydra.sweeper.storage, message): every way the Optuna storage can be wrong."""
    corrupt = tmp / "corrupt.db"
    corrupt.write_bytes(b"not a database" * 100)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    other = f"sqlite:///{tmp / 'minimize.db'}"
    minimized = optuna.create_study(study_name="csc8607", storage=other, direction="minimize")
    minimized.tell(minimized.ask(), 1.0)
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
        (f"sqlite:///file:{readonly}?mode=ro&uri=true", "cannot write the study `csc8607` (attempt to write a readonly"),
        (other, "study `csc8607` exists with another direction"),
        (f"postgresql://optuna@127.0.0.1:{down}/postgres", "cannot open the study storage (connection to server at"),
        ("mysql://user@localhost/optuna", "the Python driver for this database is not installed"),
    ]


def test_bad_optuna_storage_is_one_line_and_keeps_the_study(tmp_path: Path) -> None:
    """Corrupt, missing dir, not a URL, read-only, other direction, server down, no driver: one `error:` line,
    exit 2, before any trial runs; the files are left as they were."""
    for storage, message in storage_cases(tmp_path):
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
