"""How a retriever is tested on a BEIR split."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from hardneg.settings.base import DatasetRef, Devices, runtime
from hardneg.settings.retrieval import BM25Settings, DenseSettings

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")

IDENTICAL_IDS_DATASETS = frozenset({"arguana", "quora"})
"""Datasets whose queries are documents of the corpus under the same id: BEIR and MTEB drop a
retrieved document whose id is the query's there (``ignore_identical_ids``)."""


def ignores_identical_ids(setting: bool | None, dataset_name: str) -> bool:
    """An explicit setting, else the dataset's own default (its name or folder name, any case)."""
    return setting if setting is not None else dataset_name.lower() in IDENTICAL_IDS_DATASETS


def _known_metrics(metrics: tuple[str, ...]) -> tuple[str, ...]:
    from hardneg.evaluation.metrics import parse_metric

    for metric in metrics:
        parse_metric(metric)
    return metrics


Metrics = Annotated[tuple[str, ...], AfterValidator(_known_metrics)]
"""Metric names such as 'ndcg@10', checked when a config is built."""


class EvaluateSettings(DatasetRef):
    split: str = "test"
    """Qrels split to evaluate."""
    retriever: str = "bm25"
    """'bm25', a model alias, HF name or path."""
    top_k: int = Field(100, gt=0)
    """Results retrieved per query."""
    metrics: Metrics = DEFAULT_METRICS
    """Metrics to report, e.g. ndcg@10, recall@100."""
    ignore_identical_ids: bool | None = None
    """Drop a retrieved document whose id is the query's (one more is retrieved, so ``top_k`` stays
    full), as BEIR and MTEB do where queries are documents of the corpus. None: the dataset's default,
    on for arguana and quora (by dataset or folder name), off otherwise."""
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()
    reranker: str | None = None
    """A cross-encoder that re-scores the first stage's top ``rerank_depth``."""
    rerank_depth: int = Field(100, gt=0)
    """How many first-stage results the re-ranker scores."""
    rerank_batch_size: int = runtime(64, gt=0)
    """Re-ranker batch size."""
    rerank_devices: Devices = runtime(None)
    """Several devices to re-rank on at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it), through
    sentence-transformers' multi-process pool: the same scores as one process."""
