"""A grid's [[phases]]: smaller grids run first, in order, into the same run folder, whose stages are
the whole grid's (so the whole run after them only adds what is left)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import mini_head, write_beir, write_config
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.experiment.phases import phase_config, phase_plans
from hardneg.cli.run import bundled_config

runner = CliRunner()

TWO_DATASETS = """
name = "t"
[[datasets]]
train = "scifact"
test = ["scifact", "nfcorpus"]
[[datasets]]
train = "nfcorpus"
test = ["nfcorpus", "scifact"]
sources = ["bm25"]
[pairs]
[sources.bm25]
mine = { method = "bm25" }
[sources.dense]
mine = { method = "dense" }
[sources."bm25 gist"]
combine = { inputs = ["bm25"] }
train = { loss = "cached-gist" }
"""


def test_a_phase_cuts_rows_datasets_and_test_sets_and_keeps_the_grid_s_stages(tmp_path):
    body = (
        TWO_DATASETS
        + """
[[phases]]
name = "gist first"
sources = ["bm25 gist", "dense"]
[[phases]]
name = "scifact everywhere"
datasets = ["scifact"]
tests = "all"
"""
    )
    config = load_experiment(write_config(tmp_path, body))
    first = phase_config(config, config.phases[0])
    assert [(spec.train, spec.test, spec.sources) for spec in first.datasets] == [
        ("scifact", ["scifact"], ["dense", "bm25 gist"])  # nfcorpus trains neither: not in this phase
    ]
    whole = plan_experiment(config, tmp_path / "run")
    plans = phase_plans(config, tmp_path / "run")
    outputs = {stage.output for stage in whole.stages}
    for _, plan in plans:
        assert {stage.output for stage in plan.stages} <= outputs  # the same keys and paths
    trained = [s.label for s in plans[0][1].stages if s.kind == "train"]
    assert trained == ["scifact-dense", "scifact-bm25 gist"]  # bm25 itself is mined, not trained
    assert {(c.source, c.test) for c in plans[1][1].cells} == {
        (source, test)
        for source in ("base", "bm25", "dense", "bm25 gist")
        for test in ("scifact", "nfcorpus")
    }


@pytest.mark.parametrize(
    "phases, message",
    [
        ('[[phases]]\nname = "a"\nsources = ["nope"]', "phases.0.sources: no 'nope' (have: bm25, dense"),
        (
            '[[phases]]\nname = "a"\ndatasets = ["arguana"]',
            "phases.0.datasets: no 'arguana' (have: scifact, nfcorpus)",
        ),
        ('[[phases]]\nname = "a"\n[[phases]]\nname = "a"', "phases.1.name: 'a' names an earlier phase too"),
        ('[[phases]]\nname = "a"\ntests = "some"', "phases.0.tests: Input should be 'in-domain' or 'all'"),
    ],
)
def test_a_phase_names_what_the_grid_has(tmp_path, phases, message):
    path = write_config(tmp_path, TWO_DATASETS + phases)
    with pytest.raises(HardnegError) as error:
        load_experiment(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_the_study_s_phases_run_in_domain_first_and_the_whole_grid_adds_only_cross_tests(tmp_path):
    config = load_experiment(bundled_config("study"))
    whole = {stage.output for stage in plan_experiment(config, tmp_path / "run").stages}
    seen: set[str] = set()
    for phase, plan in phase_plans(config, tmp_path / "run"):
        assert {(c.train, c.test) for c in plan.cells if c.train} <= {
            ("scifact", "scifact"),
            ("nfcorpus", "nfcorpus"),
        }
        seen |= {stage.output for stage in plan.stages}
    assert seen <= whole
    left = [name for name in whole - seen if "evaluations/" in name]
    assert left and all("-on-" in name for name in left)
    assert all(name.split("-on-")[1].split("-")[0] != name.split("/")[-1].split("-")[0] for name in left)


def test_a_run_goes_phase_by_phase_and_can_stop_after_one(tmp_path, tiny_model_path):
    write_beir(tmp_path / "other")
    body = (
        mini_head(tmp_path, "phased", tiny_model_path).replace(
            'train = "mini"', 'train = "mini"\ntest = ["mini", "other"]'
        )
        + """
epochs = 1
[evaluation]
top_k = 10
bootstrap_resamples = 200
[audit]
enabled = false
[sources.bm25]
mine = { method = "bm25", num_negatives = 2 }
[sources.again]
combine = { inputs = ["bm25"], max_negatives = 1 }
[[phases]]
name = "bm25 in-domain"
sources = ["bm25"]
"""
    )
    config = write_config(tmp_path, body)
    run_dir = tmp_path / "run"

    dry = runner.invoke(app, ["run", str(config), "--dry-run", "-o", str(run_dir)])
    assert dry.exit_code == 0, dry.output
    assert "bm25 in-domain" in dry.output and "(the whole grid)" in dry.output

    first = run_experiment(config, run_dir, show_progress=False, phase="bm25 in-domain")
    evaluated = {s.label for s in first.ran if s.kind == "evaluate"}
    assert evaluated == {"base-on-mini", "mini-bm25-on-mini"}  # in-domain, one row: nothing else ran
    results = json.loads((run_dir / "results.json").read_text())
    assert {row["source"] for row in results["rows"]} == {"base", "bm25"}  # the whole grid's report
    assert any("again" in item for item in results["missing"])

    rest = run_experiment(config, run_dir, show_progress=False)
    assert not {s.key for s in rest.ran} & {s.key for s in first.ran}  # the phase's stages are reused
    assert {s.label for s in rest.ran if s.kind == "evaluate"} == {
        "base-on-other",
        "mini-bm25-on-other",
        "mini-again-on-mini",
        "mini-again-on-other",
    }
    results = json.loads((run_dir / "results.json").read_text())
    assert {row["source"] for row in results["rows"]} == {"base", "bm25", "again"} and not results["missing"]

    wrong = runner.invoke(app, ["run", str(config), "-o", str(run_dir), "--phase", "nope"])
    assert wrong.exit_code == 2 and "--phase 'nope': no such phase (have: bm25 in-domain)" in wrong.output
