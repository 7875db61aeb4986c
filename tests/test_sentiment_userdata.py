"""Text classification on your own data (`python -m training.sentiment --train FILE`): every file
format, any label set, a non-English language, each bad file's error (file, line, column) with no
bundle written, and a 5-class model trained here, served by POST /sentiment in its own labels and
scored alike by `python -m app.score`. All files are tiny fixtures made in tmp_path."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient

from app.core.bundle import load_bundle, read_manifest
from app.core.settings import Settings
from app.core.text import run_pieces, tokenize_uncached
from app.main import create_app
from app.score.__main__ import main as score_main
from app.sentiment.bundle import SentimentSection
from app.sentiment.preprocess import Preprocessor
from training.sentiment.__main__ import cli
from training.sentiment.__main__ import main as train_main
from training.sentiment.dataset import load_files, read_labelled, stratified_split
from training.sentiment.train import class_weights, classification_metrics
from training.userdata import DataFileError

# Five-class Portuguese reviews: words that give each class away, so two epochs learn something.
LABELS_PT = ["muito negativo", "negativo", "neutro", "positivo", "muito positivo"]
WORDS_PT = {
    "muito negativo": ["péssimo", "horrível", "detestei"],
    "negativo": ["fraco", "chato", "aborrecido"],
    "neutro": ["normal", "mediano", "razoável"],
    "positivo": ["bom", "agradável", "gostei"],
    "muito positivo": ["excelente", "maravilhoso", "adorei"],
}
PT_SAMPLES = [
    "O filme é péssimo, não vale o bilhete!",
    "Disse-lhe que o enredo era d'água e sal :) mas gostou.",
    "Custou R$ 1.000,50 — caro demais... (sério?)",
    "O Sr. Silva viu-o às 20h30 em www.exemplo.com.br",
    "«Excelente» realização; actores muito bons.",
]
DE_SAMPLES = [
    "Der Film war z.B. nicht schlecht, aber zu lang!",
    "Die Schauspieler (u.a. Müller) spielten großartig :-)",
    "Am 3. Oktober kostete das Ticket 12,50 € – zu teuer.",
]


def rows_pt(n_per_class: int, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for label in LABELS_PT:
        for i in range(n_per_class):
            word = WORDS_PT[label][i % 3]
            filler = rng.choice(["o filme", "a série", "este livro", "o final"])
            rows.append({"text": f"{filler} é {word} , {word} mesmo .", "label": label})
    rng.shuffle(rows)  # type: ignore[arg-type]
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ---------------------------------------------------------------- reading every format


ROWS = [
    {"text": "good film", "label": "pos"},
    {"text": "bad film", "label": "neg"},
    {"text": "so-so film", "label": "mid"},
]


@pytest.mark.parametrize(
    ("suffix", "writer"),
    [
        (".csv", write_csv),
        (".tsv", lambda p, r: write_csv(p, r, "\t")),
        (".jsonl", write_jsonl),
        (".parquet", write_parquet),
    ],
)
def test_every_format_reads_the_same_examples(tmp_path: Path, suffix: str, writer: Any) -> None:
    path = writer(tmp_path / f"train{suffix}", ROWS)
    examples = read_labelled(path, "text", "label")
    assert [(e.text, e.label) for e in examples] == [(r["text"], r["label"]) for r in ROWS]
    # lines as a user sees them: the header is line 1 in CSV/TSV; JSONL and Parquet count rows
    assert [e.line for e in examples] == ([2, 3, 4] if suffix in (".csv", ".tsv") else [1, 2, 3])


def test_integer_labels_in_numeric_order_and_other_columns(tmp_path: Path) -> None:
    rows = [{"review": f"text {i}", "stars": s} for i, s in enumerate([10, 2, 1, 2, 10, 1, 2, 10, 1, 2])]
    for path in (write_jsonl(tmp_path / "t.jsonl", rows), write_parquet(tmp_path / "t.parquet", rows)):
        data = load_files(
            name="x", train=path, dev=None, test=None, unlabelled=None, text_column="review",
            label_column="stars", fmt=None, dev_fraction=0.3, seed=1,
        )  # fmt: skip
        assert data.labels == ["1", "2", "10"]  # integers as names, "2" before "10"
        assert sorted(e.label for e in data.train + data.dev) == sorted(str(r["stars"]) for r in rows)


def test_dev_split_is_seeded_and_stratified() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 20
    train, dev = stratified_split(labels, 3, 0.1, seed=7)
    assert stratified_split(labels, 3, 0.1, seed=7) == (train, dev)
    assert stratified_split(labels, 3, 0.1, seed=8) != (train, dev)
    assert sorted(train + dev) == list(range(100))
    assert [sum(labels[i] == c for i in dev) for c in range(3)] == [5, 3, 2]


def test_multiclass_metrics_and_class_weights() -> None:
    y = [0, 0, 1, 1, 2, 2]
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == round(4 / 6, 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["b"] == {"precision": round(2 / 3, 5), "recall": 1.0, "f1": 0.8, "support": 2}
    assert m["macro_f1"] == round((0.5 + 0.8 + round(2 / 3, 5)) / 3, 5)
    assert "precision" not in m  # the top-level binary figures only for two classes
    assert class_weights([0, 0, 0, 1], 2).tolist() == [pytest.approx(2 / 3), 2.0]


# ---------------------------------------------------------------- bad files: clear error, nothing written


def _fail(tmp_path: Path, *argv: str | Path) -> DataFileError:
    model_dir = tmp_path / "models"
    with pytest.raises(DataFileError) as err:
        train_main([*map(str, argv), "--name", "bad", "--model-dir", str(model_dir), "--quick"])
    assert not model_dir.exists(), "a run that fails on its data must write nothing"
    return err.value


GOOD = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}] * 3


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"review": "x", "label": "a"}])
    err = _fail(tmp_path, "--train", path)
    assert (err.path, err.line) == (path, 1)
    assert str(err).startswith(f"{path}:1: ")
    assert "no column 'text'" in err.message
    assert "'review'" in err.message


def test_empty_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [*GOOD, {"text": "  ", "label": "pos"}])
    err = _fail(tmp_path, "--train", path)
    assert (err.path, err.line, err.column, err.message) == (path, 8, "text", "empty text")
    assert str(err) == f"{path}:8: column 'text': empty text"


def test_empty_label(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [*GOOD, {"text": "fine", "label": None}])
    err = _fail(tmp_path, "--train", path)
    assert (err.line, err.column, err.message) == (7, "label", "empty label")


def test_one_class_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"t{i}", "label": "pos"} for i in range(5)])
    err = _fail(tmp_path, "--train", path)
    assert (err.path, err.line, err.column) == (path, 2, "label")
    assert "every row has the label 'pos'" in err.message
    assert "at least two classes" in err.message


def test_too_few_rows_for_a_dev_part(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", GOOD)  # three rows a class: 10% of three rounds to none
    err = _fail(tmp_path, "--train", path)
    assert err.path == path
    assert "too few rows" in err.message
    assert "--dev" in err.message


def test_test_label_unseen_in_train(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", GOOD)
    test = write_csv(tmp_path / "test.csv", [GOOD[0], {"text": "meh", "label": "mid"}])
    err = _fail(tmp_path, "--train", train, "--test", test)
    assert (err.path, err.line, err.column) == (test, 3, "label")
    assert "label 'mid' is not in the training file" in err.message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"text,label\ngood film,pos\ncaf\xe9 film,neg\n")
    err = _fail(tmp_path, "--train", path)
    assert (err.line, err.column) == (3, 4)
    assert "0xe9 is not UTF-8" in err.message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    assert "the file is empty" in _fail(tmp_path, "--train", path).message


def test_cli_prints_the_error_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command's log handlers would outlive this test's captured stderr.
    monkeypatch.setattr("training.sentiment.__main__.setup_logging", lambda task: tmp_path / "log")
    path = write_csv(tmp_path / "t.csv", [*GOOD, {"text": "", "label": "pos"}])
    assert cli(["--train", str(path), "--name", "x", "--model-dir", str(tmp_path / "m"), "--quick"]) == 2
    assert f"error: {path}:8: column 'text': empty text" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- a non-English tokenizer


@pytest.mark.parametrize(("language", "samples"), [("pt", PT_SAMPLES), ("de", DE_SAMPLES)])
def test_cached_runs_equal_spacy_for_other_languages(language: str, samples: list[str]) -> None:
    """The run cache's premise (a text's tokens are its whitespace runs' tokens side by side)
    holds for these languages unless a run says it needs the whole text."""
    whole = 0
    for text in samples:
        pieces = [run_pieces(run, language) for run in text.split()]
        if any(contextual for _, contextual in pieces):
            continue
        whole += 1
        joined = [piece for run, _ in pieces for piece, _ in run]
        assert joined == [t.text for t in tokenize_uncached(text, language)], text
    assert whole >= 2  # the comparison really ran


def test_tokenizer_that_does_not_cut_at_whitespace_is_never_cached() -> None:
    # Chinese is segmented by characters, not whitespace runs: each run asks for the whole text.
    assert run_pieces("今天天气很好", "zh")[1] is True
    assert run_pieces("hello", "en") == ((("hello", 0),), False)


# ---------------------------------------------------------------- train, serve, score: 5 classes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny 5-class Portuguese model trained from CSV files through the command's own code."""
    tmp = tmp_path_factory.mktemp("pt5")
    train = write_csv(tmp / "train.csv", rows_pt(8, seed=1))
    test = write_jsonl(tmp / "test.jsonl", rows_pt(2, seed=2))
    model_dir = tmp / "models"
    # A name of its own: /sentiment serves it by its manifest's task.
    argv = [
        "--train", train, "--test", test, "--name", "reviews_pt", "--language", "pt",
        "--model-dir", model_dir, "--embedding", "none", "--embedding-dim", "8", "--hidden", "8",
        "--cell", "lstm", "--head", "attention", "--epochs", "2", "--no-ablation", "--dev-fraction", "0.25",
    ]  # fmt: skip
    result = train_main([str(a) for a in argv])
    return {"tmp": tmp, "model_dir": model_dir, "result": result, "argv": [str(a) for a in argv]}


