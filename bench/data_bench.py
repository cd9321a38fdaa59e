#!/usr/bin/env python
"""Data-path benchmark on Tiny-ImageNet-shaped data (64x64x3, 200 classes, default cnn, batch 128).

    python bench/data_bench.py [--rounds 3] [--steps 3] [--quick]

Prints, side by side: (a) our BatchLoader alone; (b) a plain torchvision pipeline (PIL images, RandomCrop +
flip + ToTensor + Normalize, DataLoader with 0 and 2 workers) alone; (c) the model step alone on a pre-made
batch; (d) training with our loader; (e) training with (b) at fp32; and (d) at the best CPU settings
(channels_last + bf16 autocast where it is faster + tune_malloc), alternated with (c) at the same settings.
Every figure is the median over rounds; the rounds alternate the reference and ours, each round in fresh
processes (allocator tuning cannot be undone in a process). Then, alternated: the cache build (decode, carve,
statistics, write) against decoding alone; a fresh `python train.py` to its first batch (warm cache) against a
plain PyTorch script; the default digits run for `--digits-epochs` against a plain loop training the same
ConvNet. Last, the issue's table: each figure beside its reference, the ratio and the goal.
`--quick` runs everything at a tiny size (< 2 min on 2 idle cores) to show that it works.
Not a test: the numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# bench/ is on sys.path (this script's folder); subprocess_env is also used by gpu_bench.py
from run_bench import CLASSES, SIZE, cache_figures, digits_figures, subprocess_env  # noqa: E402,F401

BATCH = 128
MEAN, STD = [0.480, 0.448, 0.398], [0.277, 0.269, 0.282]


def synthetic(n: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g), \
        torch.randint(0, CLASSES, (n,), generator=g)


def our_loader(images, labels, channels_last: bool = False):
    import torch

    from csc8607.data import BatchLoader, Split
    from csc8607.data.image import ImageBatches

    transform = ImageBatches(MEAN, STD, {"crop_padding": 4, "hflip": True}, channels_last, torch.device("cpu"))
    return BatchLoader(Split(images, labels), BATCH, transform, shuffle=True, seed=0)


def reference_loader(images, labels, workers: int):
    """The plain torchvision pipeline: PIL images, per-image transforms, DataLoader."""
    import torch
    from PIL import Image
    from torchvision import transforms

    pils = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    transform = transforms.Compose([transforms.RandomCrop(SIZE, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    class PILDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pils)

        def __getitem__(self, i: int):
            return transform(pils[i]), int(labels[i])

    return torch.utils.data.DataLoader(PILDataset(), batch_size=BATCH, shuffle=True, num_workers=workers,
                                       persistent_workers=workers > 0)


def rate(batches, limit: int | None = None) -> float:
    """Images per second delivered by iterating `batches` (up to `limit` batches)."""
    start, seen = time.perf_counter(), 0
    for i, (x, y) in enumerate(batches):
        seen += len(y)
        if limit is not None and i + 1 >= limit:
            break
    return seen / (time.perf_counter() - start)


def model_and_engine(precision: str, channels_last: bool, device: str = "cpu"):
    import torch
    from omegaconf import OmegaConf

    from csc8607.config import build
    from csc8607.models.build import constructor_node
    from csc8607.engine import Engine

    torch.manual_seed(0)
    node = constructor_node(OmegaConf.load(REPO / "conf" / "model" / "cnn.yaml"))  # less its sweep axes
    model = build(node, "model", input_shape=[3, SIZE, SIZE], num_outputs=CLASSES)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0e-3)
    return model, optimizer, Engine("multiclass", CLASSES, torch.device(device), precision)


def train_rate(batches, steps: int, precision: str = "32", channels_last: bool = False,
               budget_s: float = 10.0) -> float:
    """Images per second of `steps` optimizer steps fed by `batches` (after one warm-up step); stops early,
    after at least one timed step, once `budget_s` is spent (bf16 without CPU support is very slow)."""
    return timed_steps(model_and_engine(precision, channels_last), batches, steps, budget_s)


def timed_steps(setup: tuple, batches, steps: int, budget_s: float = float("inf")) -> float:
    """Examples per second of `steps` optimizer steps of setup = (model, optimizer, engine) fed by `batches`."""
    model, optimizer, engine = setup
    model.train()
    iterator = iter(batches)
    x, y = next(iterator)
    engine.train_step(model, x, y, optimizer)
    start, seen = time.perf_counter(), 0
    for _ in range(steps):
        x, y = next(iterator)
        engine.train_step(model, x, y, optimizer)
        seen += len(y)
        if time.perf_counter() - start > budget_s:
            break
    return seen / (time.perf_counter() - start)


def repeat(batch):
    while True:
        yield batch


def round_plain(steps: int) -> dict[str, float]:
    """One round with glibc's default allocator: reference and ours alternated."""
    images, labels = synthetic(20_000)
    small_images, small_labels = images[:2_560], labels[:2_560]  # PIL copies are slow to make: 20 batches
    out = {}
    ref0, ref2 = reference_loader(small_images, small_labels, 0), reference_loader(small_images, small_labels, 2)
    rate(ref2, 4)  # start the persistent workers outside the timing
    out["b_ref_w0"] = rate(ref0)
    out["a_ours"] = rate(our_loader(images, labels))
    out["b_ref_w2"] = rate(ref2)
    batch = next(iter(our_loader(images, labels)))
    out["c_step_fp32"] = train_rate(repeat(batch), steps)
    out["e_train_ref_w0_fp32"] = train_rate(ref0, steps)
    out["d_train_ours_fp32"] = train_rate(our_loader(images, labels), steps)
    out["e_train_ref_w2_fp32"] = train_rate(ref2, steps)
    return out


