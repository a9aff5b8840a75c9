"""Scoring (query, document) items with BM25, a bi-encoder or a cross-encoder.

Mining needs scores twice: to rank candidates, and to compare a candidate with the positive for
the false-negative filters. One interface serves both, batched over all items at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from hardneg.data.beir import Document
from hardneg.retrieval import BM25Retriever, DenseRetriever

Item = tuple[str, str, str]
"""(query_id, query text, document id)."""


class Scorer(Protocol):
    def score(self, items: list[Item]) -> np.ndarray: ...


class BM25Scorer:
    def __init__(self, retriever: BM25Retriever):
        self.retriever = retriever

    def score(self, items: list[Item]) -> np.ndarray:
        by_query: dict[str, list[int]] = {}
        for n, (query_id, _, _) in enumerate(items):
            by_query.setdefault(query_id, []).append(n)
        out = np.zeros(len(items), dtype=np.float32)
        for query_id, rows in by_query.items():
            all_scores = self.retriever.score_all(items[rows[0]][1])
            out[rows] = all_scores[self.retriever.rows_of([items[n][2] for n in rows])]
        return out


class DenseScorer:
    def __init__(self, retriever: DenseRetriever):
        self.retriever = retriever

    def score(self, items: list[Item]) -> np.ndarray:
        if not items:
            return np.zeros(0, dtype=np.float32)
        texts = {query_id: query for query_id, query, _ in items}  # each query encoded once
        row = {query_id: i for i, query_id in enumerate(texts)}
        embeddings = self.retriever.encode_queries(list(texts.values()))
        queries = embeddings[[row[item[0]] for item in items]]
        docs = self.retriever.corpus_embeddings[self.retriever.rows_of([item[2] for item in items])]
        return np.einsum("ij,ij->i", queries, docs).astype(np.float32)


def predict_pairs(
    model,
    pairs: list[tuple[str, str]],
    batch_size: int,
    show_progress: bool,
    devices: list[str] | None = None,
) -> np.ndarray:
    """A cross-encoder's score per (query, passage), on one device or spread over ``devices`` by
    sentence-transformers' multi-process pool (chunks of 4 batches, so a slow device holds back little)."""
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    pool = model.start_multi_process_pool(devices) if devices else None
    try:
        scores = model.predict(
            pairs,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            pool=pool,
            chunk_size=batch_size * 4 if pool is not None else None,
        )
    finally:
        if pool is not None:
            model.stop_multi_process_pool(pool)
    return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


class CrossEncoderScorer:
    def __init__(
        self,
        model,
        corpus: Mapping[str, Document],
        batch_size: int = 64,
        show_progress: bool = True,
        devices: list[str] | None = None,
    ):
        self.model = model
        self.corpus = corpus
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.devices = devices

    def score(self, items: list[Item]) -> np.ndarray:
        texts = [(query, self.corpus[doc_id].full_text) for _, query, doc_id in items]
        return predict_pairs(self.model, texts, self.batch_size, self.show_progress, self.devices)
