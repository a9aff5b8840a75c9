from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import write_mining_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.data import PairsSettings
from hardneg.settings.mining import FilterSettings, MineSettings
from hardneg.data.beir import Document, load_beir
from hardneg.data.records import read_triplets
from hardneg.mining import mine
from hardneg.mining.select import Candidate, PassageKeys, eligible, filter_reason, sample
from hardneg.data.pairs import build_pairs
from hardneg.retrieval import BM25Retriever

runner = CliRunner()


@pytest.fixture
def dataset(tmp_path):
    return load_beir(write_mining_beir(tmp_path / "mining"))


@pytest.fixture
def pairs(dataset):
    return build_pairs(dataset, PairsSettings(dataset="mining"))


def _config(**kwargs) -> MineSettings:
    return MineSettings(dataset="mining", **kwargs)


# --- selection rules, one at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "score", "positive", "reason"),
    [
        (FilterSettings(max_score=0.8), 0.81, 0.9, "max_score"),
        (FilterSettings(max_score=0.8), 0.8, 0.9, None),
        (FilterSettings(min_score=0.2), 0.1, 0.9, "min_score"),
        (FilterSettings(absolute_margin=0.1), 0.85, 0.9, "absolute_margin"),
        (FilterSettings(absolute_margin=0.1), 0.8, 0.9, None),
        (FilterSettings(relative_margin=0.05), 0.96, 1.0, "relative_margin"),
        (FilterSettings(relative_margin=0.05), 0.95, 1.0, None),
        (FilterSettings(relative_margin=0.05), -1.0, -1.0, "relative_margin"),  # -1 > -1.05
        (FilterSettings(absolute_margin=0.0), 1.0, 1.0, None),  # ties pass a zero margin
        (FilterSettings(absolute_margin=0.0), 1.01, 1.0, "absolute_margin"),
    ],
)
def test_filter_rules(filters, score, positive, reason):
    assert filter_reason(score, positive, filters) == reason


def test_eligible_excludes_positives_same_text_and_the_window():
    candidates = [Candidate(d, 10.0 - r, r) for r, d in enumerate(["p", "same", "a", "b", "c", "d"], start=1)]
    texts = {"p": "P", "same": "  the  Positive\ttext ", "a": "a", "b": "b", "c": "c", "d": "d"}
    keys = PassageKeys({doc_id: Document("", text) for doc_id, text in texts.items()})
    counts = Counter()
    kept = eligible(candidates, {"p"}, "The positive text", keys, _config(range_min=4, range_max=5), counts)
    assert [c.doc_id for c in kept] == ["b", "c"]
    assert counts == Counter(positives_excluded=1, same_text_excluded=1, outside_window=2)


def test_random_sampling_is_seeded_per_pair():
    pool = [Candidate(f"d{i}", -i, i) for i in range(1, 30)]
    pick = lambda seed, q="q": [c.doc_id for c in sample(pool, _config(sampling="random", seed=seed), q, "p")]
    assert pick(1) == pick(1)
    assert pick(1) != pick(2)
    assert pick(1, "q") != pick(1, "other")
    assert [c.rank for c in sample(pool, _config(sampling="random", seed=3), "q", "p")] == sorted(
        c.rank for c in sample(pool, _config(sampling="random", seed=3), "q", "p")
    )
    assert [c.doc_id for c in sample(pool, _config(), "q", "p")] == ["d1", "d2", "d3", "d4", "d5"]


# --- whole stage -------------------------------------------------------------------------------


def _assert_no_positive_is_a_negative(triplets, dataset):
    for triplet in triplets:
        judged = dataset.judged_documents(triplet.query_id)
        positive_text = dataset.corpus[triplet.positive_id].full_text
        for negative in triplet.negatives:
            assert judged.get(negative.doc_id, 0) <= 0, (triplet.query_id, negative.doc_id)
            assert negative.doc_id != triplet.positive_id
            assert negative.text != positive_text


def test_bm25_mining_never_returns_a_positive(dataset, pairs):
    result = mine(pairs, dataset, _config(num_negatives=10), show_progress=False)
    _assert_no_positive_is_a_negative(result.triplets, dataset)
    solar = next(t for t in result.triplets if t.query_id == "q-solar-0")
    ids = [n.doc_id for n in solar.negatives]
    assert "s2" not in ids and "copy" not in ids  # test-split positive; same text as the positive
    assert result.counts["positives_excluded"] >= 2 and result.counts["same_text_excluded"] == 1
    assert all(n.source == "bm25" for n in solar.negatives)
    scores = [n.score for n in solar.negatives]
    assert scores == sorted(scores, reverse=True)
    assert [n.rank for n in solar.negatives] == sorted(n.rank for n in solar.negatives)


def test_judged_non_relevant_documents_may_be_negatives(dataset, pairs):
    result = mine(pairs, dataset, _config(num_negatives=30), show_progress=False)
    solar = next(t for t in result.triplets if t.query_id == "q-solar-0")
    assert "s1" in [n.doc_id for n in solar.negatives]  # judged 0: a confirmed negative


def test_rank_window_and_shortfalls(dataset, pairs):
    result = mine(pairs, dataset, _config(num_negatives=3, range_min=5, range_max=7), show_progress=False)
    for triplet in result.triplets:
        assert all(5 <= n.rank <= 7 for n in triplet.negatives)
    assert result.counts["shortfalls"] == sum(len(t.negatives) < 3 for t in result.triplets) > 0
    assert result.counts["negatives"] == sum(len(t.negatives) for t in result.triplets)


