"""What every retriever returns, so evaluation and mining need not know which one ran."""

from __future__ import annotations

from typing import Protocol

Run = dict[str, dict[str, float]]
"""query id -> document id -> score (higher is better)."""


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Best first, ties broken by document id descending, as trec_eval does."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


class Retriever(Protocol):
    def search(self, queries: dict[str, str], k: int) -> Run: ...
