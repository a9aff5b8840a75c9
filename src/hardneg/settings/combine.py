"""How triplet files become one: sources, strategies, caps, filters, the judge, the study's presets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hardneg.settings.base import Settings, runtime
from hardneg.settings.llm import JudgeSettings
from hardneg.settings.mining import FilterSettings, check_scorer
from hardneg.settings.retrieval import EncodeBackend

PRESETS: dict[str, list[str]] = {
    "llm+bm25": ["llm:*", "bm25"],
    "llm+ce": ["llm:*", "cross-encoder:*"],
    "all-llms": ["llm:*"],
    "all-llms+bm25": ["llm:*", "bm25"],
    "all-llms+ce": ["llm:*", "cross-encoder:*"],
}
"""The reference study's combinations; each keeps every negative of the sources it names."""

Preset = Literal["llm+bm25", "llm+ce", "all-llms", "all-llms+bm25", "all-llms+ce"]


class CombineSettings(Settings):
    """How triplet files (or one) become one: which sources, how many negatives from each, filters."""

    strategy: Literal["concat", "per-source", "interleave"] = "concat"
    """'concat': every source's negatives in input order; 'per-source': the first ``per_source`` of
    each source; 'interleave': one from each source in turn."""
    sources: list[str] = []
    """Source names or shell patterns to keep (e.g. 'llm:*', 'bm25'); empty keeps all."""
    preset: Preset | None = None
    """One of the reference study's combinations, instead of ``sources``: keeps the sources it names
    ('llm+bm25': 'llm:*' and 'bm25') and checks that the inputs have them ('llm+...' takes one LLM)."""
    per_source: int | None = Field(None, gt=0)
    """With strategy 'per-source': negatives taken from each source."""
    max_negatives: int | None = Field(None, gt=0)
    """Cap per triplet after combining (and filtering)."""
    pairs: Literal["shared", "all"] = "shared"
    """'shared': only pairs present in every input; 'all': every pair of any input."""
    min_negatives: int = Field(0, ge=0)
    """Leave out triplets with fewer negatives than this at the end."""
    filters: FilterSettings = FilterSettings()
    """Scores come from ``filters.scorer`` (required when a threshold is set), on the texts."""
    judge: JudgeSettings | None = None
    """An LLM judge asked of every negative whether it answers the query (after the filters)."""
    length_band: tuple[float, float] | None = None
    """Keep a negative only if its word count is within [low, high] times its positive's, e.g.
    [0.5, 2.0]: a bi-encoder must not learn to tell negatives from positives by length alone."""
    score_with: str | None = None
    """Last, score every kept negative and its positive with this scorer ('dense:MODEL' or
    'cross-encoder:MODEL', as ``scorer``): each negative's ``score``, the triplet's ``positive_score``
    and ``scorer`` are written, the teacher's scores that loss 'margin-mse' distils. In a grid,
    'cross-encoder:@source:NAME' is the cross-encoder trained for source NAME."""
    batch_size: int = runtime(64, gt=0)
    """Scorer batch size."""
    backend: EncodeBackend = "torch"
    """Who runs a 'dense:MODEL' scorer's bi-encoder: 'torch', 'onnx' or 'onnx-int8' (see DenseSettings)."""

    @field_validator("length_band")
    @classmethod
    def _band(cls, band: tuple[float, float] | None) -> tuple[float, float] | None:
        if band is not None and not 0 <= band[0] <= band[1]:
            raise ValueError("length_band needs 0 <= low <= high, e.g. [0.5, 2.0]")
        return band

    @field_validator("score_with")
    @classmethod
    def _score_with(cls, spec: str | None) -> str | None:
        return check_scorer(spec, "score_with")

    @model_validator(mode="after")
    def _per_source_needs_a_count(self) -> CombineSettings:
        if self.strategy == "per-source" and self.per_source is None:
            raise ValueError("strategy 'per-source' needs per_source (--per-source N)")
        if self.preset is not None and self.sources:
            raise ValueError("give preset or sources, not both (a preset names its sources)")
        if self.filters.active and self.filters.scorer is None:
            raise ValueError("filters need a scorer ('dense:MODEL' or 'cross-encoder:MODEL', --scorer)")
        return self

    @property
    def kept_sources(self) -> list[str]:
        """The source patterns kept: the preset's, or ``sources``."""
        return PRESETS[self.preset] if self.preset is not None else self.sources
