"""Text: tokenized once (a regex pass over many texts at a time, or a pretrained `tokenizers` tokenizer) into int32
(N, max_length) token ids padded with <pad>, cached; batches are trimmed to their longest text, optionally drawn
from buckets of similar lengths.

The vocabulary is built from the train split only (after carving), saved with the cached arrays (info.json) and
in meta (so in every checkpoint), with its SHA-256 that evaluate.py compares to refuse a different one.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from csc8607.data.core import Dataset, SourceData
from csc8607.data.loader import BatchLoader
from csc8607.data.split import Encoded, Split
from csc8607.data.tokenize import (PAD_NAMES, UNK_NAMES, length_stats, pad, pretrained_tokenizer, special_id,
                                   token_ids, word_tokens)
from csc8607.errors import UserError

BUCKET_POOL = 50  # batches whose texts are sorted by length together (more = less padding, less randomness)


class TextBatches:
    """A batch of token ids trimmed to its longest text (padding is at the end); train-only token dropout
    replaces a random fraction of the real tokens by <unk>."""

    def __init__(self, pad_id: int, unk_id: int, token_dropout: float = 0.0) -> None:
        self.pad_id, self.unk_id, self.token_dropout = pad_id, unk_id, token_dropout

    def draw(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> dict[str, torch.Tensor]:
        if not self.token_dropout:
            return {}
        return {"drop": torch.rand(n, shape[1], generator=generator) < self.token_dropout}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        real = x != self.pad_id
        longest = max(int(real.sum(1).max()), 1) if len(x) else 1
        x = x[:, :longest]
        if "drop" in params:
            drop = params["drop"][:, :longest].to(x.device) & real[:, :longest]
            x = torch.where(drop, torch.full_like(x, self.unk_id), x)
        return x

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TextLoader(BatchLoader):
    """BatchLoader whose shuffled train order groups texts of similar lengths (`bucket`): the shuffled split is
    cut into pools of BUCKET_POOL batches, each pool sorted by length and cut into batches, the batches shuffled."""

    def __init__(self, split: Split, batch_size: int, transform: TextBatches, bucket: bool, **kwargs: Any) -> None:
        super().__init__(split, batch_size, transform, **kwargs)
        self.bucket = bucket
        self.lengths = (split.inputs != transform.pad_id).sum(1)

    def order(self, generator: torch.Generator) -> torch.Tensor:
        base = super().order(generator)
        if not (self.shuffle and self.bucket):
            return base
        pool = self.batch_size * BUCKET_POOL
        base = base.cpu()
        pools = [p[torch.argsort(self.lengths[p], stable=True)] for p in base.split(pool)]
        batches = list(torch.cat(pools).split(self.batch_size))
        last = [batches.pop()] if len(batches[-1]) < self.batch_size else []  # the short batch stays last
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return torch.cat(shuffled + last).to(self.device)


class TextData(Dataset):
    """Texts of any source (SourceData whose splits are Encoded(texts, targets)), tokenized once."""

    modality = "text"
    augments = frozenset({"token_dropout"})
    model_dtype = "int32"  # token ids, as stored (nn.Embedding takes them)

    def __init__(self, source: Any, tokenizer: str = "word", vocab_size: int = 20000, min_freq: int = 1,
                 max_length: int = 256, truncation: str = "head", bucket: bool = True, **common: Any) -> None:
        if int(max_length) < 1:
            raise UserError(f"data.max_length={max_length} must be at least 1 token")
        if truncation not in ("head", "head_tail"):
            raise UserError(f"data.truncation={truncation} must be head or head_tail")
        if int(vocab_size) < 3 or int(min_freq) < 1:
            raise UserError(f"data.vocab_size={vocab_size} must be >= 3 and data.min_freq={min_freq} >= 1")
        settings: dict[str, Any] = {"tokenizer": tokenizer, "vocab_size": int(vocab_size), "min_freq": int(min_freq),
                                    "max_length": int(max_length), "truncation": truncation}
        if tokenizer != "word":
            self.pretrained = pretrained_tokenizer(str(tokenizer))  # checked before any data is read
            settings["tokenizer_sha256"] = hashlib.sha256(self.pretrained.to_str().encode()).hexdigest()
        self.texts: list[str] = []
        self.bucket = bool(bucket)
        super().__init__(source, settings=settings, **common)
        facts = self.meta["input"]
        # the keys a text model's constructor names (vocab_size, pad_id, max_length) come from here
        self.meta.update(vocab_size=facts["vocab_size"], pad_id=facts["pad_id"], max_length=facts["max_length"],
                         vocabulary=self.vocabulary())  # in every checkpoint; pretrained word vectors match it
        # padded to each batch's longest text (not max_length); train batches drawn from buckets of similar lengths
        self.meta["preprocess"].update(padding="batch_longest", length_buckets=self.bucket)

    def decode(self, part: Any, name: str, workers: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts stay Python strings until the splits are final: the inputs are their indices in `self.texts`."""
        if not isinstance(part, Encoded):
            raise UserError(f"text inputs need texts, got {type(part).__name__}")
        start = len(self.texts)
        self.texts.extend(str(t) for t in part.items)
        return torch.arange(start, len(self.texts)), torch.as_tensor(np.asarray(part.targets))

    def statistics(self, inputs: torch.Tensor) -> tuple[list[float], list[float]]:
        return [], []  # token ids are not normalized

    def _normalization(self, normalize: dict, auto: list) -> tuple[list[float], list[float]]:
        return [], []

    def _prepare(self, raw: SourceData, protocol: dict, task: str | None,
                 workers: int | None) -> tuple[dict[str, Split], dict]:
        """Split (and carve) the texts, build the vocabulary on train, tokenize every split once."""
        splits, info = super()._prepare(raw, protocol, task, workers)
        texts = {name: [self.texts[i] for i in split.inputs.tolist()] for name, split in splits.items()}
        s = self.settings
        if s["tokenizer"] == "word":
            tokenizer, tokens = word_tokens(texts, s["vocab_size"], s["min_freq"])
        else:
            tokenizer = self.pretrained
            tokens = {name: token_ids(tokenizer, split_texts) for name, split_texts in texts.items()}
        pad_id = special_id(tokenizer, PAD_NAMES, "padding")
        unk_id = special_id(tokenizer, UNK_NAMES, "unknown-word")
        found = {}
        for name, split in splits.items():
            ids, lengths = pad(*tokens[name], s["max_length"], s["truncation"], pad_id)
            real = ids != pad_id
            found[name] = {"tokens": length_stats(lengths), "truncated": float((lengths > s["max_length"]).mean()),
                           "unk_rate": float((ids[real] == unk_id).mean()) if real.any() else 0.0,
                           "no_token": int((lengths == 0).sum())}
            splits[name] = Split(torch.from_numpy(ids), split.targets)
        serialized = tokenizer.to_str()
        info.update(input_shape=[s["max_length"]], tokenizer=serialized, pad_id=pad_id, unk_id=unk_id, text=found,
                    vocab_size=tokenizer.get_vocab_size(),
                    vocab_sha256=hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest())
        self.texts = []
        return splits, info

    def facts(self) -> dict[str, Any]:
        s = self.settings
        return {"tokenizer": s["tokenizer"],  # word: NFKC, lower-cased words and punctuation (tokenize.py)
                "vocab_size": self.info["vocab_size"], "vocab_sha256": self.info["vocab_sha256"],
                "pad_id": self.info["pad_id"], "unk_id": self.info["unk_id"], "max_length": s["max_length"],
                "truncation": s["truncation"], "per_split": self.info["text"]}

    def vocabulary(self) -> list[str]:
        """The tokens in id order."""
        return [tok for tok, _ in sorted(self.tokenizer().get_vocab().items(), key=lambda pair: pair[1])]

    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.info["tokenizer"])

    def transform(self, train: bool, channels_last: bool = False, device: torch.device | str = "cpu") -> TextBatches:
        dropout = float(self.augment.get("token_dropout") or 0.0) if train else 0.0
        return TextBatches(self.info["pad_id"], self.info["unk_id"], dropout)

    def loader(self, split: str | Split, batch_size: int, device: torch.device | str = "cpu", train: bool = False,
               seed: int = 0, channels_last: bool = False, augment: bool | None = None) -> TextLoader:
        part = self.splits[split] if isinstance(split, str) else split
        transform = self.transform(train if augment is None else augment, channels_last, device)
        return TextLoader(part, batch_size, transform, self.bucket, device=device, shuffle=train, seed=seed)
