"""Cache keys leave out settings at their default, so a changed default would silently reuse work
made under the old one. This test holds every keyed default against a recorded snapshot: a changed
default fails until PLAN_VERSION is bumped; a new setting fails until it is recorded.

Record (after bumping PLAN_VERSION, or for new settings): HARDNEG_RECORD_KEY_DEFAULTS=1 pytest tests/test_key_defaults.py
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

import hardneg
from hardneg.experiment.keys import PLAN_VERSION
from hardneg.settings.base import Settings, in_key, key_settings

SNAPSHOT = Path(__file__).parent / "data" / "key_defaults.json"


def _classes(root: type) -> list[type]:
    for module in pkgutil.walk_packages(hardneg.__path__, "hardneg."):  # every settings class, whatever ran before
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, todo = {}, [root]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("hardneg."):  # not a test's own Settings subclass (test_cli_options)
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
            todo.append(sub)
    return [found[name] for name in sorted(found)]


def keyed_defaults() -> dict[str, object]:
    defaults: dict[str, object] = {}
    for cls in _classes(Settings):
        for name, info in cls.model_fields.items():
            if in_key(info) and not info.is_required():
                value = info.get_default(call_default_factory=True)
                value = key_settings(value) if isinstance(value, BaseModel) else value  # what a key sees of it
                defaults[f"{cls.__module__}.{cls.__qualname__}.{name}"] = to_jsonable_python(value)
    return json.loads(json.dumps(defaults, sort_keys=True, default=str))


def _changed(recorded: object, now: object) -> bool:
    """A nested default (say EvaluateSettings.dense) gaining a field is not a change: the new field is
    left out of keys at its default, and is recorded on its own (DenseSettings.backend)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        return any(k not in now or _changed(v, now[k]) for k, v in recorded.items())
    return recorded != now


def test_keyed_defaults_match_the_snapshot_of_this_plan_version():
    now = keyed_defaults()
    recorded = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {"plan_version": PLAN_VERSION, "defaults": {}}
    same_version = recorded["plan_version"] == PLAN_VERSION
    changed = sorted(k for k, v in recorded["defaults"].items() if k in now and _changed(v, now[k])) if same_version else []
    assert not changed, f"defaults changed without bumping PLAN_VERSION (keys would reuse old work): {changed}"
    if os.environ.get("HARDNEG_RECORD_KEY_DEFAULTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps({"plan_version": PLAN_VERSION, "defaults": now}, indent=1, sort_keys=True) + "\n")
        return
    assert same_version, "PLAN_VERSION changed: record the defaults (see this file's docstring)"
    missing = sorted(set(now) - set(recorded["defaults"]))
    assert not missing, f"settings not recorded (see this file's docstring): {missing}"


def test_a_setting_at_its_default_stays_out_of_the_key():
    from hardneg.settings.mining import MineSettings
    from hardneg.settings.retrieval import DenseSettings

    assert key_settings(DenseSettings()) == {}
    assert key_settings(MineSettings(dataset="scifact")) == {"dataset": "scifact"}
    assert key_settings(MineSettings(dataset="scifact", num_negatives=3)) == {"dataset": "scifact", "num_negatives": 3}
    # A nested setting off its default enters with only what differs.
    mine = MineSettings(dataset="scifact", dense=DenseSettings(max_seq_length=128))
    assert key_settings(mine)["dense"] == {"max_seq_length": 128}
