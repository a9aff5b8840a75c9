"""Filters for any triplet file: a scorer rates each negative's text next to its positive.

Generated negatives have no corpus id, so scoring works on texts: a bi-encoder's similarity of
query and passage, or a cross-encoder's score of the (query, passage) pair. The thresholds are
mining's (`FilterSettings`), so a margin means the same wherever it is set.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.models import load_cross_encoder
from hardneg.data.records import Triplet
from hardneg.mining.select import filter_reason
from hardneg.settings.mining import FilterSettings


class TextScorer(Protocol):
    def score(self, queries: list[str], passages: list[str]) -> np.ndarray: ...


class BiEncoderTextScorer:
    def __init__(self, model, batch_size: int = 64, show_progress: bool = True):
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress

    def _encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(texts))  # each text encoded once
        vectors = self.model.encode(
            unique, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=self.show_progress
        )
        return dict(zip(unique, vectors))

    def score(self, queries: list[str], passages: list[str]) -> np.ndarray:
        if not queries:
            return np.zeros(0, dtype=np.float32)
        query_vectors, passage_vectors = self._encode(queries), self._encode(passages)
        a = np.stack([query_vectors[q] for q in queries])
        b = np.stack([passage_vectors[p] for p in passages])
        return self.model.similarity_pairwise(a, b).numpy().astype(np.float32)  # the model's own similarity


class CrossEncoderTextScorer:
    def __init__(self, model, batch_size: int = 64, show_progress: bool = True):
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress

    def score(self, queries: list[str], passages: list[str]) -> np.ndarray:
        from hardneg.retrieval.scorers import predict_pairs

        return predict_pairs(self.model, list(zip(queries, passages)), self.batch_size, self.show_progress)


def load_text_scorer(
    spec: str, batch_size: int = 64, show_progress: bool = True, backend: str = "torch"
) -> TextScorer:
    """'dense:MODEL' or 'cross-encoder:MODEL' (alias, Hugging Face name or path); ``backend`` runs a
    bi-encoder (DenseSettings.backend)."""
    from hardneg.retrieval.onnx_encoder import load_encoder

    kind, _, name = spec.partition(":")
    if not name or kind not in ("dense", "cross-encoder"):
        raise HardnegError(f"scorer {spec!r}: expected 'dense:MODEL' or 'cross-encoder:MODEL'")
    if kind == "cross-encoder":
        return CrossEncoderTextScorer(load_cross_encoder(name), batch_size, show_progress)
    return BiEncoderTextScorer(load_encoder(name, backend=backend), batch_size, show_progress)


def score_triplets(triplets: list[Triplet], scorer: TextScorer) -> tuple[np.ndarray, list[np.ndarray]]:
    """The positive's score per triplet, and each triplet's negatives' scores, in one batched pass."""
    queries = [t.query for t in triplets] + [t.query for t in triplets for _ in t.negatives]
    passages = [t.positive for t in triplets] + [n.text for t in triplets for n in t.negatives]
    flat = scorer.score(queries, passages)
    positives, rest = flat[: len(triplets)], flat[len(triplets) :]
    bounds = np.cumsum([0] + [len(t.negatives) for t in triplets])
    return positives, [rest[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


def write_scores(
    triplets: list[Triplet],
    spec: str,
    counts: Counter,
    batch_size: int = 64,
    show_progress: bool = True,
    scorer: TextScorer | None = None,
    backend: str = "torch",
) -> list[Triplet]:
    """Every negative's ``score`` and each triplet's ``positive_score`` from the scorer ``spec``
    names, which the triplet records as its ``scorer`` (counted as ``negatives_scored``)."""
    if not triplets:
        return triplets
    scorer = scorer or load_text_scorer(spec, batch_size, show_progress, backend)
    positive_scores, negative_scores = score_triplets(triplets, scorer)
    scored = []
    for triplet, positive, scores in zip(triplets, positive_scores, negative_scores):
        negatives = [n.model_copy(update={"score": float(s)}) for n, s in zip(triplet.negatives, scores)]
        counts["negatives_scored"] += len(negatives)
        update = {"negatives": negatives, "positive_score": float(positive), "scorer": spec}
        scored.append(triplet.model_copy(update=update))
    return scored


def length_band_filter(triplets: list[Triplet], band: tuple[float, float], counts: Counter) -> list[Triplet]:
    """Keep negatives whose word count is within ``band`` times their positive's
    (``filtered_length_band``)."""
    kept_triplets = []
    for triplet in triplets:
        positive_words = len(triplet.positive.split())
        low, high = band[0] * positive_words, band[1] * positive_words
        kept = [n for n in triplet.negatives if low <= len(n.text.split()) <= high]
        counts["filtered_length_band"] += len(triplet.negatives) - len(kept)
        kept_triplets.append(triplet.model_copy(update={"negatives": kept}))
    return kept_triplets


def filter_triplets(
    triplets: list[Triplet],
    filters: FilterSettings,
    counts: Counter,
    batch_size: int = 64,
    show_progress: bool = True,
    scorer: TextScorer | None = None,
    backend: str = "torch",
) -> list[Triplet]:
    """Drop negatives the scorer rates as likely false negatives (near or above the positive) or as
    too easy (below ``min_score``); counted as ``filtered_<rule>``."""
    if scorer is None:
        if filters.scorer is None:
            raise HardnegError("filters need a scorer: 'dense:MODEL' or 'cross-encoder:MODEL' (--scorer)")
        scorer = load_text_scorer(filters.scorer, batch_size, show_progress, backend)
    positive_scores, negative_scores = score_triplets(triplets, scorer)
    kept_triplets = []
    for triplet, positive, scores in zip(triplets, positive_scores, negative_scores):
        kept = []
        for negative, score in zip(triplet.negatives, scores):
            reason = filter_reason(float(score), float(positive), filters)
            if reason is None:
                kept.append(negative)
            else:
                counts[f"filtered_{reason}"] += 1
        kept_triplets.append(triplet.model_copy(update={"negatives": kept}))
    return kept_triplets
