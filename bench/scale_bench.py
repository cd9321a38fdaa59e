#!/usr/bin/env python
"""Scale: a 1M-image memory-mapped dataset against a 100k one (synthetic 64x64x3 uint8, the decoded cache's
layout: `<split>_inputs.npy` opened with `np.load(mmap_mode="c")`, as csc8607.data.cache does).

    python bench/scale_bench.py [--images 1000000] [--small 100000] [--batches 400] [--rounds 3] [--dir DIR]

For each size, in a fresh process (rounds alternate the sizes), our BatchLoader (shuffle over the whole split,
random crop pad 4 + flip + normalize, batch 128) delivers `--batches` batches; printed: images/s, the process's
anonymous resident memory (what a full copy would grow) and file-backed resident pages before and after, and
the model step (default cnn, fp32 and bf16 autocast) on one batch, so that the data time of an epoch can be
set against its step time. The arrays take 12.3 GB at 1M images: `--dir` must have room (default: a temporary
dir). Not a test: the numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHAPE, BATCH, CLASSES = (3, 64, 64), 128, 200


def write_arrays(folder: Path, n: int, chunk: int = 50_000) -> None:
    """train_inputs.npy (n, 3, 64, 64) uint8 and train_targets.npy, written chunk by chunk (bounded memory)."""
    import numpy as np

    rng = np.random.default_rng(0)
    inputs = np.lib.format.open_memmap(folder / "train_inputs.npy", mode="w+", dtype=np.uint8, shape=(n, *SHAPE))
    for start in range(0, n, chunk):
        inputs[start:start + chunk] = rng.integers(0, 256, (min(chunk, n - start), *SHAPE), dtype=np.uint8)
    inputs.flush()
    del inputs
    np.save(folder / "train_targets.npy", rng.integers(0, CLASSES, n, dtype=np.int64))


def memory() -> dict[str, float]:
    """This process's resident memory in MiB: anonymous (heap, copies) and file-backed (mapped pages)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("RssAnon", "RssFile")}


def measure(folder: str, n: int, batches: int) -> dict[str, float]:
    """In this (fresh) process: loader rate over the first `n` images of the arrays, and memory around it."""
    import numpy as np
    import torch

    from csc8607.data import BatchLoader, Split
    from csc8607.data.image import ImageBatches
    from csc8607.runtime import tune_malloc

    tune_malloc()
    before = memory()
    inputs = torch.from_numpy(np.load(Path(folder) / "train_inputs.npy", mmap_mode="c"))[:n]
    targets = torch.from_numpy(np.load(Path(folder) / "train_targets.npy", mmap_mode="c"))[:n]
    transform = ImageBatches([0.5] * 3, [0.25] * 3, {"crop_padding": 4, "hflip": True}, False, torch.device("cpu"))
    loader = BatchLoader(Split(inputs, targets), BATCH, transform, shuffle=True, seed=0)
    start, seen = time.perf_counter(), 0
    for i, (x, y) in enumerate(loader):
        seen += len(y)
        if i + 1 >= batches:
            break
    elapsed = time.perf_counter() - start
    after = memory()
    return {"images_per_s": seen / elapsed, "anon_before_mib": before["RssAnon"], "anon_after_mib": after["RssAnon"],
            "file_after_mib": after["RssFile"], "data_s_per_batch": elapsed / (i + 1)}


def step_seconds(precision: str) -> float:
    """Seconds of one optimizer step of the default cnn on a batch of 128 64x64 images (median of 5)."""
    import torch
    from omegaconf import OmegaConf

    from csc8607.config import build
    from csc8607.models.build import constructor_node
    from csc8607.engine import Engine
    from csc8607.runtime import tune_malloc

    tune_malloc()
    torch.manual_seed(0)
    channels_last = precision == "bf16"
    node = constructor_node(OmegaConf.load(REPO / "conf" / "model" / "cnn.yaml"))  # less its sweep axes
    layout = torch.channels_last if channels_last else torch.preserve_format
    model = build(node, "model", input_shape=list(SHAPE), num_outputs=CLASSES).to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    engine = Engine("multiclass", CLASSES, torch.device("cpu"), precision)
    x = torch.randn(BATCH, *SHAPE).to(memory_format=layout)
    y = torch.randint(0, CLASSES, (BATCH,))
    engine.train_step(model, x, y, optimizer)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        engine.train_step(model, x, y, optimizer)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        kind, *rest = opts.child
        result = measure(rest[0], int(rest[1]), int(rest[2])) if kind == "load" else {"step_s": step_seconds(rest[0])}
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(dir=opts.dir) as tmp:
        start = time.perf_counter()
        write_arrays(Path(tmp), opts.images)
        print(f"wrote {opts.images:,} images ({opts.images * 3 * 64 * 64 / 1e9:.1f} GB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        runs: dict[int, list[dict]] = {opts.small: [], opts.images: []}
        for r in range(opts.rounds):
            for n in ((opts.small, opts.images) if r % 2 == 0 else (opts.images, opts.small)):
                runs[n].append(child("load", tmp, str(n), str(opts.batches)))
        steps = {p: child("step", p)["step_s"] for p in ("32", "bf16")}
    print(f"\n| dataset | loader images/s | anon RSS before → after (MiB) | mapped pages after (MiB) |")
    print("|---|---:|---:|---:|")
    for n, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(f"| {n:,} images | {med['images_per_s']:,.0f} | {med['anon_before_mib']:.0f} → "
              f"{med['anon_after_mib']:.0f} | {med['file_after_mib']:.0f} |")
    big, small = (statistics.median(r["images_per_s"] for r in runs[n]) for n in (opts.images, opts.small))
    data_batch = statistics.median(r["data_s_per_batch"] for r in runs[opts.images])
    print(f"\nloader rate, {opts.images:,} / {opts.small:,} images: {big / small:.2f}x")
    for precision, step in steps.items():
        print(f"model step ({'fp32' if precision == '32' else 'bf16 + channels_last'}): {step * 1000:.1f} ms/batch; "
              f"data time = {data_batch / step:.1%} of the step time (an epoch of {opts.images:,} images: "
              f"{data_batch * opts.images / BATCH / 60:.1f} min of data, {step * opts.images / BATCH / 60:.0f} min "
              "of steps)")


if __name__ == "__main__":
    main()
