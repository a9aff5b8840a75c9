"""The bi-encoder's loss, chosen by ``TrainSettings.loss`` (docs/training.md, Losses).

- 'mnrl': MultipleNegativesRankingLoss, the study's: every other passage in the batch is a negative.
- 'gist' / 'cached-gist': GISTEmbedLoss / CachedGISTEmbedLoss: a frozen guide model drops from the
  softmax every in-batch or hard negative it scores above the positive, so false negatives are
  not pushed away; the cached form encodes in mini-batches, for batches that do not fit at once.
- 'margin-mse': MarginMSELoss: the model learns a scorer's margin between the positive and each
  negative, from the scores mining's or combine's ``score_with`` wrote into the triplets.

Every loss but margin-mse scores in-batch passages, and under several processes gathers them from
every process (``gather_across_devices``), so a step sees what a one-process step sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.core.errors import DataError
from hardneg.core.models import load_sentence_transformer
from hardneg.data.records import Triplet
from hardneg.settings.base import key_settings
from hardneg.settings.training import OPTIONS_OF, TrainSettings

LOSS_FIELDS = ("loss", *OPTIONS_OF)
"""The settings that choose the loss and its options."""


def build_loss(model, config: TrainSettings, gather: bool = False, device: str | None = None):
    """The sentence-transformers loss for ``config`` (the guide model of a GIST loss is loaded here)."""
    from sentence_transformers.sentence_transformer import losses

    if config.loss == "mnrl":
        options = config.mnrl
        return losses.MultipleNegativesRankingLoss(
            model,
            gather_across_devices=gather,
            directions=options.directions,
            partition_mode=options.partition_mode,
            hardness_mode=options.hardness_mode,
            hardness_strength=options.hardness_strength,
        )
    if config.loss == "margin-mse":  # no in-batch negatives: nothing to gather
        return losses.MarginMSELoss(model)
    guide = load_guide(config, device)
    common = dict(
        margin_strategy=config.gist.margin_strategy, margin=config.gist.margin, gather_across_devices=gather
    )
    if config.loss == "gist":
        return losses.GISTEmbedLoss(model, guide, **common)
    return losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=config.gist.mini_batch_size, **common)


def load_guide(config: TrainSettings, device: str | None = None):
    """The guide: ``gist.guide`` or the base model, loaded on its own and frozen (eval mode, no
    gradients), capped at the trained model's ``max_seq_length`` so both read the same tokens."""
    guide = load_sentence_transformer(config.gist.guide or config.base_model, device=device)
    if config.max_seq_length is not None:
        guide.max_seq_length = min(guide.max_seq_length or config.max_seq_length, config.max_seq_length)
    guide.requires_grad_(False)
    return guide.eval()


def describe(config: TrainSettings, scorer: str | None = None) -> dict[str, Any]:
    """The loss as the manifest and the report record it: its name and the options not at their
    default; a GIST loss names its guide, margin-MSE the scorer whose scores it distilled."""
    summary: dict[str, Any] = {"name": config.loss}
    if config.loss in OPTIONS_OF["mnrl"]:
        summary.update(config.mnrl.model_dump(mode="json", exclude_defaults=True))
    if config.loss in OPTIONS_OF["gist"]:
        options = config.gist.model_dump(mode="json", exclude_defaults=True)
        if config.loss == "gist":
            options.pop("mini_batch_size", None)
        summary.update(options, guide=config.gist.guide or config.base_model)
    if config.loss == "margin-mse":
        summary["scorer"] = scorer
    return summary


def loss_key(config: TrainSettings) -> dict[str, Any]:
    """The loss settings as a cache key sees them: only those off their default (the runtime
    ``mini_batch_size`` never), so a model trained before losses were selectable keeps its key."""
    keyed = key_settings(config)
    return {name: keyed[name] for name in LOSS_FIELDS if name in keyed}


def check_scores(triplets: list[Triplet], path: str | Path, num_negatives: int) -> str | None:
    """Margin-MSE needs the positive's and each trained negative's score, all by one scorer: the
    first triplet that lacks one (or names another scorer) is a one-line error. Returns the scorer."""
    how = (
        f"write them with 'hardneg combine {path} --score-with cross-encoder:MODEL -o OUT' "
        "or mine with --score-with"
    )
    first = triplets[0] if triplets else None
    for triplet in triplets:
        if triplet.positive_score is None:
            message = f"field 'positive_score': missing (loss 'margin-mse' learns from scores; {how})"
            raise DataError(Path(path), triplet._line, message)
        for i, negative in enumerate(triplet.negatives[:num_negatives]):
            if negative.score is None:
                message = (
                    f"field 'negatives.{i}.score': missing (loss 'margin-mse' learns from scores; {how})"
                )
                raise DataError(Path(path), triplet._line, message)
        if triplet.scorer != first.scorer:
            message = (
                f"field 'scorer': {triplet.scorer!r}, but line {first._line} was scored by {first.scorer!r} "
                f"(margin-mse learns one scorer's margins; {how})"
            )
            raise DataError(Path(path), triplet._line, message)
    return first.scorer if first is not None else None


def margin_labels(triplet: Triplet, negatives: list[int]) -> list[float]:
    """MarginMSELoss's label for one example: positive score - negative score, per negative column
    (``negatives``: the indices of the triplet's negatives in those columns)."""
    return [triplet.positive_score - triplet.negatives[i].score for i in negatives]
