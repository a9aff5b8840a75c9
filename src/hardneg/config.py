"""Settings as validated objects, one per stage, shared by the CLI, the API and TOML configs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from hardneg.config_base import Devices, Settings, comma_list, key_settings, runtime
from hardneg.config_llm import GenerateConfig, JudgeSettings, LLMEndpoint, RejectSettings, SamplingSettings, parse_budget

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


def _known_metrics(metrics: tuple[str, ...]) -> tuple[str, ...]:
    from hardneg.evaluation.metrics import parse_metric

    for metric in metrics:
        parse_metric(metric)
    return metrics


Metrics = Annotated[tuple[str, ...], AfterValidator(_known_metrics)]
"""Metric names such as 'ndcg@10', checked when a config is built."""

EncodeBackend = Literal["torch", "onnx", "onnx-int8"]
"""Who runs a bi-encoder (hardneg.retrieval.onnx_encoder)."""


class BM25Settings(Settings):
    """Defaults reproduce the bm25s BEIR numbers (Lucene variant, k1=1.2, b=0.75)."""

    k1: float = Field(1.2, gt=0)
    """Term-frequency saturation."""
    b: float = Field(0.75, ge=0, le=1)
    """Length normalisation: 0 ignores document length, 1 scales fully by it."""
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    """BM25 variant."""
    stopwords: str | None = "en"
    """Language whose stopwords are dropped; None keeps every word."""
    stemmer: str | None = "english"
    """Snowball stemmer language; None disables stemming."""
    use_title: bool = True
    """Index title + ' ' + text."""
    keep_unmatched: bool = False
    """Keep bm25s's score-0 filler documents (in corpus order) instead of dropping them."""
    cache_index: bool = runtime(True)
    """Keep the index on disk ($HARDNEG_CACHE/bm25), keyed by these settings and the corpus."""


class DenseSettings(Settings):
    """How a bi-encoder turns queries and documents into vectors."""

    batch_size: int = runtime(64, gt=0)
    """Encoding batch size."""
    max_seq_length: int | None = Field(256, gt=0)
    """Token limit per text (None: the model's own)."""
    use_title: bool = True
    """Encode title + ' ' + text."""
    similarity: Literal["cosine", "dot"] = "cosine"
    """How query and document vectors are compared."""
    query_prompt: str = ""
    """Prefix for queries, e.g. 'query: '."""
    document_prompt: str = ""
    """Prefix for documents, e.g. 'passage: '."""
    corpus_chunk_size: int = runtime(50_000, gt=0)
    """Documents scored per chunk in the exact search, which bounds its memory."""
    cache_embeddings: bool = runtime(True)
    """Reuse corpus embeddings from disk ($HARDNEG_CACHE/embeddings)."""
    device: str = runtime("cpu")
    """Where the bi-encoder encodes: 'cpu', 'cuda', 'cuda:1'... (a runner stage asks its executor for a GPU)."""
    devices: Devices = runtime(None)
    """Several devices to encode the corpus on at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it), through
    sentence-transformers' multi-process pool; the embeddings and their cache are the same."""
    search: Literal["exact", "hnsw", "ivf"] = "exact"
    """Top-k search: 'exact', or an approximate FAISS index ('hnsw', 'ivf'), an explicit opt-in whose
    recall against exact search is measured on a sample of queries and reported."""
    search_backend: Literal["torch", "faiss"] = runtime("torch")
    """Exact search in torch chunks, or FAISS IndexFlatIP (on a GPU with faiss-gpu): the same top-k, ties aside."""
    backend: EncodeBackend = "torch"
    """Who runs the bi-encoder: 'torch', or on the CPU the model exported to ONNX and run by ONNX Runtime
    ('onnx': the same vectors; 'onnx-int8': int8 weights, faster, slightly different vectors; see
    docs/benchmarks.md). Needs the 'onnx' extra; the export is cached per model in $HARDNEG_CACHE/onnx."""

    @model_validator(mode="after")
    def _onnx_on_the_cpu(self) -> DenseSettings:
        if self.backend != "torch" and (self.device != "cpu" or self.devices):
            raise ValueError(f"backend {self.backend!r} runs in one CPU process: keep device 'cpu', no devices")
        return self


class EvaluateConfig(Settings):
    dataset: str
    """A dataset name or BEIR folder."""
    split: str = "test"
    """Qrels split to evaluate."""
    retriever: str = "bm25"
    """'bm25', a model alias, HF name or path."""
    top_k: int = Field(100, gt=0)
    """Results retrieved per query."""
    metrics: Metrics = DEFAULT_METRICS
    """Metrics to report, e.g. ndcg@10, recall@100."""
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
    data_root: str | None = runtime(None)
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""