@pytest.fixture(scope="module")
def client(trained: dict[str, Any]) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=trained["model_dir"], models="reviews_pt")  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages={"sentiment": "app.sentiment"})) as c:
        yield c


def test_bundle_records_labels_language_and_report(trained: dict[str, Any]) -> None:
    path = trained["result"].path
    assert path == trained["model_dir"] / "reviews_pt" / "1.0.0"
    m = read_manifest(path)
    assert m.task == "sentiment"
    assert sorted(m.labels) == sorted(LABELS_PT)
    assert m.labels == sorted(LABELS_PT)  # a stable order: the same file gives the same order
    assert m.preprocessing["language"] == "pt"
    assert m.preprocessing["tokenizer"] == "spacy.blank('pt') tokenizer"
    assert m.outputs[0].shape == ["batch", 5]
    assert m.headline.split.startswith("reviews_pt test (10")
    assert {b["name"] for b in m.metrics["baselines"]} == {"majority class", "TF-IDF + logistic regression"}
    assert m.metrics["test"]["n"] == 10
    assert set(m.data["label_distribution"]) == {"train", "dev", "test"}
    report = (path / "REPORT.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Data", "## Options tried", "## Dev curve", "## Test", "## Baselines",
                    "## Time and machine"):  # fmt: skip
        assert heading in report
    assert "TF-IDF + logistic regression" in report
    assert "muito positivo" in report


