"""Whole-run figures of bench/data_bench.py, each against a plain reference: the cache build against decoding
the same JPEGs alone, a fresh `python train.py` to its first batch against a plain PyTorch script, and the
default digits run against a plain loop training the same ConvNet. Not a test: the numbers depend on the machine.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLASSES, SIZE = 200, 64  # Tiny-ImageNet's


def subprocess_env() -> dict[str, str]:
    """This environment with the repo first on PYTHONPATH (kept: what was there, e.g. carried packages)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

def write_folder(root: Path, per_class: int, val_per_class: int) -> int:
    """A Stanford-layout Tiny-ImageNet of random JPEGs (200 classes); returns the number of images."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    wnids = [f"n{i:08d}" for i in range(CLASSES)]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines, count = [], 0
    for c, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(per_class + val_per_class):
            pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            if i < per_class:
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
            else:
                name = f"val_{c}_{i}.JPEG"
                Image.fromarray(pixels).save(root / "val" / "images" / name, quality=90)
                lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
            count += 1
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return count


REFERENCE_FIRST_BATCH = """
import time
started = time.time()
import sys
import torch, torchvision
from torchvision import transforms
t = transforms.Compose([transforms.RandomCrop(64, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                        transforms.Normalize([0.48, 0.448, 0.398], [0.277, 0.269, 0.282])])
batches = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(sys.argv[1], transform=t), batch_size=128,
                                      shuffle=True)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                            torch.nn.Flatten(), torch.nn.Linear(32, 200))
optimizer = torch.optim.AdamW(model.parameters())
x, y = next(iter(batches))
print(time.time() - started)
torch.nn.functional.cross_entropy(model(x), y).backward()
optimizer.step()
"""


def decode_alone(cfg) -> float:
    """Seconds to decode every split of the folder source (the same decoder and worker pool), nothing else."""
    from hydra.utils import instantiate

    from csc8607.data.decode import decode_all

    start = time.perf_counter()
    raw = instantiate(cfg.data.source)()
    for name, part in raw.splits.items():
        decode_all(part, None, list(cfg.data.image_size), None, None, desc=name)
    return time.perf_counter() - start


def cache_figures(per_class: int, repeats: int = 3) -> dict[str, float]:
    """Cache build rate through ImageData (decode + carve + statistics + write) against decoding alone,
    alternated; then, alternated `repeats` times, the time from the start of a fresh
    `python train.py data=tiny_imagenet_folder ...` (warm cache; its first import) to its first train batch,
    and the same for a plain PyTorch script (torchvision ImageFolder + DataLoader, a one-layer model, AdamW)."""
    from hydra import compose, initialize_config_dir

    from csc8607.config import build

    env = subprocess_env()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "tiny-imagenet-200", Path(tmp) / "cache"
        count = write_folder(root, per_class, max(1, per_class // 10))
        overrides = ["data=tiny_imagenet_folder", f"data.root={root}", f"paths.cache={cache}0", "trainer.device=cpu"]
        builds, decodes = [], []  # builds into cache0 and cache1: the runs below start warm from cache0
        for i in range(2):
            with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
                cfg = compose(config_name="config", overrides=[*overrides[:2], f"paths.cache={cache}{i}"])
            decodes.append(count / decode_alone(cfg))
            start = time.perf_counter()
            assert build(cfg.data, "data").meta["cache"]["hit"] is False
            builds.append(count / (time.perf_counter() - start))
        ours, reference = [], []
        for i in range(repeats):
            run_dir = Path(tmp) / f"run{i}"
            subprocess.run([sys.executable, str(REPO / "train.py"), *overrides, "trainer.max_epochs=1",
                            "model.width=8", f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                           cwd=tmp, check=True, env=env)
            metrics = json.loads((run_dir / "metrics.json").read_text())
            assert metrics["meta"]["cache"]["hit"] is True
            ours.append(metrics["first_batch_after_s"])
            proc = subprocess.run([sys.executable, "-c", REFERENCE_FIRST_BATCH, str(root / "train")],
                                  capture_output=True, text=True, check=True, env=env)
            reference.append(float(proc.stdout.split()[0]))
    # builds[0] is the process's first: it pays carve's scikit-learn import (~1 s, once per process); builds[1]
    # finds it imported, so the pair shows the fixed cost apart from the per-image rate
    return {"cache_build_img_s": builds[0], "cache_build_warm_img_s": builds[1],
            "decode_alone_img_s": statistics.median(decodes),
            "cache_images": count, "first_batch_s": statistics.median(ours),
            "first_batch_reference_s": statistics.median(reference)}


PLAIN_DIGITS = """
import sys, time
started = time.time()
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from csc8607.models import ConvNet
torch.manual_seed(0)
bunch = load_digits()
x = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.float32)[:, None] / 255.0)
y = torch.from_numpy(bunch.target.astype(np.int64))
rest, test = train_test_split(np.arange(len(y)), test_size=0.15, random_state=0, stratify=y)
train, val = train_test_split(rest, test_size=0.15 / 0.85, random_state=0, stratify=y[rest])
mean, std = x[train].mean(), x[train].std()
x = (x - mean) / std
batches = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[train], y[train]), batch_size=64, shuffle=True)
model = ConvNet(input_shape=[1, 8, 8], num_outputs=10)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
for epoch in range(int(sys.argv[2])):
    model.train()
    for xb, yb in batches:
        xb = torch.nn.functional.pad(xb, (1, 1, 1, 1))  # random crop, padding 1
        i, j = np.random.randint(0, 3, 2)
        loss = torch.nn.functional.cross_entropy(model(xb[:, :, i:i + 8, j:j + 8]), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[val]).argmax(1) == y[val]).float().mean().item()
with torch.no_grad():
    test_accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
print(time.time() - started, accuracy, test_accuracy)
"""


def digits_figures(epochs: int, repeats: int) -> dict[str, float]:
    """Wall time of `python train.py trainer.max_epochs=<epochs>` (the default digits run: its cache warm,
    checkpoints, TensorBoard, the test evaluation) against a plain PyTorch loop training the same ConvNet on the
    same data at fp32 for as many epochs, alternated `repeats` times; medians, and each one's val accuracy."""
    env = subprocess_env()
    ours, plain, ours_acc, plain_acc = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        env["CSC8607_CACHE"] = str(Path(tmp) / "cache")
        subprocess.run([sys.executable, str(REPO / "train.py"), "trainer.max_epochs=1", f"hydra.run.dir={tmp}/warm"],
                       cwd=tmp, env=env, check=True, capture_output=True)  # the cache, as a student's second run
        for i in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, str(REPO / "train.py"), f"trainer.max_epochs={epochs}",
                            f"hydra.run.dir={tmp}/run{i}"], cwd=tmp, env=env, check=True, capture_output=True)
            ours.append(time.perf_counter() - start)
            ours_acc.append(json.loads((Path(tmp) / f"run{i}" / "metrics.json").read_text())["final"]["val/accuracy"])
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", PLAIN_DIGITS, str(REPO), str(epochs)], cwd=tmp, env=env,
                                  check=True, capture_output=True, text=True)
            plain.append(time.perf_counter() - start)
            plain_acc.append(float(proc.stdout.split()[1]))
    return {"digits_s": statistics.median(ours), "digits_plain_s": statistics.median(plain),
            "digits_acc": statistics.median(ours_acc), "digits_plain_acc": statistics.median(plain_acc)}
