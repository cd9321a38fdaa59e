"""`python report.py`: the course template filled from real runs (tiny settings on the embedded digits, and on the
Tiny-ImageNet folder fixture), M8 from a real Optuna study resumed once."""
from __future__ import annotations

import csv
import json
import shutil
import math
import re
from pathlib import Path
from typing import Any, Callable

import optuna
import pytest
from PIL import Image

from conftest import job_dirs, read_json, run_cli
from test_figures import english_figures
from image_fixtures import ODD_TRAIN, WNIDS, WORDS, tiny_imagenet_files, write_tiny_imagenet_folder
from csc8607.report.runs import command
from csc8607.sections import REPORTED

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = (REPO / "conf" / "report_template.md").read_text()
SMALL = ["model.width=4", "model.depth=1", "trainer.threads=1"]


def headings(text: str) -> list[str]:
    return re.findall(r"^#{2,3} .*$", text, flags=re.M)


def questions(text: str) -> list[str]:
    return re.findall(r"^\*\*([DM]\d+)\.\*\*", text, flags=re.M)


# the Optuna study's command line, as typed (its search space included); run twice, the second time with 1 trial
OPTUNA = ["experiment=optuna", "model.width=choice(4, 8)", "model.depth=1", "trainer.max_epochs=1", "trainer.threads=1"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every preset with tiny settings, the Optuna study resumed once (a trial left RUNNING by a killed run in
    between), then `python report.py`: the project dir."""
    cwd = tmp_path_factory.mktemp("report")
    run_cli("train.py", "-m", "experiment=data,baselines,sanity,overfit,lr_finder,full", *SMALL, "trainer.max_epochs=2",
            "++overfit.num_samples=8", "++lr_finder.iterations=20", "++lr_finder.weight_decays=[0.0]", cwd=cwd)
    run_cli("train.py", "experiment=grid", f"grid.lr_from='{section_run(cwd, 'lr_finder')}'", "grid.lr_factors=[1.0]",
            "model.width=4,8", "optim.weight_decay=0.0", "model.depth=1", "trainer.max_epochs=1", "trainer.threads=1",
            "hydra.sweep.dir=multirun/grid", cwd=cwd)  # M4 feeds M5: the LR axis is the LR finder's suggestion
    run_cli("train.py", "experiment=compare", "compare.runs=multirun/grid", "compare.by=[width]", cwd=cwd)
    first = run_cli("train.py", *OPTUNA, "hydra.sweeper.n_trials=2", cwd=cwd)
    assert "alembic" not in first.stdout + first.stderr  # optuna's schema migrations stay quiet
    # optuna's lines in plain text (colour codes would land in a redirected or SLURM log file)
    assert "A new study created" in first.stdout + first.stderr and "\x1b[" not in first.stdout + first.stderr
    leave_running_trial_of_a_dead_worker(cwd / "optuna.db")
    run_cli("train.py", *OPTUNA, "hydra.sweeper.n_trials=1", cwd=cwd)
    run_cli("evaluate.py", "ckpt=artifacts/best.ckpt", "trainer.threads=1", cwd=cwd)
    run_cli("report.py", cwd=cwd)
    return cwd


def leave_running_trial_of_a_dead_worker(db: Path) -> None:
    """A trial left RUNNING by a worker killed two minutes ago: its last heartbeat is that old (the preset's grace
    period is 60 s), as the database clock says."""
    import sqlite3

    study = optuna.load_study(study_name="digits-cnn", storage=f"sqlite:///{db}")
    trial = study.ask()
    study._storage.record_heartbeat(trial._trial_id)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-2 minutes')")


def section_run(cwd: Path, name: str) -> Path:
    (job,) = [d for d in job_dirs(cwd / "multirun") if (d / f"{name}.json").exists()]
    return job


def test_report_follows_the_template(project: Path) -> None:
    report = (project / "report" / "report.md").read_text()
    assert headings(report) == headings(TEMPLATE)
    assert questions(report) == questions(TEMPLATE) == [q for s in REPORTED for q in s.questions]  # D1–D11, M0–M9
    assert "_____" not in report  # every blank of the template is filled or replaced by the command to run
    assert "Aucun run" not in report and "non lue" not in report
    assert report.count("À compléter par l'étudiant·e") >= 21  # one per question at least
    pngs = re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", report)
    assert len(pngs) >= 10 and any("compare_" in p for p in pngs) and "figures/grid_runs.png" in pngs
    assert "figures/optuna_history.png" in pngs
    for png in pngs:
        with Image.open(project / "report" / png) as image:
            image.verify()
            assert image.format == "PNG"


def test_report_numbers_are_the_runs_numbers(project: Path) -> None:
    report = (project / "report" / "report.md").read_text()
    data = read_json(section_run(project, "data") / "data.json")
    sizes = data["split_sizes"]
    for split in ("train", "val", "test"):
        assert f"| {split.capitalize()} | {sizes[split]:,} |".replace(",", "\u202f") in report  # 1 257
    sanity = read_json(section_run(project, "sanity") / "sanity.json")
    assert f"**Nombre total de paramètres** : `{sanity['total_params']:,}`".replace(",", "\u202f") in report
    suggested = read_json(section_run(project, "lr_finder") / "lr_finder.json")["suggested_lr"]
    grid = list(csv.DictReader(open(project / "multirun" / "grid" / "summary.csv")))
    assert {float(r["lr"]) for r in grid} == {float(f"{suggested:.3g}")}
    assert (f"  - LR : `{{{float(f'{suggested:.3g}')}}}` (LR suggéré par M4 × `[1.0]`, `grid.lr_from="
            f"{section_run(project, 'lr_finder')}`)\n") in report
    # M1 names the model's two hyperparameters with the values the grid tried, not only the sanity run's values
    assert ("- **Hyperparamètres du modèle** : A = `width` (valeurs de la grille M5 : `{4, 8}` ; ici `4`) ; "
            "B = `depth` (valeurs de la grille M5 : `{1}` ; ici `1`)\n") in report
    assert f"**Observée sur un batch** : `{sanity['initial_loss']:.4f}`" in report
    (evaluation,) = (project / "outputs").glob("*/*_eval/test_metrics.json")
    accuracy = read_json(evaluation)["metrics"]["accuracy"]
    assert f"Metric principale (nom = `accuracy`) : `{accuracy:.4f}`" in report
    full = read_json(section_run(project, "full") / "full.json")
    assert f"val/accuracy = `{full['best_value']:.4f}`" in report
    assert "python train.py -m experiment=data model.width=4" in report  # the exact command of each run
    assert "python evaluate.py ckpt=artifacts/best.ckpt trainer.threads=1" in report


def french_float(cell: str) -> float:
    """A number of the report as French prose writes it (`0,4074`, `1 257`) read back."""
    return float(cell.strip().replace("\u202f", "").replace(",", "."))


def section(report: str, heading: str) -> str:
    """A report section: from its heading to the next `## ` heading."""
    start = report.index(f"\n{heading}")
    end = report.find("\n## ", start + 1)
    return report[start:] if end < 0 else report[start:end]


def optuna_sweeps(cwd: Path) -> list[Path]:
    return sorted(p.parent for p in (cwd / "multirun").glob("*/*/optimization_results.yaml"))


# what French prose does not hold: English words, Python reprs, a number of 4+ digits without its thousands grouping
ENGLISH = re.compile(r"\b(the|of|and|is|are|with|from|between|where|which|when|not|at|in|to|by|none|maximize|"
                     r"minimize|stratified|random|rescaled|used)\b", re.I)
REPR = re.compile(r"\{'|\['|\[\d|\(\d+, \d|\bNone\b|\bTrue\b|\bFalse\b|\bnan\b")
UNGROUPED = re.compile(r"(?<![\d.,\u202f:/_=-])\d{4,}(?![\d.,:/_-])")


def generated_prose(report: str) -> str:
    """The report's text as the generator wrote it: the template's own lines, code blocks and spans (commands,
    config, values as typed) and figure links left out."""
    template = set(TEMPLATE.splitlines())
    text = re.sub(r"```.*?```", "", report, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if line not in template)
    return re.sub(r"`[^`]*`", "", re.sub(r"!\[[^]]*\]\([^)]*\)", "", text))


def decimal_slips(report: str) -> list[str]:
    """Numbers written against the report's rule: a decimal point in prose or a table (`2.7814`; an identifier
    such as `wd=0.0001` or `features.0.conv` is not a number), a decimal comma in a value's code span (`2,87`)."""
    prose = generated_prose(report)
    points = re.findall(r"(?<![\w=./-])\d+\.\d+(?![\w.])", prose)
    commas = re.findall(r"`-?\d[\d\u202f]*,\d+`", report)
    return points + commas


