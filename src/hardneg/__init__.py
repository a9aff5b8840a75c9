"""hardneg: build hard-negative training data for dense retrievers, and measure what it is worth."""

from hardneg.config import BM25Settings, DenseSettings, EvaluateConfig
from hardneg.data import BeirDataset, list_datasets, load_beir, load_dataset, resolve_dataset, validate_beir
from hardneg.errors import DataError, HardnegError
from hardneg.evaluation import EvaluationResult, evaluate, evaluate_run
from hardneg.retrieval import BM25Retriever, DenseRetriever

__version__ = "0.1.0"

__all__ = [
    "BM25Settings", "DenseSettings", "EvaluateConfig", "BeirDataset", "list_datasets", "load_beir",
    "load_dataset", "resolve_dataset", "validate_beir", "DataError", "HardnegError",
    "EvaluationResult", "evaluate", "evaluate_run", "BM25Retriever", "DenseRetriever",
]  # fmt: skip