def test_served_answers_in_its_own_five_labels(client: TestClient) -> None:
    r = client.post("/sentiment", json={"texts": ["o filme é excelente , excelente mesmo ."]})
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert set(pred["probabilities"]) == set(LABELS_PT)
    assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get)
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-5
    models = client.get("/models").json()
    assert "labels come from the model's bundle" in json.dumps(client.get("/openapi.json").json())
    (info,) = models["models"]
    assert (info["name"], info["task"], info["default"]) == ("reviews_pt", "sentiment", True)
    assert info["labels"] == sorted(LABELS_PT)
    assert (r.json()["model"], r.json()["version"]) == ("reviews_pt", "1.0.0")


def test_bulk_scoring_agrees_with_the_api(trained: dict[str, Any], client: TestClient) -> None:
    texts = [r["text"] for r in rows_pt(1, seed=3)] + PT_SAMPLES
    src = write_jsonl(trained["tmp"] / "in.jsonl", [{"text": t} for t in texts])
    out = trained["tmp"] / "out.jsonl"
    with redirect_stdout(StringIO()):
        assert score_main(["sentiment", str(src), str(out), "--model-dir", str(trained["model_dir"]),
                           "--model", "reviews_pt", "--no-progress"]) == 0  # fmt: skip
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    api = client.post("/sentiment", json={"texts": texts}).json()["predictions"]
    assert len(got) == len(api) == len(texts)
    for g, expected in zip(got, api, strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected
        assert g["label"] in LABELS_PT


def test_preprocessor_fast_path_equals_spacy_in_portuguese(trained: dict[str, Any]) -> None:
    pre = Preprocessor(load_bundle(trained["result"].path))
    assert pre.language == "pt"
    for text in PT_SAMPLES * 2:  # twice: the second pass comes from the run cache
        fast, spacy_tokens = pre.prepare_text(text), tokenize_uncached(text, "pt")
        reference = pre.prepare(spacy_tokens)  # the same head+tail cut of spaCy's own tokens
        assert fast.n_tokens == len(spacy_tokens), text
        assert (fast.tokens, fast.ids.tolist()) == (reference.tokens, reference.ids.tolist()), text


def test_section_pairs_tokenizer_with_language() -> None:
    base = {
        "tokenizer": "spacy.blank('pt') tokenizer", "language": "pt", "lowercase": True,
        "vocab_artifact": "vocab", "vocab_size": 4, "pad_id": 0, "unk_id": 1, "spacy_version": "3",
        "html_breaks": "spaces", "max_length": 4, "truncation": "head+tail", "head_tokens": 1,
        "tail_tokens": 3,
    }  # fmt: skip
    assert SentimentSection.model_validate(base).language == "pt"
    with pytest.raises(ValueError, match="is not language 'pt'"):
        SentimentSection.model_validate({**base, "tokenizer": "spacy.blank('en') tokenizer"})
    # bundles made before the field existed are English
    legacy = {k: v for k, v in base.items() if k != "language"} | {"tokenizer": "spacy.blank('en') tokenizer"}
    assert SentimentSection.model_validate(legacy).language == "en"


def test_rerun_not_better_on_dev_keeps_the_bundle_force_writes_the_next_version(
    trained: dict[str, Any],
) -> None:
    again = train_main(trained["argv"])  # same seed, same data: the same dev figure, not better
    assert again.path is None
    folder = trained["model_dir"] / "reviews_pt"
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == ["1.0.0"]
    forced = train_main([*trained["argv"], "--force"])
    assert forced.path == trained["model_dir"] / "reviews_pt" / "1.1.0"


def test_no_test_file_says_so(tmp_path: Path) -> None:
    train = write_parquet(tmp_path / "train.parquet", rows_pt(6, seed=4))
    argv = ["--train", train, "--name", "notest", "--language", "pt", "--model-dir", tmp_path / "m",
            "--embedding", "none", "--no-ablation", "--quick", "--version", "2.0.0"]  # fmt: skip
    result = train_main([str(a) for a in argv])
    assert result.path == tmp_path / "m" / "notest" / "2.0.0"
    m = read_manifest(result.path)
    assert "test" not in m.metrics
    assert "no test file" in m.headline.split
    report = (result.path / "REPORT.md").read_text(encoding="utf-8")
    assert "## Test (none)" in report
    assert "No test file was given, so there is no test figure" in report
    lstm_row = next(line for line in report.splitlines() if line.startswith("| LSTM (this bundle)"))
    assert lstm_row.endswith("|  |  |")  # dev figures only, never a dev figure in the test columns


def test_imdb_preset_runs_through_the_same_path(tmp_path: Path) -> None:
    """No data arguments: IMDB's layout read into the same Dataset (a tiny fake IMDB here)."""
    data_dir = tmp_path / "imdb"
    data_dir.mkdir()
    words = {"pos": "great wonderful film", "neg": "awful boring film"}
    for split in ("train", "test"):
        for label, text in words.items():
            rows = [{"id": i, "rating": 9 if label == "pos" else 2, "label": label, "text": f"{text} {i}"}
                    for i in range(20)]  # fmt: skip
            with gzip.open(data_dir / f"{split}_{label}.jsonl.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in rows)
    with gzip.open(data_dir / "unsup.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": 0, "rating": 0, "label": "unsup", "text": "film"}) + "\n")
    result = train_main([
        "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"),
        "--model-dir", str(tmp_path / "m"),
        "--embedding", "none", "--cell", "gru", "--head", "final", "--hidden", "4", "--embedding-dim", "4",
        "--epochs", "1", "--no-ablation", "--no-readme",
    ])  # fmt: skip
    m = read_manifest(result.path)
    assert result.path == tmp_path / "m" / "sentiment" / "1.0.0"
    assert m.labels == ["negative", "positive"]
    assert m.data["counts"] == {"train": 36, "dev": 4, "test": 40}
    assert set(m.metrics["test"]) >= {"accuracy", "precision", "recall", "f1", "macro_f1"}


