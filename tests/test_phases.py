"""A grid's [[phases]]: smaller grids run first, in order, into the same run folder, whose stages are
the whole grid's (so the whole run after them only adds what is left)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from helpers import mini_head, write_beir, write_config
from rich.console import Console
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.cli.run import bundled_config
from hardneg.core.errors import HardnegError
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.experiment.phases import phase_plans
from hardneg.settings.experiment import ExecutorSettings
from hardneg.stages.training import Train

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


def test_a_phase_is_part_of_the_whole_plan_with_the_grid_s_own_stages(tmp_path):
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
    whole = plan_experiment(config, tmp_path / "run")
    plans = phase_plans(config, whole, config.phases)
    first = plans[0][1]
    assert {(c.source, c.train, c.test) for c in first.cells} == {
        ("base", None, "scifact"),
        ("dense", "scifact", "scifact"),
        ("bm25 gist", "scifact", "scifact"),
    }  # nfcorpus trains neither source: not in this phase; in-domain only
    # "bm25 gist" mines as bm25 does: the phase runs the grid's stage, named after bm25, not a twin
    mined = [s.label for s in first.stages if s.kind == "mine"]
    assert sorted(mined) == ["scifact-bm25", "scifact-dense"]
    assert [s.label for s in first.stages if s.kind == "train"] == ["scifact-dense", "scifact-bm25 gist"]
    assert all(stage in whole.stages for _, plan in plans for stage in plan.stages)
    assert {(c.source, c.test) for c in plans[1][1].cells} == {
        (source, test)
        for source in ("base", "bm25", "dense", "bm25 gist")
        for test in ("scifact", "nfcorpus")
    }
    fallback = TWO_DATASETS.replace('test = ["nfcorpus", "scifact"]', 'test = ["scifact"]')
    config = load_experiment(
        write_config(tmp_path, fallback + '[[phases]]\nname = "n"\ndatasets = ["nfcorpus"]')
    )
    cells = phase_plans(config, plan_experiment(config, tmp_path / "run"), config.phases)[0][1].cells
    assert {(c.source, c.train, c.test) for c in cells} == {
        ("base", None, "scifact"),
        ("bm25", "nfcorpus", "scifact"),
    }


@pytest.mark.parametrize(
    "phases, message",
    [
        (
            '[[phases]]\nname = "a"\nsources = ["nope"]',
            "phases.0.sources: no source 'nope' (have: bm25, dense",
        ),
        (
            '[[phases]]\nname = "a"\ndatasets = ["arguana"]',
            "phases.0.datasets: no training dataset 'arguana' (have: scifact, nfcorpus)",
        ),
        (
            '[[phases]]\nname = "a"\ndatasets = ["nfcorpus"]\nsources = ["dense"]',
            "phases.0.sources: none of them is trained on the phase's datasets",
        ),
        ('[[phases]]\nname = "a"\n[[phases]]\nname = "a"', "phases.1.name: 'a' names an earlier phase too"),
        ('[[phases]]\nname = "a"\ntests = "some"', "phases.0.tests: Input should be 'in-domain' or 'all'"),
    ],
)
def test_a_phase_names_what_the_grid_has(tmp_path, phases, message):
    path = write_config(tmp_path, TWO_DATASETS + phases)
    with pytest.raises(HardnegError) as error:
        load_experiment(path)
    key = message.split(":")[0]
    assert str(error.value).startswith(f"{path}: {key}: ") and message in str(error.value)  # key first


def test_the_study_s_phases_run_in_domain_first_and_the_whole_grid_adds_only_cross_tests(tmp_path):
    config = load_experiment(bundled_config("study"))
    whole = plan_experiment(config, tmp_path / "run")
    in_phases = {
        (c.source, c.train, c.test)
        for _, plan in phase_plans(config, whole, config.phases)
        for c in plan.cells
    }
    in_domain = {
        (c.source, c.train, c.test)
        for c in whole.cells
        if c.train == c.test or (c.train is None and c.test in ("scifact", "nfcorpus"))
    }
    assert in_phases == in_domain and len(in_domain) < len(whole.cells)  # the cross-tests come last


def phased_config(tmp_path: Path, model: Path) -> Path:
    """mini trains bm25 and a combination of it, tested on mini and other; one phase: bm25 in-domain."""
    write_beir(tmp_path / "other")
    body = (
        mini_head(tmp_path, "phased", model).replace(
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
    return write_config(tmp_path, body)


def test_a_run_goes_phase_by_phase_and_can_stop_after_one(tmp_path, tiny_model_path):
    config = phased_config(tmp_path, tiny_model_path)
    run_dir = tmp_path / "run"

    dry = runner.invoke(app, ["run", str(config), "--dry-run", "-o", str(run_dir)])
    assert dry.exit_code == 0, dry.output
    assert "bm25 in-domain" in dry.output and "(the whole grid)" in dry.output

    said = io.StringIO()
    first = run_experiment(
        config, run_dir, show_progress=False, phase="bm25 in-domain", console=Console(file=said, width=200)
    )
    assert re.search(r"^1/1 phase bm25 in-domain: \d+ of \d+ stages to run$", said.getvalue(), re.M)
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


def test_a_stage_that_failed_in_a_phase_is_not_tried_again_in_the_same_run(
    tmp_path, tiny_model_path, monkeypatch
):
    calls = []
    real = Train.run

    def refuse_bm25(self, call):
        if call.label == "mini-bm25":
            calls.append(call.label)
            raise HardnegError("out of memory")
        real(self, call)

    monkeypatch.setattr(Train, "run", refuse_bm25)
    said = io.StringIO()
    with pytest.raises(HardnegError, match=r"stages did not finish .* first: train mini-bm25: out of memory"):
        config = phased_config(tmp_path, tiny_model_path)
        run_experiment(config, tmp_path / "run", show_progress=False, console=Console(file=said, width=200))
    assert calls == ["mini-bm25"]  # the phase tried it; the whole grid after it did not
    whole = said.getvalue().split("2/2 the whole grid: ")[1]
    header, lines = whole.split("\n", 1)
    skipped = int(
        re.fullmatch(r"\d+ of \d+ stages to run \((\d+) skipped: a failure earlier in this run\)", header)[1]
    )
    assert skipped == lines.count(": skipped (") >= 2  # the training and what needs it, counted as such
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {row["source"] for row in results["rows"]} == {"base", "again"}


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_the_phases_of_a_ray_run_share_one_ray_instance(tmp_path, tiny_model_path, monkeypatch):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    starts = []
    real_init = ray.init
    monkeypatch.setattr(ray, "init", lambda *a, **k: starts.append(k) or real_init(*a, **k))
    executor = ExecutorSettings(name="ray", num_cpus=2)
    summary = run_experiment(phased_config(tmp_path, tiny_model_path), tmp_path / "run", executor=executor)
    assert len(starts) == 1 and not ray.is_initialized()  # started once for both steps, then stopped
    assert {s.label for s in summary.ran if s.kind == "evaluate"} == {
        "base-on-mini",
        "mini-bm25-on-mini",
        "base-on-other",
        "mini-bm25-on-other",
        "mini-again-on-mini",
        "mini-again-on-other",
    }
