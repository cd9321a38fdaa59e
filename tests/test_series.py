"""Time series: the UEA/UCR `.ts`/`.tsv` and UCI HAR layouts, per-channel normalization, windows, batched
augmentations, cnn1d, and one training run per source through the real command line."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from input_fixtures import run_sections, write_ts, write_uci_har
from csc8607.data.series import SeriesData, fill_missing
from csc8607.data.series_files import load_uea, load_uci_har, read_ts
from csc8607.errors import UserError

FAST = ["model=cnn1d", "model.width=8", "model.depth=1", "trainer.max_epochs=1", "trainer.batch_size=8"]


def test_ts_file_splits_normalization_and_windows(tmp_path: Path) -> None:
    write_ts(tmp_path / "Waves_TRAIN.ts", per_class=10)
    write_ts(tmp_path / "Waves_TEST.ts", per_class=3, seed=1)
    data = SeriesData(partial(load_uea, root=str(tmp_path), name="Waves"), val_fraction=0.2)
    meta = data.meta
    assert meta["modality"] == "series" and meta["input_shape"] == [2, 32] and meta["class_names"] == ["c0", "c1", "c2"]
    assert meta["split_sizes"] == {"train": 24, "val": 6, "test": 9} and meta["input"]["length"] == 32
    x, y = next(iter(data.loader("train", 100)))
    assert x.dtype == torch.float32 and torch.allclose(x.mean(dim=(0, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2), unbiased=False), torch.ones(2), atol=1e-4)  # per channel, from train
    windowed = SeriesData(partial(load_uea, root=str(tmp_path), name="Waves"), val_fraction=0.2, window=16, stride=8)
    assert windowed.meta["input_shape"] == [2, 16] and windowed.meta["split_sizes"]["train"] == 24 * 3


def test_constant_channel_is_noted_and_normalizes_to_zero() -> None:
    from csc8607.data import SourceData, Split

    x = torch.randn(40, 3, 16)
    x[:, 1] = 2.5
    source = SourceData({"train": Split(x, torch.arange(40) % 2)}, ["a", "b"], "flat", "here")
    data = SeriesData(source)
    assert data.meta["notes"]["decoding"]["constant channels in train"] == [1]
    batch, _ = next(iter(data.loader("train", 64)))
    assert torch.isfinite(batch).all() and (batch[:, 1] == 0).all()


def test_series_augmentations_are_batched_and_replayable() -> None:
    from csc8607.data.series import SeriesBatches

    g = torch.Generator().manual_seed(0)
    x = torch.arange(20, dtype=torch.float32).repeat(64, 3, 1)  # (64, 3, 20)
    shift = SeriesBatches([0.0] * 3, [1.0] * 3, {"shift": 3}, "cpu")
    out = shift.apply(x, shift.draw(64, tuple(x.shape), g))
    moved = (out[:, 0, 5] - x[:, 0, 5]).abs()
    assert moved.max() <= 3 and (moved > 0).any() and torch.equal(out.sort(dim=2).values, x)  # a circular shift
    scale = SeriesBatches([0.0] * 3, [1.0] * 3, {"scaling": 0.2, "jitter": 0.0}, "cpu")
    factors = scale.apply(torch.ones(500, 3, 20), scale.draw(500, (500, 3, 20), g))
    assert (factors.std(dim=2) < 1e-6).all() and 0.15 < factors[:, :, 0].std() < 0.25  # one factor per series
    jitter = SeriesBatches([0.0] * 3, [1.0] * 3, {"jitter": 0.1}, "cpu")
    noisy = jitter.apply(torch.zeros(200, 3, 20), jitter.draw(200, (200, 3, 20), g))
    assert 0.09 < noisy.std() < 0.11


def test_ucr_tsv_unequal_lengths_need_a_length(tmp_path: Path) -> None:
    rows = ["1\t" + "\t".join(["0.5"] * 10), "2\t" + "\t".join(["1.5"] * 8 + ["NaN"] * 2)] * 6
    (tmp_path / "Short_TRAIN.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError, match="unequal lengths \\(8..10\\).*data.length"):
        SeriesData(partial(load_uea, root=str(tmp_path), name="Short"))
    data = SeriesData(partial(load_uea, root=str(tmp_path), name="Short"), length=9, val_fraction=0.2,
                      test_fraction=0.2)
    assert data.meta["input_shape"] == [1, 9] and data.meta["notes"]["decoding"]["Short train"]["padded"] == 6
    assert data.meta["class_names"] == ["1", "2"]
    write_ts(tmp_path / "Uneven_TRAIN.ts", per_class=4, header={"equalLength": "false"}, lengths=[28, 32, 30])
    with pytest.raises(UserError, match="unequal lengths \\(28..32\\)"):
        SeriesData(partial(load_uea, root=str(tmp_path), name="Uneven"))
    uneven = SeriesData(partial(load_uea, root=str(tmp_path), name="Uneven"), length=32)
    assert uneven.meta["input_shape"] == [2, 32] and uneven.meta["notes"]["decoding"]["Uneven train"]["padded"] == 8


@pytest.mark.parametrize("header,message", [
    ({"dimensions": "3"}, "2 dimensions but the header says 3"),
    ({"seriesLength": "40"}, "32 steps but the header says @seriesLength 40"),
    ({"classLabel": "true c0 c1"}, "labels c2 are not in @classLabel"),
])
def test_ts_header_that_contradicts_its_data_is_one_error(header: dict, message: str, tmp_path: Path) -> None:
    write_ts(tmp_path / "Bad_TRAIN.ts", per_class=2, header=header)
    proc = run_cli("train.py", "data=uea", f"data.root={tmp_path}", "data.name=Bad", *FAST, cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "Bad_TRAIN.ts" in errors[0]
    assert "Traceback" not in proc.stderr


def test_uci_har_layout(tmp_path: Path) -> None:
    root = write_uci_har(tmp_path / "UCI HAR Dataset")
    data = SeriesData(partial(load_uci_har, root=str(root)))
    assert data.meta["input_shape"] == [9, 128] and data.meta["class_names"][0] == "WALKING"
    assert data.meta["split_sizes"]["test"] == 12 and data.meta["input"]["channel_names"][0] == "body_acc_x"
    (root / "test" / "y_test.txt").write_text("1\n7\n")
    with pytest.raises(UserError, match="different numbers of rows"):
        load_uci_har(str(root))


@pytest.mark.parametrize("source", ["uea", "uci_har"])
def test_series_sections_train_and_evaluate_end_to_end(source: str, tmp_path: Path, in_process) -> None:
    if source == "uea":
        write_ts(tmp_path / "ds" / "Waves_TRAIN.ts", per_class=10)
        write_ts(tmp_path / "ds" / "Waves_TEST.ts", per_class=3, seed=1)
        args = ["data=uea", f"data.root={tmp_path / 'ds'}", "data.name=Waves"]
    else:
        args = ["data=uci_har", f"data.root={write_uci_har(tmp_path / 'UCI HAR Dataset')}"]
    if source == "uea":  # M3, M4 and M6 once (27 train series: M3 memorizes 16)
        args += ["++overfit.num_samples=16"]
    presets = "data,baselines,sanity,smoke" + (",overfit,lr_finder,full" if source == "uea" else "")
    results = run_sections(tmp_path, *args, "model=cnn1d", "model.width=8", "model.depth=1", presets=presets,
                           launch=in_process)
    assert results["data"]["dataset"]["modality"] == "series" and results["data"]["grey_images"] is None
    assert results["data"]["dataset"]["input"]["length"] in (32, 128) and results["sanity"]["verdict"] == "PASS"
    majority = results["baselines"]["val"]
    assert abs(majority["measured"]["majority"]["accuracy"] - majority["expected"]["majority"]["accuracy"]) < 1e-6
    assert np.isfinite(results["train"]["history"][0]["train/loss"]) and results["evaluate"]["metrics"]["accuracy"] >= 0
    assert "séries temporelles (" in results["report"]  # D1 names the input type
    channels, length = results["data"]["dataset"]["input_shape"]
    assert f"séries temporelles ({channels} canaux × {length} pas)" in results["report"]  # French, agreeing
    assert "sans fenêtrage" in results["report"] and "pas None" not in results["report"]  # D6
    assert results["evaluate"]["precision"] == results["train"]["precision"]  # what evaluate.py ran at is recorded
    if source == "uea":
        assert results["full"]["monitor"] == "val/accuracy" and results["lr_finder"]["suggested_lr"] > 0
        assert results["overfit"]["verdict"] == "PASS"


def test_a_model_for_another_input_type_names_the_right_one(tmp_path: Path) -> None:
    """The default image `cnn` on series (or cnn1d on a log-mel, an image model on token ids) is refused in one
    line naming the model option of that input type, not with a shape error alone."""
    from test_configs import compose_with
    from csc8607.models import build_model

    write_ts(tmp_path / "Waves_TRAIN.ts", per_class=4)
    series = SeriesData(partial(load_uea, root=str(tmp_path), name="Waves")).meta
    audio = {"modality": "audio", "input_shape": [1, 64, 101], "num_outputs": 2, "num_classes": 2}
    text = {"modality": "text", "input_shape": [16], "input_dtype": "int32", "num_outputs": 2, "num_classes": 2}
    for meta, model, hint in ((series, "cnn", "for series inputs (2, 32) use model=cnn1d"),
                              (series, "resnet", "use model=cnn1d"), (audio, "cnn1d", "use model=cnn (a log-mel"),
                              (text, "cnn", "use model=text_cnn or model=text_rnn")):
        with pytest.raises(UserError, match="use model=") as err:
            build_model(compose_with(f"model={model}").model, meta, 4, torch.device("cpu"))
        assert hint in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert build_model(compose_with("model=cnn1d", "model.width=4").model, series, 4, torch.device("cpu"))


def test_ts_missing_values_are_interpolated_and_timestamps_refused(tmp_path: Path) -> None:
    path = write_ts(tmp_path / "Gaps_TRAIN.ts", per_class=4, header={"missing": "true"})
    lines = path.read_text().splitlines()
    first = lines.index("@data") + 1
    rows = [line.split(":") for line in lines[first:]]
    values = [float(v) for v in rows[0][1].split(",")]
    rows[0][1] = ",".join(["?", "?"] + [f"{v:.4f}" for v in values[2:5]] + ["?"] + [f"{v:.4f}" for v in values[6:]])
    rows[1][0] = ",".join(["?"] * len(values))  # a channel with no value at all
    path.write_text("\n".join(lines[:first] + [":".join(r) for r in rows]) + "\n")
    data = SeriesData(partial(load_uea, root=str(tmp_path), name="Gaps"), val_fraction=0.25, test_fraction=0.25)
    assert data.meta["notes"]["decoding"]["Gaps train"]["missing_filled"] == 3 + len(values)
    series, _, _ = read_ts(path)
    filled, count = fill_missing(series)
    assert count == 3 + len(values) and not any(np.isnan(s).any() for s in filled)
    x = filled[0][1]
    assert x[0] == x[1] == pytest.approx(values[2], abs=1e-4)  # before the first known value: that value
    assert x[5] == pytest.approx((values[4] + values[6]) / 2, abs=1e-4)  # between two: interpolated
    assert (filled[1][0] == 0).all()
    write_ts(tmp_path / "Gaps_TRAIN.ts", per_class=2, header={"missing": "false"})
    path.write_text(path.read_text().replace("@data\n", "@data\n?,", 1))  # a first value missing
    with pytest.raises(UserError, match="missing values '\\?' but the header says @missing false"):
        read_ts(path)
    write_ts(tmp_path / "Timed_TRAIN.ts", per_class=2, header={"timeStamps": "true"})
    with pytest.raises(UserError, match="Timed_TRAIN.ts: @timeStamps true .* is not supported"):
        load_uea(str(tmp_path), "Timed")


def test_optuna_on_a_ts_regression_says_how_to_minimize(tmp_path: Path, in_process) -> None:
    """A `.ts` file that declares a regression target: `direction: auto` chose before the data was read (maximize),
    and each trial, once it knows the task, refuses to be ranked the wrong way round, saying what to add."""
    import re

    for split, seed in (("TRAIN", 0), ("TEST", 1)):
        path = write_ts(tmp_path / "ds" / f"Reg_{split}.ts", per_class=4, seed=seed,
                        header={"classLabel": "false", "targetLabel": "true"})
        path.write_text(re.sub(r":c(\d)$", r":\g<1>.5", path.read_text(), flags=re.M))
    err = in_process("train.py", "experiment=optuna", "data=uea", f"data.root={tmp_path / 'ds'}", "data.name=Reg",
                     "model=cnn1d", "model.width=4", "model.depth=1", "trainer.max_epochs=1", "trainer.threads=1",
                     "hydra.sweeper.n_trials=1", "hydra.sweeper.storage=null", exit_code=2)
    assert "hydra.sweeper.direction=auto chose maximize before the data was read, but this regression data is " \
           "scored by val/rmse (monitor_mode min): add data.task=regression or hydra.sweeper.direction=minimize" in err
