#!/usr/bin/env python
"""Audio and time-series paths against a plain PyTorch reference (what a student writes without torchaudio:
a per-clip loop of soundfile + scipy resampling + torch.stft + mel filterbank; a per-item Dataset with its
augmentations in a DataLoader).

    python bench/input_bench.py [--clips 2000] [--rounds 3] [--steps 8] [--threads 2]    # full size: < 4 min
    python bench/input_bench.py --clips 64 --rounds 1 --steps 2                          # tiny: proves it runs

Prints a table of figures, each the median over `--rounds` rounds in which the reference and ours alternate:
(a) audio cache build from one-second wav files at 22.05 kHz (resampled to 16 kHz, 64 log-mel bands, hop 160):
    the whole AudioData build (read, resample, batched STFT, split, statistics, cache write) and the per-clip
    reference loop, in clips/s (goal: ours >= 500 on 2 cores); and the log-mel step alone, batched vs per clip;
(b) training the default `cnn` on (1, 64, 101) log-mels fed by our loader with time/frequency masks, shift and
    gain, as a fraction of the model step alone on a pre-made batch (goal >= 0.95), and the same for the
    reference DataLoader;
(c) training `cnn1d` on (9, 128) series (UCI HAR's shape) fed by our loader with jitter, scaling and shift, as a
    fraction of the model step alone (goal >= 0.95), and the same for the reference DataLoader.
Not a test: the numbers depend on the machine (run it on a quiet one).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from csc8607.data import Split  # noqa: E402
from csc8607.data.audio import AudioBatches, fixed, log_mel, mel_filterbank  # noqa: E402
from csc8607.data.loader import BatchLoader  # noqa: E402
from csc8607.data.series import SeriesBatches  # noqa: E402
from data_bench import timed_steps  # noqa: E402  (bench/ is on sys.path: this script's folder)

RATE, TARGET, N_MELS, N_FFT, HOP, BATCH = 22050, 16000, 64, 512, 160, 64
MASKS = {"time_masks": 2, "time_mask_width": 12, "freq_masks": 2, "freq_mask_width": 8, "shift": 10, "gain_db": 6.0}
JITTER = {"jitter": 0.05, "scaling": 0.1, "shift": 8}


def write_clips(root: Path, count: int) -> None:
    """`count` one-second 16-bit wav files at RATE Hz in two class folders (a tone plus noise)."""
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    for i in range(count):
        tone = np.sin(2 * np.pi * (300 + 1700 * (i % 2) + 10 * rng.random()) * t)
        wave = 0.4 * tone + 0.05 * rng.standard_normal(RATE)
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        soundfile.write(root / f"c{i % 2}" / f"{i}.wav", wave.astype(np.float32), RATE, subtype="PCM_16")


def ours_build(root: Path, cache: Path) -> float:
    """Clips/s of the whole AudioData build (a fresh cache dir: nothing reused)."""
    from functools import partial

    from csc8607.data.audio import AudioData
    from csc8607.data.audio_files import load_audio_folder

    files = len(list(root.rglob("*.wav")))
    start = time.perf_counter()
    AudioData(partial(load_audio_folder, root=str(root)), sample_rate=TARGET, duration=1.0, n_mels=N_MELS,
              n_fft=N_FFT, hop_length=HOP, cache_dir=str(cache))
    return files / (time.perf_counter() - start)


def reference_clip(path: Path, filterbank: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """One clip as a student writes it: read, resample, pad/crop, STFT, mel, dB."""
    import soundfile
    from scipy.signal import resample_poly

    wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    wave = resample_poly(wave.mean(axis=1), TARGET // 50, rate // 50) if rate != TARGET else wave.mean(axis=1)
    wave = torch.from_numpy(fixed(wave.astype(np.float32), TARGET))
    power = torch.stft(wave, N_FFT, HOP, window=window, center=True, return_complex=True).abs() ** 2
    db = 10.0 * torch.log10((filterbank.T @ power).clamp_min(1e-10))
    return torch.maximum(db, db.max() - 80.0)[None]


def reference_build(root: Path) -> float:
    filterbank, window = mel_filterbank(TARGET, N_FFT, N_MELS), torch.hann_window(N_FFT)
    files = sorted(root.rglob("*.wav"))
    start = time.perf_counter()
    torch.stack([reference_clip(p, filterbank, window) for p in files])
    return len(files) / (time.perf_counter() - start)


def log_mel_rates(waves: torch.Tensor) -> tuple[float, float]:
    """Clips/s of the log-mel step alone: batched (256 at a time) vs one clip at a time."""
    filterbank, window = mel_filterbank(TARGET, N_FFT, N_MELS), torch.hann_window(N_FFT)
    start = time.perf_counter()
    for part in waves.split(256):
        log_mel(part, filterbank, N_FFT, HOP)
    batched = len(waves) / (time.perf_counter() - start)
    start = time.perf_counter()
    for wave in waves:
        power = torch.stft(wave, N_FFT, HOP, window=window, center=True, return_complex=True).abs() ** 2
        db = 10.0 * torch.log10((filterbank.T @ power).clamp_min(1e-10))
        torch.maximum(db, db.max() - 80.0)
    return batched, len(waves) / (time.perf_counter() - start)


class ReferenceSet(torch.utils.data.Dataset):
    """Per-item augmentation in __getitem__ (normalize, then the same augmentations one example at a time)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, augment: Callable[[torch.Tensor], torch.Tensor]):
        self.inputs, self.targets, self.augment = inputs, targets, augment
        self.mean, self.std = inputs.float().mean(), inputs.float().std()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.augment((self.inputs[i].float() - self.mean) / self.std), self.targets[i]


