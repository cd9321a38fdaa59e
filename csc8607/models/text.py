"""Text classifiers over token ids (batch, length) padded with `pad_id` at the end: a recurrent one (GRU/LSTM over
the true lengths, then attention/last/mean/max pooling) and a convolutional one (TextCNN, max over time).

Padding never changes a prediction: pads are zeroed after the embedding, the RNN is packed to the true lengths,
and every pooling ignores the padded positions (tests/test_text.py checks it with more padding).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from csc8607.models.embeddings import TokenEmbedding

POOLINGS = ("attention", "last", "mean", "max")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def masked_pool(out: torch.Tensor, mask: torch.Tensor, how: str, scorer: nn.Module | None = None) -> torch.Tensor:
    """(B, T, H) outputs -> (B, H) over the positions where `mask` (B, T) is true."""
    if how == "mean":
        return (out * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
    if how == "max":
        return out.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    scores = scorer(out).squeeze(-1).float().masked_fill(~mask, float("-inf"))  # attention: one score per position
    weights = torch.softmax(scores, dim=1).to(out.dtype)
    return torch.einsum("bt,bth->bh", weights, out)


class TextRNN(nn.Module):
    """embedding -> `layers` of GRU/LSTM (`hidden` units, `bidirectional`) over the true lengths -> pooling
    (attention: a learned score per position, softmax over the text; last: the final hidden states; mean; max)
    -> dropout -> linear head."""

    def __init__(self, vocab_size: int, pad_id: int, num_outputs: int, embed_dim: int = 128, cell: str = "gru",
                 hidden: int = 128, layers: int = 1, bidirectional: bool = True, dropout: float = 0.0,
                 pooling: str = "attention", embeddings: str | None = None, freeze_embeddings: bool = False,
                 vocabulary: list[str] | None = None) -> None:
        super().__init__()
        check(cell in ("gru", "lstm"), f"model.cell={cell} must be gru or lstm")
        check(pooling in POOLINGS, f"model.pooling={pooling} must be one of {', '.join(POOLINGS)}")
        for name, value in (("hidden", hidden), ("layers", layers), ("embed_dim", embed_dim)):
            check(int(value) >= 1, f"model.{name}={value} must be at least 1")
        check(0.0 <= dropout < 1.0, f"model.dropout={dropout} must be in [0, 1)")
        self.pad_id, self.pooling = pad_id, pooling
        self.embedding = TokenEmbedding(vocab_size, embed_dim, pad_id, embeddings, freeze_embeddings, vocabulary)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(self.embedding.dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if layers > 1 else 0.0)
        width = hidden * (2 if bidirectional else 1)
        self.scorer = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1, bias=False)) \
            if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x != self.pad_id
        mask[:, 0] = True  # a text without tokens is read as one <pad> (never NaN)
        lengths = mask.sum(1)
        packed = pack_padded_sequence(self.embedding(x, mask), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        if self.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # (layers * directions, B, hidden)
            directions = 2 if self.rnn.bidirectional else 1
            pooled = torch.cat(list(h[-directions:]), dim=-1)
        else:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            pooled = masked_pool(out, mask, self.pooling, self.scorer)
        return self.head(self.dropout(pooled))


class TextCNN(nn.Module):
    """embedding -> parallel 1-D convolutions (`filters` each, one per kernel size) -> ReLU -> max over time ->
    dropout -> linear head (Kim, 2014). Each convolution sees every window that overlaps the text (zeros beyond
    its ends), so a text shorter than a kernel still counts and extra padding changes nothing."""

    def __init__(self, vocab_size: int, pad_id: int, num_outputs: int, embed_dim: int = 128,
                 kernel_sizes: list[int] = (3, 4, 5), filters: int = 100, dropout: float = 0.5,
                 embeddings: str | None = None, freeze_embeddings: bool = False,
                 vocabulary: list[str] | None = None) -> None:
        super().__init__()
        kernel_sizes = [int(k) for k in kernel_sizes]
        check(len(kernel_sizes) > 0 and min(kernel_sizes) >= 1, f"model.kernel_sizes={kernel_sizes} must be sizes >= 1")
        for name, value in (("filters", filters), ("embed_dim", embed_dim)):
            check(int(value) >= 1, f"model.{name}={value} must be at least 1")
        check(0.0 <= dropout < 1.0, f"model.dropout={dropout} must be in [0, 1)")
        self.pad_id = pad_id
        self.embedding = TokenEmbedding(vocab_size, embed_dim, pad_id, embeddings, freeze_embeddings, vocabulary)
        self.convs = nn.ModuleList(nn.Conv1d(self.embedding.dim, filters, k, padding=k - 1) for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(kernel_sizes), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x != self.pad_id
        lengths = mask.sum(1).clamp_min(1)
        e = self.embedding(x, mask).transpose(1, 2)  # (B, E, T)
        pooled = []
        for conv in self.convs:
            out = torch.relu(conv(e))  # (B, F, T + k - 1): output j sees tokens j - k + 1 .. j
            k = conv.kernel_size[0]
            valid = torch.arange(out.shape[-1], device=x.device)[None, :] < (lengths + k - 1)[:, None]
            pooled.append(out.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(-1))
        return self.head(self.dropout(torch.cat(pooled, dim=1)))
