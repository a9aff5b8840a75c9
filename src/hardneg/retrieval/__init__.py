"""Retrievers over a BEIR corpus: BM25 (bm25s) and exact dense search (sentence-transformers)."""

from hardneg.retrieval.bm25 import BM25Retriever
from hardneg.retrieval.dense import DenseRetriever
from hardneg.retrieval.types import Retriever, Run

__all__ = ["BM25Retriever", "DenseRetriever", "Retriever", "Run"]
