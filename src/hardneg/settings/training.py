"""Fine-tuning: the bi-encoder trained on triplets, and the cross-encoder trained offline for mining."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hardneg.settings.base import DEFAULT_BI_ENCODER, DatasetRef, Settings, runtime
from hardneg.settings.mining import CorpusChoice


class CrossEncoderTrainSettings(DatasetRef):
    """Defaults fit a CPU: one epoch of MiniLM-L6 on a BEIR train split takes minutes."""

    base_model: str = DEFAULT_BI_ENCODER
    """Encoder to start from: alias, HF name or path."""
    corpus: CorpusChoice = "dataset"
    """Where its BM25 and random negatives come from: the dataset's corpus, or the 'pool' of the
    pairs' own positives (a corpus-free scorer: ``corpus.jsonl`` is never opened)."""
    num_negatives: int = Field(4, gt=0)
    """BM25 negatives per pair."""
    random_negatives: int = Field(0, ge=0)
    """Random corpus passages per pair, mixed in: easy examples give a new classifier head a signal
    to start from (with BM25 negatives alone, a short CPU run stayed at the constant prediction)."""
    range_min: int = Field(1, ge=1)
    """Best BM25 rank a negative may have."""
    loss: Literal["bce", "mnrl"] = "bce"
    """'bce': pointwise labels; 'mnrl': a softmax over each query's positive, its negatives and one
    in-batch passage, which started learning sooner than BCE in our CPU probes."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training examples."""
    batch_size: int = Field(16, gt=0)
    """Training examples per step."""
    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate warms up."""
    max_length: int = Field(256, gt=0)
    """Token limit per (query, passage)."""
    save_steps: int = Field(100, gt=0)
    """Checkpoint every N steps (an interrupted run resumes)."""
    seed: int = 0
    """Random seed."""


class TrainSettings(Settings):
    """Bi-encoder fine-tuning; the defaults are the reference study's (MNRL, batch 16, 90/10 split
    by query, early stopping with patience 3)."""

    base_model: str = DEFAULT_BI_ENCODER
    """An alias, a Hugging Face name or a path; a plain transformer gets mean pooling."""
    num_negatives: int = Field(5, ge=0)
    """``negative_1..k`` columns per example; 0 trains on (query, positive) with in-batch negatives."""
    short_triplets: Literal["pad", "drop"] = "pad"
    """A triplet with fewer negatives than ``num_negatives``: repeat its own negatives to fill the
    columns (a repeated negative weighs double in the softmax), or leave it out."""
    skip_empty: bool = False
    """Leave out triplets without any negative (an LLM's shortfalls) instead of failing on them."""
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    """Share of queries held out for validation."""
    batch_size: int = Field(16, gt=1)
    """Every other example's passages are the in-batch negatives: at least 2."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training triplets."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many steps (overrides ``epochs``)."""
    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate warms up."""
    eval_steps: int = Field(100, gt=0)
    """Validate (and checkpoint) every N steps."""
    patience: int | None = Field(3, ge=1)
    """Stop after this many evaluations without a lower validation loss; None trains to the end."""
    max_seq_length: int | None = Field(None, gt=0)
    """Token limit per text (None: the model's own); shorter is much faster on a CPU."""
    device: str | None = runtime(None)
    """'cpu', 'cuda', 'cuda:1', 'mps'...; None picks a GPU when there is one."""
    processes: int = runtime(1, ge=1)
    """`hardneg run` trains each model in this many processes under torchrun (one CPU, or one GPU,
    each); ``batch_size`` stays the global batch, split evenly over them."""
    seed: int = 0
    """Random seed."""

    @model_validator(mode="after")
    def _batch_splits_evenly(self) -> TrainSettings:
        if self.batch_size % self.processes:
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over {self.processes} processes"
            )
        return self
