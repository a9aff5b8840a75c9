"""Evaluate a retriever (BM25 or any bi-encoder) on one split of a BEIR dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hardneg.core.io import write_json
from hardneg.core.models import load_cross_encoder, model_fingerprint, resolve_model
from hardneg.data.beir import BeirDataset, Qrels
from hardneg.data.registry import load_dataset
from hardneg.evaluation.metrics import evaluate_run
from hardneg.retrieval import BM25Retriever, DenseRetriever, Retriever, Run
from hardneg.retrieval.scorers import CrossEncoderScorer
from hardneg.retrieval.types import ranked
from hardneg.settings.evaluation import EvaluateSettings, ignores_identical_ids


class EvaluationResult(BaseModel):
    dataset: str
    split: str
    retriever: str
    reranker: str | None = None
    settings: dict[str, Any]
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    timings: dict[str, float] = {}

    def save(self, path: str | Path) -> None:
        write_json(path, self.model_dump())

    @property
    def system(self) -> str:
        """The retriever, and the re-ranker when there is one, as one label for tables."""
        return f"{self.retriever} >> {self.reranker}" if self.reranker else self.retriever


def build_retriever(dataset: BeirDataset, config: EvaluateSettings, show_progress: bool = True) -> Retriever:
    if config.retriever == "bm25":
        return BM25Retriever(dataset.corpus, config.bm25, show_progress=show_progress)
    return DenseRetriever(dataset.corpus, config.retriever, config.dense, show_progress=show_progress)


def retriever_settings(config: EvaluateSettings) -> dict[str, Any]:
    """What a reader needs to reproduce the numbers."""
    if config.retriever == "bm25":
        return {"bm25": config.bm25.model_dump()}
    return {
        "model": config.retriever,
        "model_path": resolve_model(config.retriever),
        "model_sha256": model_fingerprint(config.retriever),
        "dense": config.dense.model_dump(),
    }


def top_k_without_self(run: Run, k: int) -> Run:
    """Drop a document whose id is the query's own (BEIR's rule), then keep the best k."""
    return {qid: dict(ranked({d: s for d, s in docs.items() if d != qid})[:k]) for qid, docs in run.items()}


def unretrievable_judgments(qrels: Qrels, corpus) -> int:
    """Judgments naming a document the corpus does not hold: relevant, never retrieved."""
    return sum(doc_id not in corpus for docs in qrels.values() for doc_id in docs)


def rerank(run: Run, queries: dict[str, str], scorer, depth: int) -> Run:
    """Re-score each query's top ``depth`` with ``scorer``; deeper documents keep their order below."""
    heads = {qid: ranked(docs)[:depth] for qid, docs in run.items()}
    items = [(qid, queries[qid], doc_id) for qid, head in heads.items() for doc_id, _ in head]
    scores = iter(scorer.score(items).tolist())
    reranked: Run = {}
    for qid, docs in run.items():
        new = {doc_id: next(scores) for doc_id, _ in heads[qid]}
        floor = min(new.values(), default=0.0)
        for position, (doc_id, _) in enumerate(ranked(docs)[depth:], start=1):
            new[doc_id] = floor - position
        reranked[qid] = new
    return reranked


def evaluate(
    config: EvaluateSettings, dataset: BeirDataset | None = None, show_progress: bool = True
) -> EvaluationResult:
    timings: dict[str, float] = {}
    if dataset is None:
        start = time.perf_counter()
        dataset = load_dataset(config.dataset_name, config.data_root)
        timings["load_s"] = time.perf_counter() - start
    queries = dataset.split_queries(config.split)

    start = time.perf_counter()
    retriever = build_retriever(dataset, config, show_progress)
    timings["index_s"] = time.perf_counter() - start

    ignore_identical = ignores_identical_ids(config.ignore_identical_ids, dataset.name)
    start = time.perf_counter()
    if ignore_identical:  # one more, so that dropping the query's own document leaves top_k
        run = top_k_without_self(retriever.search(queries, config.top_k + 1), config.top_k)
    else:
        run = retriever.search(queries, config.top_k)
    timings["search_s"] = time.perf_counter() - start

    if config.reranker:
        start = time.perf_counter()
        model = load_cross_encoder(config.reranker)
        scorer = CrossEncoderScorer(
            model, dataset.corpus, config.rerank_batch_size, show_progress, config.rerank_devices
        )
        run = rerank(run, queries, scorer, config.rerank_depth)
        timings["rerank_s"] = time.perf_counter() - start

    qrels = dataset.split_qrels(config.split)
    means, per_query = evaluate_run(qrels, run, config.metrics, ignore_identical_ids=ignore_identical)
    settings = {"top_k": config.top_k, "ignore_identical_ids": ignore_identical, **retriever_settings(config)}
    missing = unretrievable_judgments(qrels, dataset.corpus)
    if missing:  # they stay in the qrels (BEIR, pytrec_eval): they lower recall and nDCG
        settings["unretrievable_judgments"] = missing
    if getattr(retriever, "index_info", None):
        settings["index"] = retriever.index_info  # an approximate index's recall against exact search
    if config.reranker:
        settings["reranker"] = {
            "model": config.reranker,
            "model_sha256": model_fingerprint(config.reranker),
            "depth": config.rerank_depth,
        }
    return EvaluationResult(
        dataset=dataset.name,
        split=config.split,
        retriever=config.retriever,
        reranker=config.reranker,
        settings=settings,
        metrics=means,
        per_query=per_query,
        timings=timings,
    )
