"""hardneg: build hard-negative training data for dense retrievers, and measure what it is worth.

The public names load on first use (PEP 562), so a command that needs no model (generate against
a server, a dry run) does not pay for importing torch."""

from hardneg import _moved
from hardneg.core.lazy import lazy_names

__version__ = "0.1.0"

_moved.install()  # old module paths (hardneg.config, hardneg.report...) still import, with a warning

_WHERE = {
    "BM25Settings": "hardneg.settings",
    "DenseSettings": "hardneg.settings",
    "EvaluateSettings": "hardneg.settings",
    "PairsSettings": "hardneg.settings",
    "MineSettings": "hardneg.settings",
    "GenerateSettings": "hardneg.settings",
    "CombineSettings": "hardneg.settings",
    "TrainSettings": "hardneg.settings",
    "ExperimentSettings": "hardneg.settings",
    "BeirDataset": "hardneg.data",
    "list_datasets": "hardneg.data",
    "load_beir": "hardneg.data",
    "load_dataset": "hardneg.data",
    "resolve_dataset": "hardneg.data",
    "validate_beir": "hardneg.data",
    "DataError": "hardneg.core.errors",
    "HardnegError": "hardneg.core.errors",
    "EvaluationResult": "hardneg.evaluation",
    "evaluate": "hardneg.evaluation",
    "evaluate_run": "hardneg.evaluation",
    "BM25Retriever": "hardneg.retrieval",
    "DenseRetriever": "hardneg.retrieval",
    "StageKind": "hardneg.stages",
    "register": "hardneg.stages",
    "run_kind": "hardneg.stages",
    "run_experiment": "hardneg.experiment",
    "load_experiment": "hardneg.experiment",
    "TuneSettings": "hardneg.settings",
    "tune": "hardneg.tuning",
}

__all__ = list(_WHERE)

_names = lazy_names(__name__, _WHERE)


def __getattr__(name: str):
    if name in _moved.NAMES:  # EvaluateConfig -> EvaluateSettings, with a warning
        import warnings

        warnings.warn(f"hardneg.{name} is now hardneg.{_moved.NAMES[name]}", DeprecationWarning, stacklevel=2)
        name = _moved.NAMES[name]
    return _names(name)