def round_best(steps: int) -> dict[str, float]:
    """One round with the framework's CPU settings: tune_malloc + channels_last, fp32 and bf16 autocast;
    training (d) is measured at whichever precision gave the faster step on this CPU."""
    from csc8607.runtime import tune_malloc

    tune_malloc()
    images, labels = synthetic(20_000)
    plain = next(iter(our_loader(images, labels)))
    batch = next(iter(our_loader(images, labels, channels_last=True)))
    out = {"c_step_fp32_tuned": train_rate(repeat(plain), steps),
           "c_step_cl_fp32_tuned": train_rate(repeat(batch), steps, "32", True),
           "c_step_cl_bf16_tuned": train_rate(repeat(batch), steps, "bf16", True, budget_s=5.0)}
    precision = "bf16" if out["c_step_cl_bf16_tuned"] > out["c_step_cl_fp32_tuned"] else "32"
    out["c_step_best"] = max(out["c_step_cl_bf16_tuned"], out["c_step_cl_fp32_tuned"])
    # (d) and (c) at the best settings, alternated within the round (a few steps each: medians of 3 pairs)
    steps_c, steps_d = [], []
    for _ in range(3):
        steps_d.append(train_rate(our_loader(images, labels, channels_last=True), steps, precision, True))
        steps_c.append(train_rate(repeat(batch), steps, precision, True))
    out["d_train_ours_best"], out["c_step_best_paired"] = statistics.median(steps_d), statistics.median(steps_c)
    out["best_is_bf16"] = float(precision == "bf16")
    return out


def default_precision() -> str:
    """What `trainer.precision=auto` picks on this CPU, and why."""
    import torch

    from csc8607.runtime import pick_precision

    precision, why = pick_precision("auto", torch.device("cpu"))
    return f"{'fp32' if precision == '32' else precision} ({why})"


