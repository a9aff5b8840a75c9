"""The `mine` stage: corpus negatives for every (query, positive) pair, by BM25, a bi-encoder, or a
cross-encoder re-ranking BM25's candidates; written as triplets with a manifest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.core.manifest import Stopwatch
from hardneg.core.models import load_cross_encoder
from hardneg.data.beir import BeirDataset
from hardneg.data.pairs import load_pairs_for
from hardneg.data.records import Negative, Pair, Triplet, iter_pairs, read_pairs, write_records
from hardneg.data.registry import load_dataset
from hardneg.mining.pool import pool_dataset
from hardneg.mining.select import Candidate, PassageKeys, apply_filters, eligible, sample
from hardneg.retrieval import BM25Retriever, DenseRetriever, Run
from hardneg.retrieval.scorers import BM25Scorer, CrossEncoderScorer, DenseScorer, Item, Scorer
from hardneg.retrieval.types import ranked
from hardneg.settings.mining import MineSettings


@dataclass
class MiningResult:
    triplets: list[Triplet]
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    dataset_path: Path | None = None


def source_name(config: MineSettings) -> str:
    """How negatives are labelled: the method, the model that made them, and 'pool-' when they are
    other pairs' positives rather than corpus documents."""
    prefix = "pool-" if config.corpus == "pool" else ""
    if config.method == "bm25":
        return f"{prefix}bm25"
    model = config.ranker
    if (
        Path(model).is_absolute() or Path(model).exists()
    ):  # a local model: its folder's name, not where it lies
        model = Path(model).name
    return f"{prefix}{'dense' if config.method == 'dense' else 'cross-encoder'}:{model}"


def _dense_settings(config: MineSettings):
    """The mining devices, when given, are the bi-encoder's too."""
    if not config.devices:
        return config.dense
    return type(config.dense).model_validate({**config.dense.model_dump(), "devices": config.devices})


def _ranked(run: Run) -> dict[str, list[Candidate]]:
    return {
        query_id: [
            Candidate(doc_id, score, rank) for rank, (doc_id, score) in enumerate(ranked(docs), start=1)
        ]
        for query_id, docs in run.items()
    }


def candidates_and_scorer(
    dataset: BeirDataset, queries: dict[str, str], config: MineSettings, show_progress: bool, clock: Stopwatch
) -> tuple[dict[str, list[Candidate]], Scorer]:
    """Each query's ranked candidates, and the scorer that produced their scores."""
    if config.method == "dense":
        dense = DenseRetriever(dataset.corpus, config.ranker, _dense_settings(config), show_progress)
        return _ranked(dense.search(queries, config.depth)), DenseScorer(dense)
    bm25 = BM25Retriever(dataset.corpus, config.bm25, show_progress=show_progress)
    clock.laps.update({f"bm25_{name}": round(seconds, 3) for name, seconds in bm25.timings.items()})
    if config.method == "bm25":
        return _ranked(bm25.search(queries, config.depth)), BM25Scorer(bm25)
    model = load_cross_encoder(config.ranker)
    scorer = CrossEncoderScorer(model, dataset.corpus, config.batch_size, show_progress, config.devices)
    first_stage = bm25.search(queries, config.rerank_depth)
    items = [
        (query_id, queries[query_id], doc_id) for query_id, docs in first_stage.items() for doc_id in docs
    ]
    clock.lap("first_stage")
    reranked: Run = {query_id: {} for query_id in queries}
    for (query_id, _, doc_id), score in zip(items, scorer.score(items)):
        reranked[query_id][doc_id] = float(score)
    clock.lap("cross_encoder")
    return _ranked(reranked), scorer


def external_scorer(spec: str, dataset: BeirDataset, needed: set[str], config: MineSettings) -> Scorer:
    """A 'dense:MODEL' or 'cross-encoder:MODEL' scorer for the filters, over the documents needed."""
    kind, _, model = spec.partition(":")
    if kind == "cross-encoder":
        return CrossEncoderScorer(
            load_cross_encoder(model), dataset.corpus, config.batch_size, devices=config.devices
        )
    subset = {doc_id: dataset.corpus[doc_id] for doc_id in sorted(needed)}
    return DenseScorer(DenseRetriever(subset, model, _dense_settings(config)))


