"""What a pool drawn from more pairs holds in memory: the extra pairs file read whole (a list of
pairs, each with its own copy of its positive's text) against read once as it comes (the pool keeps
one text per distinct positive), both measured in the same run.

    .venv/bin/python benchmarks/pool_memory.py [DATASET]

The study's pool-size rows on DATASET (default NFCorpus): its 500 training pairs (one per query,
seed 0, as configs/study.toml draws them), pooled with every judged pair of the train split (the
`pool_pairs = { one_per_query = false }` source). Python's allocations at their peak while the pool
is built (tracemalloc), and the pool's size; the two pools must be equal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SHARED_BEIR  # noqa: E402


def peak(build) -> tuple[int, object]:
    """(peak bytes allocated while ``build()`` ran, what it returned)."""
    tracemalloc.start()
    try:
        result = build()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", default="nfcorpus")
    args = parser.parse_args()
    from hardneg.data.beir import load_beir
    from hardneg.data.pairs import build_pairs
    from hardneg.data.records import iter_pairs, read_pairs, write_records
    from hardneg.mining.pool import pool_dataset
    from hardneg.settings.data import PairsSettings

    dataset = load_beir(SHARED_BEIR / args.dataset)
    mined = build_pairs(dataset, PairsSettings(dataset=args.dataset, one_per_query=True, max_pairs=500))
    every = build_pairs(dataset, PairsSettings(dataset=args.dataset, one_per_query=False))
    del dataset
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pool-pairs.jsonl"
        write_records(path, every)
        size = path.stat().st_size
        del every
        whole, pool_a = peak(lambda: pool_dataset(mined, more=(read_pairs(path), path)))
        stream, pool_b = peak(lambda: pool_dataset(mined, more=(iter_pairs(path), path)))
    assert pool_a.corpus.keys() == pool_b.corpus.keys() and pool_a.qrels == pool_b.qrels
    judged = sum(map(len, pool_a.qrels["<pairs>"].values()))
    print(f"{args.dataset}: pool of {len(pool_a.corpus):,} passages from {judged:,} judged pairs")
    print(f"pool pairs file: {size / 2**20:.0f} MiB")
    print(f"peak Python allocations, file read whole: {whole / 2**20:.0f} MiB")
    print(f"peak Python allocations, read as it comes: {stream / 2**20:.0f} MiB ({whole / stream:.1f}x less)")


if __name__ == "__main__":
    main()
