"""One commit point per stage: done only when its record (written last) matches its output; files a
stage reads enter its key by content; a worker that reads other data than the plan stops; the time of
attempts that never finished is kept."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import mini_head, write_config

from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.core.manifest import committed, manifest_path
from hardneg.experiment import load_experiment, plan_experiment
from hardneg.experiment.executors import check_dataset, lost_path, progress_path, run_stage
from hardneg.stages import RunContext, run_kind


def test_a_stage_is_done_only_when_its_record_matches_its_output(tiny_beir, tmp_path):
    out = tmp_path / "pairs.jsonl"
    run_kind("pairs", {"dataset": str(tiny_beir)}, {}, out, show_progress=False)
    assert committed(out)
    record = manifest_path(out)
    saved = record.read_text()
    record.unlink()  # killed between the output and its record: not trusted
    assert not committed(out)
    record.write_text(saved)
    os.utime(out, ns=(1, 1))  # same bytes, another mtime: verified by hash, kept, the record updated
    assert committed(out) and json.loads(record.read_text())["output_stat"]["mtime_ns"] == 1
    with out.open("a") as handle:  # edited after it was recorded: redone
        handle.write("\n")
    assert not committed(out)
    old = {k: v for k, v in json.loads(saved).items() if k != "output_stat"}  # a record of an older version
    run_kind("pairs", {"dataset": str(tiny_beir)}, {}, out, show_progress=False)
    write_json(record, {**old, "output_sha256": json.loads(record.read_text())["output_sha256"]})
    assert committed(out) and "output_stat" in json.loads(record.read_text())
    assert not committed(tmp_path / "missing.jsonl")
    record.write_text("{not json")  # a torn record (it is written atomically, but a disk can lie)
    assert not committed(out)


def _grid(tmp_path: Path, model: Path, template: Path) -> Path:
    return write_config(
        tmp_path,
        mini_head(tmp_path, "keys", model)
        + f"""
[sources.llm]
generate = {{ model = "fake-model", base_url = "http://127.0.0.1:9", template = "{template}", num_negatives = 2 }}
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
""",
    )


def test_a_template_file_enters_its_stage_s_key_by_content(tmp_path, tiny_model_path):
    template = tmp_path / "prompt.txt"
    template.write_text("Query: $query\nWrite $num_negatives passages as a JSON array.")

    def keys() -> dict[str, str]:
        plan = plan_experiment(load_experiment(_grid(tmp_path, tiny_model_path, template)), tmp_path / "run")
        return {stage.title: stage.key for stage in plan.stages}

    first = keys()
    os.utime(template, ns=(5, 5))
    assert keys() == first  # touched, not changed
    template.write_text("Query: $query\nWrite $num_negatives other passages as a JSON array.")
    second = keys()
    changed = {title for title in first if first[title] != second.get(title)}
    assert "generate mini-llm" in changed and "mine mini-bm25" not in changed
    assert all("llm" in title for title in changed)  # the generator and what is made from it


def test_a_worker_that_reads_other_data_stops_the_stage_naming_both_places(
    tmp_path, tiny_model_path, monkeypatch
):
    template = tmp_path / "prompt.txt"
    template.write_text("Query: $query\nWrite $num_negatives passages.")
    config = load_experiment(_grid(tmp_path, tiny_model_path, template))
    plan = plan_experiment(config, tmp_path / "run", fetch=True)
    pairs = next(s for s in plan.stages if s.kind == "pairs")
    assert pairs.data_sha and pairs.data_path == str((tmp_path / "mini").resolve())
    check_dataset(pairs, type(config.pairs).model_validate(pairs.config))  # the same data: no complaint

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "mini", elsewhere / "mini")
    (elsewhere / "mini" / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq-solar-0\ts0\t1\n")
    moved = pairs.model_copy(update={"config": {**pairs.config, "data_root": str(elsewhere)}})
    with pytest.raises(HardnegError) as error:
        run_stage(moved, tmp_path / "run", False, RunContext())
    message = str(error.value)
    assert str((elsewhere / "mini").resolve()) in message and pairs.data_path in message
    assert "give every worker the same data" in message and "\n" not in message
    assert not (tmp_path / "run" / pairs.output).exists()  # stopped before any work


def test_an_attempt_that_never_finished_leaves_its_time(tmp_path, tiny_beir):
    from hardneg.experiment.planfile import StageNode

    stage = StageNode(kind="pairs", label="p", key="k1", output="stages/pairs/p.jsonl",
                      config={"dataset": str(tiny_beir)})  # fmt: skip
    run_dir = tmp_path / "run"
    killed = {"attempt": 1, "worker": "h:1", "state": "running", "started": 100.0, "alive": 160.0}
    write_json(progress_path(run_dir, stage), killed)
    record = run_stage(stage, run_dir, False, RunContext())
    assert record["attempt"] == 2 and record["state"] == "done"
    lost = [json.loads(line) for line in lost_path(run_dir, stage).read_text().splitlines()]
    assert lost == [{"attempt": 1, "worker": "h:1", "state": "running", "started": 100.0, "seconds": 60.0}]
    run_stage(stage, run_dir, False, RunContext())  # a finished attempt is not lost work
    assert len(lost_path(run_dir, stage).read_text().splitlines()) == 1


@pytest.mark.parametrize("how", ["read-only", "another user", "a file", "a file, dry run", "under a file"])
def test_a_run_folder_we_cannot_own_fails_in_one_line_before_any_work(tmp_path, tiny_model_path, how):
    from typer.testing import CliRunner

    from hardneg.cli import app

    template = tmp_path / "prompt.txt"
    template.write_text("Query: $query\nWrite $num_negatives passages.")
    config = _grid(tmp_path, tiny_model_path, template)
    run_dir = tmp_path / "run"
    if how.startswith("a file"):
        run_dir.write_text("my notes\n")
    elif how == "under a file":
        run_dir.write_text("my notes\n")
        run_dir = run_dir / "inside"
    else:
        run_dir.mkdir()
    if how == "read-only":
        run_dir.chmod(0o555)
    elif how == "another user":
        os.chown(run_dir, 54321, 54321) if os.geteuid() == 0 else pytest.skip("chown needs root")
    dry = ["--dry-run"] if how.endswith("dry run") else []
    result = CliRunner().invoke(app, ["run", str(config), "-o", str(run_dir), *dry])
    if run_dir.is_dir():
        run_dir.chmod(0o755)
    assert result.exit_code == 2 and result.output.count("\n") <= 2, result.output
    expected = {
        "read-only": "read-only (mode dr-xr-xr-x)",
        "another user": "owned by another user (uid 54321",
        "under a file": f"under {tmp_path / 'run'}, a file, not a folder",
    }
    assert expected.get(how, "a file, not a folder") in " ".join(result.output.split())
    if how.startswith("a file") or how == "under a file":
        assert (tmp_path / "run").read_text() == "my notes\n"  # left as it was
    else:
        assert list(run_dir.iterdir()) == []  # nothing written
