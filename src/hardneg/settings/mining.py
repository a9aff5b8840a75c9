"""Negatives mined from a corpus: who ranks the candidates, which ranks are taken, and the
false-negative filters (shared with combine)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hardneg.settings.base import (
    DEFAULT_BI_ENCODER,
    DEFAULT_CROSS_ENCODER,
    DatasetRef,
    Devices,
    Settings,
    runtime,
)
from hardneg.settings.retrieval import BM25Settings, DenseSettings

SCORER_KINDS = ("dense:", "cross-encoder:")
"""How a scorer names its model's kind: 'dense:MODEL' or 'cross-encoder:MODEL'."""


def check_scorer(spec: str | None, name: str = "scorer") -> str | None:
    """A scorer is 'dense:MODEL' or 'cross-encoder:MODEL' (filters, score_with, audits)."""
    if spec is not None and not spec.startswith(SCORER_KINDS):
        raise ValueError(f"{name} must be 'dense:MODEL' or 'cross-encoder:MODEL'")
    if spec is not None and "@source:" in spec and not spec.startswith("cross-encoder:@source:"):
        raise ValueError(
            f"{name}: '@source:NAME' is a source's trained cross-encoder: 'cross-encoder:@source:NAME'"
        )
    return spec


class FilterSettings(Settings):
    """False-negative filters, as in sentence-transformers' mine_hard_negatives: a candidate is
    dropped when its score is above ``max_score``, below ``min_score``, or not at least
    ``absolute_margin`` (or ``relative_margin`` of the positive's magnitude; NV-Retriever's
    TopK-PercPos uses 0.05) below the positive's score."""

    max_score: float | None = None
    """Drop negatives scored above this."""
    min_score: float | None = None
    """Drop negatives scored below this floor (too easy)."""
    absolute_margin: float | None = None
    """Drop negatives scored above (positive - margin): likely false negatives; 0 drops those
    above the positive."""
    relative_margin: float | None = Field(None, ge=0, lt=1)
    """As ``absolute_margin``, as a fraction of the positive's score (e.g. 0.05)."""
    scorer: str | None = None
    """Who scores for the filters: None = the mining method's own scores, else
    'dense:MODEL' or 'cross-encoder:MODEL'."""

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (self.max_score, self.min_score, self.absolute_margin, self.relative_margin)
        )

    @field_validator("scorer")
    @classmethod
    def _scorer_kind(cls, scorer: str | None) -> str | None:
        return check_scorer(scorer)


CorpusChoice = Literal["dataset", "pool"]
"""Where candidates come from: the dataset's corpus, or the pool of the pairs file's own positives
(every known positive of the query masked; ``corpus.jsonl`` is never opened)."""


class MineSettings(DatasetRef):
    method: Literal["bm25", "dense", "cross-encoder"] = "bm25"
    """Who ranks the candidates: BM25, a bi-encoder, or a cross-encoder re-ranking BM25's top
    ``rerank_depth``."""
    corpus: CorpusChoice = "dataset"
    """'dataset': mine the dataset's corpus; 'pool': mine the other pairs' positives, for pairs without
    a corpus to index (the dataset, when named, only lends its qrels to mask known positives)."""
    pool_pairs: str | None = None
    """With ``corpus = 'pool'``: a pairs file whose positives join the pool (the mined pairs' own
    always do), e.g. all of your pairs when you mine for a sample of them; its pairs also mask
    their queries' positives. Unset: the pool is the mined pairs' positives."""
    num_negatives: int = Field(5, gt=0)
    """Negatives per pair."""
    depth: int = Field(100, gt=0)
    """Candidates retrieved per query (BM25 or dense)."""
    rerank_depth: int = Field(50, gt=0)
    """BM25 candidates the cross-encoder re-ranks."""
    range_min: int = Field(1, ge=1)
    """Best rank a negative may have (1 = the method's best candidate)."""
    range_max: int | None = Field(None, ge=1)
    """Worst rank a negative may have (None: no limit); with ``range_min``, the rank window
    (1 = the method's best candidate) that negatives are taken from."""
    sampling: Literal["top", "random"] = "top"
    """The 'top' n of the rank window, or a seeded 'random' n."""
    seed: int = 0
    """Seed of the 'random' sampling."""
    model: str | None = None
    """Bi-encoder for 'dense' (default minilm-l6); cross-encoder for 'cross-encoder'."""
    batch_size: int = runtime(64, gt=0)
    """Encoding / cross-encoder batch size."""
    devices: Devices = runtime(None)
    """Several devices for the method's model at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it): the
    bi-encoder encoding the corpus, or the cross-encoder scoring candidates (and a cross-encoder
    filter scorer), through sentence-transformers' multi-process pool: the same scores as one process."""
    filters: FilterSettings = FilterSettings()
    score_with: str | None = None
    """Last, score every chosen negative and its positive with this scorer ('dense:MODEL' or
    'cross-encoder:MODEL', on the texts): each negative's ``score``, the triplet's
    ``positive_score`` and ``scorer`` are then the teacher's, which loss 'margin-mse' distils
    (as combine's ``score_with``). Unset, ``score`` is the mining method's own."""
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()

    @field_validator("score_with")
    @classmethod
    def _score_with(cls, spec: str | None) -> str | None:
        if spec is not None and "@source:" in spec:
            raise ValueError("score_with names a model; a grid source's cross-encoder scores in combine")
        return check_scorer(spec, "score_with")

    @field_validator("filters")
    @classmethod
    def _filter_scorer(cls, filters: FilterSettings) -> FilterSettings:
        if "@source:" in (filters.scorer or ""):
            raise ValueError("filters.scorer names a model; a grid source's cross-encoder filters in combine")
        return filters

    @model_validator(mode="after")
    def _pool_pairs_need_a_pool(self) -> MineSettings:
        if self.pool_pairs is not None and self.corpus != "pool":
            raise ValueError("pool_pairs: goes with corpus = 'pool'")
        return self

    @property
    def ranker(self) -> str:
        """Who ranks the candidates: 'bm25', or the model (named, or the method's default)."""
        if self.method == "bm25":
            return "bm25"
        return self.model or (DEFAULT_BI_ENCODER if self.method == "dense" else DEFAULT_CROSS_ENCODER)
