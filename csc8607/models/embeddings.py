"""Token embeddings for the text models, optionally initialised from pretrained word vectors (GloVe / word2vec text
format: `word v1 v2 ...` per line; a word2vec `count dim` first line is skipped)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from csc8607.errors import UserError

log = logging.getLogger(__name__)


def read_vectors(path: Path, vocabulary: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The vectors of the vocabulary's words found in the file (rows in vocabulary order) and which were found.
    Only the vocabulary's words are parsed, so a large GloVe file costs one pass of string splits."""
    index = {word: i for i, word in enumerate(vocabulary)}
    vectors: torch.Tensor | None = None
    found = torch.zeros(len(vocabulary), dtype=torch.bool)
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if number == 1 and rest.strip().isdigit():
                continue  # word2vec header: "count dim"
            i = index.get(word)
            if i is None or found[i]:
                continue
            values = rest.split()
            if vectors is None:
                vectors = torch.zeros(len(vocabulary), len(values))
            if len(values) != vectors.shape[1]:
                raise UserError(f"{path}:{number}: {len(values)} values where the file's vectors have "
                                f"{vectors.shape[1]}")
            vectors[i] = torch.tensor([float(v) for v in values])
            found[i] = True
    if vectors is None:
        raise UserError(f"model.embeddings={path}: none of the {len(vocabulary)} vocabulary words is in the file")
    return vectors, found


class TokenEmbedding(nn.Module):
    """nn.Embedding whose output is zero at padded positions. With `path`, its size and initial rows come from
    the word vectors (words not found keep a random init, N(0, the found vectors' std)); `freeze` keeps them."""

    def __init__(self, vocab_size: int, dim: int, pad_id: int, path: str | None = None, freeze: bool = False,
                 vocabulary: list[str] | None = None) -> None:
        super().__init__()
        weights = None
        self.pretrained: dict | None = None  # what the report's M1 says of the word vectors (sanity.json)
        if path:
            file = Path(path).expanduser()
            if not file.is_file():
                raise UserError(f"model.embeddings={path} does not exist (a GloVe/word2vec text file)")
            if not vocabulary or len(vocabulary) != vocab_size:
                raise UserError("model.embeddings needs the data's vocabulary (a text dataset's meta)")
            vectors, found = read_vectors(file, vocabulary)
            dim = vectors.shape[1]
            spread = vectors[found].std().item() if int(found.sum()) > 1 else 1.0
            weights = torch.where(found[:, None], vectors, torch.randn(vocab_size, dim) * spread)
            self.found = int(found.sum())
            self.pretrained = {"file": str(file), "found": self.found, "vocab_size": vocab_size, "dim": dim,
                               "frozen": bool(freeze)}
            log.info("model.embeddings: %d of %d vocabulary words found in %s (%.1f%%), %s", self.found, vocab_size,
                     file, 100.0 * self.found / vocab_size, "frozen" if freeze else "fine-tuned")
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id, _weight=weights, _freeze=freeze)
        if weights is not None:
            with torch.no_grad():
                self.embedding.weight[pad_id].zero_()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(x.long()) * mask.unsqueeze(-1).to(self.embedding.weight.dtype)
