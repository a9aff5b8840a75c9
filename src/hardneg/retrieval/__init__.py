"""Retrievers over a BEIR corpus: BM25 (bm25s) and exact dense search (sentence-transformers).
Loaded on first use: importing the protocol types must not import torch."""

from hardneg.core.lazy import lazy_names
from hardneg.retrieval.types import Retriever, Run

_WHERE = {"BM25Retriever": "hardneg.retrieval.bm25", "DenseRetriever": "hardneg.retrieval.dense"}

__all__ = ["BM25Retriever", "DenseRetriever", "Retriever", "Run"]

__getattr__ = lazy_names(__name__, _WHERE)
