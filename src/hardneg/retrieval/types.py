"""What every retriever returns, so evaluation and mining need not know which one ran."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from hardneg.data.store import CorpusStore

Run = dict[str, dict[str, float]]
"""query id -> document id -> score (higher is better)."""


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Best first, ties broken by document id descending, as trec_eval does."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


class Retriever(Protocol):
    def search(self, queries: dict[str, str], k: int) -> Run: ...


class CorpusRows:
    """Row numbers <-> document ids of a retriever's corpus: through a corpus store's id index and
    id column, or, for a plain mapping, its ids as a list and a dict made on first use."""

    def __init__(self, corpus: Mapping):
        self._store = corpus if isinstance(corpus, CorpusStore) else None
        self.doc_ids: Sequence[str] = self._store.ids if self._store is not None else list(corpus)
        self._positions: dict[str, int] | None = None

    def ids_at(self, rows) -> list[str]:
        """Document ids of rows, fetched together."""
        if self._store is not None:
            return self._store.ids.take(rows)
        return [self.doc_ids[i] for i in rows]

    def rows_of(self, doc_ids: list[str]) -> np.ndarray:
        """Rows of document ids (KeyError for an id not in the corpus)."""
        if self._store is not None:
            return self._store.rows_of(doc_ids)
        if self._positions is None:
            self._positions = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        return np.asarray([self._positions[doc_id] for doc_id in doc_ids], dtype=np.int64)
