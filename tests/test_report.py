"""`python report.py`: the course template filled from real runs (tiny settings on the embedded digits)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import job_dirs, read_json, run_cli

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = (REPO / "conf" / "report_template.md").read_text()
SMALL = ["model.width=4", "model.depth=1", "trainer.threads=1"]


def headings(text: str) -> list[str]:
    return re.findall(r"^#{2,3} .*$", text, flags=re.M)


def questions(text: str) -> list[str]:
    return re.findall(r"^\*\*([DM]\d+)\.\*\*", text, flags=re.M)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every preset but optuna, with tiny settings, then `python report.py`: the project dir."""
    cwd = tmp_path_factory.mktemp("report")
    run_cli("train.py", "-m", "experiment=data,baselines,sanity,overfit,lr_finder,full", *SMALL, "trainer.max_epochs=2",
            "++overfit.num_samples=8", "++lr_finder.iterations=20", "++lr_finder.weight_decays=[0.0]", cwd=cwd)
    run_cli("train.py", "experiment=grid", "optim.lr=3.0e-3", "model.width=4,8", "optim.weight_decay=0.0",
            "model.depth=1", "trainer.max_epochs=1", "trainer.threads=1", "hydra.sweep.dir=multirun/grid", cwd=cwd)
    run_cli("train.py", "experiment=compare", "compare.runs=multirun/grid", "compare.by=[width]", cwd=cwd)
    run_cli("evaluate.py", "ckpt=artifacts/best.ckpt", "trainer.threads=1", cwd=cwd)
    run_cli("report.py", cwd=cwd)
    return cwd


def section_run(cwd: Path, name: str) -> Path:
    (job,) = [d for d in job_dirs(cwd / "multirun") if (d / f"{name}.json").exists()]
    return job


def test_report_follows_the_template(project: Path) -> None:
    report = (project / "report" / "report.md").read_text()
    assert headings(report) == headings(TEMPLATE)
    assert questions(report) == questions(TEMPLATE) == [f"D{i}" for i in range(1, 12)] + [f"M{i}" for i in range(10)]
    assert "_____" not in report  # every blank of the template is filled or replaced by the command to run
    assert "_Aucun run : `python train.py experiment=optuna`_" in report and report.count("Aucun run") == 1
    assert report.count("À compléter par l'étudiant·e") >= 21  # one per question at least
    pngs = re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", report)
    assert len(pngs) >= 9 and any("compare_" in p for p in pngs) and "figures/grid_runs.png" in pngs
    for png in pngs:
        with Image.open(project / "report" / png) as image:
            image.verify()
            assert image.format == "PNG"


def test_report_numbers_are_the_runs_numbers(project: Path) -> None:
    report = (project / "report" / "report.md").read_text()
    data = read_json(section_run(project, "data") / "data.json")
    sizes = data["split_sizes"]
    for split in ("train", "val", "test"):
        assert f"| {split.capitalize()} | {sizes[split]} |" in report
    sanity = read_json(section_run(project, "sanity") / "sanity.json")
    assert f"**Nombre total de paramètres** : `{sanity['total_params']}`" in report
    assert f"**Observée sur un batch** : `{sanity['initial_loss']:.4f}`" in report
    (evaluation,) = (project / "outputs").glob("*/*_eval/test_metrics.json")
    accuracy = read_json(evaluation)["metrics"]["accuracy"]
    assert f"Metric principale (nom = `accuracy`) : `{accuracy:.4f}`" in report
    full = read_json(section_run(project, "full") / "full.json")
    assert f"val/accuracy = `{full['best_value']:.4f}`" in report
    assert "python train.py -m experiment=data model.width=4" in report  # the exact command of each run
    assert "python evaluate.py ckpt=artifacts/best.ckpt trainer.threads=1" in report


def test_rerun_keeps_the_students_report(project: Path) -> None:
    path = project / "report" / "report.md"
    generated = path.read_text()
    path.write_text(generated + "\nmon commentaire\n")
    run_cli("report.py", cwd=project)
    (kept,) = (project / "report").glob("report.*.md")
    assert kept.read_text().endswith("mon commentaire\n") and path.read_text() == generated
    proc = run_cli("report.py", "runs.full=outputs", cwd=project, check=False)
    assert proc.returncode == 2 and "error: runs.full=outputs" in proc.stderr


def test_report_without_runs(tmp_path: Path) -> None:
    run_cli("report.py", cwd=tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    assert headings(report) == headings(TEMPLATE) and questions(report) == questions(TEMPLATE)
    for hint in ("experiment=data", "experiment=sanity", "experiment=grid", "experiment=full", "experiment=optuna",
                 "evaluate.py ckpt=artifacts/best.ckpt"):
        assert f"_Aucun run : `python {'train.py ' if 'experiment' in hint else ''}{hint}" in report
    assert not list((tmp_path / "report").glob("figures/*"))
