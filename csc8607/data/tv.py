"""torchvision's CIFAR-10, CIFAR-100 and SVHN: already uint8 arrays in their files, read as such."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from csc8607.data.core import SourceData
from csc8607.data.split import Split
from csc8607.errors import UserError


def open_torchvision(factory: Callable[..., Any], root: str, what: str, download: bool, **kwargs: Any) -> Any:
    """A torchvision dataset, or a one-line UserError when it is absent and download is off (or fails)."""
    if not root:
        raise UserError(f"data.root is not set for {what}")
    path = Path(root).expanduser()
    try:
        return factory(root=str(path), download=bool(download), **kwargs)
    except RuntimeError as err:
        hint = "set data.download=true (needs network) or point data.root at a copy" if not download else \
            "download failed; point data.root at a local copy and set data.download=false"
        raise UserError(f"{what} not found in data.root={path} ({str(err).splitlines()[0]}): {hint}") from None
    except OSError as err:
        raise UserError(f"cannot get {what} into data.root={path}: {err}") from None


def load_cifar(root: str, download: bool = False, classes: int = 10) -> SourceData:
    """CIFAR-10 or CIFAR-100 (`classes`): train 50k / test 10k, 32x32 RGB; val is carved from train."""
    from torchvision import datasets

    if classes not in (10, 100):
        raise UserError(f"data.source.classes={classes} must be 10 or 100")
    factory = datasets.CIFAR10 if classes == 10 else datasets.CIFAR100
    what = f"CIFAR-{classes}"
    splits, names = {}, []
    for ours, train in (("train", True), ("test", False)):
        ds = open_torchvision(factory, root, what, download, train=train)
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        splits[ours] = Split(images, torch.as_tensor(np.asarray(ds.targets, dtype=np.int64)))
        names = list(ds.classes)
    return SourceData(splits, names, name=f"cifar{classes}", source=f"torchvision {what} dans {root}",
                      origins={"train": "train", "test": "test"})


def load_svhn(root: str, download: bool = False, extra: bool = False) -> SourceData:
    """SVHN cropped digits: train (+ `extra` when set) and test, 32x32 RGB; label 10 of the .mat files is 0."""
    from torchvision import datasets

    parts = {"train": ["train"] + (["extra"] if extra else []), "test": ["test"]}
    splits = {}
    for ours, names in parts.items():
        loaded = [open_torchvision(datasets.SVHN, root, f"SVHN {n}", download, split=n) for n in names]
        images = torch.from_numpy(np.concatenate([d.data for d in loaded]))
        labels = torch.as_tensor(np.concatenate([d.labels for d in loaded]).astype(np.int64))
        splits[ours] = Split(images, labels)
    return SourceData(splits, [str(d) for d in range(10)], name="svhn", source=f"torchvision SVHN dans {root}",
                      origins={"train": "+".join(parts["train"]), "test": "test"})