def mask_one(x: torch.Tensor) -> torch.Tensor:
    """torchaudio's TimeMasking/FrequencyMasking + roll + gain, on one (1, n_mels, frames) log-mel."""
    x = torch.roll(x, int(torch.randint(-10, 11, ())), dims=-1) + (torch.rand(()) * 2 - 1) * 0.6
    for dim, width in ((2, 12), (2, 12), (1, 8), (1, 8)):
        w = int(torch.randint(0, width + 1, ()))
        start = int(torch.randint(0, x.shape[dim] - w + 1, ()))
        x = x.index_fill(dim, torch.arange(start, start + w), 0.0)
    return x


def jitter_one(x: torch.Tensor) -> torch.Tensor:
    """Scaling per channel, jitter per step, circular shift, on one (channels, length) series."""
    x = x * (1 + 0.1 * torch.randn(x.shape[0], 1)) + 0.05 * torch.randn(x.shape)
    return torch.roll(x, int(torch.randint(-8, 9, ())), dims=-1)


def model_and_engine(config: str, input_shape: list[int], classes: int) -> tuple[Any, Any, Any]:
    from omegaconf import OmegaConf

    from csc8607.config import build
    from csc8607.engine import Engine
    from csc8607.models.build import constructor_node

    torch.manual_seed(0)
    node = constructor_node(OmegaConf.load(REPO / "conf" / "model" / f"{config}.yaml"))  # less axes/space
    model = build(node, "model", input_shape=input_shape, num_outputs=classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0e-3)
    return model, optimizer, Engine("multiclass", classes, torch.device("cpu"), "32")


def forever(make: Callable[[], Iterable]) -> Iterable:
    while True:
        yield from make()


