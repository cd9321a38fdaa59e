"""Split (inputs + targets), carving a split off another, and target checks; Encoded, a split not decoded yet."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from csc8607.errors import UserError


@dataclass
class Split:
    """One split: inputs (N, ...) of any dtype (uint8 images, float series or log-mels, int token ids) and
    targets: (N,) int64 class indices, (N, L) float multi-hot, or (N,) float numbers (regression)."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray) -> "Split":
        index_t = torch.as_tensor(index, dtype=torch.long)
        return Split(self.inputs[index_t], self.targets[index_t])


@dataclass
class Encoded:
    """An undecoded split: items (paths, HF entries) that `opener` reads, and their targets; the input type's
    decode step turns it into a Split."""

    items: Sequence[Any]
    targets: np.ndarray
    opener: Callable[[Any], Any]

    def __len__(self) -> int:
        return len(self.targets)


_PREFETCH: list[threading.Thread] = []  # the import thread prefetch_carve started, until settled


def prefetch_carve() -> threading.Thread | None:
    """Start importing scikit-learn (`carve`'s train_test_split pulls in scipy: ~1 s) on a background thread, so
    that it runs while the splits are decoded in this process (image decoders release the GIL); `carve` then finds
    it imported. The splits are sklearn's, unchanged. Returns the thread (None when it is already imported)."""
    if "sklearn.model_selection" in sys.modules:
        return None

    def load() -> None:
        with contextlib.suppress(Exception):  # carve's own import reports a missing or broken scikit-learn
            importlib.import_module("sklearn.model_selection")

    # not a daemon: a process that ends mid-import (an error line, exit 2) would tear scipy's C++ down under the
    # thread ("terminate called without an active exception", SIGABRT); the exit waits for the import instead
    thread = threading.Thread(target=load, name="import-sklearn", daemon=False)
    thread.start()
    _PREFETCH.append(thread)
    return thread


def settle_prefetch() -> None:
    """Wait for the import thread: a process forked while it holds an import or loader lock could hang on it
    (decode's process pool forks; with the pool's workers on every core, the overlap would gain nothing)."""
    while _PREFETCH:
        _PREFETCH.pop().join()


def carve(split: Split, fraction: float, seed: int, stratify: bool, of_pool: float,
          pool: str = "du split « train » de la source") -> tuple[Split, Split, str]:
    """Split off `fraction` of `split` (stratified by class when possible); returns (rest, carved, how).

    `of_pool` is the same amount as a fraction of `pool` (the source's whole train pool), for the description,
    which is in the report's language (D3).
    """
    from sklearn.model_selection import train_test_split  # imported here: a warm cache never needs it

    labels = split.targets.numpy()
    index = np.arange(len(labels))
    strata = labels if stratify else None
    if stratify:
        counts = np.bincount(labels)
        carved_count = int(np.ceil(fraction * len(labels)))
        if counts[counts > 0].min() < 2 or min(carved_count, len(labels) - carved_count) < np.count_nonzero(counts):
            strata = None  # a class with one example, or fewer examples to carve than classes: cannot stratify
    rest, carved = train_test_split(index, test_size=fraction, random_state=seed, stratify=strata)
    percent = f"{100 * of_pool:.3g}".replace(".", ",")
    how = (f"créé par tirage : {percent} % {pool}, "
           f"{'stratifié par classe' if strata is not None else 'au hasard (sans stratification)'}, graine {seed}")
    return split.subset(np.sort(rest)), split.subset(np.sort(carved)), how


def numeric_targets(labels: torch.Tensor, class_names: list[str], name: str) -> torch.Tensor:
    """data.task=regression: each class name read as the number it is (a label column of numbers)."""
    values = []
    for label in class_names:
        try:
            values.append(float(label))
        except ValueError:
            raise UserError(f"data.task=regression but {name} has a target {label!r} that is not a number") from None
    return torch.tensor(values, dtype=torch.float32)[labels.long()]


def check_classes(raw: Any) -> None:
    """A classifier needs two classes, each present in the source's train split."""
    if raw.task in ("multiclass", "binary") and len(raw.class_names) < 2:
        raise UserError(f"dataset {raw.name} has {len(raw.class_names)} class ({', '.join(raw.class_names)}): "
                        "a classifier needs at least 2")
    train = raw.splits["train"]
    if raw.task == "multiclass":
        counts = np.bincount(np.asarray(train.targets),
                             minlength=len(raw.class_names))
        if (counts == 0).any():
            empty = [raw.class_names[i] for i in np.flatnonzero(counts == 0)[:5]]
            raise UserError(f"dataset {raw.name}: class(es) {', '.join(empty)} have no train example")


def fingerprint(splits: dict[str, Split]) -> str:
    """A short hash of each split's size, item shape and targets in order: evaluate.py compares it with the one a
    checkpoint recorded, so that another fraction, seed or file set is not evaluated as the run's test split."""
    digest = hashlib.sha256()
    for name, split in splits.items():
        digest.update(f"{name}:{len(split)}:{tuple(split.inputs.shape[1:])};".encode())
        digest.update(np.ascontiguousarray(split.targets.numpy()).tobytes())
    return digest.hexdigest()[:16]
