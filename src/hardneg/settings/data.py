"""What is read from a BEIR dataset: (query, positive) pairs, and the reduced test set of a quick run."""

from __future__ import annotations

from pydantic import Field

from hardneg.settings.base import DatasetRef, Settings


class PairsSettings(DatasetRef):
    """The (query, positive) pairs of a split: what every source of negatives starts from."""

    split: str = "train"
    """Qrels split whose positives (score > 0) become pairs."""
    one_per_query: bool = False
    """Keep each query's best-graded positive only."""
    max_pairs: int | None = Field(None, gt=0)
    """Keep a seeded random sample of this many pairs."""
    seed: int = 0
    """Seed of the ``max_pairs`` sample."""


class PoolPairsSettings(Settings):
    """The pairs whose positives make a pool source's pool, drawn from the train split as the grid's
    ``[pairs]`` draws, with these keys in place of its own: ``{}`` is every pair ``[pairs]`` would
    give without its ``max_pairs``."""

    max_pairs: int | None = Field(None, gt=0)
    """A seeded sample of this many pairs (unset: all of them)."""
    one_per_query: bool | None = None
    """Each query's best positive only (unset: as ``[pairs]``); false puts every judged positive
    of the split into the pool."""


class PoolSettings(DatasetRef):
    """A reduced test set: a seeded sample of queries and, with ``pool_depth``, the documents to search."""

    split: str = "test"
    """Qrels split to test on."""
    max_queries: int | None = Field(None, gt=0)
    """A seeded sample of the test queries (None: all)."""
    pool_depth: int | None = Field(None, gt=0)
    """Search every judged document plus BM25's top ``pool_depth`` per query, not the whole corpus."""
    seed: int = 0
    """Seeds the sample of test queries."""
