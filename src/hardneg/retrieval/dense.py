"""Exact dense retrieval: encode the corpus once (cached on disk, resumable), then chunked top-k.

Encoding dominates the cost on a CPU (minutes for a few thousand abstracts), so corpus embeddings
are cached under a key made of the model's content hash, the encoding settings and the corpus
texts, written shard by shard so that an interrupted encoding resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hardneg.config import DenseSettings
from hardneg.data.beir import Document
from hardneg.io import atomic_open, cache_root
from hardneg.models import load_sentence_transformer, model_fingerprint
from hardneg.retrieval.types import Run

SHARD_SIZE = 2048


def embedding_key(model_hash: str, settings: DenseSettings, doc_ids: list[str], texts: list[str]) -> str:
    digest = hashlib.sha256()
    encoding = {
        "model": model_hash,
        "max_seq_length": settings.max_seq_length,
        "prompt": settings.document_prompt,
        "normalize": settings.similarity == "cosine",
    }
    digest.update(json.dumps(encoding, sort_keys=True).encode())
    for doc_id, text in zip(doc_ids, texts):
        digest.update(doc_id.encode())
        digest.update(b"\x00")
        digest.update(text.encode())
        digest.update(b"\x01")
    return digest.hexdigest()[:32]


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def encode_texts(model, texts: list[str], settings: DenseSettings, prompt: str, progress=None) -> np.ndarray:
    """Encode in batches (the caller sorts by length), advancing ``progress`` as it goes."""
    parts = []
    for start in range(0, len(texts), settings.batch_size):
        batch = texts[start : start + settings.batch_size]
        parts.append(
            model.encode(
                batch,
                batch_size=settings.batch_size,
                prompt=prompt or None,
                normalize_embeddings=settings.similarity == "cosine",
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
        )
        if progress is not None:
            progress.update(len(batch))
    dim = model.get_embedding_dimension()
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


def encode_corpus(
    model,
    doc_ids: list[str],
    texts: list[str],
    settings: DenseSettings,
    cache_key: str | None,
    show_progress: bool = True,
) -> np.ndarray:
    """Corpus embeddings in ``doc_ids`` order, from the cache when an identical run made them."""
    folder = cache_root() / "embeddings" / cache_key if cache_key else None
    final = folder / "embeddings.npy" if folder else None
    if final is not None and final.exists():
        return np.load(final)
    # Longest first: batches of similar length waste little padding, and memory peaks early.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    shards = []
    with tqdm(total=len(texts), desc="encoding corpus", unit="doc", disable=not show_progress) as bar:
        for number, start in enumerate(range(0, len(order), SHARD_SIZE)):
            positions = order[start : start + SHARD_SIZE]
            shard_file = folder / f"shard-{number:05d}.npy" if folder else None
            if shard_file is not None and shard_file.exists():
                shards.append(np.load(shard_file))
                bar.update(len(positions))
                continue
            shard = encode_texts(model, [texts[i] for i in positions], settings, settings.document_prompt, bar)
            if shard_file is not None:
                _save_array(shard_file, shard)
            shards.append(shard)
    dim = model.get_embedding_dimension()
    embeddings = np.zeros((len(texts), dim), dtype=np.float32)
    if shards:
        embeddings[np.asarray(order)] = np.concatenate(shards)
    if folder is not None:
        _save_array(final, embeddings)
        for shard_file in folder.glob("shard-*.npy"):
            shard_file.unlink()
    return embeddings


def exact_top_k(
    queries: np.ndarray, corpus: np.ndarray, k: int, corpus_chunk_size: int = 50_000, query_chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product; memory is bounded by one query chunk times one corpus chunk."""
    k = min(k, len(corpus))
    all_scores = np.empty((len(queries), k), dtype=np.float32)
    all_indices = np.empty((len(queries), k), dtype=np.int64)
    corpus_t = torch.from_numpy(np.ascontiguousarray(corpus))
    for q_start in range(0, len(queries), query_chunk_size):
        q = torch.from_numpy(np.ascontiguousarray(queries[q_start : q_start + query_chunk_size]))
        best_scores = torch.full((len(q), 0), float("-inf"))
        best_indices = torch.zeros((len(q), 0), dtype=torch.int64)
        for c_start in range(0, len(corpus_t), corpus_chunk_size):
            scores = q @ corpus_t[c_start : c_start + corpus_chunk_size].T
            chunk_scores, chunk_indices = scores.topk(min(k, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)
            merged_indices = torch.cat([best_indices, chunk_indices + c_start], dim=1)
            best_scores, picked = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
            best_indices = merged_indices.gather(1, picked)
        all_scores[q_start : q_start + len(q)] = best_scores.numpy()
        all_indices[q_start : q_start + len(q)] = best_indices.numpy()
    return all_scores, all_indices


class DenseRetriever:
    """A sentence-transformers bi-encoder with its corpus embeddings held in memory."""

    def __init__(
        self,
        corpus: dict[str, Document],
        model_name: str,
        settings: DenseSettings = DenseSettings(),
        show_progress: bool = True,
        model=None,
    ):
        self.settings = settings
        self.model_name = model_name
        self.model = model or load_sentence_transformer(model_name, settings.max_seq_length, device=settings.device)
        self.doc_ids = list(corpus)
        self.show_progress = show_progress
        texts = [doc.full_text if settings.use_title else doc.text for doc in corpus.values()]
        key = None
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
        scores, indices = exact_top_k(
            query_embeddings, self.corpus_embeddings, k, self.settings.corpus_chunk_size
        )
        return {
            qid: {self.doc_ids[i]: float(s) for i, s in zip(row_i, row_s)}
            for qid, row_i, row_s in zip(queries, indices, scores)
        }
