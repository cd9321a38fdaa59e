"""The D10 example figures: one row of examples per split, drawn as the input type is read (images, log-mel
spectrograms with their axes, series per channel, decoded texts); each writes one PNG and returns its path."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from csc8607.figures import plt, save


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
        ax.set_xlabel("trame", fontsize=6)
        if ax.get_subplotspec().is_first_col():  # one axis name per row
            ax.set_ylabel("bande mel", fontsize=6)
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
    names = list(channel_names or [f"canal {i}" for i in range(9)])

    def draw(ax: Any, series: np.ndarray) -> Any:
        for k, line in enumerate(series[:9]):
            ax.plot(line, linewidth=0.8, label=names[k])
        ax.set_xlabel("pas", fontsize=6)
        return ax

    fig, _ = example_grid(rows, titles, draw, (2.6, 1.9))
    fig.axes[0].legend(fontsize=5, loc="upper right")
    return save(fig, path)
