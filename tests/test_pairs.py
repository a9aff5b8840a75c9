from __future__ import annotations

import json

import pytest
from helpers import write_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.data import PairsSettings
from hardneg.data.beir import load_beir
from hardneg.data.records import read_pairs
from hardneg.core.errors import DataError
from hardneg.data.pairs import build_pairs, load_pairs_for

runner = CliRunner()

QRELS = {"train": {"q1": {"d1": 1, "d5": 2, "d2": 0}, "q2": {"d3": 1}, "q3": {"d2": 1}}, "test": {"q4": {"d4": 1}}}


@pytest.fixture
def graded(tmp_path):
    return load_beir(write_beir(tmp_path / "graded", qrels=QRELS))


def test_all_positives_with_score_above_zero(graded):
    pairs = build_pairs(graded, PairsSettings(dataset="x"))
    assert [(p.query_id, p.positive_id) for p in pairs] == [("q1", "d1"), ("q1", "d5"), ("q2", "d3"), ("q3", "d2")]
    assert pairs[0].positive == graded.corpus["d1"].full_text


def test_one_per_query_keeps_the_best_grade(graded):
    pairs = build_pairs(graded, PairsSettings(dataset="x", one_per_query=True))
    assert [(p.query_id, p.positive_id) for p in pairs] == [("q1", "d5"), ("q2", "d3"), ("q3", "d2")]


def test_cap_is_a_seeded_sample_in_original_order(graded):
    first = build_pairs(graded, PairsSettings(dataset="x", max_pairs=2, seed=1))
    again = build_pairs(graded, PairsSettings(dataset="x", max_pairs=2, seed=1))
    assert first == again and len(first) == 2
    seen = {tuple((p.query_id, p.positive_id) for p in build_pairs(graded, PairsSettings(dataset="x", max_pairs=2, seed=s))) for s in range(10)}
    assert len(seen) > 1  # the seed matters
    everything = [(p.query_id, p.positive_id) for p in build_pairs(graded, PairsSettings(dataset="x"))]
    picked = [(p.query_id, p.positive_id) for p in first]
    assert picked == [pair for pair in everything if pair in picked]


def test_cli_pairs_writes_file_and_manifest(tmp_path):
    folder = write_beir(tmp_path / "ds", qrels=QRELS)
    out = tmp_path / "pairs.jsonl"
    result = runner.invoke(app, ["pairs", "-d", str(folder), "-o", str(out), "--one-per-query"])
    assert result.exit_code == 0, result.output
    assert len(read_pairs(out)) == 3
    manifest = json.loads((tmp_path / "pairs.jsonl.manifest.json").read_text())
    assert manifest["stage"] == "pairs" and manifest["counts"] == {"pairs": 3, "queries": 3}
    assert manifest["settings"]["one_per_query"] is True and len(manifest["inputs"]["dataset"]["sha256"]) == 64


GOOD = {"query_id": "q1", "query": "how do solar cells make electricity", "positive_id": "d1", "positive": "x"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "invalid JSON"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "query"}), "field 'query': missing"),
        (json.dumps({**GOOD, "positive": "  "}), "field 'positive': Value error, must not be empty"),
        (json.dumps({**GOOD, "query_id": "q404"}), "query_id 'q404' is not a query of"),
        (json.dumps({**GOOD, "positive_id": "d404"}), "positive_id 'd404' is not a document of"),
        (json.dumps({**GOOD, "query": "a query from another dataset"}), "query 'q1' has another text in"),
    ],
)
def test_bad_pairs_name_file_line_and_field(tiny_beir, tmp_path, line, message):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n")
    with pytest.raises(DataError) as raised:
        load_pairs_for(path, load_beir(tiny_beir))
    assert str(raised.value).startswith(f"{path}:3: ")
    assert message in str(raised.value)


def test_mine_refuses_bad_pairs_without_leaving_output(tiny_beir, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({**GOOD, "query_id": "PLAIN-1"}) + "\n")
    out = tmp_path / "triplets.jsonl"
    result = runner.invoke(app, ["mine", "-p", str(path), "-d", str(tiny_beir), "-o", str(out), "-q"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}:1: query_id 'PLAIN-1' is not a query of tiny; is this pairs file from another dataset?"
    )
    assert not out.exists() and not (tmp_path / "triplets.jsonl.manifest.json").exists()


def test_empty_and_missing_pairs_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="file not found"):
        read_pairs(tmp_path / "nope.jsonl")