class PairsConfig(Settings):
    dataset: str
    """A dataset name or BEIR folder."""
    split: str = "train"
    """Qrels split whose positives (score > 0) become pairs."""
    one_per_query: bool = False
    """Keep each query's best-graded positive only."""
    max_pairs: int | None = Field(None, gt=0)
    """Keep a seeded random sample of this many pairs."""
    seed: int = 0
    """Seed of the ``max_pairs`` sample."""
    data_root: str | None = runtime(None)
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""


class FilterSettings(Settings):
    """False-negative filters, as in sentence-transformers' mine_hard_negatives: a candidate is
    dropped when its score is above ``max_score``, below ``min_score``, or not at least
    ``absolute_margin`` (or ``relative_margin`` of the positive's magnitude; NV-Retriever's
    TopK-PercPos uses 0.05) below the positive's score."""

    max_score: float | None = None
    """Drop negatives scored above this."""
    min_score: float | None = None
    """Drop negatives scored below this floor (too easy)."""
    absolute_margin: float | None = None
    """Drop negatives scored above (positive - margin): likely false negatives; 0 drops those
    above the positive."""
    relative_margin: float | None = Field(None, ge=0, lt=1)
    """As ``absolute_margin``, as a fraction of the positive's score (e.g. 0.05)."""
    scorer: str | None = None
    """Who scores for the filters: None = the mining method's own scores, else
    'dense:MODEL' or 'cross-encoder:MODEL'."""

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_score, self.min_score, self.absolute_margin, self.relative_margin))

    @field_validator("scorer")
    @classmethod
    def _scorer_kind(cls, scorer: str | None) -> str | None:
        if scorer is not None and not scorer.startswith(("dense:", "cross-encoder:")):
            raise ValueError("scorer must be 'dense:MODEL' or 'cross-encoder:MODEL'")
        return scorer


class MineConfig(Settings):
    dataset: str
    """The dataset the pairs come from (its corpus is mined)."""
    method: Literal["bm25", "dense", "cross-encoder"] = "bm25"
    """Who ranks the candidates: BM25, a bi-encoder, or a cross-encoder re-ranking BM25's top
    ``rerank_depth``."""
    num_negatives: int = Field(5, gt=0)
    """Negatives per pair."""
    depth: int = Field(100, gt=0)
    """Candidates retrieved per query (BM25 or dense)."""
    rerank_depth: int = Field(50, gt=0)
    """BM25 candidates the cross-encoder re-ranks."""
    range_min: int = Field(1, ge=1)
    """Best rank a negative may have (1 = the method's best candidate)."""
    range_max: int | None = Field(None, ge=1)
    """Worst rank a negative may have (None: no limit); with ``range_min``, the rank window
    (1 = the method's best candidate) that negatives are taken from."""
    sampling: Literal["top", "random"] = "top"
    """The 'top' n of the rank window, or a seeded 'random' n."""
    seed: int = 0
    """Seed of the 'random' sampling."""
    model: str | None = None
    """Bi-encoder for 'dense' (default minilm-l6); cross-encoder for 'cross-encoder'."""
    batch_size: int = runtime(64, gt=0)
    """Encoding / cross-encoder batch size."""
    devices: Devices = runtime(None)
    """Several devices for the method's model at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it): the
    bi-encoder encoding the corpus, or the cross-encoder scoring candidates (and a cross-encoder
    filter scorer), through sentence-transformers' multi-process pool: the same scores as one process."""
    filters: FilterSettings = FilterSettings()
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()
    data_root: str | None = runtime(None)
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""


