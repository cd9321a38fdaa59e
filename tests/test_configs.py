"""Every config composes and instantiates; every value has its proper type; packaging files agree."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import REPO
from csc8607.config import build
from csc8607.data import Dataset
from csc8607.models import build_model

CONF = REPO / "conf"
GROUPS = {group: sorted(p.stem for p in (CONF / group).glob("*.yaml")) for group in ("data", "model", "optim", "scheduler", "experiment")}
SERIES_MODELS = {"cnn1d"}
TEXT_MODELS = {"text_rnn", "text_cnn"}  # token ids in: built with a vocabulary's size (tests/test_text.py trains them)
OFFLINE_DATA = {"digits"}  # data options built here; the others need files (generated in test_datasets.py)
NUMBER_LIKE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def compose_with(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        # paths.root is ${hydra:runtime.cwd} inside an app; composed here, it is given (the digits cache lives there)
        return compose(config_name="config", overrides=[f"paths.root={REPO}", *overrides], return_hydra_config=False)


def walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF)))
def test_yaml_values_are_typed(path: Path) -> None:
    """No number hides as a string (the `1e-3` trap): OmegaConf's loader must read every number as a number."""
    text = path.read_text()
    if path.parent.name == "experiment":
        assert text.startswith("# @package _global_\n# "), "presets start with the package line and a usage line"
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    for key, value in walk(loaded):
        assert not (isinstance(value, str) and NUMBER_LIKE.match(value)), f"{path.name}: {key}={value!r} is a string"


def test_lr_overrides_parse_as_float() -> None:
    cfg = compose_with("optim.lr=1e-3", "optim.weight_decay=1e-4")
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == 1e-3
    assert isinstance(cfg.optim.weight_decay, float)


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_option_composes_and_instantiates(group: str, option: str) -> None:
    cfg = compose_with(f"{group}={option}")
    if group == "data" and option not in OFFLINE_DATA:
        check_external_data_config(cfg)  # built from generated local copies in test_datasets.py
        return
    data = build(cfg.data, "data")
    assert isinstance(data, Dataset)
    if group == "model" and option in TEXT_MODELS:
        meta = {"input_shape": [12], "num_outputs": 3, "num_classes": 3, "task": "multiclass", "modality": "text",
                "input_dtype": "int32", "vocab_size": 50, "pad_id": 0}
        model = build_model(cfg.model, meta, 4, torch.device("cpu"))
        assert model(torch.randint(0, 50, (4, 12))).shape == (4, 3)
    elif group == "model" and option in SERIES_MODELS:  # (channels, length) inputs: a batch of series
        model = build_model(cfg.model, {**data.meta, "input_shape": [3, 40], "num_outputs": 5}, 4, torch.device("cpu"))
        assert model(torch.randn(4, 3, 40)).shape == (4, 5)
    else:
        model = build_model(cfg.model, data.meta, 4, torch.device("cpu"))
        batch = next(iter(data.loader("train", 4, train=True)))
        assert model(batch[0]).shape == (4, data.meta["num_outputs"])
    optimizer = build(cfg.optim, "optim", _partial_=False, params=model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer) and optimizer.param_groups[0]["lr"] == cfg.optim.lr
    if cfg.get("scheduler") and cfg.scheduler.get("_target_"):
        scheduler = build(cfg.scheduler, "scheduler", _partial_=False, optimizer=optimizer)
        assert hasattr(scheduler, "step")


def check_external_data_config(cfg) -> None:
    """A data option whose files are not in the repo: a cacheable source that resolves, known augment keys."""
    from hydra.utils import get_class, get_method

    data = cfg.data
    kind = get_class(data._target_)
    assert issubclass(kind, Dataset) and data.source._partial_ is True
    assert callable(get_method(data.source._target_))
    raw = OmegaConf.to_container(data, resolve=False)
    assert raw["cache_dir"] == "${paths.cache}" and "root" in raw
    assert set(data.augment) <= kind.augments


def test_environment_yml_matches_setup_cfg() -> None:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    requires = [r.strip() for r in parser["options"]["install_requires"].splitlines() if r.strip()]
    requires += [r.strip() for r in parser["options.extras_require"]["dev"].splitlines() if r.strip()]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(r for r in pip_section if not r.startswith("-e")) == sorted(requires)
    assert "python=3.11" in env["dependencies"]


def test_readme_says_where_runs_and_the_cache_go_and_how_to_install_for_cpu() -> None:
    """Outputs, the report and the cache follow Hydra's launch directory (`paths.root`), as the README says (not
    "in the repo"); the README offers torch's CPU wheel index as an option, beside its first two commands."""
    raw = OmegaConf.load(CONF / "config.yaml")
    assert OmegaConf.to_container(raw.paths)["root"] == "${hydra:runtime.cwd}"
    assert OmegaConf.to_container(raw.paths)["cache"] == "${oc.env:CSC8607_CACHE,${paths.root}/.cache}"
    assert OmegaConf.to_container(OmegaConf.load(CONF / "report.yaml"))["root"] == "${hydra:runtime.cwd}"
    readme = (REPO / "README.md").read_text()
    assert not re.search(r"\bin the repo\b", readme)  # ("in the report" is fine)
    assert "**launched from**" in readme and "`~/exp/.cache/`" in readme
    first = readme.index("```bash\n") + len("```bash\n")
    assert readme[first:].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python "
                                     "train.py\n")
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu && pip install -e ." \
        in readme


def test_readme_group_table_lists_every_data_and_model_option() -> None:
    """README's config-group table names every `data=` and `model=` option there is a YAML for (text, audio and
    series ones included), and its model table has a row for each model."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| group | options | notes |"):readme.index("| `optim` |")]
    models = readme[readme.index("| config | what | axes (A, B) |"):]
    for group in ("data", "model"):
        for option in sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml")):
            assert f"`{option}`" in table, (group, option)
    for option in sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml")):
        assert f"| `model={option}" in models, option
