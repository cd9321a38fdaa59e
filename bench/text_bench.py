#!/usr/bin/env python
"""Text-path benchmark against a plain PyTorch reference (Python tokenization + padding to max_length in a
DataLoader), on synthetic texts (Zipf-distributed words, lengths log-uniform: 4 to 32 words for the tokenization
figure, 4 to 256 for the others; label = which of two marker words the text holds).

    python bench/text_bench.py [--texts 100000] [--train 2000] [--max-length 256] [--device cpu]

Prints, side by side: (1) tokenizing + building the vocabulary of `--texts` texts: ours (`tokenizers` WordLevel,
ids into one array) vs a Python loop (regex split, Counter, dict lookups); (2) one epoch of batches alone: our
TextLoader vs the reference DataLoader (tokenizing each text in __getitem__, padding in collate), and the model
step alone on a pre-made batch; (3) one training epoch of text_rnn with our length buckets vs padding every batch
to max_length, with the val accuracy each reaches. Not a test: the numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csc8607.data.split import Split  # noqa: E402
from csc8607.data.text import TextBatches, TextLoader  # noqa: E402
from csc8607.data.tokenize import encode, word_tokenizer  # noqa: E402
from csc8607.models.text import TextCNN, TextRNN  # noqa: E402

WORD = re.compile(r"\w+|[^\w\s]+")


def corpus(n: int, longest: int = 256, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]  # Zipf-like frequencies
    texts, labels = [], []
    for _ in range(n):
        length = int(math.exp(rng.uniform(math.log(4), math.log(longest))))
        text = rng.choices(words, weights, k=length)
        label = rng.randrange(2)
        text.insert(rng.randrange(length), "Bright" if label else "Dark")
        texts.append(" ".join(text) + " .")
        labels.append(label)
    return texts, labels


def python_vocab(texts: list[str], size: int) -> dict[str, int]:
    counts = Counter(tok for t in texts for tok in WORD.findall(t.lower()))
    return {w: i + 2 for i, (w, _) in enumerate(counts.most_common(size - 2))}


def python_ids(text: str, vocab: dict[str, int], max_length: int) -> list[int]:
    return [vocab.get(tok, 1) for tok in WORD.findall(text.lower())][:max_length]


class Reference(torch.utils.data.Dataset):
    """What a student writes: tokenize in __getitem__, pad to max_length in collate."""

    def __init__(self, texts: list[str], labels: list[int], vocab: dict[str, int], max_length: int) -> None:
        self.texts, self.labels, self.vocab, self.max_length = texts, labels, vocab, max_length

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return python_ids(self.texts[i], self.vocab, self.max_length), self.labels[i]

    def collate(self, batch: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(batch), self.max_length, dtype=torch.long)
        for row, (tokens, _) in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return ids, torch.tensor([label for _, label in batch])


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def epoch(model: torch.nn.Module, batches, device: str, train: bool = True) -> tuple[float, float]:
    """(seconds, accuracy) of one pass; trains with AdamW when `train`."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train(train)
    right = seen = 0
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with torch.set_grad_enabled(train):
            logits = model(x).squeeze(1)
            if train:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        right += int(((logits > 0).long() == y).sum())
        seen += len(y)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, right / seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    short, _ = corpus(args.texts, longest=32)
    t_ours, tokenizer = timed(word_tokenizer, short, 20000, 1)
    t_enc, _ = timed(encode, tokenizer, short, args.max_length, "head", 0)
    t_ref, vocab = timed(python_vocab, short, 20000)
    t_ref_ids, _ = timed(lambda: [python_ids(t, vocab, args.max_length) for t in short])
    print(f"(1) {args.texts} short texts ({sum(len(t.split()) for t in short) / len(short):.1f} words on average), "
          f"{torch.get_num_threads()} threads: tokenize + vocabulary: ours {t_ours + t_enc:.2f} s (vocab "
          f"{t_ours:.2f} + ids {t_enc:.2f}); Python reference {t_ref + t_ref_ids:.2f} s")

    texts, labels = corpus(args.train + 2000)  # mixed lengths, 4 to 256 words
    tokenizer = word_tokenizer(texts, 20000, 1)
    ids, _ = encode(tokenizer, texts, args.max_length, "head", 0)
    vocab = python_vocab(texts, 20000)
    print(f"{len(texts)} texts of mixed lengths ({sum(len(t.split()) for t in texts) / len(texts):.1f} words on "
          f"average), device {args.device}")

    n = args.train
    targets = torch.tensor(labels[:n])
    split = Split(torch.from_numpy(ids[:n]), targets)
    ours = TextLoader(split, args.batch, TextBatches(0, 1), bucket=True, shuffle=True, device=args.device)
    reference_set = Reference(texts[:n], labels[:n], vocab, args.max_length)
    reference = torch.utils.data.DataLoader(reference_set, args.batch, shuffle=True, collate_fn=reference_set.collate)
    loader_ours, _ = timed(lambda: sum(len(y) for _, y in ours))
    loader_ref, _ = timed(lambda: sum(len(y) for _, y in reference))
    model = TextCNN(tokenizer.get_vocab_size(), 0, 1).to(args.device)
    batch = next(iter(ours))
    epoch(model, [batch] * 2, args.device)  # warm-up: first calls allocate and pick kernels
    step_time, _ = timed(epoch, model, [batch] * 5, args.device)
    per_step = step_time / 5
    print(f"(2) one epoch of batches ({len(ours)} batches): ours {loader_ours:.2f} s, reference DataLoader "
          f"{loader_ref:.2f} s; model step (text_cnn, batch {tuple(batch[0].shape)}) {per_step * 1000:.1f} ms "
          f"-> ours/step = {loader_ours / len(ours) / per_step:.3f} of a step")

    val = Split(torch.from_numpy(ids[n : n + 2000]), torch.tensor(labels[n : n + 2000]))
    results = {}
    for name, bucket, trim in (("buckets", True, True), ("pad to max_length", False, False)):
        torch.manual_seed(0)
        model = TextRNN(tokenizer.get_vocab_size(), 0, 1, embed_dim=64, hidden=64).to(args.device)
        train = TextLoader(split, args.batch, TextBatches(0, 1), bucket=bucket, shuffle=True, device=args.device)
        if not trim:
            train.transform.apply = lambda x, params: x  # every batch keeps max_length columns
        epoch(model, [next(iter(train))], args.device)  # warm-up
        seconds, _ = epoch(model, train, args.device)
        _, accuracy = epoch(model, TextLoader(val, 256, TextBatches(0, 1), bucket=False, device=args.device),
                            args.device, train=False)
        results[name] = (seconds, accuracy)
    (t_b, a_b), (t_p, a_p) = results.values()
    print(f"(3) text_rnn epoch on {n} texts: buckets {t_b:.2f} s (val acc {a_b:.3f}), pad to max_length {t_p:.2f} s "
          f"(val acc {a_p:.3f}) -> {t_p / t_b:.2f}x")


if __name__ == "__main__":
    main()
