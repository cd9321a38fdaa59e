"""Figures that read at a glance: 16 grid runs in 16 colours with the legend outside the axes, 1-epoch runs as
markers without an x axis of one value (matplotlib objects, in-process)."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex
from PIL import Image

from csc8607 import figures

RUNS = [f"lr={lr}_wd={wd}_width={w}_depth={d}" for lr in (1e-3, 3e-3) for wd in (0.0, 1e-4) for w in (8, 16)
        for d in (1, 2)]


def curve_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def outside(fig, legend, axes) -> bool:
    fig.canvas.draw()
    box = legend.get_window_extent()
    return all(not box.overlaps(ax.get_window_extent()) for ax in axes)


def test_sixteen_runs_get_sixteen_colours_in_value_order_and_the_legend_outside() -> None:
    panels = {"val/loss": {run: ([1, 2, 3], [2.0 - 0.1 * i, 1.5 - 0.1 * i, 1.0 - 0.05 * i])
                           for i, run in enumerate(RUNS)}}
    panels["val/accuracy"] = {run: ([1, 2, 3], [0.1, 0.2, 0.3 + 0.01 * i]) for i, run in enumerate(RUNS)}
    order = RUNS[::-1]  # best first
    fig = figures.line_figure(panels, "epoch", weight=0.0, order=order)
    try:
        axes = fig.axes
        lines = curve_lines(axes[0])
        assert len(lines) == 16 and len({to_hex(line.get_color()) for line in lines}) == 16
        colour = {line.get_label(): to_hex(line.get_color()) for line in lines}
        viridis = plt.get_cmap("viridis")
        assert colour[order[0]] == to_hex(viridis(0.0))  # sequential map in the given order
        assert all(ax.get_legend() is None for ax in axes) and len(fig.legends) == 1
        assert len(fig.legends[0].get_texts()) == 16 and outside(fig, fig.legends[0], axes)
    finally:
        plt.close(fig)


def test_one_epoch_runs_are_markers_without_an_epoch_axis() -> None:
    panels = {"val/loss": {run: ([1], [1.0 + 0.01 * i]) for i, run in enumerate(RUNS)}}
    fig = figures.line_figure(panels, "epoch", weight=0.0)
    try:
        (ax,) = fig.axes
        lines = curve_lines(ax)
        assert all(line.get_marker() == "o" and line.get_linestyle() == "None" for line in lines)
        assert sorted(float(line.get_xdata()[0]) for line in lines) == list(range(16))  # side by side
        assert list(ax.get_xticks()) == [] and ax.get_xlabel() == "epoch 1"
    finally:
        plt.close(fig)
    few = figures.line_figure({"loss": {"train/loss": ([1], [2.0]), "val/loss": ([1], [2.1])}}, "epoch", weight=0.0)
    try:
        (ax,) = few.axes
        assert ax.get_legend() is None and outside(few, few.legends[0], [ax]) and ax.get_xlabel() == "epoch 1"
        assert [line.get_marker() for line in curve_lines(ax)] == ["o", "o"]
    finally:
        plt.close(few)


def test_comparison_of_one_epoch_runs_is_a_strip_by_value() -> None:
    groups = {"lr=0.001": [([1], [0.5]), ([1], [0.6])], "lr=0.003": [([1], [0.7])]}
    fig = figures.grouped_figure({"val/accuracy": groups}, "epoch", title="M7")
    try:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_xticklabels()] == ["lr=0.001", "lr=0.003"]
        assert ax.get_xlabel() == "epoch 1"
        assert ax.get_legend() is None and not fig.legends and ax.get_xlim() == (-0.5, 1.5)
    finally:
        plt.close(fig)
    curves = {"lr=0.001": [([1, 2], [0.5, 0.6]), ([1, 2], [0.4, 0.7])], "lr=0.003": [([1, 2], [0.7, 0.8])]}
    fig = figures.grouped_figure({"val/accuracy": curves}, "epoch")
    try:
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr=0.001 (2 runs)", "lr=0.003 (1 run)"]
    finally:
        plt.close(fig)


# a figure's text in English (as the sections wrote it before they spoke the report's language)
ENGLISH_FIGURE = re.compile(r"\b(the|of|and|by|in|on|after|epochs?|training|comparison|suggested|window|learning|"
                            r"rate|trial|best|examples|norms|baselines?|step|frame|band|"
                            r"overfit|images|study|majority|uniform_random|train_mean)\b", re.I)


def english_figures(root: Path) -> dict[str, str]:
    """The PNGs below `root` whose text (titles, axis labels, legends: the PNG's Description) has English words."""
    found = {}
    for png in sorted(root.rglob("*.png")):
        with Image.open(png) as image:
            words = image.text["Description"]
        title = words.split(" | ")[0]  # a title is prose: a decimal comma (legends keep typed values: lr=0.001)
        if ENGLISH_FIGURE.search(words) or re.search(r"\(1 \w+s\)", words) or re.search(r"\d\.\d", title):
            found[png.name] = words
    return found


def test_a_figure_carries_its_words(tmp_path: Path) -> None:
    png = figures.history_curves(tmp_path / "curves.png", [{"epoch": 1, "train/loss": 1.0, "val/loss": 1.2}],
                                 metric="loss", title="M6 : entraînement complet, 1 époque")
    with Image.open(png) as image:
        assert image.text["Description"] == "M6 : entraînement complet, 1 époque | époque 1 | loss | train/loss | val/loss"
    assert not english_figures(tmp_path)
