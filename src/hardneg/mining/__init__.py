"""Corpus-mined hard negatives: BM25, dense, cross-encoder re-ranking, with false-negative filters."""

from hardneg.mining.mine import MiningResult, mine, mine_file, source_name

__all__ = ["MiningResult", "mine", "mine_file", "source_name"]