def test_own_score_margin_keeps_negatives_below_the_positive(dataset, pairs):
    result = mine(pairs, dataset, _config(num_negatives=10, filters=FilterSettings(relative_margin=0.1)), False)
    bm25 = BM25Retriever(dataset.corpus, show_progress=False)
    for triplet in result.triplets:
        positive = bm25.score_all(triplet.query)[bm25.doc_ids.index(triplet.positive_id)]
        assert all(n.score <= positive - 0.1 * abs(positive) + 1e-6 for n in triplet.negatives)
    assert result.counts["filtered_relative_margin"] > 0


def test_same_seed_same_output(dataset, pairs):
    config = _config(sampling="random", range_max=20, seed=5)
    first = mine(pairs, dataset, config, show_progress=False).triplets
    assert first == mine(pairs, dataset, config, show_progress=False).triplets
    other = mine(pairs, dataset, config.model_copy(update={"seed": 6}), show_progress=False).triplets
    assert first != other


def test_dense_mining_names_its_model(dataset, pairs, tiny_model_path):
    config = _config(method="dense", model=str(tiny_model_path), num_negatives=4)
    result = mine(pairs, dataset, config, show_progress=False)
    _assert_no_positive_is_a_negative(result.triplets, dataset)
    negatives = [n for t in result.triplets for n in t.negatives]
    assert negatives and all(n.source == f"dense:{tiny_model_path.name}" for n in negatives)
    assert all(-1.0 - 1e-5 <= n.score <= 1.0 + 1e-5 for n in negatives)  # cosine


def test_cross_encoder_reranks_bm25_candidates(dataset, pairs, tiny_cross_encoder_path):
    from sentence_transformers import CrossEncoder

    config = _config(method="cross-encoder", model=str(tiny_cross_encoder_path), rerank_depth=10, num_negatives=3)
    result = mine(pairs, dataset, config, show_progress=False)
    _assert_no_positive_is_a_negative(result.triplets, dataset)
    bm25_top = BM25Retriever(dataset.corpus, show_progress=False)
    model = CrossEncoder(str(tiny_cross_encoder_path), device="cpu")
    triplet = result.triplets[0]
    allowed = bm25_top.search({triplet.query_id: triplet.query}, 10)[triplet.query_id]
    for negative in triplet.negatives:
        assert negative.doc_id in allowed
        assert negative.source == f"cross-encoder:{tiny_cross_encoder_path.name}"
        expected = model.predict([(triplet.query, dataset.corpus[negative.doc_id].full_text)])[0]
        assert negative.score == pytest.approx(float(expected), abs=1e-4)


def test_external_scorer_filters(dataset, pairs, tiny_model_path):
    filters = FilterSettings(max_score=0.0, scorer=f"dense:{tiny_model_path}")
    result = mine(pairs, dataset, _config(num_negatives=10, filters=filters), show_progress=False)
    unfiltered = mine(pairs, dataset, _config(num_negatives=10), show_progress=False)
    assert result.counts.get("filtered_max_score", 0) > 0
    assert result.counts["negatives"] < unfiltered.counts["negatives"]


def test_cli_pairs_then_mine(tmp_path):
    folder = write_mining_beir(tmp_path / "mining")
    pairs_path, out = tmp_path / "pairs.jsonl", tmp_path / "triplets.jsonl"
    assert runner.invoke(app, ["pairs", "-d", str(folder), "-o", str(pairs_path)]).exit_code == 0
    args = ["mine", "-p", str(pairs_path), "-d", str(folder), "-o", str(out), "-n", "4", "--relative-margin", "0.05", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    triplets = read_triplets(out)
    assert len(triplets) == 8
    manifest = json.loads((tmp_path / "triplets.jsonl.manifest.json").read_text())
    assert manifest["stage"] == "mine" and manifest["counts"]["source"] == "bm25"
    assert manifest["settings"]["filters"]["relative_margin"] == 0.05
    assert set(manifest["inputs"]) == {"pairs", "dataset"}
    assert manifest["counts"]["negatives"] == sum(len(t.negatives) for t in triplets)
    assert {"bm25_tokenize_s", "bm25_index_s", "candidates_s"} <= set(manifest["timings"])
    assert runner.invoke(app, args).exit_code == 0  # again: the BM25 index comes from the cache
    again = json.loads((tmp_path / "triplets.jsonl.manifest.json").read_text())["timings"]
    assert "bm25_load_index_s" in again and "bm25_tokenize_s" not in again


def test_cli_mine_offline_cross_encoder_default_is_a_clear_error(tmp_path):
    folder = write_mining_beir(tmp_path / "mining")
    pairs_path = tmp_path / "pairs.jsonl"
    runner.invoke(app, ["pairs", "-d", str(folder), "-o", str(pairs_path)])
    result = runner.invoke(
        app, ["mine", "-p", str(pairs_path), "-d", str(folder), "-o", str(tmp_path / "t.jsonl"), "-m", "cross-encoder", "-q"]
    )
    assert result.exit_code == 2
    assert "cross-encoder/ms-marco-MiniLM-L-6-v2" in result.stderr and "hardneg train-cross-encoder" in result.stderr
    assert not (tmp_path / "t.jsonl").exists()
