"""The report's "Pools": each row mined from a pool (filters and losses on top included, mixes not),
with the pool's size and the pairs it was drawn from, read from the mining manifests."""

from __future__ import annotations

from test_report_effects import fake_run

from hardneg.core.io import write_json
from hardneg.core.manifest import manifest_path
from hardneg.experiment.planfile import PlanFile, StageNode
from hardneg.reporting.docs import render
from hardneg.reporting.report import write_report


def test_pool_rows_carry_their_pool_s_size_through_filters_and_losses(tmp_path):
    run = fake_run(tmp_path)
    write_json(manifest_path(run / "neg/pool"), {"counts": {"pairs": 40, "pool_documents": 37}})
    found = write_report(run).results["pools"]
    by_source = {e["source"]: e for e in found}
    # the filtered and GIST rows are the pool's negatives; a mix and the corpus rows are not
    assert set(by_source) == {"pool", "pool gist", "pool filtered"}
    assert {e["pool_documents"] for e in found} == {37} and {e["method"] for e in found} == {"bm25"}
    assert by_source["pool gist"]["loss"] is None  # the fake models wrote no training record
    assert round(by_source["pool gist"]["value"], 4) == 0.70 and by_source["pool"]["more_pairs"] == []
    section = (run / "results.md").read_text().split("## Pools", 1)[1]
    assert "| a | pool gist | bm25 | its 40 pairs | 37 | - | 0.7000 | - | - | - |" in section


def test_a_pool_drawn_from_more_pairs_names_them_and_an_unfinished_one_shows_none(tmp_path):
    run = fake_run(tmp_path)
    plan = PlanFile.read(run)
    # the mined pairs' stage: the recipe steps (effects) set this pool against the pool of these alone
    mined = StageNode(kind="pairs", label="a", key="p", output="pairs", config={"max_pairs": 40})
    more = StageNode(kind="pairs", label="a-pool-all", key="pa", output="pairs-all",
                     config={"one_per_query": False, "max_pairs": 90})  # fmt: skip
    plan.stages += [mined, more]
    next(s for s in plan.stages if s.output == "neg/pool").inputs["pool"] = ["pairs-all"]
    plan.write(run)
    write_json(manifest_path(run / "neg/pool"), {"counts": {"pairs": 40, "pool_documents": 61}})
    write_json(manifest_path(run / "pairs-all"), {"counts": {"pairs": 90}})
    results = write_report(run).results
    entry = next(e for e in results["pools"] if e["source"] == "pool")
    assert entry["more_pairs"] == [
        {"label": "a-pool-all", "pairs": 90, "one_per_query": False, "max_pairs": 90}
    ]
    block = render(results, "pools")  # the docs' block is the report's section
    assert (
        "| a | pool | bm25 | its 40 pairs + the train split's 90 (every judged pair, at most 90) | 61 |"
        in block
    )
    # a mining stage that has not run yet: its counts are unknown, not zero
    manifest_path(run / "neg/pool").unlink()
    entry = next(e for e in write_report(run).results["pools"] if e["source"] == "pool")
    assert entry["pool_documents"] is None and entry["mined_pairs"] is None


def test_a_row_s_evaluations_behind_a_failed_stage_are_counted_apart_from_those_not_run(tmp_path):
    """Of one row's two missing evaluations, one waits on a failed training, the other only on the
    run: 'not run yet' keeps the second, the failure names its stage and error for the first."""
    run = fake_run(tmp_path)
    plan = PlanFile.read(run)
    for test, deps in (("a", ["m-mix"]), ("b", [])):
        output = f"evaluations/mix-{test}.json"
        plan.stages.append(StageNode(kind="evaluate", label=f"mix-on-{test}", key=f"e-{test}", output=output,
                                     config={}, deps=deps))  # fmt: skip
        (run / output).unlink()
    plan.write(run)
    write_json(run / "progress" / "m-mix.json", {"state": "failed", "error": "none of its 40 triplets ..."})
    results = write_report(run).results
    (mix,) = [m for m in results["missing_by_row"] if m["source"] == "mix"]
    assert (mix["evaluations"], mix["failed_evaluations"]) == (1, 1)
    assert mix["failed"] == "train mix: none of its 40 triplets ..."
    markdown = (run / "results.md").read_text()
    assert "- not run yet: 1 evaluations (rerun `hardneg run` to finish): mix (1)" in markdown
    assert "- waiting on a failed stage, 1 evaluation(s) of mix (fix the cause" in markdown
    # once the stage succeeds, its record says so and nothing is reported as failed
    write_json(run / "progress" / "m-mix.json", {"state": "done"})
    (mix,) = [m for m in write_report(run).results["missing_by_row"] if m["source"] == "mix"]
    assert mix["evaluations"] == 2 and "failed" not in mix
