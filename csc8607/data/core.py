"""ImageData: a source's uint8 arrays, split into train/val/test, normalized and described by `meta`."""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from csc8607.data import cache
from csc8607.data.decode import Encoded, decode_all, fit_size
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

    splits: dict[str, Split | Encoded]  # Encoded: files decoded by ImageData with the preprocessing config
    class_names: list[str]
    name: str
    source: str  # where the data comes from (URL, hub id, path): report D1
    task: str = "multiclass"
    notes: dict[str, Any] = field(default_factory=dict)  # particularities found while decoding (report D5)
    origins: dict[str, str] = field(default_factory=dict)  # our split -> the source's split it comes from


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


def carve(split: Split, fraction: float, seed: int, stratify: bool, of_pool: float) -> tuple[Split, Split, str]:
    """Split off `fraction` of `split` (stratified by class when possible); returns (rest, carved, how).

    `of_pool` is the same amount as a fraction of the source's whole train pool, for the description.
    """
    from sklearn.model_selection import train_test_split  # imported here: a warm cache never needs it

    labels = split.labels.numpy()
    index = np.arange(len(labels))
    strata = labels if stratify else None
    classes = np.count_nonzero(np.bincount(labels)) if stratify else 0
    carved_count = int(np.ceil(fraction * len(labels)))
    if stratify and (np.bincount(labels)[np.bincount(labels) > 0].min() < 2
                     or min(carved_count, len(labels) - carved_count) < classes):
        strata = None  # a class with one image, or fewer images to carve than classes: cannot be stratified
    rest, carved = train_test_split(index, test_size=fraction, random_state=seed, stratify=strata)
    how = f"{of_pool:.0%} of the source's train pool, {'stratified' if strata is not None else 'random'}, seed {seed}"
    return split.subset(np.sort(rest)), split.subset(np.sort(carved)), how


def fingerprint(splits: dict[str, Split]) -> str:
    """A short hash of each split's size, item shape and labels in order: evaluate.py compares it with the one a
    checkpoint recorded, so that another fraction, seed or file set is not evaluated as the run's test split."""
    digest = hashlib.sha256()
    for name, split in splits.items():
        digest.update(f"{name}:{len(split)}:{tuple(split.images.shape[1:])};".encode())
        digest.update(np.ascontiguousarray(split.labels.numpy()).tobytes())
    return digest.hexdigest()[:16]


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