def loader_ratios(config: str, inputs: torch.Tensor, targets: torch.Tensor, transform: Any,
                  one: Callable[[torch.Tensor], torch.Tensor], steps: int) -> dict[str, float]:
    """Training rate with our loader, with the reference DataLoader, and of the model step alone (same model)."""
    setup = model_and_engine(config, list(inputs.shape[1:]), int(targets.max()) + 1)
    ours = BatchLoader(Split(inputs, targets), BATCH, transform, shuffle=True, seed=0)
    reference = torch.utils.data.DataLoader(ReferenceSet(inputs, targets, one), BATCH, shuffle=True)
    batch = next(iter(ours))
    step = timed_steps(setup, forever(lambda: [batch]), steps)
    with_ours = timed_steps(setup, forever(lambda: ours), steps)
    with_reference = timed_steps(setup, forever(lambda: reference), steps)
    step_again = timed_steps(setup, forever(lambda: [batch]), steps)  # the pair alternates around the loaders
    step = statistics.mean([step, step_again])
    return {"step": step, "ours": with_ours / step, "reference": with_reference / step}


def one_round(root: Path, cache: Path, number: int, clips: int, steps: int) -> dict[str, float]:
    out: dict[str, float] = {}
    order = [("reference", lambda: reference_build(root)), ("ours", lambda: ours_build(root, cache / str(number)))]
    for name, run in order if number % 2 == 0 else order[::-1]:  # alternate which goes first
        out[f"build_{name}"] = run()
    g = torch.Generator().manual_seed(number)
    waves = 0.3 * torch.randn(min(clips, 512), TARGET, generator=g)
    out["logmel_batched"], out["logmel_per_clip"] = log_mel_rates(waves)
    n = max(4 * BATCH, clips)
    mels = (20 * torch.randn(n, 1, N_MELS, TARGET // HOP + 1, generator=g) - 30).half()
    labels = torch.randint(0, 50, (n,), generator=g)
    audio = loader_ratios("cnn", mels, labels, AudioBatches([-30.0], [20.0], MASKS, "cpu"), mask_one, steps)
    out.update({f"audio_{k}": v for k, v in audio.items()})
    series = torch.randn(max(4 * BATCH, 4 * clips), 9, 128, generator=g)
    labels = torch.randint(0, 6, (len(series),), generator=g)
    result = loader_ratios("cnn1d", series, labels, SeriesBatches([0.0] * 9, [1.0] * 9, JITTER, "cpu"), jitter_one,
                           steps)
    out.update({f"series_{k}": v for k, v in result.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=2000, help="one-second wav files for the cache build")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per training figure")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from csc8607.runtime import tune_malloc

    tune_malloc()  # as train.py does (trainer.tune_malloc): both sides get it
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "clips", Path(tmp) / "cache"
        write_clips(root, args.clips)
        rounds = [one_round(root, cache, i, args.clips, args.steps) for i in range(args.rounds)]
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    rows = [
        ("(a) audio cache build, clips/s", "ours (AudioData, batched STFT)", median["build_ours"],
         "per-clip loop", median["build_reference"], ">= 500"),
        ("(a) log-mel step alone, clips/s", "batched (256)", median["logmel_batched"], "per clip",
         median["logmel_per_clip"], ""),
        (f"(b) log-mel + masks, train / step (step {median['audio_step']:.0f}/s)", "our loader", median["audio_ours"],
         "DataLoader", median["audio_reference"], ">= 0.95"),
        (f"(c) series + jitter, train / step (step {median['series_step']:.0f}/s)", "our loader",
         median["series_ours"], "DataLoader", median["series_reference"], ">= 0.95"),
    ]
    print(f"{args.clips} clips of 1 s at {RATE} Hz -> {TARGET} Hz, {N_MELS} mels; batch {BATCH}; {args.threads} "
          f"threads; median of {args.rounds} rounds; {time.perf_counter() - started:.0f} s")
    print(f"{'figure':<52} {'ours':>34} {'reference':>24} {'goal':>8}")
    for figure, ours, ours_value, ref, ref_value, goal in rows:
        print(f"{figure:<52} {ours:>24} {ours_value:>9.3f} {ref:>14} {ref_value:>9.3f} {goal:>8}")


if __name__ == "__main__":
    main()
