"""Stages that read a BEIR dataset: pairs from its judgments, the pooled test set, and evaluation."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hardneg.core.io import write_json
from hardneg.data.beir import BeirDataset
from hardneg.settings.data import PairsSettings, PoolSettings
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.stages.base import InputSpec, StageCall, StageKind, StageResult
from hardneg.stages.estimates import DataSizes, Estimate, encode_rate
from hardneg.stages.resources import Resources, gpus_for


class Pairs(StageKind):
    name, title, folder, config_type = "pairs", "training pairs", "pairs", PairsSettings
    reads_dataset, command = True, "pairs"

    def reads_corpus(self, config: PairsSettings) -> bool:
        return False  # only the positives it writes into the pairs

    def estimate(self, config: PairsSettings, inputs, data: DataSizes) -> Estimate:
        count = data.pairs(config.dataset, config.split, config.one_per_query)
        if count is not None and config.max_pairs is not None:
            count = min(count, config.max_pairs)
        documents = data.documents(config.dataset)
        return Estimate(
            work=f"{count if count is not None else '?'} pairs",
            seconds=1.0 + (documents or 0) / 50_000,
            pairs=count,
            documents=documents,
            text_chars=data.text_chars(config.dataset),
        )

    def run(self, call: StageCall) -> StageResult:
        from hardneg.data.pairs import make_pairs

        made = make_pairs(call.config, call.output)
        return StageResult(made.counts, made.timings, {"dataset": made.dataset_path})


class Pool(StageKind):
    name, title, folder, config_type, suffix = "pool", "reduced test set", "pools", PoolSettings, ".json"
    reads_dataset = True

    def model(self, config: PoolSettings) -> str | None:
        return "bm25" if config.pool_depth else None

    def estimate(self, config: PoolSettings, inputs, data: DataSizes) -> Estimate:
        documents = data.documents(config.dataset)
        pooled = pool_size(config, data) if documents is not None else None
        return Estimate(
            work="BM25 pool" if config.pool_depth else "query sample",
            seconds=5.0 + (documents or 0) / 2000,
            documents=min(pooled, documents) if pooled is not None else documents,
        )

    def run(self, call: StageCall) -> dict[str, Any]:
        config: PoolSettings = call.config
        dataset = call.context.dataset(config.dataset_name, config.data_root)
        pool = make_pool(dataset, config.split, config.max_queries, config.pool_depth, config.seed)
        write_json(call.output, pool)
        return {"queries": len(pool["queries"]), "documents": len(pool["documents"] or dataset.corpus)}


class Evaluate(StageKind):
    name, title, folder, config_type, suffix = (
        "evaluate",
        "evaluation",
        "evaluations",
        EvaluateSettings,
        ".json",
    )
    inputs = {"model": InputSpec(optional=True), "pool": InputSpec(optional=True)}
    reads_dataset, command = True, "evaluate"

    def model(self, config: EvaluateSettings) -> str | None:
        return config.retriever + (f" + {config.reranker}" if config.reranker else "")

    def resources(self, config: EvaluateSettings, estimate: Estimate) -> Resources:
        gpus = gpus_for(config.dense.device, config.dense.devices) if config.retriever != "bm25" else 0.0
        if config.reranker:  # re-ranking follows retrieval in the same task: the larger of the two
            gpus = max(gpus, gpus_for(None, config.rerank_devices))
        return super().resources(config, estimate).model_copy(update={"gpus": gpus})

    def estimate(self, config: EvaluateSettings, inputs, data: DataSizes) -> Estimate:
        documents = data.documents(config.dataset)
        if documents is None:
            return Estimate(work="? documents")
        pool = (inputs.get("pool") or [None])[0]
        if pool is not None and pool.documents is not None:  # the pool's estimate is its size
            documents = min(documents, pool.documents)
        seconds = (
            documents / 2000
            if config.retriever == "bm25"
            else documents / encode_rate(config.dense.max_seq_length)
        )
        return Estimate(work=f"~{documents} documents", seconds=seconds, documents=documents)

    def run(self, call: StageCall) -> dict[str, Any]:
        from hardneg.evaluation.evaluate import evaluate

        config: EvaluateSettings = call.config
        dataset = call.context.dataset(config.dataset_name, config.data_root)
        pool = call.input("pool")
        if pool is not None:
            dataset = pooled_dataset(dataset, config.split, json.loads(Path(pool).read_text()))
        result = evaluate(config, dataset, call.show_progress)
        write_json(call.output, result.model_dump(mode="json"))
        index = {"index": result.settings["index"]} if "index" in result.settings else {}
        recorded = ("ignore_identical_ids", "unretrievable_judgments")  # how the numbers were counted
        quirks = {name: result.settings[name] for name in recorded if name in result.settings}
        return {
            "queries": len(result.per_query),
            "documents": len(dataset.corpus),
            **result.metrics,
            **index,
            **quirks,
        }


def make_pool(
    dataset: BeirDataset, split: str, max_queries: int | None, depth: int | None, seed: int
) -> dict:
    """The test queries to keep and, with ``depth``, the documents to search: every judged one plus
    BM25's top ``depth`` per query (the distractors a real corpus would offer first)."""
    qrels = dataset.split_qrels(split)
    query_ids = list(qrels)
    if max_queries is not None and len(query_ids) > max_queries:
        query_ids = sorted(random.Random(seed).sample(query_ids, max_queries))
    documents = None
    if depth is not None:
        from hardneg.retrieval import BM25Retriever
        from hardneg.settings.retrieval import BM25Settings

        bm25 = BM25Retriever(dataset.corpus, BM25Settings(), show_progress=False)
        run = bm25.search({q: dataset.queries[q] for q in query_ids}, depth)
        keep = {doc for q in query_ids for doc in qrels[q]} | {doc for docs in run.values() for doc in docs}
        documents = sorted(doc for doc in keep if doc in dataset.corpus)
    return {"split": split, "queries": query_ids, "documents": documents}


def pool_size(config: PoolSettings, data: DataSizes) -> int | None:
    """How many documents a pool holds, roughly: queries x (depth + judged per query)."""
    qrels = data.qrels(config.dataset, config.split)
    if qrels is None or not config.pool_depth:
        return None
    queries = min(config.max_queries or len(qrels), len(qrels))
    judged = sum(qrels.values()) / max(1, len(qrels))
    return int(queries * (config.pool_depth + judged))


def pooled_dataset(dataset: BeirDataset, split: str, pool: dict) -> BeirDataset:
    """The dataset restricted to the pool's queries (and documents, when pooled)."""
    keep = set(pool["queries"])
    qrels = {q: docs for q, docs in dataset.split_qrels(split).items() if q in keep}
    corpus = (
        dataset.corpus if pool["documents"] is None else {d: dataset.corpus[d] for d in pool["documents"]}
    )
    queries = {q: dataset.queries[q] for q in qrels}
    return BeirDataset(dataset.path, corpus, queries, {split: qrels})
