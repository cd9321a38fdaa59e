"""Batches drawn from a resident uint8 array; augmentation as a few tensor ops on the whole batch."""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from csc8607.data.core import Split


def draw_augment(n: int, augment: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random choices of one batch's augmentation (drawn apart from applying them, so that a resumed
    epoch can replay the draws of the batches it skips)."""
    params: dict[str, torch.Tensor] = {}
    padding = int(augment.get("crop_padding") or 0)
    if padding > 0:
        params["dy"] = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        params["dx"] = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    if augment.get("hflip"):
        params["flip"] = torch.rand(n, generator=generator) < 0.5
    return params


def crop(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Zero-pad each side by `padding`, then crop image i back to its size at offset (dy[i], dx[i])."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = (dy.to(device)[:, None] + torch.arange(h, device=device))[:, None, :, None]
    cols = (dx.to(device)[:, None] + torch.arange(w, device=device))[:, None, None, :]
    batch = torch.arange(n, device=device)[:, None, None, None]
    chans = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def hflip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images where `flip` is True."""
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(3), images)


def apply_augment(images: torch.Tensor, augment: dict, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The train-only augmentation of one uint8 batch, with choices from `draw_augment`."""
    if "dy" in params:
        images = crop(images, int(augment["crop_padding"]), params["dy"], params["dx"])
    if "flip" in params:
        images = hflip(images, params["flip"])
    return images


class BatchLoader:
    """Iterates (inputs, targets) batches of one split, normalized float inputs on the training device.

    The uint8 images are moved to the device once; each batch is a gather, optional crop/flip on uint8,
    and one fused scale-and-shift to float. Shuffling and augmentation draw from a generator seeded by
    (seed, epoch), so an epoch is reproducible on its own (and after a resume).
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        mean: list[float],
        std: list[float],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: dict | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = dict(augment or {})
        self.seed = seed
        self.epoch = 0
        self.skip_batches = 0
        self.channels_last = channels_last
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device)[None, :, None, None]
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device)[None, :, None, None]
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling/augmentation stream of this epoch."""
        self.epoch = epoch

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> normalized float32 batch (the preprocessing shared by every split)."""
        x = torch.addcmul(self.shift, images.float(), self.scale)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def skip(self, batches: int) -> None:
        """Make the next pass start after its first `batches` batches (to continue an interrupted epoch)."""
        self.skip_batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        skip, self.skip_batches = self.skip_batches, 0
        for number, start in enumerate(range(0, n, self.batch_size)):
            index = order[start : start + self.batch_size]
            params = draw_augment(len(index), self.augment, generator) if self.augment else {}
            if number < skip:
                continue
            images = self.images[index]
            if params:
                images = apply_augment(images, self.augment, params)
            yield self.to_float(images), self.labels[index]
