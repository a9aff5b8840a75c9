"""Exact dense retrieval: encode the corpus once (cached on disk, resumable), then chunked top-k.

Encoding dominates the cost on a CPU (minutes for a few thousand abstracts), so corpus embeddings
are cached under a key made of the model's content hash, the encoding settings and the corpus
texts, written shard by shard so that an interrupted encoding resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hardneg.core import reuse
from hardneg.core.io import atomic_open, cache_root
from hardneg.core.models import model_fingerprint
from hardneg.data.beir import Document, require_memory
from hardneg.data.store import TextColumn
from hardneg.data.store_build import fsync_file
from hardneg.retrieval.onnx_encoder import backend_tag, load_encoder
from hardneg.retrieval.search import exact_top_k, top_k
from hardneg.retrieval.types import CorpusRows, Run
from hardneg.settings.retrieval import DenseSettings

__all__ = ["DenseRetriever", "encode_corpus", "encode_texts", "exact_top_k"]

SHARD_SIZE = 2048


def embedding_key(
    model_hash: str,
    settings: DenseSettings,
    doc_ids: list[str],
    texts: list[str] | None,
    content: str | None = None,
) -> str:
    """Model, encoding settings and the corpus: every id and text, or a corpus store's content hash
    (its ids and texts derive from it, so a cached run reads none)."""
    digest = hashlib.sha256()
    encoding = {
        "model": model_hash,
        "max_seq_length": settings.max_seq_length,
        "prompt": settings.document_prompt,
        "normalize": settings.similarity == "cosine",
    }
    if settings.backend != "torch":  # a torch key stays what it was, so its cached embeddings hold
        encoding["backend"] = backend_tag(settings.backend)
    if content is not None:
        encoding |= {"corpus_store": content, "use_title": settings.use_title}
    digest.update(json.dumps(encoding, sort_keys=True).encode())
    for doc_id, text in zip(doc_ids, texts or ()):
        digest.update(doc_id.encode())
        digest.update(b"\x00")
        digest.update(text.encode())
        digest.update(b"\x01")
    return digest.hexdigest()[:32]


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def encode_texts(
    model, texts: list[str], settings: DenseSettings, prompt: str, progress=None, pool=None
) -> np.ndarray:
    """Encode in batches (the caller sorts by length), advancing ``progress`` as it goes; with a
    multi-process ``pool``, the whole list at once, split over its devices."""
    parts = []
    step = len(texts) if pool is not None else settings.batch_size
    for start in range(0, len(texts), max(1, step)):
        batch = texts[start : start + step]
        parts.append(
            model.encode(
                batch,
                batch_size=settings.batch_size,
                prompt=prompt or None,
                normalize_embeddings=settings.similarity == "cosine",
                convert_to_numpy=True,
                show_progress_bar=False,
                pool=pool,
                chunk_size=settings.batch_size * 4 if pool is not None else None,
            ).astype(np.float32, copy=False)
        )
        if progress is not None:
            progress.update(len(batch))
    dim = model.get_embedding_dimension()
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


def _take(texts, rows) -> list[str]:
    return texts.take(rows) if isinstance(texts, TextColumn) else [texts[i] for i in rows]


def _encode_shards(model, texts, order, settings, folder, bar, pool, allocate) -> np.ndarray | None:
    """Shard by shard, each saved atomically as it is done: an interrupted encoding resumes. Only
    a shard's texts are held at a time (fetched by row from a corpus store), and each shard goes
    straight to its rows of the result (``allocate(dim)``: in memory, or a file mapped from disk)."""
    embeddings = None
    for number, start in enumerate(range(0, len(order), SHARD_SIZE)):
        positions = order[start : start + SHARD_SIZE]
        shard_file = folder / f"shard-{number:05d}.npy" if folder else None
        if shard_file is not None and shard_file.exists():
            shard = np.load(shard_file)
            bar.update(len(positions))
        else:
            shard = encode_texts(
                model, _take(texts, positions), settings, settings.document_prompt, bar, pool
            )
            if shard_file is not None:
                _save_array(shard_file, shard)
        if embeddings is None:
            embeddings = allocate(shard.shape[1])
        embeddings[np.asarray(positions)] = shard
    return embeddings


def encode_corpus(
    model,
    doc_ids: Sequence[str],
    texts: Sequence[str],
    settings: DenseSettings,
    cache_key: str | None,
    show_progress: bool = True,
) -> np.ndarray:
    """Corpus embeddings in ``doc_ids`` order, from the cache when an identical run made them; with
    ``settings.devices``, every shard is encoded by a multi-process pool over those devices."""
    folder = cache_root() / "embeddings" / cache_key if cache_key else None
    final = folder / "embeddings.npy" if folder else None
    if final is not None and final.exists():
        reuse.reused("corpus embeddings")
        return np.load(final, mmap_mode="r")  # pages read as the search scans them
    # Longest first: batches of similar length waste little padding, and memory peaks early.
    lengths = texts.lengths() if isinstance(texts, TextColumn) else [len(text) for text in texts]
    order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
    del lengths
    staged = folder / f".embeddings.{os.getpid()}.npy" if folder else None

    def allocate(dim: int) -> np.ndarray:
        """With a cache, the result is a file mapped from disk: a corpus's embeddings need no RAM."""
        if staged is None:
            return np.zeros((len(texts), dim), dtype=np.float32)
        return np.lib.format.open_memmap(staged, mode="w+", dtype=np.float32, shape=(len(texts), dim))

    pool = model.start_multi_process_pool(settings.devices) if settings.devices and len(texts) else None
    try:
        with tqdm(total=len(texts), desc="encoding corpus", unit="doc", disable=not show_progress) as bar:
            embeddings = _encode_shards(model, texts, order, settings, folder, bar, pool, allocate)
    finally:
        if pool is not None:
            model.stop_multi_process_pool(pool)
    if embeddings is None:
        embeddings = np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        if folder is not None:
            _save_array(final, embeddings)
        return embeddings
    if folder is not None:
        embeddings.flush()
        del embeddings
        fsync_file(staged)
        os.replace(staged, final)
        for shard_file in folder.glob("shard-*.npy"):
            shard_file.unlink()
        return np.load(final, mmap_mode="r")
    return embeddings


