"""`hardneg audit`: difficulty shares by score margin, surface statistics, the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data.records import Negative, Triplet, write_records
from hardneg.reporting.audit import audit_file, audit_triplets
from hardneg.settings.audit import AuditSettings

runner = CliRunner()
POSITIVE = "Vitamin D supplements reduced the rate of bone fractures in elderly women over five years."


class TableScorer:
    """Scores looked up by passage text: the audit's arithmetic without a model."""

    def __init__(self, scores: dict[str, float]):
        self.scores = scores

    def score(self, queries, passages):
        return np.array([self.scores[p] for p in passages], dtype=np.float32)


def make_triplet(
    negatives: list[tuple[str, str]], query: str = "does vitamin d prevent fractures"
) -> Triplet:
    return Triplet(query_id="q", query=query, positive_id="p", positive=POSITIVE,
                   negatives=[Negative(text=text, source=source) for text, source in negatives])  # fmt: skip


def test_margins_split_negatives_into_false_negative_hard_and_easy_per_source():
    texts = {
        POSITIVE: 0.8,
        "copy of the finding about vitamin d and fractures": 0.85,  # above the positive: likely a positive
        "vitamin d levels measured in elderly women": 0.7,  # hard
        "vitamin d levels measured in elderly men": 0.65,  # hard, near-duplicate of the one above
        "a recipe for sourdough bread": 0.1,  # too easy
    }
    triplet = make_triplet(
        [(t, "llm:x") for t in list(texts)[1:4]] + [("a recipe for sourdough bread", "bm25")]
    )
    result = audit_triplets(
        [triplet], AuditSettings(easy_margin=0.2, near_duplicate=0.6), TableScorer(texts), ["t.jsonl"]
    )
    llm, bm25 = result.sources["llm:x"], result.sources["bm25"]
    assert (llm.negatives, bm25.negatives) == (3, 1)
    assert (
        llm.false_negative_share == pytest.approx(1 / 3)
        and llm.hard_share == pytest.approx(2 / 3)
        and llm.easy_share == 0
    )
    assert bm25.easy_share == 1 and bm25.mean_margin == pytest.approx(-0.7)
    assert llm.near_duplicate_share == pytest.approx(2 / 3)
    assert llm.query_overlap > bm25.query_overlap == 0  # 'bread' shares no content word with the query
    assert sorted(llm.margins) == pytest.approx([-0.15, -0.1, 0.05], abs=1e-4)
    # generated negatives of 7 words against a 15-word positive: the length ratio says so
    assert (llm.median_negative_words, llm.median_positive_words) == (7, 15)
    assert llm.length_ratio == pytest.approx(7 / 15) and bm25.length_ratio == pytest.approx(5 / 15)
    assert result.model_dump()["sources"]["llm:x"]["length_ratio"] == pytest.approx(7 / 15)


@pytest.mark.slow  # loads the real MiniLM
def test_cli_writes_markdown_json_and_histogram_with_the_real_minilm(tmp_path):
    path = tmp_path / "t.jsonl"
    write_records(
        path, [make_triplet([(POSITIVE, "llm:copy"), ("The stock market fell sharply on Monday.", "random")])]
    )
    result = runner.invoke(app, ["audit", str(path), "--output-dir", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "audit" / "audit.json").read_text())["sources"]
    assert summary["llm:copy"]["false_negative_share"] == 1.0  # the positive itself scores as the positive
    assert summary["random"]["easy_share"] == 1.0
    markdown = (tmp_path / "audit" / "audit.md").read_text()
    assert "| llm:copy | 1 | 100% | 0% | 0% |" in markdown
    assert (tmp_path / "audit" / "audit.png").read_bytes()[:4] == b"\x89PNG"


def test_a_file_without_negatives_is_a_one_line_error(tmp_path):
    path = tmp_path / "t.jsonl"
    write_records(path, [make_triplet([])])
    result = runner.invoke(app, ["audit", str(path)])
    assert result.exit_code == 2 and "no negatives to audit" in result.output


def test_a_source_in_two_files_is_audited_per_file(tmp_path, monkeypatch):
    import hardneg.combining.filtering

    texts = {POSITIVE: 0.8, "near": 0.75, "far": 0.1}
    monkeypatch.setattr(hardneg.combining.filtering, "load_text_scorer", lambda *args: TableScorer(texts))
    write_records(tmp_path / "run1.jsonl", [make_triplet([("near", "bm25")])])
    write_records(tmp_path / "run2.jsonl", [make_triplet([("far", "bm25"), ("near", "llm:x")])])
    result = audit_file(
        [tmp_path / "run1.jsonl", tmp_path / "run2.jsonl", tmp_path / "run1.jsonl"], AuditSettings()
    )
    assert sorted(result.sources) == ["llm:x", "run1:bm25", "run2:bm25"]
    assert result.sources["run1:bm25"].hard_share == 1 and result.sources["run2:bm25"].easy_share == 1


def test_the_margin_plot_draws_a_violin_per_source_and_survives_sources_too_small_for_one(
    tmp_path, monkeypatch
):
    import matplotlib.axes

    from hardneg.reporting.audit import plot_margins

    drawn = []
    original = matplotlib.axes.Axes.violinplot
    monkeypatch.setattr(matplotlib.axes.Axes, "violinplot",
                        lambda self, data, **kw: drawn.append(len(data)) or original(self, data, **kw))  # fmt: skip
    groups = {"bm25": [-0.3, -0.1, 0.05], "llm": [0.2, 0.4], "one": [0.1], "none": []}
    output = plot_margins(groups, 0.2, tmp_path / "m.png", "margins")
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert drawn == [2]  # the two sources with two margins or more; the others keep their labelled line
