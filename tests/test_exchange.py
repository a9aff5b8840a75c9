"""`export` / `import`: triplets to sentence-transformers datasets and back, training from an export."""

import json

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Negative, Triplet, read_triplets, write_records
from hardneg.data.exchange import export_triplets, import_rows, to_columns
from hardneg.settings.exchange import ExportSettings

runner = CliRunner()
WORDS = "solar wind bread coffee river mountain music garden city ocean forest engine".split()


def triplet(q: int, p: int = 0, negatives: int = 2) -> Triplet:
    topic = WORDS[q % len(WORDS)]
    return Triplet(
        query_id=f"q{q}", query=f"what about {topic} {q}", positive_id=f"d{q}-{p}",
        positive=f"{topic} facts number {q} {p} explained",
        negatives=[Negative(text=f"{topic} unrelated note {q} {p} {i}", source=f"src{i % 2}", score=0.5 + i)
                   for i in range(negatives)],
    )  # fmt: skip


def texts(triplets):
    return [(t.query, t.positive, [n.text for n in t.negatives]) for t in triplets]


@pytest.fixture
def triplets_file(tmp_path):
    """Three negatives, except one triplet with one (padded in n-tuple exports)."""
    triplets = [triplet(q, p, negatives=1 if q == 1 else 3) for q in range(4) for p in range(2)]
    write_records(tmp_path / "triplets.jsonl", triplets)
    return tmp_path / "triplets.jsonl"


@pytest.mark.parametrize("fmt,name", [("hf", "ds"), ("parquet", "ds.parquet"), ("jsonl", "ds.jsonl")])
@pytest.mark.parametrize("columns", ["n-tuple", "triplet"])
def test_export_then_import_gives_back_the_triplets(tmp_path, triplets_file, fmt, name, columns):
    output = tmp_path / name
    args = ["export", str(triplets_file), "-o", str(output), "--format", fmt, "--columns", columns,
            "--source-column", "--score-column"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
    assert manifest["stage"] == "export" and manifest["settings"]["columns"] == columns
    assert manifest["counts"]["rows"] == (8 if columns == "n-tuple" else 20)
    assert manifest["counts"].get("padded_short") == (2 if columns == "n-tuple" else None)
    assert not list(tmp_path.glob(".*"))  # no staging file or folder left behind

    back = tmp_path / "back.jsonl"
    result = runner.invoke(app, ["import", str(output), "-o", str(back)])
    assert result.exit_code == 0, result.output
    original, imported = read_triplets(triplets_file), read_triplets(back)
    assert texts(imported) == texts(original)
    assert [[(n.source, n.score) for n in t.negatives] for t in imported] == \
        [[(n.source, n.score) for n in t.negatives] for t in original]  # fmt: skip
    assert json.loads((tmp_path / "back.jsonl.manifest.json").read_text())["stage"] == "import"


def test_columns_follow_sentence_transformers_layouts():
    triplets = [triplet(0, negatives=3), triplet(1, negatives=1), triplet(2, negatives=0)]
    counts: dict = {}
    ntuple = to_columns(triplets, ExportSettings(num_negatives=2, short_triplets="drop"), counts)
    assert list(ntuple) == ["anchor", "positive", "negative_1", "negative_2"] and len(ntuple["anchor"]) == 1
    assert counts == {"dropped_empty": 1, "dropped_short": 1, "rows": 1, "negatives_per_row": 2}
    rows = to_columns(triplets, ExportSettings(columns="triplet", source_column=True, id_columns=True), {})
    assert list(rows) == ["anchor", "positive", "query_id", "positive_id", "negative", "source"]
    assert len(rows["anchor"]) == 4 and rows["query_id"] == ["q0", "q0", "q0", "q1"]


def test_import_without_ids_or_sources_gets_stable_ids_and_the_given_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"anchor": ["a query", "a query", "b query"], "positive": ["pos a", "pos a", "pos b"],
            "negative": ["neg 1", "neg 2", "neg 3"]}  # fmt: skip
    pq.write_table(pa.table(rows), tmp_path / "mine.parquet")
    triplets, counts = import_rows(tmp_path / "mine.parquet", source="mined")
    assert texts(triplets) == [("a query", "pos a", ["neg 1", "neg 2"]), ("b query", "pos b", ["neg 3"])]
    assert {n.source for t in triplets for n in t.negatives} == {"mined"} and counts["triplets"] == 2
    again, _ = import_rows(tmp_path / "mine.parquet")
    assert [(t.query_id, t.positive_id) for t in again] == [(t.query_id, t.positive_id) for t in triplets]
    assert triplets[0].query_id != triplets[1].query_id


def test_a_dataset_without_an_anchor_column_is_a_one_line_error(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"query": ["q"], "positive": ["p"], "negative": ["n"]}).save_to_disk(str(tmp_path / "bad"))
    result = runner.invoke(app, ["import", str(tmp_path / "bad"), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "bad" in lines[0] and "no 'anchor' column" in lines[0], result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_an_empty_text_is_named_by_row_and_column(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"anchor": "q", "positive": "p", "negative_1": "n"}\n'
                                         '{"anchor": "q2", "positive": "p2", "negative_1": " "}\n')  # fmt: skip
    result = runner.invoke(app, ["import", str(tmp_path / "rows.jsonl"), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'rows.jsonl'}: row 1, column 'negative_1': empty text"


def test_push_to_hub_offline_is_a_one_line_error(tmp_path, triplets_file):
    args = ["export", str(triplets_file), "-o", str(tmp_path / "ds"), "--push-to-hub", "someone/triplets"]
    result = runner.invoke(app, args)  # HF_HUB_OFFLINE=1 (conftest)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--push-to-hub someone/triplets" in lines[0] and "HF_HUB_OFFLINE" in lines[0]


@pytest.mark.parametrize("fmt,name", [("hf", "ds"), ("parquet", "ds.parquet")])
def test_train_reads_an_exported_folder_or_parquet_file(tmp_path, tiny_model_path, fmt, name):
    write_records(tmp_path / "triplets.jsonl", [triplet(q, p) for q in range(12) for p in range(2)])
    export_triplets([tmp_path / "triplets.jsonl"], ExportSettings(format=fmt, columns="triplet"), tmp_path / name)
    args = ["train", "-t", str(tmp_path / name), "-o", str(tmp_path / "model"), "--base-model", str(tiny_model_path),
            "-n", "2", "--batch-size", "4", "--eval-steps", "2", "--max-steps", "2", "--max-seq-length", "16", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "model" / "hardneg_training.json").read_text())
    assert provenance["counts"]["triplets"] == 24 and provenance["counts"]["sources"] == ["imported"]
    assert provenance["counts"]["steps"] == 2
