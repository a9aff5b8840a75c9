from __future__ import annotations

import json

import pytest
from helpers import shared_dataset, write_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.beir import load_beir, validate_beir
from hardneg.core.errors import DataError, HardnegError

runner = CliRunner()


def test_loads_titles_graded_scores_and_all_splits(tiny_beir):
    dataset = load_beir(tiny_beir)
    assert dataset.splits == ["test", "train"]
    assert dataset.corpus["d1"].full_text == "Solar panels Photovoltaic cells convert sunlight into electricity."
    assert dataset.split_qrels("test")["q1"] == {"d1": 2, "d5": 1}
    assert list(dataset.split_queries("train")) == ["q3", "q4"]
    assert dataset.counts()["test"] == {"queries": 2, "judgments": 3}


def test_judged_documents_merge_every_split(tmp_path):
    path = write_beir(tmp_path / "ds", qrels={"test": {"q1": {"d1": 1}}, "train": {"q1": {"d2": 0, "d5": 1}}})
    assert load_beir(path).judged_documents("q1") == {"d1": 1, "d2": 0, "d5": 1}


def test_unknown_split_names_the_available_ones(tiny_beir):
    with pytest.raises(Exception, match=r"no such split \(available: test, train\)"):
        load_beir(tiny_beir).split_qrels("dev")


def _append(path, text):
    with path.open("a") as out:
        out.write(text)


CORRUPTIONS = [
    ("corpus.jsonl", "{not json\n", 6, "invalid JSON"),
    ("corpus.jsonl", json.dumps({"title": "t", "text": "x"}) + "\n", 6, "missing field '_id'"),
    ("corpus.jsonl", json.dumps({"_id": "d9", "title": "t"}) + "\n", 6, "missing field 'text'"),
    ("corpus.jsonl", json.dumps({"_id": "d2", "text": "again"}) + "\n", 6, "duplicate _id 'd2' (first on line 2)"),
    ("corpus.jsonl", json.dumps({"_id": "d9", "text": 3}) + "\n", 6, "field 'text' must be a string"),
    ("queries.jsonl", json.dumps({"_id": "q1", "text": "dup"}) + "\n", 5, "duplicate _id 'q1'"),
    ("queries.jsonl", json.dumps({"_id": "q9"}) + "\n", 5, "missing field 'text'"),
    ("queries.jsonl", json.dumps({"_id": "q9", "text": "  "}) + "\n", 5, "empty 'text'"),
    ("qrels/test.tsv", "q1\td2\thigh\n", 5, "field 'score' must be an integer, got 'high'"),
    ("qrels/test.tsv", "q1\td2\t1.5\n", 5, "field 'score' must be an integer"),
    ("qrels/test.tsv", "q404\td2\t1\n", 5, "unknown query-id 'q404'"),
    ("qrels/test.tsv", "q1\td2\n", 5, "expected 3 tab-separated fields, got 2"),
    ("qrels/test.tsv", "q1\td1\t0\n", 5, "duplicate judgment for query 'q1', document 'd1'"),
]


@pytest.mark.parametrize(("file", "line", "number", "message"), CORRUPTIONS)
def test_each_problem_names_file_line_and_field(tiny_beir, file, line, number, message):
    _append(tiny_beir / file, line)
    _, problems = validate_beir(tiny_beir)
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{tiny_beir / file}:{number}: ")
    assert message in str(problems[0])
    with pytest.raises(DataError) as raised:
        load_beir(tiny_beir)
    assert str(raised.value) == str(problems[0])


def test_bad_qrels_header(tiny_beir):
    path = tiny_beir / "qrels" / "test.tsv"
    path.write_text("qid\tdocid\trel\nq1\td1\t1\n")
    _, problems = validate_beir(tiny_beir)
    assert [str(p) for p in problems] == [f"{path}:1: bad header 'qid\\tdocid\\trel', expected 'query-id<TAB>corpus-id<TAB>score'"]


@pytest.mark.parametrize("file", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_empty_file(tiny_beir, file):
    (tiny_beir / file).write_text("")
    _, problems = validate_beir(tiny_beir)
    assert f"{tiny_beir / file}: empty file" in [str(p) for p in problems]


def test_missing_files_and_folder(tmp_path):
    _, problems = validate_beir(tmp_path)
    messages = [str(p) for p in problems]
    assert f"{tmp_path / 'corpus.jsonl'}: file not found" in messages
    assert f"{tmp_path / 'qrels'}: no qrels/<split>.tsv file" in messages
    _, problems = validate_beir(tmp_path / "nowhere")
    assert "not a folder" in str(problems[0])


def test_validate_collects_every_problem(tiny_beir):
    _append(tiny_beir / "corpus.jsonl", "{bad\n")
    _append(tiny_beir / "qrels" / "train.tsv", "q3\td2\tx\n")
    _, problems = validate_beir(tiny_beir)
    assert len(problems) == 2


def test_cli_validate_prints_file_line_message_and_exits_2(tiny_beir):
    _append(tiny_beir / "corpus.jsonl", "{bad\n")
    _append(tiny_beir / "qrels" / "test.tsv", "q1\td2\tx\n")
    result = runner.invoke(app, ["data", "validate", str(tiny_beir)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{tiny_beir / 'corpus.jsonl'}:6: invalid JSON")
    assert lines[1] == f"{tiny_beir / 'qrels' / 'test.tsv'}:5: field 'score' must be an integer, got 'x'"
    assert "Traceback" not in result.output


def test_cli_validate_valid_prints_counts(tiny_beir):
    result = runner.invoke(app, ["data", "validate", str(tiny_beir)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and "train" in result.stdout and "documents: 5" in result.stdout


@pytest.mark.integration
def test_real_scifact_matches_official_counts():
    dataset = load_beir(shared_dataset("scifact"))
    counts = dataset.counts()
    assert counts["all"]["documents"] == 5183
    assert counts["test"] == {"queries": 300, "judgments": 339}
    assert counts["train"] == {"queries": 809, "judgments": 919}


def test_work_too_big_for_the_memory_left_is_refused_up_front(tmp_path, monkeypatch, tiny_model_path):
    """Loading a corpus streams into its store; building a BM25 index or embeddings is what needs
    memory, and each says so in one line before it starts."""
    import hardneg.data.beir as beir
    from hardneg.settings.retrieval import BM25Settings, DenseSettings
    from hardneg.retrieval import BM25Retriever, DenseRetriever

    folder = write_beir(tmp_path / "big")
    size = (folder / "corpus.jsonl").stat().st_size
    monkeypatch.setattr(beir, "available_memory", lambda: int(size * 2))  # less than 4x the file, the index's need
    corpus = beir.load_beir(folder).corpus
    assert len(corpus) == 5
    with pytest.raises(HardnegError, match=r"big/corpus.jsonl: indexing 5 documents for BM25 needs ~0.0 GB in memory and 0.0 GB is available"):
        BM25Retriever(corpus, BM25Settings(), show_progress=False)
    monkeypatch.setattr(beir, "available_memory", lambda: 16)  # fewer bytes than 5 embeddings take
    with pytest.raises(HardnegError, match=r"big/corpus.jsonl: 5 embeddings of \d+ dimensions needs"):
        DenseRetriever(corpus, str(tiny_model_path), DenseSettings(cache_embeddings=False), show_progress=False)
    monkeypatch.setattr(beir, "available_memory", lambda: int(size * 100))
    assert BM25Retriever(corpus, BM25Settings(), show_progress=False).search({"q": "solar"}, 1)
