"""A grid's sources of negatives: the settings each source kind's table holds, how a source names
the sources it is made from, and its own checks (``KeyedError``, placed under ``sources.NAME``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from hardneg.core.errors import KeyedError
from hardneg.settings.base import Settings
from hardneg.settings.combine import CombineSettings
from hardneg.settings.data import PoolPairsSettings
from hardneg.settings.llm import GenerateSettings
from hardneg.settings.mining import MineSettings
from hardneg.settings.training import CrossEncoderTrainSettings

SOURCE_MODEL = "@source:"
"""In a combination's ``filters.scorer``: 'cross-encoder:@source:NAME' is the cross-encoder trained
for source NAME on the same dataset (``train_cross_encoder``)."""


class SourceSettings(Settings):
    """One way to get negatives: a table named after its stage kind (``[sources.NAME.mine]``)."""

    kind: ClassVar[str] = ""
    """The stage kind, which is also the name of the table holding its config."""
    label: str | None = None
    """How the source is named in tables (default: its key)."""
    train: dict[str, Any] = {}
    """This source's model's settings that differ from the grid's ``[train]`` (e.g. ``{ loss =
    "gist" }``): a row that changes how the model learns, not the negatives."""

    @property
    def settings(self) -> Settings:
        """The kind's own config."""
        return getattr(self, self.kind)

    def upstream(self) -> list[str]:
        """The other sources (by grid name) this one is made from: planned before it."""
        return []

    def check(self, name: str, sources: dict[str, SourceSettings]) -> None:
        """Raise ValueError when this source cannot be planned among ``sources``."""
        for item in self.upstream():
            if item not in sources:
                raise KeyedError(
                    f"sources.{name}.{self.kind}", f"no source {item!r} (have: {', '.join(sources)})"
                )


class MineSourceSettings(SourceSettings):
    kind: ClassVar[str] = "mine"
    mine: MineSettings
    train_cross_encoder: CrossEncoderTrainSettings | None = None
    """Train the cross-encoder this source mines with, on the cell's train pairs (offline setups);
    a pool source's (``mine.corpus = 'pool'``) learns from the pool too, so it stays corpus-free
    (the pool of its own pairs: ``pool_pairs`` does not reach it)."""
    pool_pairs: PoolPairsSettings | None = None
    """A pool source's pool from more of the train split than the pairs it mines for (which always
    join it): e.g. ``{}``, all train pairs, when ``[pairs]`` samples 500 of them. Still corpus-free:
    the pool is the pairs' positives."""

    @model_validator(mode="after")
    def _cross_encoder(self) -> MineSourceSettings:
        if self.train_cross_encoder is not None and self.mine.method != "cross-encoder":
            raise KeyedError("train_cross_encoder", "goes with mine.method = 'cross-encoder'")
        if self.train_cross_encoder is not None and self.mine.model is not None:
            raise KeyedError("mine.model", "give either mine.model or train_cross_encoder, not both")
        if self.mine.pool_pairs is not None:  # a file the plan cannot see: not in more_pairs
            raise KeyedError(
                "mine.pool_pairs", "a grid draws a pool's pairs with the source's pool_pairs table"
            )
        if self.pool_pairs is not None and self.mine.corpus != "pool":
            raise KeyedError("pool_pairs", "goes with mine.corpus = 'pool'")
        trained = self.train_cross_encoder
        if trained is not None and self.mine.corpus == "pool" and "corpus" in trained.model_fields_set:
            if trained.corpus != "pool":
                raise KeyedError(
                    "train_cross_encoder.corpus", "a pool source's cross-encoder learns from the pool"
                )
        return self

    @property
    def cross_encoder_training(self) -> CrossEncoderTrainSettings | None:
        """``train_cross_encoder`` as trained: on the pool when the source mines the pool."""
        trained = self.train_cross_encoder
        if trained is not None and self.mine.corpus == "pool":
            return trained.model_copy(update={"corpus": "pool"})
        return trained


class GenerateSourceSettings(SourceSettings):
    kind: ClassVar[str] = "generate"
    generate: GenerateSettings


class CombineInputsSettings(CombineSettings):
    """A combination of other sources (or a filtered copy of one), named by their grid keys."""

    inputs: list[str] = Field(min_length=1)
    """The sources combined (their grid names)."""

    @property
    def scorer_source(self) -> str | None:
        """The source whose trained cross-encoder scores the filters ('cross-encoder:@source:NAME')."""
        return (self.filters.scorer or "").partition(SOURCE_MODEL)[2] or None

    @property
    def teacher_source(self) -> str | None:
        """The source whose trained cross-encoder writes the scores ``score_with`` asks for."""
        return (self.score_with or "").partition(SOURCE_MODEL)[2] or None


class CombineSourceSettings(SourceSettings):
    kind: ClassVar[str] = "combine"
    combine: CombineInputsSettings

    def upstream(self) -> list[str]:
        """Its inputs, and the sources whose trained cross-encoders score its filters or write its
        teacher's scores."""
        models = [self.combine.scorer_source, self.combine.teacher_source]
        return self.combine.inputs + list(dict.fromkeys(m for m in models if m is not None))

    def check(self, name: str, sources: dict[str, SourceSettings]) -> None:
        for field, scorer in (
            ("filters.scorer", self.combine.scorer_source),
            ("score_with", self.combine.teacher_source),
        ):
            if scorer is not None and getattr(sources.get(scorer), "train_cross_encoder", None) is None:
                raise KeyedError(
                    f"sources.{name}.combine.{field}", f"no source {scorer!r} with train_cross_encoder"
                )
        for item in self.combine.inputs:
            if item not in sources:
                raise KeyedError(
                    f"sources.{name}.combine.inputs", f"no source {item!r} (have: {', '.join(sources)})"
                )