class CrossEncoderTrainConfig(Settings):
    """Defaults fit a CPU: one epoch of MiniLM-L6 on a BEIR train split takes minutes."""

    dataset: str
    """The dataset the pairs come from."""
    base_model: str = "minilm-l6"
    """Encoder to start from: alias, HF name or path."""
    num_negatives: int = Field(4, gt=0)
    """BM25 negatives per pair."""
    random_negatives: int = Field(0, ge=0)
    """Random corpus passages per pair, mixed in: easy examples give a new classifier head a signal
    to start from (with BM25 negatives alone, a short CPU run stayed at the constant prediction)."""
    range_min: int = Field(1, ge=1)
    """Best BM25 rank a negative may have."""
    loss: Literal["bce", "mnrl"] = "bce"
    """'bce': pointwise labels; 'mnrl': a softmax over each query's positive, its negatives and one
    in-batch passage, which started learning sooner than BCE in our CPU probes."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training examples."""
    batch_size: int = Field(16, gt=0)
    """Training examples per step."""
    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate warms up."""
    max_length: int = Field(256, gt=0)
    """Token limit per (query, passage)."""
    save_steps: int = Field(100, gt=0)
    """Checkpoint every N steps (an interrupted run resumes)."""
    seed: int = 0
    """Random seed."""
    data_root: str | None = runtime(None)
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""


class TrainConfig(Settings):
    """Bi-encoder fine-tuning; the defaults are the reference study's (MNRL, batch 16, 90/10 split
    by query, early stopping with patience 3)."""

    base_model: str = "minilm-l6"
    """An alias, a Hugging Face name or a path; a plain transformer gets mean pooling."""
    num_negatives: int = Field(5, ge=0)
    """``negative_1..k`` columns per example; 0 trains on (query, positive) with in-batch negatives."""
    short_triplets: Literal["pad", "drop"] = "pad"
    """A triplet with fewer negatives than ``num_negatives``: repeat its own negatives to fill the
    columns (a repeated negative weighs double in the softmax), or leave it out."""
    skip_empty: bool = False
    """Leave out triplets without any negative (an LLM's shortfalls) instead of failing on them."""
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    """Share of queries held out for validation."""
    batch_size: int = Field(16, gt=1)
    """Every other example's passages are the in-batch negatives: at least 2."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training triplets."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many steps (overrides ``epochs``)."""
    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate warms up."""
    eval_steps: int = Field(100, gt=0)
    """Validate (and checkpoint) every N steps."""
    patience: int | None = Field(3, ge=1)
    """Stop after this many evaluations without a lower validation loss; None trains to the end."""
    max_seq_length: int | None = Field(None, gt=0)
    """Token limit per text (None: the model's own); shorter is much faster on a CPU."""
    device: str | None = runtime(None)
    """'cpu', 'cuda', 'cuda:1', 'mps'...; None picks a GPU when there is one."""
    processes: int = runtime(1, ge=1)
    """`hardneg run` trains each model in this many processes under torchrun (one CPU, or one GPU,
    each); ``batch_size`` stays the global batch, split evenly over them."""
    seed: int = 0
    """Random seed."""

    @model_validator(mode="after")
    def _batch_splits_evenly(self) -> TrainConfig:
        if self.batch_size % self.processes:
            raise ValueError(f"batch_size {self.batch_size} does not split evenly over {self.processes} processes")
        return self


class CombineConfig(Settings):
    """How triplet files (or one) become one: which sources, how many negatives from each, filters."""

    strategy: Literal["concat", "per-source", "interleave"] = "concat"
    """'concat': every source's negatives in input order; 'per-source': the first ``per_source`` of
    each source; 'interleave': one from each source in turn."""
    sources: list[str] = []
    """Source names or shell patterns to keep (e.g. 'llm:*', 'bm25'); empty keeps all."""
    per_source: int | None = Field(None, gt=0)
    """With strategy 'per-source': negatives taken from each source."""
    max_negatives: int | None = Field(None, gt=0)
    """Cap per triplet after combining (and filtering)."""
    pairs: Literal["shared", "all"] = "shared"
    """'shared': only pairs present in every input; 'all': every pair of any input."""
    min_negatives: int = Field(0, ge=0)
    """Leave out triplets with fewer negatives than this at the end."""
    filters: FilterSettings = FilterSettings()
    """Scores come from ``filters.scorer`` (required when a threshold is set), on the texts."""
    judge: JudgeSettings | None = None
    """An LLM judge asked of every negative whether it answers the query (after the filters)."""
    length_band: tuple[float, float] | None = None
    """Keep a negative only if its word count is within [low, high] times its positive's, e.g.
    [0.5, 2.0]: a bi-encoder must not learn to tell negatives from positives by length alone."""
    batch_size: int = runtime(64, gt=0)
    """Scorer batch size."""
    backend: EncodeBackend = "torch"
    """Who runs a 'dense:MODEL' scorer's bi-encoder: 'torch', 'onnx' or 'onnx-int8' (see DenseSettings)."""

    @field_validator("length_band")
    @classmethod
    def _band(cls, band: tuple[float, float] | None) -> tuple[float, float] | None:
        if band is not None and not 0 <= band[0] <= band[1]:
            raise ValueError("length_band needs 0 <= low <= high, e.g. [0.5, 2.0]")
        return band

    @model_validator(mode="after")
    def _per_source_needs_a_count(self) -> CombineConfig:
        if self.strategy == "per-source" and self.per_source is None:
            raise ValueError("strategy 'per-source' needs per_source (--per-source N)")
        if self.filters.active and self.filters.scorer is None:
            raise ValueError("filters need a scorer ('dense:MODEL' or 'cross-encoder:MODEL', --scorer)")
        return self


__all__ = [
    "DEFAULT_METRICS", "Metrics", "EncodeBackend", "Settings", "runtime", "key_settings", "comma_list", "BM25Settings",
    "DenseSettings", "EvaluateConfig", "PairsConfig", "FilterSettings", "MineConfig", "CrossEncoderTrainConfig", "SamplingSettings",
    "RejectSettings", "GenerateConfig", "JudgeSettings", "LLMEndpoint", "parse_budget", "TrainConfig", "CombineConfig",
]  # fmt: skip
