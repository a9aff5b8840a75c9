"""From a query's ranked candidates to one pair's negatives: exclusions, rank window, false-negative
filters, sampling. Pure functions over ids and scores, so each rule is tested on its own."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

from hardneg.data.beir import Document
from hardneg.data.records import passage_key
from hardneg.data.store import CorpusStore
from hardneg.settings.mining import FilterSettings, MineSettings


class PassageKeys:
    """A 16-byte fingerprint of each passage's normalized text, computed once per document or
    text: comparing every candidate with every positive must not re-normalize long texts. A corpus
    store keeps every document's fingerprint on disk, so no candidate's text is read."""

    def __init__(self, corpus: Mapping[str, Document]):
        self.corpus = corpus
        self._stored = corpus.passage_key if isinstance(corpus, CorpusStore) else None
        self._documents: dict[str, bytes] = {}
        self._texts: dict[str, bytes] = {}

    def of_document(self, doc_id: str) -> bytes:
        if doc_id not in self._documents:
            stored = self._stored
            self._documents[doc_id] = stored(doc_id) if stored else passage_key(self.corpus[doc_id].full_text)
        return self._documents[doc_id]

    def of_text(self, text: str) -> bytes:
        if text not in self._texts:
            self._texts[text] = passage_key(text)
        return self._texts[text]


class Candidate(NamedTuple):
    """A NamedTuple, not a dataclass: mining builds one per retrieved document (100 a query)."""

    doc_id: str
    score: float  # the mining method's own score
    rank: int  # 1 = the method's best, counting every retrieved document


def filter_reason(score: float, positive: float, filters: FilterSettings) -> str | None:
    """Why a candidate scored ``score`` is a likely false negative next to ``positive``, or None."""
    if filters.max_score is not None and score > filters.max_score:
        return "max_score"
    if filters.min_score is not None and score < filters.min_score:
        return "min_score"
    if filters.absolute_margin is not None and score > positive - filters.absolute_margin:
        return "absolute_margin"
    if filters.relative_margin is not None and score > positive - filters.relative_margin * abs(positive):
        return "relative_margin"
    return None


def eligible(
    candidates: list[Candidate],
    excluded_ids: set[str],
    positive_text: str,
    keys: PassageKeys,
    config: MineSettings,
    counts: Counter,
) -> list[Candidate]:
    """Candidates that are not judged positives, not the text of the positive or of another judged
    positive (a duplicate under another id is the same passage), and inside the window."""
    positive_keys = {keys.of_text(positive_text)}
    positive_keys |= {keys.of_document(d) for d in excluded_ids if d in keys.corpus}
    kept = []
    for candidate in candidates:
        if candidate.doc_id in excluded_ids:
            counts["positives_excluded"] += 1
        elif keys.of_document(candidate.doc_id) in positive_keys:
            counts["same_text_excluded"] += 1
        elif candidate.rank < config.range_min or (config.range_max and candidate.rank > config.range_max):
            counts["outside_window"] += 1
        else:
            kept.append(candidate)
    return kept


def apply_filters(
    candidates: list[Candidate],
    filter_scores: list[float],
    positive_score: float | None,
    filters: FilterSettings,
    counts: Counter,
) -> list[Candidate]:
    if not filters.active:
        return candidates
    kept = []
    for candidate, score in zip(candidates, filter_scores):
        reason = filter_reason(score, positive_score if positive_score is not None else 0.0, filters)
        if reason:
            counts[f"filtered_{reason}"] += 1
        else:
            kept.append(candidate)
    return kept


def sample(
    candidates: list[Candidate], config: MineSettings, query_id: str, positive_id: str
) -> list[Candidate]:
    """The top n, or n drawn at random with a seed fixed per pair (same seed, same output)."""
    n = config.num_negatives
    if config.sampling == "top" or len(candidates) <= n:
        return candidates[:n]
    rng = random.Random(f"{config.seed}:{query_id}:{positive_id}")
    return sorted(rng.sample(candidates, n), key=lambda c: c.rank)
