"""`combine`: merge triplet files that share pairs into one, by source, and filter the negatives.

Negatives are grouped by their ``source`` field, not by file, so a file that is itself a
combination combines again. The study's combinations are presets over source patterns.
"""

from __future__ import annotations

import fnmatch
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.combining.filtering import filter_triplets, length_band_filter, write_scores
from hardneg.core.errors import HardnegError
from hardneg.core.io import beside
from hardneg.core.manifest import Stopwatch
from hardneg.data.records import Negative, Triplet, normalize_text, read_triplets, write_records
from hardneg.settings.combine import PRESETS, CombineSettings

log = logging.getLogger(__name__)


def preset_config(name: str, **overrides: Any) -> CombineSettings:
    """The settings of one of the study's combinations (``preset`` set; everything else as given)."""
    if name not in PRESETS:
        raise HardnegError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return CombineSettings(preset=name, **overrides)


def check_preset(name: str, sources: list[str]) -> None:
    """'llm+...' presets pair one LLM with a mined source: several LLMs are 'all-llms+...'."""
    llms = [s for s in sources if s.startswith("llm:")]
    if name.startswith("llm+") and len(llms) != 1:
        found = ", ".join(llms) or "none"
        raise HardnegError(
            f"preset {name!r} takes exactly one LLM source, found {len(llms)} ({found}); "
            f"use 'all-{name.replace('llm+', 'llms+')}' for several"
        )
    for pattern in PRESETS[name]:
        if not any(fnmatch.fnmatchcase(s, pattern) for s in sources):
            raise HardnegError(
                f"preset {name!r} needs a source matching {pattern!r}; inputs have {', '.join(sources)}"
            )


@dataclass
class CombineResult:
    triplets: list[Triplet]
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def pair_key(triplet: Triplet) -> tuple[str, str]:
    return triplet.query_id, triplet.positive_id


def _selected(source: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(source, p) for p in patterns)


def merge_negatives(groups: dict[str, list[Negative]], config: CombineSettings) -> list[Negative]:
    """One triplet's negatives from its sources (in first-seen order) by the configured strategy."""
    lists = list(groups.values())
    if config.strategy == "per-source":
        lists = [negatives[: config.per_source] for negatives in lists]
    if config.strategy == "interleave":
        merged = [n for round_ in _rounds(lists) for n in round_]
    else:
        merged = [n for negatives in lists for n in negatives]
    return merged


def _rounds(lists: list[list[Negative]]) -> list[list[Negative]]:
    longest = max((len(negatives) for negatives in lists), default=0)
    return [[negatives[i] for negatives in lists if i < len(negatives)] for i in range(longest)]


def combine(
    inputs: list[list[Triplet]], config: CombineSettings, names: list[str] | None = None
) -> CombineResult:
    """Merge parsed triplet files; ``names`` (their paths) only make error messages precise."""
    names = names or [f"input {i + 1}" for i in range(len(inputs))]
    counts: Counter = Counter(inputs=len(inputs))
    by_pair: dict[tuple[str, str], Triplet] = {}
    groups: dict[tuple[str, str], dict[str, list[Negative]]] = {}
    present: Counter = Counter()
    scorers: dict[tuple[str, str], set[str | None]] = {}
    for triplets, name in zip(inputs, names):
        for key in {pair_key(t) for t in triplets}:
            present[key] += 1
        for triplet in triplets:
            key = pair_key(triplet)
            first = by_pair.setdefault(key, triplet)
            if (first.query, first.positive) != (triplet.query, triplet.positive):
                raise HardnegError(
                    f"{name}:{triplet._line}: query {key[0]!r} / positive {key[1]!r} has other texts "
                    "than in an earlier input: triplets from different datasets?"
                )
            scorers.setdefault(key, set()).add(triplet.scorer)
            for negative in triplet.negatives:
                groups.setdefault(key, {}).setdefault(negative.source, []).append(negative)
    if len(inputs) > 1 and config.pairs == "shared" and not any(n == len(inputs) for n in present.values()):
        raise HardnegError(
            f"no (query, positive) pair is in all of {', '.join(names)}: they were made from "
            "different pairs files; use pairs='all' (--all-pairs) to keep every pair anyway"
        )
    combined: list[Triplet] = []
    for key, triplet in by_pair.items():
        if config.pairs == "shared" and present[key] < len(inputs):
            counts["pairs_not_shared"] += 1
            continue
        kept_groups: dict[str, list[Negative]] = {}
        for source, negatives in groups.get(key, {}).items():
            if _selected(source, config.kept_sources):
                kept_groups[source] = negatives
            else:
                counts["negatives_unselected"] += len(negatives)
        merged = _dedupe(merge_negatives(kept_groups, config), triplet.positive, counts)
        update: dict[str, Any] = {"negatives": merged}
        if len(scorers[key]) > 1:  # negatives scored by several scorers (or none): no one scorer's
            update.update(positive_score=None, scorer=None)
        combined.append(triplet.model_copy(update=update))
    counts["pairs"] = len(combined)
    return CombineResult(combined, dict(counts))


