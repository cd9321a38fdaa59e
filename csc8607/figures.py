"""PNG figures for the report, drawn like TensorBoard: a smoothed line over its faint raw curve, labelled axes.

Every function writes one PNG (matplotlib, Agg backend) and returns its path; `to_tensorboard` puts the same
figure in a run's events. A report generator can call these directly on metrics.json histories.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

Series = dict[str, tuple[Sequence[float], Sequence[float]]]  # label -> (x, y)
FEW = 8  # up to this many labels: qualitative colours and a legend in the axes; more: a sequential map, legend outside


def smooth(values: Sequence[float], weight: float = 0.6) -> np.ndarray:
    """TensorBoard's smoothing: exponential moving average with bias correction (debiased from the start)."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = weight * last + (1.0 - weight) * float(value)
        norm = weight * norm + (1.0 - weight)
        out.append(last / norm if norm > 0 else float(value))
    return np.asarray(out, dtype=float)


def save(fig: Any, path: Path | str) -> Path:
    """Write `fig` as a PNG atomically (with the usual file permissions, like every result) and close it."""
    from csc8607.checkpoint import atomic

    try:
        with atomic(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Description": words(fig)})
    finally:
        plt.close(fig)
    return Path(path)


def words(fig: Any) -> str:
    """The figure's text (titles, axis labels, legends) in reading order: the PNG's `Description`, for a screen
    reader and for checking that a figure speaks the report's language."""
    texts = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    texts += [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    return " | ".join(t for t in texts if t)


def colours(labels: Sequence[str], order: Sequence[str] | None = None) -> dict[str, Any]:
    """A colour per label: the qualitative C0..C9 for a few; for more (16 grid runs), a sequential map (viridis, dark
    to light) in the order of `order` (e.g. runs sorted by value), so that neighbours in value look alike and no two
    labels share a colour."""
    if len(labels) <= FEW:
        return {label: f"C{i % 10}" for i, label in enumerate(labels)}
    ranked = [label for label in (order or labels) if label in labels]
    ranked += [label for label in labels if label not in ranked]
    cmap = matplotlib.colormaps["viridis"]
    return {label: cmap(0.92 * i / (len(ranked) - 1)) for i, label in enumerate(ranked)}


def single_points(series: Series) -> bool:
    """Every curve is one point (1-epoch runs): drawn as markers side by side, without an x axis of one value."""
    return bool(series) and all(len(y) == 1 for _, y in series.values())


def draw_lines(ax: Any, series: Series, weight: float = 0.6, logx: bool = False,
               colour: dict[str, Any] | None = None) -> None:
    """One colour per label: the raw curve faint, the smoothed curve over it (no smoothing below 3 points); curves
    of one point each are markers at their label's position (the x value is the axis label: `epoch 1`)."""
    colour = colour or colours(list(series))
    points = single_points(series)
    for i, (label, (x, y)) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        if points:
            ax.plot([i], y, color=colour[label], linestyle="none", marker="o", markersize=7, label=label)
        elif weight > 0 and len(y) >= 3:
            ax.plot(x, y, color=colour[label], alpha=0.25, linewidth=1)
            ax.plot(x, smooth(y, weight), color=colour[label], linewidth=1.8, label=label)
        else:
            ax.plot(x, y, color=colour[label], linewidth=1.8, marker="o" if len(y) < 30 else None, markersize=3,
                    label=label)
    finish(ax, logx, bool(series) and len(series) <= FEW and not points)
    if points:
        ax.set_xticks([])
        ax.set_xlim(-0.5, len(series) - 0.5)


def finish(ax: Any, logx: bool, legend: bool) -> None:
    if logx:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def legend_outside(fig: Any, ax: Any) -> None:
    """One legend for the whole figure, right of the panels (many labels would hide the curves inside an axes)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)


def line_plot(path: Path | str, panels: dict[str, Series], xlabel: str, weight: float = 0.6, logx: bool = False,
              title: str | None = None, mark: float | None = None, span: tuple[float, float] | None = None,
              ylim: tuple[float, float] | None = None, order: Sequence[str] | None = None) -> Path:
    """One subplot per panel (y label = panel name), each a set of labelled curves sharing `xlabel`;
    `mark` draws a dashed vertical line at that x, `span` shades an x range (e.g. a suggested LR and window),
    `ylim` keeps the y axis to the useful range; `order` ranks the labels for the colour map (more than FEW)."""
    return save(line_figure(panels, xlabel, weight, logx, title, mark, span, ylim, order), path)


def line_figure(panels: dict[str, Series], xlabel: str, weight: float = 0.6, logx: bool = False,
                title: str | None = None, mark: float | None = None, span: tuple[float, float] | None = None,
                ylim: tuple[float, float] | None = None, order: Sequence[str] | None = None) -> Any:
    """`line_plot`'s figure, not saved yet."""
    labels = list(dict.fromkeys(label for series in panels.values() for label in series))
    colour = colours(labels, order)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels.items()):
        if span is not None:
            ax.axvspan(*span, color="0.85", zorder=0, label="fenêtre stable")
        if mark is not None:
            ax.axvline(mark, color="k", linestyle="--", linewidth=1, label=f"LR suggéré {mark:.3g}")
        draw_lines(ax, series, weight, logx, colour)
        if ylim is not None:
            ax.set_ylim(*ylim)
        only = {float(x[0]) for x, _ in series.values()} if single_points(series) else set()
        ax.set_xlabel(f"{xlabel} {next(iter(only)):g}" if len(only) == 1 else xlabel)  # one-point curves: `epoch 1`
        ax.set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if len(labels) > FEW or any(single_points(series) for series in panels.values()):  # markers fill the axes
        legend_outside(fig, axes[0][0])
    return fig


Groups = dict[str, list[tuple[Sequence[float], Sequence[float]]]]  # label -> its curves (x, y)


def grouped_plot(path: Path | str, panels: dict[str, Groups], xlabel: str, title: str | None = None) -> Path:
    """`grouped_figure` written as a PNG."""
    return save(grouped_figure(panels, xlabel, title), path)


def grouped_figure(panels: dict[str, Groups], xlabel: str, title: str | None = None) -> Any:
    """Like `line_plot`, but each label is a group of curves (e.g. all runs with lr=0.001) drawn in one colour (in
    the groups' order on a sequential map when there are many); runs of one point each are markers above their
    group's label (a strip plot), not on an x axis of one value."""
    labels = list(dict.fromkeys(label for groups in panels.values() for label in groups))
    colour = colours(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, groups) in zip(axes[0], panels.items()):
        points = all(len(y) == 1 for curves in groups.values() for _, y in curves)
        for i, (label, curves) in enumerate(groups.items()):
            for j, (x, y) in enumerate(curves):
                named = f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''})" if j == 0 else None
                if points:
                    ax.plot([i], y, color=colour[label], linestyle="none", marker="o", markersize=6, alpha=0.8,
                            label=named)
                else:
                    ax.plot(x, y, color=colour[label], linewidth=1.5, alpha=0.8,
                            marker="o" if len(y) < 30 else None, markersize=3, label=named)
        ax.set_ylabel(ylabel)
        finish(ax, False, bool(groups) and len(labels) <= FEW and not points)
        if points:  # the groups name the x ticks: no legend
            only = {float(x[0]) for curves in groups.values() for x, _ in curves}
            ax.set_xticks(range(len(groups)), list(groups), rotation=90 if len(groups) > 4 else 0, fontsize=7)
            ax.set_xlim(-0.5, len(groups) - 0.5)
            ax.set_xlabel(f"{xlabel} {next(iter(only)):g}" if len(only) == 1 else xlabel)
        else:
            ax.set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if len(labels) > FEW and not points:
        legend_outside(fig, axes[0][0])
    return fig