class DenseRetriever(CorpusRows):
    """A sentence-transformers bi-encoder with its corpus embeddings: mapped from the embedding
    cache (read as a search scans them), or in memory when caching is off."""

    def __init__(
        self,
        corpus: Mapping[str, Document],
        model_name: str,
        settings: DenseSettings = DenseSettings(),
        show_progress: bool = True,
        model=None,
    ):
        self.settings = settings
        self.model_name = model_name
        self.model = model or load_encoder(
            model_name, settings.max_seq_length, settings.device, settings.backend
        )
        CorpusRows.__init__(self, corpus)
        self.show_progress = show_progress
        self.index_info: dict = {}
        """How the last search ran: the index, its parameters, and an approximate one's recall."""
        key = None
        if self._store is not None:
            if not settings.cache_embeddings:  # cached ones are mapped from disk
                dim = self.model.get_embedding_dimension() or 0
                needed = len(self._store) * dim * 4
                require_memory(
                    self._store.source, needed, f"{len(self._store):,} embeddings of {dim} dimensions"
                )
            texts: Sequence[str] = self._store.texts(settings.use_title)
            if settings.cache_embeddings:
                key = embedding_key(
                    model_fingerprint(model_name), settings, [], None, self._store.content_key
                )
        else:
            texts = [doc.full_text if settings.use_title else doc.text for doc in corpus.values()]
            if settings.cache_embeddings:
                key = embedding_key(model_fingerprint(model_name), settings, self.doc_ids, texts)
        self.corpus_embeddings = encode_corpus(self.model, self.doc_ids, texts, settings, key, show_progress)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            prompt=self.settings.query_prompt or None,
            normalize_embeddings=self.settings.similarity == "cosine",
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)

    def search(self, queries: dict[str, str], k: int) -> Run:
        if not queries or not self.doc_ids:
            return {qid: {} for qid in queries}
        query_embeddings = self.encode_queries(list(queries.values()))
        settings = self.settings
        scores, indices, self.index_info = top_k(
            query_embeddings,
            self.corpus_embeddings,
            k,
            settings.search,
            settings.search_backend,
            settings.corpus_chunk_size,
        )
        return {
            qid: dict(zip(self.ids_at(row_i), np.asarray(row_s, dtype=float).tolist()))
            for qid, row_i, row_s in zip(queries, indices, scores)
        }
