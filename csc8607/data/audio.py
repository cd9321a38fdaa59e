"""Audio: clips read once, resampled, padded/cropped to one duration and turned into log-mel spectrograms
(1, n_mels, frames) in batches (torch.stft + a mel filterbank computed once); the cache stores the log-mels.
Train-only augmentations on whole batches of normalized log-mels: gain, time shift, time and frequency masks."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from csc8607.data.core import Dataset
from csc8607.data.loader import Standardize
from csc8607.data.split import Encoded
from csc8607.errors import UserError

AUGMENTS = frozenset({"gain_db", "shift", "time_masks", "time_mask_width", "freq_masks", "freq_mask_width"})
MAX_RESAMPLE_FACTOR = 2000  # up/down factors of the polyphase resampler beyond this: refused (too slow)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters on the HTK mel scale, 0 Hz to Nyquist, unnormalized."""
    def mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = 700.0 * (10 ** (np.linspace(mel(0.0), mel(sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32))


def log_mel(waves: torch.Tensor, filterbank: torch.Tensor, n_fft: int, hop_length: int,
            top_db: float = 80.0) -> torch.Tensor:
    """(B, samples) float waves -> (B, 1, n_mels, frames) power log-mels in dB (floor at max - top_db per clip)."""
    window = torch.hann_window(n_fft)
    spec = torch.stft(waves, n_fft, hop_length, window=window, center=True, return_complex=True).abs() ** 2
    mels = torch.einsum("bft,fm->bmt", spec, filterbank)
    db = 10.0 * torch.log10(mels.clamp_min(1e-10))
    return torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - top_db)[:, None]


def resample(waves: np.ndarray, rate: int, target: int, where: str) -> np.ndarray:
    """(B, samples) at `rate` -> `target` Hz with a polyphase filter (scipy), the whole batch at once."""
    if rate == target:
        return waves
    if rate <= 0:
        raise UserError(f"{where}: sample rate {rate} Hz is not valid")
    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    if max(up, down) > MAX_RESAMPLE_FACTOR:
        raise UserError(f"{where}: cannot resample {rate} Hz to data.sample_rate={target} Hz (ratio {up}/{down} "
                        "is too fine for the polyphase resampler): convert the file, or pick a sample rate with "
                        "a simpler ratio")
    from scipy.signal import resample_poly

    return resample_poly(waves, up, down, axis=1).astype(np.float32)


def fixed(wave: np.ndarray, samples: int) -> np.ndarray:
    """Crop (keep the start) or pad (zeros at the end) to `samples`."""
    return wave[:samples] if len(wave) >= samples else np.pad(wave, (0, samples - len(wave)))


class AudioBatches(Standardize):
    """Standardize, then (train only) gain (± dB, one per clip), circular time shift (± frames), and time /
    frequency masks (`*_masks` bands per clip, each up to `*_mask_width` wide, set to 0 = the train mean)."""

    def __init__(self, mean: list[float], std: list[float], augment: dict, device: torch.device | str) -> None:
        super().__init__(mean, std, device)
        self.augment = augment
        self.db_per_unit = float(std[0])  # a gain in dB, in standardized units (no device read per batch)

    def draw(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, torch.Tensor]:
        a, (_, _, n_mels, frames), params = self.augment, shape, {}
        if a.get("gain_db"):
            params["gain"] = (torch.rand(n, generator=generator) * 2 - 1) * float(a["gain_db"]) / self.db_per_unit
        if int(a.get("shift") or 0) > 0:
            params["shift"] = torch.randint(-int(a["shift"]), int(a["shift"]) + 1, (n,), generator=generator)
        for axis, size in (("time", frames), ("freq", n_mels)):
            count, width = int(a.get(f"{axis}_masks") or 0), int(a.get(f"{axis}_mask_width") or 0)
            if count and width:
                widths = torch.randint(0, width + 1, (n, count), generator=generator)
                starts = (torch.rand(n, count, generator=generator) * (size - widths + 1)).long()
                params[f"{axis}_bands"] = torch.stack([starts, starts + widths], dim=-1)
        return params

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = super().apply(x, params)
        if "gain" in params:
            x = x + params["gain"].to(x.device)[:, None, None, None]
        if "shift" in params:
            steps = torch.arange(x.shape[-1], device=x.device)
            index = (steps[None, :] - params["shift"].to(x.device)[:, None]) % x.shape[-1]
            x = torch.gather(x, 3, index[:, None, None, :].expand_as(x))
        for axis, dim in (("time", 3), ("freq", 2)):
            if f"{axis}_bands" in params:
                bands = params[f"{axis}_bands"].to(x.device)  # (n, count, 2)
                pos = torch.arange(x.shape[dim], device=x.device)[None, None, :]
                hit = ((pos >= bands[..., :1]) & (pos < bands[..., 1:])).any(dim=1)  # (n, size)
                shape = (len(x), 1, -1, 1) if dim == 2 else (len(x), 1, 1, -1)
                x = x.masked_fill(hit.view(shape), 0.0)
        return x


class AudioData(Dataset):
    """Clips of any source as (1, n_mels, frames) float16 log-mels: resample to `sample_rate`, `duration` s
    (crop keeps the start, pad appends silence), STFT (`n_fft`, `hop_length`, Hann), `n_mels` HTK mel bands, dB."""

    modality = "audio"
    augments = AUGMENTS

    def __init__(self, source: Any, sample_rate: int = 16000, duration: float = 1.0, n_mels: int = 64,
                 n_fft: int = 512, hop_length: int = 160, top_db: float = 80.0, **common: Any) -> None:
        for key, value in (("sample_rate", sample_rate), ("duration", duration), ("n_mels", n_mels),
                           ("n_fft", n_fft), ("hop_length", hop_length)):
            if not value or value <= 0:
                raise UserError(f"data.{key}={value} must be > 0")
        settings = {"sample_rate": int(sample_rate), "duration": float(duration), "n_mels": int(n_mels),
                    "n_fft": int(n_fft), "hop_length": int(hop_length), "top_db": float(top_db),
                    "crop": "start kept", "pad": "zeros at the end", "mel_scale": "htk", "window": "hann"}
        super().__init__(source, settings=settings, **common)

    def decode(self, part: Any, name: str, workers: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(part, Encoded):
            return super().decode(part, name, workers)
        s = self.settings
        samples = int(round(s["duration"] * s["sample_rate"]))
        filterbank = mel_filterbank(s["sample_rate"], s["n_fft"], s["n_mels"])
        clips = [part.opener(item) for item in part.items]  # (wave, rate) each
        by_rate: dict[int, list[int]] = {}
        for i, (_, rate) in enumerate(clips):
            by_rate.setdefault(rate, []).append(i)
        out = torch.empty(len(clips), 1, s["n_mels"], samples // s["hop_length"] + 1, dtype=torch.float16)
        for rate, index in by_rate.items():
            at_rate = int(math.ceil(s["duration"] * rate))
            waves = np.stack([fixed(clips[i][0], at_rate) for i in index])
            waves = resample(waves, rate, s["sample_rate"], f"{part.items[index[0]]} ({len(index)} clips at {rate} Hz)")
            waves = np.stack([fixed(w, samples) for w in waves])
            for start in range(0, len(index), 256):
                chunk = torch.from_numpy(waves[start : start + 256])
                out[index[start : start + 256]] = log_mel(chunk, filterbank, s["n_fft"], s["hop_length"],
                                                          s["top_db"]).half()
        lengths = np.array([len(wave) / rate for wave, rate in clips])
        self.found[name] = {"cropped": int((lengths > s["duration"] + 1e-9).sum()),
                            "padded": int((lengths < s["duration"] - 1e-9).sum()),
                            "seconds_min": float(lengths.min()), "seconds_mean": float(lengths.mean()),
                            "seconds_max": float(lengths.max()), "source_rates": sorted(by_rate)}
        return out, torch.as_tensor(part.targets)

    def facts(self) -> dict[str, Any]:
        _, _, n_mels, frames = self.splits["train"].inputs.shape
        return {"channels": 1, "sample_rate": self.settings["sample_rate"], "duration_s": self.settings["duration"],
                "n_mels": int(n_mels), "frames": int(frames)}

    def transform(self, train: bool, channels_last: bool = False, device: torch.device | str = "cpu") -> AudioBatches:
        return AudioBatches(self.mean, self.std, self.augment if train else {}, device)
