"""Settings as validated objects, one per stage, shared by the CLI, the API and TOML configs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


def _known_metrics(metrics: tuple[str, ...]) -> tuple[str, ...]:
    from hardneg.evaluation.metrics import parse_metric

    for metric in metrics:
        parse_metric(metric)
    return metrics


Metrics = Annotated[tuple[str, ...], AfterValidator(_known_metrics)]
"""Metric names such as 'ndcg@10', checked when a config is built."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def runtime(default: Any, **kwargs: Any) -> Any:
    """A setting that changes how fast or where a stage runs, not what it makes: it stays out of
    cache keys, so raising a concurrency or moving to a GPU does not redo finished work."""
    return Field(default, json_schema_extra={"key": False}, **kwargs)


def key_settings(settings: BaseModel) -> dict[str, Any]:
    """The settings that enter a stage's cache key: every field but the ``runtime`` ones, recursively."""
    kept: dict[str, Any] = {}
    for name, info in type(settings).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("key") is False:
            continue
        value = getattr(settings, name)
        kept[name] = key_settings(value) if isinstance(value, BaseModel) else _plain(value)
    return kept


def _plain(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


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
    cache_index: bool = runtime(True)
    """Keep the index on disk ($HARDNEG_CACHE/bm25), keyed by these settings and the corpus."""


class DenseSettings(Settings):
    """How a bi-encoder turns queries and documents into vectors."""

    batch_size: int = runtime(64, gt=0)
    max_seq_length: int | None = Field(256, gt=0)
    use_title: bool = True
    similarity: Literal["cosine", "dot"] = "cosine"
    query_prompt: str = ""
    document_prompt: str = ""
    corpus_chunk_size: int = runtime(50_000, gt=0)
    cache_embeddings: bool = runtime(True)
    device: str = runtime("cpu")
    """Where the bi-encoder encodes: 'cpu', 'cuda', 'cuda:1'... (a runner stage asks its executor for a GPU)."""


class EvaluateConfig(Settings):
    dataset: str
    split: str = "test"
    retriever: str = "bm25"
    top_k: int = Field(100, gt=0)
    metrics: Metrics = DEFAULT_METRICS
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()
    reranker: str | None = None
    """A cross-encoder that re-scores the first stage's top ``rerank_depth``."""
    rerank_depth: int = Field(100, gt=0)
    rerank_batch_size: int = runtime(64, gt=0)
    data_root: str | None = runtime(None)


class PairsConfig(Settings):
    dataset: str
    split: str = "train"
    one_per_query: bool = False
    max_pairs: int | None = Field(None, gt=0)
    seed: int = 0
    data_root: str | None = runtime(None)


class FilterSettings(Settings):
    """False-negative filters, as in sentence-transformers' mine_hard_negatives: a candidate is
    dropped when its score is above ``max_score``, below ``min_score``, or not at least
    ``absolute_margin`` (or ``relative_margin`` of the positive's magnitude; NV-Retriever's
    TopK-PercPos uses 0.05) below the positive's score."""

    max_score: float | None = None
    min_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = Field(None, ge=0, lt=1)
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
    method: Literal["bm25", "dense", "cross-encoder"] = "bm25"
    num_negatives: int = Field(5, gt=0)
    depth: int = Field(100, gt=0)
    """Candidates retrieved per query (BM25 or dense)."""
    rerank_depth: int = Field(50, gt=0)
    """BM25 candidates the cross-encoder re-ranks."""
    range_min: int = Field(1, ge=1)
    range_max: int | None = Field(None, ge=1)
    """Rank window (1 = the method's best candidate) that negatives are taken from."""
    sampling: Literal["top", "random"] = "top"
    seed: int = 0
    model: str | None = None
    """Bi-encoder for 'dense' (default minilm-l6); cross-encoder for 'cross-encoder'."""
    batch_size: int = runtime(64, gt=0)
    filters: FilterSettings = FilterSettings()
    bm25: BM25Settings = BM25Settings()
    dense: DenseSettings = DenseSettings()
    data_root: str | None = runtime(None)


class CrossEncoderTrainConfig(Settings):
    """Defaults fit a CPU: one epoch of MiniLM-L6 on a BEIR train split takes minutes."""

    dataset: str
    base_model: str = "minilm-l6"
    num_negatives: int = Field(4, gt=0)
    """BM25 negatives per pair."""
    random_negatives: int = Field(0, ge=0)
    """Random corpus passages per pair, mixed in: easy examples give a new classifier head a signal
    to start from (with BM25 negatives alone, a short CPU run stayed at the constant prediction)."""
    range_min: int = Field(1, ge=1)
    loss: Literal["bce", "mnrl"] = "bce"
    """'bce': pointwise labels; 'mnrl': a softmax over each query's positive, its negatives and one
    in-batch passage, which started learning sooner than BCE in our CPU probes."""
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(256, gt=0)
    save_steps: int = Field(100, gt=0)
    seed: int = 0
    data_root: str | None = runtime(None)


class SamplingSettings(Settings):
    """The reference study's decoding settings."""

    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int | None = Field(20, gt=0)
    """Sent where the server accepts it (vLLM, llama.cpp, Ollama); dropped once if it refuses."""
    max_tokens: int = Field(1024, gt=0)
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    """OpenAI's penalties (not the study's settings; sent only when set): they curb the decoding
    loops small models fall into."""
    extra: dict[str, Any] = {}
    """Server-specific sampling fields sent as given, e.g. llama.cpp's ``dry_multiplier`` or
    ``repeat_penalty``, vLLM's ``repetition_penalty`` or ``min_p``."""


class RejectSettings(Settings):
    """What a generated text must pass to count as a negative."""

    min_words: int = Field(8, ge=1)
    max_copy_overlap: float = Field(0.7, gt=0, le=1)
    """Word-set Jaccard with the positive above which a text is a near-copy of it."""


class GenerateConfig(Settings):
    """One generator: a model behind an OpenAI-compatible endpoint, or a GGUF file served
    in-process when ``base_url`` is None."""

    model: str = "smollm2-135m"
    base_url: str | None = None
    api_key_env: str = runtime("OPENAI_API_KEY")
    """Name of the environment variable holding the API key (the key itself is never stored)."""
    num_negatives: int = Field(5, gt=0)
    template: str = "query+positive"
    """A built-in template name ('query+positive', 'query-only') or a path to a template file."""
    structured_output: bool = True
    """Send a JSON schema (``response_format``) so the server constrains decoding to a list of
    passages; dropped once if the server refuses it."""
    disable_thinking: bool = False
    """Ask Qwen3-style chat templates not to think (``enable_thinking: false`` and ``/no_think``)."""
    sampling: SamplingSettings = SamplingSettings()
    rejects: RejectSettings = RejectSettings()
    max_attempts: int = Field(3, ge=1)
    """Rounds per pair: the first asks for every negative, each later one for those still missing."""
    negatives_per_request: int | None = Field(None, ge=1)
    """Ask for at most this many negatives per request (None: all at once). Small models stay on
    topic in a short answer and drift into loops in a long one; a round then takes several requests."""
    concurrency: int = runtime(4, ge=1)
    timeout: float = runtime(300.0, gt=0)
    max_retries: int = runtime(5, ge=0)
    backoff: float = runtime(1.0, ge=0)
    """First retry delay in seconds; doubles per retry, with jitter, up to ``backoff_max``."""
    backoff_max: float = runtime(30.0, ge=0)
    slots: int | None = runtime(None, ge=1)
    """Embedded server: parallel decoding slots (default: ``concurrency``)."""
    context_per_slot: int = Field(2048, ge=256)
    port: int = runtime(0, ge=0, le=65535)
    """Embedded server port on 127.0.0.1; 0 picks a free one."""
    threads: int | None = runtime(None, ge=1)


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
    batch_size: int = Field(16, gt=1)
    """Every other example's passages are the in-batch negatives: at least 2."""
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    eval_steps: int = Field(100, gt=0)
    """Validate (and checkpoint) every N steps."""
    patience: int | None = Field(3, ge=1)
    """Stop after this many evaluations without a lower validation loss; None trains to the end."""
    max_seq_length: int | None = Field(None, gt=0)
    """Token limit per text (None: the model's own); shorter is much faster on a CPU."""
    device: str | None = runtime(None)
    """'cpu', 'cuda', 'cuda:1', 'mps'...; None picks a GPU when there is one."""
    seed: int = 0


class CombineConfig(Settings):
    """How triplet files (or one) become one: which sources, how many negatives from each, filters."""

    strategy: Literal["concat", "per-source", "interleave"] = "concat"
    """'concat': every source's negatives in input order; 'per-source': the first ``per_source`` of
    each source; 'interleave': one from each source in turn."""
    sources: list[str] = []
    """Source names or shell patterns to keep (e.g. 'llm:*', 'bm25'); empty keeps all."""
    per_source: int | None = Field(None, gt=0)
    max_negatives: int | None = Field(None, gt=0)
    """Cap per triplet after combining (and filtering)."""
    pairs: Literal["shared", "all"] = "shared"
    """'shared': only pairs present in every input; 'all': every pair of any input."""
    min_negatives: int = Field(0, ge=0)
    """Leave out triplets with fewer negatives than this at the end."""
    filters: FilterSettings = FilterSettings()
    """Scores come from ``filters.scorer`` (required when a threshold is set), on the texts."""
    batch_size: int = runtime(64, gt=0)

    @model_validator(mode="after")
    def _per_source_needs_a_count(self) -> CombineConfig:
        if self.strategy == "per-source" and self.per_source is None:
            raise ValueError("strategy 'per-source' needs per_source (--per-source N)")
        if self.filters.active and self.filters.scorer is None:
            raise ValueError("filters need a scorer ('dense:MODEL' or 'cross-encoder:MODEL', --scorer)")
        return self
