"""Triplets to and from sentence-transformers datasets (Hugging Face folders, Parquet, JSONL)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hardneg.settings.base import Settings


class ExportSettings(Settings):
    """How triplets become a sentence-transformers dataset."""

    format: Literal["hf", "parquet", "jsonl"] = "hf"
    """'hf': a datasets.Dataset.save_to_disk folder; 'parquet': one Parquet file; 'jsonl': JSON lines."""
    columns: Literal["n-tuple", "triplet"] = "n-tuple"
    """'n-tuple': one row per triplet, anchor, positive, negative_1..n; 'triplet': one row per
    negative, anchor, positive, negative (mine_hard_negatives' two layouts)."""
    num_negatives: int | None = Field(None, ge=0)
    """Negatives per row (n-tuple) or per triplet (triplet layout); unset: the largest count there is."""
    short_triplets: Literal["pad", "drop"] = "pad"
    """n-tuple: a triplet with fewer than ``num_negatives`` negatives repeats its own to fill the
    columns, or is left out. A triplet without any is always left out."""
    source_column: bool = False
    """Add each negative's source (source_1..n, or source). Off by default: sentence-transformers
    trains on every text column, so drop it (select_columns) before training elsewhere."""
    score_column: bool = False
    """Add each negative's retrieval score (score_1..n, or score). Note sentence-transformers reads
    a column named 'score' as a label."""
    id_columns: bool = False
    """Add query_id and positive_id columns, so an import gives back the same ids."""
    push_to_hub: str | None = None
    """Also push the dataset to this Hugging Face Hub repository (needs HF_TOKEN and the network)."""


class ImportSettings(Settings):
    source: str = "imported"
    """The source of negatives whose row has none."""
