"""CelebA (multi-label): `img_align_celeba/*.jpg`, `list_attr_celeba.txt` (a count line, a names line, then
`file ±1 ...` rows) and `list_eval_partition.txt` (`file 0|1|2` = train/val/test)."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from csc8607.data.core import SourceData
from csc8607.data.decode import open_path
from csc8607.data.folders import existing_root
from csc8607.data.split import Encoded
from csc8607.errors import UserError

PARTITIONS = {"0": "train", "1": "val", "2": "test"}


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(all attribute names, file names, ±1 matrix) from list_attr_celeba.txt, its count line checked."""
    if not path.is_file():
        raise UserError(f"{path} is missing: data.root must be the CelebA directory")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise UserError(f"{path}: the first line must be the image count, the second the attribute names")
    names = lines[1].split()
    rows = [line.split() for line in lines[2:]]
    if len(rows) != int(lines[0]):
        raise UserError(f"{path}: the count line says {lines[0].strip()} images but {len(rows)} rows follow")
    bad = next((i for i, row in enumerate(rows) if len(row) != len(names) + 1), None)
    if bad is not None:
        raise UserError(f"{path}:{bad + 3}: {len(rows[bad]) - 1} values for {len(names)} attributes")
    try:
        values = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    return names, [row[0] for row in rows], values


def load_celeba(root: str | None = None, attributes: list[str] | None = None) -> SourceData:
    """The chosen `attributes` as multi-hot targets (1 where the file says 1); the official partitions; a
    partition left empty by list_eval_partition.txt is carved from train."""
    base = existing_root(root, "celeba", "the CelebA directory")
    names, files, values = read_attributes(base / "list_attr_celeba.txt")
    chosen = list(attributes or names)
    for attribute in chosen:
        if attribute not in names:
            close = difflib.get_close_matches(attribute, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"data.attributes: CelebA has no attribute {attribute!r}{hint}")
    columns = [names.index(a) for a in chosen]
    targets = (values[:, columns] > 0).astype(np.float32)
    partition_file = base / "list_eval_partition.txt"
    partition = dict(line.split()[:2] for line in partition_file.read_text().splitlines() if line.strip()) \
        if partition_file.is_file() else {}
    images = base / "img_align_celeba"
    splits, origins = {}, {}
    for code, split in PARTITIONS.items():
        index = [i for i, f in enumerate(files) if partition.get(f, "0") == code]
        if index:
            splits[split] = Encoded([str(images / files[i]) for i in index], targets[index], open_path)
            origins[split] = f"list_eval_partition {code}"
    if "train" not in splits:
        raise UserError(f"{partition_file} puts no image in train (partition 0)")
    return SourceData(splits, chosen, name="celeba", source=f"CelebA {base}", task="multilabel",
                      notes={"partition_file": "présent" if partition else "absent : toutes les images en train"},
                      origins=origins)
