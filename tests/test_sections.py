"""Report sections end to end (one preset each, on the embedded digits), and the LR-finder rule on known curves.

To keep the suite fast, the single-run presets (data, baselines, sanity, overfit, lr_finder, full) run as the
jobs of one `-m` call (same composition and job code as `python train.py experiment=<name>`, one interpreter
start); grid (which sweeps by itself) and compare (a plain run) with their own command lines. The Optuna
study (run, then resumed) is tested with the report (tests/test_report.py).
"""
from __future__ import annotations

import csv
import json
import shutil
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import job_dirs, read_json, run_cli
from csc8607 import checkpoint
from csc8607.errors import UserError
from csc8607.sections.lr_finder import suggest
from test_configs import compose_with

# tiny model, one torch thread: on a busy 2-core machine OpenMP threads spin against other processes (3x slower)
SMALL = ["model.width=4", "model.depth=1", "trainer.threads=1"]


def assert_pngs(run_dir: Path, names: list[str]) -> None:
    for name in names:
        with Image.open(run_dir / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 50 and image.size[1] > 50


def tb_tags(event_dir: Path) -> tuple[set[str], set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return set(acc.Tags()["scalars"]), set(acc.Tags()["images"])


@pytest.fixture(scope="module")
def section_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """data, baselines, sanity, overfit, lr_finder and full on digits, as one multirun; section name -> job dir.

    An artifacts/best.ckpt is there before the run: `full` must keep it."""
    cwd = tmp_path_factory.mktemp("sections")
    (cwd / "artifacts").mkdir()
    (cwd / "artifacts" / "best.ckpt").write_bytes(b"previous checkpoint")
    run_cli("train.py", "-m", "experiment=data,baselines,sanity,overfit,lr_finder,full", *SMALL, "trainer.max_epochs=2",
            "++overfit.num_samples=16", "++overfit.val_samples=50", "++lr_finder.iterations=30", "++lr_finder.weight_decays=[0.0,1.0e-3]", cwd=cwd)
    jobs = {OmegaConf.load(d / ".hydra" / "config.yaml").section: d for d in job_dirs(cwd / "multirun")}
    assert set(jobs) == {"data", "baselines", "sanity", "overfit", "lr_finder", "full"}
    return jobs


def test_each_section_writes_the_result_and_figures_it_declares(section_jobs: dict[str, Path]) -> None:
    """What csc8607.sections.SECTIONS says a run holds (the report and report.runs read it) is what the run wrote."""
    from csc8607.sections import BY_NAME

    for name, job in section_jobs.items():
        assert (job / BY_NAME[name].result).is_file(), name
        assert all(list(job.glob(pattern)) for pattern in BY_NAME[name].figures), name
        assert {p.name for p in job.glob("*.png")} <= {p.name for f in BY_NAME[name].figures for p in job.glob(f)}


def test_data_section(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["data"]
    result = read_json(run_dir / "data.json")
    assert result["split_sizes"] == {"train": 1257, "val": 270, "test": 270}
    assert {split: sum(c) for split, c in result["class_counts"].items()} == result["split_sizes"]
    assert result["grey_images"] == result["split_sizes"]  # one channel: every image is grey
    assert result["class_counts"]["val"][1] == 28 and 1.0 <= result["imbalance_ratio_train"] < 1.1
    assert result["train_batch_shape"] == [64, 1, 8, 8] and result["batch_shape_matches_meta"]
    assert result["augment"] == {"crop_padding": 1} and len(result["preprocess"]["mean"]) == 1
    assert all(len(v) == 3 for v in result["examples"].values())
    assert_pngs(run_dir, ["examples.png", "class_distribution.png"])
    assert {"examples/train", "examples/val", "examples/test", "data/class_distribution"} <= tb_tags(run_dir / "tb")[1]


def test_baselines_section(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["baselines"]
    result = read_json(run_dir / "baselines.json")
    for split in ("val", "test"):
        measured, expected = result[split]["measured"], result[split]["expected"]
        majority = measured["majority"]
        assert majority["accuracy"] == pytest.approx(expected["majority"]["accuracy"], abs=1e-6)
        assert majority["f1"] == pytest.approx(expected["majority"]["f1"], abs=1e-6)
        assert majority["loss"] == pytest.approx(expected["majority"]["loss"], abs=1e-4)
        random = measured["uniform_random"]
        assert random["loss"] == pytest.approx(math.log(10), abs=1e-3) == expected["uniform_random"]["loss"]
        assert abs(random["accuracy"] - 0.1) < 0.06  # 270 draws at p = 0.1: sd 0.018
    assert_pngs(run_dir, ["baselines.png"])
    assert "baselines/majority/val/accuracy" in tb_tags(run_dir / "tb")[0]


def test_sanity_section(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["sanity"]
    result = read_json(run_dir / "sanity.json")
    assert result["verdict"] == "PASS" and all(result["checks"].values())
    assert result["expected_initial_loss"] == pytest.approx(math.log(10))
    assert abs(result["initial_loss"] - math.log(10)) <= result["tolerance"]
    assert result["total_params"] == sum(row["params"] for row in result["layers"]) > 0
    assert result["layers"][-1]["layer"] == "head" and result["layers"][-1]["output_shape"] == [64, 10]
    assert result["output_shape"] == [64, 10] and all(v > 0 for v in result["grad_norms"].values())
    assert_pngs(run_dir, ["grad_norms.png"])
    assert "sanity/initial_loss" in tb_tags(run_dir / "tb")[0]


def test_sanity_fails_with_a_user_error(tmp_path: Path) -> None:
    cfg = compose_with("experiment=sanity", *SMALL, "sanity.tolerance=0.0", f"paths.root={tmp_path}")
    from csc8607.sections import sanity

    with pytest.raises(UserError, match="initial_loss_near_expected"):
        sanity.run(cfg, tmp_path)
    assert read_json(tmp_path / "sanity.json")["verdict"] == "FAIL"


def test_overfit_section(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["overfit"]
    result = read_json(run_dir / "overfit.json")
    assert result["verdict"] == "PASS" and result["num_samples"] == 16 and len(set(result["sample_index"])) == 16
    assert result["final_train_loss"] < result["loss_threshold"] == 0.05
    assert result["weight_decay"] == 0.0 and result["augmentation"] is None
    assert result["epochs_run"] == len(result["history"]) < result["max_epochs"]
    assert result["val_samples"] == 50 and not (run_dir / "checkpoints").exists()  # no model worth keeping
    assert_pngs(run_dir, ["overfit_loss.png"])
    assert "train/loss" in tb_tags(run_dir / "tb")[0]


def test_lr_finder_section(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["lr_finder"]
    result = read_json(run_dir / "lr_finder.json")
    assert set(result["curves"]) == {"wd=0", "wd=0.001"}
    low, high = result["stable_window"]
    assert result["lr_min"] <= low <= result["suggested_lr"] <= high <= result["lr_max"]
    for curve in result["curves"].values():
        assert curve["steps"] == len(curve["lr"]) <= 30 and curve["diverged"] == (curve["steps"] < 30)
        assert all(b > a for a, b in zip(curve["lr"], curve["lr"][1:]))
    assert_pngs(run_dir, ["lr_finder.png"])
    assert {"lr_finder/lr", "lr_finder/loss"} <= tb_tags(run_dir / "tb" / "wd=0")[0]
    log = (run_dir / "train.log").read_text()  # progress names the curve it is on: three curves are not one
    assert "lr range test (wd=0): step 1/30" in log and "lr range test (wd=0.001): step 1/30" in log


def test_lr_finder_rule_on_known_curves() -> None:
    """loss = 1 - tanh((log10 lr - x0) / w): steepest at x0; half the steepest slope at x0 ± w·arccosh(√2)."""
    x = np.linspace(-6, 0, 601)
    x0, w = -2.5, 0.5
    loss = 1 - np.tanh((x - x0) / w)
    sg = suggest(10**x, loss)
    assert math.log10(sg["lr"]) == pytest.approx(x0, abs=0.01)
    half = w * math.acosh(math.sqrt(2))
    assert math.log10(sg["window_low"]) == pytest.approx(x0 - half, abs=0.02)
    assert math.log10(sg["window_high"]) == pytest.approx(x0 + half, abs=0.02)
    # a rising (diverging) tail after the minimum does not move the answer
    tail = np.concatenate([loss, loss[-1] + np.linspace(0, 5, 50) ** 2])
    x_tail = np.concatenate([x, np.linspace(0.01, 0.5, 50)])
    assert math.log10(suggest(10**x_tail, tail)["lr"]) == pytest.approx(x0, abs=0.01)
    # a curve that only goes down linearly: every point is as steep, the window is the whole range
    flat = suggest([1e-4, 1e-3, 1e-2, 1e-1], [4.0, 3.0, 2.0, 1.0])
    assert (flat["window_low"], flat["window_high"]) == (1e-4, 1e-1)
    assert math.isnan(suggest([], [])["lr"])
    # noise in the first points (smoothing warm-up) is left out with skip_start
    noisy = np.concatenate([[3.0, 1.0], loss[2:]])
    assert math.log10(suggest(10**x, noisy)["lr"]) == pytest.approx(-6, abs=0.02)
    assert math.log10(suggest(10**x, noisy, skip_start=5)["lr"]) == pytest.approx(x0, abs=0.01)


def test_lr_finder_rule_on_a_real_looking_curve_with_a_spike() -> None:
    """As on Tiny ImageNet: a plateau at ln 200, a descent to the lowest smoothed loss near lr 0.004, a rise, a
    divergence spike near 0.66 and a steep fall after it. The suggestion stays in the descent before the minimum."""
    from csc8607.figures import smooth

    rng = np.random.default_rng(0)
    x = np.linspace(-6, 0, 100)
    descent = 5.3 - 1.8 / (1 + np.exp(-(x + 3.4) / 0.3))  # falls fastest near lr 4e-4, flattens by 4e-3
    rise = np.where(x > -2.4, 1.0 * (x + 2.4), 0.0)
    spike = 40.0 * np.exp(-((x + 0.18) / 0.08) ** 2)
    raw = descent + rise + spike + rng.normal(0, 0.08, len(x))
    smoothed = smooth(raw, 0.9)
    lowest = 10 ** x[int(np.argmin(smoothed))]
    sg = suggest(10**x, smoothed, skip_start=5)
    assert 1e-4 < sg["lr"] < 2e-3 and sg["window_high"] <= lowest < 2e-2
    assert sg["window_low"] < sg["lr"] < sg["window_high"]


def test_full_section_exports_and_keeps_previous(section_jobs: dict[str, Path]) -> None:
    run_dir = section_jobs["full"]
    artifacts = run_dir.parents[3] / "artifacts"  # <cwd>/multirun/DATE/TIME/JOB
    kept = [p for p in artifacts.glob("best.*.ckpt")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"previous checkpoint"
    state = checkpoint.load(artifacts / "best.ckpt")
    metrics = read_json(run_dir / "metrics.json")
    assert state["epoch"] == metrics["best_epoch"] and state["best_value"] == pytest.approx(metrics["best_value"])
    assert len(metrics["history"]) == 2 and not state["config"]["scheduler"]
    config = OmegaConf.load(artifacts / "config.yaml")
    assert config.section == "full" and config.trainer.max_epochs == 2
    export = read_json(run_dir / "full.json")
    assert export["best_ckpt"] == str(artifacts / "best.ckpt") and export["previous_kept"] == [str(kept[0])]
    assert export["scheduler"] is None
    assert_pngs(run_dir, ["curves.png"])


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python train.py experiment=grid` (no -m) on a 2x2 grid whose lr=-1 jobs fail: the sweep dir."""
    cwd = tmp_path_factory.mktemp("grid")
    run_cli("train.py", "experiment=grid", "optim.lr=3.0e-3,-1.0", "model.width=4,8", "optim.weight_decay=0.0",
            "model.depth=1", "trainer.max_epochs=2", "trainer.threads=1", cwd=cwd)
    (sweep,) = [p.parent for p in (cwd / "multirun").glob("*/*/multirun.yaml")]
    return sweep


def test_grid_summary_records_failed_jobs(grid_sweep: Path) -> None:
    rows = list(csv.DictReader(open(grid_sweep / "summary.csv")))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    assert float(rows[0]["val_metric"]) >= float(rows[1]["val_metric"])
    assert {r["run"] for r in rows} == {f"lr={lr}_wd=0.0_width={w}_depth=1" for lr in (0.003, -1.0) for w in (4, 8)}
    for row in rows[:2]:
        assert row["lr"] == "0.003" and Path(row["checkpoint"]).is_file() and int(row["best_epoch"]) in (1, 2)
        metrics = read_json(Path(row["checkpoint"]).parents[1] / "metrics.json")
        assert metrics["run_name"] == row["run"] and metrics["test"] is None
    for row in rows[2:]:
        assert row["lr"] == "-1.0" and "optim.lr=-1.0 must be > 0" in row["error"] and row["val_metric"] == ""
    assert "| run | status |" in (grid_sweep / "summary.md").read_text()
    assert len(job_dirs(grid_sweep)) == 4


def test_compare_section(grid_sweep: Path, tmp_path: Path) -> None:
    # the compare job's own monitor (and so mode) is not the runs': the best per value follows the runs' (max accuracy)
    run_cli("train.py", "experiment=compare", f"compare.runs={grid_sweep}", "trainer.monitor=val/loss", cwd=tmp_path)
    (run_dir,) = job_dirs(tmp_path / "outputs")
    result = read_json(run_dir / "compare.json")
    # the runs differ only by width (the lr=-1 jobs failed): one figure, the other axes listed without one
    assert len(result["runs"]) == 2 and set(result["comparisons"]) == {"width"}
    assert result["single_value"] == {"lr": 0.003, "wd": 0.0, "depth": 1}
    values = [r["best_value"] for r in result["runs"]]
    assert len(set(values)) == 2 and max(result["comparisons"]["width"]["best_by_value"].values()) == max(values)
    assert set(result["comparisons"]["width"]["best_by_value"]) == {"4", "8"}
    assert_pngs(run_dir, ["compare_width.png"])
    assert not (run_dir / "compare_lr.png").exists() and "compare/width" in tb_tags(run_dir / "tb")[1]


def test_compare_refuses_mixed_experiments_and_the_report_drops_stale_figures(grid_sweep: Path, tmp_path: Path,
                                                                             in_process) -> None:
    """compare.runs of two datasets is one error naming the runs on each side; a report after a comparison that
    draws fewer figures removes the figures it wrote before (never a file put in report/figures by hand)."""
    jobs = [p.parents[1] for p in sorted(grid_sweep.glob("*/checkpoints/best.ckpt"))]
    other = tmp_path / "other" / jobs[1].name
    shutil.copytree(jobs[1], other)
    config = other / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("task: null", "task: regression"))
    err = in_process("train.py", "experiment=compare", f"compare.runs=['{jobs[0]}','{other}']", exit_code=2)
    assert err.count("error:") == 1 and f"data.task=null ({jobs[0].name}) vs data.task=regression ({other.name})" in err
    in_process("train.py", "experiment=compare", f"compare.runs={grid_sweep}", "compare.by=[width]")
    in_process("report.py")
    figures = tmp_path / "report" / "figures"
    assert (figures / "compare_compare_width.png").is_file()
    (figures / "mine.png").write_bytes(b"a screenshot of TensorBoard")
    in_process("train.py", "experiment=compare", f"compare.runs={grid_sweep}", "compare.by=[depth]")
    in_process("report.py")
    assert not (figures / "compare_compare_width.png").exists() and (figures / "mine.png").is_file()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Sans figure (une seule valeur parmi les 2 runs comparés, rien à comparer) : `depth=1`." in report



def test_m5_says_when_the_grids_best_is_no_better_than_m0(grid_sweep: Path, tmp_path: Path) -> None:
    """M5 beside M0: the grid's best val accuracy and the majority class's on val; a warning when the grid does
    not beat it (a run that learned nothing beyond the class prior)."""
    from csc8607.report import Context, fill
    from csc8607.report.answers import ANSWERS

    best = float(next(csv.DictReader(open(grid_sweep / "summary.csv")))["val_metric"])
    (tmp_path / "baselines").mkdir()
    for majority, warned in ((0.0, False), (best, True), (min(best + 0.1, 1.0), True)):
        checkpoint.write_json(tmp_path / "baselines" / "baselines.json",
                              {"val": {"measured": {"majority": {"accuracy": majority, "loss": 2.3}}}})
        c = Context({"grid": grid_sweep, "baselines": tmp_path / "baselines"}, tmp_path, tmp_path / "report")
        m5 = fill(c, ANSWERS["M5"])
        assert "Référence M0 sur val (classe majoritaire) : accuracy " in m5
        assert ("ne fait pas mieux que la référence M0 (classe majoritaire)" in m5) == warned, (majority, m5)


def test_full_trains_the_sweeps_winner(grid_sweep: Path, tmp_path: Path) -> None:
    """M6 from M5: `full.from_sweep` takes the best finished job's optimizer and model; typed keys still win."""
    best = next(csv.DictReader(open(grid_sweep / "summary.csv")))
    run_cli("train.py", "experiment=full", f"full.from_sweep={grid_sweep}", "trainer.max_epochs=1",
            "optim.weight_decay=0.01", "trainer.threads=1", cwd=tmp_path)
    (run_dir,) = job_dirs(tmp_path / "outputs")
    export = read_json(run_dir / "full.json")
    assert export["from_sweep"]["job"] == str(Path(best["checkpoint"]).parents[1])
    assert export["from_sweep"]["value"] == pytest.approx(float(best["val_metric"]))
    saved = checkpoint.load(run_dir / "checkpoints" / "best.ckpt")["config"]
    assert saved["model"]["width"] == int(best["A"]) and saved["optim"]["lr"] == float(best["lr"])
    assert saved["optim"]["weight_decay"] == 0.01
    proc = run_cli("train.py", "experiment=full", f"full.from_sweep={tmp_path}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "is not a sweep dir (no multirun.yaml)" in proc.stderr


def test_grid_ties_go_to_the_lower_val_loss(grid_sweep: Path, tmp_path: Path) -> None:
    """Equal val accuracy (frequent on a small val split): the summary and M6's winner pick the lower val loss."""
    from conftest import app_config
    from csc8607.sections.full import sweep_winner
    from csc8607.sweep import summarize

    sweep = tmp_path / "sweep"
    shutil.copytree(grid_sweep, sweep)
    jobs = [p.parents[1] for p in sorted(sweep.glob("*/checkpoints/best.ckpt"))]
    losses = [0.9, 0.4, 0.7, 0.6][:len(jobs)]
    for job, loss in zip(jobs, losses):
        metrics = read_json(job / "metrics.json")
        metrics["best_value"] = 0.5
        metrics["history"][metrics["best_epoch"] - 1]["val/loss"] = loss
        (job / "metrics.json").write_text(json.dumps(metrics))
    rows = summarize(sweep)
    assert [r["val_loss"] for r in rows if r["status"] == "ok"] == sorted(losses)
    _, source = sweep_winner(app_config("experiment=full", f"full.from_sweep={sweep}"))
    assert source["job"] == str(jobs[losses.index(min(losses))])


def test_damaged_job_records_are_failed_rows_not_crashes(grid_sweep: Path, tmp_path: Path) -> None:
    """A job whose metrics.json is truncated, or whose best value is NaN, is a failed row of the summary (and
    never M5's winner); the summary and full.from_sweep still work."""
    from csc8607.sweep import summarize

    sweep = tmp_path / "sweep"
    shutil.copytree(grid_sweep, sweep)
    ok = [p.parents[1] for p in sorted(sweep.glob("*/checkpoints/best.ckpt"))]
    (ok[0] / "metrics.json").write_text('{"history": [')
    metrics = read_json(ok[1] / "metrics.json")
    (ok[1] / "metrics.json").write_text(json.dumps({**metrics, "best_value": float("nan")}))
    rows = summarize(sweep)
    assert [r["status"] for r in rows] == ["failed"] * 4
    assert sum("unreadable record" in r["error"] for r in rows) == 2
    proc = run_cli("train.py", "experiment=full", f"full.from_sweep={sweep}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no finished job under" in proc.stderr


def test_grid_lr_from_a_run_without_lr_finder_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from csc8607.sweep import lr_axis

    (tmp_path / "lr_finder.json").write_text('{"suggested_lr": 0.0123}')
    assert lr_axis(tmp_path, [0.3, 1.0, 3.0]) == ["0.00369", "0.0123", "0.0369"]
    (tmp_path / "lr_finder.json").write_text('{"suggested_lr": 0.99999}')
    assert lr_axis(tmp_path, [1.0, 1e-5]) == ["1.0", "1e-05"]  # floats to Hydra, never the int 1
    for run_dir, factors, message in [(tmp_path / "nope", [1.0], "no lr_finder.json there"),
                                      (tmp_path, [0.0], "grid.lr_factors=[0.0] must list finite numbers > 0"),
                                      (tmp_path, [1, 1], "LRs 1.0, 1.0 repeat a value or overflow"),
                                      (tmp_path, [math.inf], "must list finite numbers > 0")]:
        with pytest.raises(SystemExit) as stop:
            lr_axis(run_dir, factors)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_grid_lr_from_a_finder_of_another_experiment_is_refused(tmp_path: Path, in_process) -> None:
    """M4's LR feeds M5 only on the same data and model: a finder run on another task or model is refused in one
    line before any job runs (it was taken silently)."""
    from omegaconf import OmegaConf, open_dict

    from conftest import app_config
    from csc8607.sweep import SweepLRFromFinder

    finder = tmp_path / "finder"
    recorded = app_config("experiment=lr_finder")
    with open_dict(recorded):
        del recorded["hydra"]
    (finder / ".hydra").mkdir(parents=True)
    OmegaConf.save(recorded, finder / ".hydra" / "config.yaml")
    (finder / "lr_finder.json").write_text('{"suggested_lr": 0.01}')
    same = app_config("experiment=grid", f"grid.lr_from={finder}", multirun=True)
    SweepLRFromFinder().on_multirun_start(same)
    assert same.hydra.sweeper.params["optim.lr"] == "0.003,0.01,0.03"
    small = ["grid.lr_factors=[1.0]", "optim.weight_decay=0.0", "trainer.max_epochs=1"]  # accepted: 1 short job
    for overrides, message in [(["data.task=regression", "model.width=4", "model.depth=1"],
                                "that LR finder ran on other data (data.task: None -> regression)"),
                               (["model=resnet", "model.width=4", "model.blocks=1", "model.stages=1"],
                                "that LR finder ran on another model (model._target_: ")]:
        err = in_process("train.py", "experiment=grid", f"grid.lr_from={finder}", *overrides, *small, exit_code=2)
        assert message in err and err.count("error:") == 1, err
    assert not (tmp_path / "multirun").exists()


def test_binary_majority_baseline_has_an_expected_accuracy_and_f1() -> None:
    """One logit: the majority predicts positive when the train prior is above 1/2, else negative (M0 showed NaN);
    its F1 is the macro F1 over the two classes, as the model's val/f1 (the predicted class's F1, the other's 0)."""
    import torch

    from csc8607.sections.baselines import expected

    positive = expected("binary", torch.tensor([0.7]), torch.tensor([0.6]))["majority"]
    negative = expected("binary", torch.tensor([0.5]), torch.tensor([0.6]))["majority"]
    assert positive["accuracy"] == pytest.approx(0.6) and positive["f1"] == pytest.approx(0.75 / 2)
    assert negative["accuracy"] == pytest.approx(0.4) and negative["f1"] == pytest.approx(0.8 / 1.4 / 2)
    only_positives = expected("binary", torch.tensor([0.7]), torch.tensor([1.0]))["majority"]
    assert only_positives["f1"] == pytest.approx(1.0)  # no negative in the split, none predicted: not counted


def test_worst_classes_leave_out_perfect_ones_and_examples_are_of_distinct_classes() -> None:
    """evaluate.py's summary: the worst classes are those below 1.00 (or it says all are perfect); the D10 examples
    of a split sorted by class are of different classes."""
    import torch

    from csc8607.sections.data import distinct_classes
    from csc8607.sections.evaluation import format_table

    def summary(per_class: list[float]) -> str:
        return format_table({"metrics": {"accuracy": sum(per_class) / 4, "per_class_accuracy": per_class},
                             "checkpoint": "best.ckpt", "epoch": 3, "class_names": ["a", "b", "c", "d"],
                             "val_from_checkpoint": {"val/accuracy": None}}, "test")

    assert "per-class accuracy: worst b 0.80, d 0.90; best c 1.00, a 1.00, d 0.90" in summary([1.0, 0.8, 1.0, 0.9])
    assert "per-class accuracy: all 4 classes at 1.00" in summary([1.0] * 4)
    sorted_split = torch.arange(4).repeat_interleave(25)  # 25 examples of class 0, then of 1, ...
    for seed in range(5):
        chosen = distinct_classes(sorted_split, 3, seed)
        assert len(set(sorted_split[chosen].tolist())) == 3
    assert len(distinct_classes(torch.zeros(10, dtype=torch.long), 3, 0)) == 3  # one class: any 3 examples
    assert len(distinct_classes(torch.rand(10, 4).round(), 3, 0)) == 3  # multi-hot targets
