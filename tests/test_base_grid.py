"""A grid of the base model alone (no sources)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_beir, write_mining_beir

from hardneg.experiment import load_experiment, plan_experiment, run_experiment


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
