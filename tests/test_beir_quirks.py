"""The two quirks of the official BEIR ArguAna release, handled as BEIR and MTEB do: qrels that name
documents missing from the corpus (kept: relevant and unretrievable, with one warning), and queries
that are documents of the corpus under the same id (``ignore_identical_ids``)."""

from __future__ import annotations

import importlib
import json
import logging
import math

import pytest
from helpers import shared_dataset, write_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import DataError
from hardneg.core.manifest import manifest_path
from hardneg.data.beir import load_beir, validate_beir
from hardneg.data.pairs import build_pairs, make_pairs
from hardneg.data.store import CorpusStore
from hardneg.evaluation import evaluate, evaluate_run
from hardneg.settings.base import key_settings
from hardneg.settings.data import PairsSettings
from hardneg.settings.evaluation import EvaluateSettings, ignores_identical_ids
from hardneg.settings.experiment import GridEvaluationSettings
from hardneg.settings.mining import MineSettings
from hardneg.settings.retrieval import BM25Settings

# The module, not the function: the package's own `evaluate` is the function of that name.
evaluate_module = importlib.import_module("hardneg.evaluation.evaluate")
runner = CliRunner()
WARNING = "judged document is not in the corpus; counted relevant and unretrievable, as BEIR does"

# ArguAna in miniature: each query is also a document with its own id (a1, b1), its counter-argument
# is the relevant document (a2, b2), and a1 is also judged against 'gone', which the corpus lacks.
CORPUS = {
    "a1": {"title": "", "text": "solar panels turn sunlight into cheap electricity"},
    "a2": {"title": "", "text": "solar panels are expensive and sunlight is unreliable"},
    "a3": {"title": "", "text": "wind turbines make electricity"},
    "b1": {"title": "", "text": "bread should be baked in a stone oven"},
    "b2": {"title": "", "text": "a stone oven is not needed for bread"},
    "c1": {"title": "", "text": "coffee beans are roasted and ground"},
}
QUERIES = {"a1": CORPUS["a1"]["text"], "b1": CORPUS["b1"]["text"]}
QRELS = {"test": {"a1": {"a2": 1, "gone": 1}, "b1": {"b2": 1}}}
ONE_MISSING_OF_TWO = 1 / (1 + 1 / math.log2(3))
"""nDCG@10 of a query with two relevant documents, one at rank 1 and one not retrievable."""


def arguana_like(tmp_path, name: str = "arguana", qrels: dict | None = None):
    return write_beir(tmp_path / name, CORPUS, QUERIES, QRELS if qrels is None else qrels)


class FixedRetriever:
    """A retriever with a fixed ranking per query, that records how many results it was asked for."""

    def __init__(self, rankings: dict[str, list[str]]):
        self.rankings, self.asked = rankings, []

    def search(self, queries, k):
        self.asked.append(k)
        return {q: {d: float(-rank) for rank, d in enumerate(self.rankings[q][:k])} for q in queries}


@pytest.fixture
def scored_runs(monkeypatch):
    """Every run that evaluate() scores, as it reaches the metrics."""
    runs = []

    def recording(qrels, run, metrics, ignore_identical_ids=True):
        runs.append(run)
        return evaluate_run(qrels, run, metrics, ignore_identical_ids)

    monkeypatch.setattr(evaluate_module, "evaluate_run", recording)
    return runs


# --- qrels naming documents missing from the corpus --------------------------------------------


def test_missing_documents_stay_judged_are_counted_and_warned_once(tmp_path, caplog):
    folder = arguana_like(tmp_path)
    with caplog.at_level(logging.WARNING):
        dataset = load_beir(folder)
        again = load_beir(folder)  # a grid loads a dataset many times: one warning
    assert dataset.split_qrels("test")["a1"] == {"a2": 1, "gone": 1}
    assert dataset.unretrievable == {"test": [("a1", "gone")]} == again.unretrievable
    assert dataset.counts()["test"] == {"queries": 2, "judgments": 3, "not_in_corpus": 1}
    assert "gone" not in dataset.corpus and isinstance(dataset.corpus, CorpusStore)  # the store was built
    warnings = [r.getMessage() for r in caplog.records if "not in the corpus" in r.getMessage()]
    assert warnings == [f"warning: arguana qrels/test.tsv: 1 {WARNING}"]
    assert validate_beir(folder)[1] == []  # a valid BEIR folder, not a problem to fix


