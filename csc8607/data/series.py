"""Time series: float32 (N, channels, length) arrays, padded or cropped to one length, optionally cut into
windows, normalized per channel from train, and augmented on whole batches (jitter, scaling, time shift)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from csc8607.data.core import Dataset
from csc8607.data.loader import Standardize
from csc8607.data.split import Encoded, Split
from csc8607.errors import UserError

AUGMENTS = frozenset({"jitter", "scaling", "shift"})


def fixed_length(series: list[np.ndarray], length: int | None, name: str) -> tuple[torch.Tensor, dict]:
    """(C, T_i) arrays -> float32 (N, C, length): zeros appended at the end, or the end cropped. `length` null:
    the lengths must already be equal. Returns the array and what was done (report D5)."""
    lengths = np.array([s.shape[-1] for s in series])
    if length is None:
        if len(set(lengths.tolist())) > 1:
            raise UserError(f"{name}: series of unequal lengths ({lengths.min()}..{lengths.max()}): set "
                            "data.length=N to pad (zeros at the end) or crop (the end) every series to N steps")
        length = int(lengths[0])
    out = np.zeros((len(series), series[0].shape[0], length), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, : min(length, s.shape[-1])] = s[:, :length]
    done = {"padded": int((lengths < length).sum()), "cropped": int((lengths > length).sum()),
            "length_min": int(lengths.min()), "length_max": int(lengths.max())}
    return torch.from_numpy(out), done


def fill_missing(series: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Missing values (NaN: a `.ts` '?') replaced by linear interpolation in time within their channel, the
    nearest known value before the first or after the last one, 0 in a channel with none. Returns the series and
    how many values were filled (report D5)."""
    out, filled = [], 0
    for s in series:
        missing = np.isnan(s)
        if missing.any():
            s, steps = s.copy(), np.arange(s.shape[-1])
            for c in np.flatnonzero(missing.any(axis=1)):
                known = ~missing[c]
                s[c] = np.interp(steps, steps[known], s[c, known]) if known.any() else 0.0
            filled += int(missing.sum())
        out.append(s)
    return out, filled


def windows(split: Split, window: int, stride: int) -> Split:
    """Cut each (C, T) series into windows of `window` steps every `stride` steps; each keeps its target."""
    length = split.inputs.shape[-1]
    if window > length:
        raise UserError(f"data.window={window} is longer than the series ({length} steps)")
    cut = split.inputs.unfold(-1, window, stride)  # (N, C, W, window)
    per = cut.shape[2]
    inputs = cut.permute(0, 2, 1, 3).reshape(-1, split.inputs.shape[1], window).contiguous()
    return Split(inputs, split.targets.repeat_interleave(per, dim=0))


class SeriesBatches(Standardize):
    """Standardize per channel, then the train-only augmentations, in standardized units: scaling (a factor
    1 + N(0, σ²) per series and channel), jitter (N(0, σ²) per step), shift (a circular shift of up to ±s steps)."""

    def __init__(self, mean: list[float], std: list[float], augment: dict, device: torch.device | str) -> None:
        super().__init__(mean, std, device)
        self.augment = augment

    def draw(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, torch.Tensor]:
        _, channels, length = shape
        params: dict[str, torch.Tensor] = {}
        if self.augment.get("scaling"):
            params["scale"] = 1.0 + float(self.augment["scaling"]) * torch.randn(n, channels, 1, generator=generator)
        if self.augment.get("jitter"):
            params["noise"] = float(self.augment["jitter"]) * torch.randn(n, channels, length, generator=generator)
        if int(self.augment.get("shift") or 0) > 0:
            s = int(self.augment["shift"])
            params["shift"] = torch.randint(-s, s + 1, (n,), generator=generator)
        return params

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = super().apply(x, params)  # a new tensor: scaled and jittered in place
        if "scale" in params:
            x.mul_(params["scale"].to(x.device))
        if "noise" in params:
            x.add_(params["noise"].to(x.device))
        if "shift" in params:
            steps = torch.arange(x.shape[-1], device=x.device)
            index = (steps[None, :] - params["shift"].to(x.device)[:, None]) % x.shape[-1]
            x = torch.gather(x, 2, index[:, None, :].expand_as(x))
        return x


class SeriesData(Dataset):
    """Series of any source: one length (`length`), optional windows (`window`, `stride`), per-channel stats."""

    modality = "series"
    augments = AUGMENTS

    def __init__(self, source: Any, length: int | None = None, window: int | None = None, stride: int | None = None,
                 **common: Any) -> None:
        for key, value in (("length", length), ("window", window), ("stride", stride)):
            if value is not None and int(value) < 1:
                raise UserError(f"data.{key}={value} must be a whole number >= 1 (or null)")
        super().__init__(source, settings={"length": length, "window": window, "stride": stride or window}, **common)

    def decode(self, part: Any, name: str, workers: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        items = list(part.items) if isinstance(part, Encoded) else [s.numpy() for s in part.inputs]
        targets = torch.as_tensor(part.targets)
        items, filled = fill_missing(items)
        inputs, done = fixed_length(items, self.settings["length"], name)
        self.found[name] = {**done, "missing_filled": filled}
        return inputs, targets

    def expand(self, split: Split) -> Split:
        """After the splits are made (so windows of one recording never straddle two splits)."""
        window = self.settings["window"]
        return windows(split, int(window), int(self.settings["stride"])) if window else split

    def statistics(self, inputs: torch.Tensor) -> tuple[list[float], list[float]]:
        """Per-channel train mean and std; a constant channel (std 0) is noted for D5 (it normalizes to 0)."""
        mean, std = super().statistics(inputs)
        constant = [i for i, value in enumerate(std) if value < 1e-5]
        if constant:
            self.found["constant channels in train"] = constant
        return mean, std

    def facts(self) -> dict[str, Any]:
        _, channels, length = self.splits["train"].inputs.shape
        return {"channels": int(channels), "length": int(length), "channel_names": self.info["notes"].get("channels")}

    def transform(self, train: bool, channels_last: bool = False, device: torch.device | str = "cpu") -> SeriesBatches:
        return SeriesBatches(self.mean, self.std, self.augment if train else {}, device)
