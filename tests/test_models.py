"""Models: every config in conf/model/ trains one step; the ResNet and conv options; library models; the model
contract (meta by name) and its checks (shapes, memory, bad keys) with one-line errors."""
from __future__ import annotations

import resource
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, run_cli
from csc8607.engine import Engine
from csc8607.errors import UserError
from csc8607.models import ConvNet, ResNet, build_model, count_parameters

CPU = torch.device("cpu")
# one example of each kind of input a model may take; a config is tested on the first it accepts
EXAMPLE_METAS = [
    {"input_shape": [3, 16, 16], "num_outputs": 5, "num_classes": 5, "task": "multiclass", "modality": "image"},
    {"input_shape": [3, 32], "num_outputs": 5, "num_classes": 5, "task": "multiclass", "modality": "timeseries"},
    {"input_shape": [12], "num_outputs": 5, "num_classes": 5, "task": "multiclass", "modality": "text",
     "input_dtype": "int32", "vocab_size": 50, "pad_id": 0},
]
SMALLER = {"width": 8, "depth": 1, "blocks": 1, "stages": 2, "name": None}  # keys a config may have, made cheap


def model_configs() -> list[Path]:
    return sorted((REPO / "conf" / "model").glob("*.yaml"))


def small(node: OmegaConf) -> OmegaConf:
    """The config with its size keys (when it has them) lowered, its library model the first of `space`."""
    node = OmegaConf.create(OmegaConf.to_container(node))
    for key, value in SMALLER.items():
        if key in node and not isinstance(node[key], bool):
            node[key] = node.space[key][0] if value is None else value
    return node


@pytest.mark.parametrize("path", model_configs(), ids=lambda p: p.stem)
def test_every_model_config_trains_one_step(path: Path) -> None:
    node = small(OmegaConf.load(path))
    assert set(node.axes) == {"A", "B"} and all(key in node for key in node.axes.values()), "declare axes A and B"
    for meta in EXAMPLE_METAS:
        torch.manual_seed(0)
        try:
            model = build_model(node, meta, 4, CPU)
        except UserError as err:
            if any(m in str(err) for m in ("rejects inputs of shape", "not inputs of shape", "'vocab_size'")):
                continue  # made for another kind of input
            raise
        break
    else:
        pytest.fail(f"{path.name} accepts none of the example inputs {[m['input_shape'] for m in EXAMPLE_METAS]}")
    inputs = (torch.randint(1, 50, (4, *meta["input_shape"]), dtype=torch.int32) if meta.get("vocab_size")
              else torch.randn(4, *meta["input_shape"]))
    labels = torch.tensor([0, 1, 2, 3])
    out = model(inputs)
    assert out.shape == (4, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    engine = Engine("multiclass", 5, CPU)
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = engine.train_step(model, inputs, labels, torch.optim.SGD(model.parameters(), lr=0.1))
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    from csc8607.sections.sanity import layer_table

    rows = layer_table(model, inputs)  # M1: every parameter in exactly one row, every row with its output shape
    assert sum(r["params"] for r in rows) == count_parameters(model) and all(r["output_shape"] for r in rows)


def test_resnet_blocks_and_stems() -> None:
    basic = ResNet([3, 32, 32], 10, blocks=[1, 1], width=8)
    bottleneck = ResNet([3, 32, 32], 10, blocks=[1, 1], width=8, bottleneck=True, preact=True, se=4)
    assert basic.head.in_features == 16 and bottleneck.head.in_features == 64  # 4x wider bottleneck outputs
    assert isinstance(basic.stem[0], torch.nn.Conv2d) and basic.stem[0].kernel_size == (3, 3)
    with torch.device("meta"):  # the 224 px stem without allocating a ResNet-50
        big = ResNet([3, 224, 224], 1000, blocks=[3, 4, 6, 3], bottleneck=True)
    assert big.stem[0].kernel_size == (7, 7) and isinstance(big.stem[-1], torch.nn.MaxPool2d)
    assert 25_000_000 < count_parameters(big) < 26_000_000  # ResNet-50's 25.6 M
    grouped = ResNet([3, 32, 32], 10, blocks=1, stages=2, width=8, groups=4, dilation=2)
    separable = ResNet([3, 32, 32], 10, blocks=1, stages=2, width=8, separable=True)
    assert count_parameters(grouped) < count_parameters(ResNet([3, 32, 32], 10, blocks=1, stages=2, width=8))
    for model in (bottleneck, grouped, separable):
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("options, used", [
    ({"conv": "separable"}, lambda m: m.features[0].conv[0].groups == 3 and m.features[0].conv[1].kernel_size == (1, 1)),
    ({"conv": "inception"}, lambda m: [b[-3].kernel_size for b in m.features[0].conv.branches][:3]
     == [(1, 1), (3, 3), (5, 5)]),
    ({"groups": 2, "dilation": 2}, lambda m: m.features[1].conv.groups == 2 and m.features[1].conv.dilation == (2, 2)
     and m.features[0].conv.groups == 1),
    ({"se": 4}, lambda m: isinstance(m.features[0].se.gate[-1], torch.nn.Sigmoid)),
])
def test_conv_options(options: dict, used) -> None:
    model = ConvNet([3, 16, 16], 4, width=8, depth=2, stages=2, **options)
    assert used(model)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)


