"""Dataset: any source's arrays split into train/val/test, cached, normalized and described by `meta`.

Nothing here knows an input type: an input type (image.py, audio.py, series.py) subclasses Dataset with its
decode step, its statistics and its batch transform (normalization + train-only augmentation).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from csc8607.data import cache
from csc8607.data.loader import BatchLoader, Standardize
from csc8607.data.split import Split, carve, check_classes, fingerprint, numeric_targets, prefetch_carve
from csc8607.errors import UserError
from csc8607.metrics import loss_name

TASKS = ("multiclass", "binary", "multilabel", "regression")


@dataclass
class SourceData:
    """What a source returns: whichever of train/val/test it has, plus names and provenance."""

    splits: dict[str, Any]  # Split, or undecoded items (decode.Encoded) that the input type decodes
    class_names: list[str]  # multilabel: the attribute names
    name: str
    source: str  # where the data comes from (URL, hub id, path): report D1
    task: str = "multiclass"
    notes: dict[str, Any] = field(default_factory=dict)  # particularities found while decoding (report D5)
    origins: dict[str, str] = field(default_factory=dict)  # our split -> the source's split it comes from
    pool: bool = False  # the source is one set of examples without splits of its own (given as "train")


def channel_moments(inputs: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel (dim 1) mean and std of float arrays, accumulated in float64 by chunks."""
    total = sq = None
    count = 0
    for part in inputs.split(4096):
        x = part.double().transpose(0, 1).reshape(part.shape[1], -1)
        total = x.sum(1) if total is None else total + x.sum(1)
        sq = (x**2).sum(1) if sq is None else sq + (x**2).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class Dataset:
    """The dataset a run trains on: train/val/test splits, per-channel normalization, augmentation and `meta`.

    `source` is a SourceData or a callable returning one; a `functools.partial` (a `_partial_: true` source
    config) is cacheable: with `cache_dir` set, the decoded, preprocessed and split arrays are stored there
    under a hash of (source config, split protocol, preprocessing) and memory-mapped by later runs.
    `settings` are the input type's preprocessing keys (part of the cache key); `task` overrides the source's
    (regression: the class names are read as numbers); `name` overrides the source's name in meta.
    `source_keys` are data-level keys that the source config reads (`${..test_folds}`): recorded in meta.
    `loss`: regression's loss (mse, l1, huber); recorded in meta["loss"] with the other tasks' own.
    """

    modality = "array"

    def __init__(self, source: Callable[[], SourceData] | SourceData, val_fraction: float = 0.1,
                 test_fraction: float = 0.1, split_seed: int = 0, normalize: dict | None = None,
                 augment: dict | None = None, root: str | None = None, cache_dir: str | None = None,
                 decode_workers: int | None = None, task: str | None = None, name: str | None = None,
                 settings: dict[str, Any] | None = None, loss: str | None = None, **source_keys: Any) -> None:
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < float(value) < 1.0:
                raise UserError(f"data.{key}={value} must be between 0 and 1 (exclusive)")
        if task is not None and task not in TASKS:
            raise UserError(f"data.task={task} is not one of {', '.join(TASKS)}")
        self.settings = dict(settings or {})
        self.found: dict[str, Any] = {}  # what decoding found or did, per split (padded, cropped, ...): report D5
        self.augment = {k: v for k, v in dict(augment or {}).items() if v}
        self.check_augment(self.augment)
        protocol = {"val_fraction": float(val_fraction), "test_fraction": float(test_fraction),
                    "split_seed": int(split_seed), "task": task, "modality": self.modality, **self.settings}
        info, cached = self._load_or_build(source, protocol, task, cache_dir, decode_workers)
        self.info = info
        self.task = info["task"]
        self.class_names = list(info["class_names"])
        self.mean, self.std = self._normalization(normalize or {}, info["stats"])
        given = (normalize or {}).get("mean", "auto") not in (None, "auto")
        num_classes = len(self.class_names) if self.task != "regression" else 1
        self.meta: dict[str, Any] = {
            "name": name or info["name"], "source": info["source"], "root": str(root) if root is not None else None,
            "modality": self.modality,
            "task": self.task,
            "num_classes": num_classes,
            "num_outputs": 1 if self.task in ("binary", "regression") else num_classes,
            "loss": loss_name(self.task, loss),
            "input_shape": list(self.splits["train"].inputs.shape[1:]),
            "input_dtype": self.model_dtype,  # what the model receives (after the transform)
            "stored_dtype": str(self.splits["train"].inputs.dtype).replace("torch.", ""),
            "class_names": self.class_names,
            "input": self.facts(),  # per-input-type facts (channels, sample rate, frames, length)
            "split_sizes": {name: len(s) for name, s in self.splits.items()},
            "split_fingerprint": fingerprint(self.splits),
            "split_protocol": info["split_protocol"],
            "split_seed": split_seed,
            "preprocess": {**self.settings, "mean": self.mean, "std": self.std,
                           "normalize_from": "data.normalize" if given else info["normalize_from"]},
            "augment": dict(self.augment),
            "notes": dict(info["notes"]),
            "source_keys": {k: cache.plain_value(v) for k, v in source_keys.items()},
            "cache": cached,
        }
        if self.task == "regression":
            self.meta["target_stats"] = info.get("target_stats")

    def _load_or_build(self, source: Any, protocol: dict, task: str | None, cache_dir: str | None,
                       workers: int | None) -> tuple[dict, dict | None]:
        """Set `self.splits` from the cache entry of (source, protocol), or from the source (then cache them);
        returns the info and the cache's description for meta."""
        identity = cache.source_identity(source) if cache_dir else None
        entry = key = hit = stamp = None
        if identity is not None:
            key = cache.make_key(identity, protocol)
            entry = cache.entry_dir(cache_dir, identity["function"].rsplit(".", 1)[-1], key)
            stamp = cache.files_stamp(key["source"], skip=Path(cache_dir).expanduser())
            hit = cache.load(entry, key, stamp)
        with cache.building(entry) if entry is not None and hit is None else contextlib.nullcontext():
            if entry is not None and hit is None:
                hit = cache.load(entry, key, stamp)  # built meanwhile by another job of the sweep, which held the lock
            if hit is not None:
                arrays, info = hit
                self.splits = {name: Split(inputs, targets) for name, (inputs, targets) in arrays.items()}
            else:
                raw = source() if callable(source) else source
                self.splits, info = self._prepare(raw, protocol, task, workers)
                if entry is not None:
                    cache.save(entry, key, {n: (s.inputs, s.targets) for n, s in self.splits.items()},
                               {**info, "files_stamp": stamp})
        if entry is None:
            return info, None
        return info, {"path": str(entry), "key": entry.name.rsplit("-", 1)[-1], "hit": hit is not None}

    # --- what an input type provides --------------------------------------------------------------------------
    augments: frozenset[str] = frozenset()
    model_dtype = "float32"  # the dtype of the batches the model receives (token ids would be int64)

    def check_augment(self, augment: dict) -> None:
        """One-line error for a key of data.augment that no augmentation reads (a typo would be ignored)."""
        unknown = set(augment) - set(self.augments)
        if unknown:
            known = ", ".join(sorted(self.augments)) or "none"
            raise UserError(f"data.augment has unknown keys {sorted(unknown)} for {self.modality} inputs; "
                            f"known: {known}")
        for key, value in augment.items():
            if not (isinstance(value, bool) or isinstance(value, (int, float)) and value >= 0):
                raise UserError(f"data.augment.{key}={value!r} must be a number >= 0 (or true/false)")

    def decode(self, part: Any, name: str, workers: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One split of the source -> (inputs, targets) arrays after the preprocessing every split gets."""
        if not isinstance(part, Split):
            raise UserError(f"{self.modality} inputs cannot decode {type(part).__name__} items")
        return part.inputs, part.targets

    def harmonize(self, splits: dict[str, Split]) -> dict[str, Split]:
        """The splits, decoded one by one, made alike where the input type allows (e.g. grey beside colour)."""
        return splits

    def expand(self, split: Split) -> Split:
        """A split after carving (e.g. cut into windows, so no recording straddles two splits)."""
        return split

    def statistics(self, inputs: torch.Tensor) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the train inputs (what `auto` normalization uses)."""
        return channel_moments(inputs)

    def facts(self) -> dict[str, Any]:
        return {"channels": int(self.splits["train"].inputs.shape[1])}

    def transform(self, train: bool, channels_last: bool = False, device: torch.device | str = "cpu") -> Any:
        """How a stored batch becomes the model's float batch (see BatchLoader); `train`: with augmentation."""
        return Standardize(self.mean, self.std, device)

    # --- shared -----------------------------------------------------------------------------------------------
    def _prepare(self, raw: SourceData, protocol: dict, task: str | None,
                 workers: int | None) -> tuple[dict[str, Split], dict]:
        """Decode every split identically, carve the missing ones, compute train statistics."""
        if raw.task not in TASKS:
            raise UserError(f"task {raw.task!r} is not one of {', '.join(TASKS)}")
        if "train" not in raw.splits:
            raise UserError(f"dataset {raw.name} has no train split (it has: {', '.join(raw.splits)})")
        check_classes(raw)
        if not {"test", "val"} <= set(raw.splits):
            prefetch_carve()  # scikit-learn's import overlaps an in-process decoding
        splits: dict[str, Split] = {}
        for name, part in raw.splits.items():
            inputs, targets = self.decode(part, f"{raw.name} {name}", workers)
            if task == "regression" and raw.task != "regression":
                targets = numeric_targets(targets, raw.class_names, raw.name)
            splits[name] = Split(inputs, targets)
        task = task or raw.task
        splits = self.harmonize(splits)
        shapes = {name: tuple(s.inputs.shape[1:]) for name, s in splits.items()}
        if len(set(shapes.values())) > 1:
            raise UserError(f"splits of {raw.name} have different input shapes {shapes}")
        stratify = task in ("multiclass", "binary")
        # where each split comes from, in the report's language (D3)
        split_protocol = {name: f"le split « {raw.origins.get(name, name)} » de la source" for name in splits}
        pool = "de l'ensemble de la source" if raw.pool else "du split « train » de la source"
        if raw.pool:
            count = f"{len(splits['train']):,}".replace(",", "\u202f")  # French thousands: 1 797
            split_protocol["train"] = f"l'ensemble de la source ({count} exemples, sans split propre)"
        test_fraction, val_fraction, seed = protocol["test_fraction"], protocol["val_fraction"], protocol["split_seed"]
        if "test" not in splits:
            splits["train"], splits["test"], split_protocol["test"] = carve(
                splits["train"], test_fraction, seed, stratify, of_pool=test_fraction, pool=pool)
        if "val" not in splits:
            # fractions are of the whole pool: test 15% then val 15% of the original leaves 70% to train
            fraction = val_fraction / (1.0 - test_fraction) if "test" not in raw.splits else val_fraction
            splits["train"], splits["val"], split_protocol["val"] = carve(
                splits["train"], fraction, seed, stratify, of_pool=val_fraction, pool=pool)
        carved = [name for name in ("test", "val") if name not in raw.splits]
        if carved:
            split_protocol["train"] += f", moins les exemples tirés pour {' et '.join(carved)}"
        splits = {name: self.expand(splits[name]) for name in ("train", "val", "test")}
        for name, split in splits.items():
            if len(split) == 0:
                raise UserError(f"the {name} split of {raw.name} is empty")
        info = {
            "name": raw.name, "source": raw.source, "task": task,
            "class_names": list(raw.class_names) if task != "regression" else ["target"],
            "notes": {**raw.notes, **({"decoding": self.found} if self.found else {})},
            "split_protocol": split_protocol,
            "split_sizes": {name: len(s) for name, s in splits.items()},
            "input_shape": list(splits["train"].inputs.shape[1:]),
            "stats": self.statistics(splits["train"].inputs),
            "normalize_from": f"train split ({len(splits['train'])} examples)",
        }
        if task == "regression":
            y = splits["train"].targets.double()
            info["target_stats"] = {"mean": y.mean().item(), "variance": y.var(unbiased=False).item()}
        return splits, info

    def _normalization(self, normalize: dict, auto: list) -> tuple[list[float], list[float]]:
        channels = int(self.splits["train"].inputs.shape[1]) if self.splits["train"].inputs.dim() > 1 else 1
        mean, std = normalize.get("mean", "auto"), normalize.get("std", "auto")
        auto_mean, auto_std = auto
        mean = auto_mean if mean in (None, "auto") else [float(v) for v in mean]
        std = auto_std if std in (None, "auto") else [float(v) for v in std]
        if len(mean) != channels or len(std) != channels:
            raise UserError(f"data.normalize needs {channels} mean and std values, got {len(mean)} and {len(std)}")
        if min(std) <= 0:
            raise UserError(f"data.normalize.std must be positive, got {std}")
        return mean, std

    def loader(self, split: str | Split, batch_size: int, device: torch.device | str = "cpu", train: bool = False,
               seed: int = 0, channels_last: bool = False, augment: bool | None = None) -> BatchLoader:
        """Batches of one split (a name, or a Split such as a subset); `train=True` shuffles and augments
        (`augment=False`: shuffles only)."""
        part = self.splits[split] if isinstance(split, str) else split
        augmented = train if augment is None else augment
        transform = self.transform(augmented, channels_last, device)
        return BatchLoader(part, batch_size, transform, device=device, shuffle=train, seed=seed)
