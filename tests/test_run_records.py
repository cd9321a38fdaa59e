"""A refused or repeated command never rewrites a run's records; one process per run dir; after a kill at any
instant best.ckpt and the metrics agree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, job_dirs, read_json, run_cli
from csc8607 import checkpoint
from csc8607.data import ImageData
from csc8607.data.digits import load_digits
from csc8607.engine import Engine, fit
from csc8607.errors import UserError
from csc8607.models import ConvNet
from csc8607.rundir import claim, lock, pending_name
from csc8607.sections import run_section
from test_trust import composed

TINY = ["model.width=4", "model.depth=1", "trainer.max_epochs=1", "trainer.test_after_fit=false"]


def snapshot(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args", [("train.py", "experiment=sanity"), ("train.py", "optim.lr=0.01"),
                                  ("evaluate.py", "ckpt=RUN")], ids=["sanity", "train", "evaluate"])
def test_a_dir_holding_a_run_is_refused_before_anything_is_written(args: tuple[str, ...], trained_run: Path,
                                                                    tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    script, *rest = args
    proc = run_cli(script, *[a.replace("RUN", str(run)) for a in rest], f"hydra.run.dir={run}", cwd=tmp_path,
                   check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "already holds a finished run" in proc.stderr
    assert snapshot(run) == before


def test_a_dir_inside_a_run_or_holding_runs_is_refused_before_anything_is_written(trained_run: Path, tmp_path: Path,
                                                                                   in_process) -> None:
    """hydra.run.dir / hydra.sweep.dir inside another run's dir (checkpoints/, tb/...) or a sweep's, or at a date
    folder that holds runs: one line, exit 2, nothing written (they were taken, mixing two runs' records)."""
    run = tmp_path / "outputs" / "2026-11-30" / "12-00-00"
    shutil.copytree(trained_run, run)
    (tmp_path / "multirun" / "sweep").mkdir(parents=True)
    (tmp_path / "multirun" / "sweep" / "multirun.yaml").write_text("hydra: {}\n")
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    for args, message in [(["hydra.run.dir=outputs/2026-11-30/12-00-00/checkpoints"],
                           f"it is inside the run dir {run}"),
                          (["hydra.run.dir=outputs/2026-11-30/12-00-00/tb/new"], f"it is inside the run dir {run}"),
                          (["hydra.run.dir=outputs/2026-11-30"], f"it holds other runs ({run})"),
                          (["hydra.run.dir=outputs"], f"it holds other runs ({run})"),
                          (["hydra.run.dir=multirun/sweep/new"], "it is inside the sweep dir"),
                          (["-m", "hydra.sweep.dir=outputs/2026-11-30/12-00-00/tb", "model.width=4,8"],
                           f"it is inside the run dir {run}"),
                          (["-m", "hydra.sweep.dir=outputs", "model.width=4,8"], f"it holds other runs ({run})")]:
        err = in_process("train.py", *args, *TINY, exit_code=2)
        assert err.count("error:") == 1 and message in err and "a run needs a dir of its own" in err, (args, err)
        assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths, args  # no dir made either


def test_a_project_root_holding_sweeps_is_refused_as_a_run_dir(trained_run: Path, tmp_path: Path,
                                                                in_process) -> None:
    """`hydra.run.dir=.` in a project whose runs are multirun/DATE/TIME/JOB (4 levels down) was taken: the run's
    .hydra/ at the root then made every later default command there "inside the run dir"."""
    job = tmp_path / "jobs" / "multirun" / "2026-11-30" / "12-00-00" / "0_model.width=4"
    shutil.copytree(trained_run, job)
    sweep = tmp_path / "recorded" / "multirun" / "2026-11-30" / "12-00-00"  # a sweep whose jobs left no record yet
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    for project, args, held in [("jobs", ["hydra.run.dir=."], job),
                                ("jobs", ["-m", "hydra.sweep.dir=.", "seed=1,2"], job),
                                ("recorded", ["hydra.run.dir=."], sweep)]:
        err = in_process("train.py", *args, *TINY, exit_code=2, cwd=tmp_path / project)
        assert err.count("error:") == 1 and f"it holds other runs ({held})" in err, (args, err)
        assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths, args  # no dir made either


def test_a_dir_reached_through_a_symlink_is_checked_where_it_really_is(trained_run: Path, tmp_path: Path,
                                                                        in_process) -> None:
    """A link into a run's checkpoints/ or tb/ (or `link/..`, which the OS takes from the link's target) was checked
    as typed: the new run went inside the other run (or Hydra wrote multirun.yaml elsewhere: a traceback)."""
    base = tmp_path / "runs" / "base"
    shutil.copytree(trained_run, base)
    (tmp_path / "runs" / "grid2").mkdir()
    (tmp_path / "runs" / "grid2" / "multirun.yaml").write_text("hydra: {}\n")
    for link, target in [("lnk1", "runs/base/checkpoints"), ("lnk4", "runs/base/tb"), ("lnk5", "runs/grid2")]:
        (tmp_path / link).symlink_to(target)
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    inside, dotdot = f"it is inside the run dir {base}", "'..' after a symlink names"
    for args, message in [(["train.py", "hydra.run.dir=lnk1"], inside),
                          (["train.py", "hydra.run.dir=lnk4/sub"], inside),
                          (["train.py", "-m", "hydra.sweep.dir=lnk4", "model.width=4,8"], inside),
                          (["evaluate.py", "ckpt=runs/base", "hydra.run.dir=lnk4/ev"], inside),
                          (["train.py", "hydra.run.dir=lnk4/../x"], f"{dotdot} {base / 'x'} for the OS"),
                          (["train.py", "-m", "hydra.sweep.dir=lnk5/../zz", "model.width=4,8"],
                           f"{dotdot} {tmp_path / 'runs' / 'zz'} for the OS but {tmp_path / 'zz'}")]:
        err = in_process(*args, *TINY, exit_code=2)
        assert err.count("error:") == 1 and message in err, (args, err)
        assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths, args  # no dir made either


def test_skip_finished_keeps_only_runs_of_the_same_config(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = ["experiment=grid", "optim.lr=1e-3", "optim.weight_decay=0.0", "model.width=4,6", "model.depth=1",
               "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    run_cli("train.py", *command, cwd=tmp_path)
    before = snapshot(sweep)
    again = run_cli("train.py", *command, cwd=tmp_path, check=False)  # no skip_finished: refused before writing
    assert again.returncode == 2 and "already holds a finished run" in again.stderr and snapshot(sweep) == before
    other = run_cli("train.py", *command, "skip_finished=true", "optim=sgd", cwd=tmp_path, check=False)
    assert other.returncode == 2 and "holds a sweep of another command (optim=sgd)" in other.stderr
    jobs = job_dirs(sweep)
    assert {p: b for p, b in snapshot(sweep).items() if p.parent.name == ".hydra"} == \
        {p: b for p, b in before.items() if p.parent.name == ".hydra"}
    assert {p: b for p, b in snapshot(sweep).items() if p.name == "metrics.json"} == \
        {p: b for p, b in before.items() if p.name == "metrics.json"}
    assert (sweep / "multirun.yaml").read_bytes() == before[sweep / "multirun.yaml"]  # refused before any write
    job = jobs[0]  # a job whose recorded config was changed by hand: refused by the job, its record untouched
    recorded = (job / ".hydra" / "config.yaml").read_text()
    (job / ".hydra" / "config.yaml").write_text(recorded.replace("max_epochs: 1", "max_epochs: 7"))
    changed = run_cli("train.py", *command, "skip_finished=true", cwd=tmp_path, check=False)
    assert changed.returncode == 2 and "of another config (trainer.max_epochs: 7 -> 1)" in changed.stderr
    assert sorted(sweep.glob("multirun.*.yaml"))  # the command that ran before is kept on record
    (job / ".hydra" / "config.yaml").write_text(recorded)
    run_cli("train.py", *command, "skip_finished=true", cwd=tmp_path)  # the same command: finished jobs kept
    assert len(jobs) == 2 and job_dirs(sweep) == jobs
    assert {p: b for p, b in snapshot(sweep).items() if p.name == "metrics.json"} == \
        {p: b for p, b in before.items() if p.name == "metrics.json"}


def test_two_commands_into_one_dir_each_keep_their_own_pending_record(tmp_path: Path, in_process) -> None:
    """Two train.py started at once into one hydra.run.dir both wrote their record to one `.hydra-new/` before
    either locked the dir: the winner's .hydra/ could record the loser's settings, and the loser's cleanup removed
    the winner's pending record. Each process now has its own; the rival here is one another process would write."""
    code = ("import csc8607\nfrom hydra import compose, initialize_config_dir\n"
            f"with initialize_config_dir(config_dir={str(REPO / 'conf')!r}, version_base='1.3'):\n"
            "    print(compose('config', return_hydra_config=True).hydra.output_subdir)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip()
    run = tmp_path / "run"
    rival = run / other / "config.yaml"  # the other process's record, written while this one starts
    rival.parent.mkdir(parents=True)
    rival.write_text("optim:\n  lr: 0.022\n")
    with lock(run):  # the other process holds the dir, its record not yet claimed: this one is refused
        err = in_process("train.py", f"hydra.run.dir={run}", "optim.lr=0.011", *TINY, exit_code=2)
    assert f"{run} is in use" in err and rival.read_text() == "optim:\n  lr: 0.022\n"  # its record left alone
    mine = run / pending_name() / "config.yaml"  # what Hydra wrote for this process when it wins the dir
    mine.parent.mkdir()
    mine.write_text("optim:\n  lr: 0.011\n")
    with claim(OmegaConf.create({}), run, "train"):
        assert (run / ".hydra" / "config.yaml").read_text() == "optim:\n  lr: 0.011\n"  # its own, not the rival's
    assert rival.read_text() == "optim:\n  lr: 0.022\n"  # the loser removes it when refused, no one else


def test_a_second_process_into_a_locked_run_dir_is_refused(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "metrics.json").unlink()  # an interrupted run another process is resuming
    before = snapshot(run)
    with lock(run):
        proc = run_cli("train.py", f"resume={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and f"{run} is in use" in proc.stderr
    assert snapshot(run) == before


def test_an_exported_checkpoint_is_not_resumed(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    shutil.copyfile(trained_run / "checkpoints" / "best.ckpt", tmp_path / "artifacts" / "best.ckpt")
    for target in (tmp_path / "artifacts" / "best.ckpt", trained_run / "checkpoints" / "best.ckpt"):
        with pytest.raises(UserError, match="not a run's checkpoints/last.ckpt"):
            run_section(composed("config", f"resume={target}"), tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_kill_between_last_and_best_then_resume_gives_a_consistent_best(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed right after epoch 2's last.ckpt was written, before best.ckpt was relinked to it."""
    data = ImageData(load_digits, 0.15, 0.15, channels=1)

    def start() -> tuple:
        torch.manual_seed(0)
        model = ConvNet(data.meta["input_shape"], 10, width=8, depth=1)
        return model, torch.optim.AdamW(model.parameters(), lr=3e-3), Engine("multiclass", 10, torch.device("cpu"))

    args = dict(run_dir=tmp_path, monitor="val/loss", mode="min")
    calls = []

    def killed_at_second_link(source: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies here
        real_duplicate(source, target)

    real_duplicate = checkpoint.duplicate
    monkeypatch.setattr(checkpoint, "duplicate", killed_at_second_link)
    model, optimizer, engine = start()
    with pytest.raises(KeyboardInterrupt):
        fit(engine, model, optimizer, data.loader("train", 64, train=True), data.loader("val", 256), max_epochs=2,
            **args)
    monkeypatch.setattr(checkpoint, "duplicate", real_duplicate)
    last = checkpoint.load(tmp_path / "checkpoints" / "last.ckpt")
    assert last["best_epoch"] == 2 and checkpoint.load(tmp_path / "checkpoints" / "best.ckpt")["epoch"] == 1
    model, optimizer, engine = start()
    result = fit(engine, model, optimizer, data.loader("train", 64, train=True), data.loader("val", 256),
                 max_epochs=2, resume=last, **args)
    best = checkpoint.load(tmp_path / "checkpoints" / "best.ckpt")
    assert best["epoch"] == result["best_epoch"] == 2
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])


def tampered_copy(trained_run: Path, target: Path, **config: object) -> Path:
    shutil.copytree(trained_run, target)
    last = target / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    state["config"].update(config)
    torch.save(state, last)
    return target


def test_resume_writes_only_into_its_run_and_this_machines_artifacts(trained_run: Path, tmp_path: Path) -> None:
    """A last.ckpt naming M6 with its artifacts dir elsewhere: resume exports into this command's artifacts/."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.yaml").write_text("precious: 1\n")
    saved = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)["config"]
    run = tampered_copy(trained_run, tmp_path / "run", section="full",
                        full={"artifacts_dir": str(victim), "from_sweep": None},
                        trainer={**saved["trainer"], "max_epochs": saved["trainer"]["max_epochs"] + 1})
    run_cli("train.py", f"resume={run}", "trainer.threads=1", cwd=tmp_path)
    assert sorted(p.name for p in victim.iterdir()) == ["config.yaml"] and (victim / "config.yaml").read_text() == \
        "precious: 1\n"
    assert (tmp_path / "artifacts" / "best.ckpt").is_file()


def test_resume_of_a_finished_run_or_through_a_link_is_refused(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    with pytest.raises(UserError, match="already finished its 15 epochs"):
        run_section(composed("config", f"resume={run}"), tmp_path / "new")
    link = tmp_path / "link"
    (link / "checkpoints").mkdir(parents=True)
    (link / ".hydra").mkdir()
    (link / "checkpoints" / "last.ckpt").symlink_to(run / "checkpoints" / "last.ckpt")
    with pytest.raises(UserError, match="is a symbolic link"):
        run_section(composed("config", f"resume={link}", "trainer.max_epochs=20"), tmp_path / "new")
    linked_tb = tmp_path / "linked_tb"
    shutil.copytree(run, linked_tb)
    shutil.rmtree(linked_tb / "tb")
    (linked_tb / "tb").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="is a symbolic link"):
        run_section(composed("config", f"resume={linked_tb}", "trainer.max_epochs=20"), tmp_path / "new")
    assert snapshot(run) == before and not (tmp_path / "elsewhere").exists()



def test_input_refused_while_the_data_is_built_leaves_no_run_behind(tmp_path: Path) -> None:
    """The refusal comes after the job claimed its dir: the claim is given back, so the dir holds no run."""
    (tmp_path / "empty" / "val").mkdir(parents=True)
    run = tmp_path / "run"
    proc = run_cli("train.py", "data=image_folder", f"data.root={tmp_path / 'empty'}", f"hydra.run.dir={run}",
                   cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "train is missing" in proc.stderr
    assert not run.exists()
    (tmp_path / "elsewhere").mkdir()  # Hydra's own dated dir: neither it nor outputs/<date>/ stays behind
    proc = run_cli("train.py", "data=image_folder", f"data.root={tmp_path / 'empty'}", cwd=tmp_path / "elsewhere",
                   check=False)
    assert proc.returncode == 2 and not (tmp_path / "elsewhere" / "outputs").exists()


def test_skip_finished_over_a_run_it_cannot_keep_does_not_advise_skip_finished(tmp_path: Path, in_process) -> None:
    """A data run (not a training section) under `skip_finished=true`: the refusal said "add skip_finished=true"."""
    run = tmp_path / "data_run"
    in_process("train.py", "experiment=data", "trainer.threads=1", f"hydra.run.dir={run}")
    err = in_process("train.py", "experiment=data", "trainer.threads=1", "skip_finished=true", f"hydra.run.dir={run}",
                     exit_code=2)
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "which skip_finished does not keep (training runs only): choose a new hydra.run.dir" in line
    assert "add skip_finished=true" not in line
