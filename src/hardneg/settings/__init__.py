"""Every settings class, one module per concern, one naming scheme (``*Settings``): the stage
configs that the CLI, the Python API and grid TOML share, and the grid's own tables. Settings are
strict and frozen; a field's docstring is its help; ``runtime(...)`` fields stay out of cache keys."""

from hardneg.core.lazy import lazy_names

_MODULES = {
    "base": "Settings DatasetRef Devices runtime key_settings in_key comma_list "
    "DEFAULT_BI_ENCODER DEFAULT_CROSS_ENCODER DEFAULT_LLM",
    "retrieval": "BM25Settings DenseSettings EncodeBackend",
    "data": "PairsSettings PoolSettings",
    "mining": "FilterSettings MineSettings",
    "llm": "SamplingSettings RejectSettings LLMSettings GenerateSettings JudgeSettings parse_budget",
    "combine": "CombineSettings PRESETS",
    "training": "TrainSettings CrossEncoderTrainSettings",
    "evaluation": "EvaluateSettings Metrics DEFAULT_METRICS",
    "audit": "AuditSettings",
    "exchange": "ExportSettings ImportSettings",
    "experiment": "ExperimentSettings GridDatasetSettings SourceSettings MineSourceSettings "
    "GenerateSourceSettings CombineSourceSettings CombineInputsSettings GridTrainSettings "
    "GridEvaluationSettings GridAuditSettings "
    "ExecutorSettings SOURCE_MODEL",
    "tune": "TuneSettings parse_duration",
}
_WHERE = {name: f"hardneg.settings.{module}" for module, names in _MODULES.items() for name in names.split()}

__all__ = list(_WHERE)

__getattr__ = lazy_names(__name__, _WHERE)