def test_torchvision_and_timm_adapt_channels_outputs_and_load_local_weights(tmp_path: Path) -> None:
    from csc8607.models.zoo import timm_model, torchvision_model

    grey = {"input_shape": [1, 32, 32], "num_outputs": 7}
    net = torchvision_model(**grey, name="resnet18")
    assert net.conv1.in_channels == 1 and net.conv1.stride == (1, 1) and isinstance(net.maxpool, torch.nn.Identity)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    loaded = torchvision_model(input_shape=[3, 32, 32], num_outputs=7, weights=str(tmp_path / "resnet18.pth"))
    assert torch.equal(loaded.layer1[0].conv1.weight, source.layer1[0].conv1.weight) and loaded.fc.out_features == 7
    tnet = timm_model(**grey, name="resnet10t")
    torch.save(tnet.state_dict(), tmp_path / "resnet10t.pth")
    again = timm_model(**grey, name="resnet10t", weights=str(tmp_path / "resnet10t.pth"))
    assert torch.equal(again.layer1[0].conv1.weight, tnet.layer1[0].conv1.weight)
    assert again(torch.randn(2, 1, 32, 32)).shape == (2, 7)


MYNET = '''
import torch
from torch import nn


class MyNet(nn.Module):
    """A student's model: takes input_shape, num_outputs and num_classes from meta by name."""

    def __init__(self, input_shape, num_outputs, num_classes, hidden=16, layers=1):
        super().__init__()
        assert num_classes == num_outputs
        size = 1
        for n in input_shape:
            size *= n
        blocks = [nn.Flatten()]
        for _ in range(layers):
            blocks += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.body = nn.Sequential(*blocks)
        self.scale = nn.Parameter(torch.ones(num_outputs))  # a parameter of its own, not in a child module
        self.head = nn.Linear(hidden, num_outputs)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale
'''
MYNET_YAML = """_target_: mynet.MyNet
hidden: 16
layers: 1
axes: {A: hidden, B: layers}
space: {hidden: [8, 16], layers: [1]}
"""


def custom_project(root: Path) -> list[str]:
    """A module and its model config in a student's folder; the overrides that select it."""
    (root / "conf" / "model").mkdir(parents=True)
    (root / "mynet.py").write_text(MYNET)
    (root / "conf" / "model" / "mynet.yaml").write_text(MYNET_YAML)
    return [f"hydra.searchpath=[file://{root / 'conf'}]", "model=mynet"]


# model -> (overrides, A key, B key, the key the grid sweeps (the other is set to one value))
END_TO_END = {
    "custom": (custom_project, "hidden", "layers", "hidden"),
    "resnet": (lambda root: ["model=resnet", "model.stages=2", "model.blocks=1"], "blocks", "width", "width"),
    "torchvision": (lambda root: ["model=torchvision", "model.name=resnet18"], "name", "small_input", "small_input"),
}


