"""Tiny generated datasets on disk: Tiny-ImageNet (Stanford folders and HF parquet), ImageFolder.

Every image is distinct random noise around a class colour, so splits can be checked for overlap by content.
Odd files on purpose: a greyscale JPEG, an RGBA PNG, a palette PNG, a CMYK JPEG and a 80x48 image.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

WNIDS = ["n01443537", "n01629819", "n01641577"]
WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander",
         "n01641577": "bullfrog, Rana catesbeiana"}


def noise_image(rng: np.random.Generator, label: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    base = np.zeros(3)
    base[label % 3] = 200.0
    pixels = np.clip(base + rng.normal(0, 40, (*size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=95) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


def odd(image: Image.Image, kind: str) -> tuple[Image.Image, str]:
    """The image in an unusual mode or size, and the file format that can hold it."""
    if kind == "grey":
        return image.convert("L"), "JPEG"
    if kind == "rgba":
        rgba = image.convert("RGBA")
        rgba.putalpha(128)
        return rgba, "PNG"
    if kind == "palette":
        return image.convert("P"), "PNG"
    if kind == "cmyk":
        return image.convert("CMYK"), "JPEG"
    if kind == "wide":
        return image.resize((80, 48)), "JPEG"
    return image, "JPEG"


ODD_TRAIN = {0: "grey", 1: "rgba", 2: "wide", 3: "palette", 4: "cmyk"}  # image index in class 0 -> kind


def tiny_imagenet_files(per_class: int = 8, val_per_class: int = 3, seed: int = 0) -> dict[str, list]:
    """{"train": [(name, bytes, label)], "val": [...]} shared by both layouts, so their decodings can be compared."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"train": [], "val": []}
    for label, wnid in enumerate(WNIDS):
        for i in range(per_class):
            kind = ODD_TRAIN.get(i, "") if label == 0 else ""
            image, fmt = odd(noise_image(rng, label), kind)
            out["train"].append((f"{wnid}_{i}.{'png' if fmt == 'PNG' else 'JPEG'}", encode(image, fmt), label))
    for k in range(val_per_class * len(WNIDS)):
        label = k % len(WNIDS)
        out["val"].append((f"val_{k}.JPEG", encode(noise_image(rng, label), "JPEG"), label))
    return out


def write_tiny_imagenet_folder(root: Path, files: dict[str, list] | None = None) -> Path:
    """The CS231n layout: wnids.txt, words.txt, train/<wnid>/images/, val/images/ + val_annotations.txt, test/."""
    files = files or tiny_imagenet_files()
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\t{WORDS[w]}\n" for w in WNIDS) + "n00000000\tunused\n")
    for name, data, label in files["train"]:
        folder = root / "train" / WNIDS[label] / "images"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        (root / "train" / WNIDS[label] / f"{WNIDS[label]}_boxes.txt").write_text("")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for name, data, label in files["val"]:
        (root / "val" / "images" / name).write_bytes(data)
        lines.append(f"{name}\t{WNIDS[label]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "test" / "images").mkdir(parents=True)
    (root / "test" / "images" / "test_0.JPEG").write_bytes(files["val"][0][1])  # unlabelled: never used
    return root


def write_tiny_imagenet_hf(root: Path, files: dict[str, list] | None = None, save_to_disk: bool = False) -> Path:
    """The zh-plus/tiny-imagenet schema (image, ClassLabel of wnids; splits train/valid) written by `datasets`."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage

    files = files or tiny_imagenet_files()
    features = Features({"image": HFImage(), "label": ClassLabel(names=WNIDS)})
    parts = {}
    for split, theirs in (("train", "train"), ("val", "valid")):
        rows = files[split]
        parts[theirs] = Dataset.from_dict(
            {"image": [{"bytes": data, "path": name} for name, data, _ in rows], "label": [r[2] for r in rows]},
            features=features)
    if save_to_disk:
        DatasetDict(parts).save_to_disk(str(root))
    else:
        (root / "data").mkdir(parents=True)
        for theirs, dataset in parts.items():
            dataset.to_parquet(str(root / "data" / f"{theirs}-00000-of-00001.parquet"))
    return root


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6,
                       test_per_class: int = 2, seed: int = 1) -> Path:
    """root/train/<class>/*.png and root/test/<class>/*.png (no val/: it is carved from train)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (40, 56) if (split, label, i) == ("train", 0, 0) else (48, 48)
                noise_image(rng, label, size).save(folder / f"{i}.png")
    return root
