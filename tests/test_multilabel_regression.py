"""Multi-label (CelebA layout: BCE, one logit per attribute, micro/macro F1) and regression (data.task=regression:
MSE, MAE/RMSE/R², best by val RMSE), through the real command line."""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from input_fixtures import run_sections, write_celeba
from test_figures import english_figures
from csc8607.data import ImageData
from csc8607.data.celeba import load_celeba
from csc8607.data.digits import load_digits
from csc8607.errors import UserError
from csc8607.metrics import Scores
from csc8607.report import num

FAST = ["model.width=8", "model.depth=1", "trainer.max_epochs=1", "trainer.batch_size=8"]


def test_celeba_layout_multi_hot_targets_and_partitions(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba")
    data = ImageData(partial(load_celeba, root=str(root), attributes=["Smiling", "Male"]), image_size=[16, 16])
    meta = data.meta
    assert meta["task"] == "multilabel" and meta["num_outputs"] == 2 and meta["class_names"] == ["Smiling", "Male"]
    assert meta["split_sizes"] == {"train": 28, "val": 6, "test": 6}
    rows = [line.split() for line in (root / "list_attr_celeba.txt").read_text().splitlines()[2:]]
    expected = torch.tensor([[float(r[2] == "1"), float(r[3] == "1")] for r in rows[:28]])
    assert torch.equal(data.splits["train"].targets, expected)
    with pytest.raises(UserError, match="no attribute 'Smilling' \\(did you mean Smiling\\?\\)"):
        load_celeba(str(root), attributes=["Smilling"])
    (root / "list_eval_partition.txt").write_text("".join(f"{r[0]} 0\n" for r in rows[:34]) +
                                                  "".join(f"{r[0]} 2\n" for r in rows[34:]))
    carved = ImageData(partial(load_celeba, root=str(root), attributes=["Male"]), image_size=[16, 16])
    assert carved.meta["split_sizes"]["test"] == 6 and "au hasard" in carved.meta["split_protocol"]["val"]


def test_regression_metrics_match_torchmetrics() -> None:
    from torchmetrics import regression as tmr

    g = torch.Generator().manual_seed(0)
    reg, refs = Scores("regression", 1), [tmr.MeanAbsoluteError(), tmr.MeanSquaredError(squared=False), tmr.R2Score()]
    for size in (13, 40):
        y = torch.randn(size, generator=g) * 2 + 5
        pred = y + torch.randn(size, generator=g)
        reg.update(pred[:, None], y)
        for metric in refs:
            metric.update(pred, y)
    got = reg.compute()
    for key, metric in zip(("mae", "rmse", "r2"), refs):
        assert abs(got[key] - metric.compute().item()) < 1e-5, key


def test_digits_as_regression() -> None:
    data = ImageData(load_digits, 0.15, 0.15, channels=1, task="regression")
    assert data.meta["num_outputs"] == 1 and data.splits["train"].targets.dtype == torch.float32
    assert set(data.splits["train"].targets.unique().tolist()) == set(range(10))
    assert abs(data.meta["target_stats"]["mean"] - 4.5) < 0.2 and data.meta["target_stats"]["variance"] > 7


def test_regression_target_that_is_not_a_number_is_one_error(tmp_path: Path) -> None:
    from image_fixtures import write_image_folder

    root = write_celeba(tmp_path / "celeba")
    pets = write_image_folder(tmp_path / "pets")
    proc = run_cli("train.py", "data=image_folder", f"data.root={pets}", "data.task=regression",
                   "trainer.monitor=val/rmse", "trainer.monitor_mode=min", *FAST, cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "target 'cat' that is not a number" in errors[0]
    proc = run_cli("train.py", "data=celeba", f"data.root={root}", "data.attributes=[Smiling,Bald]", *FAST,
                   cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "no attribute 'Bald'" in errors[0]


def test_celeba_sections_train_with_bce_and_report_f1(tmp_path: Path, in_process) -> None:
    root = write_celeba(tmp_path / "celeba")
    results = run_sections(tmp_path, "data=celeba", f"data.root={root}", "data.attributes=[Smiling,Male,Eyeglasses]",
                           "data.image_size=[16,16]", *FAST[:2], launch=in_process)
    assert results["train"]["meta"]["task"] == "multilabel" and results["train"]["meta"]["num_outputs"] == 3
    assert {"f1", "f1_micro", "accuracy"} <= set(results["train"]["test"])
    assert len(results["data"]["class_counts"]["train"]) == 3  # positives per attribute
    counts, sizes = results["data"]["class_counts"], results["data"]["split_sizes"]
    assert results["data"]["label_cardinality"]["train"] == pytest.approx(sum(counts["train"]) / sizes["train"])
    assert all("+" in label or label in ("Smiling", "Male", "Eyeglasses", "none")
               for label in results["data"]["examples"]["train"])
    assert abs(results["sanity"]["expected_initial_loss"] - math.log(2)) < 1e-9
    assert results["train"]["monitor"] == "val/f1"  # trainer.monitor=auto: macro F1 for multi-label
    val = results["baselines"]["val"]
    for name in ("always_0", "always_1", "majority"):  # per attribute, the engine's scores = the closed forms
        for key in ("per_class_accuracy", "per_class_f1"):
            assert val["measured"][name][key] == pytest.approx(val["expected"][name][key], abs=1e-9), (name, key)
    assert val["measured"]["always_0"]["f1"] == 0 and val["measured"]["always_1"]["f1"] > 0
    assert "**Toujours 1 (tous les attributs)** (val) — Métrique : `f1`" in results["report"]
    assert "| Eyeglasses |" in results["report"]  # M0's per-attribute table


def test_regression_sections_train_on_digits_best_by_val_rmse(tmp_path: Path, in_process) -> None:
    """data.task=regression alone: the monitor follows the task (val/rmse, min) and every section's report text
    speaks of the regression's metrics and its train-mean baseline."""
    results = run_sections(tmp_path, "data.task=regression", "data.loss=l1", *FAST[:2],
                           presets="data,baselines,sanity,smoke,lr_finder,full", launch=in_process)
    metrics = results["train"]
    history = metrics["history"]
    assert {"val/mae", "val/rmse", "val/r2", "train/rmse"} <= set(history[0]) and metrics["monitor"] == "val/rmse"
    assert metrics["best_value"] == min(row["val/rmse"] for row in history) and metrics["meta"]["loss"] == "l1"
    assert {"mae", "rmse", "r2"} <= set(metrics["test"]) and results["full"]["monitor"] == "val/rmse"
    measured, expected = (results["baselines"]["val"][k]["train_mean"] for k in ("measured", "expected"))
    assert all(abs(measured[k] - expected[k]) < 1e-4 for k in ("rmse", "mae", "loss", "r2"))  # loss: L1 of the mean
    assert results["sanity"]["loss"] == "L1Loss" and results["sanity"]["verdict"] == "PASS"
    assert len(results["data"]["class_counts"]["train"]) == 10  # target histogram bins
    report = results["report"]
    assert "**Moyenne de train**" in report and "Métrique : `rmse`" in report and "Loss function** : L1Loss" in report
    assert "la moyenne de train (M0) fait RMSE" in report and "BCEWithLogits" not in report
    assert not english_figures(tmp_path / "multirun")  # M0, M2, M4, M6 figures speak French, no "(1 epochs)"
    # D2/D4 describe the target's distribution, not classes (a max/min ratio of histogram bins)
    summary = results["data"]["target_summary"]["train"]
    assert summary["min"] == 0 and summary["max"] == 9 and summary["q25"] <= summary["median"] <= summary["q75"]
    assert f"; régression, pas de classes ; train : cible : moyenne {num(summary['mean'])}, écart-type " in report
    assert "| Médiane |" in report and "D4 histogramme de la cible" in report
    assert "classes de" not in report and "Déséquilibre" not in report and "classe." not in report


def test_overfit_on_regression_passes_relative_to_the_target_scale(tmp_path: Path, in_process) -> None:
    """M3 on a regression: PASS below overfit.loss_threshold x the loss of predicting the train mean (for MSE the
    target variance, ~8 on digits' 0..9), not an absolute loss whose meaning depends on the target's units; said in
    overfit.json and in the report's M3 line."""
    from conftest import read_json
    from csc8607.report import Context
    from csc8607.report.model import overfit

    in_process("train.py", "experiment=overfit", "data.task=regression", *FAST[:2], "overfit.num_samples=8",
               "overfit.val_samples=20", "overfit.max_epochs=40", "overfit.loss_threshold=0.2", "optim.lr=0.01",
               "trainer.threads=1")
    (run,) = [p.parent for p in (tmp_path / "outputs").rglob("overfit.json")]
    result = read_json(run / "overfit.json")
    variance = ImageData(load_digits, 0.15, 0.15, split_seed=42, task="regression").meta["target_stats"]["variance"]
    scale = result["threshold_scale"]
    assert scale["fraction"] == 0.2 and abs(scale["mean_prediction_loss"] - variance) < 1e-4
    assert abs(result["loss_threshold"] - 0.2 * variance) < 1e-4 and result["verdict"] == "PASS"
    assert result["final_train_loss"] < result["loss_threshold"]
    line = overfit(Context({"overfit": run}, tmp_path, tmp_path / "report"))
    assert "< seuil 0,2 × " in line and "(loss de la prédiction constante par la moyenne de train, M0) = " in line


def test_monitor_follows_the_task_and_an_explicit_one_wins() -> None:
    """trainer.monitor=auto (the default) becomes the task's metric with its direction once the data is known;
    a monitor typed by the user stays; a regression run cannot be ranked by accuracy."""
    from test_configs import compose_with
    from csc8607.run import resolve_monitor

    default = compose_with()
    assert default.trainer.monitor == "auto"
    for task, monitor, mode in (("regression", "val/rmse", "min"), ("multilabel", "val/f1", "max"),
                                ("multiclass", "val/accuracy", "max"), ("binary", "val/accuracy", "max")):
        cfg = default.copy()
        resolve_monitor(cfg, task)
        assert (cfg.trainer.monitor, cfg.trainer.monitor_mode) == (monitor, mode), task
    cfg = default.copy()
    cfg.trainer.monitor = "val/r2"  # as typed on the command line
    resolve_monitor(cfg, "regression")
    assert (cfg.trainer.monitor, cfg.trainer.monitor_mode) == ("val/r2", "max")
    cfg.trainer.monitor, cfg.trainer.monitor_mode = "val/accuracy", "auto"
    with pytest.raises(UserError, match="not trainer.monitor=val/accuracy: set trainer.monitor=val/rmse or leave it"):
        resolve_monitor(cfg, "regression")


def test_regression_losses_are_chosen_by_data_loss() -> None:
    from csc8607.engine import Engine

    pred, y = torch.tensor([[0.0], [3.0]]), torch.tensor([2.0, 3.0])
    for loss, value in ((None, 2.0), ("mse", 2.0), ("l1", 1.0), ("huber", 0.75)):  # errors 2 and 0
        engine = Engine("regression", 1, torch.device("cpu"), loss=loss)
        assert engine.loss(pred, y).item() == pytest.approx(value), loss
    from csc8607.data import Dataset, SourceData
    from csc8607.data.split import Split

    def source() -> SourceData:
        return SourceData({"train": Split(torch.randn(40, 2, 3), torch.arange(40) % 2)}, ["0", "1"], "tiny", "tests")

    assert Dataset(source(), 0.2, 0.2, task="regression", loss="huber").meta["loss"] == "huber"
    assert Dataset(source(), 0.2, 0.2).meta["loss"] == "cross_entropy"
    with pytest.raises(UserError, match="data.loss=l1 is for data.task=regression"):
        Dataset(source(), 0.2, 0.2, loss="l1")
    with pytest.raises(UserError, match="data.loss=hinge is not one of mse, l1, huber"):
        Dataset(source(), 0.2, 0.2, task="regression", loss="hinge")


def test_regression_grid_compare_and_optuna_fill_m5_m7_m8(tmp_path: Path, in_process) -> None:
    """The sweeps on a regression: the grid and the study rank by val/rmse, lowest first (the Optuna preset's
    `direction: auto` minimizes it without being told), compare plots it, and the report fills M5, M7 and M8."""
    import csv

    import optuna

    from conftest import job_dirs
    from csc8607.report import UNREADABLE_SECTION, Context, render
    from csc8607.report.runs import find_runs
    from csc8607.report.answers import ANSWERS, BODIES
    from test_report import TEMPLATE, decimal_slips, section

    tiny = ["data.task=regression", "model.depth=1", "trainer.max_epochs=1", "trainer.batch_size=32",
            "trainer.threads=1"]
    in_process("train.py", "experiment=grid", "optim.lr=1e-3,3e-3", "optim.weight_decay=0.0", "model.width=4", *tiny,
               "hydra.sweep.dir=multirun/grid")
    rows = list(csv.DictReader(open(tmp_path / "multirun" / "grid" / "summary.csv")))
    assert [r["status"] for r in rows] == ["ok", "ok"] and float(rows[0]["val_metric"]) <= float(rows[1]["val_metric"])
    in_process("train.py", "experiment=compare", "compare.runs=multirun/grid", *tiny)
    in_process("train.py", "experiment=optuna", "hydra.sweeper.n_trials=2", "model.width=choice(4, 6)", *tiny)
    study = optuna.load_study(study_name="digits-cnn", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.direction.name == "MINIMIZE" and [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    trial_dirs = [d for d in job_dirs(tmp_path / "multirun") if "grid" not in d.relative_to(tmp_path).parts]
    assert sorted(t.value for t in study.trials) == sorted(
        __import__("json").loads((d / "metrics.json").read_text())["best_value"] for d in trial_dirs)
    runs, _ = find_runs(tmp_path)
    report = render(TEMPLATE, Context(runs, tmp_path, tmp_path / "report"), BODIES, ANSWERS)
    assert UNREADABLE_SECTION not in report
    for heading in ("## 5)", "## 7)", "## 8)"):
        assert "_Aucun run" not in section(report, heading), heading
    assert "val/rmse" in section(report, "## 5)") and "val/rmse" in section(report, "## 8)")
    assert "![M7 comparaison par lr](figures/compare_compare_lr.png)" in section(report, "## 7)")
    assert not english_figures(tmp_path)  # M7's and M8's figures too
    assert not decimal_slips(report)  # M5's and M8's tables write numbers the French way, M7 its values as typed
