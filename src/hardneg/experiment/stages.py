"""What each kind of stage does: a thin call into the pipeline function that the stand-alone
command uses too, so a cell of the grid is exactly what the CLI would have made."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hardneg.data.beir import BeirDataset
from hardneg.data.registry import load_dataset
from hardneg.experiment.plan import Stage, answer_store
from hardneg.io import write_json


class StageActions:
    """One instance per run: datasets load once and are shared by the stages that read them."""

    def __init__(self, data_root: str | None):
        self.data_root = data_root
        self._datasets: dict[str, BeirDataset] = {}
        self._scorers: dict[str, object] = {}

    def dataset(self, name: str) -> BeirDataset:
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, self.data_root)
        return self._datasets[name]

    def pairs(self, stage: Stage, show_progress: bool) -> None:
        from hardneg.pairs import make_pairs

        make_pairs(stage.info["config"], stage.output)

    def cross_encoder(self, stage: Stage, show_progress: bool) -> None:
        from hardneg.training.cross_encoder import train_cross_encoder

        train_cross_encoder(stage.deps[0].output, stage.info["config"], stage.output, show_progress)

    def negatives(self, stage: Stage, show_progress: bool) -> None:
        method = stage.info["method"]
        config = stage.info["config"]
        if method == "mine":
            from hardneg.mining.mine import mine_file

            mine_file(stage.deps[0].output, config, stage.output, show_progress)
        elif method == "generate":
            from hardneg.generation.generate import generate_file

            generate_file(
                stage.deps[0].output, config, stage.output, show_progress, store=answer_store(stage)
            )
        else:
            from hardneg.combine import combine_files
            from hardneg.config import CombineConfig

            settings = CombineConfig(**config.model_dump(exclude={"inputs", "preset"}))
            combine_files(
                [d.output for d in stage.deps], settings, stage.output, config.preset, show_progress
            )

    def model(self, stage: Stage, show_progress: bool) -> None:
        from hardneg.training.bi_encoder import train_bi_encoder

        train_bi_encoder(stage.deps[0].output, stage.info["config"], stage.output, show_progress)

    def pool(self, stage: Stage, show_progress: bool) -> None:
        settings = stage.info["settings"]
        dataset = self.dataset(settings["dataset"])
        write_json(
            stage.output,
            make_pool(
                dataset, settings["split"], settings["max_queries"], settings["pool_depth"], settings["seed"]
            ),
        )

    def evaluation(self, stage: Stage, show_progress: bool) -> None:
        from hardneg.evaluation.evaluate import evaluate

        config = stage.info["config"]
        dataset = self.dataset(config.dataset)
        pool = stage.info.get("pool")
        if pool is not None:
            dataset = pooled_dataset(dataset, config.split, json.loads(Path(pool.output).read_text()))
        result = evaluate(config, dataset, show_progress)
        write_json(stage.output, result.model_dump(mode="json"))

    def audit(self, stage: Stage, show_progress: bool) -> None:
        from hardneg.audit import AuditSettings, audit_file
        from hardneg.filtering import load_text_scorer

        settings = AuditSettings(**stage.info["settings"])
        if settings.scorer_spec not in self._scorers:  # one model load for every audit of the run
            self._scorers[settings.scorer_spec] = load_text_scorer(
                settings.scorer_spec, settings.batch_size, show_progress
            )
        result = audit_file(
            stage.info["triplets"], settings, show_progress, scorer=self._scorers[settings.scorer_spec]
        )
        write_json(stage.output, result.model_dump(mode="json"))


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
        from hardneg.config import BM25Settings
        from hardneg.retrieval import BM25Retriever

        bm25 = BM25Retriever(dataset.corpus, BM25Settings(), show_progress=False)
        run = bm25.search({q: dataset.queries[q] for q in query_ids}, depth)
        keep = {doc for q in query_ids for doc in qrels[q]} | {doc for docs in run.values() for doc in docs}
        documents = sorted(doc for doc in keep if doc in dataset.corpus)
    return {"split": split, "queries": query_ids, "documents": documents}


def pooled_dataset(dataset: BeirDataset, split: str, pool: dict) -> BeirDataset:
    """The dataset restricted to the pool's queries (and documents, when pooled)."""
    keep = set(pool["queries"])
    qrels = {q: docs for q, docs in dataset.split_qrels(split).items() if q in keep}
    corpus = (
        dataset.corpus if pool["documents"] is None else {d: dataset.corpus[d] for d in pool["documents"]}
    )
    queries = {q: dataset.queries[q] for q in qrels}
    return BeirDataset(dataset.path, corpus, queries, {split: qrels})
