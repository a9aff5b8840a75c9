"""A stage kind defined here, outside the package: a `dedupe` source that drops near-duplicate
negatives. Registered with one call, a grid names it like mine or combine, and the plan, the dry
run, both executors, the report and `hardneg stage` handle it, with nothing changed under src/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import mini_head, write_config
from pydantic import Field
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.data.records import read_triplets, write_records
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.settings import ExecutorSettings, Settings
from hardneg.stages import InputSpec, StageCall, StageKind, StageResult, register, unregister

WORD = re.compile(r"\w+")


class DedupeSettings(Settings):
    """Keep a negative only if it is not a near-copy of one kept before it in its triplet."""

    input: str
    """The grid source whose negatives are deduplicated."""
    threshold: float = Field(0.5, gt=0, le=1)
    """Word-set Jaccard at or above which a negative is a near-duplicate."""


class Dedupe(StageKind):
    name, title, folder, config_type = "dedupe", "deduplicated negatives", "negatives", DedupeSettings
    inputs = {"triplets": InputSpec()}
    source = True

    def upstream(self, source) -> list[str]:
        return [source.dedupe.input]

    def wire(self, source, context):
        return context.add("dedupe", source.dedupe, {"triplets": [context.negatives(source.dedupe.input)]})

    def run(self, call: StageCall) -> StageResult:
        kept, dropped = [], 0
        for triplet in read_triplets(call.input("triplets")):
            negatives, seen = [], []
            for negative in triplet.negatives:
                words = set(WORD.findall(negative.text.lower()))
                if any(len(words & other) / max(1, len(words | other)) >= call.config.threshold for other in seen):
                    dropped += 1
                    continue
                seen.append(words)
                negatives.append(negative)
            kept.append(triplet.model_copy(update={"negatives": negatives}))
        write_records(call.output, kept)
        return StageResult({"triplets": len(kept), "dropped": dropped})


@pytest.fixture
def dedupe():
    register(Dedupe())
    yield
    unregister("dedupe")


def config(tmp_path: Path, model: Path) -> Path:
    return write_config(tmp_path, mini_head(tmp_path, "plugin", model) + """