def mine(
    pairs: list[Pair], dataset: BeirDataset, config: MineSettings, show_progress: bool = True
) -> MiningResult:
    clock = Stopwatch()
    counts: Counter = Counter(pairs=len(pairs))
    queries = {pair.query_id: pair.query for pair in pairs}
    ranked, own_scorer = candidates_and_scorer(dataset, queries, config, show_progress, clock)
    counts["candidates"] = sum(len(c) for c in ranked.values())
    index = getattr(getattr(own_scorer, "retriever", None), "index_info", None)
    clock.lap("candidates")

    keys = PassageKeys(dataset.corpus)
    judged_positives: dict[str, set[str]] = {}
    pools = []
    for pair in pairs:
        if pair.query_id not in judged_positives:
            judged = dataset.judged_documents(pair.query_id)
            judged_positives[pair.query_id] = {doc_id for doc_id, grade in judged.items() if grade > 0}
        excluded = judged_positives[pair.query_id] | {pair.positive_id}
        pools.append(eligible(ranked[pair.query_id], excluded, pair.positive, keys, config, counts))

    filters = config.filters
    if filters.active:
        needed = {pair.positive_id for pair in pairs} | {c.doc_id for pool in pools for c in pool}
        scorer = external_scorer(filters.scorer, dataset, needed, config) if filters.scorer else own_scorer
        positive_scores = scorer.score([(p.query_id, p.query, p.positive_id) for p in pairs])
        if filters.scorer:
            items: list[Item] = [
                (p.query_id, p.query, c.doc_id) for p, pool in zip(pairs, pools) for c in pool
            ]
            flat = iter(scorer.score(items).tolist())
            filter_scores = [[next(flat) for _ in pool] for pool in pools]
        else:
            filter_scores = [[c.score for c in pool] for pool in pools]
        pools = [
            apply_filters(pool, scores, float(positive), filters, counts)
            for pool, scores, positive in zip(pools, filter_scores, positive_scores)
        ]
        clock.lap("filters")

    source = source_name(config)
    triplets = []
    for pair, pool in zip(pairs, pools):
        chosen = sample(pool, config, pair.query_id, pair.positive_id)
        if len(chosen) < config.num_negatives:
            counts["shortfalls"] += 1
        negatives = [
            Negative(
                text=dataset.corpus[c.doc_id].full_text,
                source=source,
                doc_id=c.doc_id,
                score=c.score,
                rank=c.rank,
            )
            for c in chosen
        ]
        counts["negatives"] += len(negatives)
        triplets.append(Triplet(**pair.model_dump(), negatives=negatives))
    clock.lap("select")
    if config.score_with is not None:  # a teacher's scores for margin-MSE, on the chosen texts
        from hardneg.combining.filtering import write_scores

        backend = config.dense.backend
        triplets = write_scores(
            triplets, config.score_with, counts, config.batch_size, show_progress, backend=backend
        )
        clock.lap("score")
    return MiningResult(triplets, dict(counts) | ({"index": index} if index else {}), clock.laps)


def mining_input(pairs_path: str | Path, config: MineSettings) -> tuple[list[Pair], BeirDataset]:
    """The pairs and what they are mined against: the dataset (the pairs checked against it), or
    the pool of their own positives (only the dataset's qrels read, when it is named)."""
    if config.corpus == "pool":
        pairs = read_pairs(pairs_path)
        more = None if config.pool_pairs is None else (iter_pairs(config.pool_pairs), config.pool_pairs)
        return pairs, pool_dataset(pairs, config.dataset, config.data_root, pairs_path, more)
    dataset = load_dataset(config.dataset_name, config.data_root)
    return load_pairs_for(pairs_path, dataset), dataset


def mine_file(
    pairs_path: str | Path, config: MineSettings, output: str | Path, show_progress: bool = True
) -> MiningResult:
    """Read the pairs, mine, write the triplets (the ``mine`` stage adds the manifest)."""
    pairs, dataset = mining_input(pairs_path, config)
    result = mine(pairs, dataset, config, show_progress)
    write_records(output, result.triplets)
    if config.corpus == "pool":
        result.counts["pool_documents"] = len(dataset.corpus)
    result.dataset_path = Path(dataset.path) if config.dataset is not None else None
    return result
