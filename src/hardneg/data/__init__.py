"""BEIR data: loading, validation and the dataset registry."""

from hardneg.data.beir import BeirDataset, Document, Qrels, load_beir, validate_beir
from hardneg.data.registry import list_datasets, load_dataset, resolve_dataset

__all__ = [
    "BeirDataset",
    "Document",
    "Qrels",
    "load_beir",
    "validate_beir",
    "list_datasets",
    "load_dataset",
    "resolve_dataset",
]
