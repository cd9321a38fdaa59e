"""The engine on each task type, the model over input sizes, checkpoints."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
from pathlib import Path

import pytest
import torch

from csc8607 import checkpoint
from csc8607.data import ImageData, SourceData, Split
from csc8607.engine import Engine, NonFiniteLoss, fit
from csc8607.errors import UserError
from csc8607.metrics import expected_initial_loss
from csc8607.models import ConvNet, count_parameters


def synthetic(task: str, n: int = 240, classes: int = 3) -> SourceData:
    """Images whose label is written in the brightness of fixed pixels: learnable in a few epochs."""
    g = torch.Generator().manual_seed(0)
    if task == "multilabel":
        labels = (torch.rand(n, classes, generator=g) < 0.5).float()
        bits = labels
    else:
        labels = torch.randint(0, 2 if task == "binary" else classes, (n,), generator=g)
        bits = torch.nn.functional.one_hot(labels, classes).float()
    images = (torch.rand(n, 1, 8, 8, generator=g) * 60).to(torch.uint8)
    for c in range(classes):  # class c lights pixel (1 + c // 6, 1 + c % 6)
        images[:, 0, 1 + c // 6, 1 + c % 6] += (bits[:, c] * 190).to(torch.uint8)
    names = ["neg", "pos"] if task == "binary" else [f"c{i}" for i in range(classes)]
    return SourceData({"train": Split(images, labels)}, names, f"synthetic-{task}", "generated", task=task)


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_fit_learns_each_task(task: str, tmp_path: Path) -> None:
    data = ImageData(synthetic(task), 0.2, 0.2, channels=1)
    torch.manual_seed(0)
    model = ConvNet(data.meta["input_shape"], data.meta["num_outputs"], width=8, depth=1, stages=2)
    engine = Engine(task, data.meta["num_classes"], torch.device("cpu"))
    initial = engine.evaluate(model, data.loader("val", 64))
    per_logit = expected_initial_loss(task, data.meta["num_classes"])
    assert abs(initial["loss"] - per_logit) < 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    result = fit(engine, model, optimizer, data.loader("train", 32, train=True), data.loader("val", 64),
                 max_epochs=8, run_dir=tmp_path, monitor="val/loss", mode="min")
    assert result["history"][-1]["val/loss"] < initial["loss"] * 0.6
    assert result["best_value"] == min(row["val/loss"] for row in result["history"])
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    detailed = engine.evaluate(model, data.loader("test", 64), detailed=True)
    assert "confusion_matrix" in detailed and detailed["accuracy"] > 0.8


def test_top5_only_above_ten_classes() -> None:
    model = ConvNet([1, 8, 8], 12, width=4, depth=1, stages=1)
    data = ImageData(synthetic("multiclass", n=400, classes=12), 0.2, 0.2, channels=1)
    metrics = Engine("multiclass", 12, torch.device("cpu")).evaluate(model, data.loader("val", 50))
    assert "top5" in metrics and metrics["top5"] >= metrics["accuracy"]


def test_non_finite_loss_stops_with_step(tmp_path: Path) -> None:
    data = ImageData(synthetic("multiclass"), 0.2, 0.2, channels=1)
    model = ConvNet(data.meta["input_shape"], 3, width=4, depth=1, stages=1, batch_norm=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e12)
    with pytest.raises(NonFiniteLoss, match="at step"):
        fit(Engine("multiclass", 3, torch.device("cpu")), model, optimizer, data.loader("train", 16, train=True),
            data.loader("val", 64), max_epochs=3, run_dir=tmp_path, log_every=1,
            writer=type("W", (), {"add_scalar": lambda *a: None})())


@pytest.mark.parametrize("shape", [[1, 8, 8], [3, 32, 32], [3, 64, 64], [3, 224, 224]])
def test_convnet_runs_from_8_to_224_pixels(shape: list[int]) -> None:
    model = ConvNet(shape, 200, width=8, depth=1, stages=4).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *shape)).shape == (2, 200)


def test_width_and_depth_change_parameter_count() -> None:
    base = count_parameters(ConvNet([3, 64, 64], 10, width=16, depth=1))
    assert count_parameters(ConvNet([3, 64, 64], 10, width=32, depth=1)) > 3 * base
    assert count_parameters(ConvNet([3, 64, 64], 10, width=16, depth=2)) > base
    with pytest.raises(ValueError, match="model.width=0"):
        ConvNet([3, 64, 64], 10, width=0)


def test_checkpoint_roundtrip_and_refusals(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = checkpoint.save(tmp_path / "a.ckpt", {"model": {"w": torch.ones(2)}, "epoch": 3, "meta": {"x": [1.5]}})
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    state = checkpoint.load(path)
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.ckpt")
    (tmp_path / "cut.ckpt").write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserError, match="corrupt"):
        checkpoint.load(tmp_path / "cut.ckpt")
    torch.save({"model": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(UserError, match="not a csc8607 checkpoint"):
        checkpoint.load(tmp_path / "plain.ckpt")
    torch.save({"format": checkpoint.FORMAT, "payload": os.getcwd, "f": math.pi}, tmp_path / "code.ckpt")
    with pytest.raises(UserError, match="pickled code"):
        checkpoint.load(tmp_path / "code.ckpt")


def test_interrupted_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "best.ckpt", {"epoch": 1})

    class Boom:
        def __reduce__(self):
            raise pickle.PicklingError("interrupted")

    with pytest.raises(pickle.PicklingError):
        checkpoint.save(path, {"epoch": 2, "bad": Boom()})
    assert checkpoint.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]


def test_git_state_records_the_launch_dirs_commit_and_changes(tmp_path: Path) -> None:
    import subprocess

    from csc8607.runtime import git_state

    assert git_state(tmp_path) == {}  # not a checkout
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", "model.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = git("rev-parse", "HEAD").stdout.strip()
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.log").write_text("results are not code changes\n")
    assert git_state(tmp_path) == {"git_commit": head, "git_dirty": False}
    (tmp_path / "model.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"git_commit": head, "git_dirty": True}


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(trained_run: Path) -> None:
    """The flags of real /proc/cpuinfo lines: AMX (Sapphire Rapids), AVX512-BF16 (Zen 4), AVX2 only (older)."""
    from csc8607.runtime import pick_precision

    cpu = torch.device("cpu")
    amx = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    zen4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
    assert pick_precision("auto", cpu, amx) == ("bf16", "auto: this CPU computes bf16 natively (amx_bf16); "
                                                "trainer.precision=32 for fp32")
    assert pick_precision("auto", cpu, zen4)[0] == "bf16" and "avx512_bf16" in pick_precision("auto", cpu, zen4)[1]
    assert pick_precision("auto", cpu, avx2) == ("32", "auto: no native bf16 on this CPU")
    assert pick_precision("auto", cpu, "") == ("32", "auto: no native bf16 on this CPU")
    assert pick_precision("32", cpu, amx) == ("32", "set by trainer.precision")  # the one-key way back
    m = json.loads((trained_run / "metrics.json").read_text())  # the default run says what ran and why
    assert m["precision"] == pick_precision("auto", cpu)[0] and m["precision_why"] == pick_precision("auto", cpu)[1]
    assert f"precision {'fp32' if m['precision'] == '32' else m['precision']} on cpu ({m['precision_why']})" in \
        (trained_run / "train.log").read_text()


def test_compile_choice_its_record_and_one_line_refusals(trained_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.compile: false | true | auto (off on CPU, on for long enough CUDA runs); a missing C++ compiler
    refuses `true`; the default run records what it chose and why."""
    from csc8607.runtime import COMPILE_AUTO_MIN_STEPS, pick_compile

    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # pick_compile only names the device
    enough = COMPILE_AUTO_MIN_STEPS["cuda"]
    assert pick_compile(False, cpu, 10**6) == (False, "set by trainer.compile")
    assert pick_compile(True, cpu, 1) == (True, "set by trainer.compile")
    assert pick_compile("auto", cpu, 10**6) == (False, "auto: off on cpu (bench/compile_bench.py measured no gain "
                                                       "there); trainer.compile=true forces it")
    assert pick_compile("auto", cuda, enough - 1) == (False, f"auto: {enough - 1} steps < {enough}, too few to pay "
                                                             "back the compile time on cuda")
    has_triton = importlib.util.find_spec("triton") is not None
    assert pick_compile("auto", cuda, enough)[0] is has_triton
    for bad in ("yes", 1, "on", None):
        with pytest.raises(UserError, match=f"trainer.compile={bad} must be false, true or auto"):
            pick_compile(bad, cpu, enough)
    m = json.loads((trained_run / "metrics.json").read_text())
    steps = m["history"][-1]["step"]
    assert (m["compile"], m["compile_why"]) == pick_compile("auto", cpu, steps) == (False, m["compile_why"])
    assert f"compile off ({m['compile_why']})" in (trained_run / "train.log").read_text()
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(UserError, match="trainer.compile=true cannot run here: inductor compiles C.. with "
                                        "`no-such-compiler-here`, which is not on PATH"):
        pick_compile(True, cpu, enough)


