"""Image files on disk: the Stanford Tiny-ImageNet layout and a generic ImageFolder (`train/<class>/*`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from csc8607.data.cache import is_cache
from csc8607.data.core import SourceData
from csc8607.data.decode import open_path
from csc8607.data.split import Encoded
from csc8607.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def existing_root(root: str | None, config: str, layout: str) -> Path:
    """`root` as a directory, or a UserError that says how to set it."""
    if not root:
        raise UserError(f"data.root is not set: python train.py data={config} data.root=/path/to/{layout}")
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"data.root={root} is not a directory (expected {layout})")
    return path


def image_files(folder: Path) -> list[Path]:
    """Image files below `folder` (any depth), sorted; hidden files and those in hidden folders skipped."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def subfolders(folder: Path) -> list[str]:
    """The names of `folder`'s class folders: its folders, less hidden ones and a cache dir placed there."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and not is_cache(p))


def class_folders(folder: Path, classes: list[str]) -> Encoded:
    """`folder/<class>/...` for the given classes, labels by their position in `classes`."""
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        files = image_files(folder / name) if (folder / name).is_dir() else []
        if not files and (folder / name).is_dir():
            raise UserError(f"class folder {folder / name} has no image files: remove it or add its images")
        paths += [str(p) for p in files]
        labels += [index] * len(files)
    if not paths:
        raise UserError(f"no image files in the class folders of {folder}")
    return Encoded(paths, np.asarray(labels, dtype=np.int64), open_path)


def read_words(path: Path) -> dict[str, str]:
    """`words.txt`: `<wnid>\\t<comma-separated synonyms>` -> {wnid: first synonym}."""
    words: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            wnid, _, names = line.partition("\t")
            if names:
                words[wnid.strip()] = names.split(",")[0].strip()
    return words


def load_tiny_imagenet_folder(root: str | None = None) -> SourceData:
    """CS231n `tiny-imagenet-200/`: train/<wnid>/images/* and val/images/* labelled by val_annotations.txt.

    The official val split becomes our test split; `test/` (unlabelled) is not used.
    """
    base = existing_root(root, "tiny_imagenet_folder", "tiny-imagenet-200")
    wnids_file = base / "wnids.txt"
    if not wnids_file.is_file():
        raise UserError(f"{wnids_file} is missing: data.root must be the tiny-imagenet-200 directory")
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    train = class_folders(base / "train", wnids)
    annotations = base / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise UserError(f"{annotations} is missing: data.root must be the tiny-imagenet-200 directory")
    index = {w: i for i, w in enumerate(wnids)}
    paths, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or not line.strip():
            continue
        if fields[1] not in index:
            raise UserError(f"{annotations}:{number}: class {fields[1]} is not in wnids.txt")
        paths.append(str(base / "val" / "images" / fields[0]))
        labels.append(index[fields[1]])
    words = read_words(base / "words.txt")
    return SourceData(
        splits={"train": train, "test": Encoded(paths, np.asarray(labels, dtype=np.int64), open_path)},
        class_names=[words.get(w, w) for w in wnids],
        name="tiny_imagenet",
        source=f"Tiny ImageNet (CS231n), dossier {base}",
        notes={"wnids": wnids, "unlabelled test/ folder": "non utilisé"},
        origins={"train": "train/", "test": "val/ (validation officielle)"},
    )


def load_image_folder(root: str | None = None, name: str = "image_folder") -> SourceData:
    """`root/train/<class>/*` (+ optional `root/val/<class>/*`, `root/test/<class>/*`); classes from train."""
    base = existing_root(root, "image_folder", "dataset-with-train-folder")
    train_dir = base / "train"
    if not train_dir.is_dir():
        hint = f" (data.root={base.parent}?)" if base.name in ("train", "val", "test") else ""
        raise UserError(f"{train_dir} is missing: an ImageFolder dataset needs train/<class>/ folders{hint}")
    classes = subfolders(train_dir)
    if not classes:
        raise UserError(f"{train_dir} has no class folders")
    splits = {"train": class_folders(train_dir, classes)}
    for split in ("val", "test"):
        if (base / split).is_dir():
            extra = [name for name in subfolders(base / split) if name not in classes]
            if extra:
                raise UserError(f"{base / split} has class folders that train/ lacks: {', '.join(extra[:5])}")
            splits[split] = class_folders(base / split, classes)
    return SourceData(splits=splits, class_names=classes, name=name, source=f"dossiers d'images {base}",
                      origins={s: f"{s}/" for s in splits})
