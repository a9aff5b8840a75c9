"""The `pairs` stage: (query, positive passage) pairs from a split's qrels, the input of every
negative source; and the check that a pairs file belongs to the dataset it is mined against."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.core.errors import DataError
from hardneg.core.manifest import Stopwatch
from hardneg.data.beir import BeirDataset
from hardneg.data.records import Pair, read_pairs, write_records
from hardneg.data.registry import load_dataset
from hardneg.settings.data import PairsSettings

log = logging.getLogger(__name__)


@dataclass
class PairsResult:
    pairs: list[Pair]
    counts: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    dataset_path: Path | None = None


def build_pairs(
    dataset: BeirDataset, config: PairsSettings, skipped: list[tuple[str, str]] | None = None
) -> list[Pair]:
    """One pair per positive judgment (or per query, its best). A positive whose document is not in
    the corpus (the official ArguAna release judges 5 such) has no text to train on: it is left out
    and appended to ``skipped`` as (query id, document id); ``one_per_query`` then takes the best
    positive the corpus has."""
    pairs: list[Pair] = []
    for query_id, judged in dataset.split_qrels(config.split).items():
        positives = [doc_id for doc_id, score in judged.items() if score > 0]
        if config.one_per_query:
            positives.sort(key=lambda doc_id: -judged[doc_id])  # stable: the first of the best grade first
        for doc_id in positives:
            try:
                text = dataset.corpus[doc_id].full_text
            except KeyError:
                if skipped is not None:
                    skipped.append((query_id, doc_id))
                continue
            pairs.append(
                Pair(query_id=query_id, query=dataset.queries[query_id], positive_id=doc_id, positive=text)
            )
            if config.one_per_query:
                break
    if config.max_pairs is not None and len(pairs) > config.max_pairs:
        keep = sorted(random.Random(config.seed).sample(range(len(pairs)), config.max_pairs))
        pairs = [pairs[i] for i in keep]
    return pairs


def make_pairs(config: PairsSettings, output: str | Path) -> PairsResult:
    """Build the pairs of ``config`` and write them (the ``pairs`` stage, which adds the manifest)."""
    clock = Stopwatch()
    dataset = load_dataset(config.dataset_name, config.data_root)
    skipped: list[tuple[str, str]] = []
    pairs = build_pairs(dataset, config, skipped)
    clock.lap("build")
    write_records(output, pairs)
    counts = {"pairs": len(pairs), "queries": len({p.query_id for p in pairs})}
    if skipped:
        counts["positives_not_in_corpus"] = len(skipped)
        log.warning(
            f"warning: {dataset.name} qrels/{config.split}.tsv: {len(skipped)} positive judgment(s) name "
            "a document that is not in the corpus; left out of the pairs (no text to train on)"
        )
    return PairsResult(pairs, counts, clock.laps, Path(dataset.path))


def check_pairs(pairs: list[Pair], dataset: BeirDataset, path: str | Path) -> None:
    """Raise on the first pair whose ids or query text do not match ``dataset``."""
    for pair in pairs:
        problem = None
        if pair.query_id not in dataset.queries:
            problem = f"query_id {pair.query_id!r} is not a query of {dataset.name}"
        elif pair.positive_id not in dataset.corpus:
            problem = f"positive_id {pair.positive_id!r} is not a document of {dataset.name}"
        elif pair.query.strip() != dataset.queries[pair.query_id].strip():
            problem = f"query {pair.query_id!r} has another text in {dataset.name}"
        if problem:
            raise DataError(path, pair._line or None, f"{problem}; is this pairs file from another dataset?")


def load_pairs_for(path: str | Path, dataset: BeirDataset) -> list[Pair]:
    pairs = read_pairs(path)
    check_pairs(pairs, dataset, path)
    return pairs