def ratio_rows(r: dict[str, float]) -> list[tuple[str, str, str, float, str]]:
    """(figure, ours, reference, ours / reference, goal) of one round's figures: the issue's table, in order."""
    better_b = max(r["b_ref_w0"], r["b_ref_w2"])
    better_e = max(r["e_train_ref_w0_fp32"], r["e_train_ref_w2_fp32"])
    return [
        ("(a) our loader / better torchvision pipeline, img/s", f"{r['a_ours']:,.0f}", f"{better_b:,.0f}",
         r["a_ours"] / better_b, ">= 10"),
        ("(d)/(c) training / model step, fp32, img/s", f"{r['d_train_ours_fp32']:.1f}", f"{r['c_step_fp32']:.1f}",
         r["d_train_ours_fp32"] / r["c_step_fp32"], ">= 0.95"),
        ("(d)/(c) training / model step, best settings, img/s", f"{r['d_train_ours_best']:.1f}",
         f"{r['c_step_best_paired']:.1f}", r["d_train_ours_best"] / r["c_step_best_paired"], ">= 0.97"),
        ("(d) best settings / better (e) students' pipeline fp32", f"{r['d_train_ours_best']:.1f}", f"{better_e:.1f}",
         r["d_train_ours_best"] / better_e, ">= 3"),
        ("(d) fp32 / better (e) fp32", f"{r['d_train_ours_fp32']:.1f}", f"{better_e:.1f}",
         r["d_train_ours_fp32"] / better_e, ""),
        ("channels_last fp32 / fp32 step (tuned)", f"{r['c_step_cl_fp32_tuned']:.1f}",
         f"{r['c_step_fp32_tuned']:.1f}", r["c_step_cl_fp32_tuned"] / r["c_step_fp32_tuned"], ""),
        ("bf16 / fp32 step (channels_last, tuned)", f"{r['c_step_cl_bf16_tuned']:.1f}",
         f"{r['c_step_cl_fp32_tuned']:.1f}", r["c_step_cl_bf16_tuned"] / r["c_step_cl_fp32_tuned"], ""),
        ("tune_malloc: fp32 step tuned / plain", f"{r['c_step_fp32_tuned']:.1f}", f"{r['c_step_fp32']:.1f}",
         r["c_step_fp32_tuned"] / r["c_step_fp32"], ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per training figure")
    parser.add_argument("--per-class", type=int, default=50, help="images per class for the cache build")
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="every figure at a tiny size (< 2 min): proves it runs")
    parser.add_argument("--role", choices=["plain", "best"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        result = (round_plain if args.role == "plain" else round_best)(args.steps)
        print(json.dumps(result))
        return
    repeats = 3
    if args.quick:
        args.rounds, args.steps, args.per_class, args.digits_epochs, repeats = 1, 1, 3, 2, 1
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for role in ("plain", "best"):
            proc = subprocess.run([sys.executable, __file__, "--role", role, "--steps", str(args.steps)],
                                  capture_output=True, text=True, check=True)
            for key, value in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                rows.setdefault(key, []).append(value)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    med = {key: statistics.median(values) for key, values in rows.items()}
    print(f"torch {__import__('torch').__version__}, {os.cpu_count()} cores, batch {BATCH}, 64x64x3, "
          f"{CLASSES} classes, medians of {args.rounds} rounds (images/s)")
    for key, values in rows.items():
        print(f"  {key:<22} {med[key]:>10.1f}   rounds: {', '.join(f'{v:.1f}' for v in values)}")
    cache = cache_figures(args.per_class, repeats)
    digits = digits_figures(args.digits_epochs, repeats)
    per_round = [{key: values[i] for key, values in rows.items()} for i in range(args.rounds)]
    print("\nfigure (ours vs its reference; ratio: median over rounds of the ratio within a round)")
    print(f"  {'figure':<56} {'ours':>9} {'reference':>10} {'ratio':>7}  goal")
    for n, (name, ours, reference, _, goal) in enumerate(ratio_rows(med)):
        ratio = statistics.median(ratio_rows(r)[n][3] for r in per_round)
        print(f"  {name:<56} {ours:>9} {reference:>10} {ratio:>6.2f}x  {goal}")
    more = [
        (f"cache build / decode alone, img/s ({cache['cache_images']} JPEGs)", f"{cache['cache_build_img_s']:,.0f}",
         f"{cache['decode_alone_img_s']:,.0f}", cache["cache_build_img_s"] / cache["decode_alone_img_s"], ">= 0.8"),
        ("  the same, scikit-learn already imported (a second build)", f"{cache['cache_build_warm_img_s']:,.0f}",
         f"{cache['decode_alone_img_s']:,.0f}", cache["cache_build_warm_img_s"] / cache["decode_alone_img_s"], ""),
        ("fresh process -> first train batch, warm cache / plain, s", f"{cache['first_batch_s']:.2f}",
         f"{cache['first_batch_reference_s']:.2f}", cache["first_batch_s"] / cache["first_batch_reference_s"],
         "<= 1.0"),
        (f"digits {args.digits_epochs} epochs, wall / plain loop, s", f"{digits['digits_s']:.1f}",
         f"{digits['digits_plain_s']:.1f}", digits["digits_s"] / digits["digits_plain_s"], "<= 1.0"),
    ]
    for name, ours, reference, ratio, goal in more:
        print(f"  {name:<56} {ours:>9} {reference:>10} {ratio:>6.2f}x  {goal}")
    print(f"  digits final val accuracy: ours {digits['digits_acc']:.4f}, plain loop {digits['digits_plain_acc']:.4f}")
    print(f"  default precision on this CPU: {default_precision()}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
