"""Top-k by inner product over corpus embeddings: exact (torch chunks, or FAISS ``IndexFlatIP``,
on a GPU when faiss-gpu sees one) or, as an explicit opt-in, approximate (FAISS HNSW or IVF), whose
recall against exact search is measured on a sample of queries and reported with the results."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from hardneg.core.errors import HardnegError

RECALL_SAMPLE = 100
"""Queries on which an approximate index is checked against exact search."""


def exact_top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    corpus_chunk_size: int = 50_000,
    query_chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product; memory is bounded by one query chunk times one corpus chunk."""
    import torch

    k = min(k, len(corpus))
    all_scores = np.empty((len(queries), k), dtype=np.float32)
    all_indices = np.empty((len(queries), k), dtype=np.int64)
    for q_start in range(0, len(queries), query_chunk_size):
        q = torch.from_numpy(np.ascontiguousarray(queries[q_start : q_start + query_chunk_size]))
        best_scores = torch.full((len(q), 0), float("-inf"))
        best_indices = torch.zeros((len(q), 0), dtype=torch.int64)
        for c_start in range(0, len(corpus), corpus_chunk_size):
            chunk = corpus[
                c_start : c_start + corpus_chunk_size
            ]  # from a mapped file: read now, one chunk held
            chunk = (
                np.ascontiguousarray(chunk) if chunk.flags.writeable else np.array(chunk, dtype=np.float32)
            )
            chunk = torch.from_numpy(chunk)
            scores = q @ chunk.T
            chunk_scores, chunk_indices = scores.topk(min(k, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)
            merged_indices = torch.cat([best_indices, chunk_indices + c_start], dim=1)
            best_scores, picked = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
            best_indices = merged_indices.gather(1, picked)
        all_scores[q_start : q_start + len(q)] = best_scores.numpy()
        all_indices[q_start : q_start + len(q)] = best_indices.numpy()
    return all_scores, all_indices


def _faiss():
    try:
        import faiss
    except ImportError:
        raise HardnegError(
            "this search needs FAISS: pip install 'hardneg[faiss]' (faiss-cpu, or faiss-gpu)"
        ) from None
    return faiss


def _on_gpu(faiss, index):
    """A GPU copy of a flat index when faiss-gpu and a GPU are there; else the index as it is."""
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def build_index(corpus: np.ndarray, kind: str, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A FAISS index over ``corpus`` (inner product) and the parameters it was built with."""
    faiss = _faiss()
    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    n, dim = corpus.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(corpus)
        return _on_gpu(faiss, index), {"index": "IndexFlatIP"}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = 80, 128
        index.add(corpus)
        return index, {"index": "IndexHNSWFlat", "M": 32, "efConstruction": 80, "efSearch": 128}
    if kind == "ivf":
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))  # FAISS wants >= 39 training points a list
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(corpus)
        index.add(corpus)
        index.nprobe = min(nlist, 16)
        return index, {"index": "IndexIVFFlat", "nlist": nlist, "nprobe": index.nprobe}
    raise HardnegError(f"unknown index {kind!r} (exact, hnsw, ivf)")


def top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    search: str = "exact",
    backend: str = "torch",
    corpus_chunk_size: int = 50_000,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(scores, indices, what searched): ``search`` 'exact' (``backend`` torch or faiss) or an
    approximate FAISS index ('hnsw', 'ivf') with its recall@k against exact on a query sample."""
    k = min(k, len(corpus))
    if search == "exact" and backend == "torch":
        scores, indices = exact_top_k(queries, corpus, k, corpus_chunk_size)
        return scores, indices, {"index": "exact (torch)"}
    index, info = build_index(corpus, "flat" if search == "exact" else search)
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    if search != "exact":
        sample = sorted(random.Random(0).sample(range(len(queries)), min(RECALL_SAMPLE, len(queries))))
        _, truth = exact_top_k(queries[sample], corpus, k, corpus_chunk_size)
        found = [len(set(indices[i]) & set(truth[j])) / k for j, i in enumerate(sample)]
        info |= {"recall_at_k": round(float(np.mean(found)), 4), "k": k, "recall_queries": len(sample)}
    return scores, indices, info
