from __future__ import annotations

import math

import pytest

from hardneg.core.errors import HardnegError
from hardneg.evaluation.metrics import evaluate_run, parse_metric

METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


def test_perfect_run_scores_one():
    qrels = {"q1": {"a": 1, "b": 1}}
    means, _ = evaluate_run(qrels, {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}}, METRICS)
    assert means == pytest.approx({m: 1.0 for m in METRICS})


def test_judged_query_without_results_counts_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    means, per_query = evaluate_run(qrels, {"q1": {"a": 1.0}}, METRICS)
    assert per_query["q2"] == {m: 0.0 for m in METRICS}
    assert means["ndcg@10"] == pytest.approx(0.5)
    means, per_query = evaluate_run(qrels, {}, METRICS)
    assert means["ndcg@10"] == 0.0 and set(per_query) == {"q1", "q2"}


def test_unjudged_queries_in_the_run_are_ignored():
    means, per_query = evaluate_run({"q1": {"a": 1}}, {"q1": {"a": 1.0}, "qx": {"a": 1.0}}, METRICS)
    assert set(per_query) == {"q1"} and means["ndcg@10"] == 1.0


def test_document_with_the_query_id_is_skipped():
    qrels = {"q1": {"a": 1}}
    run = {"q1": {"q1": 9.0, "a": 1.0}}
    assert evaluate_run(qrels, run, ["mrr@10"])[0]["mrr@10"] == 1.0
    assert evaluate_run(qrels, run, ["mrr@10"], ignore_identical_ids=False)[0]["mrr@10"] == 0.5


def test_mrr_is_cut_at_k():
    qrels = {"q1": {"rel": 1}}
    run = {"q1": {**{f"d{i:02d}": 100.0 - i for i in range(10)}, "rel": 50.0}}  # relevant at rank 11
    means, _ = evaluate_run(qrels, run, ["mrr@10", "mrr@100"])
    assert means["mrr@10"] == 0.0
    assert means["mrr@100"] == pytest.approx(1 / 11)


def test_graded_ndcg_matches_hand_computation():
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}}
    run = {"q1": {"b": 3.0, "c": 2.0, "a": 1.0}}
    dcg = (2**1 - 1) / math.log2(2) + 0 + (2**2 - 1) / math.log2(4)
    ideal = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    # trec_eval's nDCG uses gain = relevance (not 2^rel - 1)
    dcg_linear = 1 / math.log2(2) + 2 / math.log2(4)
    ideal_linear = 2 / math.log2(2) + 1 / math.log2(3)
    value = evaluate_run(qrels, run, ["ndcg@10"])[0]["ndcg@10"]
    assert value == pytest.approx(dcg_linear / ideal_linear)
    assert value != pytest.approx(dcg / ideal)


def test_recall_and_map_use_relevance_at_least_one():
    qrels = {"q1": {"a": 1, "b": 0, "c": 2}}
    run = {"q1": {"b": 3.0, "a": 2.0}}
    means, _ = evaluate_run(qrels, run, ["recall@100", "map@100", "precision@2"])
    assert means["recall@100"] == pytest.approx(0.5)
    assert means["map@100"] == pytest.approx((1 / 2) / 2)
    assert means["precision@2"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["ndcg", "ndcg@0", "f1@10", "recall@x"])
def test_unknown_metric_is_refused(name):
    with pytest.raises(HardnegError, match="unknown metric"):
        parse_metric(name)
