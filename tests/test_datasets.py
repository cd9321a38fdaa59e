"""File-based datasets: both Tiny-ImageNet layouts, HF datasets from local files, ImageFolder, the decoded cache."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from image_fixtures import (ODD_TRAIN, WNIDS, WORDS, tiny_imagenet_files, write_image_folder,
                            write_tiny_imagenet_folder, write_tiny_imagenet_hf)
from csc8607.data import ImageData
from csc8607.data.decode import fit_size, to_array
from csc8607.data.folders import load_image_folder, load_tiny_imagenet_folder
from csc8607.data.hf import load_hf
from csc8607.data.tv import load_cifar, load_svhn
from csc8607.errors import UserError

TI_SPLITS = {"train": "train", "test": "valid"}


@pytest.fixture(scope="module")
def files() -> dict[str, list]:
    return tiny_imagenet_files()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, files: dict) -> Path:
    return write_tiny_imagenet_folder(tmp_path_factory.mktemp("ti") / "tiny-imagenet-200", files)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory, files: dict) -> Path:
    return write_tiny_imagenet_hf(tmp_path_factory.mktemp("ti_hf") / "tiny-imagenet", files)


def folder_data(root: Path, cache: Path | None = None, **kwargs) -> ImageData:
    settings = dict(val_fraction=0.25, test_fraction=0.1, split_seed=0, channels=3, image_size=[64, 64])
    settings.update(kwargs)
    return ImageData(partial(load_tiny_imagenet_folder, root=str(root)), cache_dir=str(cache) if cache else None,
                     root=str(root), **settings)


def contents(split) -> set[bytes]:
    return {img.numpy().tobytes() for img in split.inputs}


def test_tiny_imagenet_folder_protocol_names_and_odd_images(folder: Path, files: dict) -> None:
    data = folder_data(folder)
    meta = data.meta
    assert meta["class_names"] == [WORDS[w].split(",")[0] for w in WNIDS]
    assert meta["notes"]["wnids"] == WNIDS
    n_train, n_val = len(files["train"]), len(files["val"])
    assert meta["split_sizes"] == {"train": n_train - n_train // 4, "val": n_train // 4, "test": n_val}
    assert "officielle" in meta["split_protocol"]["test"] and "stratifié" in meta["split_protocol"]["val"]
    assert meta["input_shape"] == [3, 64, 64] and meta["root"] == str(folder)
    # stratified: every class keeps its share in val
    assert np.bincount(data.splits["val"].targets.numpy()).tolist() == [2, 2, 2]
    # no image in two splits (all generated images are distinct), and no image lost or duplicated
    sets = {name: contents(split) for name, split in data.splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == n_train + n_val
    # the greyscale file decodes to three equal channels; all odd files reach the configured shape
    grey = to_array(Image.open(folder / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"), 3)
    assert grey.shape == (3, 64, 64) and (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()
    assert grey.tobytes() in sets["train"] | sets["val"]


def test_image_modes_become_the_configured_channels() -> None:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    rgba = rgb.convert("RGBA")
    for image in (rgb.convert("L"), rgba, rgb.convert("P"), rgb.convert("CMYK"), rgb.convert("LA"),
                  Image.fromarray((np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8))):
        assert to_array(image, 3).shape == (3, 8, 8) and to_array(image, 1).shape == (1, 8, 8)
    assert (to_array(rgba, 3) == to_array(rgb, 3)).all()  # alpha dropped, colours kept
    assert to_array(rgb, 1).dtype == np.uint8


def test_16_bit_png_is_scaled_to_8_bits_not_saturated(tmp_path: Path) -> None:
    ramp = (np.arange(64, dtype=np.uint16) * 1040).reshape(8, 8)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    for channels in (1, 3):
        array = to_array(Image.open(tmp_path / "deep.png"), channels)
        assert array.shape == (channels, 8, 8)
        assert (array == np.round(ramp / 257.0).astype(np.uint8)).all()  # 65535 -> 255, 32768 -> 128
    assert len(np.unique(array)) == 64  # the old convert("L") clipped every value above 255 to 255


def test_one_class_or_an_empty_class_folder_is_refused(tmp_path: Path) -> None:
    from conftest import run_cli

    lonely = write_image_folder(tmp_path / "lonely", classes=("cat",))
    proc = run_cli("train.py", "data=image_folder", f"data.root={lonely}", "trainer.max_epochs=1", cwd=tmp_path,
                   check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert "1 class (cat)" in errors[0] and "at least 2" in errors[0]
    pets = write_image_folder(tmp_path / "pets")
    (pets / "train" / "bird").mkdir()
    with pytest.raises(UserError, match="class folder .*bird has no image files"):
        ImageData(partial(load_image_folder, root=str(pets)), channels=3, image_size=[32, 32])


def test_resize_then_center_crop_and_straight_resize() -> None:
    wide = torch.zeros(1, 3, 40, 80, dtype=torch.uint8)
    wide[..., 30:50] = 255  # a bright band in the middle columns
    cropped = fit_size(wide, [32, 32], resize=32)
    assert cropped.shape == (1, 3, 32, 32)
    assert cropped[0, 0, 16, 16] == 255 and cropped[0, 0, 16, 0] == 0  # the centre was kept
    assert fit_size(wide, [32, 32]).shape == (1, 3, 32, 32)
    assert fit_size(wide, None) is wide


def test_hf_parquet_and_save_to_disk_decode_like_the_folder(folder: Path, hf_dir: Path, tmp_path: Path,
                                                            files: dict) -> None:
    reference = folder_data(folder)
    disk = write_tiny_imagenet_hf(tmp_path / "disk", files, save_to_disk=True)
    words = folder / "words.txt"
    for root in (hf_dir, disk):
        data = ImageData(partial(load_hf, path="zh-plus/tiny-imagenet", root=str(root), splits=TI_SPLITS,
                                 words=str(words), name="tiny_imagenet"),
                         val_fraction=0.25, split_seed=0, channels=3, image_size=[64, 64])
        assert data.meta["class_names"] == reference.meta["class_names"]
        assert data.meta["split_sizes"] == reference.meta["split_sizes"]
        assert "valid" in data.meta["split_protocol"]["test"]
        for name in ("train", "val", "test"):  # same bytes, same preprocessing -> identical arrays
            assert torch.equal(data.splits[name].inputs, reference.splits[name].inputs), name
            assert torch.equal(data.splits[name].targets, reference.splits[name].targets), name


def test_hf_without_words_keeps_ids_and_bad_columns_are_named(hf_dir: Path) -> None:
    data = ImageData(partial(load_hf, path=None, root=str(hf_dir), splits=TI_SPLITS), channels=3,
                     image_size=[64, 64])
    assert data.meta["class_names"] == WNIDS
    with pytest.raises(UserError, match="no column 'img'"):
        load_hf(path=None, root=str(hf_dir), image_column="img")
    with pytest.raises(UserError, match="no split 'extra'"):
        load_hf(path=None, root=str(hf_dir), splits={"train": "extra"})
    with pytest.raises(UserError, match="does not exist"):
        load_hf(path=None, root=str(hf_dir / "nowhere"))


BUILDS: list[float] = []


def slow_digits(delay: float):
    """The digits source, slow enough that two jobs starting together both find the cache cold."""
    from csc8607.data.digits import load_digits

    BUILDS.append(delay)
    time.sleep(delay)
    return load_digits()


def test_jobs_starting_together_build_the_cache_once(tmp_path: Path) -> None:
    """Two jobs of a sweep (threads here: each opens the lock file itself) on a cold cache: one decodes, the
    other waits for its entry and maps it."""
    results: list[ImageData] = []
    jobs = [threading.Thread(target=lambda: results.append(ImageData(
        partial(slow_digits, delay=1.0), channels=1, cache_dir=str(tmp_path / "cache")))) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert len(BUILDS) == 1 and sorted(r.meta["cache"]["hit"] for r in results) == [False, True]
    assert torch.equal(results[0].splits["val"].inputs, results[1].splits["val"].inputs)


def test_cache_hit_miss_and_invalidation(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = folder_data(folder, cache)
    assert first.meta["cache"]["hit"] is False
    entry = Path(first.meta["cache"]["path"])
    assert (entry / "key.json").is_file()
    assert [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")] == [entry]  # beside CACHEDIR.TAG
    second = folder_data(folder, cache)
    assert second.meta["cache"]["hit"] is True and second.meta["cache"]["path"] == str(entry)
    assert second.meta == {**first.meta, "cache": second.meta["cache"]}
    for name in first.splits:
        assert torch.equal(first.splits[name].inputs, second.splits[name].inputs)
    # normalization is not part of the key (the arrays do not depend on it)...
    given = folder_data(folder, cache, normalize={"mean": [0.5] * 3, "std": [0.25] * 3})
    assert given.meta["cache"]["hit"] is True and given.meta["preprocess"]["mean"] == [0.5] * 3
    # ...preprocessing and the split protocol are: a change builds a new entry, never reuses the old one
    smaller = folder_data(folder, cache, image_size=[32, 32])
    assert smaller.meta["cache"]["hit"] is False and smaller.meta["input_shape"] == [3, 32, 32]
    reseeded = folder_data(folder, cache, split_seed=1)
    assert reseeded.meta["cache"]["hit"] is False
    assert len([p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 3
    # an entry whose recorded key does not match is rebuilt
    key = json.loads((entry / "key.json").read_text())
    key["settings"]["image_size"] = [1, 1]
    (entry / "key.json").write_text(json.dumps(key))
    rebuilt = folder_data(folder, cache)
    assert rebuilt.meta["cache"]["hit"] is False and torch.equal(rebuilt.splits["val"].inputs,
                                                                 first.splits["val"].inputs)
    assert folder_data(folder, cache).meta["cache"]["hit"] is True
    # a truncated array file is detected and rebuilt as well
    (entry / "val_inputs.npy").write_bytes((entry / "val_inputs.npy").read_bytes()[:200])
    assert folder_data(folder, cache).meta["cache"]["hit"] is False


def test_cache_array_overwritten_with_zeros_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    """Same shape, same dtype, other bytes: the build-time checksums catch it, whether the file's time changed
    (full CRC) or was put back (the sampled rows' CRC), and the entry is rebuilt from the source."""
    first = folder_data(folder, tmp_path / "cache")
    entry = Path(first.meta["cache"]["path"])
    for keep_time in (False, True):
        file = entry / "train_inputs.npy"
        before = os.stat(file)
        np.save(file, np.zeros_like(np.load(file)))
        if keep_time:
            os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
        again = folder_data(folder, tmp_path / "cache")
        assert again.meta["cache"]["hit"] is False
        assert torch.equal(again.splits["train"].inputs, first.splits["train"].inputs)
        assert again.splits["train"].inputs.any()
        assert folder_data(folder, tmp_path / "cache").meta["cache"]["hit"] is True


def test_cache_info_edited_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    """info.json holds what the arrays do not (class names, normalization statistics): an edit of it is caught
    like an array's (it was served: wrong class names, a 1e-3 std)."""
    first = folder_data(folder, tmp_path / "cache")
    info = Path(first.meta["cache"]["path"]) / "info.json"
    edited = json.loads(info.read_text())
    edited["class_names"] = ["x"] * len(edited["class_names"])
    info.write_text(json.dumps(edited))
    again = folder_data(folder, tmp_path / "cache")
    assert again.meta["cache"]["hit"] is False and again.meta["class_names"] == first.meta["class_names"]
    assert folder_data(folder, tmp_path / "cache").meta["cache"]["hit"] is True


def test_cache_built_from_files_that_changed_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    """Files edited in place, added or removed under data.root after the build: the entry is not served (the
    data would silently be the old one); unchanged files are a hit."""
    root = Path(shutil.copytree(folder, tmp_path / "root"))
    cache = tmp_path / "cache"
    first = folder_data(root, cache)
    assert folder_data(root, cache).meta["cache"]["hit"] is True
    image = sorted((root / "train").rglob("*.JPEG"))[0]
    Image.new("RGB", (64, 64), (255, 255, 255)).save(image, format="JPEG")  # edited in place
    edited = folder_data(root, cache)
    assert edited.meta["cache"]["hit"] is False
    assert contents(edited.splits["train"]) | contents(edited.splits["val"]) != \
        contents(first.splits["train"]) | contents(first.splits["val"])
    assert folder_data(root, cache).meta["cache"]["hit"] is True
    image.unlink()  # removed
    removed = folder_data(root, cache)
    assert removed.meta["cache"]["hit"] is False
    assert sum(removed.meta["split_sizes"].values()) == sum(first.meta["split_sizes"].values()) - 1
    shutil.copy(sorted((root / "train").rglob("*.JPEG"))[0], image)  # added (a copy of another under its name)
    added = folder_data(root, cache)
    assert added.meta["cache"]["hit"] is False
    assert sum(added.meta["split_sizes"].values()) == sum(first.meta["split_sizes"].values())


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_and_truncated_files_are_named(folder: Path, tmp_path: Path, workers: int) -> None:
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(folder, root)
    images = root / "train" / WNIDS[1] / "images"
    good = sorted(images.iterdir())[0]
    (images / "zz_truncated.JPEG").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(UserError, match="zz_truncated.JPEG"):
        folder_data(root, decode_workers=workers)
    (images / "zz_truncated.JPEG").unlink()
    (images / "zz_garbage.JPEG").write_bytes(b"not an image at all")
    with pytest.raises(UserError, match="zz_garbage.JPEG"):
        folder_data(root, decode_workers=workers)


def test_variable_sizes_need_image_size(folder: Path) -> None:
    with pytest.raises(UserError, match="image_size"):
        folder_data(folder, image_size=None)
    assert ODD_TRAIN[2] == "wide"


def test_image_folder_protocol_and_errors(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets")
    data = ImageData(partial(load_image_folder, root=str(root)), val_fraction=0.5, channels=3, image_size=[32, 32])
    assert data.meta["class_names"] == ["cat", "dog"]
    assert data.meta["split_sizes"] == {"train": 6, "val": 6, "test": 4}
    assert "test/" in data.meta["split_protocol"]["test"] and "stratifié" in data.meta["split_protocol"]["val"]
    with pytest.raises(UserError, match="data.root is not set"):
        load_image_folder(None)
    with pytest.raises(UserError, match="train"):
        load_image_folder(str(root / "test" / "cat"))
    with pytest.raises(UserError, match="data.root is not set"):
        load_tiny_imagenet_folder(None)
    with pytest.raises(UserError, match="wnids.txt"):
        load_tiny_imagenet_folder(str(root))


def test_torchvision_sets_absent_with_download_off_are_one_line_errors(tmp_path: Path) -> None:
    for load, name in ((partial(load_cifar, classes=10), "CIFAR-10"), (partial(load_cifar, classes=100), "CIFAR-100"),
                       (load_svhn, "SVHN")):
        with pytest.raises(UserError, match=f"{name}.*not found.*download=true") as err:
            load(root=str(tmp_path), download=False)
        assert "\n" not in str(err.value)


FAST = ("trainer.max_epochs=1", "model.width=8", "model.depth=1", "trainer.batch_size=8", "trainer.eval_batch_size=16")


@pytest.mark.parametrize("option", ["tiny_imagenet_folder", "tiny_imagenet", "image_folder"])
def test_train_and_evaluate_end_to_end(option: str, folder: Path, hf_dir: Path, tmp_path: Path, in_process) -> None:
    """`python train.py data=<option>` then `python evaluate.py`, run through their entry points in this process."""
    from conftest import job_dirs, read_json

    root = {"tiny_imagenet_folder": folder, "tiny_imagenet": hf_dir,
            "image_folder": write_image_folder(tmp_path / "pets")}[option]
    extra = [f"data.source.words={folder / 'words.txt'}"] if option == "tiny_imagenet" else []
    in_process("train.py", f"data={option}", f"data.root={root}", *extra, *FAST)
    (job,) = job_dirs(tmp_path / "outputs")
    metrics = read_json(job / "metrics.json")
    meta = metrics["meta"]
    assert meta["cache"]["hit"] is False and meta["root"] == str(root)
    assert metrics["test"] is not None and sum(meta["split_sizes"].values()) > 0
    if option != "image_folder":
        assert meta["class_names"][0] == "goldfish" and meta["split_sizes"]["test"] == 9
        assert meta["augment"] == {"crop_padding": 4, "hflip": True}
    else:  # photos of several sizes, image_size=auto: resized to data.mixed_size, and the notes say so
        assert meta["input_shape"] == [3, 64, 64] and "ramenées à 64 × 64" in meta["notes"]["decoding"]["image_size"]
    in_process("evaluate.py", f"ckpt={job / 'checkpoints' / 'best.ckpt'}")
    evaluated = read_json(next((tmp_path / "outputs").rglob("test_metrics.json")))
    assert evaluated["meta"]["cache"]["hit"] is True  # the checkpoint's config finds the same decoded arrays
    assert evaluated["meta"]["split_sizes"] == meta["split_sizes"]


def test_hub_unreachable_and_not_cached_is_one_clear_error(tmp_path: Path) -> None:
    from conftest import run_cli

    proc = run_cli("train.py", "data=tiny_imagenet", *FAST, cwd=tmp_path, check=False,
                   env={"HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "zh-plus/tiny-imagenet" in lines[0] and "data.root" in lines[0]
    assert "offline" in lines[0] and "Traceback" not in proc.stderr


def test_extra_augmentations_on_uint8_batches() -> None:
    from csc8607.data.digits import load_digits
    from csc8607.data.image import apply_augment, draw_augment, jitter

    g = torch.Generator().manual_seed(0)
    images = torch.arange(8, dtype=torch.uint8).repeat(100, 1, 8, 1).transpose(2, 3).contiguous()  # rows 0..7
    vflip = {"vflip": True}
    flipped = apply_augment(images, vflip, draw_augment(100, vflip, images.shape, g))
    assert 0.3 < (flipped[:, 0, 0, 0] == 7).float().mean().item() < 0.7
    square = {"cutout": 4}
    cut = apply_augment(torch.full((50, 3, 16, 16), 200, dtype=torch.uint8), square,
                        draw_augment(50, square, (16, 16), g), torch.tensor([1, 2, 3], dtype=torch.uint8))
    filled = (cut[:, 0] == 1).sum(dim=(1, 2))
    assert filled.max().item() == 16 and filled.min().item() >= 4 and (cut[:, 1][cut[:, 0] == 1] == 2).all()
    pixels = torch.full((200, 3, 4, 4), 100.0)
    jittered = jitter(pixels, draw_augment(200, {"brightness": 0.5}, (4, 4), g))
    assert jittered.min() >= 50.0 - 1e-4 and jittered.max() <= 150.0 + 1e-4 and jittered.std() > 5
    data = ImageData(load_digits, 0.15, 0.15, channels=1, augment={"vflip": True, "cutout": 2, "contrast": 0.2})
    x, _ = next(iter(data.loader("train", 16, train=True)))
    assert x.shape == (16, 1, 8, 8) and torch.isfinite(x).all()
    with pytest.raises(UserError, match="unknown keys"):
        ImageData(load_digits, 0.15, 0.15, channels=1, augment={"rotate": 10})



def write_parquet(path: Path, images: list[Image.Image], labels: list[int], names: list[str]) -> Path:
    """One parquet file of the HF image schema (image bytes, ClassLabel), as the hub's shards are."""
    from datasets import ClassLabel, Dataset, Features, Image as HFImage

    from image_fixtures import encode

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict({"image": [{"bytes": encode(im, "PNG"), "path": f"{i}.png"} for i, im in enumerate(images)],
                       "label": labels},
                      features=Features({"image": HFImage(), "label": ClassLabel(names=names)})).to_parquet(str(path))
    return path


def test_a_single_grey_parquet_file_trains_as_it_is(tmp_path: Path) -> None:
    """`data=hf_image data.root=<one parquet file>`, a split's shard of grey 12x12 letters: val and test are carved
    (stratified, D3 says so), the dataset is named after its folder, not the shard; one channel and the source's
    size are kept; no mirror by default (a mirrored letter is another letter). An explicit split it lacks is one
    line naming the fix."""
    from hydra.utils import instantiate

    from test_configs import compose_with

    rng = np.random.default_rng(0)
    grey = [Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L") for _ in range(30)]
    shard = write_parquet(tmp_path / "letters" / "data" / "test-00000-of-00001.parquet", grey,
                          [i % 3 for i in range(30)], ["a", "b", "c"])
    cfg = compose_with("data=hf_image", f"data.root={shard}", "data.cache_dir=null", "data.decode_workers=0")
    data = instantiate(cfg.data)
    meta = data.meta
    assert meta["name"] == "letters" and meta["class_names"] == ["a", "b", "c"]
    assert meta["split_sizes"] == {"train": 24, "val": 3, "test": 3} and meta["input_shape"] == [1, 12, 12]
    for split in ("val", "test"):
        assert meta["split_protocol"][split] == ("créé par tirage : 10 % du split « train » de la source, stratifié "
                                                 "par classe, graine 42")
    assert "moins les exemples tirés pour test et val" in meta["split_protocol"]["train"]
    assert "hflip" not in meta["augment"] and meta["preprocess"]["channels"] == "auto"
    with pytest.raises(UserError, match=r"has no split 'valid' \(it has: train\): set data.source.splits.val=<one "
                                        r"of them>, or data.source.splits.val=null to carve it from train"):
        load_hf(path=None, root=str(shard), splits={"train": "train", "val": "valid"})


def test_image_size_and_channels_default_to_the_sources(tmp_path: Path) -> None:
    """A 32x32 colour source stays 32x32 (CIFAR is not upscaled); a grey test split beside a colour train split is
    repeated on three channels; images of several sizes are resized to data.mixed_size, and the notes say so."""
    rng = np.random.default_rng(1)
    colour = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB") for _ in range(12)]
    grey = [Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L") for _ in range(4)]
    root = tmp_path / "cifar_like"
    write_parquet(root / "data" / "train-00000-of-00001.parquet", colour, [i % 2 for i in range(12)], ["x", "y"])
    write_parquet(root / "data" / "test-00000-of-00001.parquet", grey, [0, 1, 0, 1], ["x", "y"])
    data = ImageData(partial(load_hf, path=None, root=str(root), splits={"train": "auto", "val": "auto",
                                                                        "test": "auto"}), decode_workers=0)
    assert data.meta["input_shape"] == [3, 32, 32] and data.meta["name"] == "cifar_like"
    assert data.meta["split_sizes"]["test"] == 4 and "« test »" in data.meta["split_protocol"]["test"]
    test = data.splits["test"].inputs
    assert torch.equal(test[:, 0], test[:, 1]) and torch.equal(test[:, 0], test[:, 2])
    mixed = write_image_folder(tmp_path / "pets")  # 48x48 images and one 40x56
    data = ImageData(partial(load_image_folder, root=str(mixed)), decode_workers=0, mixed_size=[24, 24])
    assert data.meta["input_shape"] == [3, 24, 24]
    assert "toutes les images ramenées à 24 × 24" in data.meta["notes"]["decoding"]["image_size"]


def test_a_split_of_another_size_under_auto_is_resized_and_said(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """image_size=auto keeps the first split's size; a test split of another size is resized to it (a batch has one
    size): a warning in the log, at each load (a cached one too), and a note in meta (report D5/D6)."""
    import logging

    rng = np.random.default_rng(3)
    big = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB") for _ in range(12)]
    small = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB") for _ in range(4)]
    root = tmp_path / "two_sizes"
    write_parquet(root / "data" / "train-00000-of-00001.parquet", big, [i % 2 for i in range(12)], ["x", "y"])
    write_parquet(root / "data" / "test-00000-of-00001.parquet", small, [0, 1, 0, 1], ["x", "y"])
    source = partial(load_hf, path=None, root=str(root), splits={"train": "auto", "val": "auto", "test": "auto"})
    for load in ("decoded", "cached"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="csc8607.data.image"):
            data = ImageData(source, decode_workers=0, cache_dir=str(tmp_path / "cache"))
        assert data.meta["cache"]["hit"] is (load == "cached")
        assert data.splits["test"].inputs.shape[1:] == (3, 32, 32) and data.meta["input_shape"] == [3, 32, 32]
        note = data.meta["notes"]["decoding"]["two_sizes test"]["image_size"]
        assert note == "16 × 16 → 32 × 32 (taille de two_sizes train, data.image_size=auto)", note
        assert any("two_sizes test" in r.getMessage() and "32 × 32" in r.getMessage() for r in caplog.records), load
    assert "image_size" not in data.meta["notes"]["decoding"]  # nothing said of the train split, kept as it is
    from csc8607.report import Context
    from csc8607.report.data import preprocess

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data.json").write_text(json.dumps({"preprocess": data.meta["preprocess"], "dataset": {
        k: data.meta[k] for k in ("modality", "input_shape", "input", "notes")}}))
    d6 = preprocess(Context({"data": tmp_path / "run"}, tmp_path, tmp_path / "report"))
    assert "resize = aucun (taille de la source, 32 × 32) ; redimensionnés : two_sizes test : 16 × 16 → 32 × 32" in d6


def test_a_cache_or_hidden_folder_in_the_image_folder_is_not_a_class(tmp_path: Path) -> None:
    """paths.cache placed under data.root/train: the class scan skips it (it refused every run, the cache being
    made before the scan); hidden folders (.ipynb_checkpoints) are neither classes nor sources of images."""
    root = write_image_folder(tmp_path / "pets")
    for hidden in (root / "test" / ".ipynb_checkpoints", root / "train" / "cat" / ".thumbs"):
        hidden.mkdir()
        shutil.copy(root / "train" / "cat" / "1.png", hidden / "1.png")
    cache = root / "train" / "cache"
    for size, cached in (([16, 16], False), ([12, 12], False), ([12, 12], True)):  # a new size scans the source again
        data = ImageData(partial(load_image_folder, root=str(root)), decode_workers=0, image_size=size,
                         cache_dir=str(cache))
        assert data.class_names == ["cat", "dog"] and data.meta["cache"]["hit"] is cached, size
        assert data.meta["split_sizes"]["train"] + data.meta["split_sizes"]["val"] == 12
        assert data.meta["split_sizes"]["test"] == 4
    assert (cache / "CACHEDIR.TAG").is_file()
    # another cache dir (a classmate's paths.cache) built, then ours again: the other cache is not data, so the
    # source's stamp is unchanged and ours is still a hit (it was rebuilt as "built from files that changed")
    other = partial(ImageData, partial(load_image_folder, root=str(root)), decode_workers=0, image_size=[12, 12])
    assert other(cache_dir=str(root / "train" / "other")).meta["cache"]["hit"] is False
    assert other(cache_dir=str(cache)).meta["cache"]["hit"] is True


def test_mirrors_are_on_only_where_they_keep_the_class() -> None:
    from test_configs import compose_with

    for option, hflip in (("digits", False), ("svhn", False), ("hf_image", False), ("image_folder", False),
                          ("cifar10", True), ("tiny_imagenet", True)):
        assert compose_with(f"data={option}").data.augment.hflip is hflip, option


def test_decoding_into_a_log_file_writes_lines_not_a_redrawn_bar(capfd: pytest.CaptureFixture,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """stderr is not a terminal here (as in `> log` or a SLURM .out): progress is log lines, no `\\r` bar."""
    import logging

    from image_fixtures import encode, noise_image
    from csc8607.data.decode import decode_all, open_hf
    from csc8607.data.split import Encoded

    rng = np.random.default_rng(2)
    items = [{"bytes": encode(noise_image(rng, 0, (8, 8)), "PNG"), "path": f"{i}.png"} for i in range(600)]
    with caplog.at_level(logging.INFO, logger="csc8607.data.decode"):
        images = decode_all(Encoded(items, np.zeros(600, np.int64), open_hf), None, None, workers=0, desc="decode x",
                            log_every_s=0.0)
    assert images.shape == (600, 3, 8, 8)
    assert "\r" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records][-3:] == ["decode x: 256/600 images", "decode x: 512/600 images",
                                                             "decode x: 600/600 images"]
