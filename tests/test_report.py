"""The report from a run folder: intervals, Holm-corrected paired tests, marks, averages, files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import labelled_project, write_export

from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.experiment.planfile import PlanFile
from hardneg.reporting.report import write_report


def fake_run(folder: Path) -> Path:
    """Two columns (a: 40 queries, b: 40 queries); bm25 clearly above base; llm equal to base."""
    per_system = {
        "base": lambda i: 0.5,
        "bm25": lambda i: 0.9,
        "llm": lambda i: 0.5 + (0.01 if i % 2 else -0.01),
    }
    cells = []
    for test in ("a", "b"):
        for source, score in per_system.items():
            path = f"stages/evaluations/{source}-{test}.json"
            per_query = {f"q{i}": {"ndcg@10": score(i), "recall@100": 1.0} for i in range(40)}
            write_json(folder / path, {"metrics": {"ndcg@10": sum(v["ndcg@10"] for v in per_query.values()) / 40, "recall@100": 1.0},
                                       "per_query": per_query})  # fmt: skip
            cells.append({"source": source, "label": source if source != "base" else "base (m)",
                          "train": None if source == "base" else test, "test": test, "evaluation": path,
                          "negatives": None, "audit": None})  # fmt: skip
    PlanFile(name="fake", base_model="m", baseline="bm25", metrics=["ndcg@10", "recall@100"], audit={},
             evaluation={"bootstrap_resamples": 500, "seed": 0}, notes=["a note"], cells=cells).write(folder)  # fmt: skip
    return folder


def test_intervals_tests_and_marks(tmp_path):
    report = write_report(fake_run(tmp_path))
    rows = {row["source"]: row for row in report.results["rows"]}
    bm25 = rows["bm25"]["cells"]["a"]["metrics"]["ndcg@10"]
    assert bm25["ci"] == [0.9, 0.9] and bm25["vs_base"]["p_holm"] < 0.05
    llm = rows["llm"]["cells"]["b"]["metrics"]["ndcg@10"]
    assert llm["ci"][0] < 0.5 < llm["ci"][1] and llm["vs_base"]["p_holm"] > 0.05
    assert llm["vs_baseline"]["p_holm"] < 0.05
    # Holm over the two rows tested against base in a column: the adjusted p is at least the raw one.
    assert all(r["cells"]["a"]["metrics"]["ndcg@10"]["vs_base"]["p_holm"] >= r["cells"]["a"]["metrics"]["ndcg@10"]["vs_base"]["p"]
               for r in (rows["bm25"], rows["llm"]))  # fmt: skip
    assert rows["bm25"]["average"]["ndcg@10"] == pytest.approx(0.9)
    markdown = (tmp_path / "results.md").read_text()
    assert "| bm25 | **0.9000 [0.900, 0.900] ▲B** | **0.9000 [0.900, 0.900] ▲B** | 0.9000 |" in markdown
    assert "0.5000 [" in markdown and "▼M" in markdown and "- a note" in markdown
    with open(tmp_path / "results.csv") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 3 * 2 * 2 and {line["column"] for line in lines} == {"a", "b"}
    assert json.loads((tmp_path / "results.json").read_text())["columns"] == ["a", "b"]
    assert (tmp_path / "results-ndcg_10.png").read_bytes()[:4] == b"\x89PNG"


def test_unfinished_evaluations_are_listed_not_invented(tmp_path):
    fake_run(tmp_path)
    (tmp_path / "stages/evaluations/llm-b.json").unlink()
    report = write_report(tmp_path)
    rows = {row["source"]: row for row in report.results["rows"]}
    assert "b" not in rows["llm"]["cells"] and rows["llm"]["average"]["ndcg@10"] is None
    assert "(not run)" in (tmp_path / "results.md").read_text()
    assert report.results["missing"] == ["stages/evaluations/llm-b.json"]


def test_a_plan_from_elsewhere_is_refused_on_one_line(tmp_path):
    folder = fake_run(tmp_path)
    plan = json.loads((folder / "plan.json").read_text())
    del plan["cells"][0]["test"]
    write_json(folder / "plan.json", plan)
    with pytest.raises(HardnegError, match=r"plan.json: cells.0.test: Field required"):
        write_report(folder)


def test_a_review_of_the_run_joins_its_report(tmp_path):
    from hardneg.review import import_review

    run = fake_run(tmp_path / "run")
    assert write_report(run).results["review"] is None
    assert "Human review" not in (run / "results.md").read_text()
    tasks = labelled_project(tmp_path)
    key_path = tmp_path / "project" / "key.json"
    key = json.loads(key_path.read_text())
    write_json(key_path, {**key, "inputs": [str(run)]})  # as if `review export` had been given the run
    import_review(write_export(tmp_path, tasks))
    assert (run / "review.md").read_text() == (tmp_path / "project" / "review.md").read_text()
    report = write_report(run)
    markdown = (run / "results.md").read_text()
    assert (
        "\n## Human review of negatives\n" in markdown and "\n### Agreement between annotators\n" in markdown
    )
    assert "Fleiss' kappa 0.45 over 4 items with 3 annotators" in markdown
    assert report.results["review"]["fleiss"]["kappa"] == pytest.approx(5 / 11)
    assert json.loads((run / "results.json").read_text())["review"]["labelled_items"] == 4


def test_the_cost_table_sums_finished_stages_per_kind_against_their_estimates(tmp_path):
    from hardneg.experiment.executors import progress_path
    from hardneg.experiment.planfile import StageNode

    fake_run(tmp_path)
    plan = PlanFile.read(tmp_path)
    states = {"t1": ("train", "done", 120.0), "t2": ("train", "done", 60.0), "e1": ("evaluate", "done", 30.0),
              "e2": ("evaluate", "failed", 999.0), "e3": ("evaluate", None, 999.0)}  # fmt: skip
    for key, (kind, state, seconds) in states.items():
        stage = StageNode(
            kind=kind, label=key, key=key, output=f"stages/{key}", config={}, estimate={"seconds": 100.0}
        )
        plan.stages.append(stage)
        if state:
            write_json(
                progress_path(tmp_path, stage),
                {"state": state, "started": 1000.0, "finished": 1000.0 + seconds},
            )
    # t1 was killed twice before it finished (one line cut short by the kill); e3's attempt is running
    # or was killed, its heartbeat 40 s after it started
    lost = [{"attempt": 1, "seconds": 30.0}, {"attempt": 2, "seconds": 12.0}]
    (tmp_path / "progress" / "t1.lost.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lost) + '{"atte'
    )
    write_json(
        progress_path(tmp_path, plan.stages[-1]), {"state": "running", "started": 1000.0, "alive": 1040.0}
    )
    plan.write(tmp_path)
    report = write_report(tmp_path)
    assert report.results["costs"] == {
        "train": {"stages": 2, "seconds": 180.0, "estimated_seconds": 200.0, "interrupted": 2, "lost_seconds": 42.0},
        "evaluate": {"stages": 1, "seconds": 30.0, "estimated_seconds": 100.0, "interrupted": 2, "lost_seconds": 1039.0},
    }  # fmt: skip
    markdown = (tmp_path / "results.md").read_text()
    assert "| train (bi-encoder training) | 2 | 3.0 min | 3.3 min | 2 | 0.7 min |" in markdown
    assert "| total | 3 | 3.5 min | 5.0 min | 4 | 18.0 min |" in markdown


def test_a_test_set_with_beir_quirks_says_how_it_was_counted(tmp_path):
    fake_run(tmp_path)
    for source in ("base", "bm25", "llm"):
        path = tmp_path / f"stages/evaluations/{source}-b.json"
        result = json.loads(path.read_text())
        write_json(path, {**result, "settings": {"ignore_identical_ids": True, "unretrievable_judgments": 5}})
    markdown = (write_report(tmp_path).path).read_text()
    assert "- b: a retrieved document whose id is the query's is dropped (ignore_identical_ids)" in markdown
    assert "- b: 5 judged documents are not in the corpus; counted relevant and unretrievable" in markdown
    assert "- a: a retrieved" not in markdown
    notes = json.loads((tmp_path / "results.json").read_text())["test_set_notes"]
    assert len(notes) == 2 and all(note.startswith("b: ") for note in notes)