def test_the_warning_counts_per_split(tmp_path, caplog):
    qrels = {"test": {"a1": {"gone": 1, "lost": 2}}, "train": {"b1": {"b2": 1}}}
    with caplog.at_level(logging.WARNING):
        load_beir(arguana_like(tmp_path, "other", qrels))
    warnings = [r.getMessage() for r in caplog.records if "not in the corpus" in r.getMessage()]
    assert warnings == [
        "warning: other qrels/test.tsv: 2 judged documents are not in the corpus; counted relevant "
        "and unretrievable, as BEIR does"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q404\tgone\t1\n", "unknown query-id 'q404' (not in queries.jsonl)"),
        ("a1\tgone2\thigh\n", "field 'score' must be an integer, got 'high'"),
        ("a1\tgone2\n", "expected 3 tab-separated fields, got 2"),
        ("a1\tgone\t2\n", "duplicate judgment for query 'a1', document 'gone'"),
    ],
)
def test_other_bad_qrels_still_fail_on_one_line(tmp_path, line, message):
    folder = arguana_like(tmp_path)
    with (folder / "qrels" / "test.tsv").open("a") as out:
        out.write(line)
    with pytest.raises(DataError) as raised:
        load_beir(folder)
    assert str(raised.value) == f"{folder / 'qrels' / 'test.tsv'}:5: {message}"
    result = runner.invoke(app, ["evaluate", "-d", str(folder), "-q", "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {raised.value}"


def test_a_missing_relevant_document_lowers_ndcg_and_recall():
    run = {"q1": {"d1": 3.0, "d2": 2.0}}
    judged = evaluate_run({"q1": {"d1": 1, "missing": 1}}, run, ["ndcg@10", "recall@100"])[0]
    alone = evaluate_run({"q1": {"d1": 1}}, run, ["ndcg@10", "recall@100"])[0]
    assert judged["ndcg@10"] == pytest.approx(0.6131471927654584) == pytest.approx(ONE_MISSING_OF_TWO)
    assert alone == {"ndcg@10": 1.0, "recall@100": 1.0} and judged["recall@100"] == 0.5


def test_evaluate_counts_the_missing_document_as_relevant(tmp_path):
    result = evaluate(EvaluateSettings(dataset=str(arguana_like(tmp_path))), show_progress=False)
    # BM25 ranks each query's own document first (dropped), then its counter-argument.
    assert result.per_query["a1"]["ndcg@10"] == pytest.approx(ONE_MISSING_OF_TWO)
    assert result.per_query["a1"]["recall@100"] == 0.5
    assert result.per_query["b1"]["ndcg@10"] == 1.0
    assert result.settings["unretrievable_judgments"] == 1


def test_cli_evaluates_a_folder_with_missing_documents(tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "-d", str(arguana_like(tmp_path)), "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["settings"]["ignore_identical_ids"] is True
    assert saved["settings"]["unretrievable_judgments"] == 1


def test_pairs_leave_out_a_positive_missing_from_the_corpus_and_count_it(tmp_path, caplog):
    qrels = {"test": {"a1": {"gone": 2, "a2": 1}, "b1": {"b2": 1}}}
    dataset = load_beir(arguana_like(tmp_path, qrels=qrels))
    skipped: list = []
    pairs = build_pairs(dataset, PairsSettings(dataset="arguana", split="test"), skipped)
    assert [(p.query_id, p.positive_id) for p in pairs] == [("a1", "a2"), ("b1", "b2")]
    assert skipped == [("a1", "gone")]
    best = build_pairs(dataset, PairsSettings(dataset="arguana", split="test", one_per_query=True))
    # a1's best positive is missing: it gets the best one the corpus has
    assert [(p.query_id, p.positive_id) for p in best] == [("a1", "a2"), ("b1", "b2")]
    out = tmp_path / "pairs.jsonl"
    with caplog.at_level(logging.WARNING):
        made = make_pairs(PairsSettings(dataset=str(tmp_path / "arguana"), split="test"), out)
    assert made.counts == {"pairs": 2, "queries": 2, "positives_not_in_corpus": 1}
    assert any("1 positive judgment(s)" in r.getMessage() for r in caplog.records)
    assert len(out.read_text().splitlines()) == 2


def test_mining_masks_judged_positives_when_one_is_missing(tmp_path):
    from hardneg.mining import mine

    qrels = {"test": {"a1": {"a2": 1}, "b1": {"b2": 1}}, "train": {"a1": {"gone": 1, "a3": 1}}}
    dataset = load_beir(arguana_like(tmp_path, qrels=qrels))
    pairs = build_pairs(dataset, PairsSettings(dataset="arguana", split="test"))
    config = MineSettings(dataset="arguana", num_negatives=2, bm25=BM25Settings(keep_unmatched=True))
    result = mine(pairs, dataset, config, show_progress=False)
    negatives = {t.query_id: {n.doc_id for n in t.negatives} for t in result.triplets}
    assert len(negatives["a1"]) == 2  # BM25 ranks a3 ("electricity") next: masked, it is not taken
    assert "a3" not in negatives["a1"] and "gone" not in negatives["a1"]  # a3 is judged for a1 in train


# --- queries that are documents of the corpus ----------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "name", "expected"),
    [
        (None, "arguana", True),
        (None, "ArguAna", True),
        (None, "quora", True),
        (None, "scifact", False),
        (None, "arguana-copy", False),
        (False, "arguana", False),
        (True, "scifact", True),
    ],
)
def test_the_default_follows_the_dataset_and_an_explicit_value_wins(setting, name, expected):
    assert ignores_identical_ids(setting, name) is expected


def test_the_setting_at_its_default_stays_out_of_the_keys():
    assert key_settings(EvaluateSettings(dataset="x")) == {"dataset": "x"}
    assert key_settings(EvaluateSettings(dataset="x", ignore_identical_ids=False)) == {
        "dataset": "x",
        "ignore_identical_ids": False,
    }
    assert key_settings(GridEvaluationSettings()) == {}
    grid = GridEvaluationSettings.model_validate({"ignore_identical_ids": False})
    assert grid.ignore_identical_ids is False


@pytest.mark.parametrize(
    ("name", "setting", "dropped"),
    [("arguana", None, True), ("other", None, False), ("arguana", False, False), ("other", True, True)],
)
def test_identical_ids_are_dropped_and_top_k_stays_full(
    tmp_path, monkeypatch, scored_runs, name, setting, dropped
):
    folder = arguana_like(tmp_path, name)
    fixed = FixedRetriever({"a1": ["a1", "a2", "a3", "c1"], "b1": ["b2", "b1", "c1", "a3"]})
    monkeypatch.setattr(evaluate_module, "build_retriever", lambda *args: fixed)
    config = EvaluateSettings(
        dataset=str(folder), top_k=3, ignore_identical_ids=setting, metrics=("ndcg@10",)
    )
    result = evaluate(config, show_progress=False)
    (run,) = scored_runs
    assert fixed.asked == [4 if dropped else 3]
    if dropped:
        assert run == {"a1": {"a2": -1.0, "a3": -2.0, "c1": -3.0}, "b1": {"b2": -0.0, "c1": -2.0, "a3": -3.0}}
        assert result.per_query["a1"]["ndcg@10"] == pytest.approx(ONE_MISSING_OF_TWO)
    else:
        assert run == {"a1": {"a1": -0.0, "a2": -1.0, "a3": -2.0}, "b1": {"b2": -0.0, "b1": -1.0, "c1": -2.0}}
        # a2 at rank 2 of two relevant documents (one missing): (1/log2 3) / (1 + 1/log2 3)
        assert result.per_query["a1"]["ndcg@10"] == pytest.approx(1 - ONE_MISSING_OF_TWO)
    assert result.settings["ignore_identical_ids"] is dropped


def test_bm25_dense_and_reranked_runs_drop_the_query_document(
    tmp_path, scored_runs, tiny_model_path, tiny_cross_encoder_path
):
    folder = arguana_like(tmp_path)
    bm25 = BM25Settings(keep_unmatched=True)
    for retriever, reranker in (
        ("bm25", None),
        (str(tiny_model_path), None),
        ("bm25", str(tiny_cross_encoder_path)),
    ):
        for setting in (None, False):
            config = EvaluateSettings(
                dataset=str(folder),
                retriever=retriever,
                reranker=reranker,
                top_k=3,
                bm25=bm25,
                ignore_identical_ids=setting,
            )
            evaluate(config, show_progress=False)
            run = scored_runs.pop()
            assert all(len(docs) == 3 for docs in run.values()), (retriever, reranker, setting)
            kept_self = {qid for qid, docs in run.items() if qid in docs}
            # Its own text ranks a query's document first: kept, it is in the top 3; dropped, never.
            assert kept_self == (set() if setting is None else {"a1", "b1"}), (retriever, reranker, setting)


def test_the_grid_evaluation_stage_records_the_rule(tmp_path):
    from hardneg.stages import run_kind

    out = tmp_path / "evaluation.json"
    run_kind("evaluate", EvaluateSettings(dataset=str(arguana_like(tmp_path))), {}, out, show_progress=False)
    saved = json.loads(out.read_text())
    assert saved["settings"]["ignore_identical_ids"] is True
    counts = json.loads(manifest_path(out).read_text())["counts"]
    assert counts["ignore_identical_ids"] is True and counts["unretrievable_judgments"] == 1


def test_a_grid_s_evaluation_setting_reaches_every_evaluation_stage_and_its_key(tmp_path, tiny_model_path):
    from helpers import mini_grid, write_config

    from hardneg.experiment import load_experiment, plan_experiment

    def evaluations(rule: str) -> dict[str, tuple]:
        body = mini_grid(tmp_path, "quirks", tiny_model_path).replace(
            "[evaluation]\n", f"[evaluation]\n{rule}"
        )
        body += '[sources.bm25]\nmine = { method = "bm25", num_negatives = 2 }\n'
        plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
        stages = [s for s in plan.stages if s.kind == "evaluate"]
        return {s.label: (s.config["ignore_identical_ids"], s.key) for s in stages}

    default, kept = evaluations(""), evaluations("ignore_identical_ids = false\n")
    assert set(default) == set(kept) == {"base-on-mini", "mini-bm25-on-mini"}
    assert all(rule is None for rule, _ in default.values())  # each dataset's own default decides
    assert all(rule is False for rule, _ in kept.values())
    assert all(default[label][1] != kept[label][1] for label in default)  # another rule, other results


def test_cli_flags_override_the_dataset_default(tmp_path):
    folder = arguana_like(tmp_path)
    for flag, expected in (("--keep-identical-ids", False), ("--ignore-identical-ids", True)):
        out = tmp_path / f"{flag}.json"
        result = runner.invoke(app, ["evaluate", "-d", str(folder), "-q", flag, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["settings"]["ignore_identical_ids"] is expected


# --- the real release ------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_arguana_counts():
    dataset = load_beir(shared_dataset("arguana"))
    counts = dataset.counts()
    assert counts["all"]["documents"] == 8674
    assert counts["test"] == {"queries": 1406, "judgments": 1406, "not_in_corpus": 5}
    assert dataset.splits == ["test"]
    assert sorted(doc for _, doc in dataset.unretrievable["test"]) == [
        "test-education-ufsdfkhbwu-con03b",
        "test-free-speech-debate-yfsdfkhbwu-con03b",
        "test-politics-dhwem-pro06b",
        "test-science-sghwbdgmo-con03b",
        "test-society-asfhwapg-con04b",
    ]
    assert ignores_identical_ids(None, dataset.name)
    assert sum(query_id in dataset.corpus for query_id in dataset.split_qrels("test")) == 1298
