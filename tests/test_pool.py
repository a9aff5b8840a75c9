"""Pool mining (negatives from the other pairs' positives, never the corpus) and the corpus-free fact
of every grid row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import SOLAR, mini_grid, solar_pairs, write_beir, write_config
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.data.records import Pair, read_triplets, write_records
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.settings.combine import CombineSettings
from hardneg.settings.mining import MineSettings
from hardneg.stages import run_kind
from hardneg.stages.estimates import DataSizes, Estimate
from hardneg.stages.negatives import Combine, Mine

runner = CliRunner()


def _corpus_free_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Pairs for six queries on one topic, and a dataset folder holding only queries and qrels: its
    dev split says qA's answer also includes dB (a positive of qB), which mining must never pick."""
    ids = ["A", "B", "C", "D", "E", "F"]
    pairs = solar_pairs()
    pairs_path = tmp_path / "pairs.jsonl"
    write_records(pairs_path, pairs)
    folder = write_beir(
        tmp_path / "data" / "solar",
        corpus={},
        queries={f"q{i}": f"{SOLAR} question {i}" for i in ids},
        qrels={"train": {f"q{i}": {f"d{i}": 1} for i in ids}, "dev": {"qA": {"dB": 1}}},
    )
    (folder / "corpus.jsonl").unlink()  # a corpus-free user has none; mining must not need it
    return pairs_path, folder


def test_pool_mining_draws_other_pairs_positives_and_masks_every_known_positive(tmp_path):
    pairs_path, folder = _corpus_free_folder(tmp_path)
    out = tmp_path / "pool.jsonl"
    config = {"dataset": str(folder), "corpus": "pool", "method": "bm25", "num_negatives": 4}
    result = run_kind("mine", config, {"pairs": pairs_path}, out, show_progress=False)
    triplets = read_triplets(out)
    assert len(triplets) == 7 and result.counts["pool_documents"] == 6
    assert all(
        n.source == "pool-bm25" and n.doc_id in {f"d{i}" for i in "ABCDEF"}
        for t in triplets
        for n in t.negatives
    )
    for t in (t for t in triplets if t.query_id == "qA"):  # its two pairs' positives, and dev's dB
        assert {n.doc_id for n in t.negatives}.isdisjoint({"dA", "dB", "dC"}) and len(t.negatives) == 3
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["counts"]["source"] == "pool-bm25" and manifest["settings"]["corpus"] == "pool"

    alone = tmp_path / "alone.jsonl"  # no dataset: only the pairs mask
    run_kind(
        "mine", {"corpus": "pool", "num_negatives": 4}, {"pairs": pairs_path}, alone, show_progress=False
    )
    first_a = next(t for t in read_triplets(alone) if t.query_id == "qA")
    assert "dB" in {n.doc_id for n in first_a.negatives} and "dC" not in {n.doc_id for n in first_a.negatives}


@pytest.mark.parametrize("method", ["dense", "cross-encoder"])
def test_pool_mining_by_a_model_never_needs_the_corpus(
    tmp_path, method, tiny_model_path, tiny_cross_encoder_path
):
    pairs_path, folder = _corpus_free_folder(tmp_path)  # corpus.jsonl deleted
    model = tiny_model_path if method == "dense" else tiny_cross_encoder_path
    out = tmp_path / f"pool-{method}.jsonl"
    config = {"dataset": str(folder), "corpus": "pool", "method": method, "model": str(model),
              "num_negatives": 3, "depth": 6, "rerank_depth": 6}  # fmt: skip
    result = run_kind("mine", config, {"pairs": pairs_path}, out, show_progress=False)
    triplets = read_triplets(out)
    assert len(triplets) == 7 and result.counts["pool_documents"] == 6
    assert result.counts["source"] == f"pool-{method}:{model.name}"
    assert all(n.source == f"pool-{method}:{model.name}" for t in triplets for n in t.negatives)
    for t in (t for t in triplets if t.query_id == "qA"):  # both pairs' positives and dev's dB masked
        assert {n.doc_id for n in t.negatives}.isdisjoint({"dA", "dB", "dC"}) and len(t.negatives) == 3


