"""Hugging Face image datasets (hub id, local directory, `save_to_disk` directory or parquet files)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from csc8607.data.core import SourceData
from csc8607.data.decode import open_hf
from csc8607.data.split import Encoded
from csc8607.data.folders import read_words
from csc8607.errors import UserError

OUR_SPLITS = ("train", "val", "test")
# what names a split's file rather than the dataset: train-00000-of-00001, test, data, plain_text, a glob
NOT_A_NAME = re.compile(r"((train|test|testing|valid|validation|val|dev|data)([-_.]?\d+)?)?([-_]?\d{5}-of-\d{5})?|"
                        r"default|plain_text|parquet|.*\*.*")


class Column:
    """One split's image column, read in slices as undecoded {"bytes", "path"} entries."""

    def __init__(self, dataset: Any, column: str, where: str) -> None:
        self.dataset, self.column, self.where = dataset, column, where

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: slice) -> list[dict[str, Any]]:
        rows = self.dataset[index][self.column]
        start = index.start or 0
        return [dict(row, path=row.get("path") or f"{self.where} row {start + i}") for i, row in enumerate(rows)]


def open_dataset(where: str) -> Any:
    """A DatasetDict from a local copy (directory, save_to_disk directory, parquet file or glob) or the hub."""
    import datasets

    local = Path(where).expanduser()
    try:
        if local.is_dir() and ((local / "dataset_dict.json").is_file() or (local / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(local))
            return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict(train=loaded)
        if local.is_dir():
            return datasets.load_dataset(str(local))
        if local.suffix == ".parquet" or "*" in where:
            return datasets.load_dataset("parquet", data_files=str(local))
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"cannot read the dataset at {where}: {str(err).splitlines()[0]}") from None
    if where.startswith(("/", ".", "~")) or os.sep in where.strip("/").replace("/", "", 1):
        raise UserError(f"{where} does not exist (expected a local dataset directory or parquet file)")
    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        return datasets.load_dataset(where)
    except Exception as err:  # no network, not in the hub cache, or not a dataset: all fixed the same way
        why = "offline (HF_DATASETS_OFFLINE=1)" if offline else str(err).splitlines()[0][:200]
        raise UserError(
            f"cannot load {where} from the Hugging Face hub ({why}) and it is not in the local HF cache: "
            "download it once with network access, or point data.root at a local copy "
            "(a directory of parquet files, a save_to_disk directory or a .parquet file)") from None


def dataset_name(where: str) -> str:
    """The dataset's name from where it is read: a hub id's last part or a directory's name; for a split's file
    (`data/test-00000-of-00001.parquet`) or a glob, the first folder above it that is not a split or shard name."""
    path = Path(where.rstrip("/"))
    names = [path.stem if path.suffix == ".parquet" else path.name, *(p.name for p in path.parents)]
    return next((n for n in names if n and not NOT_A_NAME.fullmatch(n.lower())), "dataset")


def find_split(available: list[str], wanted: str) -> str | None:
    """`wanted`, or its synonym among the dataset's splits (valid = validation = val = dev, test = testing)."""
    from datasets.data_files import SPLIT_KEYWORDS

    if wanted in available:
        return wanted
    for keywords in SPLIT_KEYWORDS.values():
        if wanted in keywords or wanted == str(keywords[0]):
            names = [str(k) for k in keywords] + [str(s) for s, kw in SPLIT_KEYWORDS.items() if kw is keywords]
            for name in names:
                if name in available:
                    return name
    return None


def pick_split(available: list[str], ours: str, wanted: str, where: str) -> str | None:
    """The dataset's split for our split `ours`: `wanted` or its synonym; `auto`: our split's name or its synonym
    if the dataset has one, else None (carved from train)."""
    if wanted == "auto":
        return find_split(available, ours)
    found = find_split(available, wanted)
    if found is None:
        carve = "" if ours == "train" else f", or data.source.splits.{ours}=null to carve it from train"
        raise UserError(f"{where} has no split {wanted!r} (it has: {', '.join(available)}): set "
                        f"data.source.splits.{ours}=<one of them>{carve}")
    return found


def load_hf(path: str, root: str | None = None, splits: dict[str, str] | None = None, image_column: str = "image",
            label_column: str = "label", words: str | None = None, name: str | None = None) -> SourceData:
    """An image-classification dataset through `datasets`: `root` (a local copy) if set, else hub id `path`.

    `splits` maps our split (train/val/test) to the dataset's, `auto` = the split of that name if the dataset has
    one; splits left out (or `auto` without one: a single parquet file) are carved from train.
    Class names come from the label's ClassLabel names, mapped through `words` (a words.txt) when given.
    """
    from datasets import ClassLabel, Image

    where = str(root) if root else path
    if not where:
        raise UserError("data.source.path (a hub id) or data.root (a local copy) must be set")
    dataset = open_dataset(where)
    splits = dict(splits or {"train": "train"})
    if "train" not in splits or set(splits) - set(OUR_SPLITS):
        raise UserError(f"data.source.splits={splits} must map train (and optionally val, test) to dataset splits")
    available = list(dataset.keys())
    chosen = {ours: pick_split(available, ours, str(theirs), where) for ours, theirs in splits.items() if theirs}
    chosen = {ours: theirs for ours, theirs in chosen.items() if theirs is not None}
    if "train" not in chosen:
        raise UserError(f"{where} has no train split (it has: {', '.join(available)}): set "
                        "data.source.splits.train=<one of them>")
    first = dataset[chosen["train"]]
    for column in (image_column, label_column):
        if column not in first.column_names:
            raise UserError(f"{where} has no column {column!r} (columns: {', '.join(first.column_names)}); "
                            "set data.source.image_column / label_column")
    label_feature = first.features[label_column]
    class_names: list[str] | None = label_feature.names if isinstance(label_feature, ClassLabel) else None
    out: dict[str, Encoded] = {}
    for ours, theirs in chosen.items():
        part = dataset[theirs].select_columns([image_column, label_column])
        if isinstance(part.features[image_column], Image):
            part = part.cast_column(image_column, Image(decode=False))
        raw_labels = part.data.column(label_column).to_pylist()
        if class_names is None:
            class_names = sorted({str(v) for v in dataset[chosen["train"]].data.column(label_column).to_pylist()})
        if isinstance(label_feature, ClassLabel):
            labels = np.asarray(raw_labels, dtype=np.int64)
        else:
            index = {n: i for i, n in enumerate(class_names)}
            unknown = sorted({str(v) for v in raw_labels} - set(index))
            if unknown:
                raise UserError(f"{where} split {theirs} has labels not in train: {', '.join(unknown[:5])}")
            labels = np.asarray([index[str(v)] for v in raw_labels], dtype=np.int64)
        out[ours] = Encoded(Column(part, image_column, f"{where} [{theirs}]"), labels, open_hf)
    mapping = read_words(Path(words).expanduser()) if words else {}
    if not mapping and root and Path(root, "words.txt").is_file():
        mapping = read_words(Path(root, "words.txt"))
    return SourceData(
        splits=out,
        class_names=[mapping.get(n, n) for n in class_names or []],
        name=name or dataset_name(path or where),
        source=f"Hugging Face datasets : {where}" + (f" (identifiant du hub {path})" if root and path else ""),
        notes={"label_ids": list(class_names or [])} if mapping else {},
        origins={ours: f"{theirs}" for ours, theirs in chosen.items()},
    )