def test_choice_on_dev_over_word_vectors_with_class_weights(tmp_path: Path) -> None:
    """Without --embedding the run tries GloVe (a tiny vectors file here), word2vec trained on
    the training texts plus --unlabelled, and none; the best on dev is trained in full."""
    rows = rows_pt(6, seed=5)
    vocab = sorted({w for r in rows for w in r["text"].split()})
    rng = np.random.default_rng(0)
    glove = tmp_path / "vectors.txt"
    glove.write_text(
        "".join(f"{w} " + " ".join(f"{v:.3f}" for v in rng.normal(size=6)) + "\n" for w in vocab)
    )
    extra = tmp_path / "more.txt"
    extra.write_text("".join(f"{r['text']}\n" for r in rows_pt(4, seed=6)), encoding="utf-8")
    argv = ["--train", write_csv(tmp_path / "t.csv", rows), "--name", "w", "--language", "pt",
            "--model-dir", tmp_path / "m", "--glove", glove, "--unlabelled", extra, "--class-weights",
            "--cell", "gru", "--head", "final", "--hidden", "4", "--embedding-dim", "6", "--epochs", "1",
            "--ablation-epochs", "1", "--w2v-epochs", "1", "--w2v-min-count", "1",
            "--dev-fraction", "0.25"]  # fmt: skip
    result = train_main([str(a) for a in argv])
    m = read_manifest(result.path)
    rows_tried = m.metrics["ablation"]["rows"]
    assert [r["embedding"] for r in rows_tried] == ["glove50", "word2vec", "none"]
    assert {(r["cell"], r["head"]) for r in rows_tried} == {("gru", "final")}
    best = max(rows_tried, key=lambda r: r["val_accuracy"])["embedding"]
    assert m.architecture["embedding_source"] == best
    assert m.training["choice"].startswith("chosen on dev accuracy (3 runs)")
    assert m.training["class_weights"] is True
    tfidf = next(b for b in m.metrics["baselines"] if b["name"].startswith("TF-IDF"))
    assert tfidf["class_weight"] == "balanced"
    assert "## Options tried" in (result.path / "REPORT.md").read_text(encoding="utf-8")

    w2v = train_main([str(a) for a in [*argv, "--embedding", "word2vec", "--force"]])
    corpus = read_manifest(w2v.path).data["embedding"]["word2vec_training"]["corpus"]
    assert corpus.startswith("the training file's 30 texts + 20 unlabelled")


