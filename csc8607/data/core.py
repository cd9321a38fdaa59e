"""ImageData: a source's uint8 arrays, split into train/val/test, normalized and described by `meta`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from csc8607.errors import UserError

TASKS = ("multiclass", "binary", "multilabel")


@dataclass
class Split:
    """One split: uint8 images (N, C, H, W) and labels (N,) int64, or (N, C) float for multilabel."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "Split":
        index_t = torch.as_tensor(index, dtype=torch.long)
        return Split(self.images[index_t], self.labels[index_t])


@dataclass
class SourceData:
    """What a source returns: whichever of train/val/test it has, plus names and provenance."""

    splits: dict[str, Split]
    class_names: list[str]
    name: str
    source: str  # where the data comes from (URL, hub id, path): report D1
    task: str = "multiclass"
    notes: dict[str, Any] = field(default_factory=dict)  # particularities found while decoding (report D5)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> `channels` channels (grey<->RGB, alpha dropped)."""
    have = images.shape[1]
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


def resize(images: torch.Tensor, size: list[int] | None, chunk: int = 4096) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, *size), bilinear with antialiasing, in chunks to bound memory."""
    if size is None or list(images.shape[-2:]) == list(size):
        return images
    out = [
        F.interpolate(part.float(), size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for part in images.split(chunk)
    ]
    return torch.cat(out)


def carve(split: Split, fraction: float, seed: int, stratify: bool, of_pool: float) -> tuple[Split, Split, str]:
    """Split off `fraction` of `split` (stratified by class when possible); returns (rest, carved, how).

    `of_pool` is the same amount as a fraction of the source's whole train pool, for the description.
    """
    labels = split.labels.numpy()
    index = np.arange(len(labels))
    strata = labels if stratify else None
    if stratify and np.bincount(labels).min() < 2:
        strata = None  # a class with one image cannot be stratified
    rest, carved = train_test_split(index, test_size=fraction, random_state=seed, stratify=strata)
    how = f"{of_pool:.0%} of the source's train pool, {'stratified' if strata is not None else 'random'}, seed {seed}"
    return split.subset(np.sort(rest)), split.subset(np.sort(carved)), how


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units, computed in float64 chunks."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for part in images.split(8192):
        part = part.to(torch.float64) / 255.0
        total += part.sum((0, 2, 3))
        total_sq += (part**2).sum((0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class ImageData:
    """The dataset a run trains on: train/val/test uint8 splits, normalization, augmentation and `meta`."""

    def __init__(
        self,
        source: Callable[[], SourceData] | SourceData,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        channels: int = 3,
        image_size: list[int] | None = None,
        normalize: dict | None = None,
        augment: dict | None = None,
    ) -> None:
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < float(value) < 1.0:
                raise UserError(f"data.{key}={value} must be between 0 and 1 (exclusive)")
        raw = source() if callable(source) else source
        if raw.task not in TASKS:
            raise UserError(f"task {raw.task!r} is not one of {', '.join(TASKS)}")
        if "train" not in raw.splits:
            raise UserError(f"dataset {raw.name} has no train split (it has: {', '.join(raw.splits)})")
        self.task = raw.task
        self.class_names = list(raw.class_names)
        splits = {
            name: Split(resize(convert_channels(s.images, channels), image_size), s.labels)
            for name, s in raw.splits.items()
        }
        stratify = raw.task != "multilabel"
        protocol = {name: "provided by the source" for name in splits}
        if "test" not in splits:
            splits["train"], splits["test"], protocol["test"] = carve(
                splits["train"], test_fraction, split_seed, stratify, of_pool=test_fraction)
        if "val" not in splits:
            # fractions are of the whole pool: test 15% then val 15% of the original leaves 70% to train
            test_carved = "test" not in raw.splits
            fraction = val_fraction / (1.0 - test_fraction) if test_carved else val_fraction
            splits["train"], splits["val"], protocol["val"] = carve(
                splits["train"], fraction, split_seed, stratify, of_pool=val_fraction)
        self.splits = {name: splits[name] for name in ("train", "val", "test")}
        for name, split in self.splits.items():
            if len(split) == 0:
                raise UserError(f"the {name} split of {raw.name} is empty")
        self.mean, self.std = self._normalization(normalize or {}, channels)
        self.augment = {k: v for k, v in dict(augment or {}).items() if v}
        num_classes = len(self.class_names)
        self.meta: dict[str, Any] = {
            "name": raw.name,
            "source": raw.source,
            "task": raw.task,
            "num_classes": num_classes,
            "num_outputs": 1 if raw.task == "binary" else num_classes,
            "input_shape": list(self.splits["train"].images.shape[1:]),
            "class_names": self.class_names,
            "split_sizes": {name: len(s) for name, s in self.splits.items()},
            "split_protocol": protocol,
            "split_seed": split_seed,
            "preprocess": {"channels": channels, "image_size": image_size, "mean": self.mean, "std": self.std},
            "augment": dict(self.augment),
            "notes": dict(raw.notes),
        }

    def _normalization(self, normalize: dict, channels: int) -> tuple[list[float], list[float]]:
        mean, std = normalize.get("mean", "auto"), normalize.get("std", "auto")
        auto_mean, auto_std = channel_stats(self.splits["train"].images)
        mean = auto_mean if mean in (None, "auto") else [float(v) for v in mean]
        std = auto_std if std in (None, "auto") else [float(v) for v in std]
        if len(mean) != channels or len(std) != channels:
            raise UserError(f"data.normalize needs {channels} mean and std values, got {len(mean)} and {len(std)}")
        if min(std) <= 0:
            raise UserError(f"data.normalize.std must be positive, got {std}")
        return mean, std

    def loader(self, split: str, batch_size: int, device: torch.device | str = "cpu", train: bool = False,
               seed: int = 0, channels_last: bool = False) -> "BatchLoader":
        """Batches of one split; `train=True` shuffles and augments."""
        from csc8607.data.loader import BatchLoader

        return BatchLoader(self.splits[split], batch_size, self.mean, self.std, device=device, shuffle=train,
                           augment=self.augment if train else None, seed=seed, channels_last=channels_last)
