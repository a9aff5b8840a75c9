"""What every retriever returns, so evaluation and mining need not know which one ran."""

from __future__ import annotations

from typing import Protocol

Run = dict[str, dict[str, float]]
"""query id -> document id -> score (higher is better)."""


class Retriever(Protocol):
    def search(self, queries: dict[str, str], k: int) -> Run: ...
