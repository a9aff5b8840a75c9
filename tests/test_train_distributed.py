"""`train` in several processes: torchrun on the CPU (gloo), one model written by rank 0, the global
batch kept, in-batch negatives gathered across processes, reuse and resume, the runner's ``processes``."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import triplet
from pydantic import ValidationError
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.training import TrainSettings
from hardneg.data.records import write_records
from hardneg.core.errors import HardnegError
from hardneg.stages.base import RunContext, StageCall, execute
from hardneg.stages.training import Train
from hardneg.training.bi_encoder import full_batches, train_bi_encoder

QUERIES = 42
"""One positive each, every text distinct: 4 queries held out (one full validation batch of 4) and
38 training examples, so an epoch at batch 4 ends with a short batch of 2."""
SETTINGS = dict(num_negatives=2, batch_size=4, epochs=1, eval_steps=4, patience=None, max_seq_length=32,
                learning_rate=1e-3, device="cpu")  # fmt: skip
LOSS_TOLERANCE = 1e-5
"""Relative. Without dropout, with the same weights and the same 4 examples in a step, the losses
differ only by float32 rounding (other padding lengths, summation orders, thread counts): measured
2.6e-7 on the first step (0.9002061 and 0.9002059). Had the processes not gathered each other's
passages, each would score its 2 queries against 6 passages instead of 12: 0.8995974 for that
batch (computed in one process), 6.8e-4 away; another batch would be further still."""


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """The installed all-MiniLM-L6-v2 without dropout, so runs differ only by what they compute. (The
    tiny random bi-encoder embeds every text alike: its loss is log(passages in the batch) whatever
    the batch holds, which would not show that both runs saw the same examples.)"""
    from hardneg.core.models import resolve_model

    folder = tmp_path_factory.mktemp("no-dropout") / "model"
    shutil.copytree(resolve_model("minilm-l6"), folder)
    settings = json.loads((folder / "config.json").read_text())
    no_dropout = {name: 0.0 for name in settings if "dropout" in name}
    (folder / "config.json").write_text(json.dumps({**settings, **no_dropout}))
    return folder


@pytest.fixture(scope="module")
def triplets(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("triplets") / "triplets.jsonl"
    write_records(path, [triplet(q) for q in range(QUERIES)])
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, triplets, model_path) -> dict:
    """The reference: the same settings in this process."""
    output = tmp_path_factory.mktemp("one") / "model"
    train_bi_encoder(triplets, TrainSettings(base_model=str(model_path), **SETTINGS), output, False)
    return json.loads((output / "hardneg_training.json").read_text())


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 hardneg ...`` as a user types it (``--standalone``: a free port)."""
    hardneg = str(Path(sys.executable).parent / "hardneg")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", hardneg, *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def losses(provenance: dict) -> list[float]:
    return [entry["loss"] for entry in provenance["log"] if "loss" in entry]


def test_short_batches_are_topped_up_with_earlier_examples_that_share_no_text():
    texts = {0: {"a", "x"}, 1: {"b"}, 2: {"c"}, 3: {"d", "x"}, 4: {"e"}}
    batches = list(full_batches([[0, 1], [2, 3], [4]], 2, lambda i: texts[i]))
    assert batches == [[0, 1], [2, 3], [4, 0]]
    assert list(full_batches([[1], [0]], 2, lambda i: texts[i])) == [[1, 1], [0, 1]]  # nothing earlier: repeat
    assert list(full_batches([[3], [0]], 2, lambda i: texts[i])) == [[3, 3], [0, 0]]  # 0 and 3 share 'x'


