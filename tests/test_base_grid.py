"""A grid of the base model alone (no sources), and the local executor letting go of each dataset
after the last stage that reads it (so a grid over many test sets never holds them all)."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

from helpers import write_beir, write_mining_beir

from hardneg.experiment import executors, load_experiment, plan_experiment, run_experiment
from hardneg.stages import RunContext


def base_only(tmp_path: Path, tests: list[str]) -> Path:
    write_mining_beir(tmp_path / "mini")
    write_beir(tmp_path / "tiny")
    write_beir(tmp_path / "other")
    config = tmp_path / "grid.toml"
    config.write_text(f"""
name = "base-only"
base_model = "bm25"
data_root = "{tmp_path}"
[[datasets]]
train = "mini"
test = {json.dumps(tests)}
[pairs]
[evaluation]
bootstrap_resamples = 200
""")
    return config


def test_a_grid_without_sources_tests_the_base_model_alone(tmp_path):
    config = base_only(tmp_path, ["mini", "tiny"])
    plan = plan_experiment(load_experiment(config), tmp_path / "run")
    assert [s.kind for s in plan.stages] == ["evaluate", "evaluate"]  # no pairs: nothing trains
    run_experiment(config, tmp_path / "run", show_progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["columns"] == ["mini", "tiny"]
    assert [row["source"] for row in results["rows"]] == ["base"]
    assert set(results["rows"][0]["cells"]) == {"mini", "tiny"}
    assert "`bm25` alone" in (tmp_path / "run" / "results.md").read_text()


def test_the_local_executor_lets_go_of_each_dataset_after_its_last_stage(tmp_path, monkeypatch):
    """When a stage starts, every dataset whose last stage has finished is gone: nothing refers to
    it (the run's context, a retriever, a result), and with garbage collection off no reference
    cycle keeps it until a collection happens to run."""
    config = base_only(tmp_path, ["mini", "tiny", "other"])
    loaded: dict[str, list[weakref.ref]] = {}
    alive_at_start: list[tuple[str, list[str]]] = []
    real_dataset, real_run_stage = RunContext.dataset, executors.run_stage

    def dataset(self, name, data_root):
        value = real_dataset(self, name, data_root)
        loaded.setdefault(name, []).extend([weakref.ref(value), weakref.ref(value.corpus)])
        return value

    def run_stage(stage, run_dir, show_progress, context, alone=False):
        alive = [name for name, refs in loaded.items() if any(ref() is not None for ref in refs)]
        alive_at_start.append((stage.label, alive))
        return real_run_stage(stage, run_dir, show_progress, context, alone)

    monkeypatch.setattr(RunContext, "dataset", dataset)
    monkeypatch.setattr(executors, "run_stage", run_stage)
    gc.disable()  # what frees a dataset here is the release, not a collection that happened to run
    try:
        run_experiment(config, tmp_path / "run", show_progress=False)
    finally:
        gc.enable()
    assert alive_at_start == [("base-on-mini", []), ("base-on-tiny", []), ("base-on-other", [])]
    assert all(ref() is None for refs in loaded.values() for ref in refs)
