"""What the running stage took from a cache its estimate knows nothing of (corpus embeddings, a BM25
index, stored LLM answers). Such a run says little of this machine's speed, so it is not remembered
as a rate (``hardneg.stages.rates``). A module of its own: the places that mark it sit low in the
import graph."""

from __future__ import annotations

_marks: list[str] = []


def reset() -> None:
    """A stage starts in this process."""
    _marks.clear()


def reused(what: str) -> None:
    _marks.append(what)


def taken() -> list[str]:
    return list(_marks)
