"""Names that moved in 0.2 still import from their old places for one release, each with a
DeprecationWarning that names the new place, and give the very same objects."""

from __future__ import annotations

import importlib

import pytest

import hardneg
from hardneg import settings
from hardneg.core import errors, io
from hardneg.reporting import report

OLD = [  # (old module, old name, the object it must be now)
    ("hardneg.config", "MineConfig", settings.MineSettings),
    ("hardneg.config", "EvaluateConfig", settings.EvaluateSettings),
    ("hardneg.config", "BM25Settings", settings.BM25Settings),
    ("hardneg.config", "LLMEndpoint", settings.LLMSettings),
    ("hardneg.config_base", "runtime", settings.runtime),
    ("hardneg.config_llm", "GenerateConfig", settings.GenerateSettings),
    ("hardneg.errors", "HardnegError", errors.HardnegError),
    ("hardneg.io", "write_json", io.write_json),
    ("hardneg.report", "write_report", report.write_report),
    ("hardneg.audit", "AuditSettings", settings.AuditSettings),
    ("hardneg.experiment.config", "ExperimentConfig", settings.ExperimentSettings),
    ("hardneg.experiment.config", "DatasetSpec", settings.GridDatasetSettings),
    ("hardneg.experiment.executors", "ExecutorSettings", settings.ExecutorSettings),
]


@pytest.mark.parametrize(("module", "name", "now"), OLD, ids=[f"{m}.{n}" for m, n, _ in OLD])
def test_an_old_name_warns_and_is_the_new_object(module, name, now):
    with pytest.warns(DeprecationWarning, match=f"{name}.* moved to "):
        value = getattr(importlib.import_module(module), name)
    assert value is now


def test_old_from_imports_work_and_the_package_face_keeps_its_old_names():
    with pytest.warns(DeprecationWarning):
        from hardneg.config import PairsConfig  # noqa: PLC0415
    assert PairsConfig is settings.PairsSettings
    with pytest.warns(DeprecationWarning, match="EvaluateSettings"):
        assert hardneg.EvaluateConfig is settings.EvaluateSettings
    with pytest.raises(AttributeError):
        importlib.import_module("hardneg.config").NoSuchThing  # noqa: B018


def test_new_names_do_not_warn(recwarn):
    from hardneg.settings import CombineSettings, MineSettings  # noqa: F401, PLC0415
    from hardneg.stages import register, run_kind  # noqa: F401, PLC0415

    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning) and "hardneg" in str(w.message)]
