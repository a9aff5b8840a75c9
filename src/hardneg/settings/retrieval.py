"""How the retrievers behind mining and evaluation are set: BM25's and a bi-encoder's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hardneg.settings.base import Devices, Settings, runtime

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
    """Where the bi-encoder encodes: 'cpu', 'cuda', 'cuda:1'... (a runner stage asks its executor for a
    GPU)."""
    devices: Devices = runtime(None)
    """Several devices to encode the corpus on at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it), through
    sentence-transformers' multi-process pool; the embeddings and their cache are the same."""
    search: Literal["exact", "hnsw", "ivf"] = "exact"
    """Top-k search: 'exact', or an approximate FAISS index ('hnsw', 'ivf'), an explicit opt-in whose
    recall against exact search is measured on a sample of queries and reported."""
    search_backend: Literal["torch", "faiss"] = runtime("torch")
    """Exact search in torch chunks, or FAISS IndexFlatIP (on a GPU with faiss-gpu): the same top-k, ties
    aside."""
    backend: EncodeBackend = "torch"
    """Who runs the bi-encoder: 'torch', or on the CPU the model exported to ONNX and run by ONNX Runtime
    ('onnx': the same vectors; 'onnx-int8': int8 weights, faster, slightly different vectors; see
    docs/benchmarks.md). Needs the 'onnx' extra; the export is cached per model in $HARDNEG_CACHE/onnx."""

    @model_validator(mode="after")
    def _onnx_on_the_cpu(self) -> DenseSettings:
        if self.backend != "torch" and (self.device != "cpu" or self.devices):
            raise ValueError(
                f"backend {self.backend!r} runs in one CPU process: keep device 'cpu', no devices"
            )
        return self
