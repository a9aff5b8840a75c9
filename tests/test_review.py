"""`hardneg review`: Label Studio tasks out (source hidden, key apart), annotations back in."""

from __future__ import annotations

import json

import pytest
from helpers import export, labelled_project, make_triplets, write_export
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.experiment.planfile import CellRef, PlanFile
from hardneg.evaluation.stats import cohen_kappa, fleiss
from hardneg.review.labelstudio import CHOICES, majority

runner = CliRunner()


def test_export_hides_the_source_and_draws_n_per_source_reproducibly(tmp_path):
    triplets = make_triplets(tmp_path / "t.jsonl")
    tasks, key = export(tmp_path, triplets, "--per-source", 3, "--seed", 7, "--borderline", 2)
    assert len(tasks) == 6
    for task in tasks:
        assert set(task["data"]) == {"query", "positive", "negative", "item"}
        assert "bm25" not in task["data"]["item"] and "llm" not in task["data"]["item"]
        entry = key["items"][task["data"]["item"]]
        assert entry["negative_source"] in task["data"]["negative"]  # the key knows what the task hides
        assert entry["audit_class"] is None and entry["sample"] == "random"  # no audit: no borderline cases
    assert sorted(v["source"] for v in key["items"].values()) == ["bm25"] * 3 + ["llm"] * 3
    again, _ = export(tmp_path, triplets, "--per-source", 3, "--seed", 7, out="again")
    assert again == tasks
    other, _ = export(tmp_path, triplets, "--per-source", 3, "--seed", 8, out="other")
    assert other != tasks
    config = (tmp_path / "project" / "labeling_config.xml").read_text()
    assert '<Choices name="difficulty" toName="negative"' in config and 'value="$negative"' in config
    for choice in ("too easy", "hard", "false negative", "unclear"):
        assert f'<Choice value="{choice}"' in config


def test_export_from_a_run_folder_adds_the_audits_borderline_cases(tmp_path):
    run = tmp_path / "run"
    make_triplets(run / "negatives" / "bm25.jsonl", count=3)
    margins = {"bm25": [-0.9, -0.21, -0.5, 0.02, -0.6, -0.7], "llm": [-0.1] * 6}  # file order
    audit = {"settings": {"easy_margin": 0.2}, "sources": {s: {"margins": m} for s, m in margins.items()}}
    (run / "audits").mkdir()
    (run / "audits" / "bm25.json").write_text(json.dumps(audit))
    cell = CellRef(source="bm25", label="bm25", train="scifact", test="scifact", evaluation="e.json",
                   negatives="negatives/bm25.jsonl", audit="audits/bm25.json")  # fmt: skip
    (run / "negatives" / "nf.jsonl").write_text((run / "negatives" / "bm25.jsonl").read_text())
    other = cell.model_copy(update={"train": "nfcorpus", "negatives": "negatives/nf.jsonl", "audit": None})
    PlanFile(name="r", base_model="m", baseline=None, metrics=[], evaluation={}, audit={}, notes=[],
             cells=[cell, other]).write(run)  # fmt: skip
    _, key = export(tmp_path, run, "--per-source", 1, "--borderline", 2, out="two-trains")
    assert sorted(v["source"] for v in key["items"].values()) == ["nfcorpus:bm25", "scifact:bm25", "scifact:bm25",
                                                                  "scifact:bm25"]  # unaudited: no borderline  # fmt: skip
    PlanFile(name="r", base_model="m", baseline=None, metrics=[], evaluation={}, audit={}, notes=[],
             cells=[cell, cell.model_copy(update={"test": "nfcorpus"})]).write(run)  # fmt: skip
    tasks, key = export(tmp_path, run, "--per-source", 1, "--borderline", 2)
    assert len(tasks) == 3  # one cell (two test sets share its negatives): 1 random + 2 borderline
    items = list(key["items"].values())
    assert {v["source"] for v in items} == {"bm25"}
    borderline = sorted(v["margin"] for v in items if v["sample"] == "borderline")
    random_margin = next(v["margin"] for v in items if v["sample"] == "random")
    rest = [-0.9, -0.21, -0.5, 0.02, -0.6, -0.7] + [-0.1] * 6
    rest.remove(random_margin)
    nearest = sorted(rest, key=lambda m: min(abs(m), abs(m + 0.2)))[:2]
    assert borderline == sorted(nearest)
    for v in items:
        expected = "false negative" if v["margin"] >= 0 else "hard" if v["margin"] >= -0.2 else "too easy"
        assert v["audit_class"] == expected


