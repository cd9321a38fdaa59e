"""Time-series files: the UEA/UCR archive (`NAME_TRAIN.ts` / `NAME_TEST.ts`, or UCR's `.tsv`) and UCI HAR."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from csc8607.data.core import SourceData
from csc8607.data.folders import existing_root
from csc8607.data.split import Encoded
from csc8607.errors import UserError

HAR_SIGNALS = [f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]


def ts_header(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    """The `@key value` lines before `@data` (keys lower-cased) and the index of the first data line."""
    header: dict[str, str] = {}
    for number, line in enumerate(lines):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise UserError(f"{path}:{number + 1}: data before @data")
        key, _, value = line[1:].partition(" ")
        if key.lower() == "data":
            return header, number + 1
        value = value.strip()
        header[key.lower()] = value.lower() if value.lower() in ("true", "false") else value
    raise UserError(f"{path}: no @data line (not a .ts file)")


def flag(header: dict[str, str], key: str) -> bool:
    """A `.ts` boolean header (`@univariate true`, `@classLabel true 1 2 3`)."""
    return header.get(key, "").split()[:1] == ["true"]


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str], dict[str, str]]:
    """A `.ts` file -> (C, T_i) float32 arrays, their label strings, the header; every header claim checked."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header, start = ts_header(lines, path)
    if flag(header, "timestamps"):
        raise UserError(f"{path}: @timeStamps true (a time with every value) is not supported: resample the series "
                        "to equal steps and write the values alone")
    labelled = flag(header, "classlabel") or flag(header, "targetlabel")
    dims = int(header["dimensions"]) if "dimensions" in header else (1 if flag(header, "univariate") else None)
    length = int(header["serieslength"]) if "serieslength" in header else None
    series, labels = [], []
    for number, line in enumerate(lines[start:], start + 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.strip().split(":")
        if labelled:
            labels.append(parts.pop().strip())
        where = f"{path}:{number}"
        try:
            values = [np.array([np.nan if v.strip() == "?" else float(v) for v in p.split(",")], dtype=np.float32)
                      for p in parts]  # '?' = missing: filled when decoded (series.fill_missing)
        except ValueError as err:
            raise UserError(f"{where}: {err} (values are numbers, or '?' when missing)") from None
        if header.get("missing") == "false" and any(np.isnan(v).any() for v in values):
            raise UserError(f"{where}: missing values '?' but the header says @missing false")
        if dims is not None and len(values) != dims:
            raise UserError(f"{where}: {len(values)} dimensions but the header says {dims}")
        if len({len(v) for v in values}) > 1:
            raise UserError(f"{where}: the dimensions of one series have different lengths")
        if flag(header, "equallength") and length is not None and len(values[0]) != length:
            raise UserError(f"{where}: {len(values[0])} steps but the header says @seriesLength {length}")
        series.append(np.stack(values))
    if not series:
        raise UserError(f"{path}: no series after @data")
    return series, labels, header


def read_tsv(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """UCR `.tsv`: label then values, tab-separated; trailing NaNs (unequal lengths) dropped, others are missing
    values (filled when decoded)."""
    series, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split(",")
        try:
            values = np.array([float(v) for v in fields[1:]], dtype=np.float32)
        except ValueError as err:
            raise UserError(f"{path}:{number}: {err}") from None
        keep = len(values) - int(np.argmax(~np.isnan(values[::-1]))) if np.isnan(values).any() else len(values)
        series.append(values[None, :keep])
        labels.append(fields[0].strip())
    return series, labels


def label_order(names: set[str]) -> list[str]:
    """Numeric labels in numeric order, others alphabetically."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def load_uea(root: str | None = None, name: str | None = None) -> SourceData:
    """`root/NAME_TRAIN.ts` and `NAME_TEST.ts` (or `root/NAME/...`, or UCR `.tsv`): train and test splits."""
    base = existing_root(root, "uea", "the folder of NAME_TRAIN.ts")
    if not name:
        raise UserError("data.name is not set: the dataset's name, as in NAME_TRAIN.ts")
    folder = base / name if (base / name).is_dir() else base
    found = {}
    for split in ("train", "test"):
        for suffix in (".ts", ".tsv"):
            path = folder / f"{name}_{split.upper()}{suffix}"
            if path.is_file():
                found[split] = path
                break
    if "train" not in found:
        raise UserError(f"{folder / (name + '_TRAIN.ts')} (or .tsv) does not exist")
    read = {s: read_ts(p) if p.suffix == ".ts" else (*read_tsv(p), {}) for s, p in found.items()}
    header = read["train"][2]
    declared = header.get("classlabel", "").split()[1:]
    regression = flag(header, "targetlabel")
    names = declared or label_order({label for _, labels, _ in read.values() for label in labels})
    index = {n: i for i, n in enumerate(names)}
    splits = {}
    for split, (series, labels, _) in read.items():
        if regression:
            targets = np.array([float(v) for v in labels], dtype=np.float32)
        else:
            unknown = sorted(set(labels) - set(index))
            if unknown:
                raise UserError(f"{found[split]}: labels {', '.join(unknown[:5])} are not in @classLabel")
            targets = np.array([index[v] for v in labels], dtype=np.int64)
        splits[split] = Encoded(series, targets, opener=None)
    return SourceData(splits, ["target"] if regression else names, name=name, source=f"fichiers de l'archive UEA/UCR {folder}",
                      task="regression" if regression else "multiclass",
                      notes={"channels": [f"dim {i}" for i in range(read["train"][0][0].shape[0])]},
                      origins={s: p.name for s, p in found.items()})


def load_uci_har(root: str | None = None) -> SourceData:
    """`UCI HAR Dataset/`: the nine `Inertial Signals/*_{split}.txt` (N x 128 each), `y_{split}.txt` (1..6),
    `activity_labels.txt`; train and test (subjects disjoint) as given."""
    base = existing_root(root, "uci_har", "UCI HAR Dataset")
    labels_file = base / "activity_labels.txt"
    if not labels_file.is_file():
        raise UserError(f"{labels_file} is missing: data.root must be the 'UCI HAR Dataset' directory")
    activities = dict(line.split(maxsplit=1) for line in labels_file.read_text().splitlines() if line.strip())
    ids = sorted(activities, key=int)
    splits = {}
    for split in ("train", "test"):
        channels = []
        for signal in HAR_SIGNALS:
            path = base / split / "Inertial Signals" / f"{signal}_{split}.txt"
            if not path.is_file():
                raise UserError(f"{path} is missing")
            channels.append(np.array(path.read_text().split(), dtype=np.float32).reshape(-1, 128)
                            if path.stat().st_size else np.zeros((0, 128), np.float32))
        y_file = base / split / f"y_{split}.txt"
        if not y_file.is_file():
            raise UserError(f"{y_file} is missing")
        y = y_file.read_text().split()
        if {len(c) for c in channels} != {len(y)}:
            raise UserError(f"{base / split}: the signal files and y_{split}.txt have different numbers of rows")
        unknown = sorted(set(y) - set(ids))
        if unknown:
            raise UserError(f"{base / split / f'y_{split}.txt'}: activities {unknown[:5]} not in activity_labels.txt")
        targets = np.array([ids.index(v) for v in y], dtype=np.int64)
        splits[split] = Encoded(list(np.stack(channels, axis=1)), targets, opener=None)
    return SourceData(splits, [activities[i].strip() for i in ids], name="uci_har", source=f"UCI HAR Dataset {base}",
                      notes={"channels": HAR_SIGNALS}, origins={"train": "train/", "test": "test/"})
