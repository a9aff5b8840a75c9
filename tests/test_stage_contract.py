"""The stage registry's contract: every kind's settings survive a dump and a re-parse, every kind
has a command and a label for reports, and the bundled configs keep the stage keys they had
before the spine was rebuilt (so a study's run folders are reused as they are)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import SHARED_BEIR

from hardneg.cli import app
from hardneg.experiment.config import load_experiment
from hardneg.experiment.plan import build_plan
from hardneg.settings.base import key_settings
from hardneg.stages import KINDS, source_kinds

ROOT = Path(__file__).resolve().parents[1]
OFF_DEFAULT = {  # one setting each kind's key must keep through a round trip
    "pairs": {"dataset": "scifact", "max_pairs": 7},
    "mine": {"dataset": "scifact", "method": "dense", "filters": {"relative_margin": 0.05}},
    "generate": {"model": "m", "base_url": "http://127.0.0.1:1/v1,http://127.0.0.1:2/v1", "sampling": {"top_k": None}},
    "combine": {"preset": "llm+bm25", "length_band": [0.5, 2.0], "judge": {"action": "relabel"}},
    "train-cross-encoder": {"dataset": "scifact", "loss": "mnrl"},
    "train": {"max_steps": 3, "device": "cpu"},
    "pool": {"dataset": "scifact", "pool_depth": 5},
    "evaluate": {"dataset": "scifact", "retriever": "minilm-l6", "dense": {"max_seq_length": 128}},
    "audit": {"scorer": "cross-encoder:x", "easy_margin": 0.3},
}


def _commands() -> set[str]:
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    return names | {f"{group.name} {c.name}" for group in app.registered_groups for c in group.typer_instance.registered_commands}


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_round_trips_its_settings_and_has_a_command_and_a_label(name):
    kind = KINDS[name]
    config = kind.parse(OFF_DEFAULT[name])
    again = kind.parse(json.loads(json.dumps(config.model_dump(mode="json"))))
    assert again == config and key_settings(again) == key_settings(config)
    assert key_settings(config), "the off-default setting enters the key"
    assert kind.cli in _commands() or kind.cli.startswith("stage ")
    assert kind.label and kind.title, f"{name}: no label for reports"
    assert kind.folder and kind.config_type.__name__.endswith("Settings")


def test_the_sources_a_grid_can_name_are_the_registered_source_kinds():
    assert list(source_kinds()) == ["mine", "generate", "combine"]
    for kind in source_kinds().values():
        assert kind.source_settings is not None and kind.source_settings.kind == kind.name


@pytest.mark.skipif(not SHARED_BEIR.exists(), reason="needs ../shared/data")
def test_the_bundled_configs_keep_every_stage_key(tmp_path, monkeypatch):
    """tests/data/plan_keys.json was recorded by the planner before the spine was rebuilt."""
    monkeypatch.chdir(ROOT)
    recorded = json.loads((Path(__file__).parent / "data" / "plan_keys.json").read_text())
    for config, keys in recorded.items():
        plan = build_plan(load_experiment(ROOT / config), tmp_path / "run", fetch=False)
        if config != "configs/study.toml":
            assert sorted(f"{s.kind}/{s.label}/{s.key}" for s in plan.stages) == keys, config
            continue
        # The study grew rows and a test set since (issue 24): every stage it still plans keeps its key,
        # so a run folder of the first study is reused.
        planned = {f"{s.kind}/{s.label}": s.key for s in plan.stages}
        old = dict(key.rsplit("/", 1) for key in keys)
        kept = {name: key for name, key in old.items() if name in planned}
        assert {name: planned[name] for name in kept} == kept and len(kept) >= 56, config
