"""How often BM25 gives two documents of a query's top ranks the same score: where a tie's order is
up to the sort, and may differ between CPUs, mined negatives (and rows trained on them) may too.

    .venv/bin/python benchmarks/bm25_ties.py [--depth 30] [DATASET ...]

For each dataset (default: SciFact and NFCorpus), the study's training pairs (one per query, 500,
seed 0, as configs/study.toml draws them) and hardneg's own BM25 (its default settings, the
corpus mining's index): the share of queries with a tied score among their top DEPTH documents.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR  # noqa: E402


def ties(name: str, depth: int) -> tuple[int, int]:
    """(queries with a tied score in their top ``depth``, queries)."""
    from hardneg.data.beir import load_beir
    from hardneg.data.pairs import build_pairs
    from hardneg.retrieval.bm25 import BM25Retriever
    from hardneg.settings.data import PairsSettings

    dataset = load_beir(SHARED_BEIR / name)
    pairs = build_pairs(dataset, PairsSettings(dataset=name, one_per_query=True, max_pairs=500))
    queries = {pair.query_id: pair.query for pair in pairs}
    run = BM25Retriever(dataset.corpus, show_progress=False).search(queries, depth)
    tied = sum(len(set(scores.values())) < len(scores) for scores in run.values())
    return tied, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", default=["scifact", "nfcorpus"])
    parser.add_argument("--depth", type=int, default=30)
    args = parser.parse_args()
    for name in args.datasets:
        tied, total = ties(name, args.depth)
        print(f"{name}: {tied} of {total} training queries have a tied BM25 score in their top {args.depth}")


if __name__ == "__main__":
    main()
