"""Lexical retrieval with bm25s: one index per corpus, reused for evaluation and mining.

Tokenizing and indexing cost seconds per run (a regex, stemming and stop words over every
document), several times the searching itself, so the index is kept on disk under a key made of
the BM25 settings and the corpus: evaluating and mining the same corpus again, with any windows or
filters, starts from the saved index. A corpus loaded as a ``CorpusStore`` is keyed by its content
hash ($HARDNEG_CACHE/bm25-store), so a cached run reads no text and hashes nothing; any other
mapping (a pooled subset) by every document id and text ($HARDNEG_CACHE/bm25).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import bm25s
import numpy as np

from hardneg.core import reuse
from hardneg.core.io import cache_root
from hardneg.data.beir import Document, require_memory
from hardneg.data.store import CorpusStore
from hardneg.retrieval.types import CorpusRows, Run
from hardneg.settings.retrieval import BM25Settings

INDEX_BYTES_PER_CORPUS_BYTE = 4.0
"""Peak memory of tokenizing and indexing a stored corpus, per byte of its corpus.jsonl: 3.97 in a
linear fit of benchmarks/bm25_scale.py's runs at 100k, 300k and 1M documents (docs/benchmarks.md)."""


def _settings_digest(settings: BM25Settings):
    digest = hashlib.blake2b(digest_size=20)
    digest.update(
        json.dumps(settings.model_dump(exclude={"keep_unmatched", "cache_index"}), sort_keys=True).encode()
    )
    digest.update(bm25s.__version__.encode())
    return digest


def index_key(settings: BM25Settings, doc_ids: list[str], texts: list[str]) -> str:
    digest = _settings_digest(settings)
    for doc_id, text in zip(doc_ids, texts):
        digest.update(f"{doc_id}\0{text}\0".encode())
    return digest.hexdigest()


def store_index_key(settings: BM25Settings, store: CorpusStore) -> str:
    """Settings and the store's content hash (ids, titles and texts in file order all derive from it)."""
    digest = _settings_digest(settings)
    digest.update(store.content_key.encode())
    return digest.hexdigest()


def _stemmer(language: str | None):
    if language is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


class BM25Retriever(CorpusRows):
    def __init__(
        self,
        corpus: Mapping[str, Document],
        settings: BM25Settings = BM25Settings(),
        show_progress: bool = True,
    ):
        self.settings = settings
        self.show_progress = show_progress
        self._stem = _stemmer(settings.stemmer)
        CorpusRows.__init__(self, corpus)
        self.timings: dict[str, float] = {}
        start = time.perf_counter()
        if self._store is not None:  # texts streamed from the store while tokenizing, never all held
            texts = self._store.iter_texts(settings.use_title)
            folder = cache_root() / "bm25-store" / store_index_key(settings, self._store)
        else:
            texts = [doc.full_text if settings.use_title else doc.text for doc in corpus.values()]
            folder = cache_root() / "bm25" / index_key(settings, self.doc_ids, texts)
        folder = folder if settings.cache_index else None
        if folder is not None and (folder / "params.index.json").exists():
            reuse.reused("BM25 index")
            self._index = bm25s.BM25.load(
                str(folder), mmap=True, show_progress=False
            )  # pages in what a search reads
            self.timings["load_index_s"] = time.perf_counter() - start
            return
        if self._store is not None:
            needed = INDEX_BYTES_PER_CORPUS_BYTE * self._store.source_bytes
            require_memory(self._store.source, needed, f"indexing {len(self._store):,} documents for BM25")
        tokens = bm25s.tokenize(
            texts, stopwords=settings.stopwords, stemmer=self._stem, show_progress=show_progress
        )
        self.timings["tokenize_s"] = time.perf_counter() - start
        start = time.perf_counter()
        self._index = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        self._index.index(tokens, show_progress=show_progress)
        self.timings["index_s"] = time.perf_counter() - start
        if folder is not None and len(self.doc_ids):
            self._save(folder)

    def _save(self, folder: Path) -> None:
        """Save beside the final folder, then rename: a reader never sees half an index."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            self._index.save(str(partial), show_progress=False)
            os.replace(partial, folder)
        except OSError:  # another process saved it first, or the cache is not writable: searching goes on
            shutil.rmtree(partial, ignore_errors=True)

    def _tokenize_queries(self, texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            texts,
            stopwords=self.settings.stopwords,
            stemmer=self._stem,
            return_ids=False,
            show_progress=False,
        )

    def score_all(self, query: str) -> np.ndarray:
        """The query's BM25 score for every document, in ``doc_ids`` order."""
        tokens = self._tokenize_queries([query])[0]
        if not tokens:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return np.asarray(self._index.get_scores(tokens), dtype=np.float32)

    def search(self, queries: dict[str, str], k: int) -> Run:
        """Top-k documents per query with their BM25 scores, best first."""
        if not queries or not len(self.doc_ids):
            return {qid: {} for qid in queries}
        query_tokens = self._tokenize_queries(list(queries.values()))
        k = min(k, len(self.doc_ids))
        indices, scores = self._index.retrieve(
            query_tokens, k=k, show_progress=self.show_progress, n_threads=-1
        )
        run: Run = {}
        for qid, row_indices, row_scores in zip(queries, indices, scores):
            # bm25s pads with unmatched documents (score 0, in corpus order); Lucene returns none.
            keep = np.asarray(row_scores) > 0 if not self.settings.keep_unmatched else slice(None)
            run[qid] = dict(
                zip(self.ids_at(row_indices[keep]), np.asarray(row_scores[keep], dtype=float).tolist())
            )
        return run