@pytest.mark.parametrize("model", END_TO_END)
def test_model_sanity_grid_compare_optuna_and_report(model: str, tmp_path: Path, in_process) -> None:
    """The report's path, unchanged, for a ResNet, a torchvision ResNet-18 and a student's module: the model's
    axes name the summary columns, run names, compare figures, Optuna parameters and report sections M1-M8."""
    import optuna

    from image_fixtures import write_image_folder

    select, a, b, swept = END_TO_END[model]
    data = ["data=image_folder", f"data.root={write_image_folder(tmp_path / 'pets')}", "data.image_size=[16,16]"]
    args = [*select(tmp_path), *data, "trainer.max_epochs=1", "trainer.threads=1", "trainer.batch_size=8"]
    in_process("train.py", "experiment=sanity", *args, "hydra.run.dir=outputs/sanity")
    sanity = OmegaConf.load(tmp_path / "outputs" / "sanity" / "sanity.json")
    assert sum(row.params for row in sanity.layers) == sanity.total_params > 0  # nested modules counted once
    if model == "custom":
        assert ["(model)", "MyNet", 2] in [[r.layer, r.type, r.params] for r in sanity.layers]  # its own (scale: one per class)
    in_process("train.py", "experiment=grid", *args, "optim.lr=1e-3", "optim.weight_decay=0.0",
               "hydra.sweep.dir=multirun/grid")
    summary = (tmp_path / "multirun" / "grid" / "summary.md").read_text()
    assert f"| A ({a}) | B ({b}) | params |" in summary
    rows = [r.split("|") for r in summary.splitlines() if r.startswith("| lr=0.001_wd=0.0_")]
    assert len(rows) == 2 and all(f"_{a}=" in r[1] and f"_{b}=" in r[1] for r in rows)
    assert len({int(r[7]) for r in rows}) == 2  # each job's own parameter count
    in_process("train.py", "experiment=compare", "compare.runs=multirun/grid", "hydra.run.dir=outputs/compare")
    assert (tmp_path / "outputs" / "compare" / f"compare_{swept}.png").is_file()
    in_process("train.py", "experiment=optuna", *args, "hydra.sweeper.n_trials=2", "hydra.sweep.dir=multirun/optuna")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage=storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2 and f"model.{swept}" in study.trials[0].params
    in_process("report.py")
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"`A ({a}) = " in report and f"`B ({b}) = " in report  # M1 (and M3) name the model's axes
    assert f"| Hyp-A ({a}) | Hyp-B ({b}) |" in report and f"Hyperparamètre modèle B ({b}) :" in report  # M5
    assert f"figures/compare_compare_{swept}.png" in report  # M7
    trials = next(line for line in report.splitlines() if line.startswith("| Essai |"))  # M8's trial table
    assert f"| model.{swept} |" in trials
    if model == "custom":
        check_custom_checkpoint(tmp_path, in_process)


def check_custom_checkpoint(root: Path, in_process) -> None:
    """The student's checkpoint evaluates where its module is importable, and elsewhere says why it cannot."""
    ckpt = next((root / "multirun" / "grid").glob("*/checkpoints/best.ckpt"))
    searchpath = f"hydra.searchpath=[file://{root / 'conf'}]"  # the student's conf/ declares mynet.MyNet
    in_process("evaluate.py", f"ckpt='{ckpt}'", searchpath, "hydra.run.dir=outputs/eval")
    assert (root / "outputs" / "eval" / "test_metrics.json").is_file()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    err = in_process("evaluate.py", f"ckpt='{ckpt}'", searchpath, exit_code=2, cwd=elsewhere)
    (line,) = err.strip().splitlines()
    assert line.startswith("error: cannot import model._target_=mynet.MyNet")
    assert "ModuleNotFoundError: No module named 'mynet'" in line and "PYTHONPATH" in line


def meta(shape: list[int], outputs: int = 3) -> dict:
    return {"input_shape": shape, "num_outputs": outputs, "num_classes": outputs, "task": "multiclass"}


