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
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def draw_lines(ax: Any, series: Series, weight: float = 0.6, logx: bool = False) -> None:
    """One colour per label: the raw curve faint, the smoothed curve over it (no smoothing below 3 points)."""
    for i, (label, (x, y)) in enumerate(series.items()):
        color = f"C{i % 10}"
        y = np.asarray(y, dtype=float)
        if weight > 0 and len(y) >= 3:
            ax.plot(x, y, color=color, alpha=0.25, linewidth=1)
            ax.plot(x, smooth(y, weight), color=color, linewidth=1.8, label=label)
        else:
            ax.plot(x, y, color=color, linewidth=1.8, marker="o" if len(y) < 30 else None, markersize=3, label=label)
    finish(ax, logx, bool(series))


def finish(ax: Any, logx: bool, legend: bool) -> None:
    if logx:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def line_plot(path: Path | str, panels: dict[str, Series], xlabel: str, weight: float = 0.6, logx: bool = False,
              title: str | None = None, mark: float | None = None, span: tuple[float, float] | None = None,
              ylim: tuple[float, float] | None = None) -> Path:
    """One subplot per panel (y label = panel name), each a set of labelled curves sharing `xlabel`;
    `mark` draws a dashed vertical line at that x, `span` shades an x range (e.g. a suggested LR and window),
    `ylim` keeps the y axis to the useful range."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels.items()):
        if span is not None:
            ax.axvspan(*span, color="0.85", zorder=0, label="stable window")
        if mark is not None:
            ax.axvline(mark, color="k", linestyle="--", linewidth=1, label=f"suggested {mark:.3g}")
        draw_lines(ax, series, weight, logx)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def grouped_plot(path: Path | str, panels: dict[str, dict[str, list[tuple[Sequence[float], Sequence[float]]]]],
                 xlabel: str, title: str | None = None) -> Path:
    """Like `line_plot`, but each label is a group of curves (e.g. all runs with lr=0.001) drawn in one colour."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, groups) in zip(axes[0], panels.items()):
        for i, (label, curves) in enumerate(groups.items()):
            for j, (x, y) in enumerate(curves):
                ax.plot(x, y, color=f"C{i % 10}", linewidth=1.5, alpha=0.8, marker="o" if len(y) < 30 else None,
                        markersize=3, label=f"{label} ({len(curves)} runs)" if j == 0 else None)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        finish(ax, False, bool(groups))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def history_curves(path: Path | str, history: list[dict[str, float]], metric: str = "accuracy",
                   title: str | None = None) -> Path:
    """train/val loss and train/val `metric` against the epoch, from a metrics.json history."""
    epochs = [row["epoch"] for row in history]

    def pair(name: str) -> Series:
        return {f"{split}/{name}": (epochs, [row[f"{split}/{name}"] for row in history])
                for split in ("train", "val") if f"{split}/{name}" in history[0]}

    return line_plot(path, {"loss": pair("loss"), metric: pair(metric)}, "epoch", weight=0.0, title=title)


def optimization_history(path: Path | str, trials: Sequence[int], values: Sequence[float], maximize: bool,
                         ylabel: str, title: str | None = None) -> Path:
    """Optuna's optimization history: each finished trial's value (points) and the best value so far (steps)."""
    y = np.asarray(values, dtype=float)
    best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.scatter(trials, y, color="C0", s=20, zorder=3, label="trial value")
    ax.step(trials, best, where="post", color="C3", linewidth=1.8, label="best so far")
    ax.set_xlabel("trial")
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
    vertical = many or max((len(str(label)) for label in labels), default=0) > 6  # e.g. layer names
    ax.set_xticklabels(list(labels)[::step], rotation=90 if vertical else 0, fontsize=6 if many else 8)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def image_grid(path: Path | str, rows: dict[str, np.ndarray], titles: dict[str, list[str]] | None = None) -> Path:
    """A grid of images, one row per key: arrays (N, C, H, W) with values in [0, 1]."""
    ncols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.9 * ncols, 2.0 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(images):
                continue
            image = np.transpose(images[c], (1, 2, 0))
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None,
                      vmin=0.0, vmax=1.0, interpolation="nearest")
            label = (titles or {}).get(name, [""] * len(images))[c]
            ax.set_title(f"{name}: {label}" if label else name, fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def to_tensorboard(writer: Any, tag: str, path: Path | str, step: int = 0) -> None:
    """Put a written PNG into TensorBoard's Images tab."""
    image = plt.imread(str(path))[..., :3]
    writer.add_image(tag, np.ascontiguousarray(image.transpose(2, 0, 1)), step)


def example_grid(rows: dict[str, np.ndarray], titles: dict[str, list[str]] | None, draw: Any,
                 cell: tuple[float, float]) -> tuple[Any, Any]:
    """One row of examples per key, `draw(ax, example)` in each cell titled `<key>: <label>`; returns (fig, last
    drawn artist). Constrained layout: titles, axis labels and a colorbar never overlap a neighbour."""
    ncols = max(len(examples) for examples in rows.values())
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell[0] * ncols, cell[1] * len(rows)), squeeze=False,
                             layout="constrained")
    artist = None
    for r, (name, examples) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(examples):
                ax.axis("off")
                continue
            artist = draw(ax, examples[c])
            ax.tick_params(labelsize=5)
            label = (titles or {}).get(name, [""] * len(examples))[c]
            ax.set_title(f"{name}: {label}" if label else name, fontsize=8)
    return fig, artist


def spectrogram_grid(path: Path | str, rows: dict[str, np.ndarray], titles: dict[str, list[str]] | None = None) -> Path:
    """Log-mel spectrograms (N, 1, n_mels, frames) in dB, one row of examples per key, with frame/mel axes."""
    low = min(float(s.min()) for s in rows.values())
    high = max(float(s.max()) for s in rows.values())

    def draw(ax: Any, spec: np.ndarray) -> Any:
        ax.set_xlabel("frame", fontsize=6)
        if ax.get_subplotspec().is_first_col():  # one axis name per row
            ax.set_ylabel("mel band", fontsize=6)
        return ax.imshow(spec[0], origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma")

    fig, image = example_grid(rows, titles, draw, (2.6, 2.2))
    fig.colorbar(image, ax=fig.axes, shrink=0.6, label="dB")
    return save(fig, path)


def text_grid(path: Path | str, rows: dict[str, list[str]], titles: dict[str, list[str]] | None = None) -> Path:
    """Texts as the model reads them (decoded tokens), wrapped, one row of examples per key."""
    import textwrap

    def draw(ax: Any, text: str) -> Any:
        ax.axis("off")
        return ax.text(0.0, 1.0, textwrap.fill(text, 48), va="top", ha="left", fontsize=6, family="monospace",
                       transform=ax.transAxes)

    fig, _ = example_grid(rows, titles, draw, (3.6, 2.0))
    return save(fig, path)


def series_grid(path: Path | str, rows: dict[str, np.ndarray], titles: dict[str, list[str]] | None = None,
                channel_names: Sequence[str] | None = None) -> Path:
    """Series (N, C, T): one line plot per example, one line per channel (at most 9), one row per key."""
    names = list(channel_names or [f"ch {i}" for i in range(9)])

    def draw(ax: Any, series: np.ndarray) -> Any:
        for k, line in enumerate(series[:9]):
            ax.plot(line, linewidth=0.8, label=names[k])
        ax.set_xlabel("step", fontsize=6)
        return ax

    fig, _ = example_grid(rows, titles, draw, (2.6, 1.9))
    fig.axes[0].legend(fontsize=5, loc="upper right")
    return save(fig, path)
