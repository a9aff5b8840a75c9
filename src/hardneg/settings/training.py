"""Fine-tuning: the bi-encoder trained on triplets, and the cross-encoder trained offline for mining."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

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


Loss = Literal["mnrl", "gist", "cached-gist", "margin-mse"]
"""The bi-encoder's training loss; each is sentence-transformers' (docs/training.md, Losses)."""

Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]


class MNRLSettings(Settings):
    """Options of loss 'mnrl' (MultipleNegativesRankingLoss); the defaults are the library's, which
    are the reference study's loss."""

    directions: tuple[Direction, ...] = ("query_to_doc",)
    """Softmax terms: 'query_to_doc' (always: it holds the positive), 'doc_to_query' (symmetric),
    'query_to_query', 'doc_to_doc' (same-type negatives, GTE's improved contrastive loss)."""
    partition_mode: Literal["joint", "per_direction"] = "joint"
    """One softmax over every direction ('joint'), or one per direction averaged ('per_direction':
    with 'query_to_doc' and 'doc_to_query' only)."""
    hardness_mode: Literal["in_batch_negatives", "hard_negatives", "all_negatives"] | None = None
    """Weight negatives by their own similarity inside the softmax: the in-batch ones (Lan et al.
    2025), the given hard ones (EmbeddingGemma), or both; None: no weighting."""
    hardness_strength: float = Field(0.0, ge=0)
    """The weight's alpha with ``hardness_mode`` (9 and 5 in those papers)."""

    @field_validator("directions")
    @classmethod
    def _holds_the_positive(cls, directions: tuple[str, ...]) -> tuple[str, ...]:
        if "query_to_doc" not in directions:
            raise ValueError("directions must include 'query_to_doc' (it scores the positive)")
        return directions

    @model_validator(mode="after")
    def _consistent(self) -> MNRLSettings:
        if self.partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(self.directions):
            raise ValueError("partition_mode 'per_direction' takes 'query_to_doc' and 'doc_to_query' only")
        if (self.hardness_mode is None) != (self.hardness_strength == 0):
            raise ValueError("hardness_mode and a hardness_strength above 0 go together")
        return self


class GISTSettings(Settings):
    """Options of losses 'gist' and 'cached-gist' (GISTEmbedLoss, CachedGISTEmbedLoss): a frozen
    guide model scores every in-batch and hard negative, and those it scores above the positive
    (less ``margin``) leave the softmax, so false negatives do not push the positive away."""

    guide: str | None = None
    """The guide: an alias, a Hugging Face name or a path; None: the base model itself, loaded a
    second time and frozen."""
    margin_strategy: Literal["absolute", "relative"] = "absolute"
    """'absolute': drop negatives the guide scores above (positive - margin); 'relative': above
    (positive - |positive| x margin)."""
    margin: float = 0.0
    """0 drops only negatives the guide scores above the positive; higher drops more."""
    mini_batch_size: int = runtime(32, gt=0)
    """'cached-gist': texts encoded at once; memory, not results, depends on it."""


OPTIONS_OF = {"mnrl": ("mnrl",), "gist": ("gist", "cached-gist")}
"""Each table of loss options, and the losses it belongs to."""


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
    loss: Loss = "mnrl"
    """'mnrl': MultipleNegativesRankingLoss; 'gist' and 'cached-gist' (large batches): GISTEmbedLoss,
    whose guide model drops negatives it scores above the positive (tolerates false negatives);
    'margin-mse': MarginMSELoss, distilling the scores mining's or combine's ``score_with`` wrote."""
    mnrl: MNRLSettings = MNRLSettings()
    """Options of loss 'mnrl'."""
    gist: GISTSettings = GISTSettings()
    """Options of losses 'gist' and 'cached-gist'."""

    @model_validator(mode="after")
    def _batch_splits_evenly(self) -> TrainSettings:
        if self.batch_size % self.processes:
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over {self.processes} processes"
            )
        return self

    @model_validator(mode="after")
    def _options_fit_the_loss(self) -> TrainSettings:
        """An option of another loss would be silently ignored: refuse it, naming it."""
        for table, losses in OPTIONS_OF.items():
            options = getattr(self, table)
            default = type(options)()
            changed = [
                name
                for name in type(options).model_fields
                if getattr(options, name) != getattr(default, name)
            ]
            if self.loss == "gist" and table == "gist":  # the cached form's option only
                changed, losses = [name for name in changed if name == "mini_batch_size"], ("cached-gist",)
            elif self.loss in losses:
                continue
            if changed:
                names = ", ".join(f"{table}.{name} (--{name.replace('_', '-')})" for name in changed)
                raise ValueError(
                    f"{names}: an option of loss {' or '.join(map(repr, losses))}, not {self.loss!r}"
                )
        if self.loss == "gist" and self.num_negatives > 1:
            raise ValueError(
                "loss 'gist' takes at most one negative per example (num_negatives 0 or 1); "
                "'cached-gist' takes any number"
            )
        if self.loss == "margin-mse" and self.num_negatives == 0:
            raise ValueError(
                "loss 'margin-mse' learns the scorer's margin to each negative: num_negatives >= 1"
            )
        return self