def test_compile_quoted_true_is_called_a_string() -> None:
    """`trainer.compile='true'` said `trainer.compile=true must be false, true or auto`, contradicting itself."""
    from csc8607.runtime import pick_compile

    for quoted in ("true", "False"):
        with pytest.raises(UserError) as refused:
            pick_compile(quoted, torch.device("cpu"), 10)
        assert str(refused.value) == f"trainer.compile='{quoted}' is the string '{quoted}', not a boolean: write " \
            f"trainer.compile={quoted.lower()} unquoted"


def test_a_compiled_model_saves_and_loads_its_own_state_dict(trained_run: Path) -> None:
    """model.compile() compiles in place: a checkpoint of a compiled model has the module's keys (no
    `_orig_mod.`), so it loads into an uncompiled model and the other way round."""
    state = checkpoint.load(trained_run / "checkpoints" / "best.ckpt")["model"]
    model = ConvNet(input_shape=[1, 8, 8], num_outputs=10)
    model.compile()
    model.load_state_dict(state)
    assert list(model.state_dict()) == list(state)
    assert not any(key.startswith("_orig_mod.") for key in model.state_dict())


def test_compile_refusals_are_one_line(in_process, monkeypatch: pytest.MonkeyPatch) -> None:
    err = in_process("train.py", "trainer.compile=yes", "trainer.max_epochs=1", exit_code=2)
    assert err.strip() == "error: trainer.compile=yes must be false, true or auto"
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    err = in_process("train.py", "trainer.compile=true", "trainer.max_epochs=1", exit_code=2)
    assert err.strip().startswith("error: trainer.compile=true cannot run here") and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a cold inductor compile of train and eval graphs: about a minute on 2 cores
def test_a_compiled_run_evaluates_and_resumes(in_process, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    in_process("train.py", "trainer.compile=true", "trainer.max_epochs=1", "model.width=4", "model.depth=1",
               f"hydra.run.dir={run_dir}")
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["compile"] is True and m["compile_why"] == "set by trainer.compile"
    in_process("evaluate.py", f"ckpt={run_dir}/checkpoints/best.ckpt", f"hydra.run.dir={tmp_path / 'eval'}")
    assert json.loads((tmp_path / "eval" / "test_metrics.json").read_text())["metrics"]["accuracy"] > 0.2
    in_process("train.py", f"resume={run_dir}", "trainer.max_epochs=2")
    assert [row["epoch"] for row in json.loads((run_dir / "metrics.json").read_text())["history"]] == [1, 2]
