"""The dry run's times learn this machine: what stages really took against their estimates."""

import json
import re

from helpers import FakeLLM, grid_config, shared_dataset
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.io import cache_root
from hardneg.experiment.runner import run_experiment
from hardneg.stages import rates
from hardneg.stages.rates import KEEP, MachineRates

runner = CliRunner()


def test_a_kind_is_corrected_once_enough_of_it_was_measured_here(monkeypatch):
    monkeypatch.setattr(rates, "core_scale", lambda: 0.5)  # as on a 4-core machine
    for _ in range(3):
        rates.remember("train", seconds=30.0, estimated=100.0)
    rates.remember("evaluate", seconds=90.0, estimated=50.0)  # too little behind it to trust
    rates.remember("pairs", seconds=1.0, estimated=None)  # unknown estimates are not remembered
    here = MachineRates()
    assert here.corrections == {"train": 0.3}
    assert here.seconds("train", 100.0) == 30.0
    assert here.seconds("evaluate", 100.0) == 50.0  # the reference rates, scaled to the cores
    assert here.seconds("train", None) is None
    assert "train x0.30" in here.describe()

    monkeypatch.setattr(rates, "machine_key", lambda: "another CPU x64")
    assert MachineRates().corrections == {}  # another machine (or this one with another CPU) starts over


def test_the_memory_keeps_the_last_stages_and_bounds_the_ratio():
    for _ in range(KEEP + 5):
        rates.remember("generate", seconds=5000.0, estimated=10.0)
    kept = json.loads((cache_root() / "rates.json").read_text())[rates.machine_key()]["generate"]
    assert len(kept) == KEEP
    assert MachineRates().corrections["generate"] == rates.BOUNDS[1]
    (cache_root() / "rates.json").write_text("{not json")
    assert MachineRates().corrections == {}  # a broken file is ignored, not fatal
    rates.remember("train", seconds=10.0, estimated=20.0)  # and replaced
    assert rates.machine_key() in json.loads((cache_root() / "rates.json").read_text())


def test_the_dry_run_uses_the_measured_times(tmp_path, monkeypatch):
    shared_dataset("scifact")

    def total(output: str) -> str:
        return re.search(r"rough total on this machine \([^)]*\): (\S+)", " ".join(output.split())).group(1)

    before = runner.invoke(app, ["quickstart", "--dry-run", "-o", str(tmp_path / "q")])
    assert before.exit_code == 0, before.output
    assert "corrected by what ran" not in before.output
    for kind in ("train", "evaluate", "audit", "mine", "generate", "combine", "pairs", "train-cross-encoder"):
        rates.remember(kind, seconds=1.0, estimated=1000.0)  # everything ran 1000x faster here
    rates._loaded.cache_clear()
    after = runner.invoke(app, ["quickstart", "--dry-run", "-o", str(tmp_path / "q")])
    assert after.exit_code == 0, after.output
    assert "times corrected by what ran on this machine" in " ".join(after.output.split())
    assert total(after.output) != total(before.output)


def test_a_grid_records_what_ran_whole_and_not_what_a_cache_did(
    tmp_path, tiny_model_path, tiny_cross_encoder_path, monkeypatch
):
    monkeypatch.setattr(rates, "MIN_SAMPLE_S", 0.0)  # the tiny grid's stages are estimated in seconds

    def recorded() -> dict[str, int]:
        mine = json.loads((cache_root() / "rates.json").read_text())[rates.machine_key()]
        return {kind: len(runs) for kind, runs in mine.items()}

    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        run_experiment(config, tmp_path / "run", show_progress=False)
        first = recorded()
        assert {"train", "evaluate"} <= set(first)  # mining may reuse an index
        run_experiment(config, tmp_path / "again", show_progress=False)  # same stages, another folder
    second = recorded()
    assert second["train"] > first["train"]  # trained again from scratch: a fair sample
    assert second.get("mine", 0) == first.get("mine", 0)  # BM25's index came from the cache
    # every model was evaluated again, but the untuned base's corpus embeddings came from the cache
    assert second["evaluate"] - first["evaluate"] == first["evaluate"] - 1


def test_a_malformed_memory_never_fails_a_stage_or_a_dry_run(tmp_path):
    for broken in ({"x": []}, {rates.machine_key(): "x"}, {rates.machine_key(): {"train": 5}}, []):
        (cache_root() / "rates.json").write_text(json.dumps(broken))
        assert MachineRates().corrections == {}
        rates.remember("train", seconds=30.0, estimated=200.0)  # rewrites the file with what is sound
        assert MachineRates().corrections == {"train": 0.15}


def test_a_resumed_tune_keeps_the_corrections_it_planned_with(tmp_path):
    from hardneg.tuning.clock import Clock

    for _ in range(3):
        rates.remember("train", seconds=30.0, estimated=100.0)
    rates._loaded.cache_clear()
    clock = Clock(tmp_path / "tune-state.json", budget=100)
    assert clock.rates.corrections == {"train": 0.3}
    clock.save()
    for _ in range(20):  # its own stages ran and moved the machine's figure
        rates.remember("train", seconds=100.0, estimated=100.0)
    rates._loaded.cache_clear()
    assert MachineRates.current().corrections == {"train": 1.0}
    assert Clock(tmp_path / "tune-state.json", budget=100).rates.corrections == {"train": 0.3}
