"""`python -m training.ner` on a user's own column files: tag schemes detected and converted,
column choice, every kind of bad file refused at its file, line and column with no bundle
written, the replace rule, and a tiny Portuguese model trained, served (raw texts tokenised with
spaCy's Portuguese rules, and tokens) and bulk-scored with its own entity types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.bundle import read_manifest
from app.core.settings import Settings
from app.core.text import tokenize_blank
from app.main import create_app
from app.ner.bundle import NerSection
from tests.score_support import read_jsonl, score, write_jsonl
from training.ner.__main__ import main, parser, plan
from training.ner.data import CONLL2003, ColumnFormat, detect_scheme, read_splits, read_tagged
from training.userdata import DataFileError

NER_ONLY = {"ner": "app.ner"}
WORDS = ["A", "Maria", "Silva", "citou", "a", "Lei", "8.666", "Lei", "9.784", "em", "Recife", "."]
# The entities every scheme below encodes: two laws touching, so IOB1/IOB2/BIOES need their B-.
SPANS = [(1, 3, "PESSOA"), (5, 7, "LEGISLACAO"), (7, 9, "LEGISLACAO"), (10, 11, "LOCAL")]
BIOES = ["O", "B-PESSOA", "E-PESSOA", "O", "O", "B-LEGISLACAO", "E-LEGISLACAO", "B-LEGISLACAO"]
BIOES += ["E-LEGISLACAO", "O", "S-LOCAL", "O"]
SCHEME_TAGS = {
    "IOB1": [
        "O",
        "I-PESSOA",
        "I-PESSOA",
        "O",
        "O",
        "I-LEGISLACAO",
        "I-LEGISLACAO",
        "B-LEGISLACAO",
        "I-LEGISLACAO",
        "O",
        "I-LOCAL",
        "O",
    ],
    "IOB2": [
        "O",
        "B-PESSOA",
        "I-PESSOA",
        "O",
        "O",
        "B-LEGISLACAO",
        "I-LEGISLACAO",
        "B-LEGISLACAO",
        "I-LEGISLACAO",
        "O",
        "B-LOCAL",
        "O",
    ],
    "BIOES": BIOES,
}


def conll(words: list[str], tags: list[str], extra: str = "") -> str:
    return "".join(f"{w}{extra} {t}\n" for w, t in zip(words, tags, strict=True)) + "\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- schemes and columns


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES"])
def test_each_scheme_is_detected_and_converted_to_bioes(tmp_path: Path, scheme: str) -> None:
    path = write(tmp_path / "train.txt", "-DOCSTART- O\n\n" + conll(WORDS, SCHEME_TAGS[scheme]) * 2)
    data, detected = read_splits({"train": path}, ColumnFormat(), "train")
    assert detected == scheme
    assert len(data["train"]) == 2  # -DOCSTART- skipped, blank lines split
    s = data["train"][0]
    assert s.words == WORDS
    assert s.tags == SCHEME_TAGS[scheme]  # kept as written
    assert s.spans() == SPANS
    assert s.bioes() == BIOES


def test_io_merges_touching_entities_of_one_type(tmp_path: Path) -> None:
    tags = [t.replace("B-", "I-").replace("E-", "I-").replace("S-", "I-") for t in BIOES]
    path = write(tmp_path / "io.txt", conll(WORDS, tags))
    data, detected = read_splits({"train": path}, ColumnFormat(), "train")
    assert detected == "IO"
    assert data["train"][0].spans() == [(1, 3, "PESSOA"), (5, 9, "LEGISLACAO"), (10, 11, "LOCAL")]
    assert data["train"][0].bioes()[5:9] == ["B-LEGISLACAO", "I-LEGISLACAO", "I-LEGISLACAO", "E-LEGISLACAO"]


def test_a_forced_scheme_reads_ambiguous_files_its_way(tmp_path: Path) -> None:
    # I- only: IO or IOB1 without B- (the same spans); forced IOB1 is accepted and recorded
    path = write(tmp_path / "t.txt", conll(["Ana", "Costa", "."], ["I-PESSOA", "I-PESSOA", "O"]))
    data, detected = read_splits({"train": path}, ColumnFormat(scheme="IOB1"), "train")
    assert (detected, data["train"][0].scheme, data["train"][0].bioes()) == (
        "IOB1",
        "IOB1",
        [*BIOES[1:3], "O"],
    )


def test_token_and_tag_columns_are_chosen(tmp_path: Path) -> None:
    four = "".join(f"{w} NN I-NP {t}\n" for w, t in zip(WORDS, SCHEME_TAGS["IOB2"], strict=True))
    path = write(tmp_path / "four.txt", four)
    for fmt in (ColumnFormat(0, 3), ColumnFormat(0, -1)):
        (s,) = read_tagged(path, fmt)
        assert (s.words, s.tags) == (WORDS, SCHEME_TAGS["IOB2"])
    # tab-separated, tag first: a tab file keeps spaces inside a token
    tabbed = write(tmp_path / "tabs.tsv", "B-PESSOA\tMaria da\t1\nI-PESSOA\tSilva\t2\nO\t.\t3\n")
    (s,) = read_tagged(tabbed, ColumnFormat(token_column=1, tag_column=0))
    assert (s.words, s.tags) == (["Maria da", "Silva", "."], ["B-PESSOA", "I-PESSOA", "O"])
    with pytest.raises(DataFileError, match="is neither O nor"):
        read_tagged(tabbed, ColumnFormat(token_column=0, tag_column=1))  # "Maria da" is no tag


def test_conll_preset_is_the_same_reader() -> None:
    run = plan(parser().parse_args([]), parser())
    assert run.preset
    assert run.fmt == CONLL2003
    assert run.name == "ner"
    assert [p.name for p in run.files.values()] == ["eng.train", "eng.testa", "eng.testb"]
    assert (run.dev, run.test) == ("testa", "testb")
    fixture = Path(__file__).parent / "fixtures" / "ner" / "conll_sample.txt"
    assert detect_scheme([read_tagged(fixture, CONLL2003)]) == "IOB1"


def test_detection_weighs_the_files_together(tmp_path: Path) -> None:
    # An IOB2 file whose one I- starts an entity is a broken IOB2 file, not an IOB1 one.
    good = read_tagged(write(tmp_path / "a", conll(WORDS, SCHEME_TAGS["IOB2"])))
    odd = read_tagged(write(tmp_path / "b", conll(["Ana", "."], ["I-PESSOA", "O"])))
    assert detect_scheme([good, odd]) == "IOB2"
    assert detect_scheme([odd]) == "IO"


# ---------------------------------------------------------------- bad files: message, place, no bundle

GOOD = conll(WORDS, SCHEME_TAGS["IOB2"])
BAD_TRAIN: list[tuple[str, str | bytes, str, tuple[int, int] | None]] = [
    # id, training file, message, (line, column)
    ("missing column", "Maria B-PESSOA\nSilva\n", "1 column(s) where line 1 has 2", (2, 6)),
    ("extra column", "Maria B-PESSOA\nSilva I-PESSOA x\n", "3 column(s) where line 1 has 2", (2, 16)),
    ("one column", "Maria\nSilva\n", "the token and the tag would be the same column", (1, 6)),
    ("empty token", "Maria\tB-PESSOA\n\tO\n", "empty token", (2, 1)),
    ("empty tag", "Maria\tB-PESSOA\nSilva\t\n", "empty tag", (2, 7)),
    ("tag without prefix", "Maria PESSOA\n", "tag 'PESSOA' is neither O nor", (1, 7)),
    ("tag without type", "Maria B-\n", "tag 'B-' is neither O nor", (1, 7)),
    ("unknown prefix", "Maria X-PESSOA\n", "tag 'X-PESSOA' is neither O nor", (1, 7)),
    ("IOB2 type change", GOOD + "Ana B-LOCAL\nCosta I-PESSOA\n", "I-PESSOA after B-LOCAL", (15, 7)),
    (
        "BIOES unclosed",
        conll(WORDS, BIOES) + "Ana B-PESSOA\nfoi O\n",
        "O after B-PESSOA: the entity",
        (15, 5),
    ),
    (
        "BIOES sentence end",
        conll(WORDS, BIOES) + "Ana B-PESSOA\n",
        "the sentence ends inside an entity",
        (14, 5),
    ),
    ("BIOES E without B", conll(WORDS, BIOES) + "Ana O\nCosta E-PESSOA\n", "E-PESSOA after O", (15, 7)),
    ("not UTF-8", b"Maria B-PESSOA\nS\xe3o B-LOCAL\n", "byte 0xe3 is not UTF-8", (2, 2)),
    ("empty file", "", "the file is empty", None),
    ("only markers", "-DOCSTART- -X- O O\n\n", "no tokens", None),
    ("no entities", "Maria O\n", "no entities: every tag is O", None),
]


def run_cli(tmp_path: Path, *extra: str | Path) -> int:
    return main([str(a) for a in ("--model-dir", tmp_path / "models", "--embeddings", "none", *extra)])


def assert_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], rc: int, where: str) -> None:
    assert rc == 2
    err = capsys.readouterr().err
    assert f"error: {where}" in err, err
    models = tmp_path / "models"
    assert not models.exists() or not any(models.rglob("*")), "a bad file must leave no bundle"


@pytest.mark.parametrize(
    ("train", "message", "place"), [c[1:] for c in BAD_TRAIN], ids=[c[0] for c in BAD_TRAIN]
)
def test_bad_training_file_names_file_line_column_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    train: str | bytes,
    message: str,
    place: tuple[int, int] | None,
) -> None:
    path = write(tmp_path / "train.txt", train)
    dev = write(tmp_path / "dev.txt", GOOD)
    rc = run_cli(tmp_path, "--train", path, "--dev", dev, "--name", "bad", "--language", "pt")
    where = f"{path}:{place[0]}:{place[1]}: " if place else f"{path}: "
    assert_refused(tmp_path, capsys, rc, where + message)


def test_test_entity_type_unseen_in_train_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write(tmp_path / "train.txt", GOOD)
    dev = write(tmp_path / "dev.txt", GOOD)
    test = write(tmp_path / "test.txt", GOOD + "Em O\n12/03/2018 B-TEMPO\n")
    rc = run_cli(
        tmp_path, "--train", train, "--dev", dev, "--test", test, "--name", "bad", "--language", "pt"
    )
    assert_refused(
        tmp_path, capsys, rc, f"{test}:15:12: entity type 'TEMPO' does not occur in the training file"
    )


def test_bad_dev_file_and_forced_scheme_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write(tmp_path / "train.txt", GOOD)
    dev = write(tmp_path / "dev.txt", GOOD + "Ana O\nCosta I-PESSOA\n")
    rc = run_cli(tmp_path, "--train", train, "--dev", dev, "--name", "bad")
    assert_refused(tmp_path, capsys, rc, f"{dev}:15:7: I-PESSOA after O: an entity starts with B-PESSOA")
    bioes = write(tmp_path / "bioes.txt", conll(WORDS, BIOES))
    rc = run_cli(tmp_path, "--train", bioes, "--dev", bioes, "--name", "bad", "--scheme", "IOB2")
    assert_refused(tmp_path, capsys, rc, f"{bioes}:3:7: E-PESSOA cannot occur: IOB2 has no E- tags")


def test_bad_unlabelled_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write(tmp_path / "train.txt", GOOD)
    text = write(tmp_path / "more.txt", "Uma frase.\nOutra fras\xe9.\n".encode("latin-1"))
    rc = run_cli(tmp_path, "--train", train, "--dev", train, "--name", "bad", "--unlabelled", text)
    assert_refused(tmp_path, capsys, rc, f"{text}:2:11: byte 0xe9 is not UTF-8")


def test_section_ties_the_tokenizer_to_the_language() -> None:
    from training.ner.data import Vocab
    from training.ner.export import section

    vocab = Vocab(["<pad>", "<unk>", "a"], ["<pad>", "<unk>", "a"])
    pt = section(vocab, "pt", "IOB2").model_dump()
    assert pt["tokenizer"] == "spacy.blank('pt') tokenizer"
    assert pt["language"] == "pt"
    with pytest.raises(ValueError, match="for language 'pt' this service tokenises with"):
        NerSection.model_validate({**pt, "tokenizer": section(vocab).tokenizer})
    legacy = section(vocab).model_dump()
    del legacy["language"]  # bundles from before the field: English, CoNLL rules
    assert NerSection.model_validate(legacy).language == "en"


# ---------------------------------------------------------------- a Portuguese model, trained and served

PEOPLE = [["João", "Silva"], ["Maria", "Souza"], ["Pedro", "Alves"], ["Ana", "Costa"]]
ORGS = [["Supremo", "Tribunal", "Federal"], ["Ministério", "Público"]]
LAWS = [["Lei", "8.666"], ["Lei", "9.784"], ["Decreto", "7.892"]]
PLACES = [["Recife"], ["Brasília"], ["Salvador"]]


def sentence(i: int) -> tuple[list[str], list[str]]:
    parts: list[tuple[list[str], str]] = [
        (PEOPLE[i % 4], "PESSOA"),
        (["recorreu", "ao"], "O"),
        (ORGS[i % 2], "ORGANIZACAO"),
        (["com", "base", "na"], "O"),
        (LAWS[i % 3], "LEGISLACAO"),
        (["em"], "O"),
        (PLACES[i % 3], "LOCAL"),
        (["."], "O"),
    ]
    words, tags = [], []
    for ws, kind in parts:
        words += ws
        tags += ["O"] * len(ws) if kind == "O" else [f"B-{kind}"] + [f"I-{kind}"] * (len(ws) - 1)
    return words, tags


def corpus(n: int, start: int = 0) -> str:
    return "".join(conll(*sentence(i)) for i in range(start, start + n))


TINY = ["--hidden", "16", "--batch-size", "4", "--lr", "0.02", "--epochs", "12", "--patience", "0"]
TINY += [
    "--vector-dim",
    "8",
    "--w2v-epochs",
    "2",
    "--language",
    "pt",
    "--seed",
    "3",
    "--word-dropout",
    "0.05",
]


@pytest.fixture(scope="module")
def pt_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pt")
    files = {
        "train": write(root / "train.conll", corpus(24)),
        "dev": write(root / "dev.conll", corpus(6, start=24)),
        "test": write(root / "test.conll", corpus(6, start=30)),
        "unlabelled": write(root / "more.txt", "O Tribunal decidiu em Brasília.\nA Lei 8.666 foi citada.\n"),
    }
    model_dir = root / "models"
    # A name of its own: /ner serves it by its manifest's task, chosen as the only model.
    args = ["--model-dir", model_dir, "--name", "lener", *TINY, "--embeddings", "word2vec"]
    args += [f"--{k}={v}" for k, v in files.items()]
    assert main([str(a) for a in args]) == 0
    return {**files, "models": model_dir, "args": [str(a) for a in args]}


@pytest.fixture(scope="module")
def pt_client(pt_model: dict[str, Any]) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=pt_model["models"], models="lener")  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages=NER_ONLY)) as c:
        yield c


TEXT = "Maria Souza recorreu ao Supremo Tribunal Federal com base na Lei 9.784 em Salvador."
EXPECTED = [
    ("Maria Souza", "PESSOA"),
    ("Supremo Tribunal Federal", "ORGANIZACAO"),
    ("Lei 9.784", "LEGISLACAO"),
    ("Salvador", "LOCAL"),
]


def test_bundle_records_its_types_language_scheme_and_report(pt_model: dict[str, Any]) -> None:
    bundle = pt_model["models"] / "lener" / "1.0.0"
    m = read_manifest(bundle)
    types = ["LEGISLACAO", "LOCAL", "ORGANIZACAO", "PESSOA"]
    assert m.labels == ["O"] + [f"{p}-{t}" for t in types for p in "BIES"]
    assert m.preprocessing["language"] == "pt"
    assert m.preprocessing["tokenizer"] == "spacy.blank('pt') tokenizer"
    assert m.preprocessing["source_scheme"] == "IOB2"
    assert m.data["entity_types"] == {"LEGISLACAO": 24, "LOCAL": 24, "ORGANIZACAO": 24, "PESSOA": 24}
    assert "more.txt" in m.data["embeddings"]["source"]
    assert m.data["embeddings"]["words"] > 0
    assert set(m.metrics["test"]["per_type"]) == set(types)
    assert m.headline.split == "test.conll (test)"
    raw = m.metrics["raw_text"]
    assert raw["sentences"] == 6
    assert raw["sentences_cut_differently"] == 0
    assert raw["texts"]["f1"] == raw["tokens"]["f1"] == m.metrics["test"]["overall"]["f1"]
    assert len(m.training["history"]) == 12
    assert "machine" in m.training
    report = (bundle / "REPORT.md").read_text(encoding="utf-8")
    for heading in (
        "## Data",
        "## Options",
        "## dev F1 per epoch",
        "## Test per type",
        "## Raw text",
        "## Time",
    ):
        assert heading in report
    assert "| LEGISLACAO | 24 | 6 | 6 |" in report


def test_served_answers_use_the_bundles_types(pt_client: TestClient) -> None:
    (info,) = pt_client.get("/models").json()["models"]
    assert (info["name"], info["task"], info["default"]) == ("lener", "ner", True)
    assert set(info["labels"]) == {"PESSOA", "ORGANIZACAO", "LEGISLACAO", "LOCAL"}
    assert "S-LEGISLACAO" in info["manifest"]["labels"]
    assert info["manifest"]["preprocessing"]["language"] == "pt"
    r = pt_client.post("/ner", json={"texts": [TEXT], "return_tags": True})
    assert r.status_code == 200, r.text
    assert (r.json()["model"], r.json()["version"]) == ("lener", "1.0.0")
    result = r.json()["results"][0]
    # raw text is cut by spaCy's Portuguese rules
    assert [t["text"] for t in result["tokens"]] == [t.text for t in tokenize_blank(TEXT, "pt")]
    assert [(e["text"], e["label"]) for e in result["entities"]] == EXPECTED
    for e in result["entities"]:
        assert TEXT[e["start"] : e["end"]] == e["text"]
    words, _ = sentence(1)
    r = pt_client.post("/ner", json={"tokens": [words], "return_tags": True})
    tags = [t["tag"] for t in r.json()["results"][0]["tokens"]]
    assert tags[:2] == ["B-PESSOA", "E-PESSOA"]
    assert tags[-2:] == ["S-LOCAL", "O"]


def test_bulk_scoring_agrees_with_the_api(
    pt_model: dict[str, Any], pt_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(pt_model["models"]))
    monkeypatch.setenv("MODELS", "lener")
    words, _ = sentence(2)
    src = write_jsonl(tmp_path / "docs.jsonl", [{"text": TEXT}, {"tokens": words}])
    score("ner", src, tmp_path / "out.jsonl", "--model", "lener", "--option", "return_tags=true")
    got = read_jsonl(tmp_path / "out.jsonl")
    texts = pt_client.post("/ner", json={"texts": [TEXT], "return_tags": True}).json()["results"]
    pre = pt_client.post("/ner", json={"tokens": [words], "return_tags": True}).json()["results"]
    for g, expected in zip(got, [texts[0], pre[0]], strict=True):
        assert {k: v for k, v in g.items() if k not in ("id", "row")} == expected
    assert {e["label"] for e in got[0]["entities"]} == {label for _, label in EXPECTED}


def test_openapi_takes_the_types_from_the_bundle(pt_client: TestClient) -> None:
    spec = pt_client.get("/openapi.json").json()
    op = spec["paths"]["/ner"]["post"]
    assert "PER, ORG, LOC" not in op["summary"]
    assert "GET /models" in op["description"]
    label = spec["components"]["schemas"]["Entity"]["properties"]["label"]["description"]
    assert "GET /models" in label
    assert "training data" in label
    texts = spec["components"]["schemas"]["NerTextsRequest"]["properties"]["texts"]
    assert "language" in texts["description"]


def test_a_run_replaces_only_a_bundle_it_beat(
    pt_model: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    args: list[str] = pt_model["args"]
    bundle = pt_model["models"] / "lener" / "1.0.0"
    before = (bundle / "manifest.json").read_bytes()
    # a shorter run does no better on dev, so the bundle stays as it was
    assert main([*args, "--epochs", "1"]) == 0
    assert (bundle / "manifest.json").read_bytes() == before
    assert "not writing a bundle: lener 1.0.0 has dev F1" in caplog.text
    # another dev file: the old figure says nothing, so only --force writes
    other_dev = write(pt_model["dev"].with_name("dev2.conll"), corpus(5, start=40))
    assert main([*args, "--epochs", "1", f"--dev={other_dev}"]) == 0
    assert "selected on another dev file" in caplog.text
    assert (bundle / "manifest.json").read_bytes() == before
    assert main([*args, "--epochs", "1", "--version", "1.1.0", "--force"]) == 0
    assert read_manifest(pt_model["models"] / "lener" / "1.1.0").training["epochs_run"] == 1
    assert (bundle / "manifest.json").read_bytes() == before  # a new version leaves 1.0.0 alone


def test_help_lists_the_data_options() -> None:
    text = parser().format_help()
    for option in ("--train", "--dev", "--test", "--token-column", "--tag-column", "--scheme", "--language"):
        assert option in text
    for option in (
        "--embeddings",
        "--unlabelled",
        "--max-minutes",
        "--seed",
        "--quick",
        "--force",
        "--version",
    ):
        assert option in text


def test_unknown_language_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write(tmp_path / "train.txt", GOOD)
    with pytest.raises(SystemExit) as exc:
        run_cli(tmp_path, "--train", train, "--dev", train, "--name", "x", "--language", "zz")
    assert exc.value.code == 2
    assert "--language 'zz': spaCy has no rules for it" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_a_posted_sentence_is_one_sequence_and_texts_are_cut_at_sentence_ends(
    pt_model: dict[str, Any],
) -> None:
    # LeNER-Br writes "art." as "art" "."; cutting a posted sentence there lost the entity's context
    from app.core.backends import load_backend
    from app.core.bundle import load_bundle
    from app.core.limits import InputLimits
    from app.ner.schemas import NerRequest
    from app.ner.task import NerTask

    bundle = load_bundle(pt_model["models"] / "lener" / "1.0.0")
    task = NerTask(bundle, load_backend("onnx", bundle, "cpu"))
    limits = InputLimits(4, 1000, 50, 1)
    words = ["Ver", "o", "art", ".", "5", "da", "Lei", "8.666", "."]
    assert [item.words for item in task.decode(NerRequest(tokens=[words]), limits)] == [tuple(words)]
    pieces = task.decode(NerRequest(texts=["Ana Costa recorreu. A Lei 8.666 vale."]), limits)
    assert [item.words[-1] for item in pieces] == [".", "."]


def test_no_data_arguments_train_the_conll_preset(tmp_path: Path) -> None:
    """The shipped model's run: eng.train/testa/testb in `WORD POS CHUNK NER` (IOB1), GloVe, the
    model named after the task, testa selects, testb reports, the ablation rows beside it."""
    rows = [
        [("EU", "I-ORG"), ("rejects", "O"), ("German", "I-MISC"), ("lamb", "O"), (".", "O")],
        [("Peter", "I-PER"), ("Blackburn", "I-PER"), ("in", "O"), ("Paris", "I-LOC"), ("Rome", "B-LOC")],
    ]
    text = "-DOCSTART- -X- O O\n\n" + "".join(
        "".join(f"{w} NNP I-NP {t}\n" for w, t in row) + "\n" for row in rows
    )
    data = tmp_path / "conll"
    data.mkdir()
    for split in ("train", "testa", "testb"):
        write(data / f"eng.{split}", text * 3)
    glove = write(
        tmp_path / "glove.txt", "".join(f"{w} 0.1 -0.2 0.3\n" for w in ("eu", "german", "paris", "."))
    )
    readme_before = (Path(__file__).resolve().parents[1] / "README.md").read_bytes()
    args = ["--data-dir", data, "--glove", glove, "--model-dir", tmp_path / "models", "--hidden", "8"]
    args += ["--epochs", "2", "--ablation-epochs", "1"]
    assert main([str(a) for a in args]) == 0
    m = read_manifest(tmp_path / "models" / "ner" / "1.0.0")
    assert m.preprocessing["source_scheme"] == "IOB1"
    assert m.preprocessing["language"] == "en"
    assert m.labels == ["O"] + [f"{p}-{t}" for t in ("LOC", "MISC", "ORG", "PER") for p in "BIES"]
    assert m.headline.split == "CoNLL-2003 eng.testb"
    assert set(m.metrics) == {"testa", "testb", "raw_text", "ablation"}
    assert [r["variant"] for r in m.metrics["ablation"]][-1] == "shipped"
    assert {"testa_f1", "testb_f1"} <= set(m.metrics["ablation"][0])
    assert m.architecture["word_dim"] == 3  # the vectors' size
    assert m.training["word_dropout"] == 0.0  # the shipped model's recipe
    assert m.data["embeddings"]["vocabulary_hits"] == 4
    assert (Path(__file__).resolve().parents[1] / "README.md").read_bytes() == readme_before


def test_readme_figures_are_cut_from_the_runs_report(pt_model: dict[str, Any]) -> None:
    from training.ner.__main__ import readme_markdown

    bundle = pt_model["models"] / "lener" / "1.0.0"
    section = readme_markdown(bundle / "REPORT.md")
    assert section.startswith("**NER model lener 1.0.0: test.conll (test) entity F1 ")
    assert [line for line in section.splitlines() if line.startswith("#")] == [
        "##### Test per type (conlleval: exact span and type)",
        "##### Raw text versus the file's tokens (test)",
        "##### Time and machine",
    ]
    f1 = read_manifest(bundle).metrics["test"]["overall"]["f1"]
    assert "| **overall** | " in section
    assert f"| {f1:.2f} |" in section
