"""The `cnn` design in one dimension (time series): stages of conv blocks, optional residuals, GAP, linear head."""
from __future__ import annotations

import torch
from torch import nn

from csc8607.models.blocks import check_arguments


class ConvBlock1d(nn.Module):
    """conv1d (kernel k, dilation d, same length) -> BN -> ReLU, with an identity (or 1x1) shortcut when `residual`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, residual: bool,
                 batch_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same", dilation=dilation,
                              bias=not batch_norm)
        self.norm = nn.BatchNorm1d(out_channels) if batch_norm else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if residual:
            same = in_channels == out_channels
            self.shortcut = nn.Identity() if same else nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class ConvNet1d(nn.Module):
    """(channels, length) -> [stage: `depth` blocks, then max-pool by 2]x`stages` -> global average pool ->
    dropout -> linear. Stage i has round(width * width_mult**i) channels; a stage pools while the length is >= 2."""

    def __init__(self, input_shape: list[int], num_outputs: int, width: int = 32, depth: int = 2, stages: int = 3,
                 width_mult: float = 2.0, kernel_size: int = 5, dilation: int = 1, residual: bool = True,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        check_arguments("ConvNet1d", input_shape, {"width": width, "depth": depth, "stages": stages, "kernel_size":
                        kernel_size, "dilation": dilation, "num_outputs": num_outputs}, {}, dropout, dims=2)
        channels, length = input_shape
        layers: list[nn.Module] = []
        for stage in range(stages):
            out_channels = max(1, round(width * width_mult**stage))
            for _ in range(depth):
                layers.append(ConvBlock1d(channels, out_channels, kernel_size, dilation, residual, batch_norm))
                channels = out_channels
            if stage < stages - 1 and length >= 2:
                layers.append(nn.MaxPool1d(2))
                length //= 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))
