"""Settings as validated objects, one per stage, shared by the CLI, the API and TOML configs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BM25Settings(Settings):
    """Defaults reproduce the bm25s BEIR numbers (Lucene variant, k1=1.2, b=0.75)."""

    k1: float = Field(1.2, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stopwords: str | None = "en"
    stemmer: str | None = "english"
    use_title: bool = True
    keep_unmatched: bool = False
    """Keep bm25s's score-0 filler documents (in corpus order) instead of dropping them."""


class DenseSettings(Settings):
    """How a bi-encoder turns queries and documents into vectors."""

    batch_size: int = Field(64, gt=0)
    max_seq_length: int | None = Field(256, gt=0)
    use_title: bool = True
    similarity: Literal["cosine", "dot"] = "cosine"
    query_prompt: str = ""
    document_prompt: str = ""
    corpus_chunk_size: int = Field(50_000, gt=0)
    cache_embeddings: bool = True


class EvaluateConfig(Settings):
    dataset: str
    split: str = "test"
    retriever: str = "bm25"
    top_k: int = Field(100, gt=0)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()
    data_root: str | None = None

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        from hardneg.evaluation.metrics import parse_metric

        for metric in metrics:
            parse_metric(metric)
        return metrics
