"""Rough costs for the dry run, from rates measured on this project's 2-core CPU machine with
all-MiniLM-L6-v2 and SmolLM2-135M (docs/results.md): enough to tell minutes from hours, no more.
A bigger model, a GPU or a remote LLM server changes them; a remote server's cost is not guessed."""

from __future__ import annotations

from typing import Any

from hardneg.errors import HardnegError
from hardneg.experiment.plan import Stage

ENCODE_DOCS_PER_S_AT_256 = 9.3
"""Encoding SciFact's corpus at 256 tokens took 557 s (../shared/data/README.md)."""
TRAIN_S_PER_STEP = 18.0
"""Bi-encoder step at batch 16, 7 texts per example, 128 tokens (934 s / 52 steps, docs/training.md)."""
CE_PAIRS_PER_S_AT_128 = 26.0
"""Cross-encoder re-ranking (docs/mining.md)."""
CE_TRAIN_S_PER_EXAMPLE = 1.3
"""Cross-encoder MNRL training, per (query, positive, 4 negatives) row at 128 tokens (2,362 s / 1,838)."""
EMBEDDED_LLM_S_PER_PAIR = 10.0
"""SmolLM2-135M served in-process, 3 negatives, 256 tokens, 4 slots (about 10 s per pair)."""


class Estimates:
    def __init__(self, actions: Any):
        self.actions = actions

    def _dataset(self, name: str):
        """The dataset when it is already local (a plan never downloads)."""
        from hardneg.data.registry import resolve_dataset

        try:
            resolve_dataset(name, self.actions.data_root, download=False)
            return self.actions.dataset(name)
        except HardnegError:
            return None

    def fill(self, stage: Stage) -> None:
        getattr(self, "_" + stage.kind.replace("-", "_"))(stage)

    def _pairs(self, stage: Stage) -> None:
        config = stage.info["config"]
        dataset = self._dataset(config.dataset)
        count = None
        if dataset is not None and config.split in dataset.qrels:
            qrels = dataset.qrels[config.split]
            count = len(qrels) if config.one_per_query else sum(len(docs) for docs in qrels.values())
            if config.max_pairs is not None:
                count = min(count, config.max_pairs)
        stage.info["pairs"] = count
        stage.info["corpus"] = len(dataset.corpus) if dataset is not None else None
        stage.work = f"{count if count is not None else '?'} pairs"
        stage.seconds = 1.0

    def _cross_encoder(self, stage: Stage) -> None:
        pairs = stage.deps[0].info.get("pairs")
        config = stage.info["config"]
        stage.info["pairs"] = pairs
        if pairs is not None:
            stage.work = f"{pairs} pairs x {config.epochs:g} epochs"
            stage.seconds = pairs * config.epochs * CE_TRAIN_S_PER_EXAMPLE * (config.max_length / 128)

    def _negatives(self, stage: Stage) -> None:
        first = stage.deps[0]
        pairs = first.info.get("pairs")
        stage.info["pairs"] = pairs
        method = stage.info["method"]
        config = stage.info["config"]
        if method == "combine":
            stage.work, stage.seconds = f"{len(stage.deps)} inputs", 2.0
            if config.filters.active:
                stage.work += ", filtered"
                stage.seconds = (pairs or 0) * 0.5
            return
        if pairs is None:
            stage.work = "? pairs"
            return
        if method == "generate":
            stage.work = f"{pairs} pairs, {config.model}"
            stage.seconds = pairs * EMBEDDED_LLM_S_PER_PAIR if config.base_url is None else None
            return
        corpus = first.info.get("corpus") or 0
        stage.work = f"{pairs} pairs, {config.method}"
        if config.method == "bm25":
            stage.seconds = 5 + corpus / 2000
        elif config.method == "dense":
            stage.seconds = corpus / _encode_rate(config.dense.max_seq_length)
        else:
            stage.seconds = 5 + corpus / 2000 + pairs * config.rerank_depth / CE_PAIRS_PER_S_AT_128

    def _model(self, stage: Stage) -> None:
        pairs = stage.deps[0].info.get("pairs")
        config = stage.info["config"]
        if pairs is None:
            stage.work = "? steps"
            return
        steps = max(1, int(pairs * (1 - config.validation_fraction) * config.epochs) // config.batch_size)
        if config.max_steps is not None:
            steps = min(steps, config.max_steps)
        texts = config.num_negatives + 2
        length = config.max_seq_length or 256
        stage.work = f"<= {steps} steps"
        stage.seconds = steps * TRAIN_S_PER_STEP * (config.batch_size / 16) * (texts / 7) * (length / 128)

    def _pool(self, stage: Stage) -> None:
        stage.work, stage.seconds = "BM25 pool", 10.0

    def _evaluation(self, stage: Stage) -> None:
        config = stage.info["config"]
        dataset = self._dataset(config.dataset)
        if dataset is None:
            stage.work = "? documents"
            return
        documents = len(dataset.corpus)
        pool = stage.info.get("pool")
        if pool is not None and pool.info["settings"]["pool_depth"]:
            qrels = dataset.split_qrels(config.split)
            queries = min(pool.info["settings"]["max_queries"] or len(qrels), len(qrels))
            judged = sum(len(docs) for docs in qrels.values()) / max(1, len(qrels))
            documents = min(documents, int(queries * (pool.info["settings"]["pool_depth"] + judged)))
        stage.work = f"~{documents} documents"
        stage.seconds = documents / _encode_rate(config.dense.max_seq_length)

    def _audit(self, stage: Stage) -> None:
        stage.work, stage.seconds = "score negatives", 30.0


def _encode_rate(max_seq_length: int | None) -> float:
    return ENCODE_DOCS_PER_S_AT_256 * 256 / (max_seq_length or 256)
