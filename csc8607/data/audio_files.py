"""Audio files: a folder of clips (label from the parent folder, a file-name pattern, or a metadata CSV) and
the ESC-50 layout (`audio/*.wav`, `meta/esc50.csv`, 5 folds)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from csc8607.data.core import SourceData
from csc8607.data.folders import existing_root
from csc8607.data.split import Encoded
from csc8607.errors import UserError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """A file -> (mono float32 wave in [-1, 1], sample rate); anything unreadable or empty is a UserError."""
    import soundfile

    try:
        wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, soundfile.LibsndfileError) as err:
        raise UserError(f"cannot read audio {path}: {str(err).splitlines()[0]}") from None
    if len(wave) == 0:
        raise UserError(f"audio {path} has zero samples")
    return wave.mean(axis=1), int(rate)


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def csv_labels(path: str, file_column: str, label_column: str) -> dict[str, str]:
    """{file name or relative path: label} from a metadata CSV."""
    with open(Path(path).expanduser(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column in (file_column, label_column):
        if rows and column not in rows[0]:
            raise UserError(f"{path} has no column {column!r} (columns: {', '.join(rows[0])}): set "
                            "data.source.file_column / label_column")
    return {row[file_column]: row[label_column] for row in rows}


def label_of(path: Path, base: Path, regex: re.Pattern | None, table: dict[str, str] | None) -> str:
    """The label of one file: its CSV row, the first group of `regex` on its name, or its parent folder."""
    if table is not None:
        for key in (str(path.relative_to(base)), path.name):
            if key in table:
                return table[key]
        raise UserError(f"{path} has no row in data.source.labels_csv")
    if regex is not None:
        match = regex.search(path.name)
        if not match or not match.groups():
            raise UserError(f"data.source.label_regex={regex.pattern!r} does not match (with a group) {path.name}")
        return match.group(1)
    return path.parent.name


def load_audio_folder(root: str | None = None, label_regex: str | None = None, labels_csv: str | None = None,
                      file_column: str = "filename", label_column: str = "label",
                      name: str = "audio_folder") -> SourceData:
    """Clips below `root` (or below root/train, root/val, root/test when present); labels as `label_of` says."""
    base = existing_root(root, "audio_folder", "a folder of audio files")
    regex = re.compile(label_regex) if label_regex else None
    table = csv_labels(labels_csv, file_column, label_column) if labels_csv else None
    parts = {s: base / s for s in ("train", "val", "test") if (base / s).is_dir()} or {"train": base}
    found = {s: audio_files(folder) for s, folder in parts.items()}
    if not found["train"]:
        raise UserError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) below {parts['train']}")
    labels = {s: [label_of(p, base, regex, table) for p in files] for s, files in found.items()}
    names = sorted(set(labels["train"]), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
    index = {n: i for i, n in enumerate(names)}
    splits = {}
    for s, files in found.items():
        unknown = sorted(set(labels[s]) - set(index))
        if unknown:
            raise UserError(f"{parts[s]} has labels that train lacks: {', '.join(unknown[:5])}")
        splits[s] = Encoded([str(p) for p in files], np.array([index[v] for v in labels[s]], np.int64), read_audio)
    how = "labels_csv" if table is not None else ("label_regex" if regex else "le dossier parent")  # report D5
    return SourceData(splits, names, name=name, source=f"fichiers audio {base}", notes={"labels_from": how},
                      origins={s: f"{p.name}/" for s, p in parts.items()})


def load_esc50(root: str | None = None, test_folds: list[int] | None = (5,),
               val_folds: list[int] | None = (4,)) -> SourceData:
    """ESC-50: `audio/*.wav` (5 s, 44.1 kHz) and `meta/esc50.csv` (filename, fold, target, category); the test
    and val splits are the given folds (null: carved from the rest, stratified)."""
    base = existing_root(root, "esc50", "ESC-50-master")
    table = base / "meta" / "esc50.csv"
    if not table.is_file():
        raise UserError(f"{table} is missing: data.root must be the ESC-50 directory (audio/, meta/)")
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    categories = {int(r["target"]): r["category"] for r in rows}
    names = [categories[t] for t in sorted(categories)]
    position = {t: i for i, t in enumerate(sorted(categories))}
    chosen = {"test": set(test_folds or []), "val": set(val_folds or [])}
    if chosen["test"] & chosen["val"]:
        raise UserError(f"data.test_folds and data.val_folds share folds {sorted(chosen['test'] & chosen['val'])}")
    members: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for row in rows:
        fold = int(row["fold"])
        split = "test" if fold in chosen["test"] else "val" if fold in chosen["val"] else "train"
        members[split].append(row)
    splits = {s: Encoded([str(base / "audio" / r["filename"]) for r in part],
                         np.array([position[int(r["target"])] for r in part], np.int64), read_audio)
              for s, part in members.items() if part}
    origins = {s: f"folds {', '.join(map(str, sorted(chosen[s])))}" for s in ("val", "test") if s in splits}
    origins["train"] = "les autres folds"  # report D3, in its language
    return SourceData(splits, names, name="esc50", source=f"ESC-50 {base}", origins=origins)
