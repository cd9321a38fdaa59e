#!/usr/bin/env python
"""CUDA path check and throughput on Tiny-ImageNet-shaped data (64x64x3, 200 classes, default cnn).

    python bench/gpu_bench.py [--batch 128 512] [--steps 30]

Prints, on the CUDA device: (c) the model step alone on a pre-made batch at fp32, fp16 AMP, bf16 autocast,
each with and without channels_last; (a) our loader alone, data resident on the GPU; (b) a plain torchvision
pipeline (PIL, RandomCrop + flip + ToTensor + Normalize, DataLoader with 0 and N workers, pinned memory);
(d) training with our loader at the framework's CUDA defaults (bf16 + channels_last); (e) training with (b)
at the same settings; and the ratios (d)/(c) and (d)/(best e). Then it runs `python train.py` for 3 epochs on
the embedded dataset at precision auto, 16 and 32 and checks device, precision and accuracy in metrics.json.
Not a test: the numbers depend on the machine. Each figure is the median of 3 timed windows.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from data_bench import MEAN, STD, model_and_engine, reference_loader, repeat, subprocess_env, synthetic  # noqa: E402

from csc8607.data import BatchLoader, Split  # noqa: E402


DEVICE = torch.device("cuda")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, windows: int = 3) -> float:
    """Median over `windows` of images/s returned by fn() (fn synchronizes the device itself)."""
    return statistics.median(fn() for _ in range(windows))


def train_rate(batches, steps: int, precision: str, channels_last: bool, device: torch.device) -> float:
    """Images/s of `steps` optimizer steps fed by `batches`, after 5 warm-up steps (cudnn autotune)."""
    model, optimizer, engine = model_and_engine(precision, channels_last, str(device))
    iterator = iter(batches)

    def step() -> int:
        x, y = next(iterator)
        engine.train_step(model, x.to(device, non_blocking=True), y.to(device, non_blocking=True), optimizer)
        return len(y)

    for _ in range(5):
        step()

    def window() -> float:
        sync()
        start = time.perf_counter()
        seen = sum(step() for _ in range(steps))
        sync()
        return seen / (time.perf_counter() - start)

    return timed(window)


def loader_rate(loader, batches: int) -> float:
    def window() -> float:
        sync()
        start, seen = time.perf_counter(), 0
        for i, (x, y) in enumerate(loader):
            x = x.to(DEVICE, non_blocking=True)
            seen += len(y)
            if i + 1 >= batches:
                break
        sync()
        return seen / (time.perf_counter() - start)

    return timed(window)


def endless(loader):
    epoch = 0
    while True:
        epoch += 1
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from loader


def throughput(batch: int, steps: int, workers: int, count: int) -> dict[str, float]:
    device = DEVICE
    images, labels = synthetic(count)
    ours = BatchLoader(Split(images, labels), batch, MEAN, STD, device=device, shuffle=True,
                       augment={"crop_padding": 4, "hflip": True}, channels_last=True)
    out = {"a_ours_gpu": loader_rate(endless(ours), 100)}
    small = min(40 * batch, count)  # PIL copies are slow to make
    ref0 = reference_loader(images[:small], labels[:small], 0)
    refn = reference_loader(images[:small], labels[:small], workers)
    refn.pin_memory = True
    out["b_ref_w0"] = loader_rate(endless(ref0), 30)
    out[f"b_ref_w{workers}"] = loader_rate(endless(refn), 30)
    x, y = next(iter(ours))
    for precision in ("32", "16", "bf16"):
        for cl in (False, True):
            xb = x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
            out[f"c_step_{precision}{'_cl' if cl else ''}"] = train_rate(repeat((xb, y)), steps, precision, cl, device)
    out["d_train_ours_bf16_cl"] = train_rate(endless(ours), steps, "bf16", True, device)
    out["e_train_ref_w0_bf16_cl"] = train_rate(endless(ref0), steps, "bf16", True, device)
    out[f"e_train_ref_w{workers}_bf16_cl"] = train_rate(endless(refn), steps, "bf16", True, device)
    return out


def train_cli() -> list[dict]:
    """`python train.py` on the embedded dataset, 3 epochs, at precision auto / 16 / 32, on CUDA."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("auto", "16", "32"):
            run_dir = Path(tmp) / precision
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(REPO / "train.py"), "trainer.max_epochs=3",
                                   f"trainer.precision={precision}", f"hydra.run.dir={run_dir}",
                                   f"paths.cache={tmp}/cache", f"trainer.device={DEVICE}"], capture_output=True, text=True, cwd=REPO,
                                  env=subprocess_env())
            if proc.returncode != 0:
                rows.append({"precision": precision, "error": proc.stderr.strip().splitlines()[-3:]})
                continue
            m = json.loads((run_dir / "metrics.json").read_text())
            ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
            rows.append({"precision": precision, "device": m["device"], "resolved": m["precision"],
                         "best_val_accuracy": round(m["best_value"], 4), "test_accuracy": round(m["test"]["accuracy"], 4),
                         "first_batch_after_s": m["first_batch_after_s"], "wall_s": round(time.perf_counter() - start, 1),
                         "ckpt_on_cpu": all(t.device.type == "cpu" for t in ckpt["model"].values())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--images", type=int, default=50_000, help="synthetic images resident on the device")
    parser.add_argument("--device", default="cuda", help="cpu only to dry-run this script")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: bench/gpu_bench.py needs a CUDA device (--device cpu only dry-runs it)")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu (dry run)"
    print(f"{name}, torch {torch.__version__}, {os.cpu_count()} CPU cores", flush=True)
    for row in train_cli():
        print("train.py", json.dumps(row), flush=True)
    for batch in args.batch:
        r = throughput(batch, args.steps, args.workers, args.images)
        print(f"batch {batch} (images/s, median of 3 windows)")
        for key, value in r.items():
            print(f"  {key:<24} {value:>10.0f}")
        best_e = max(v for k, v in r.items() if k.startswith("e_"))
        best_b = max(v for k, v in r.items() if k.startswith("b_"))
        best_c = max(v for k, v in r.items() if k.startswith("c_"))
        print(f"  (a)/(best b) {r['a_ours_gpu'] / best_b:.1f}x   (d)/(c bf16_cl) "
              f"{r['d_train_ours_bf16_cl'] / r['c_step_bf16_cl']:.2f}   (d)/(best e) {r['d_train_ours_bf16_cl'] / best_e:.2f}x"
              f"   best step {max(r, key=lambda k: r[k] if k.startswith('c_') else 0)} = {best_c:.0f}", flush=True)


if __name__ == "__main__":
    main()