def history_curves(path: Path | str, history: list[dict[str, float]], metric: str = "accuracy",
                   title: str | None = None) -> Path:
    """train/val loss and train/val `metric` against the epoch, from a metrics.json history."""
    epochs = [row["epoch"] for row in history]

    def pair(name: str) -> Series:
        return {f"{split}/{name}": (epochs, [row[f"{split}/{name}"] for row in history])
                for split in ("train", "val") if f"{split}/{name}" in history[0]}

    return line_plot(path, {"loss": pair("loss"), metric: pair(metric)}, "époque", weight=0.0, title=title)


def optimization_history(path: Path | str, trials: Sequence[int], values: Sequence[float], maximize: bool,
                         ylabel: str, title: str | None = None) -> Path:
    """Optuna's optimization history: each finished trial's value (points) and the best value so far (steps)."""
    y = np.asarray(values, dtype=float)
    best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.scatter(trials, y, color="C0", s=20, zorder=3, label="valeur de l'essai")
    ax.step(trials, best, where="post", color="C3", linewidth=1.8, label="meilleure jusqu'ici")
    ax.set_xlabel("essai")
    ax.set_ylabel(ylabel)
    finish(ax, False, True)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def bar_chart(path: Path | str, groups: dict[str, Sequence[float]], labels: Sequence[str], ylabel: str,
              title: str | None = None) -> Path:
    """Grouped bars: one group of bars per label, one colour per entry of `groups` (e.g. per split)."""
    fig, ax = plt.subplots(figsize=(min(24.0, max(5.0, 0.3 * len(labels) * max(1, len(groups)))), 3.6))
    x = np.arange(len(labels))
    bar = 0.8 / max(1, len(groups))
    for i, (name, values) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * bar, values, bar, label=name)
    step = max(1, len(labels) // 60)  # at most ~60 tick labels (200 classes: every 4th)
    ax.set_xticks(x[::step])
    many = len(labels) > 20
    # long labels stand up when there are several (layer names); two or three read better flat
    vertical = many or (len(labels) > 4 and max((len(str(label)) for label in labels), default=0) > 6)
    ax.set_xticklabels(list(labels)[::step], rotation=90 if vertical else 0, fontsize=6 if many else 8)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def to_tensorboard(writer: Any, tag: str, path: Path | str, step: int = 0) -> None:
    """Put a written PNG into TensorBoard's Images tab."""
    image = plt.imread(str(path))[..., :3]
    writer.add_image(tag, np.ascontiguousarray(image.transpose(2, 0, 1)), step)