@pytest.mark.parametrize("node, shape, message", [
    ({"_target_": "csc8607.models.zoo.torchvision_model", "name": "resnet1"}, [3, 32, 32],
     "model.name=resnet1 is not a torchvision model (did you mean resnet18"),
    ({"_target_": "csc8607.models.zoo.timm_model", "name": "vit_tiny_patch16"}, [3, 32, 32],
     "model.name=vit_tiny_patch16 is not a timm model (did you mean vit_tiny_patch16_384, vit_tiny_patch16_224"),
    ({"_target_": "csc8607.models.ResNet", "blocks": []}, [3, 32, 32], "model.blocks=[] lists no stage"),
    ({"_target_": "csc8607.models.ConvNet", "width": -4}, [3, 32, 32], "model.width=-4 must be at least 1"),
    ({"_target_": "csc8607.models.ConvNet", "width": 8, "groups": 3}, [3, 32, 32],
     "model.groups=3 does not divide the 8 channels"),
    ({"_target_": "csc8607.models.ResNet", "width": 8, "groups": 3}, [3, 32, 32], "model.groups=3 does not divide"),
    ({"_target_": "torchvision.models.resnet18"}, [3, 32, 32], "to (2, 1000), not to (2, 3)"),
    ({"_target_": "torch.nn.Sequential", "_args_": [{"_target_": "torch.nn.Flatten"},
      {"_target_": "torch.nn.Linear", "in_features": 12, "out_features": 3}]}, [3, 8, 8],
     "rejects inputs of shape (2, 3, 8, 8) (meta input_shape (3, 8, 8)): RuntimeError: "),
    ({"_target_": "nowhere.Net"}, [3, 8, 8], "cannot import model._target_=nowhere.Net (ModuleNotFoundError: "
                                             "No module named 'nowhere')"),
])
def test_bad_models_are_refused_in_one_line(node: dict, shape: list[int], message: str) -> None:
    with pytest.raises(UserError) as err:
        build_model(OmegaConf.create(node), meta(shape), 2, CPU)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_model_on_the_command_line_is_one_error_line_exit_2(in_process) -> None:
    """The refusals above reach the user through train.py as one `error:` line and exit 2 (the others alike)."""
    for n, (args, message) in enumerate(((["model=resnet", "model.blocks=[]"], "model.blocks=[] lists no stage"),
                                         (["model.width=8", "model.groups=3"], "model.groups=3 does not divide"))):
        err = in_process("train.py", *args, "trainer.max_epochs=1", f"hydra.run.dir=outputs/{n}", exit_code=2)
        (line,) = [line for line in err.splitlines() if line.strip()]
        assert line.startswith("error: ") and message in line


