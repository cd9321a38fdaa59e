"""Tokenization with the `tokenizers` library: a word-level tokenizer trained on the train texts, or a pretrained
`tokenizer.json`; texts -> fixed-length int32 id arrays (head or head+tail truncation) and their true lengths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from csc8607.errors import UserError

SPECIALS = ("<pad>", "<unk>")
PAD_NAMES = ("<pad>", "[PAD]", "<PAD>")
UNK_NAMES = ("<unk>", "[UNK]", "<UNK>")
SEPARATOR = "\x1e"  # ASCII record separator: ends each text when texts are encoded together


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
