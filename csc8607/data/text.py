"""Text: tokenized once (the `tokenizers` library) into int32 (N, max_length) token ids padded with <pad>, cached;
batches are trimmed to their longest text, optionally drawn from buckets of similar lengths.

The vocabulary is built from the train split only (after carving), saved with the cached arrays (info.json) and
in meta (so in every checkpoint), with its SHA-256 that evaluate.py compares to refuse a different one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc8607.data.core import Dataset, SourceData
from csc8607.data.loader import BatchLoader
from csc8607.data.split import Encoded, Split
from csc8607.errors import UserError

SPECIALS = ("<pad>", "<unk>")
PAD_NAMES = ("<pad>", "[PAD]", "<PAD>")
UNK_NAMES = ("<unk>", "[UNK]", "<UNK>")
SEPARATOR = "\x1e"  # ASCII record separator: ends each text when texts are encoded together
BUCKET_POOL = 50  # batches whose texts are sorted by length together (more = less padding, less randomness)


def word_tokenizer(texts: list[str], vocab_size: int, min_freq: int) -> Any:
    """Lower-cased words and punctuation (`\\w+|[^\\w\\s]+`), the `vocab_size` most frequent train words seen at
    least `min_freq` times, <pad> = 0 and <unk> = 1."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_freq, special_tokens=list(SPECIALS),
                                        show_progress=False)
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


def pretrained_tokenizer(where: str) -> Any:
    """A `tokenizer.json` file, a directory holding one, or a hub name (needs the network or the HF cache)."""
    from tokenizers import Tokenizer

    path = Path(where).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception as err:  # noqa: BLE001 - the library raises a bare Exception on a bad file
            why = str(err).splitlines()[0][:160]
            raise UserError(f"data.tokenizer={where}: not a tokenizer.json ({why})") from None
    if where.startswith(("/", ".", "~")) or path.parent != Path("."):
        raise UserError(f"data.tokenizer={where} does not exist (a tokenizer.json file or its directory, or 'word')")
    try:
        return Tokenizer.from_pretrained(where)
    except Exception as err:  # noqa: BLE001 - offline, unknown name: fixed the same way
        raise UserError(f"data.tokenizer={where}: cannot load it from the Hugging Face hub ({str(err)[:120]}); "
                        "point data.tokenizer at a local tokenizer.json") from None


def special_id(tokenizer: Any, names: tuple[str, ...], what: str) -> int:
    for name in names:
        found = tokenizer.token_to_id(name)
        if found is not None:
            return int(found)
    raise UserError(f"the tokenizer has no {what} token (looked for {', '.join(names)})")


def token_ids(tokenizer: Any, texts: list[str], chunk: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Every text's token ids, end to end, and each text's count. Word-level: the texts are joined `chunk` at a
    time, each followed by SEPARATOR (a special token of a copy of the tokenizer, matched before normalization, so
    nothing merges across it): one Encoding per chunk instead of one per text halves the time on short texts.
    Other tokenizers (whose first token may depend on what precedes it) encode each text alone."""
    from tokenizers import AddedToken, Tokenizer

    if type(tokenizer.model).__name__ != "WordLevel":
        alone = Tokenizer.from_str(tokenizer.to_str())
        alone.no_truncation()
        alone.no_padding()
        encodings = [e.ids for e in alone.encode_batch_fast(texts, add_special_tokens=False)]
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        return np.fromiter((i for e in encodings for i in e), dtype=np.int64, count=int(lengths.sum())), lengths
    joiner = Tokenizer.from_str(tokenizer.to_str())
    joiner.no_truncation()
    joiner.no_padding()
    joiner.add_special_tokens([AddedToken(SEPARATOR, normalized=False, special=True)])
    separator = joiner.token_to_id(SEPARATOR)
    joined = ["".join(f"{t.replace(SEPARATOR, ' ')}{SEPARATOR}" for t in texts[i : i + chunk])
              for i in range(0, len(texts), chunk)]
    parts = [np.asarray(e.ids, dtype=np.int64) for e in joiner.encode_batch_fast(joined, add_special_tokens=False)]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(ids == separator)
    if len(ends) != len(texts):  # cannot happen with a separator the texts no longer contain; kept as a guard
        raise RuntimeError(f"joined encoding found {len(ends)} text ends for {len(texts)} texts")
    lengths = np.diff(np.concatenate([[-1], ends])) - 1
    return ids[ids != separator], lengths


def encode(tokenizer: Any, texts: list[str], max_length: int, truncation: str,
           pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> (int32 ids (N, max_length) padded at the end with pad_id, full token counts before truncation).
    `head` keeps the first max_length tokens; `head_tail` the first half and the last half (the end of a
    review often carries its verdict)."""
    flat, lengths = token_ids(tokenizer, texts)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    keep = np.minimum(lengths, max_length)
    row = np.repeat(np.arange(len(texts)), keep)
    col = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)  # 0..keep_i - 1 in each row
    source = offsets[row] + col
    if truncation == "head_tail":
        head = max_length // 2
        tail = col >= head  # in truncated rows, positions past the head take the text's last tokens
        source = np.where(tail, offsets[row] + lengths[row] - (keep[row] - col), source)
    ids = np.full((len(texts), max_length), pad_id, dtype=np.int32)
    ids[row, col] = flat[source]
    return ids, lengths


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}


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
        self.meta["preprocess"]["padding"] = ("each batch trimmed to its longest text"
                                              + (", train batches drawn from length buckets" if self.bucket else ""))

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
            tokenizer = word_tokenizer(texts["train"], s["vocab_size"], s["min_freq"])
        else:
            tokenizer = self.pretrained
        pad_id = special_id(tokenizer, PAD_NAMES, "padding")
        unk_id = special_id(tokenizer, UNK_NAMES, "unknown-word")
        found = {}
        for name, split in splits.items():
            ids, lengths = encode(tokenizer, texts[name], s["max_length"], s["truncation"], pad_id)
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
        return {"tokenizer": "word (lower-cased words and punctuation)" if s["tokenizer"] == "word" else s["tokenizer"],
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