def test_the_global_batch_must_split_evenly_and_processes_is_no_train_flag(tmp_path, monkeypatch, triplets):
    with pytest.raises(ValidationError, match="batch_size 16 does not split evenly over 3 processes"):
        TrainSettings(processes=3)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(HardnegError, match="batch_size 16 is the global batch, split evenly over the 3 processes"):
        train_bi_encoder(triplets, TrainSettings(), tmp_path / "m", False)
    assert "--processes" not in CliRunner().invoke(app, ["train", "--help"]).output
    cpu, gpu = (Train().resources(TrainSettings(processes=2, device=d), None) for d in ("cpu", "cuda"))
    assert (cpu.cpus, cpu.gpus, cpu.memory_gb) == (2, 0, 4) and (gpu.cpus, gpu.gpus) == (1, 2)


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")
def test_torchrun_writes_one_model_with_the_steps_and_first_loss_of_one_process(tmp_path, triplets, model_path, one_process):
    flags = ["-t", str(triplets), "--base-model", str(model_path), "-n", "2", "--batch-size", "4", "--epochs", "1",
             "--eval-steps", "4", "--patience", "0", "--max-seq-length", "32", "--learning-rate", "1e-3",
             "--device", "cpu", "-q"]  # fmt: skip
    result = torchrun("train", "-o", str(tmp_path / "model"), *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.manifest.json"]  # no staging, no checkpoints
    provenance = json.loads((tmp_path / "model" / "hardneg_training.json").read_text())
    counts, reference = provenance["counts"], one_process["counts"]
    assert counts["world_size"] == 2 and reference["world_size"] == 1
    assert counts["train_examples"] == 38 and counts["steps"] == reference["steps"] == math.ceil(38 / 4)
    first, reference_first = losses(provenance)[0], losses(one_process)[0]
    print(f"first-step loss: 1 process {reference_first!r}, 2 processes {first!r}")
    assert first == pytest.approx(reference_first, rel=LOSS_TOLERANCE)
    assert counts["start_validation_loss"] == pytest.approx(reference["start_validation_loss"], rel=LOSS_TOLERANCE)
    # The updates agree too: every later step but the last (2 examples alone, topped up to 4 here).
    assert losses(provenance)[1:-1] == pytest.approx(losses(one_process)[1:-1], rel=1e-3, abs=1e-5)

    written = (tmp_path / "model" / "hardneg_training.json").stat().st_mtime_ns
    again = torchrun("train", "-o", str(tmp_path / "model"), *flags)
    assert again.returncode == 0 and again.stdout.count("reused the model trained earlier") == 1  # rank 0 alone reports
    assert (tmp_path / "model" / "hardneg_training.json").stat().st_mtime_ns == written  # no rank rewrote it


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")
def test_the_runner_trains_in_torchrun_when_processes_is_two_and_resumes_a_checkpoint(tmp_path, triplets, tiny_model_path):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("simulated crash")

    config = TrainSettings(base_model=str(tiny_model_path), **{**SETTINGS, "eval_steps": 2}, max_steps=4, processes=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_bi_encoder(triplets, config, tmp_path / "model", False, callbacks=[Crash()])
    call = StageCall(config=config, inputs={"triplets": [triplets]}, output=tmp_path / "model", label="tiny",
                     show_progress=False, context=RunContext())  # fmt: skip
    execute(Train(), call)
    counts = json.loads((tmp_path / "model" / "hardneg_training.json").read_text())["counts"]
    assert counts["world_size"] == 2 and counts["resumed_from"] == "checkpoint-2" and counts["steps"] == 4
    assert not (tmp_path / "model.checkpoints").exists()

    lines = triplets.read_text().splitlines()
    first = {**json.loads(lines[0]), "negatives": []}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    call.inputs, call.output = {"triplets": [bad]}, tmp_path / "bad-model"
    with pytest.raises(HardnegError, match=r"^train tiny: training in 2 processes \(torchrun\) failed: .*bad.jsonl:1: "):
        execute(Train(), call)


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")
def test_accelerate_launch_trains_in_two_processes_too(tmp_path, triplets, model_path):
    """The launcher users of accelerate reach for; on CPU it starts gloo processes like torchrun."""
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hardneg.cli", "train",
               "-t", str(triplets), "-o", str(tmp_path / "model"), "--base-model", str(model_path), "-n", "2",
               "--batch-size", "4", "--max-steps", "2", "--eval-steps", "2", "--max-seq-length", "32", "--device", "cpu", "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads((tmp_path / "model" / "hardneg_training.json").read_text())["counts"]
    assert counts["world_size"] == 2 and counts["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.manifest.json"]
