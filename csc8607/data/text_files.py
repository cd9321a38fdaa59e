"""Text-classification sources: CSV / TSV / JSON lines / parquet files read by Hugging Face `datasets`' own file
loaders, the hub presets (IMDB, AG News, Yelp polarity) and 20 Newsgroups (scikit-learn's fetcher)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from csc8607.data.core import SourceData
from csc8607.data.hf import find_split, open_dataset
from csc8607.data.split import Encoded
from csc8607.errors import UserError

BUILDERS = {".csv": ("csv", {}), ".tsv": ("csv", {"sep": "\t"}), ".json": ("json", {}), ".jsonl": ("json", {}),
            ".parquet": ("parquet", {})}
OUR_SPLITS = {"train": "train", "val": "validation", "test": "test"}


SPLIT_NAMES = {"train": ("train", "training"), "validation": ("validation", "valid", "val", "dev"),
               "test": ("test", "testing")}


def split_files(folder: Path) -> dict[str, Path]:
    """A directory's `train.*`, `validation.*` (valid, val, dev) and `test.*` files of a known type, top level only
    (run outputs or other files beside them are never read)."""
    found = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            files = sorted(p for p in folder.glob(f"{name}.*") if p.suffix in BUILDERS and p.is_file())
            if files:
                found[split] = files[0]
                break
    return found


def load_file(path: Path, split: str) -> Any:
    import datasets

    builder, options = BUILDERS[path.suffix]
    try:
        return datasets.load_dataset(builder, data_files={split: str(path)}, split=split, **options)
    except Exception as err:  # noqa: BLE001 - parser errors of every format, one line
        raise UserError(f"cannot read {path}: {str(err).splitlines()[0][:200]}") from None


def read_files(where: str) -> Any:
    """A DatasetDict: one file (its train split), or a directory whose train.* / validation.* (val, dev) /
    test.* files are the splits, or a save_to_disk directory."""
    import datasets

    path = Path(where).expanduser()
    if path.is_file():
        if path.suffix not in BUILDERS:
            raise UserError(f"{path}: unknown text file type (expected {', '.join(BUILDERS)})")
        return datasets.DatasetDict(train=load_file(path, "train"))
    files = split_files(path) if path.is_dir() else {}
    if not files:
        return open_dataset(where)  # a save_to_disk directory, or one error line saying what is expected
    if "train" not in files:
        raise UserError(f"{path} has no train.* file (found: {', '.join(p.name for p in files.values())})")
    return datasets.DatasetDict({split: load_file(file, split) for split, file in files.items()})


def joined_texts(rows: dict[str, list[Any]], columns: Sequence[str]) -> list[str]:
    """Each row's text columns joined by a newline (a title and its body), missing values as empty."""
    parts = [["" if v is None else str(v) for v in rows[c]] for c in columns]
    return ["\n".join(p).strip() for p in zip(*parts)]


def label_names(feature: Any, values: list[Any]) -> list[str]:
    """A ClassLabel's names, else the distinct values: integers in numeric order, strings sorted."""
    if hasattr(feature, "names") and getattr(feature, "names", None):
        return list(feature.names)
    distinct = {v for v in values if v is not None}
    if distinct and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in distinct):
        return [str(v) for v in sorted(distinct)]
    return sorted(str(v) for v in distinct)


def read_split(part: Any, columns: list[str], label_column: str, class_names: list[str], where: str,
               drop_empty: bool) -> tuple[Encoded, int]:
    """One split's texts and class indices; returns them and how many empty texts were dropped."""
    rows = part.select_columns([*columns, label_column]).to_dict()
    texts = joined_texts(rows, columns)
    named = getattr(part.features[label_column], "names", None)
    labels = [None if v is None else class_names[int(v)] if named else str(v) for v in rows[label_column]]
    index = {n: i for i, n in enumerate(class_names)}
    unknown = sorted({str(v) for v in labels if v not in index})
    if unknown:
        raise UserError(f"{where}: labels {', '.join(unknown[:5])} are not in the train split's "
                        f"({', '.join(class_names[:10])})")
    keep = [i for i, t in enumerate(texts) if t]
    empty = len(texts) - len(keep)
    if empty and not drop_empty:
        first = next(i for i, t in enumerate(texts) if not t)
        raise UserError(f"{where}: data row {first + 1} has an empty text ({empty} such rows); fix the file or "
                        "set data.drop_empty=true")
    targets = np.asarray([index[labels[i]] for i in keep], dtype=np.int64)
    return Encoded([texts[i] for i in keep], targets, opener=None), empty


