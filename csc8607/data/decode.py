"""Images decoded once into uint8 arrays: any PIL mode to the configured channels (or the source's own: grey stays
one channel), any size to one size."""
from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from csc8607.data.split import Encoded, settle_prefetch
from csc8607.errors import UserError

CHUNK = 256  # images per task sent to a decoding worker
LOG_EVERY_S = 15.0  # stderr not a terminal (a log file): a progress line this often instead of a redrawn bar
log = logging.getLogger(__name__)


def open_path(path: str | Path) -> Image.Image:
    """Open and fully decode an image file (so a truncated file fails here, not later)."""
    image = Image.open(path)
    image.load()
    return image


def open_hf(entry: dict[str, Any]) -> Image.Image:
    """Open a Hugging Face `Image(decode=False)` entry: {"bytes": ..., "path": ...}."""
    if entry.get("bytes") is not None:
        image = Image.open(io.BytesIO(entry["bytes"]))
    else:
        image = Image.open(entry["path"])
    image.load()
    return image


def item_name(item: Any) -> str:
    """How an item is named in an error message: its path."""
    if isinstance(item, dict):
        return str(item.get("path") or "<image bytes without a path>")
    return str(item)


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # PIL modes of one (grey) channel, alpha aside


def to_array(image: Image.Image, channels: int | None) -> np.ndarray:
    """PIL image of any mode (L, LA, RGB, RGBA, P, CMYK, I;16, ...) -> uint8 (channels, H, W); alpha dropped.
    `channels` None: the image's own, 1 for a grey mode and 3 (RGB) for any other."""
    if channels is None:
        channels = 1 if image.mode in GREY_MODES else 3
    if channels not in (1, 3):
        raise UserError(f"data.channels={channels} must be 1 or 3 for image files")
    mode = "L" if channels == 1 else "RGB"
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey (PNG I;16, read as I or I;16): 0..65535 -> 0..255; PIL's convert("L") clips at 255
        grey = ((np.asarray(image, dtype=np.int64).clip(0, 65535) + 128) // 257).astype(np.uint8)
        return np.repeat(grey[None], channels, axis=0)
    if image.mode == "F" and mode == "RGB":
        image = image.convert("L")  # float grey: PIL converts it to RGB only through L
    array = np.array(image.convert(mode) if image.mode != mode else image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def fit_size(images: torch.Tensor, size: list[int] | None, resize: int | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, *size): the preprocessing every split gets.

    `resize` set: scale so the shorter side is `resize` px (aspect kept), then center-crop to `size`.
    `resize` null: scale straight to `size`. Bilinear with antialiasing, as torchvision's Resize.
    """
    if size is None:
        return images
    size = [int(s) for s in size]
    h, w = images.shape[-2:]
    if resize:
        scale = int(resize) / min(h, w)
        target = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
    else:
        target = (size[0], size[1])
    if (h, w) != target:
        images = torch.cat([
            F.interpolate(part.float(), size=target, mode="bilinear", antialias=True, align_corners=False)
            .round().clamp(0, 255).to(torch.uint8)
            for part in images.split(4096)
        ])
    top, left = (target[0] - size[0]) // 2, (target[1] - size[1]) // 2
    return images[:, :, top : top + size[0], left : left + size[1]].contiguous()


def decode_one(item: Any, opener: Callable[[Any], Image.Image], channels: int | None, size: list[int] | None,
               resize: int | None) -> np.ndarray:
    """One item -> uint8 (C, H, W) after preprocessing; an unreadable file raises a UserError naming it."""
    try:
        image = opener(item)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot decode image {item_name(item)}: {err}") from None
    array = to_array(image, channels)
    if size is None or (not resize and list(array.shape[1:]) == list(size)):
        return array
    return fit_size(torch.from_numpy(array)[None], size, resize)[0].numpy()


def decode_chunk(items: list[Any], opener: Callable[[Any], Image.Image], channels: int | None,
                 size: list[int] | None, resize: int | None) -> np.ndarray | str:
    """A worker's task: a chunk of items -> stacked uint8 array, or the error message of the first bad item."""
    try:
        arrays = [decode_one(item, opener, channels, size, resize) for item in items]
    except UserError as err:
        return str(err)
    if len({a.shape[0] for a in arrays}) > 1:  # the source's own channels, grey and colour mixed: all in colour
        arrays = [as_rgb(a) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        return f"images of different sizes {sorted(shapes)[:2]}: set data.image_size=[H,W] to resize them"
    return np.stack(arrays)


def as_rgb(images: np.ndarray, axis: int = 0) -> np.ndarray:
    """A grey image (or batch, channels on `axis`) repeated on three channels; a colour one unchanged."""
    return np.repeat(images, 3, axis=axis) if images.shape[axis] == 1 else images


def single_thread() -> None:
    """Pool initializer: a forked child must not enter the parent's OpenMP pool (it would deadlock), and leaves
    Ctrl-C to the parent, which stops the pool (one error line instead of a traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def chunks(items: Sequence[Any], n: int) -> Iterator[list[Any]]:
    for start in range(0, n, CHUNK):
        yield list(items[start : start + CHUNK])


def decode_all(split: Encoded, channels: int | None, size: list[int] | None, resize: int | None = None,
               workers: int | None = None, desc: str = "decode", log_every_s: float = LOG_EVERY_S) -> torch.Tensor:
    """Decode a whole split into one uint8 (N, C, H, W) tensor, with a progress bar and a process pool.

    `channels` None: the images' own (grey: 1; any colour image in the split: 3 for all).
    `workers` null = one per core for splits of more than 4 chunks; 0 = in this process. Progress: a bar on a
    terminal, else (a log file, SLURM's output) a log line every `log_every_s` s, never a `\r`.
    """
    n = len(split)
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = cores if n > 4 * CHUNK else 0  # the cores this job may use (SLURM, taskset), not the node's
    task = partial(decode_chunk, opener=split.opener, channels=channels, size=size, resize=resize)
    out: np.ndarray | None = None
    filled = 0
    if workers > 1:
        settle_prefetch()  # never fork while a thread imports
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=single_thread) if workers > 1 else None
    try:
        results = pool.imap(task, chunks(split.items, n)) if pool else map(task, chunks(split.items, n))
        terminal = sys.stderr.isatty()  # a bar redrawn with \r on a terminal; in a file, plain lines
        logged = time.monotonic()
        with tqdm(total=n, desc=desc, unit="img", leave=False, dynamic_ncols=True, mininterval=1.0,
                  disable=not terminal) as bar:
            for part in results:
                if isinstance(part, str):
                    raise UserError(part)
                if out is None:
                    out = np.empty((n, *part.shape[1:]), dtype=np.uint8)
                elif channels is None and part.shape[1] != out.shape[1]:  # grey so far, then colour (or back)
                    out, part = as_rgb(out, axis=1), as_rgb(part, axis=1)
                if part.shape[1:] != out.shape[1:]:
                    raise UserError(f"images of different sizes {out.shape[1:]} and {part.shape[1:]}: "
                                    "set data.image_size=[H,W] to resize them")
                out[filled : filled + len(part)] = part
                filled += len(part)
                bar.update(len(part))
                if not terminal and time.monotonic() - logged >= log_every_s:
                    log.info("%s: %d/%d images", desc, filled, n)
                    logged = time.monotonic()
    finally:
        if pool is not None:
            pool.terminate()
    if out is None:
        raise UserError(f"no images to decode in {desc}")
    return torch.from_numpy(out)


def convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> `channels` channels (grey<->RGB, alpha dropped); None: its own (alpha dropped)."""
    have = images.shape[1]
    if channels is None:
        channels = 3 if have == 4 else have
    if have == channels:
        return images
    if have == 4:
        images, have = images[:, :3], 3
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]
        return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if have == channels:
        return images
    raise UserError(f"cannot convert {have}-channel images to data.channels={channels}")


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units, exact (from 256-bin histograms)."""
    values = torch.arange(256, dtype=torch.float64)
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = torch.zeros(256, dtype=torch.float64)
        for part in images.split(8192):
            hist += torch.bincount(part[:, c].reshape(-1), minlength=256).to(torch.float64)
        count = hist.sum()
        m = (hist * values).sum() / count
        var = (hist * values**2).sum() / count - m**2
        mean.append(float(m / 255.0))
        std.append(float(var.clamp_min(1e-12).sqrt() / 255.0))
    return mean, std