def test_export_with_a_scorer_audits_triplet_files(tmp_path, monkeypatch):
    import numpy as np

    import hardneg.combining.filtering

    class TableScorer:  # score = the negative's trailing index: 0.0 -> margin -1.0 (too easy), 1.0 -> 0.0
        def score(self, queries, passages):
            return np.array([1.0 if p.startswith("positive") else float(p.split(".")[-1]) for p in passages])

    monkeypatch.setattr(hardneg.combining.filtering, "load_text_scorer", lambda *args: TableScorer())
    triplets = make_triplets(tmp_path / "t.jsonl")
    _, key = export(tmp_path, triplets, "--per-source", 10, "--scorer", "dense:table")
    for v in key["items"].values():
        assert v["audit_class"] == ("false negative" if v["negative_index"] % 2 else "too easy")
        assert v["margin"] == (0.0 if v["negative_index"] % 2 else -1.0)


def test_import_reports_shares_fleiss_kappa_and_the_audits_agreement(tmp_path):
    path = write_export(tmp_path, labelled_project(tmp_path))
    result = runner.invoke(app, ["review", "import", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "project" / "review.json").read_text())
    assert (tmp_path / "project" / "review.md").is_file()
    assert report["items"] == report["labelled_items"] == 4 and report["annotations"] == 12
    bm25, llm = report["sources"]["bm25"]["labels"], report["sources"]["llm"]["labels"]
    assert bm25["hard"]["share"] == 1.0 and bm25["too easy"]["share"] == 0.0
    assert llm["too easy"]["share"] == 0.5 and llm["false negative"]["share"] == 0.5
    assert llm["too easy"]["ci95"] == pytest.approx(list(proportion_confint(1, 2, method="wilson")))
    # Fleiss by hand: P_i = 1, 1/3, 1, 1/3 -> mean 2/3; p_j = 6/12, 4/12, 2/12 -> P_e = 7/18; (2/3-7/18)/(11/18)
    assert report["fleiss"]["kappa"] == pytest.approx(5 / 11)
    assert report["fleiss"]["items"] == 4 and report["fleiss"]["annotators_per_item"] == 3
    audit = report["audit"]
    assert audit["items"] == 4
    assert audit["per_class"]["hard"]["share"] == 1.0 and audit["per_class"]["false negative"]["share"] == 0.5
    assert audit["per_class"]["too easy"]["share"] == 1.0
    # observed 3/4; chance .25*.5 + .5*.25 + .25*.25 = .3125 -> .4375 / .6875
    assert audit["cohen_kappa"] == pytest.approx(7 / 11)


def test_agreement_helpers_on_edge_cases():
    assert majority(["hard", "too easy"]) == "unclear" and majority(["hard", "hard", "unclear"]) == "hard"
    assert cohen_kappa([("hard", "hard"), ("too easy", "too easy")], CHOICES) == pytest.approx(1.0)
    assert cohen_kappa([], CHOICES) is None
    labels = {
        "a": {"1": "hard", "2": "hard"},
        "b": {"1": "hard", "2": "too easy", "3": "hard"},
        "c": {"1": "hard", "2": "too easy"},
        "d": {"1": "hard"},
    }
    mixed = fleiss(labels, CHOICES)
    assert mixed["items"] == 2 and mixed["annotators_per_item"] == 2 and mixed["left_out"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda tasks: {"tasks": tasks}, "expected a list of tasks"),
        (lambda tasks: [tasks[0], {"data": {"query": "q"}}], "task 1: no data.item"),
        (lambda tasks: [tasks[0], {**tasks[1], "data": {**tasks[1]["data"], "item": "n9999"}}], "task 1: unknown item 'n9999'"),
        (lambda tasks: [tasks[0], {**tasks[1], "annotations": [{"completed_by": 1, "result": [
            {"from_name": "difficulty", "type": "choices", "value": {"choices": ["easy"]}}]}]}], "task 1: label 'easy'"),
        (lambda tasks: [tasks[0], "not a task"], "task 1: no data.item"),
        (lambda tasks: [tasks[0], {**tasks[1], "annotations": [{"completed_by": 1, "result": [
            {"from_name": "difficulty", "type": "choices", "value": {"choices": "hardish"}}]}]}], "task 1: label 'hardish'"),
    ],
)
def test_bad_exports_are_one_line_errors(tmp_path, change, message):
    path = write_export(tmp_path, change(labelled_project(tmp_path)))
    result = runner.invoke(app, ["review", "import", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], result.stderr