def _dedupe(negatives: list[Negative], positive: str, counts: Counter) -> list[Negative]:
    """The same passage from two sources counts once (the first kept); the positive's text never."""
    seen = {normalize_text(positive)}
    kept = []
    for negative in negatives:
        key = normalize_text(negative.text)
        if key in seen:
            counts["duplicates_dropped"] += 1
        else:
            seen.add(key)
            kept.append(negative)
    return kept


def finish(triplets: list[Triplet], config: CombineSettings, counts: Counter) -> list[Triplet]:
    """Cap per triplet, then leave out triplets below ``min_negatives``."""
    out = []
    for triplet in triplets:
        negatives = triplet.negatives
        if config.max_negatives is not None and len(negatives) > config.max_negatives:
            counts["negatives_over_cap"] += len(negatives) - config.max_negatives
            negatives = negatives[: config.max_negatives]
        if len(negatives) < config.min_negatives:
            counts["triplets_below_min_negatives"] += 1
            continue
        out.append(triplet.model_copy(update={"negatives": negatives}))
    return out


def source_counts(triplets: list[Triplet]) -> dict[str, int]:
    return dict(sorted(Counter(n.source for t in triplets for n in t.negatives).items()))


def combine_files(
    paths: list[str | Path],
    config: CombineSettings,
    output: str | Path,
    preset: str | None = None,
    show_progress: bool = True,
    judge_store: str | Path | None = None,
) -> CombineResult:
    """Read, combine, filter, judge, cap; write the triplets and return every count (the stage
    contract, ``hardneg.stages``, writes the manifest). The judge's answers go to ``judge_store``
    (default: beside the output), which a rerun replays. ``preset``: as ``config.preset`` (older API)."""
    clock = Stopwatch()
    if preset is not None:
        config = config.model_copy(update={"preset": preset, "sources": []})
    if not paths:
        raise HardnegError("give at least one triplet file")
    inputs = [read_triplets(path) for path in paths]
    sources_in = source_counts([t for triplets in inputs for t in triplets])
    if config.preset is not None:
        check_preset(config.preset, list(sources_in))
    clock.lap("read")
    result = combine(inputs, config, [str(p) for p in paths])
    counts = Counter(result.counts)
    clock.lap("combine")
    triplets = result.triplets
    if config.length_band is not None:  # before scoring: what it drops costs no model time
        triplets = length_band_filter(triplets, config.length_band, counts)
    if config.filters.active:
        triplets = filter_triplets(
            triplets, config.filters, counts, config.batch_size, show_progress, backend=config.backend
        )
        clock.lap("filter")
    if config.judge is not None:
        from hardneg.generation.judge import judge_triplets

        store = Path(judge_store) if judge_store is not None else beside(output, ".judge-answers.jsonl")
        triplets = judge_triplets(triplets, config.judge, store, output, counts, show_progress)
        clock.lap("judge")
    triplets = finish(triplets, config, counts)
    if config.score_with is not None:  # last: only the negatives kept are scored
        triplets = write_scores(
            triplets, config.score_with, counts, config.batch_size, show_progress, backend=config.backend
        )
        clock.lap("score")
    write_records(output, triplets)
    counts.update(triplets=len(triplets), negatives=sum(len(t.negatives) for t in triplets))
    if triplets and not counts["negatives"]:  # said now, not first by the training that reads it
        given = sum(sources_in.values())
        log.warning(
            "%s: none of the %d negatives given is left (filters, judge or cap dropped them all)",
            output,
            given,
        )
    summary = {
        **dict(counts),
        "preset": config.preset,
        "sources_in": sources_in,
        "sources_out": source_counts(triplets),
    }
    return CombineResult(triplets, summary, clock.laps)