def test_vectors_vocab_and_frozen_embeddings(tmp_path: Path) -> None:
    """--vectors-vocab adds the vectors file's words no training text has, with their vectors;
    --freeze-embeddings keeps every vector as it was; --report-copy copies REPORT.md."""
    rows = rows_pt(4, seed=7)
    rng = np.random.default_rng(1)
    extra_words = ["inédito", "sublime"]  # in the vectors file, in no training text
    words = [*extra_words, *sorted({w for r in rows for w in r["text"].split()})]
    glove = tmp_path / "vectors.txt"
    glove.write_text(
        "".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=5)) + "\n" for w in words)
    )
    copy = tmp_path / "reports" / "w.md"
    argv = ["--train", write_csv(tmp_path / "t.csv", rows), "--name", "w", "--language", "pt",
            "--model-dir", tmp_path / "m", "--glove", glove, "--embedding", "glove50", "--vectors-vocab", "2",
            "--freeze-embeddings", "--no-search", "--hidden", "4", "--epochs", "1",
            "--report-copy", copy, "--dev-fraction", "0.25"]  # fmt: skip
    result = train_main([str(a) for a in argv])
    bundle = load_bundle(result.path)
    vocab = bundle.read_lines("vocab")
    assert vocab[-2:] == extra_words
    weights = torch.jit.load(str(bundle.artifact("torchscript"))).state_dict()
    table = next(v for k, v in weights.items() if k.endswith("embedding.weight")).numpy()
    vectors = {line.split(" ")[0]: np.array(line.split(" ")[1:], dtype=np.float32)
               for line in glove.read_text().splitlines()}  # fmt: skip
    for word in (*extra_words, "excelente"):
        np.testing.assert_allclose(table[vocab.index(word)], vectors[word], atol=1e-6)
    assert copy.read_text(encoding="utf-8") == (result.path / "REPORT.md").read_text(encoding="utf-8")


