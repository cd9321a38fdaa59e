#!/usr/bin/env python
"""Does bf16 autocast keep accuracy? The evidence behind `trainer.precision=auto` choosing bf16 on CPUs with
native bf16 (csc8607.runtime.pick_precision).

    python bench/precision_bench.py [--seeds 3] [--epochs-64 6] [--images-per-class 300]

Trains the same model with `trainer.precision=32` and `=bf16`, seeds 0..N-1, through `python train.py`, on
(1) the embedded digits (the default run, 15 epochs) and (2) a generated 64x64, 10-class image folder that is
not trivially separable (oriented gratings with random phase, frequency, tint and noise; the course's
Tiny-ImageNet input size). Prints per precision the final and best val accuracy (mean and seed-to-seed
standard deviation) and the median training time, and whether the bf16 mean lies within the fp32 seed noise.
Runs alternate fp32 and bf16 so that machine load hits both alike. Not a test: it takes minutes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gratings(root: Path, per_class: int, seed: int = 0) -> Path:
    """An ImageFolder (train/<class>/*.png) of 64x64 oriented gratings: class k is the angle k*18 degrees."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    for label in range(10):
        folder = root / "train" / f"angle{label * 18:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            angle = math.radians(label * 18 + rng.normal(0, 4))
            freq = rng.uniform(0.15, 0.35)
            wave = np.sin(freq * (x * math.cos(angle) + y * math.sin(angle)) + rng.uniform(0, 2 * math.pi))
            tint = rng.uniform(0.3, 1.0, 3)
            pixels = 128 + 60 * wave[..., None] * tint + rng.normal(0, 45, (64, 64, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def train(args: list[str], cwd: Path) -> dict:
    """One `python train.py` run; its metrics.json."""
    run_dir = cwd / f"run{len(list(cwd.glob('run*')))}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CSC8607_CACHE": str(cwd / "cache")}
    subprocess.run([sys.executable, str(REPO / "train.py"), *args, "trainer.test_after_fit=false",
                    f"hydra.run.dir={run_dir}"], cwd=cwd, env=env, check=True, capture_output=True)
    return json.loads((run_dir / "metrics.json").read_text())


def summary(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def compare(name: str, args: list[str], seeds: int, cwd: Path) -> None:
    results: dict[str, list[dict]] = {"32": [], "bf16": []}
    for seed in range(seeds):
        order = ("32", "bf16") if seed % 2 == 0 else ("bf16", "32")  # alternate: load hits both alike
        for precision in order:
            m = train([*args, f"seed={seed}", f"trainer.precision={precision}"], cwd)
            results[precision].append(m)
            print(f"  {name} seed {seed} {precision:>4}: final val acc {m['final']['val/accuracy']:.4f}, best "
                  f"{m['best_value']:.4f}, train {m['train_time_s']:.1f} s", flush=True)
    print(f"\n{name}: {seeds} seeds, `{' '.join(args) or 'python train.py'}`")
    print("| precision | final val accuracy | best val accuracy | train time (median) |")
    print("|---|---:|---:|---:|")
    for precision, runs in results.items():
        final = [m["final"]["val/accuracy"] for m in runs]
        best = [m["best_value"] for m in runs]
        print(f"| {precision} | {summary(final)} | {summary(best)} | "
              f"{statistics.median(m['train_time_s'] for m in runs):.1f} s |")
    fp32 = [m["final"]["val/accuracy"] for m in results["32"]]
    bf16 = [m["final"]["val/accuracy"] for m in results["bf16"]]
    noise = max(statistics.stdev(fp32) if len(fp32) > 1 else 0.0, 0.005)
    diff = statistics.mean(bf16) - statistics.mean(fp32)
    speed = statistics.median(m["train_time_s"] for m in results["32"]) / \
        statistics.median(m["train_time_s"] for m in results["bf16"])
    verdict = "within" if abs(diff) <= 2 * noise else "OUTSIDE"
    print(f"bf16 - fp32 final val accuracy: {diff:+.4f} ({verdict} 2 x the fp32 seed noise {noise:.4f}); "
          f"bf16 training {speed:.2f}x fp32 speed\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs-64", type=int, default=6, help="epochs on the 64x64 gratings")
    parser.add_argument("--images-per-class", type=int, default=300)
    parser.add_argument("--only", choices=["digits", "gratings"], default=None)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        if opts.only in (None, "digits"):
            compare("digits (embedded default)", [], opts.seeds, cwd)
        if opts.only in (None, "gratings"):
            root = gratings(cwd / "gratings", opts.images_per_class)
            compare(f"gratings 64x64, 10 classes, {opts.images_per_class} images each",
                    ["data=image_folder", f"data.root={root}", "data.augment.hflip=false",  # a mirror changes the angle
                     f"trainer.max_epochs={opts.epochs_64}"], opts.seeds, cwd)


if __name__ == "__main__":
    main()
