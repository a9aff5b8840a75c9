from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import write_mining_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.data.beir import load_beir
from hardneg.data.records import Negative, Triplet
from hardneg.evaluation import evaluate
from hardneg.evaluation.evaluate import rerank
from hardneg.training import latest_checkpoint
from hardneg.training.cross_encoder import (
    add_random_negatives,
    labelled_examples,
    tuple_examples,
)

runner = CliRunner()


class ByLength:
    """A stand-in scorer: longer document id, higher score."""

    def score(self, items):
        return np.array([float(len(doc_id)) for _, _, doc_id in items], dtype=np.float32)


def test_rerank_rescores_the_head_and_keeps_the_tail_below_in_order():
    run = {"q": {"a": 5.0, "bbb": 4.0, "cc": 3.0, "dddd": 2.0, "e": 1.0}}
    reranked = rerank(run, {"q": "query"}, ByLength(), depth=3)["q"]
    order = sorted(reranked, key=reranked.get, reverse=True)
    assert order == ["bbb", "cc", "a", "dddd", "e"]  # head re-scored; the tail keeps BM25 order below


def test_labelled_examples_one_positive_and_each_negative():
    triplet = Triplet(
        query_id="q", query="Q", positive_id="p", positive="P",
        negatives=[Negative(text="N1", source="bm25"), Negative(text="N2", source="bm25")],
    )  # fmt: skip
    assert labelled_examples([triplet]) == {
        "query": ["Q", "Q", "Q"], "passage": ["P", "N1", "N2"], "label": [1.0, 0.0, 0.0],
    }  # fmt: skip


def _triplet(query_id: str, negatives: list[str]) -> Triplet:
    return Triplet(
        query_id=query_id, query=f"Q{query_id}", positive_id="p", positive="P",
        negatives=[Negative(text=f"N-{d}", source="bm25", doc_id=d) for d in negatives],
    )  # fmt: skip


def test_tuple_examples_one_row_per_triplet_and_no_ragged_rows():
    columns = tuple_examples([_triplet("1", ["a", "b"]), _triplet("2", ["c"]), _triplet("3", ["d", "e"])])
    assert columns == {
        "query": ["Q1", "Q3"], "positive": ["P", "P"], "negative_1": ["N-a", "N-d"], "negative_2": ["N-b", "N-e"],
    }  # fmt: skip


def test_random_negatives_skip_judged_positives_and_existing_negatives(tmp_path):
    dataset = load_beir(write_mining_beir(tmp_path / "mining"))
    base = [_triplet("q-solar-0", ["s3"])]  # judged: s0 and s2 positive (train, test), s1 judged 0
    everything = add_random_negatives(base, dataset, 33, seed=1)[0]  # 36 documents, 3 not allowed
    added = [n for n in everything.negatives if n.source == "random"]
    assert everything.negatives[0].doc_id == "s3" and len(added) == 33
    assert {n.doc_id for n in added} == set(dataset.corpus) - {"s0", "s2", "s3"}
    assert all(n.text == dataset.corpus[n.doc_id].full_text for n in added)
    few = add_random_negatives(base, dataset, 3, seed=1)[0]
    assert few == add_random_negatives(base, dataset, 3, seed=1)[0] != add_random_negatives(base, dataset, 3, seed=2)[0]
    assert add_random_negatives(base, dataset, 0, seed=1) == base


def test_latest_checkpoint_is_by_step_number(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (9, 10, 2):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path).endswith("checkpoint-10")
    (tmp_path / "checkpoint-12").mkdir()  # a kill while saving: no trainer_state.json yet
    assert latest_checkpoint(tmp_path).endswith("checkpoint-10")


