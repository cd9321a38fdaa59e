"""Text: files read through `datasets`, tokenized once with a train-only vocabulary, batches trimmed and bucketed,
padding-invariant RNN/CNN models, word vectors, hub presets on local parquet copies, and bad input."""
from __future__ import annotations

import csv
import json
import random
from functools import partial
from pathlib import Path

import pytest
import torch

from conftest import job_dirs, read_json, run_cli
from input_fixtures import run_sections
from csc8607.data.text import TextData, TextLoader
from csc8607.data.tokenize import encode, word_tokenizer
from csc8607.data.text_files import load_newsgroups, load_text
from csc8607.errors import UserError
from csc8607.models.text import TextCNN, TextRNN

POSITIVE, NEGATIVE = "good great fun love".split(), "bad awful boring hate".split()
FILLER = "the a movie film plot it was and , .".split()
TINY = ["data.vocab_size=100", "data.min_freq=1", "model.embed_dim=16", "trainer.max_epochs=1",
        "trainer.batch_size=16", "trainer.threads=1"]


def review(label: str, rng: random.Random, words: int) -> str:
    text = [rng.choice(FILLER) for _ in range(words)]
    text.insert(rng.randrange(len(text) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
    return " ".join(text)


def write_reviews(root: Path, counts: dict[str, int], suffix: str = ".csv", seed: int = 0) -> Path:
    """train/test files of short labelled reviews (columns review, sentiment); lengths 2 to 40 words."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in counts.items():
        rows = [(review(label, rng, rng.randint(1, 40)), label) for label in (["pos", "neg"] * count)[:count]]
        with open(root / f"{split}{suffix}", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerow(["review", "sentiment"])
            writer.writerows(rows)
    return root


def write_parquet(path: Path, texts: list[str], labels: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": texts, "label": labels}), path)


def text_data(root: Path, **kwargs) -> TextData:
    source = partial(load_text, root=str(root), text_column=kwargs.pop("text_column", "review"),
                     label_column=kwargs.pop("label_column", "sentiment"))
    return TextData(source, **{"min_freq": 1, **kwargs})


def test_vocabulary_from_train_only_ids_lengths_and_carving(tmp_path: Path) -> None:
    root = write_reviews(tmp_path / "reviews", {"train": 40, "test": 10})
    with open(root / "test.csv", "a") as f:
        f.write('"zebra zebra good",pos\n')  # a word of the test split only
    data = text_data(root, max_length=12)
    meta = data.meta
    assert meta["modality"] == "text" and meta["task"] == "binary" and meta["num_outputs"] == 1
    assert meta["class_names"] == ["neg", "pos"] and meta["split_sizes"] == {"train": 36, "val": 4, "test": 11}
    assert meta["input_shape"] == [12] and meta["input_dtype"] == "int32" and meta["max_length"] == 12
    vocab = meta["vocabulary"]
    assert vocab[:2] == ["<pad>", "<unk>"] and "zebra" not in vocab and len(vocab) == meta["vocab_size"]
    ids = data.splits["test"].inputs[-1]
    assert ids[:3].tolist() == [1, 1, vocab.index("good")] and (ids[3:] == 0).all()  # <unk>, then padding
    facts = meta["input"]["per_split"]
    assert facts["test"]["unk_rate"] > 0 and facts["train"]["unk_rate"] == 0  # train words are all known
    assert 0 < facts["train"]["truncated"] < 1 and facts["train"]["tokens"]["max"] > 12
    again = text_data(root, max_length=12, cache_dir=str(tmp_path / "cache"))
    cached = text_data(root, max_length=12, cache_dir=str(tmp_path / "cache"))
    assert cached.meta["cache"]["hit"] and not again.meta["cache"]["hit"]
    assert torch.equal(cached.splits["train"].inputs, data.splits["train"].inputs)
    assert cached.meta["vocabulary"] == vocab and cached.meta["input"]["vocab_sha256"] == meta["input"]["vocab_sha256"]


def test_truncation_head_and_head_tail() -> None:
    tokenizer = word_tokenizer(["a b c d e f g h"], 100, 1)
    vocab = tokenizer.get_vocab()
    head, lengths = encode(tokenizer, ["a b c d e f g h", "c d"], 4, "head", 0)
    both, _ = encode(tokenizer, ["a b c d e f g h", "c d"], 4, "head_tail", 0)
    letters = {i: w for w, i in vocab.items()}
    assert [letters[i] for i in head[0]] == list("abcd") and [letters[i] for i in both[0]] == list("abgh")
    assert both[1].tolist() == [vocab["c"], vocab["d"], 0, 0] and lengths.tolist() == [8, 2]


def test_tsv_jsonl_joined_columns_and_integer_labels(tmp_path: Path) -> None:
    root = write_reviews(tmp_path / "tsv", {"train": 20, "validation": 6, "test": 6}, suffix=".tsv")
    (root / "outputs" / "run").mkdir(parents=True)  # other files beside the splits are never read
    (root / "outputs" / "run" / "test_metrics.json").write_text('{"accuracy": 1.0}\n')
    (root / "notes.csv").write_text("a,b\n1,2\n")
    data = text_data(root)
    assert data.meta["split_sizes"] == {"train": 20, "val": 6, "test": 6}
    lines = [json.dumps({"title": f"Title {i % 3}", "body": ("alpha " if i % 3 else "beta ") * 3, "topic": i % 3})
             for i in range(30)]
    (tmp_path / "news.jsonl").write_text("\n".join(lines) + "\n")
    news = TextData(partial(load_text, root=str(tmp_path / "news.jsonl"), text_column=["title", "body"],
                            label_column="topic"), min_freq=1, val_fraction=0.2, test_fraction=0.2)
    assert news.meta["class_names"] == ["0", "1", "2"] and news.meta["task"] == "multiclass"
    assert {"title", "alpha", "beta"} <= set(news.meta["vocabulary"])  # both columns were read


def test_batches_are_trimmed_and_bucketed() -> None:
    lengths = torch.tensor([3, 40] * 64)
    ids = (torch.arange(40)[None, :] < lengths[:, None]).int() * 5  # token 5, then padding (0)
    from csc8607.data.split import Split
    from csc8607.data.text import TextBatches

    split = Split(ids, torch.zeros(128, dtype=torch.long))
    plain = TextLoader(split, 16, TextBatches(0, 1), bucket=False, shuffle=True)
    bucketed = TextLoader(split, 16, TextBatches(0, 1), bucket=True, shuffle=True)
    widths = [x.shape[1] for x, _ in plain]
    assert max(widths) == 40 and all(w in (3, 40) for w in widths)
    short = [x.shape[1] for x, _ in bucketed]
    assert sorted(short) == [3] * 4 + [40] * 4  # each batch holds one length only: no padding paid
    seen = torch.cat([x[:, 0] for x, _ in bucketed])
    assert len(seen) == 128  # every example once per epoch
    dropout = TextBatches(0, 1, token_dropout=0.5)
    x = dropout.apply(ids[:8], dropout.draw(8, (8, 40), torch.Generator().manual_seed(0)))
    assert ((x == 1).sum() > 0) and (x[:, 3:][ids[:8, 3:] == 0] == 0).all() and x.shape[1] == 40


@pytest.mark.parametrize("model", [
    TextCNN(30, 0, 3, embed_dim=8, kernel_sizes=[2, 5], filters=4, dropout=0.0),
    TextRNN(30, 0, 3, embed_dim=8, hidden=6, layers=2, pooling="attention"),
    TextRNN(30, 0, 3, embed_dim=8, hidden=6, cell="lstm", pooling="last"),
    TextRNN(30, 0, 3, embed_dim=8, hidden=6, pooling="mean", bidirectional=False),
    TextRNN(30, 0, 3, embed_dim=8, hidden=6, pooling="max"),
], ids=["cnn", "gru-attention", "lstm-last", "gru-mean", "gru-max"])
def test_more_padding_gives_the_same_logits(model: torch.nn.Module) -> None:
    model.eval()
    ids = torch.tensor([[4, 9, 2, 7, 0, 0], [3, 0, 0, 0, 0, 0]])  # the second text is shorter than a kernel
    padded = torch.cat([ids, torch.zeros(2, 20, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(ids), model(padded), atol=1e-6)
        assert torch.isfinite(model(torch.zeros(2, 5, dtype=torch.long))).all()  # texts without tokens


def test_word_vectors_found_frozen_or_fine_tuned(tmp_path: Path) -> None:
    vocab = ["<pad>", "<unk>", "good", "bad", "movie"]
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1.0 2.0 3.0\nzebra 0 0 0\nbad -1.0 -2.0 -3.0\n")
    model = TextCNN(5, 0, 2, embeddings=str(glove), freeze_embeddings=True, vocabulary=vocab, kernel_sizes=[2])
    weight = model.embedding.embedding.weight
    assert model.embedding.found == 2 and weight.shape == (5, 3) and not weight.requires_grad
    assert weight[2].tolist() == [1.0, 2.0, 3.0] and weight[0].abs().sum() == 0
    tuned = TextRNN(5, 0, 2, embeddings=str(glove), vocabulary=vocab)
    assert tuned.embedding.embedding.weight.requires_grad and tuned.embedding.dim == 3
    with pytest.raises(UserError, match="does not exist"):
        TextCNN(5, 0, 2, embeddings=str(tmp_path / "nope.txt"), vocabulary=vocab)


@pytest.mark.parametrize("preset", ["imdb", "ag_news", "yelp_polarity"])
def test_hub_presets_read_local_parquet_copies(preset: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from test_configs import compose_with

    write_parquet(tmp_path / preset / "train.parquet", [f"great film {i}" if i % 2 else f"awful {i}"
                                                        for i in range(20)], [i % 2 for i in range(20)])
    write_parquet(tmp_path / preset / "test.parquet", ["great", "awful"] * 3, [1, 0] * 3)
    cfg = compose_with(f"data={preset}", f"data.root={tmp_path / preset}", "data.cache_dir=null", "data.min_freq=1")
    data = instantiate(cfg.data)
    assert data.meta["task"] == "binary" and data.meta["split_sizes"]["test"] == 6 and data.meta["name"] == preset
    assert cfg.data.source.path.endswith(preset) and data.meta["source"] == f"fichiers texte {tmp_path / preset}"


def test_newsgroups20_local_copy_and_offline_error(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from test_configs import compose_with

    topics = [i % 4 for i in range(24)]
    write_parquet(tmp_path / "news" / "train.parquet", [f"topic{t} words" for t in topics], topics)
    cfg = compose_with("data=newsgroups20", f"data.root={tmp_path / 'news'}", "data.cache_dir=null")
    assert instantiate(cfg.data).meta["num_outputs"] == 4
    with pytest.raises(UserError, match="not in data.root=.*point data.root at a local copy"):
        load_newsgroups(root=str(tmp_path / "empty"))


@pytest.mark.parametrize("kind,args,message", [
    ("file", {"text_column": "body"}, "has no column 'body' (columns: review, sentiment)"),
    ("file", {"label_column": "stars"}, "has no column 'stars' (columns: review, sentiment)"),
    ("empty", {}, "data row 2 has an empty text (3 such rows)"),
    ("one_label", {}, "has 1 class (pos)"),
    ("file", {"tokenizer": "/no/such/tokenizer.json"}, "data.tokenizer=/no/such/tokenizer.json does not exist"),
    ("file", {"max_length": 0}, "data.max_length=0 must be at least 1"),
])
def test_bad_text_input_is_one_error(kind: str, args: dict, message: str, tmp_path: Path) -> None:
    rows = {"file": "a good one,pos\nbad stuff,neg\n" * 4, "empty": "fine,pos\n  ,neg\nok,neg\n" * 3,
            "one_label": "fine,pos\nok,pos\n" * 4}[kind]
    (tmp_path / "train.csv").write_text("review,sentiment\n" + rows)
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        text_data(tmp_path, **args)


def test_text_models_train_and_evaluate_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    """text_cnn with GloVe-format word vectors through the data/baselines/sanity/smoke sections, evaluate.py and
    report.py; text_rnn trained and evaluated; a checkpoint evaluated with another preprocessing, or evaluated or
    resumed on files that now give another vocabulary, is refused; an offline hub preset is one error line."""
    from test_bad_input import composed, evaluate_in_process, refusal

    from csc8607.sections import run_section

    root = write_reviews(tmp_path / "reviews", {"train": 120, "test": 30})
    data = ["data=text_csv", f"data.root={root}", "data.text_column=review", "data.label_column=sentiment"]
    for folder in ("cnn", "rnn", "hub"):
        (tmp_path / folder).mkdir()
    glove = tmp_path / "glove.txt"  # 5 of the vocabulary's words, and one it does not have
    glove.write_text("".join(f"{w} {i} 0.5 -1 2\n" for i, w in enumerate(["good", "bad", "movie", "the", "fun",
                                                                         "zebra"])))
    results = run_sections(tmp_path / "cnn", *data, *TINY, "model=text_cnn", "model.filters=8",
                           f"model.embeddings={glove}", "data.augment.token_dropout=0.1")
    assert results["data"]["dataset"]["modality"] == "text" and results["data"]["batch_shape_matches_meta"]
    shown = results["data"]["example_texts"]["val"][0].split()
    assert shown and all(w in results["train"]["meta"]["vocabulary"] or w == "‹unk›" for w in shown)
    assert results["sanity"]["verdict"] == "PASS" and results["evaluate"]["metrics"]["accuracy"] >= 0
    for split in ("val", "test"):  # M0 of a binary task: the majority's expected accuracy and F1 (was NaN)
        got, want = (results["baselines"][split][k]["majority"] for k in ("measured", "expected"))
        assert got["accuracy"] == pytest.approx(want["accuracy"]) and got["f1"] == pytest.approx(want["f1"])
    vocab_size = results["train"]["meta"]["vocab_size"]
    assert results["sanity"]["pretrained"] == {"embedding": {"file": str(glove), "found": 5, "vocab_size": vocab_size,
                                                             "dim": 4, "frozen": False}}
    run_cli("report.py", cwd=tmp_path / "cnn")
    report = next((tmp_path / "cnn").rglob("report.md")).read_text()
    assert "texte (suites d'identifiants de jetons" in report and "longueur en jetons : moyenne" in report  # D1, D2
    assert "- val (neg) : « " in report or "- val (pos) : « " in report  # D10: decoded texts with their class
    assert "des textes tronqués à max_length, taux de `<unk>`" in report and "tokenizer `word` (NFKC, mots et " \
        "ponctuation en minuscules)" in report  # D5, D6
    assert "padding : chaque batch complété jusqu'à son texte le plus long (pas jusqu'à max_length), batchs de " \
        "train tirés parmi des textes de longueurs voisines" in report and "lower-cased" not in report  # D6 in French
    from csc8607.report import num

    found = f"fichier `glove.txt`) : 5 mots du vocabulaire sur {num(vocab_size)} trouvés ({num(500 / vocab_size, 3)} %)"
    assert report.count(found) == 2  # 2.2 and M1
    assert "`token_dropout = 0.1` (train uniquement)\n- `token_dropout` : une fraction des jetons réels" in report  # D8
    run_cli("train.py", *data, *TINY, "model=text_rnn", "model.hidden=8", cwd=tmp_path / "rnn")
    (job,) = job_dirs(tmp_path / "rnn" / "outputs")
    assert read_json(job / "metrics.json")["meta"]["vocab_size"] > 10
    ckpt = job / "checkpoints" / "best.ckpt"
    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache"))  # what the CLI runs cached is not reused
    evaluate_in_process([f"ckpt={ckpt}"], tmp_path / "e0")  # evaluate.py's CLI path: run_sections above
    assert read_json(tmp_path / "e0" / "test_metrics.json")["meta"]["vocabulary"][:2] == ["<pad>", "<unk>"]
    # evaluate.py composes the default data (digits): a text key is added with +
    code, err = refusal(lambda: evaluate_in_process([f"ckpt={ckpt}", "+data.min_freq=1000"], tmp_path / "e1"), capsys)
    assert code == 2 and err.count("error:") == 1 and "data.min_freq: 1 -> 1000" in err  # another preprocessing
    for split in ("train", "test"):  # the same rows and labels, one word renamed: another vocabulary, same size
        (root / f"{split}.csv").write_text((root / f"{split}.csv").read_text().replace("movie", "cinema"))
    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache2"))  # the cache is keyed by data.root, not its files
    code, err = refusal(lambda: evaluate_in_process([f"ckpt={ckpt}"], tmp_path / "e2"), capsys)
    assert code == 2 and err.count("error:") == 1 and f"the vocabulary built now ({vocab_size} tokens) is not the " \
        f"one checkpoint {ckpt} was trained with ({vocab_size} tokens)" in err, err
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
    before = {p: p.stat().st_mtime_ns for p in job.rglob("*") if p.is_file()}
    cfg = composed("config", [f"resume={job}", "trainer.max_epochs=2"])  # train it longer: refused the same way
    code, err = refusal(lambda: run_section(cfg, tmp_path / "e3"), capsys)
    assert code == 2 and err.count("error:") == 1 and "the vocabulary built now" in err, err
    assert {p: p.stat().st_mtime_ns for p in job.rglob("*") if p.is_file()} == before
    offline = run_cli("train.py", "data=ag_news", *TINY, "model=text_cnn", cwd=tmp_path / "hub", check=False)
    assert offline.returncode == 2 and "point data.root at a local copy" in offline.stderr.splitlines()[-1]


def test_a_local_tokenizer_json_is_used_as_is(tmp_path: Path) -> None:
    root = write_reviews(tmp_path / "reviews", {"train": 20, "test": 6})
    tokenizer = word_tokenizer(["good bad movie film"], 100, 1)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    data = text_data(root, tokenizer=str(tmp_path))  # its directory
    assert data.meta["vocabulary"] == [w for w, _ in sorted(tokenizer.get_vocab().items(), key=lambda p: p[1])]
    assert data.meta["input"]["per_split"]["train"]["unk_rate"] > 0.5  # its vocabulary, not one built from train
    assert data.meta["input"]["tokenizer"] == str(tmp_path)


def test_texts_split_together_match_the_saved_tokenizer_on_each_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The word tokenizer's regex pass over joined texts (chunks of 2 or 3 here) gives, text by text, what the saved
    `tokenizers` description (NFKC, lower-case, Whitespace split) gives; a pretrained word-level tokenizer's texts
    are encoded together too, a subword one's one by one."""
    from csc8607.data import tokenize
    from csc8607.data.tokenize import token_ids, word_tokens

    monkeypatch.setattr(tokenize, "CHUNK_CHARS", 30)
    texts = ["Hello, world!", "  ", "a\x1eb c", "don't STOP...", "É café naïve ﬁne x²", "हिन्दी भाषा", "日本語 😀👍 — ok",
             "x" * 3, "snake_case ‿ end"]
    tokenizer, tokens = word_tokens({"test": texts[:2], "train": texts + ["hello world"]}, 100, 1)
    flat, lengths = tokens["train"]
    alone = [tokenizer.encode(t.replace("\x1e", " "), add_special_tokens=False).ids for t in texts]
    assert lengths.tolist()[:-1] == [len(a) for a in alone] and flat.tolist()[: sum(map(len, alone))] == sum(alone, [])
    assert lengths[1] == 0 and lengths[2] == 3 and len(alone[5]) == 2  # empty; the separator is a space; marks kept
    vocab = tokenizer.get_vocab()
    assert vocab["<pad>"] == 0 and vocab["<unk>"] == 1 and vocab["hello"] == 2 and "fine" in vocab  # most frequent
    assert tokens["test"][0].tolist() == [vocab["hello"], vocab[","], vocab["world"], vocab["!"]]
    tokenizer.enable_truncation(2)  # a tokenizer.json may carry its own truncation: ours replaces it
    flat, lengths = token_ids(tokenizer, texts, chunk=4)  # the same tokenizer read as a pretrained tokenizer.json
    assert lengths.tolist() == [len(a) for a in alone] and flat.tolist() == sum(alone, [])
    from tokenizers import Tokenizer, models, pre_tokenizers

    pieces = Tokenizer(models.BPE({"<pad>": 0, "<unk>": 1, "h": 2, "i": 3, "hi": 4}, [("h", "i")], unk_token="<unk>"))
    pieces.pre_tokenizer = pre_tokenizers.Whitespace()
    flat, lengths = token_ids(pieces, ["hi hih", "ih"])  # not word-level: encoded one by one
    assert flat.tolist() == [4, 4, 2, 3, 2] and lengths.tolist() == [3, 2]


def test_newsgroups20_reads_scikit_learns_cache_in_data_root(tmp_path: Path) -> None:
    """The archive scikit-learn's fetcher caches (written here by its own load_files, as after a download)."""
    import codecs
    import pickle

    from sklearn.datasets import load_files
    from sklearn.datasets._twenty_newsgroups import CACHE_NAME, _pkl_filepath

    for split, count in (("train", 6), ("test", 2)):
        for group in ("sci.space", "rec.autos"):
            folder = tmp_path / "raw" / split / group
            folder.mkdir(parents=True)
            for i in range(count):
                body = f"orbit launch {i}" if group == "sci.space" else f"engine wheel {i}"
                (folder / str(i)).write_text(f"From: someone\nSubject: post {i}\n\n{body if i else '> quoted only'}\n")
    cache = {split: load_files(str(tmp_path / "raw" / split), encoding="latin1") for split in ("train", "test")}
    (tmp_path / "home").mkdir()
    archive = Path(_pkl_filepath(str(tmp_path / "home"), CACHE_NAME))
    archive.write_bytes(codecs.encode(pickle.dumps(cache), "zlib_codec"))
    raw = load_newsgroups(root=str(tmp_path / "home"))
    assert raw.class_names == ["rec.autos", "sci.space"] and len(raw.splits["train"]) == 10  # quote-only posts dropped
    assert raw.notes["empty_texts_dropped_train"] == 2 and "From:" not in raw.splits["train"].items[0]
    with pytest.raises(UserError, match="2 empty texts after removing headers, footers, quotes"):
        load_newsgroups(root=str(tmp_path / "home"), drop_empty=False)


def test_overfit_and_lr_finder_sections_on_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """M3 and M4 on text (in process): text_cnn memorizes 16 reviews (text subsets go through the text loader),
    and the LR range test runs its steps on trimmed token batches."""
    from test_bad_input import composed

    from csc8607.sections import run_section

    monkeypatch.setenv("CSC8607_CACHE", str(tmp_path / "cache"))
    root = write_reviews(tmp_path / "reviews", {"train": 60, "test": 10})
    data = ["data=text_csv", f"data.root={root}", "data.text_column=review", "data.label_column=sentiment",
            *TINY, "model=text_cnn", "model.filters=8", "model.dropout=0"]
    run_section(composed("config", [*data, "experiment=overfit", "overfit.num_samples=16", "overfit.max_epochs=60",
                                    "overfit.loss_threshold=0.05", "optim.lr=0.01"]), tmp_path / "overfit")
    overfit = read_json(tmp_path / "overfit" / "overfit.json")
    assert overfit["verdict"] == "PASS", overfit
    run_section(composed("config", [*data, "experiment=lr_finder", "lr_finder.iterations=12",
                                    "lr_finder.weight_decays=[0.0]"]), tmp_path / "lr")
    (curve,) = read_json(tmp_path / "lr" / "lr_finder.json")["curves"].values()
    assert curve["steps"] == 12 and len(curve["loss"]) == 12 and all(0 < x < 5 for x in curve["loss"])
    assert curve["lr"][0] == 1e-6 and curve["lr"][-1] == 1.0  # the whole LR range, on text batches
