"""Batches drawn from a resident array of any input type; its transform augments and normalizes whole batches."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from csc8607.data.split import Split


class Standardize:
    """Float inputs (series, log-mels) -> (x - mean) / std per channel (dim 1); no augmentation."""

    def __init__(self, mean: list[float], std: list[float], device: torch.device | str = "cpu") -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)
        self.scale, self.shift = 1.0 / self.std, -self.mean / self.std  # x * scale + shift: one pass, in place

    def draw(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """A new standardized batch (the input is left as it is); augmentations then work on it in place."""
        view = (1, -1) + (1,) * (x.dim() - 2)
        return torch.mul(x.float(), self.scale.view(view)).add_(self.shift.view(view))

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """A standardized batch back to the stored units (figures)."""
        view = (1, -1) + (1,) * (x.dim() - 2)
        return x.float() * self.std.to(x.device).view(view) + self.mean.to(x.device).view(view)


class BatchLoader:
    """Iterates (inputs, targets) batches of one split, normalized float inputs on the training device.

    The stored arrays are moved to the device once; each batch is a gather, then the input type's `transform`:
    `draw(n, shape, generator)` makes every random choice of the batch (empty when not augmenting) and
    `apply(batch, choices)` augments and normalizes the whole batch. Shuffling and augmentation draw from a
    generator seeded by (seed, epoch), so an epoch is reproducible on its own (and after a resume); the draws of
    skipped batches are still made, so a resumed epoch continues the same stream.
    """

    def __init__(self, split: Split, batch_size: int, transform: Any, device: torch.device | str = "cpu",
                 shuffle: bool = False, seed: int = 0) -> None:
        self.device = torch.device(device)
        self.inputs = split.inputs.to(self.device)
        self.targets = split.targets.to(self.device)
        self.batch_size = batch_size
        self.transform = transform
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.skip_batches = 0

    def __len__(self) -> int:
        return (len(self.targets) + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling/augmentation stream of this epoch."""
        self.epoch = epoch

    def skip(self, batches: int) -> None:
        """Make the next pass start after its first `batches` batches (to continue an interrupted epoch)."""
        self.skip_batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches. On CPU each is assembled on one thread: the copies are small and memory-bound, and a
        second OpenMP thread only adds synchronisation (up to 10x slower on a busy machine, measured); the
        model's step between two batches runs with all the threads."""
        batches = self._assemble()
        threads = torch.get_num_threads()
        single = self.device.type == "cpu" and threads > 1
        while True:
            if single:
                torch.set_num_threads(1)
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                if single:
                    torch.set_num_threads(threads)
            yield batch

    def order(self, generator: torch.Generator) -> torch.Tensor:
        """The epoch's order of the examples, on the device: shuffled when training."""
        n = len(self.targets)
        return (torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)).to(self.device)

    def _assemble(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.targets)
        order = self.order(generator)
        skip, self.skip_batches = self.skip_batches, 0
        for number, start in enumerate(range(0, n, self.batch_size)):
            index = order[start : start + self.batch_size]
            params = self.transform.draw(len(index), tuple(self.inputs.shape), generator)
            if number < skip:
                continue  # the draws above keep the stream of the batches that follow
            yield self.transform.apply(torch.index_select(self.inputs, 0, index), params), self.targets[index]