def test_train_cross_encoder_end_to_end(tmp_path, tiny_model_path):
    from sentence_transformers import CrossEncoder

    folder = write_mining_beir(tmp_path / "mining")
    pairs = tmp_path / "pairs.jsonl"
    assert runner.invoke(app, ["pairs", "-d", str(folder), "-o", str(pairs)]).exit_code == 0
    out = tmp_path / "ce"
    args = ["train-cross-encoder", "-p", str(pairs), "-d", str(folder), "-o", str(out), "--base-model",
            str(tiny_model_path), "-n", "2", "--batch-size", "4", "--save-steps", "2", "--max-length", "64", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    mnrl = runner.invoke(app, [*args[:6], str(tmp_path / "ce-mnrl"), *args[7:], "--loss", "mnrl", "--random-negatives", "1"])
    assert mnrl.exit_code == 0, mnrl.output
    assert json.loads((tmp_path / "ce-mnrl" / "hardneg_training.json").read_text())["examples"] == 8
    provenance = json.loads((out / "hardneg_training.json").read_text())
    assert provenance["dataset"] == "mining" and provenance["examples"] == 8 * 3
    assert math.isfinite(provenance["training_loss"])
    assert not (tmp_path / "ce.checkpoints").exists()
    manifest = json.loads((tmp_path / "ce.manifest.json").read_text())
    assert manifest["stage"] == "train-cross-encoder" and manifest["counts"]["examples"] == 24
    assert "not the MS MARCO cross-encoder" in (out / "README.md").read_text()
    scores = CrossEncoder(str(out), device="cpu").predict([("solar sun", "solar panel"), ("a", "b")])
    assert np.isfinite(scores).all()


def test_evaluate_with_a_reranker(tmp_path, tiny_cross_encoder_path):
    folder = write_mining_beir(tmp_path / "mining")
    config = EvaluateSettings(dataset=str(folder), reranker=str(tiny_cross_encoder_path), rerank_depth=5)
    result = evaluate(config, show_progress=False)
    assert result.reranker == str(tiny_cross_encoder_path)
    assert result.system == f"bm25 >> {tiny_cross_encoder_path}"
    assert result.settings["reranker"]["depth"] == 5 and len(result.settings["reranker"]["model_sha256"]) == 64
    plain = evaluate(EvaluateSettings(dataset=str(folder)), show_progress=False)
    assert set(result.per_query) == set(plain.per_query)
    assert result.metrics["recall@100"] == pytest.approx(plain.metrics["recall@100"])  # same documents


@pytest.mark.slow  # starts sentence-transformers' pool of two worker processes, twice (as torchrun would)
def test_reranking_and_mining_on_two_processes_give_the_scores_of_one(tmp_path, tiny_cross_encoder_path, monkeypatch):
    """`cpu,cpu` stands in for two GPUs: sentence-transformers' pool, the same scores."""
    from sentence_transformers import CrossEncoder

    from hardneg.settings.data import PairsSettings
    from hardneg.settings.mining import MineSettings
    from hardneg.mining.mine import mine
    from hardneg.data.pairs import build_pairs

    pools = []
    real_start = CrossEncoder.start_multi_process_pool
    monkeypatch.setattr(CrossEncoder, "start_multi_process_pool",
                        lambda self, devices, *a, **k: pools.append(list(devices)) or real_start(self, devices, *a, **k))  # fmt: skip
    folder = write_mining_beir(tmp_path / "mining")
    one = evaluate(EvaluateSettings(dataset=str(folder), reranker=str(tiny_cross_encoder_path), rerank_depth=5),
                   show_progress=False)  # fmt: skip
    two = evaluate(EvaluateSettings(dataset=str(folder), reranker=str(tiny_cross_encoder_path), rerank_depth=5,
                                  rerank_devices="cpu,cpu"), show_progress=False)  # fmt: skip
    assert one.per_query.keys() == two.per_query.keys()
    for query in one.per_query:
        assert two.per_query[query] == pytest.approx(one.per_query[query], abs=1e-6)
    dataset = load_beir(folder)
    pairs = build_pairs(dataset, PairsSettings(dataset=str(folder), split="train"))
    config = MineSettings(dataset=str(folder), method="cross-encoder", model=str(tiny_cross_encoder_path), rerank_depth=8)
    mined = [mine(pairs, dataset, settings, show_progress=False).triplets
             for settings in (config, config.model_copy(update={"devices": ["cpu", "cpu"]}))]  # fmt: skip
    scores = [[n.score for t in triplets for n in t.negatives] for triplets in mined]
    assert len(scores[0]) > 0 and float(np.abs(np.array(scores[0]) - np.array(scores[1])).max()) < 1e-5
    assert [[n.doc_id for n in t.negatives] for t in mined[0]] == [[n.doc_id for n in t.negatives] for t in mined[1]]
    assert pools == [["cpu", "cpu"], ["cpu", "cpu"]]  # the re-ranker's pool, then the miner's
    assert MineSettings(dataset="x", devices="cuda:0, cuda:1").devices == ["cuda:0", "cuda:1"]
