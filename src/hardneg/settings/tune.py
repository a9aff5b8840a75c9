"""`hardneg tune`: which negatives, filters and loss suit a user's own data, chosen on a dev split
carved from their train pairs within a time budget."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from hardneg.settings.base import Settings

LOSSES = ("mnrl", "gist", "cached-gist")
"""The losses a tune can try on every source (margin-MSE needs a scorer's scores: give it as a
source of your own in ``--config``)."""


def parse_duration(text: str) -> float:
    """'45m', '1h30m', '90s', '2h', '3600' -> seconds."""
    raw = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise ValueError(f"{text!r}: give a duration such as '45m', '1h30m', '90s' or seconds")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r}: must be above 0")
    return seconds


class TuneSettings(Settings):
    """What ``hardneg tune`` tries and how it spends its budget; the rest of a grid's settings
    (``[train]``, ``[evaluation]``, ``base_model``, extra sources) come from ``--config``."""

    dataset: str | None = None
    """A BEIR folder or dataset name with a train split (or give ``pairs``)."""
    pairs: str | None = None
    """A pairs file (JSONL: query_id, query, positive_id, positive) instead of a dataset's train split."""
    corpus: str | None = None
    """With ``pairs``: a BEIR folder whose corpus.jsonl mining and the dev scores may read."""
    train_split: str = "train"
    """The qrels split the pairs and the dev split come from; no other split is read."""
    budget: str = "45m"
    """Wall time the search may take ('45m', '1h30m'): no trial starts once it cannot finish in time."""
    corpus_free: bool = False
    """Only recipes that never read the corpus: the pool, generators and corpus-free scorers."""
    losses: list[str] = ["mnrl", "cached-gist"]
    """Losses tried on every source."""
    include: list[str] | None = None
    """Only these candidates (by name; see ``hardneg tune --dry-run``)."""
    exclude: list[str] = []
    """Leave these candidates out."""
    dev_share: float = Field(0.2, gt=0, lt=1)
    """Share of the train queries held out as the dev split (by query, seeded)."""
    dev_max_queries: int | None = Field(200, gt=0)
    """At most this many dev queries (None: the whole share)."""
    dev_pool_depth: int | None = Field(10, gt=0)
    """Score dev queries among their judged documents plus BM25's top this many (None: the whole
    corpus, or the pool of all pairs' positives when there is no corpus). Encoding the dev pool is
    most of a first-rung trial's cost: a deeper pool buys fewer recipes."""
    min_dev_queries: int = Field(20, gt=0)
    """Fewer dev queries than this is refused: their scores could not tell recipes apart."""
    reduction_factor: int = Field(3, ge=2)
    """Successive halving keeps the best 1/reduction_factor of the recipes at each rung."""
    min_pairs: int = Field(64, gt=0)
    """Train pairs of the first rung (each later rung has reduction_factor times more, the last all)."""
    max_rungs: int = Field(3, ge=1)
    seed: int = 0
    """Seeds the dev split and every rung's sample of pairs."""

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("losses")
    @classmethod
    def _losses(cls, value: list[str]) -> list[str]:
        unknown = [loss for loss in value if loss not in LOSSES]
        if unknown or not value:
            raise ValueError(f"{unknown or value}: losses are {', '.join(LOSSES)}")
        return value

    @model_validator(mode="after")
    def _input(self) -> TuneSettings:
        if self.dataset is None and self.pairs is None:
            raise ValueError("give a dataset (a BEIR folder or name) or --pairs FILE")
        if self.dataset is not None and self.pairs is not None:
            raise ValueError("give a dataset or --pairs, not both")
        if self.corpus is not None and self.pairs is None:
            raise ValueError("corpus: goes with --pairs (a dataset brings its own)")
        return self

    @property
    def budget_seconds(self) -> float:
        return parse_duration(self.budget)
