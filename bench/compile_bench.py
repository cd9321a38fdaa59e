#!/usr/bin/env python
"""torch.compile vs eager on the default cnn: compile time, steady-state step time, break-even steps.

    python bench/compile_bench.py [--quick] [--rounds 5] [--steps 10]

For digits (1x8x8, 10 classes) and a Tiny-ImageNet-shaped batch (3x64x64, 200 classes), batch 128, at fp32 and
at bf16 autocast + channels_last (the CPU's best settings), each in a fresh process with an empty inductor
cache (a cold compile, as a student's first run): the first compiled optimizer steps minus the same eager steps
(the compile time), then `--rounds` alternated blocks of `--steps` eager and compiled steps (medians of the
per-step times), and the break-even: the number of steps after which the compiled run has caught up.
Not a test: the numbers depend on the machine.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BATCH = 128
CASES = {"digits": ([1, 8, 8], 10), "tiny64": ([3, 64, 64], 200)}


def setup(shape: list[int], classes: int, precision: str):
    """(model, optimizer, engine, batch) of the default cnn, with the framework's CPU settings."""
    import torch
    from omegaconf import OmegaConf

    from csc8607.config import build
    from csc8607.engine import Engine
    from csc8607.models.build import constructor_node
    from csc8607.runtime import tune_malloc

    tune_malloc()
    torch.manual_seed(0)
    channels_last = precision == "bf16"
    node = constructor_node(OmegaConf.load(REPO / "conf" / "model" / "cnn.yaml"))
    model = build(node, "model", input_shape=shape, num_outputs=classes)
    fmt = torch.channels_last if channels_last else torch.preserve_format
    model = model.to(memory_format=fmt)
    x = torch.randn(BATCH, *shape).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (BATCH,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, optimizer, Engine("multiclass", classes, torch.device("cpu"), precision), (x, y)


def steps_time(model, optimizer, engine, batch, steps: int) -> float:
    """Seconds per optimizer step over `steps` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        engine.train_step(model, *batch, optimizer)
    return (time.perf_counter() - start) / steps


def one_case(case: str, precision: str, rounds: int, steps: int) -> dict[str, float]:
    """In this (fresh) process: eager and compiled copies of one model, alternated."""
    import copy

    shape, classes = CASES[case]
    eager, eager_opt, engine, batch = setup(shape, classes, precision)
    compiled = copy.deepcopy(eager)
    compiled_opt = type(eager_opt)(compiled.parameters(), lr=1e-3)
    compiled.compile()  # in place: the module and its state_dict keys stay the same (what checkpoints save)
    eager.train(), compiled.train()
    warm = 3  # the first steps: the compile (forward, backward, the optimizer's first state) and allocations
    eager_first = steps_time(eager, eager_opt, engine, batch, warm) * warm
    compiled_first = steps_time(compiled, compiled_opt, engine, batch, warm) * warm
    eager_steps, compiled_steps = [], []
    for _ in range(rounds):
        eager_steps.append(steps_time(eager, eager_opt, engine, batch, steps))
        compiled_steps.append(steps_time(compiled, compiled_opt, engine, batch, steps))
    eager_s, compiled_s = statistics.median(eager_steps), statistics.median(compiled_steps)
    compile_s = compiled_first - eager_first
    gain = eager_s - compiled_s
    return {"compile_s": compile_s, "eager_step_ms": 1000 * eager_s, "compiled_step_ms": 1000 * compiled_s,
            "break_even_steps": compile_s / gain if gain > 0 else float("inf")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternated blocks of eager and compiled steps")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per block")
    parser.add_argument("--quick", action="store_true", help="digits at fp32 only, 2 rounds of 3 steps")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        case, precision = args.role.split(":")
        print(json.dumps(one_case(case, precision, args.rounds, args.steps)))
        return
    if args.quick:
        args.rounds, args.steps = 2, 3
    runs = [("digits", "32")] if args.quick else [(c, p) for c in CASES for p in ("32", "bf16")]
    print(f"load average at start: {os.getloadavg()}", flush=True)
    print(f"batch {BATCH}, default cnn, cold inductor cache per case, medians of {args.rounds} alternated blocks "
          f"of {args.steps} steps")
    print(f"  {'case':<8} {'precision':<9} {'compile s':>9} {'eager ms/step':>13} {'compiled ms/step':>16} "
          f"{'speed-up':>8} {'break-even steps':>16}")
    for case, precision in runs:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "PYTHONPATH": str(REPO)}
            proc = subprocess.run([sys.executable, __file__, "--role", f"{case}:{precision}", "--rounds",
                                   str(args.rounds), "--steps", str(args.steps)], capture_output=True, text=True,
                                  env=env)
        if proc.returncode != 0:
            print(f"  {case:<8} {precision:<9} failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        even = "never" if r["break_even_steps"] == float("inf") else f"{r['break_even_steps']:.0f}"
        print(f"  {case:<8} {'fp32' if precision == '32' else 'bf16+cl':<9} {r['compile_s']:>9.1f} "
              f"{r['eager_step_ms']:>13.2f} {r['compiled_step_ms']:>16.2f} "
              f"{r['eager_step_ms'] / r['compiled_step_ms']:>7.2f}x {even:>16}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