class DataDependent(torch.nn.Module):
    """A forward that reads a value (`.item()`): impossible on meta tensors, fine on real ones."""

    def __init__(self, input_shape: list[int], outputs: int = 3) -> None:  # outputs: not meta's num_outputs
        super().__init__()
        self.head = torch.nn.Linear(input_shape[0], outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 if x.abs().max().item() < 1e6 else 0.0
        return self.head(x.mean(dim=(2, 3))) * scale


def test_a_model_that_cannot_run_on_meta_tensors_is_checked_on_real_ones() -> None:
    model = build_model(OmegaConf.create({"_target_": "test_models.DataDependent"}), meta([3, 8, 8]), 4, CPU)
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    with pytest.raises(UserError, match=r"maps inputs of shape \(2, 3, 8, 8\) to \(2, 3\), not to \(2, 5\)"):
        build_model(OmegaConf.create({"_target_": "test_models.DataDependent"}), {**meta([3, 8, 8]),
                    "num_outputs": 5, "num_classes": 3}, 4, CPU)


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # the old code failed here instead of refusing


def test_oversized_model_refused_before_allocating(tmp_path: Path) -> None:
    """model.stages=40 grew to 23 GB and was killed: the size is now measured on the meta device first."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "model.stages=12", "trainer.max_epochs=1",
                           "hydra.run.dir=out"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_memory, env={**os.environ, "PYTHONPATH": str(REPO)})
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and line.startswith("error: model csc8607.models.ConvNet needs about ")
    assert "available: make it smaller (model.* keys) or lower trainer.batch_size" in line
    node = OmegaConf.load(REPO / "conf" / "model" / "cnn.yaml")
    node.stages = 40  # channels beyond what a tensor's size can count
    with pytest.raises(UserError, match="model csc8607.models.ConvNet is far too large to build"):
        build_model(node, meta([1, 8, 8]), 64, CPU)


def test_timm_vit_is_built_for_the_datas_image_size(tmp_path: Path) -> None:
    """vit_tiny_patch16_224 (made for 224 px only) on 32 px greyscale data: built for 32 px, local 224 px RGB weights
    resampled to it; data smaller than one patch, or a fixed-size model without timm's img_size: one line."""
    from csc8607.models.zoo import timm_model

    vit = OmegaConf.create({"_target_": "csc8607.models.zoo.timm_model", "name": "vit_tiny_patch16_224"})
    model = build_model(vit, meta([1, 32, 32]), 2, CPU)
    assert model.patch_embed.img_size == (32, 32) and model(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    source = timm_model([3, 224, 224], 1000, name="vit_tiny_patch16_224")
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    loaded = timm_model([1, 32, 32], 3, name="vit_tiny_patch16_224", weights=str(tmp_path / "vit.pth"))
    assert loaded.pos_embed.shape[1] == 1 + 2 * 2 and source.pos_embed.shape[1] == 1 + 14 * 14  # class token + patches
    assert torch.equal(loaded.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    with pytest.raises(UserError, match=r"rejects inputs of shape \(2, 1, 8, 8\).*Kernel size: \(16 x 16\)"):
        build_model(vit, meta([1, 8, 8]), 2, CPU)
    with pytest.raises(UserError, match=r"model.name=csc8607_fixed_24px takes 24x24 images only .* the data's are "
                                        r"32x32: set data.image_size=\[24, 24\] or choose another model"):
        build_model(OmegaConf.create({"_target_": "csc8607.models.zoo.timm_model", "name": register_fixed_size()}),
                    meta([3, 32, 32]), 2, CPU)


class FixedSize(torch.nn.Module):
    """A model made for 24x24 inputs only, with no img_size argument (timm's constructor arguments otherwise)."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.head = torch.nn.Linear(in_chans * 24 * 24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


def register_fixed_size() -> str:
    """FixedSize in timm's registry, with a pretrained config that says it takes 24x24 inputs only."""
    import sys

    from timm.models import register_model

    def csc8607_fixed_24px(pretrained: bool = False, **kwargs) -> torch.nn.Module:
        return FixedSize(**{k: v for k, v in kwargs.items() if k not in ("pretrained_cfg", "pretrained_cfg_overlay",
                                                                          "cache_dir")})  # timm's own arguments

    sys.modules[__name__].default_cfgs = {"csc8607_fixed_24px": {"input_size": (3, 24, 24), "fixed_input_size": True}}
    return register_model(csc8607_fixed_24px).__name__


def test_timm_pretrained_offline_is_one_error_line(tmp_path: Path) -> None:
    proc = run_cli("train.py", "model=timm", "model.name=resnet10t", "model.pretrained=true", "trainer.max_epochs=1",
                   cwd=tmp_path, check=False, timeout=120)
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "cannot get the resnet10t weights" in line and "model.weights=" in line


def test_grid_preset_sweeps_the_model_axes_unless_the_command_line_sets_them() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from csc8607.sweep import SweepModelAxes

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=grid", "model=resnet", "model.width=8"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    SweepModelAxes().on_multirun_start(cfg)
    params = cfg.hydra.sweeper.params
    assert params["model.blocks"] == "choice(1, 2)" and "model.width" not in params  # typed: one value, not swept
    assert list(params)[:2] == ["optim.lr", "optim.weight_decay"]


def test_layer_table_of_a_recurrent_model() -> None:
    from csc8607.sections.sanity import layer_table

    class Recurrent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(4, 6, batch_first=True)
            self.head = torch.nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0][:, -1])

    model = Recurrent()
    rows = layer_table(model, torch.zeros(2, 5, 4))
    assert [(r["layer"], r["output_shape"]) for r in rows] == [("rnn", [2, 5, 6]), ("head", [2, 3])]
    assert sum(r["params"] for r in rows) == count_parameters(model)
