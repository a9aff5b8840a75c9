"""The modules and names that moved when the package was grouped by concern (0.2): each old import
path keeps working for one release, with a DeprecationWarning that names the new place. One table,
one import hook, instead of a shim file per old module."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
import warnings
from importlib import import_module

MODULES = {
    "hardneg.errors": "hardneg.core.errors",
    "hardneg.io": "hardneg.core.io",
    "hardneg.lazy": "hardneg.core.lazy",
    "hardneg.manifest": "hardneg.core.manifest",
    "hardneg.models": "hardneg.core.models",
    "hardneg.report": "hardneg.reporting.report",
    "hardneg.costs": "hardneg.reporting.costs",
    "hardneg.delivery": "hardneg.reporting.delivery",
    "hardneg.audit": "hardneg.reporting.audit",
    "hardneg.combine": "hardneg.combining.combine",
    "hardneg.filtering": "hardneg.combining.filtering",
    "hardneg.pairs": "hardneg.data.pairs",
    "hardneg.exchange": "hardneg.data.exchange",
    "hardneg.config_base": "hardneg.settings.base",
    "hardneg.config_llm": "hardneg.settings.llm",
    "hardneg.config": "hardneg.settings",
}
"""Old module -> where its names live now."""

NAMES = {
    "MineConfig": "MineSettings",
    "PairsConfig": "PairsSettings",
    "EvaluateConfig": "EvaluateSettings",
    "CrossEncoderTrainConfig": "CrossEncoderTrainSettings",
    "TrainConfig": "TrainSettings",
    "CombineConfig": "CombineSettings",
    "CombineStageConfig": "CombineSettings",
    "GenerateConfig": "GenerateSettings",
    "LLMEndpoint": "LLMSettings",
    "PoolConfig": "PoolSettings",
    "ExportConfig": "ExportSettings",
    "ExperimentConfig": "ExperimentSettings",
    "DatasetSpec": "GridDatasetSettings",
    "SourceSpec": "SourceSettings",
    "CombineSpec": "CombineInputsSettings",
    "EvaluationSpec": "GridEvaluationSettings",
    "AuditSpec": "GridAuditSettings",
}
"""Settings classes renamed to the one convention (``*Settings``)."""

SETTINGS = {  # names that moved out of a module that stays, into hardneg.settings
    "hardneg.experiment.executors": {"ExecutorSettings"},
    "hardneg.experiment.config": {
        "ExperimentConfig",
        "DatasetSpec",
        "SourceSpec",
        "CombineSpec",
        "EvaluationSpec",
        "AuditSpec",
        "SOURCE_MODEL",
    },
}


def _resolve(old: str, name: str) -> object:
    target = MODULES[old]
    new = NAMES.get(name, name)
    module = import_module(target)
    if hasattr(module, new):
        return getattr(module, new)
    settings = import_module("hardneg.settings")
    if hasattr(settings, new):
        return getattr(settings, new)
    raise AttributeError(f"module {old!r} has no attribute {name!r}")


class _Moved(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _resolve(self.__name__, name)
        new = NAMES.get(name, name)
        warnings.warn(
            f"{self.__name__}.{name} moved to {getattr(value, '__module__', MODULES[self.__name__])}.{new}; "
            "the old import goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname in MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _Moved(spec.name, f"moved to {MODULES[spec.name]}")

    def exec_module(self, module):
        pass


def install() -> None:
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())


def moved_from(module: str) -> object:
    """A module ``__getattr__`` for names that moved out of ``module`` into hardneg.settings."""

    def __getattr__(name: str) -> object:
        if name not in SETTINGS.get(module, ()):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new = NAMES.get(name, name)
        warnings.warn(f"{module}.{name} moved to hardneg.settings.{new}", DeprecationWarning, stacklevel=2)
        return getattr(import_module("hardneg.settings"), new)

    return __getattr__
