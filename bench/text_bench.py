#!/usr/bin/env python
"""Text-path benchmark against a plain PyTorch reference (Python tokenization + padding to max_length in a
DataLoader), on synthetic texts (Zipf-distributed words, lengths log-uniform: 4 to 32 words for the tokenization
figure, 4 to 256 for the others; label = which of two marker words the text holds, so a model can learn it).

    python bench/text_bench.py [--texts 100000] [--train 1000] [--epochs 3] [--seeds 2] [--device cpu]

Prints, each next to its target: (1) tokenizing + building the vocabulary of `--texts` short texts (target
<= 10 s on 2 cores): ours (csc8607.data.tokenize.word_tokens: one regex pass over joined texts, ids padded into
one array) vs the Python reference (a regex split per text, Counter, dict lookups); (2) a training epoch of
text_cnn fed by our TextLoader vs the same batches made beforehand (the model step alone): target >= 0.95, and
the reference DataLoader's ratio; (3) text_rnn trained `--epochs` epochs from `--seeds` seeds with our length
buckets (batches trimmed to their longest text) vs every batch padded to max_length: the training time of each
and the val accuracy each reaches (target: >= 1.5x faster, accuracies within --tolerance). Full size: under
4 minutes on 2 CPU cores. Not a test: the numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csc8607.data.split import Split  # noqa: E402
from csc8607.data.text import TextBatches, TextLoader  # noqa: E402
from csc8607.data.tokenize import pad, word_tokens  # noqa: E402
from csc8607.models.text import TextCNN, TextRNN  # noqa: E402

WORD = re.compile(r"\w+|[^\w\s]+")


MARKERS = (["Dark", "grim", "bleak"], ["Bright", "sunny", "vivid"])  # label 0 / label 1 words


def corpus(n: int, longest: int = 256, seed: int = 0) -> tuple[list[str], list[int]]:
    """`n` texts of Zipf-distributed filler words, log-uniform lengths (4 to `longest` words), each holding about one
    marker word of its label per 12 words (at least one), at random places: learnable at every length."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]  # Zipf-like frequencies
    texts, labels = [], []
    for _ in range(n):
        length = int(math.exp(rng.uniform(math.log(4), math.log(longest))))
        text = rng.choices(words, weights, k=length)
        label = rng.randrange(2)
        for _ in range(max(1, length // 12)):
            text.insert(rng.randrange(len(text)), rng.choice(MARKERS[label]))
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


def epoch(model: torch.nn.Module, batches, device: str, optimizer: torch.optim.Optimizer | None = None
          ) -> tuple[float, float]:
    """(seconds, accuracy) of one pass over `batches`; a training pass when an optimizer is given."""
    model.train(optimizer is not None)
    right = seen = 0
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with torch.set_grad_enabled(optimizer is not None):
            logits = model(x).squeeze(1)
            if optimizer is not None:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        right += int(((logits > 0).long() == y).sum())
        seen += len(y)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, right / seen


def ids_of(texts: list[str], max_length: int) -> tuple[torch.Tensor, int]:
    """Our path: texts -> (N, max_length) token ids (vocabulary of all of them), and the vocabulary size."""
    tokenizer, tokens = word_tokens({"train": texts}, 20000, 1)
    return torch.from_numpy(pad(*tokens["train"], max_length, "head", 0)[0]), tokenizer.get_vocab_size()


def tokenize_figure(args: argparse.Namespace) -> None:
    short, _ = corpus(args.texts, longest=32)
    t_ours, _ = timed(ids_of, short, args.max_length)
    t_ref, vocab = timed(python_vocab, short, 20000)
    t_ref_ids, _ = timed(lambda: [python_ids(t, vocab, args.max_length) for t in short])
    print(f"(1) {args.texts} short texts ({sum(len(t.split()) for t in short) / len(short):.1f} words on average), "
          f"{torch.get_num_threads()} threads: tokenize + vocabulary + ids: ours {t_ours:.2f} s, Python reference "
          f"{t_ref + t_ref_ids:.2f} s (vocab {t_ref:.2f} + ids {t_ref_ids:.2f}); target <= 10 s: "
          f"{'ok' if t_ours <= 10 else 'MISSED'}", flush=True)


def loader_figure(args: argparse.Namespace, texts: list[str], labels: list[int], ids: torch.Tensor,
                  vocab_size: int) -> None:
    """A training epoch fed by the loader vs the same batches made beforehand (the model step alone)."""
    n = args.train
    ours = TextLoader(Split(ids[:n], torch.tensor(labels[:n])), args.batch, TextBatches(0, 1), bucket=True,
                      shuffle=True, device=args.device)
    reference_set = Reference(texts[:n], labels[:n], python_vocab(texts, 20000), args.max_length)
    torch.manual_seed(0)
    reference = torch.utils.data.DataLoader(reference_set, args.batch, shuffle=True, collate_fn=reference_set.collate)
    model = TextCNN(vocab_size, 0, 1, embed_dim=64, filters=64).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    epoch(model, list(ours)[:2], args.device, optimizer)  # warm-up: first calls allocate and pick kernels
    ratios = {}
    for name, loader in (("ours", ours), ("reference DataLoader", reference)):
        torch.manual_seed(1)
        made = list(loader)
        times: dict[str, list[float]] = {"fed": [], "alone": []}
        for repeat in range(args.repeats):  # alternated pairs, each order in turn: the noise hits both alike
            for kind in (("fed", "alone") if repeat % 2 == 0 else ("alone", "fed")):
                torch.manual_seed(1)  # the reference's shuffle: the same batches again (ours: fixed by its seed)
                times[kind].append(epoch(model, loader if kind == "fed" else made, args.device, optimizer)[0])
        ratios[name] = (statistics.median(times["fed"]), statistics.median(times["alone"]))
    (fed, alone), (ref_fed, ref_alone) = ratios.values()
    print(f"(2) text_cnn training epoch ({len(ours)} batches, medians of {args.repeats}): fed by our TextLoader "
          f"{fed:.2f} s, the same batches "
          f"made beforehand {alone:.2f} s -> {alone / fed:.3f} of the model step's speed (target >= 0.95: "
          f"{'ok' if alone / fed >= 0.95 else 'MISSED'}); reference DataLoader (padded to {args.max_length}) "
          f"{ref_fed:.2f} s vs {ref_alone:.2f} s -> {ref_alone / ref_fed:.3f}", flush=True)


class PadToMaxLength(TextBatches):
    """Every batch keeps all max_length columns (what padding in the DataLoader's collate gives)."""

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return x


def bucket_figure(args: argparse.Namespace, labels: list[int], ids: torch.Tensor, vocab_size: int) -> None:
    """text_rnn trained the same number of epochs, from the same seeds, with buckets vs padded to max_length."""
    n = args.train
    split = Split(ids[:n], torch.tensor(labels[:n]))
    val = TextLoader(Split(ids[n:], torch.tensor(labels[n:])), 256, TextBatches(0, 1), bucket=False,
                     device=args.device)
    results: dict[str, list[tuple[float, float]]] = {"buckets": [], "pad to max_length": []}
    warm = TextRNN(vocab_size, 0, 1, embed_dim=32, hidden=32).to(args.device)  # first calls allocate, pick kernels
    epoch(warm, [(split.inputs[: args.batch], split.targets[: args.batch])], args.device,
          torch.optim.AdamW(warm.parameters()))
    for seed in range(args.seeds):
        for name, batches in (("buckets", TextBatches(0, 1)), ("pad to max_length", PadToMaxLength(0, 1))):
            torch.manual_seed(seed)
            model = TextRNN(vocab_size, 0, 1, embed_dim=32, hidden=32, dropout=0.0).to(args.device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
            train = TextLoader(split, args.batch, batches, bucket=name == "buckets", shuffle=True, seed=seed,
                               device=args.device)
            seconds = 0.0
            for number in range(args.epochs):
                train.set_epoch(number)
                seconds += epoch(model, train, args.device, optimizer)[0]
            results[name].append((seconds, epoch(model, val, args.device)[1]))
        (t_b, a_b), (t_p, a_p) = results["buckets"][-1], results["pad to max_length"][-1]
        print(f"    seed {seed}: buckets {t_b:.1f} s (val acc {a_b:.3f}), pad to max_length {t_p:.1f} s (val acc "
              f"{a_p:.3f})", flush=True)
    time_b, time_p = (sum(t for t, _ in results[k]) for k in results)
    acc_b, acc_p = (sum(a for _, a in results[k]) / args.seeds for k in results)
    speedup, equal = time_p / time_b, abs(acc_b - acc_p) <= args.tolerance
    print(f"(3) text_rnn, {args.epochs} epochs on {n} texts x {args.seeds} seeds: buckets {time_b:.1f} s, pad to "
          f"max_length {time_p:.1f} s -> {speedup:.2f}x (target >= 1.5: {'ok' if speedup >= 1.5 else 'MISSED'}); "
          f"mean val acc {acc_b:.3f} vs {acc_p:.3f} (equal within {args.tolerance}: {'ok' if equal else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=100_000, help="short texts of the tokenization figure")
    parser.add_argument("--train", type=int, default=1000, help="training texts of mixed lengths")
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.03, help="largest val accuracy gap called equal")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=6, help="timed epochs per kind in figure (2), medians")
    parser.add_argument("--only", choices=["tokenize", "loader", "buckets"], default=None)
    args = parser.parse_args()
    if args.only in (None, "tokenize"):
        tokenize_figure(args)
    if args.only == "tokenize":
        return
    texts, labels = corpus(args.train + args.val, seed=1)  # mixed lengths, 4 to 256 words
    ids, vocab_size = ids_of(texts, args.max_length)
    print(f"{len(texts)} texts of mixed lengths ({sum(len(t.split()) for t in texts) / len(texts):.1f} words on "
          f"average), max_length {args.max_length}, device {args.device}", flush=True)
    if args.only in (None, "loader"):
        loader_figure(args, texts, labels, ids, vocab_size)
    if args.only in (None, "buckets"):
        bucket_figure(args, labels, ids, vocab_size)


if __name__ == "__main__":
    main()
