"""hardneg: build hard-negative training data for dense retrievers, and measure what it is worth.

The public names load on first use (PEP 562), so a command that needs no model (generate against
a server, a dry run) does not pay for importing torch."""

from hardneg.lazy import lazy_names

__version__ = "0.1.0"

_WHERE = {
    "BM25Settings": "hardneg.config", "DenseSettings": "hardneg.config", "EvaluateConfig": "hardneg.config",
    "BeirDataset": "hardneg.data", "list_datasets": "hardneg.data", "load_beir": "hardneg.data",
    "load_dataset": "hardneg.data", "resolve_dataset": "hardneg.data", "validate_beir": "hardneg.data",
    "DataError": "hardneg.errors", "HardnegError": "hardneg.errors",
    "EvaluationResult": "hardneg.evaluation", "evaluate": "hardneg.evaluation", "evaluate_run": "hardneg.evaluation",
    "BM25Retriever": "hardneg.retrieval", "DenseRetriever": "hardneg.retrieval",
}  # fmt: skip

__all__ = list(_WHERE)

__getattr__ = lazy_names(__name__, _WHERE)