def test_pool_mining_keeps_rank_windows_and_positive_aware_margins(tmp_path):
    pairs_path, folder = _corpus_free_folder(tmp_path)
    base = {"dataset": str(folder), "corpus": "pool", "method": "bm25", "num_negatives": 5}
    window = tmp_path / "window.jsonl"
    run_kind("mine", {**base, "range_min": 2, "range_max": 3}, {"pairs": pairs_path}, window, False)
    everything = tmp_path / "all.jsonl"
    run_kind("mine", base, {"pairs": pairs_path}, everything, False)
    ranks = [n.rank for t in read_triplets(window) for n in t.negatives]
    assert (
        ranks
        and all(2 <= r <= 3 for r in ranks)
        and 1 in {n.rank for t in read_triplets(everything) for n in t.negatives}
    )
    margin = tmp_path / "margin.jsonl"
    result = run_kind(
        "mine", {**base, "filters": {"absolute_margin": 1e9}}, {"pairs": pairs_path}, margin, False
    )
    # a margin no negative can keep below its positive: every candidate goes, none is invented
    assert result.counts["negatives"] == 0 and result.counts["shortfalls"] == 7


def test_pool_mining_from_the_command_line_and_its_errors(tmp_path):
    pairs_path, folder = _corpus_free_folder(tmp_path)
    out = tmp_path / "cli.jsonl"
    args = ["mine", "-p", str(pairs_path), "-o", str(out), "-d", str(folder), "--corpus", "pool", "-n", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert all(len(t.negatives) == 2 for t in read_triplets(out))
    missing = runner.invoke(app, [*args[:6], str(tmp_path / "nowhere"), *args[7:]])
    assert missing.exit_code == 2 and "no folder with qrels/" in missing.output
    clash = tmp_path / "clash.jsonl"
    write_records(clash, [Pair(query_id="q1", query="a", positive_id="d1", positive="one"),
                          Pair(query_id="q2", query="b", positive_id="d1", positive="two")])  # fmt: skip
    bad = runner.invoke(app, ["mine", "-p", str(clash), "-o", str(tmp_path / "x.jsonl"), "--corpus", "pool"])
    one_line = " ".join(bad.output.split())
    assert (
        bad.exit_code == 2
        and f"{clash}:2: field 'positive': positive_id 'd1' has another text at line 1" in one_line
    )
    # mining the dataset's corpus still needs it
    corpus = runner.invoke(
        app, ["mine", "-p", str(pairs_path), "-o", str(tmp_path / "y.jsonl"), "-d", str(folder)]
    )
    assert corpus.exit_code == 2


def test_mining_writes_a_teachers_scores_for_margin_mse(tmp_path, tiny_model_path):
    pairs_path, folder = _corpus_free_folder(tmp_path)
    spec = f"dense:{tiny_model_path}"
    args = ["mine", "-p", str(pairs_path), "-d", str(folder), "--corpus", "pool", "-n", "2", "-q"]
    plain, scored = tmp_path / "plain.jsonl", tmp_path / "scored.jsonl"
    assert runner.invoke(app, [*args, "-o", str(plain)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(scored), "--score-with", spec])
    assert result.exit_code == 0, result.output
    before, after = read_triplets(plain), read_triplets(scored)
    # the same negatives, chosen by BM25; their scores and the positive's are now the teacher's
    assert [[n.doc_id for n in t.negatives] for t in before] == [
        [n.doc_id for n in t.negatives] for t in after
    ]
    assert all(t.scorer == spec and -1 <= t.positive_score <= 1 for t in after)
    assert all(-1 <= n.score <= 1 for t in after for n in t.negatives)
    assert [n.score for t in before for n in t.negatives] != [n.score for t in after for n in t.negatives]
    manifest = json.loads(scored.with_name(scored.name + ".manifest.json").read_text())
    assert manifest["counts"]["negatives_scored"] == sum(len(t.negatives) for t in after)
    bad = runner.invoke(app, [*args, "-o", str(tmp_path / "bad.jsonl"), "--score-with", "teacher"])
    assert bad.exit_code == 2 and "score_with must be 'dense:MODEL' or 'cross-encoder:MODEL'" in bad.output
    assert not (tmp_path / "bad.jsonl").exists()


def test_a_dry_run_names_the_teacher_and_counts_its_scoring_time():
    """--score-with is extra work after the ranking: the plan says who scores, and what it costs."""
    pairs = {"pairs": [Estimate(pairs=500)]}
    plain = MineSettings(method="bm25", corpus="pool", num_negatives=3)
    for spec in ("dense:minilm-l6", "cross-encoder:teacher"):
        scored = plain.model_copy(update={"score_with": spec})
        before, after = (
            Mine().estimate(plain, pairs, DataSizes(None)),
            Mine().estimate(scored, pairs, DataSizes(None)),
        )
        assert after.seconds > before.seconds and after.work.endswith("scored")
        assert Mine().model(scored) == f"bm25; scores: {spec}"
    assert Mine().model(plain) == "bm25"
    filters = {"relative_margin": 0.05, "scorer": "dense:minilm-l6"}
    triplets = {"triplets": [Estimate(pairs=500)]}
    combine = CombineSettings(score_with="cross-encoder:teacher", filters=filters)
    assert Combine().model(combine) == "dense:minilm-l6; scores: cross-encoder:teacher"
    unscored = Combine().estimate(CombineSettings(filters=filters), triplets, DataSizes(None))
    assert Combine().estimate(combine, triplets, DataSizes(None)).seconds > unscored.seconds


def _grid(tmp_path: Path, model: Path, cross_encoder: Path) -> str:
    ce = f'base_model = "{cross_encoder}", num_negatives = 2, batch_size = 4, epochs = 1, max_length = 64'
    return (
        mini_grid(tmp_path, "pool", model)
        + f"""
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.pool]
mine = {{ method = "bm25", corpus = "pool", num_negatives = 2 }}
[sources.ce]
mine = {{ method = "cross-encoder", num_negatives = 2, rerank_depth = 5 }}
train_cross_encoder = {{ {ce} }}
[sources.pool-ce]
mine = {{ method = "cross-encoder", corpus = "pool", num_negatives = 2, rerank_depth = 5 }}
train_cross_encoder = {{ {ce} }}
[sources."pool by corpus ce"]
combine = {{ inputs = ["pool"], filters = {{ max_score = 1e9, scorer = "cross-encoder:@source:ce" }} }}
[sources."pool by pool ce"]
combine = {{ inputs = ["pool"], filters = {{ max_score = 1e9, scorer = "cross-encoder:@source:pool-ce" }} }}
[sources."pool+bm25"]
combine = {{ inputs = ["pool", "bm25"], strategy = "interleave", max_negatives = 2 }}
[sources."pool again"]
combine = {{ inputs = ["pool"] }}
train = {{ learning_rate = 1e-4 }}
[sources."pool taught by pool ce"]
combine = {{ inputs = ["pool"], score_with = "cross-encoder:@source:pool-ce" }}
train = {{ loss = "margin-mse" }}
"""
    )


CORPUS_TEACHER = """
[sources."pool taught by corpus ce"]
combine = { inputs = ["pool"], score_with = "cross-encoder:@source:ce" }
train = { loss = "margin-mse" }
"""


def test_every_row_knows_whether_it_read_the_corpus(tmp_path, tiny_model_path, tiny_cross_encoder_path):
    config = load_experiment(
        write_config(tmp_path, _grid(tmp_path, tiny_model_path, tiny_cross_encoder_path) + CORPUS_TEACHER)
    )
    plan = plan_experiment(config, tmp_path / "run")
    reads = {cell.source: cell.corpus_reads for cell in plan.cells if cell.source != "base"}
    # a margin-MSE teacher trained in the grid is wired as the combine's 'teacher' input
    assert reads["pool taught by pool ce"] == [] and reads["pool taught by corpus ce"] == [
        "train-cross-encoder mini-ce"
    ]
    outputs = {s.label: s.output for s in plan.stages if s.kind == "train-cross-encoder"}
    taught = next(s for s in plan.stages if s.label == "mini-pool taught by pool ce" and s.kind == "combine")
    assert taught.config["score_with"] == "cross-encoder:@input:teacher"
    assert taught.inputs["teacher"] == [outputs["mini-pool-ce"]] and "scorer" not in taught.inputs
    assert reads["bm25"] == ["mine mini-bm25"] and reads["ce"] == [
        "mine mini-ce",
        "train-cross-encoder mini-ce",
    ]
    assert reads["pool"] == reads["pool-ce"] == reads["pool by pool ce"] == reads["pool again"] == []
    assert reads["pool by corpus ce"] == ["train-cross-encoder mini-ce"]  # the filter's scorer read it
    assert reads["pool+bm25"] == ["mine mini-bm25"]
    trained = {s.label: s.config for s in plan.stages if s.kind == "train-cross-encoder"}
    assert trained["mini-pool-ce"]["corpus"] == "pool" and trained["mini-ce"]["corpus"] == "dataset"
    models = {s.label: s.config for s in plan.stages if s.kind == "train"}
    assert models["mini-pool again"]["learning_rate"] == 1e-4 and models["mini-pool"]["learning_rate"] == 2e-5


def test_a_scorer_named_by_its_path_counts_what_it_was_trained_on(tmp_path, tiny_model_path):
    """A cross-encoder hardneg trained on corpus negatives read that corpus; one trained on the
    pool, or from elsewhere (no record), did not."""
    models = {}
    for corpus in ("dataset", "pool", None):
        folder = tmp_path / f"ce-{corpus}"
        folder.mkdir()
        if corpus is not None:
            (folder / "hardneg_training.json").write_text(json.dumps({"settings": {"corpus": corpus}}))
        models[corpus] = folder
    body = _grid(tmp_path, tiny_model_path, tiny_model_path)
    for corpus, folder in models.items():
        body += f"""
[sources."pool by {corpus}"]
combine = {{ inputs = ["pool"], filters = {{ max_score = 1e9, scorer = "cross-encoder:{folder}" }} }}
[sources."pool taught by {corpus}"]
combine = {{ inputs = ["pool"], score_with = "cross-encoder:{folder}" }}
[sources."pool ranked by {corpus}"]
mine = {{ method = "cross-encoder", corpus = "pool", model = "{folder}", num_negatives = 2 }}
"""
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    reads = {cell.source: cell.corpus_reads for cell in plan.cells if cell.source != "base"}
    assert reads["pool by dataset"] == ["combine mini-pool by dataset"]
    assert reads["pool taught by dataset"] == ["combine mini-pool taught by dataset"]
    assert reads["pool ranked by dataset"] == ["mine mini-pool ranked by dataset"]
    for corpus in ("pool", None):
        assert reads[f"pool by {corpus}"] == reads[f"pool taught by {corpus}"] == []
        assert reads[f"pool ranked by {corpus}"] == []


@pytest.mark.parametrize(
    "edit, message",
    [
        ("train = { learning_rate = 1e-4 }", "train = { learning_rate = -1 }"),
        ("train = { learning_rate = 1e-4 }", "train = { base_model = 'x' }"),
        ("train = { learning_rate = 1e-4 }", "train = { lerning_rate = 1 }"),
        ("train = { learning_rate = 1e-4 }", "train = { loss = 'gist', num_negatives = 3 }"),
    ],
)
def test_a_source_s_own_train_settings_are_checked(
    tmp_path, tiny_model_path, tiny_cross_encoder_path, edit, message
):
    body = _grid(tmp_path, tiny_model_path, tiny_cross_encoder_path).replace(edit, message)
    with pytest.raises(
        HardnegError,
        match=r"sources.pool again.train(\.learning_rate|\.base_model|\.lerning_rate|: Value error, loss 'gist' takes)",
    ):
        load_experiment(write_config(tmp_path, body))


def test_a_source_s_nested_train_settings_merge_with_the_grid_s(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    body = (
        _grid(tmp_path, tiny_model_path, tiny_cross_encoder_path)
        .replace("train = { learning_rate = 1e-4 }", "train = { gist = { margin = 0.1 } }")
        .replace("eval_steps = 2\n", "eval_steps = 2\nloss = 'cached-gist'\n", 1)
    )
    body += "[train.gist]\nguide = 'minilm-l6'\nmargin_strategy = 'relative'\n"
    config = load_experiment(write_config(tmp_path, body))
    gist = config.train_for("pool again").gist
    assert (gist.guide, gist.margin_strategy, gist.margin) == ("minilm-l6", "relative", 0.1)
    # a source that changes the loss leaves the grid's GIST options behind (they would be refused)
    taught = config.train_for("pool taught by pool ce")
    assert taught.loss == "margin-mse" and taught.gist.guide is None


def test_a_pool_source_s_cross_encoder_cannot_be_told_to_read_the_corpus(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    body = _grid(tmp_path, tiny_model_path, tiny_cross_encoder_path)
    head, _, tail = body.partition("[sources.pool-ce]")
    tail = tail.replace("train_cross_encoder = { ", "train_cross_encoder = { corpus = 'dataset', ", 1)
    with pytest.raises(
        HardnegError,
        match=r"sources.pool-ce.train_cross_encoder.corpus: a pool source's cross-encoder learns",
    ):
        load_experiment(write_config(tmp_path, head + "[sources.pool-ce]" + tail))


def test_the_report_says_what_reads_the_corpus_even_when_no_row_is_corpus_free():
    from hardneg.reporting.report import corpus_lines

    base = {"source": "base", "label": "base", "corpus_free": True, "corpus_reads": []}
    bm25 = {"source": "bm25", "label": "BM25", "corpus_free": False, "corpus_reads": ["mine bm25"]}
    ce = {"source": "a", "label": "(a)", "corpus_free": False, "corpus_reads": ["train-cross-encoder ce"]}
    assert corpus_lines({"rows": [base, bm25, ce]}) == [
        "- no row is corpus-free",
        "- not corpus-free: BM25 (reads it in mine bm25)",
        "- not corpus-free: (a) (reads it in train-cross-encoder ce)",
    ]
    free = {"source": "pool", "label": "pool", "corpus_free": True, "corpus_reads": []}
    lines = corpus_lines({"rows": [base, free, ce]})
    assert lines[0].startswith("- ◇ corpus-free: nothing before") and lines[1:] == [
        "- not corpus-free: (a) (reads it in train-cross-encoder ce)"
    ]
    assert corpus_lines({"rows": [base, free]})[0].startswith("- ◇ corpus-free")
    assert corpus_lines({"rows": [base]}) == []  # the base alone: nothing to say
    old = {"source": "old", "label": "old", "corpus_free": None, "corpus_reads": None}
    assert corpus_lines({"rows": [base, bm25, old]}) == [
        "- not corpus-free: BM25 (reads it in mine bm25)",
        "- corpus access unknown (a plan from an older version): old",
    ]  # not "no row is corpus-free": the old row may be
    assert corpus_lines({"rows": [base, old]}) == []


@pytest.mark.slow
def test_a_grid_with_pool_sources_runs_and_its_report_marks_the_corpus_free_rows(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    body = _grid(tmp_path, tiny_model_path, tiny_cross_encoder_path)
    run_dir = tmp_path / "run"
    run_experiment(write_config(tmp_path, body), run_dir, show_progress=False)
    results = json.loads((run_dir / "results.json").read_text())
    free = {row["source"]: row["corpus_free"] for row in results["rows"]}
    assert free == {
        "base": True, "bm25": False, "pool": True, "ce": False, "pool-ce": True, "pool by corpus ce": False,
        "pool by pool ce": True, "pool+bm25": False, "pool again": True, "pool taught by pool ce": True,
    }  # fmt: skip
    assert results["training"]["mini/pool taught by pool ce"]["loss"]["name"] == "margin-mse"
    markdown = (run_dir / "results.md").read_text()
    assert "| pool ◇ |" in markdown and "| bm25 |" in markdown
    assert "- not corpus-free: pool by corpus ce (reads it in train-cross-encoder mini-ce)" in markdown
    pool_ce = next(p for p in (run_dir / "stages" / "cross-encoders").glob("mini-pool-ce-*") if p.is_dir())
    log = json.loads((pool_ce / "hardneg_training.json").read_text())
    assert log["settings"]["corpus"] == "pool" and log["dataset_path"]


@pytest.mark.slow
def test_a_cross_encoder_trained_on_the_pool_never_needs_the_corpus(tmp_path, tiny_cross_encoder_path):
    pairs_path, folder = _corpus_free_folder(tmp_path)
    out = tmp_path / "ce"
    config = {"dataset": str(folder), "corpus": "pool", "base_model": str(tiny_cross_encoder_path),
              "num_negatives": 2, "random_negatives": 1, "batch_size": 4, "max_length": 32}  # fmt: skip
    result = run_kind("train-cross-encoder", config, {"pairs": pairs_path}, out, show_progress=False)
    log = json.loads((out / "hardneg_training.json").read_text())
    assert log["settings"]["corpus"] == "pool" and log["counts"]["negatives"] > 0
    assert "from the pairs own positives" in (out / "README.md").read_text()
    assert result.counts["examples"] == log["examples"]

    cli = tmp_path / "ce-cli"  # the same from the command line
    args = ["train-cross-encoder", "--pairs", str(pairs_path), "-d", str(folder), "--corpus", "pool",
            "--base-model", str(tiny_cross_encoder_path), "-n", "2", "--random-negatives", "1",
            "--batch-size", "4", "--max-length", "32", "-o", str(cli), "-q"]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads((cli / "hardneg_training.json").read_text())["settings"]["corpus"] == "pool"


def test_a_zero_grade_elsewhere_never_unmasks_a_pairs_positive():
    """The pairs' own positive of q1 (d9) is graded 0 in the dataset's test qrels: it stays masked."""
    from hardneg.data.beir import BeirDataset
    from hardneg.data.parsing import Document

    corpus = {d: Document("", f"text of {d}") for d in ("d7", "d9")}
    qrels = {"<pairs>": {"q1": {"d7": 1, "d9": 1}}, "test": {"q1": {"d9": 0, "d5": 0}}}
    dataset = BeirDataset(Path("."), corpus, {"q1": "query"}, qrels)
    assert dataset.judged_documents("q1") == {"d7": 1, "d9": 1, "d5": 0}


def test_a_duplicate_of_another_known_positive_is_not_a_negative():
    """q's positives are a and b; c is b's text under another id: not a negative of (q, a)."""
    from collections import Counter

    from hardneg.data.parsing import Document
    from hardneg.mining.select import Candidate, PassageKeys, eligible

    corpus = {"a": Document("", "alpha text"), "b": Document("", "beta text"),
              "c": Document("", "Beta  text"), "d": Document("", "delta text")}  # fmt: skip
    counts: Counter = Counter()
    ranked = [Candidate(doc, 1.0, rank) for rank, doc in enumerate("bcd", start=1)]
    kept = eligible(ranked, {"a", "b"}, "alpha text", PassageKeys(corpus), MineSettings(), counts)
    assert [c.doc_id for c in kept] == ["d"]
    assert counts == {"positives_excluded": 1, "same_text_excluded": 1}


def test_a_bi_encoder_named_by_its_path_counts_what_its_triplets_read(tmp_path, tiny_model_path):
    """A model `hardneg train` made records its triplets; their manifests say what they read, back
    through a combination's inputs. As a dense miner, a dense scorer or GIST's guide, a model that
    learned from corpus negatives makes the row read the corpus."""
    from hardneg.core.manifest import manifest_path
    from hardneg.stages.corpus import spec_reads_corpus

    def triplets(name: str, stage: str, settings: dict, inputs: dict | None = None) -> Path:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("")
        record = {"stage": stage, "settings": settings, "inputs": inputs or {}}
        manifest_path(path).write_text(json.dumps(record))
        return path

    mined = triplets("mined", "mine", {"method": "bm25", "corpus": "dataset"})
    pooled = triplets("pooled", "mine", {"method": "bm25", "corpus": "pool"})
    mixed = triplets("mixed", "combine", {"filters": {}}, {"triplets": {"path": str(pooled)},
                                                           "triplets1": {"path": str(mined)}})  # fmt: skip
    models = {}
    for name, source in (("mined", mined), ("pooled", pooled), ("mixed", mixed)):
        folder = tmp_path / f"model-{name}"
        folder.mkdir()
        (folder / "hardneg_training.json").write_text(
            json.dumps({"trained_by": "hardneg train", "triplets": str(source)})
        )
        models[name] = folder
    assert spec_reads_corpus(f"dense:{models['mined']}") and spec_reads_corpus(str(models["mixed"]))
    assert not spec_reads_corpus(f"dense:{models['pooled']}") and not spec_reads_corpus(
        str(tmp_path / "nowhere")
    )
    body = _grid(tmp_path, tiny_model_path, tiny_model_path)
    for name, folder in models.items():
        body += f"""
[sources."dense by {name}"]
mine = {{ method = "dense", corpus = "pool", model = "{folder}", num_negatives = 2 }}
[sources."filtered by {name}"]
combine = {{ inputs = ["pool"], filters = {{ max_score = 1e9, scorer = "dense:{folder}" }} }}
[sources."guided by {name}"]
combine = {{ inputs = ["pool"] }}
train = {{ loss = "cached-gist", gist = {{ guide = "{folder}" }} }}
"""
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    reads = {cell.source: cell.corpus_reads for cell in plan.cells if cell.source != "base"}
    for name in ("mined", "mixed"):
        assert reads[f"dense by {name}"] == [f"mine mini-dense by {name}"]
        assert reads[f"filtered by {name}"] == [f"combine mini-filtered by {name}"]
        assert reads[f"guided by {name}"] == [f"train mini-guided by {name}"]
    assert reads["dense by pooled"] == reads["filtered by pooled"] == reads["guided by pooled"] == []
    # a trail that breaks cannot show the model is corpus-free; nor can a model that started from one
    # that learned from the corpus
    manifest_path(pooled).unlink()
    assert spec_reads_corpus(f"dense:{models['pooled']}")
    manifest_path(pooled).write_text(
        json.dumps({"stage": "mine", "settings": {"corpus": "pool"}, "inputs": {}})
    )
    started = tmp_path / "model-started"
    started.mkdir()
    record = {
        "trained_by": "hardneg train",
        "triplets": str(pooled),
        "key": {"settings": {"base_model": str(models["mined"])}},
    }
    (started / "hardneg_training.json").write_text(json.dumps(record))
    assert spec_reads_corpus(str(started)) and not spec_reads_corpus(str(models["pooled"]))
