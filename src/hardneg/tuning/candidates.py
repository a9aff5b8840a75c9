"""What a tune tries: sources of negatives (mined from the corpus, mined from the pool of the pairs'
own positives, and any the user's config adds: generators, filters, combinations), each with every
loss asked for. A candidate is grid tables, so a trial is ordinary cached stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.experiment.config import validate_experiment
from hardneg.settings.experiment import ExperimentSettings
from hardneg.settings.tune import TuneSettings


@dataclass
class Candidate:
    name: str
    """Its grid source name (also its row in recommendation.md)."""
    label: str
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Grid tables: the candidate's own source and every source it is made from."""


def builtin_sources(base_model: str, num_negatives: int, max_seq_length: int | None) -> dict[str, dict]:
    """Mining recipes, with the windows and margins worth trying; ``corpus = 'pool'`` ones read no corpus."""
    dense = {"method": "dense", "model": base_model, "num_negatives": num_negatives}
    if max_seq_length:
        dense["dense"] = {"max_seq_length": max_seq_length}
    margin = {"relative_margin": 0.05}
    return {
        "bm25": {"label": "BM25", "mine": {"method": "bm25", "num_negatives": num_negatives}},
        "bm25-window": {
            "label": "BM25, ranks 11-50 at random",
            "mine": {
                "method": "bm25",
                "num_negatives": num_negatives,
                "range_min": 11,
                "range_max": 50,
                "sampling": "random",
            },
        },
        "dense": {"label": f"dense ({base_model})", "mine": dense},
        "dense-margin": {
            "label": f"dense ({base_model}), positive-aware margin 5%",
            "mine": {**dense, "filters": margin},
        },
        "cross-encoder": {
            "label": "cross-encoder (trained on the pairs)",
            "mine": {"method": "cross-encoder", "num_negatives": num_negatives, "rerank_depth": 20},
            "train_cross_encoder": {
                "num_negatives": num_negatives,
                "epochs": 1,
                "max_length": max_seq_length or 256,
            },
        },
        # the pool: every train pair's positive at every rung, not only the rung's sample's
        "pool-bm25": {
            "label": "pool BM25",
            "mine": {"method": "bm25", "corpus": "pool", "num_negatives": num_negatives},
            "pool_pairs": {},
        },
        "pool-dense-margin": {
            "label": f"pool dense ({base_model}), positive-aware margin 5%",
            "mine": {**dense, "corpus": "pool", "filters": margin},
            "pool_pairs": {},
        },
    }


def _closure(name: str, grid: ExperimentSettings) -> dict[str, dict]:
    """A source's table and those of every source it is made from (as its kind says: a plugin's too)."""
    needed: dict[str, dict] = {}

    def visit(item: str) -> None:
        if item not in needed:
            needed[item] = grid.sources[item].model_dump(mode="json", exclude_unset=True)
            for upstream in grid.upstream(item):
                visit(upstream)

    visit(name)
    return needed


def catalog(
    settings: TuneSettings, template: dict[str, Any], has_corpus: bool, where: str = "hardneg tune"
) -> list[Candidate]:
    """Every (source, loss) to try, before the corpus-free and budget cuts. Sources: the built-in
    ones (mining the corpus only when there is one) and the config's own; a source whose table sets
    its own ``train`` is tried as it is."""
    train = template.get("train", {})
    tables = builtin_sources(
        template.get("base_model", "minilm-l6"), train.get("num_negatives", 3), train.get("max_seq_length")
    )
    if not has_corpus:
        tables = {name: t for name, t in tables.items() if t["mine"].get("corpus") == "pool"}
    tables.update(template.get("sources", {}))
    grid = validate_experiment({"datasets": [{"train": "-"}], "pairs": {}, "sources": tables}, where)
    candidates: list[Candidate] = []
    for name, table in tables.items():
        own = _closure(name, grid)
        label = table.get("label", name)
        losses = [None] if table.get("train") else settings.losses
        for loss in losses:
            if loss in (None, "mnrl"):
                candidates.append(Candidate(name, label, own))
                continue
            variant = f"{name} {loss}"
            candidates.append(
                Candidate(
                    variant, f"{label}, {loss} loss", {**own, variant: {**table, "train": {"loss": loss}}}
                )
            )
    # Every source with the default loss first, then the other losses: when the budget cannot try
    # them all, the first rung still covers every source.
    candidates.sort(key=lambda c: c.name not in tables)
    names = [c.name for c in candidates]
    for wanted in [*(settings.include or []), *settings.exclude]:
        if wanted not in names:
            raise HardnegError(
                f"--include/--exclude: no candidate {wanted!r} (candidates: {', '.join(names)})"
            )
    if settings.include is not None:
        candidates = [c for c in candidates if c.name in settings.include]
    return [c for c in candidates if c.name not in settings.exclude]