def test_report_is_french_prose_without_reprs(project: Path) -> None:
    """The report in its template's language: no English sentence, no Python repr, numbers grouped as French
    writes them; D3 on digits says it is one pool (it has no train split); a grid job run without its test
    evaluation does not log an empty `test {}`."""
    report = (project / "report" / "report.md").read_text()
    prose = generated_prose(report)
    assert len(prose) > 3000 and "Tailles : train 1\u202f257, val 270, test 270 ; 10 classes." in prose
    assert not decimal_slips(report) and re.search(r"LR de `[\d.e+-]+` à `[\d.e+-]+`", report)  # typed: code spans
    assert not english_figures(project / "report" / "figures")  # M0's bars, M2's title (a decimal comma) included
    for pattern in (ENGLISH, REPR, UNGROUPED):
        found = [line for line in prose.splitlines() if pattern.search(line)]
        assert not found, (pattern.pattern, found[:5])
    assert "- train : l'ensemble de la source (1\u202f797 exemples, sans split propre), moins les exemples tirés " \
        "pour test et val" in report and "source's" not in report
    logs = [log.read_text() for log in (project / "multirun" / "grid").glob("*/train.log")]
    assert len(logs) == 2 and all("best val/accuracy" in log and "; test " not in log for log in logs)


def test_optuna_section_is_the_whole_study(project: Path) -> None:
    report = (project / "report" / "report.md").read_text()
    m8 = section(report, "## 8)")
    study = optuna.load_study(study_name="digits-cnn", storage=f"sqlite:///{project / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]  # the RUNNING leftover became FAIL on resume
    french = {"COMPLETE": "terminés", "FAIL": "en échec", "PRUNED": "élagués", "RUNNING": "en cours"}
    counts = ", ".join(f"{french[s]} = {states.count(s)}" for s in french)
    assert f"- **Essais** (4, à maximiser) : {counts}\n" in m8
    best = study.best_trial
    assert f"meilleur essai #{best.number} : val/accuracy = `{best.value:.4f}`" in m8
    # the table lists every trial of both runs, with the storage's state, value and sampled parameters
    header, *rows = [line.split(" | ") for line in m8.splitlines() if line.startswith("| ")]
    names = header[3:-2]
    assert set(names) == set(study.trials[0].params) == {"optim.lr", "optim.weight_decay", "model.width"}
    assert len(rows) == len(study.trials)
    for row, trial in zip(rows, study.trials):
        assert (int(row[0].strip("| ")), row[1]) == (trial.number, french[trial.state.name])
        if trial.value is None:
            assert row[2] == "" and trial.state.name == "FAIL"
        else:
            assert french_float(row[2]) == pytest.approx(trial.value, abs=5e-5)
            assert [french_float(cell) for cell in row[3:-2]] == [trial.params[name] for name in names]
    # both sweep dirs of the study, each with the command that ran it: the search space as typed, no sampled value
    first, second = optuna_sweeps(project)
    typed = "python train.py -m experiment=optuna 'model.width=choice(4, 8)' model.depth=1 trainer.max_epochs=1 " \
            "trainer.threads=1 hydra.sweeper.n_trials="
    assert f"  - `{first.relative_to(project)}` (2 essais) : `{typed}2`" in m8
    assert f"  - `{second.relative_to(project)}` (1 essai) : `{typed}1`" in m8
    commands = section(report, "## 11)")
    assert f"\n{typed}2\n{typed}1\n" in commands and commands.count("experiment=optuna") == 2
    lines = [line for line in report.splitlines() if "experiment=optuna" in line]
    assert len(lines) == 6 and not any(f" {name}=" in line for line in lines for name in names)  # no sampled value
    rows = list(csv.DictReader(open(second / "summary.csv")))
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["run"].startswith("lr=")
    recorded = first / "multirun.yaml"  # a sweep run before multirun.yaml was recorded: a trial's overrides
    kept = recorded.rename(first / "multirun.kept")
    try:
        assert command(first, "optuna") == ("python train.py -m experiment=optuna model.depth=1 trainer.max_epochs=1 "
                                            "trainer.threads=1 hydra.sweeper.n_trials=2")
    finally:
        kept.rename(recorded)


def test_optuna_section_without_its_storage(project: Path) -> None:
    db = project / "optuna.db"
    away = db.rename(project / "optuna.away")
    try:
        run_cli("report.py", "out=report_nodb", cwd=project)
    finally:
        away.rename(db)
    m8 = section((project / "report_nodb" / "report.md").read_text(), "## 8)")
    assert f"> _Étude non lue (fichier `{db}` introuvable) : seul le dernier run est résumé._" in m8
    assert m8.count(") : `python train.py -m experiment=optuna") == 2  # the runs are still listed
    run_name = next(csv.DictReader(open(optuna_sweeps(project)[-1] / "summary.csv")))["run"]
    assert f"| {run_name} | " in m8 and "Essais" not in m8


def test_report_on_the_tiny_imagenet_folder(tmp_path: Path) -> None:
    """The single-run presets unchanged but for `data=` on the Stanford-layout fixture, then the report: D1–D11
    hold the fixture's numbers."""
    files = tiny_imagenet_files()
    root = write_tiny_imagenet_folder(tmp_path / "tiny-imagenet-200", files)
    run_cli("train.py", "-m", "experiment=data,baselines,sanity,lr_finder", "data=tiny_imagenet_folder",
            f"data.root={root}", "model.width=8", "model.depth=1", "trainer.threads=1", cwd=tmp_path)
    outputs = {name: read_json(job / name) for job in job_dirs(tmp_path / "multirun")
               for name in ("data.json", "baselines.json", "sanity.json", "lr_finder.json") if (job / name).exists()}
    assert set(outputs) == {"data.json", "baselines.json", "sanity.json", "lr_finder.json"}
    assert outputs["sanity.json"]["verdict"] == "PASS"
    run_cli("report.py", cwd=tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    data = section(report, "## 1)")
    assert "(`data=tiny_imagenet_folder`)" in data and "- **Type d’entrée** : image 3 canaux" in data
    assert "(`meta[\"input_shape\"]`) : `(3, 64, 64)`" in data and "(`meta[\"num_classes\"]`) : 3" in data
    pool, test = len(files["train"]), len(files["val"])  # the official val/ is the test split
    val = math.ceil(0.1 * pool)  # data.val_fraction of the train pool, stratified
    assert f"Tailles : train {pool - val}, val {val}, test {test} ; 3 classes." in data
    for split, size in (("Train", pool - val), ("Val", val), ("Test", test)):
        assert f"| {split} | {size} |" in data
    per_class = {WORDS[w].split(",")[0]: re.search(rf"^\| {WORDS[w].split(',')[0]} \| (\d+) \| (\d+) \| (\d+) \|$",
                                                    data, re.M) for w in WNIDS}
    assert all(int(m[1]) + int(m[2]) == pool // 3 and int(m[3]) == test // 3 for m in per_class.values())
    grey = re.search(r"niveaux de gris \(R = G = B\) : train : (\d+), val : (\d+), test : (\d+)", data)
    assert list(ODD_TRAIN.values()).count("grey") == 1 and int(grey[1]) + int(grey[2]) == 1 and grey[3] == "0"
    assert f"Identifiants WordNet des classes : {', '.join(WNIDS)}" in data
    assert "- val : créé par tirage : 10 % du split « train » de la source, stratifié par classe, graine 42" in data
    assert "- train : le split « train/ » de la source, moins les exemples tirés pour val" in data
    assert "resize = 64 × 64" in data and "`crop_padding = 4`, `hflip = true` (train uniquement)" in data
    assert f"Batch train : `({pool - val}, 3, 64, 64)` ; `meta[\"input_shape\"]` = `(3, 64, 64)` → cohérent : **oui**" \
        in data
    assert "**Classe majoritaire** (val) — Métrique : `accuracy` → score = `0.3333` (attendu 0,3333)" in report
    assert "→ **réussi**" in report and "_____" not in report
    pngs = re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", report)
    assert {"figures/data_class_distribution.png", "figures/data_examples.png", "figures/lr_finder_lr_finder.png"} \
        <= set(pngs) and all((tmp_path / "report" / png).is_file() for png in pngs)


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


def test_reproducibility_lists_the_commands_of_whatever_ran(tmp_path: Path) -> None:
    """Section 11 with only an overfit run: its seed, config excerpt and exact command, not an "Aucun run"."""
    run_cli("train.py", "experiment=overfit", "model.width=4", "model.depth=1", "trainer.threads=1",
            "overfit.max_epochs=2", "overfit.loss_threshold=5", cwd=tmp_path)
    run_cli("report.py", cwd=tmp_path)
    repro = section((tmp_path / "report" / "report.md").read_text(), "## 11)")
    assert "- **Seed** : `42`" in repro and "(run `overfit`)" in repro and "Aucun run" not in repro
    assert "python train.py experiment=overfit model.width=4 model.depth=1 trainer.threads=1 overfit.max_epochs=2 "\
        "overfit.loss_threshold=5" in repro


def test_one_damaged_file_spoils_only_its_sections(project: Path, tmp_path: Path) -> None:
    """A truncated JSON, an empty one, a missing PNG, an invalid .hydra/config.yaml, a run dir deleted while the
    report reads: the sections of that file say what is wrong and which command remakes it; the rest is written."""
    from csc8607.report import Context, render
    from csc8607.report.runs import find_runs
    from csc8607.report.answers import ANSWERS, BODIES

    def report_of(damage: Callable[[Path], Any], after: Callable[[dict], Any] | None = None) -> str:
        """The report of a copy of the project damaged by `damage(root)` (and by `after(runs)` once found)."""
        shutil.rmtree(tmp_path / "p", ignore_errors=True)
        root = Path(shutil.copytree(project, tmp_path / "p", symlinks=True))
        damage(root)
        runs, _ = find_runs(root)
        if after is not None:
            after(runs)
        text = render(TEMPLATE, Context(runs, root, root / "report"), BODIES, ANSWERS)
        assert headings(text) == headings(TEMPLATE) and questions(text) == questions(TEMPLATE)
        return text

    def cut(root: Path) -> None:
        path = section_run(root, "data") / "data.json"
        path.write_text(path.read_text()[:100])

    text = report_of(cut)
    assert "data.json` est illisible (JSONDecodeError" in text and "à refaire : `python train.py -m experiment=" in text
    assert "Nombre total de paramètres" in text and "Métriques test" in text  # sanity and evaluate still there
    text = report_of(lambda root: (section_run(root, "data") / "data.json").write_text(""))
    assert "data.json` est illisible" in text and "Nombre total de paramètres" in text
    text = report_of(lambda root: (section_run(root, "baselines") / "baselines.png").unlink())
    assert "baselines.png` manque ; à refaire : `python train.py -m experiment=" in section(text, "**M0.**")
    assert "Nombre total de paramètres" in text
    text = report_of(lambda root: (section_run(root, "sanity") / ".hydra" / "config.yaml").write_text("a: [b\n"))
    assert "_Aucun run : `python train.py experiment=sanity`_" in text and "Métriques test" in text
    text = report_of(lambda root: None, after=lambda runs: shutil.rmtree(runs["sanity"]))  # deleted while read
    assert "sanity.json` manque ; à refaire : `python train.py experiment=sanity`" in text
    assert "Nombre de classes" in text and "Métriques test" in text

    def inject(root: Path) -> None:  # a dataset name and a class name with line breaks (a text label can be one)
        path = section_run(root, "data") / "data.json"
        data = json.loads(path.read_text())
        data["dataset"]["name"] = "digits\n# INJECTED HEADING"
        data.setdefault("class_names", ["0"])[0] = "a\n| b |\r\nc"
        path.write_text(json.dumps(data))

    text = report_of(inject)
    assert "\n# INJECTED" not in text and "digits # INJECTED HEADING" in text and "\n| b" not in text


def test_m6_from_the_sweep_shows_what_trained_and_m9_flags_an_older_export(project: Path, tmp_path: Path) -> None:
    """M6 trained from M5's winner: the report's final configuration is the winner's (not the command's defaults)
    and says where it came from; the earlier M9 evaluation, of the previous export, is flagged."""
    cwd = tmp_path / "project"
    shutil.copytree(project, cwd)
    run_cli("train.py", "experiment=full", "full.from_sweep=multirun/grid", "trainer.max_epochs=1", "trainer.threads=1",
            cwd=cwd)
    run_cli("report.py", cwd=cwd)
    report = (cwd / "report" / "report.md").read_text()
    best = next(csv.DictReader(open(cwd / "multirun" / "grid" / "summary.csv")))
    assert f"Hyperparamètre modèle A (width) = `{best['A']}`" in report and "`full.from_sweep`" in report
    assert "**Attention** : ce checkpoint" in report and "n'est pas celui de M6" in report


def test_a_later_run_on_other_data_is_left_out_and_said(project: Path, tmp_path: Path) -> None:
    """The latest `experiment=data` run is on another dataset than M6's: the report describes M6's dataset (the
    earlier data run) and says which run it left out, instead of mixing two datasets."""
    import os

    from csc8607.report import Context, render
    from csc8607.report.runs import find_runs
    from csc8607.report.answers import ANSWERS, BODIES

    root = Path(shutil.copytree(project, tmp_path / "p", symlinks=True))
    ours = section_run(root, "data")
    other = Path(shutil.copytree(ours, root / "outputs" / "later" / "data_other"))
    config = other / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("root: null", "root: /elsewhere/cifar", 1))
    later = (ours / "data.json").stat().st_mtime + 60
    os.utime(other / "data.json", (later, later))
    runs, left_out = find_runs(root)
    assert runs["data"] == ours and runs["full"] == section_run(root, "full")
    assert left_out == [f"data : le dernier run (`{other}`) porte sur une autre expérience (load_digits "
                        "(/elsewhere/cifar)) que ce rapport (load_digits) ; il n'est pas repris"]
    text = render(TEMPLATE, Context(runs, root, root / "report", left_out), BODIES, ANSWERS)
    assert f"> _Run laissé de côté — {left_out[0]}._\n" in text
    # a later grid of another model on the same data: M5 stays the grid of M6's model (M1's axes agree with it)
    grid = Path(shutil.copytree(root / "multirun" / "grid", root / "multirun" / "grid_resnet"))
    for config in grid.glob("*/.hydra/config.yaml"):
        config.write_text(config.read_text().replace("_target_: csc8607.models.ConvNet",
                                                     "_target_: csc8607.models.ResNet"))
    os.utime(grid / "summary.csv", (later, later))
    runs, left_out = find_runs(root)
    assert runs["grid"] == root / "multirun" / "grid" and runs["data"] == ours
    assert any(note.startswith("grid : ") and note.endswith(", modèle ResNet) que ce rapport (load_digits, modèle "
                                                            "ConvNet) ; il n'est pas repris") for note in left_out)


def test_report_out_a_file_or_runs_not_a_mapping_is_one_line(tmp_path: Path, in_process) -> None:
    """`report.py out=<a file>` (FileExistsError) and `report.py runs=5` (ValueError) were tracebacks; the file is
    left as it was."""
    (tmp_path / "afile").write_text("mine\n")
    for args, message in [(["out=afile"], "out=afile: "), (["out=afile/sub"], "is a file, not a folder"),
                          (["runs=5"], "runs=5 must give a run dir per preset")]:
        err = in_process("report.py", *args, exit_code=2)
        assert message in err and err.count("error:") == 1 and "Traceback" not in err, err
    assert (tmp_path / "afile").read_text() == "mine\n"
