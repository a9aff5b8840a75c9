"""IR metrics through pytrec_eval, with the two rules BEIR-style evaluation needs on top:
a judged query that retrieved nothing scores 0 (pytrec_eval would silently drop it), and, with
``ignore_identical_ids``, a document whose id equals the query id is skipped (ArguAna and Quora list
queries in the corpus; ``EvaluateSettings.ignore_identical_ids`` decides per dataset). A judged
document the corpus lacks stays in the qrels: relevant and never retrieved, as in BEIR."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytrec_eval

from hardneg.core.errors import HardnegError
from hardneg.data.beir import Qrels
from hardneg.retrieval.types import Run, ranked

_PYTREC = {
    "ndcg": ("ndcg_cut.{k}", "ndcg_cut_{k}"),
    "recall": ("recall.{k}", "recall_{k}"),
    "map": ("map_cut.{k}", "map_cut_{k}"),
    "precision": ("P.{k}", "P_{k}"),
    "mrr": ("recip_rank", "recip_rank"),  # cut at k by truncating the run first
}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    k: int

    @property
    def measure(self) -> str:
        return _PYTREC[self.kind][0].format(k=self.k)

    @property
    def result_key(self) -> str:
        return _PYTREC[self.kind][1].format(k=self.k)


def parse_metric(name: str) -> Metric:
    match = re.fullmatch(r"(ndcg|recall|map|precision|mrr)@(\d+)", name.strip().lower())
    if not match or int(match.group(2)) < 1:
        raise HardnegError(f"unknown metric {name!r}; use ndcg@K, recall@K, map@K, precision@K or mrr@K")
    return Metric(name=name.strip().lower(), kind=match.group(1), k=int(match.group(2)))


def _truncate(run: Run, k: int) -> Run:
    return {qid: dict(ranked(docs)[:k]) for qid, docs in run.items()}


def evaluate_run(
    qrels: Qrels,
    run: Run,
    metrics: tuple[str, ...] | list[str],
    ignore_identical_ids: bool = True,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values over every judged query in ``qrels``."""
    parsed = [parse_metric(name) for name in metrics]
    cleaned: Run = {}
    for qid in qrels:
        docs = run.get(qid, {})
        if ignore_identical_ids:
            docs = {doc_id: score for doc_id, score in docs.items() if doc_id != qid}
        if docs:
            cleaned[qid] = {doc_id: float(score) for doc_id, score in docs.items()}
    per_query: dict[str, dict[str, float]] = {qid: {m.name: 0.0 for m in parsed} for qid in qrels}
    plain = [m for m in parsed if m.kind != "mrr"]
    if plain and cleaned:
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {m.measure for m in plain})
        for qid, values in evaluator.evaluate(cleaned).items():
            for metric in plain:
                per_query[qid][metric.name] = float(values[metric.result_key])
    for metric in (m for m in parsed if m.kind == "mrr"):
        if not cleaned:
            continue
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
        for qid, values in evaluator.evaluate(_truncate(cleaned, metric.k)).items():
            per_query[qid][metric.name] = float(values["recip_rank"])
    count = len(per_query) or 1
    means = {m.name: sum(values[m.name] for values in per_query.values()) / count for m in parsed}
    return means, per_query
