"""The one list of report sections (csc8607.sections.SECTIONS) and everything that must agree with it: a section
declared without its preset, its template part, its renderer or its `runs.<name>` key fails here, and so does a
preset, template question or renderer that no section declares."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from csc8607.report import runs
from csc8607.report.answers import ANSWERS, BODIES
from csc8607.report.pipeline import steps
from csc8607.sections import BY_NAME, JOBS, REPORTED, SECTIONS
from test_configs import compose_with

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = (REPO / "conf" / "report_template.md").read_text()


def test_every_train_section_has_its_preset_and_every_preset_its_section() -> None:
    presets = {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")} - {"smoke"}  # smoke: a quick `train`
    assert presets == {s.name for s in REPORTED if s.script == "train.py"}
    for name in presets:  # (each composes: test_make_report_runs_the_sections_in_order_each_fed_by_the_one_before)
        assert OmegaConf.load(REPO / "conf" / "experiment" / f"{name}.yaml").section == name and name in JOBS
    assert {s.script for s in SECTIONS} == {"train.py", "evaluate.py"} and (REPO / "conf" / "eval.yaml").is_file()


def test_the_template_asks_what_the_sections_answer_in_their_order() -> None:
    assert re.findall(r"^\*\*([DM]\d+)\.\*\*", TEMPLATE, flags=re.M) == [q for s in REPORTED for q in s.questions]
    declared = [a for s in REPORTED for a in s.answers if a not in s.questions]
    assert declared == [h for h in re.findall(r"^#{2,3} (\S+)", TEMPLATE, flags=re.M) if h in declared]
    for section in REPORTED:  # each heading a section declares has its body renderer
        assert set(section.answers) - set(section.questions) <= set(BODIES), section.name


def test_each_renderer_needs_the_sections_that_declare_its_part() -> None:
    for key, (needed, _) in {**BODIES, **ANSWERS}.items():
        for name in needed:
            assert key in BY_NAME[name].answers, f"{key} reads {name}, which does not declare it"


def test_report_config_and_run_tables_are_the_declarations() -> None:
    assert list(OmegaConf.load(REPO / "conf" / "report.yaml").runs) == [s.name for s in REPORTED]
    assert runs.RESULTS == {s.name: s.result for s in REPORTED} and list(runs.RESULTS) == [s.name for s in REPORTED]
    assert runs.SWEEPS == {"grid", "optuna"} and runs.MODEL_PRESETS == set(runs.RESULTS) - {"data", "baselines"}
    assert runs.HINTS["full"] == "python train.py experiment=full"
    assert runs.HINTS["evaluate"] == "python evaluate.py ckpt=artifacts/best.ckpt"


def test_make_report_runs_the_sections_in_order_each_fed_by_the_one_before() -> None:
    todo = steps("2026-01-02/03-04-05", ["trainer.threads=1"])
    assert [label.split()[0] for label, _ in todo] == ["train.py"] * 9 + ["evaluate.py", "report.py"]
    commands = {cmd[1].removeprefix("experiment="): cmd for _, cmd in todo if cmd[0] == "train.py"}
    assert list(commands) == [s.name for s in REPORTED if s.script == "train.py"]
    lr_finder, grid = "outputs/2026-01-02/03-04-05-lr_finder", "multirun/2026-01-02/03-04-05-grid"
    assert commands["lr_finder"] == ["train.py", "experiment=lr_finder", f"hydra.run.dir={lr_finder}",
                                     "trainer.threads=1"]
    assert f"grid.lr_from={lr_finder}" in commands["grid"] and f"hydra.sweep.dir={grid}" in commands["grid"]
    assert f"full.from_sweep={grid}" in commands["full"] and f"compare.runs={grid}" in commands["compare"]
    for name, command in commands.items():  # every chained key exists in its preset (a typo fails to compose)
        cfg = compose_with(*[o for o in command[1:] if not o.startswith(("hydra.", "trainer.threads"))])
        for key, _ in BY_NAME[name].takes:
            assert OmegaConf.select(cfg, key) == next(o for o in command if o.startswith(key + "=")).split("=", 1)[1]


def test_a_missing_section_is_made_from_the_runs_it_takes(tmp_path: Path) -> None:
    from csc8607.report import Context

    c = Context({"grid": tmp_path / "multirun" / "D" / "T"}, tmp_path, tmp_path / "report")
    assert c.missing("full", "compare", "optuna", "grid", "overfit").splitlines() == [
        "_Aucun run : `python train.py experiment=full full.from_sweep=multirun/D/T`_",
        "_Aucun run : `python train.py experiment=compare compare.runs=multirun/D/T`_",
        "_Aucun run : `python train.py experiment=optuna`_",
        "_Aucun run : `python train.py experiment=overfit overfit.num_samples=32`_"]
    c.runs = {"lr_finder": tmp_path / "outputs" / "D" / "T"}
    assert c.missing("grid") == "_Aucun run : `python train.py experiment=grid grid.lr_from=outputs/D/T`_"


@pytest.mark.parametrize("bad", ["evaluate", "nope"])
def test_section_key_accepts_only_train_sections(bad: str) -> None:
    from csc8607.errors import UserError
    from csc8607.sections import run_section

    with pytest.raises(UserError, match=f"section={bad} is not one of"):
        run_section(compose_with(f"section={bad}"), "unused")


def test_make_report_says_its_step_and_stops_at_the_first_failing_one(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "report.sh"), "trainer.max_epochs=0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("== make report: step") == 1
    assert proc.stderr.startswith(f"== make report: step 1/{len(REPORTED) + 1}: train.py experiment=data (D1–D11) (")
    assert proc.stderr.splitlines()[-1] == "error: trainer.max_epochs=0 must be a whole number >= 1"
    assert not (tmp_path / "report").exists()  # no later step ran
    for bad in ("experiment=smoke", "-m", "--cfg", "hydra.run.dir=x"):  # every step would be that (minutes lost)
        proc = subprocess.run(["bash", str(REPO / "scripts" / "report.sh"), bad], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: {bad}: make report passes its arguments"), bad
        assert "== make report" not in proc.stderr and not (tmp_path / "outputs").exists()