def load_text(root: str | None = None, path: str | None = None, text_column: Any = "text", label_column: str = "label",
              drop_empty: bool = False, name: str | None = None) -> SourceData:
    """A text-classification dataset: `root` (a file or directory, local) if set, else hub id `path`.

    Splits: train, validation (val, dev) and test as found; a missing one is carved from train, stratified.
    Labels: a ClassLabel's names, or string / integer values (sorted). Two classes make a binary task (one logit).
    An empty text is an error unless `drop_empty` (then counted in the notes).
    """
    where = str(root) if root else path
    if not where:
        raise UserError("data.root (a CSV/TSV/JSONL/parquet file or a directory of train.*/val.*/test.* files) "
                        "or data.source.path (a Hugging Face hub id) must be set")
    dataset = read_files(where) if root else open_dataset(where)
    available = list(dataset.keys())
    found = {ours: find_split(available, theirs) for ours, theirs in OUR_SPLITS.items()}
    chosen = {ours: theirs for ours, theirs in found.items() if theirs is not None}  # the others are carved
    if "train" not in chosen:
        raise UserError(f"{where} has no split 'train' (it has: {', '.join(available)})")
    columns = [text_column] if isinstance(text_column, str) else [str(c) for c in text_column]
    first = dataset[chosen["train"]]
    for column in [*columns, label_column]:
        if column not in first.column_names:
            raise UserError(f"{where} has no column {column!r} (columns: {', '.join(first.column_names)}); "
                            "set data.text_column / data.label_column")
    class_names = label_names(first.features[label_column], first.data.column(label_column).to_pylist())
    splits, notes = {}, {}
    for ours, theirs in chosen.items():
        where_split = f"{where} split {theirs}"
        splits[ours], dropped = read_split(dataset[theirs], columns, label_column, class_names, where_split, drop_empty)
        if dropped:
            notes[f"empty_texts_dropped_{ours}"] = dropped
    return SourceData(splits, class_names, name=name or Path(path or where).name, task="binary"
                      if len(class_names) == 2 else "multiclass",
                      source=f"fichiers texte {where}" if root else f"Hugging Face datasets : {where}", notes=notes,
                      origins=dict(chosen))


def load_newsgroups(root: str | None = None, remove: Sequence[str] = ("headers", "footers", "quotes"),
                    drop_empty: bool = True) -> SourceData:
    """20 Newsgroups through scikit-learn's fetcher, with `root` as its data_home (the cached archive there, never
    downloaded here); a directory of train.*/test.* files is read as a local copy instead."""
    from sklearn.datasets import fetch_20newsgroups

    base = Path(root).expanduser() if root else None
    if base is not None and any(base.glob("train.*")):
        return load_text(root=str(base), drop_empty=drop_empty, name="newsgroups20")
    splits, notes = {}, {}
    try:
        for ours in ("train", "test"):
            bunch = fetch_20newsgroups(data_home=str(base) if base else None, subset=ours, remove=tuple(remove),
                                       download_if_missing=False)
            keep = [i for i, t in enumerate(bunch.data) if t.strip()]
            if len(keep) < len(bunch.data) and not drop_empty:
                raise UserError(f"20 Newsgroups {ours}: {len(bunch.data) - len(keep)} empty texts after removing "
                                f"{', '.join(remove)}; set data.drop_empty=true")
            notes[f"empty_texts_dropped_{ours}"] = len(bunch.data) - len(keep)
            splits[ours] = Encoded([bunch.data[i].strip() for i in keep], np.asarray(bunch.target)[keep], None)
    except OSError:
        raise UserError(f"20 Newsgroups is not in data.root={root} (scikit-learn's 20news-bydate archive): run "
                        "sklearn.datasets.fetch_20newsgroups(data_home=DIR) once with network access and set "
                        "data.root=DIR, or point data.root at a local copy (a directory of train.*/test.* "
                        "parquet/CSV files with text and label columns)") from None
    return SourceData(splits, list(bunch.target_names), name="newsgroups20", source="scikit-learn "
                      f"fetch_20newsgroups (data_home {root}, retirés : {', '.join(remove) or 'rien'})", notes=notes)
