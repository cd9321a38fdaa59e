"""The array dataset: splits, normalization, batched augmentation."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from csc8607.data import ImageData, SourceData, Split
from csc8607.data.digits import load_digits
from csc8607.data.image import apply_augment, crop_flip, crop_flip_batched, draw_augment
from csc8607.errors import UserError


def test_digits_split_is_stratified_disjoint_and_70_15_15() -> None:
    data = ImageData(load_digits, val_fraction=0.15, test_fraction=0.15, split_seed=0, channels=1)
    sizes = data.meta["split_sizes"]
    assert sum(sizes.values()) == 1797 and sizes["val"] == sizes["test"] == 270
    # every image pixel pattern of digits is unique enough: compare flattened bytes across splits
    keys = {name: {bytes(img.numpy().tobytes()) for img in split.inputs} for name, split in data.splits.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    full = np.bincount(load_digits().splits["train"].targets.numpy()) / 1797
    for split in data.splits.values():
        share = np.bincount(split.targets.numpy(), minlength=10) / len(split)
        assert np.abs(share - full).max() < 0.01  # stratified: class shares match the pool's
    assert "stratifié" in data.meta["split_protocol"]["val"] and data.meta["split_seed"] == 0


def test_split_depends_on_seed_only() -> None:
    a = ImageData(load_digits, 0.15, 0.15, split_seed=1, channels=1)
    b = ImageData(load_digits, 0.15, 0.15, split_seed=1, channels=1)
    c = ImageData(load_digits, 0.15, 0.15, split_seed=2, channels=1)
    assert torch.equal(a.splits["val"].inputs, b.splits["val"].inputs)
    assert not torch.equal(a.splits["val"].inputs, c.splits["val"].inputs)


def test_normalized_train_batches_have_zero_mean_unit_std() -> None:
    data = ImageData(load_digits, 0.15, 0.15, channels=1, augment={})
    x, y = next(iter(data.loader("train", 10_000)))
    assert x.dtype == torch.float32 and abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3
    assert y.dtype == torch.int64 and len(y) == 1257


def test_channels_and_resize_conversion() -> None:
    data = ImageData(load_digits, 0.15, 0.15, channels=3, image_size=[16, 16])
    assert data.meta["input_shape"] == [3, 16, 16] and len(data.mean) == 3


def test_random_crop_moves_content_by_at_most_padding() -> None:
    images = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    images[:, :, 4, 4] = 255
    augment = {"crop_padding": 2}
    out = apply_augment(images, augment, draw_augment(64, augment, images.shape, torch.Generator().manual_seed(0)))
    assert out.shape == images.shape and out.dtype == torch.uint8
    positions = {tuple(torch.nonzero(img[0])[0].tolist()) for img in out if img.any()}
    assert len(positions) > 5 and all(2 <= r <= 6 and 2 <= c <= 6 for r, c in positions)


def test_hflip_mirrors_about_half() -> None:
    images = torch.arange(8, dtype=torch.uint8).repeat(200, 1, 8, 1)
    augment = {"hflip": True}
    out = apply_augment(images, augment, draw_augment(200, augment, images.shape, torch.Generator().manual_seed(0)))
    flipped = (out[:, 0, 0, 0] == 7).float().mean().item()
    assert 0.35 < flipped < 0.65
    assert torch.equal(torch.sort(out, dim=3).values, images)


def test_crop_flip_is_pad_crop_then_flips_on_both_paths() -> None:
    """The CPU per-image path and the whole-batch path (used on GPUs) equal the definition, image by image."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 9, 7), dtype=torch.uint8, generator=g)
    padding = 3
    dy, dx = torch.randint(0, 7, (40,), generator=g), torch.randint(0, 7, (40,), generator=g)
    mirror, upside_down = torch.rand(40, generator=g) < 0.5, torch.rand(40, generator=g) < 0.5
    padded = torch.nn.functional.pad(images, (padding,) * 4)

    def expected_one(i: int, y: int, x: int, m: bool, u: bool) -> torch.Tensor:
        crop = padded[i, :, y : y + 9, x : x + 7]
        crop = crop.flip(2) if m else crop
        return crop.flip(1) if u else crop

    expected = torch.stack([expected_one(i, *v) for i, v in enumerate(zip(
        dy.tolist(), dx.tolist(), mirror.tolist(), upside_down.tolist()))])
    assert torch.equal(crop_flip(images, padding, dy, dx, mirror, upside_down), expected)
    assert torch.equal(crop_flip_batched(images, padding, dy, dx, mirror, upside_down), expected)
    assert (mirror & upside_down).any() and (~mirror & ~upside_down).any() and (dy != padding).any()