class ImageData:
    """The dataset a run trains on: train/val/test uint8 splits, normalization, augmentation and `meta`.

    `source` is a SourceData or a callable returning one; a `functools.partial` (a `_partial_: true` source
    config) is cacheable: with `cache_dir` set, the decoded, preprocessed and split arrays are stored there
    under a hash of (source config, split protocol, preprocessing) and memory-mapped by later runs.
    """

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
        resize: int | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        decode_workers: int | None = None,
    ) -> None:
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < float(value) < 1.0:
                raise UserError(f"data.{key}={value} must be between 0 and 1 (exclusive)")
        image_size = None if image_size is None else [int(v) for v in image_size]
        settings = {"val_fraction": float(val_fraction), "test_fraction": float(test_fraction),
                    "split_seed": int(split_seed), "channels": int(channels), "image_size": image_size,
                    "resize": resize}
        identity = cache.source_identity(source) if cache_dir else None
        entry = key = None
        hit = None
        if identity is not None:
            key = cache.make_key(identity, settings)
            entry = cache.entry_dir(cache_dir, identity["function"].rsplit(".", 1)[-1], key)
            hit = cache.load(entry, key)
        with cache.building(entry) if entry is not None and hit is None else contextlib.nullcontext():
            if entry is not None and hit is None:
                hit = cache.load(entry, key)  # built meanwhile by another job of the sweep, which held the lock
            if hit is not None:
                arrays, info = hit
                self.splits = {name: Split(images, labels) for name, (images, labels) in arrays.items()}
            else:
                raw = source() if callable(source) else source
                self.splits, info = self._prepare(raw, settings, decode_workers)
                if entry is not None:
                    cache.save(entry, key, {n: (s.images, s.labels) for n, s in self.splits.items()}, info)
        self.task = info["task"]
        self.class_names = list(info["class_names"])
        self.mean, self.std = self._normalization(normalize or {}, channels, info["auto_stats"])
        given_stats = (normalize or {}).get("mean", "auto") not in (None, "auto")
        from csc8607.data.loader import check_augment

        self.augment = {k: v for k, v in dict(augment or {}).items() if v}
        check_augment(self.augment)
        num_classes = len(self.class_names)
        self.meta: dict[str, Any] = {
            "name": info["name"],
            "source": info["source"],
            "root": str(root) if root is not None else None,
            "task": self.task,
            "num_classes": num_classes,
            "num_outputs": 1 if self.task == "binary" else num_classes,
            "input_shape": list(self.splits["train"].images.shape[1:]),
            "class_names": self.class_names,
            "split_sizes": {name: len(s) for name, s in self.splits.items()},
            "split_fingerprint": fingerprint(self.splits),
            "split_protocol": info["split_protocol"],
            "split_seed": split_seed,
            "preprocess": {"channels": channels, "image_size": image_size, "resize": resize,
                           "mean": self.mean, "std": self.std,
                           "normalize_from": "data.normalize" if given_stats else info["normalize_from"]},
            "augment": dict(self.augment),
            "notes": dict(info["notes"]),
            "cache": {"path": str(entry), "key": entry.name.rsplit("-", 1)[-1], "hit": hit is not None}
            if entry is not None else None,
        }

    @staticmethod
    def _prepare(raw: SourceData, settings: dict, workers: int | None) -> tuple[dict[str, Split], dict]:
        """Decode/convert/resize every split identically, carve the missing ones, compute train statistics."""
        if raw.task not in TASKS:
            raise UserError(f"task {raw.task!r} is not one of {', '.join(TASKS)}")
        if "train" not in raw.splits:
            raise UserError(f"dataset {raw.name} has no train split (it has: {', '.join(raw.splits)})")
        channels, size, resize = settings["channels"], settings["image_size"], settings["resize"]
        splits: dict[str, Split] = {}
        for name, s in raw.splits.items():
            if isinstance(s, Encoded):
                images = decode_all(s, channels, size, resize, workers, desc=f"decode {raw.name} {name}")
                splits[name] = Split(images, torch.as_tensor(s.labels))
            else:
                splits[name] = Split(fit_size(convert_channels(s.images, channels), size, resize), s.labels)
        shapes = {name: tuple(s.images.shape[1:]) for name, s in splits.items()}
        if len(set(shapes.values())) > 1:
            raise UserError(f"splits of {raw.name} have different image sizes {shapes}: set data.image_size=[H,W]")
        stratify = raw.task != "multilabel"
        protocol = {name: f"the source's {raw.origins.get(name, name)} split" for name in splits}
        test_fraction, val_fraction, seed = settings["test_fraction"], settings["val_fraction"], settings["split_seed"]
        if "test" not in splits:
            splits["train"], splits["test"], protocol["test"] = carve(
                splits["train"], test_fraction, seed, stratify, of_pool=test_fraction)
        if "val" not in splits:
            # fractions are of the whole pool: test 15% then val 15% of the original leaves 70% to train
            test_carved = "test" not in raw.splits
            fraction = val_fraction / (1.0 - test_fraction) if test_carved else val_fraction
            splits["train"], splits["val"], protocol["val"] = carve(
                splits["train"], fraction, seed, stratify, of_pool=val_fraction)
        splits = {name: splits[name] for name in ("train", "val", "test")}
        for name, split in splits.items():
            if len(split) == 0:
                raise UserError(f"the {name} split of {raw.name} is empty")
        info = {
            "name": raw.name, "source": raw.source, "task": raw.task, "class_names": list(raw.class_names),
            "notes": dict(raw.notes), "split_protocol": protocol,
            "split_sizes": {name: len(s) for name, s in splits.items()},
            "input_shape": list(splits["train"].images.shape[1:]),
            "auto_stats": channel_stats(splits["train"].images),
            "normalize_from": f"train split ({len(splits['train'])} images)",
        }
        return splits, info

    def _normalization(self, normalize: dict, channels: int, auto: list) -> tuple[list[float], list[float]]:
        mean, std = normalize.get("mean", "auto"), normalize.get("std", "auto")
        auto_mean, auto_std = auto
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
