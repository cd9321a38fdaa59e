"""Tokenization, once per dataset: the word tokenizer (NFKC, lower-case, words and punctuation; a vocabulary of the
train split) in one regex pass over many texts at a time, or a pretrained `tokenizer.json` run by the `tokenizers`
library; texts -> fixed-length int32 id arrays (head or head+tail truncation) and their true lengths."""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from csc8607.errors import UserError

SPECIALS = ("<pad>", "<unk>")
PAD_NAMES = ("<pad>", "[PAD]", "<PAD>")
UNK_NAMES = ("<unk>", "[UNK]", "<UNK>")
SEPARATOR = "\x1e"  # ASCII record separator: ends each text when texts are tokenized together
CHUNK_CHARS = 4_000_000  # characters of the texts joined for one regex pass (~1M tokens: ~60 MB of token strings)


@functools.lru_cache(maxsize=1)
def word_pattern() -> re.Pattern:
    """SEPARATOR, or a word (`\\w+`), or a run of other non-space characters: the `tokenizers` Whitespace split
    (`\\w+|[^\\w\\s]+`). Python's `\\w` lacks combining marks and connectors (a Hindi word would split at each
    vowel sign), so the Basic Multilingual Plane's marks, connector punctuation and joiners are added to it."""
    extra = [c for c in range(0x10000) if (unicodedata.category(chr(c))[0] == "M" or unicodedata.category(chr(c))
                                           == "Pc" or c in (0x200C, 0x200D)) and not re.match(r"\w", chr(c))]
    ranges, first = [], extra[0]
    for before, c in zip(extra, extra[1:] + [-1]):
        if c != before + 1:
            ranges.append(f"\\u{first:04x}-\\u{before:04x}")
            first = c
    letters = "\\w" + "".join(ranges)
    return re.compile(f"{SEPARATOR}|[{letters}]+|[^\\s{letters}]+")


def chunks(texts: list[str]) -> Iterator[list[str]]:
    """Consecutive runs of texts of about CHUNK_CHARS characters in all (at least one text each)."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text) + 1
        if size >= CHUNK_CHARS:
            yield texts[start : i + 1]
            start, size = i + 1, 0
    if start < len(texts):
        yield texts[start:]


def word_codes(texts: list[str], index: dict[str, int], counts: Counter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every text's words (NFKC, lower-cased) as codes in `index` (a new word gets the next code), end to end, and
    each text's word count; `counts` (the train split's) adds up each word's occurrences. A chunk of texts joined
    by SEPARATOR is split by one regex call: no Python loop over words."""
    end = index.setdefault(SEPARATOR, len(index))
    parts, lengths = [np.zeros(0, dtype=np.int32)], [np.zeros(0, dtype=np.int64)]
    for chunk in chunks(texts):
        joined = "".join(f"{t.replace(SEPARATOR, ' ')}{SEPARATOR}" for t in chunk)
        tokens = word_pattern().findall(unicodedata.normalize("NFKC", joined).lower())
        if counts is not None:
            counts.update(tokens)
        for word in set(tokens).difference(index):
            index[word] = len(index)
        codes = np.fromiter(map(index.__getitem__, tokens), dtype=np.int32, count=len(tokens))
        ends = np.flatnonzero(codes == end)
        if len(ends) != len(chunk):  # NFKC and lower() never make a SEPARATOR; kept as a guard
            raise RuntimeError(f"found {len(ends)} text ends in a chunk of {len(chunk)} texts")
        lengths.append(np.diff(ends, prepend=-1) - 1)
        parts.append(codes[codes != end])
    return np.concatenate(parts), np.concatenate(lengths)


def word_vocabulary(counts: Counter, vocab_size: int, min_freq: int) -> list[str]:
    """<pad> = 0, <unk> = 1, then the `vocab_size` - 2 most frequent words seen at least `min_freq` times (ties in
    alphabetical order, so the vocabulary depends on the texts only)."""
    kept = [w for w, n in counts.items() if n >= min_freq and w != SEPARATOR]
    return [*SPECIALS, *sorted(kept, key=lambda w: (-counts[w], w))[: vocab_size - len(SPECIALS)]]


def word_tokens(texts: dict[str, list[str]], vocab_size: int,
                min_freq: int) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The word tokenizer of the train split's vocabulary and each split's (token ids end to end, lengths); each text
    is split once (the codes of words seen first in val/test map to <unk>)."""
    index: dict[str, int] = {}
    counts: Counter = Counter()
    codes = {name: word_codes(split_texts, index, counts if name == "train" else None)
             for name, split_texts in sorted(texts.items(), key=lambda item: item[0] != "train")}
    vocabulary = word_vocabulary(counts, vocab_size, min_freq)
    to_id = np.full(len(index), SPECIALS.index("<unk>"), dtype=np.int32)
    to_id[[index[w] for w in vocabulary[len(SPECIALS):]]] = np.arange(len(SPECIALS), len(vocabulary))
    return saved_tokenizer(vocabulary), {name: (to_id[flat], lengths) for name, (flat, lengths) in codes.items()}


def word_tokenizer(texts: list[str], vocab_size: int, min_freq: int) -> Any:
    """The word tokenizer of these texts' vocabulary (see word_tokens)."""
    return word_tokens({"train": texts}, vocab_size, min_freq)[0]


def saved_tokenizer(vocabulary: list[str]) -> Any:
    """The `tokenizers` description of the word tokenizer (saved with the data, in meta and checkpoints): the
    vocabulary in id order, NFKC + lower-case, the Whitespace split (word_pattern's, up to rare characters)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocabulary)}, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
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
    """Texts -> (int32 ids (N, max_length) padded at the end with pad_id, full token counts before truncation)."""
    return pad(*token_ids(tokenizer, texts), max_length, truncation, pad_id)


def pad(flat: np.ndarray, lengths: np.ndarray, max_length: int, truncation: str,
        pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids end to end + each text's count -> (int32 ids (N, max_length) padded at the end, the counts).
    `head` keeps the first max_length tokens; `head_tail` the first half and the last half (the end of a
    review often carries its verdict)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    keep = np.minimum(lengths, max_length)
    row = np.repeat(np.arange(len(lengths)), keep)
    col = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)  # 0..keep_i - 1 in each row
    source = offsets[row] + col
    if truncation == "head_tail":
        head = max_length // 2
        tail = col >= head  # in truncated rows, positions past the head take the text's last tokens
        source = np.where(tail, offsets[row] + lengths[row] - (keep[row] - col), source)
    ids = np.full((len(lengths), max_length), pad_id, dtype=np.int32)
    ids[row, col] = flat[source]
    return ids, lengths


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}
