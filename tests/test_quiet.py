"""The CLI keeps libraries' chatter out of the way unless -v, and names datasets given as folders
by their folder name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_config, write_mining_beir

from hardneg.data.records import Negative, Triplet, write_records


def audit_command(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    triplets = tmp_path / "t.jsonl"
    write_records(triplets, [Triplet(query_id="q", query="what lowers blood pressure", positive_id="p",
                                     positive="Salt reduction lowers blood pressure in adults.",
                                     negatives=[Negative(text="Coffee is brewed with hot water.", source="bm25")])])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    command = [str(Path(sys.executable).parent / "hardneg"), *flags, "audit", str(triplets), "--scorer",
               "cross-encoder:minilm-l6", "-o", str(tmp_path / "audit")]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env)


@pytest.mark.slow  # `hardneg audit` twice in a subprocess, with the real MiniLM cross-encoder
def test_a_model_load_report_shows_only_with_verbose(tmp_path):
    quiet = audit_command(tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "LOAD REPORT" not in quiet.stderr + quiet.stdout and "Loading weights" not in quiet.stderr
    loud = audit_command(tmp_path, "-v")
    assert loud.returncode == 0 and "LOAD REPORT" in loud.stderr + loud.stdout


def test_a_dataset_given_as_a_folder_is_named_by_its_folder(tmp_path):
    from hardneg.experiment import load_experiment, plan_experiment

    one, other = write_mining_beir(tmp_path / "a" / "mini"), write_mining_beir(tmp_path / "b" / "mini")
    config = write_config(tmp_path, f"""
name = "folders"
[[datasets]]
train = "{one}"
test = ["{one}", "{other}"]
[pairs]
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
""")
    plan = plan_experiment(load_experiment(config), tmp_path / "run")
    titles = " ".join(stage.title for stage in plan.stages)
    assert str(tmp_path) not in titles and "evaluate base-on-mini-" in titles
    columns = {(cell.train, cell.test) for cell in plan.cells if cell.train}
    assert len(columns) == 2 and len({train for train, _ in columns}) == 1
    tests = {test for _, test in columns}
    assert len(tests) == 2 and all(test.startswith("mini-") and len(test) == 9 for test in tests)  # two short suffixes