def test_too_few_images_to_stratify_fall_back_to_a_random_split() -> None:
    """30 classes x 4 images: a 10 % carve holds fewer images than classes, so it is random, and says so."""
    labels = torch.arange(30).repeat_interleave(4)
    images = torch.arange(120, dtype=torch.uint8)[:, None, None, None].expand(120, 1, 4, 4).contiguous()
    source = SourceData({"train": Split(images, labels)}, [str(c) for c in range(30)], "small", "here")
    data = ImageData(source, val_fraction=0.1, test_fraction=0.1, channels=1)
    assert data.meta["split_sizes"] == {"train": 96, "val": 12, "test": 12}
    assert "au hasard" in data.meta["split_protocol"]["val"] and "au hasard" in data.meta["split_protocol"]["test"]
    seen = torch.cat([s.inputs[:, 0, 0, 0] for s in data.splits.values()])
    assert len(seen.unique()) == 120  # every image in exactly one split


def test_skipped_batches_replay_the_same_stream() -> None:
    data = ImageData(load_digits, 0.15, 0.15, channels=1, augment={"crop_padding": 2, "hflip": True, "vflip": True, "cutout": 3, "brightness": 0.2, "contrast": 0.2})
    loader = data.loader("train", 100, train=True, seed=5)
    loader.set_epoch(3)
    full = list(loader)
    loader.skip(4)
    rest = list(loader)
    assert len(rest) == len(full) - 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(full[4:], rest))
    assert len(list(loader)) == len(full)  # the skip applies to one pass only


def test_the_decode_pool_never_forks_while_scikit_learn_is_imported(tmp_path: Path) -> None:
    """A process forked while a thread holds an import lock can hang on it: the decode pool waits for the
    prefetch thread (a fresh interpreter, where scikit-learn is not imported yet)."""
    import subprocess
    import sys

    from PIL import Image

    for i in range(8):
        Image.new("L", (4, 4), i).save(tmp_path / f"{i}.png")
    script = f"""
import sys, numpy as np
from PIL import Image
from csc8607.data.decode import decode_all
from csc8607.data.split import Encoded, prefetch_carve
paths = sorted(__import__("glob").glob({str(tmp_path)!r} + "/*.png"))
thread = prefetch_carve()
out = decode_all(Encoded(paths, np.zeros(8), Image.open), 1, None, workers=2)
assert tuple(out.shape) == (8, 1, 4, 4) and not thread.is_alive(), thread.is_alive()
print("sklearn" if "sklearn.model_selection" in sys.modules else "not yet")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0 and done.stdout.strip() == "sklearn", done.stderr[-2000:]


def test_carved_splits_are_pinned_and_scikit_learn_is_imported_while_decoding() -> None:
    """The carved indices are those of every existing cache and checkpoint (pinned: a change of the carving would
    silently move examples between splits); prefetch_carve imports scikit-learn on a thread, which carve uses."""
    import hashlib
    import sys

    from csc8607.data.split import carve, prefetch_carve

    thread = prefetch_carve()
    assert thread is None if "sklearn.model_selection" in sys.modules else thread.name == "import-sklearn"
    if thread is not None:
        thread.join(60)
    assert "sklearn.model_selection" in sys.modules
    labels = torch.tensor(np.arange(500) % 7 + (np.arange(500) % 3 == 0))
    split = Split(torch.arange(500), labels)
    pinned = {True: ("5c7d563f24e24f90", [1, 3, 4, 7, 9, 25, 26, 31]),
              False: ("8fa082a70c8eb3d4", [14, 15, 16, 27, 37, 40, 43, 51])}
    for stratify, (digest, first) in pinned.items():
        rest, carved, _ = carve(split, 0.2, 3, stratify, 0.2)
        assert (len(rest), len(carved)) == (400, 100)
        assert hashlib.sha256(carved.inputs.numpy().tobytes()).hexdigest()[:16] == digest
        assert carved.inputs[:8].tolist() == first
        assert sorted(rest.inputs.tolist() + carved.inputs.tolist()) == list(range(500))