[evaluation]
top_k = 10
bootstrap_resamples = 100
[sources.bm25]
mine = { method = "bm25", num_negatives = 3 }
[sources."bm25 deduped"]
label = "BM25, near-copies dropped"
dedupe = { input = "bm25", threshold = 0.3 }
""")


def test_a_grid_names_an_unregistered_kind_and_fails_naming_the_kinds(tmp_path, tiny_model_path):
    with pytest.raises(HardnegError, match=r"sources\.bm25 deduped: needs exactly one of 'mine', 'generate', 'combine'"):
        load_experiment(config(tmp_path, tiny_model_path))


def test_the_plan_and_the_dry_run_take_the_new_kind(dedupe, tmp_path, tiny_model_path):
    path = config(tmp_path, tiny_model_path)
    grid = load_experiment(path)
    assert grid.sources["bm25 deduped"].kind == "dedupe"
    plan = plan_experiment(grid, tmp_path / "run")
    deduped = next(s for s in plan.stages if s.kind == "dedupe")
    mined = next(s for s in plan.stages if s.kind == "mine")
    assert deduped.deps == [mined.key] and deduped.inputs == {"triplets": [mined.output]}
    assert [c.kind for c in plan.cells if c.source != "base"] == ["mine", "dedupe"]
    with pytest.raises(HardnegError, match="sources.bm25 deduped.dedupe.threshold"):
        load_experiment(path, {"sources.bm25 deduped.dedupe.threshold": 2})
    dry = CliRunner().invoke(app, ["run", str(path), "--dry-run", "-o", str(tmp_path / "run")])
    assert dry.exit_code == 0, dry.output
    assert "dedupe plugin-bm25_deduped" in dry.output or "dedupe mini-bm25 deduped" in dry.output
    assert "dedupe (deduplicated negatives)" in dry.output


def _run(tmp_path: Path, model: Path, executor: ExecutorSettings | None = None) -> tuple[Path, dict]:
    run_dir = tmp_path / ("ray" if executor else "local")
    run_experiment(config(tmp_path, model), run_dir, show_progress=False, executor=executor)
    return run_dir, json.loads((run_dir / "results.json").read_text())


def test_the_local_executor_runs_it_and_the_report_names_it(dedupe, tmp_path, tiny_model_path):
    run_dir, results = _run(tmp_path, tiny_model_path)
    row = next(r for r in results["rows"] if r["source"] == "bm25 deduped")
    assert row["kind"] == "dedupe" and row["made_by"] == "deduplicated negatives"
    assert row["label"] == "BM25, near-copies dropped" and row["cells"]
    (output,) = [p for p in (run_dir / "stages" / "negatives").glob("mini-bm25_deduped-*.jsonl")]
    manifest = json.loads(output.with_name(output.name + ".manifest.json").read_text())
    assert manifest["stage"] == "dedupe" and manifest["counts"]["dropped"] > 0
    mined = next((run_dir / "stages" / "negatives").glob("mini-bm25-*.jsonl"))
    before = sum(len(t.negatives) for t in read_triplets(mined))
    assert sum(len(t.negatives) for t in read_triplets(output)) == before - manifest["counts"]["dropped"]
    assert "dedupe (deduplicated negatives)" in (run_dir / "results.md").read_text()  # the cost table
    assert any("bm25 deduped" in name for name in results["audits"]), results["audits"].keys()
    assert any("bm25 deduped" in name for name in results["training"]), results["training"].keys()


def test_hardneg_stage_runs_it_on_files_with_a_manifest(dedupe, tmp_path, tiny_model_path):
    run_dir, _ = _run(tmp_path, tiny_model_path)
    mined = next((run_dir / "stages" / "negatives").glob("mini-bm25-*.jsonl"))
    out = tmp_path / "deduped.jsonl"
    args = ["stage", "dedupe", "-i", f"triplets={mined}", "-o", str(out), "--set", "input=bm25", "--set", "threshold=0.3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    grid_made = next((run_dir / "stages" / "negatives").glob("mini-bm25_deduped-*.jsonl"))
    assert out.read_bytes() == grid_made.read_bytes()
    assert json.loads((tmp_path / "deduped.jsonl.manifest.json").read_text())["stage"] == "dedupe"
    bad = CliRunner().invoke(app, ["stage", "dedupe", "-i", f"triplets={mined}", "-o", str(out), "--set", "threshold=0.3"])
    assert bad.exit_code == 2 and "input" in bad.output
    missing = CliRunner().invoke(app, ["stage", "dedupe", "-i", f"triplets={mined}", "-o", str(out), "-c", "no.toml"])
    assert missing.exit_code == 2 and "no.toml: no such config file" in missing.output
    (tmp_path / "dedupe.toml").write_text('input = "bm25"\nthreshold = 0.3\n')
    args = ["stage", "dedupe", "-i", f"triplets={mined}", "-o", str(tmp_path / "f.jsonl")]
    from_file = CliRunner().invoke(app, [*args, "-c", str(tmp_path / "dedupe.toml")])
    assert from_file.exit_code == 0 and (tmp_path / "f.jsonl").read_bytes() == grid_made.read_bytes()


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray instance at a time, in the worker that runs test_ray.py
def test_ray_workers_run_a_kind_they_never_imported(dedupe, tmp_path, tiny_model_path):
    pytest.importorskip("ray")
    import ray

    local_dir, local = _run(tmp_path, tiny_model_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_dir, remote = _run(tmp_path, tiny_model_path, ExecutorSettings(name="ray", max_retries=0))
    finally:
        ray.shutdown()
    (ours,) = (local_dir / "stages" / "negatives").glob("mini-bm25_deduped-*.jsonl")
    assert (ray_dir / "stages" / "negatives" / ours.name).read_bytes() == ours.read_bytes()
    progress = [json.loads(p.read_text()) for p in (ray_dir / "progress").glob("*.json")]
    assert any(r["stage"].startswith("dedupe ") and r["state"] == "done" for r in progress)
    assert [r["source"] for r in remote["rows"]] == [r["source"] for r in local["rows"]]