def test_vectors_vocab_words_read_as_unk_under_other_embeddings(tmp_path: Path) -> None:
    rows = rows_pt(4, seed=8)
    glove = tmp_path / "vectors.txt"
    glove.write_text("inédito 0.1 0.2 0.3\nsublime 0.4 0.5 0.6\n")
    argv = ["--train", write_csv(tmp_path / "t.csv", rows), "--name", "u", "--language", "pt",
            "--model-dir", tmp_path / "m", "--glove", glove, "--embedding", "none", "--embedding-dim", "3",
            "--vectors-vocab", "2", "--freeze-embeddings", "--no-search", "--hidden", "4", "--epochs", "1",
            "--dev-fraction", "0.25"]  # fmt: skip
    bundle = load_bundle(train_main([str(a) for a in argv]).path)
    vocab = bundle.read_lines("vocab")
    weights = torch.jit.load(str(bundle.artifact("torchscript"))).state_dict()
    table = next(v for k, v in weights.items() if k.endswith("embedding.weight")).numpy()
    assert vocab[-2:] == ["inédito", "sublime"]
    for word in ("inédito", "sublime"):
        np.testing.assert_array_equal(table[vocab.index(word)], table[vocab.index("<unk>")])
    assert not np.array_equal(table[vocab.index("excelente")], table[vocab.index("<unk>")])
