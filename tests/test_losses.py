"""`train`'s losses: each built with its options and trained a few steps, options of another loss
refused, margin-MSE's scores (written by combine's ``score_with``, checked before training), the
loss in the manifest, the report and (off its default only) the keys."""

import json
import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import triplet
from pydantic import ValidationError
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.combining.combine import combine, combine_files
from hardneg.combining.filtering import write_scores
from hardneg.core.errors import DataError
from hardneg.data.records import Negative, Triplet, read_triplets, write_records
from hardneg.settings.base import key_settings
from hardneg.settings.combine import CombineSettings
from hardneg.settings.training import TrainSettings
from hardneg.training.bi_encoder import _cache_key, example_columns, train_bi_encoder
from hardneg.training.losses import build_loss, describe

runner = CliRunner()


def small(**overrides) -> TrainSettings:
    settings = dict(
        num_negatives=2,
        batch_size=4,
        eval_steps=2,
        max_steps=2,
        max_seq_length=32,
        learning_rate=1e-3,
        patience=None,
        device="cpu",
    )
    return TrainSettings(**{**settings, **overrides})


def scored(t: Triplet, scorer: str | None = "cross-encoder:teacher") -> Triplet:
    """``t`` as combine's score_with leaves it: the positive at 5, negatives at 1, 2, ..."""
    negatives = [n.model_copy(update={"score": float(i + 1)}) for i, n in enumerate(t.negatives)]
    return t.model_copy(update={"positive_score": 5.0, "scorer": scorer, "negatives": negatives})


def write_triplets(path, count=12, negatives=2, scores=False):
    triplets = [triplet(q, 0, negatives) for q in range(count)]
    write_records(path, [scored(t) for t in triplets] if scores else triplets)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


# --- the loss built for each setting ----------------------------------------------------------


def test_mnrl_takes_the_library_defaults_and_its_options(tiny, tiny_model_path):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    default = build_loss(tiny, TrainSettings(base_model=str(tiny_model_path)))
    library = MultipleNegativesRankingLoss(tiny)
    assert (
        type(default) is MultipleNegativesRankingLoss
        and default.get_config_dict() == library.get_config_dict()
    )
    options = {
        "directions": ("query_to_doc", "doc_to_query"),
        "partition_mode": "per_direction",
        "hardness_mode": "hard_negatives",
        "hardness_strength": 5.0,
    }
    loss = build_loss(tiny, TrainSettings(mnrl=options), gather=True)
    assert {k: getattr(loss, k) for k in options} == options and loss.gather_across_devices is True


@pytest.mark.parametrize("name", ["gist", "cached-gist"])
def test_gist_gets_a_frozen_guide_the_base_model_by_default(tiny_model_path, name):
    import torch
    from sentence_transformers.sentence_transformer.losses import CachedGISTEmbedLoss, GISTEmbedLoss

    from hardneg.core.models import load_sentence_transformer

    tiny = load_sentence_transformer(str(tiny_model_path), 32)  # as training loads it
    gist = {"margin_strategy": "relative", "margin": 0.05} | (
        {"mini_batch_size": 2} if name == "cached-gist" else {}
    )
    config = TrainSettings(
        base_model=str(tiny_model_path), loss=name, num_negatives=1, gist=gist, max_seq_length=32
    )
    loss = build_loss(tiny, config, device="cpu")
    assert type(loss) is {"gist": GISTEmbedLoss, "cached-gist": CachedGISTEmbedLoss}[name]
    assert (loss.margin_strategy, loss.margin, loss.gather_across_devices) == ("relative", 0.05, False)
    assert name == "gist" or loss.mini_batch_size == 2
    guide = loss.guide
    assert guide is not tiny and not guide.training and not any(p.requires_grad for p in guide.parameters())
    assert guide.max_seq_length == 32 and not loss.must_retokenize  # the same tokens as the trained model
    assert all(torch.equal(a, b) for a, b in zip(guide.parameters(), tiny.parameters()))  # the base model
    assert describe(config) == {"name": name, "guide": str(tiny_model_path), **gist}


def test_a_guide_is_named_like_a_base_model(tiny, tiny_model_path, monkeypatch):
    """An alias, a hub name or a path, through the loader base_model goes through."""
    import hardneg.training.losses as losses

    asked = []
    monkeypatch.setattr(losses, "load_sentence_transformer", lambda name, **kw: asked.append(name) or tiny)
    config = TrainSettings(loss="gist", num_negatives=1, gist={"guide": "minilm-l6"})
    build_loss(tiny, config)
    assert asked == ["minilm-l6"] and describe(config)["guide"] == "minilm-l6"


def test_margin_mse_learns_the_margin_to_each_negative(tiny):
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    loss = build_loss(tiny, TrainSettings(loss="margin-mse"), gather=True)
    assert type(loss) is MarginMSELoss
    columns = example_columns(
        [scored(triplet(0, negatives=3)), scored(triplet(1, negatives=1))], 3, "pad", {}, True
    )
    assert columns["label"] == [[4.0, 3.0, 2.0], [4.0, 4.0, 4.0]]  # a padded negative repeats its margin
    assert list(columns)[-1] == "label" and "label" not in example_columns([triplet(0)], 2, "pad", {})


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"gist": {"margin": 0.1}},
            "gist.margin (--margin): an option of loss 'gist' or 'cached-gist', not 'mnrl'",
        ),
        (
            {"loss": "margin-mse", "mnrl": {"hardness_mode": "hard_negatives", "hardness_strength": 5}},
            "mnrl.hardness_mode (--hardness-mode), mnrl.hardness_strength (--hardness-strength): "
            "an option of loss 'mnrl'",
        ),
        (
            {"loss": "gist", "num_negatives": 1, "gist": {"mini_batch_size": 8}},
            "an option of loss 'cached-gist', not 'gist'",
        ),
        ({"loss": "gist"}, "loss 'gist' takes at most one negative per example"),
        ({"loss": "margin-mse", "num_negatives": 0}, "num_negatives >= 1"),
        (
            {"mnrl": {"hardness_mode": "in_batch_negatives"}},
            "hardness_mode and a hardness_strength above 0 go together",
        ),
        ({"mnrl": {"directions": ["doc_to_query"]}}, "must include 'query_to_doc'"),
        (
            {"mnrl": {"directions": ["query_to_doc", "doc_to_doc"], "partition_mode": "per_direction"}},
            "'per_direction' takes",
        ),
        ({"loss": "infonce"}, "Input should be 'mnrl', 'gist', 'cached-gist' or 'margin-mse'"),
    ],
)
def test_options_of_another_loss_and_bad_combinations_are_refused(settings, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        TrainSettings(**settings)


def test_cli_sets_each_loss_and_refuses_another_loss_option_in_one_line(tmp_path):
    result = runner.invoke(app, ["train", "-t", "t.jsonl", "-o", str(tmp_path / "m"), "--margin", "0.1"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert (
        "error: gist.margin (--margin): an option of loss 'gist' or 'cached-gist', not 'mnrl'"
        in result.stderr
    )


def test_the_cli_flags_reach_the_settings(monkeypatch, tmp_path):
    import hardneg.stages as stages

    seen = []
    monkeypatch.setattr(stages, "run_kind", lambda kind, config, *a, **k: seen.append(config) or 1 / 0)
    args = [
        "train",
        "-t",
        "t",
        "-o",
        "m",
        "--loss",
        "cached-gist",
        "--guide",
        "minilm-l6",
        "--margin",
        "0.1",
        "--margin-strategy",
        "relative",
        "--mini-batch-size",
        "4",
    ]
    runner.invoke(app, args)
    runner.invoke(
        app,
        [
            "train",
            "-t",
            "t",
            "-o",
            "m",
            "--directions",
            "query_to_doc,doc_to_query",
            "--hardness-mode",
            "all_negatives",
            "--hardness-strength",
            "9",
        ],
    )
    gist, mnrl = seen
    assert gist.loss == "cached-gist" and gist.gist.model_dump() == {
        "guide": "minilm-l6",
        "margin_strategy": "relative",
        "margin": 0.1,
        "mini_batch_size": 4,
    }
    assert mnrl.loss == "mnrl" and mnrl.mnrl.directions == ("query_to_doc", "doc_to_query")
    assert (mnrl.mnrl.hardness_mode, mnrl.mnrl.hardness_strength) == ("all_negatives", 9.0)


def test_the_default_loss_changes_no_key_and_another_enters_off_its_default(tmp_path):
    from hardneg.settings.experiment import GridTrainSettings
    from hardneg.stages.training import Train

    explicit = TrainSettings(
        max_steps=3, loss="mnrl", mnrl={"directions": ["query_to_doc"]}, gist={"margin": 0.0}
    )
    assert Train().key_settings(explicit) == {"max_steps": 3} == key_settings(TrainSettings(max_steps=3))
    assert key_settings(GridTrainSettings().for_model("minilm-l6")) == {"skip_empty": True}  # a grid's stage
    cached = TrainSettings(loss="cached-gist", gist={"margin": 0.1, "mini_batch_size": 4})
    assert key_settings(cached) == {"loss": "cached-gist", "gist": {"margin": 0.1}}  # mini-batches: runtime
    # A finished model's provenance key (reuse outside a grid) holds no loss at the default either.
    path = write_triplets(tmp_path / "t.jsonl")
    assert not {"loss", "mnrl", "gist"} & set(_cache_key(path, TrainSettings())["settings"])
    assert _cache_key(path, cached)["settings"]["gist"] == {"margin": 0.1}
    assert (
        Train().model(cached) == "minilm-l6"
        and Train().model(TrainSettings(loss="gist", num_negatives=1, gist={"guide": "g"}))
        == "minilm-l6; guide g"
    )


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "mnrl": {
                "hardness_mode": "all_negatives",
                "hardness_strength": 5.0,
                "directions": ["query_to_doc", "doc_to_query"],
            }
        },
        {"loss": "gist", "num_negatives": 1, "gist": {"margin": 0.05}},
        {"loss": "cached-gist", "gist": {"mini_batch_size": 3}},
        {"loss": "margin-mse"},
    ],
    ids=["mnrl", "mnrl-options", "gist", "cached-gist", "margin-mse"],
)
def test_each_loss_trains_a_few_steps_and_is_recorded(tmp_path, tiny_model_path, settings):
    config = small(base_model=str(tiny_model_path), **settings)
    triplets = write_triplets(tmp_path / "t.jsonl", scores=config.loss == "margin-mse")
    result = train_bi_encoder(triplets, config, tmp_path / "model", False)
    assert result.counts["steps"] == 2 and (tmp_path / "model" / "model.safetensors").exists()
    losses = [entry["loss"] for entry in result.log if "loss" in entry] + [
        result.counts["best_validation_loss"]
    ]
    assert losses and all(np.isfinite(losses))
    expected = describe(config, "cross-encoder:teacher" if config.loss == "margin-mse" else None)
    assert result.counts["loss"] == expected and expected["name"] == config.loss
    assert (
        json.loads((tmp_path / "model" / "hardneg_training.json").read_text())["counts"]["loss"] == expected
    )
    assert train_bi_encoder(triplets, config, tmp_path / "model", False).reused


def test_the_train_stage_s_manifest_records_the_loss(tmp_path, tiny_model_path):
    from hardneg.stages import run_kind

    config = small(base_model=str(tiny_model_path), loss="cached-gist", gist={"margin": 0.05})
    triplets = write_triplets(tmp_path / "t.jsonl")
    run_kind("train", config.model_dump(), {"triplets": triplets}, tmp_path / "model", show_progress=False)
    manifest = json.loads((tmp_path / "model.manifest.json").read_text())
    assert (
        manifest["counts"]["loss"] == describe(config, None)
        and manifest["counts"]["loss"]["name"] == "cached-gist"
    )
    assert manifest["settings"]["loss"] == "cached-gist" and manifest["settings"]["gist"]["margin"] == 0.05


def test_margin_mse_on_unscored_triplets_fails_before_training_in_one_line(tmp_path):
    path = write_triplets(tmp_path / "t.jsonl")
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", "-t", str(path), "-o", str(out), "--loss", "margin-mse", "-q"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and not out.exists()
    assert (
        f"error: {path}:1: field 'positive_score': missing (loss 'margin-mse' learns from scores;"
        in result.stderr
    )
    assert "--score-with" in result.stderr
    lines = [scored(t) for t in read_triplets(path)]
    lines[3] = lines[3].model_copy(
        update={"negatives": [lines[3].negatives[0], Negative(text="x", source="bm25")]}
    )
    lines[5] = lines[5].model_copy(update={"scorer": "dense:another"})
    write_records(path, lines)
    with pytest.raises(DataError, match=r"t.jsonl:4: field 'negatives.1.score': missing"):
        train_bi_encoder(path, small(loss="margin-mse"), out, False)
    with pytest.raises(DataError, match=r"t.jsonl:4: field 'negatives.1.score'"):
        train_bi_encoder(path, small(loss="margin-mse", num_negatives=2), out, False)
    train_negatives_1 = small(loss="margin-mse", num_negatives=1)  # the unscored negative is not trained on
    with pytest.raises(
        DataError,
        match=r"t.jsonl:6: field 'scorer': 'dense:another', but line 1 was scored by "
        r"'cross-encoder:teacher'",
    ):
        train_bi_encoder(path, train_negatives_1, out, False)
    assert not out.exists()


# --- combine's score_with ---------------------------------------------------------------------


class FixedScorer:
    """The positive scores 5; a negative the number at its end."""

    def score(self, queries, passages):
        return np.array([5.0 if p.startswith("positive") else float(p.split()[-1]) for p in passages])


def plain(q: int, source: str = "bm25", scores=(1, 2)) -> Triplet:
    negatives = [Negative(text=f"{source} passage {q} {s}", source=source, score=0.5) for s in scores]
    return Triplet(
        query_id=f"q{q}",
        query=f"query {q}",
        positive_id=f"d{q}",
        positive=f"positive {q}",
        negatives=negatives,
    )


def test_score_with_writes_each_negative_and_the_positive_score(tmp_path, monkeypatch):
    import hardneg.combining.filtering as filtering

    asked = []
    monkeypatch.setattr(
        filtering, "load_text_scorer", lambda spec, *a, **k: asked.append(spec) or FixedScorer()
    )
    source = tmp_path / "in.jsonl"
    write_records(source, [plain(q, scores=(1, 2, 3)) for q in range(3)])
    config = CombineSettings(score_with="cross-encoder:teacher", max_negatives=2)
    result = combine_files([source], config, tmp_path / "out.jsonl", show_progress=False)
    written = read_triplets(tmp_path / "out.jsonl")
    assert asked == ["cross-encoder:teacher"] and result.counts["negatives_scored"] == 6  # after the cap
    assert all(t.positive_score == 5.0 and t.scorer == "cross-encoder:teacher" for t in written)
    assert [n.score for n in written[0].negatives] == [1.0, 2.0]
    line = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert list(line) == [
        "query_id",
        "query",
        "positive_id",
        "positive",
        "positive_score",
        "scorer",
        "negatives",
    ]
    with pytest.raises(ValidationError, match="score_with must be 'dense:MODEL' or 'cross-encoder:MODEL'"):
        CombineSettings(score_with="teacher")


def test_unscored_triplets_are_written_as_before(tmp_path):
    path = tmp_path / "t.jsonl"
    write_records(path, [plain(0)])
    before = (
        '{"query_id": "q0", "query": "query 0", "positive_id": "d0", "positive": "positive 0", "negatives": '
        '[{"text": "bm25 passage 0 1", "source": "bm25", "doc_id": null, "score": 0.5, "rank": null}, '
        '{"text": "bm25 passage 0 2", "source": "bm25", "doc_id": null, "score": 0.5, "rank": null}]}\n'
    )
    assert path.read_text() == before
    combine_files([path], CombineSettings(), tmp_path / "again.jsonl", show_progress=False)
    assert (tmp_path / "again.jsonl").read_text() == before


def test_combining_keeps_a_scorer_only_when_one_scored_every_negative():
    teacher = [
        write_scores([plain(q)], "dense:teacher", Counter(), scorer=FixedScorer())[0] for q in range(2)
    ]
    other = [
        write_scores([plain(q, "llm:a")], "dense:other", Counter(), scorer=FixedScorer())[0] for q in range(2)
    ]
    [kept, _] = combine([teacher], CombineSettings()).triplets
    assert (kept.scorer, kept.positive_score) == ("dense:teacher", 5.0)
    for mixed in ([teacher, other], [teacher, [plain(0), plain(1)]]):
        assert all(
            t.scorer is None and t.positive_score is None for t in combine(mixed, CombineSettings()).triplets
        )


def test_combine_cli_scores_with_a_bi_encoder(tmp_path, tiny_model_path):
    source = tmp_path / "in.jsonl"
    write_records(source, [plain(q) for q in range(3)])
    output = tmp_path / "out.jsonl"
    spec = f"dense:{tiny_model_path}"
    result = runner.invoke(app, ["combine", str(source), "-o", str(output), "--score-with", spec, "-q"])
    assert result.exit_code == 0, result.output
    written = read_triplets(output)
    assert all(t.scorer == spec and -1 <= t.positive_score <= 1 for t in written)
    assert all(n.score != 0.5 for t in written for n in t.negatives)  # the miner's scores are replaced


@pytest.mark.slow
def test_score_with_minilm_scores_the_positive_above_unrelated_negatives(tmp_path):
    """The installed all-MiniLM-L6-v2 on an easy case, then a few margin-MSE steps on its scores."""
    topics = [
        "solar panels make electricity from sunlight",
        "bread dough rises with yeast in the oven",
        "wind turbines turn air into power",
        "coffee beans are roasted and brewed",
        "bees make honey from flower nectar",
        "trains run on steel rails between cities",
    ]
    triplets = [
        Triplet(
            query_id=f"q{i}",
            query=f"how do {topic.split()[0]} work",
            positive_id=f"d{i}",
            positive=topic,
            negatives=[Negative(text=other, source="bm25") for other in topics if other != topic][:3],
        )
        for i, topic in enumerate(topics)
    ]
    source = tmp_path / "in.jsonl"
    write_records(source, triplets)
    output = tmp_path / "scored.jsonl"
    combine_files([source], CombineSettings(score_with="dense:minilm-l6"), output, show_progress=False)
    written = read_triplets(output)
    assert all(t.positive_score > np.mean([n.score for n in t.negatives]) for t in written)
    assert all(t.positive_score > max(n.score for n in t.negatives) for t in written)
    config = small(loss="margin-mse", batch_size=2, max_steps=2, validation_fraction=0.3)
    result = train_bi_encoder(output, config, tmp_path / "model", False)
    assert result.counts["loss"] == {"name": "margin-mse", "scorer": "dense:minilm-l6"}


# --- the report -------------------------------------------------------------------------------


def test_the_report_names_each_models_loss(tmp_path):
    from hardneg.reporting.sections import loss_text, training_section

    counts = {"triplets": 4, "steps": 2, "start_validation_loss": 1.0, "best_validation_loss": 0.5}
    for name, loss in (("new", {"name": "gist", "guide": "minilm-l6"}), ("old", None)):
        (tmp_path / name).mkdir()
        recorded = {**counts, "loss": loss} if loss else counts  # a model trained before losses were recorded
        (tmp_path / name / "hardneg_training.json").write_text(json.dumps({"counts": recorded}))
    cells = [SimpleNamespace(model=name, train="scifact", source=name, label=name) for name in ("new", "old")]
    lines, summary = training_section(tmp_path, SimpleNamespace(cells=cells))
    assert summary["scifact/new"]["loss"] == {"name": "gist", "guide": "minilm-l6"}
    assert summary["scifact/old"]["loss"] == {"name": "mnrl"}
    assert "| scifact | new | gist (guide: minilm-l6) | 4 |" in lines[2] and "| old | mnrl | 4 |" in lines[3]
    assert loss_text({"name": "margin-mse", "scorer": "dense:x"}) == "margin-mse (scores: dense:x)"
    assert (
        loss_text({"name": "mnrl", "hardness_mode": "hard_negatives"})
        == "mnrl (hardness_mode hard_negatives)"
    )


# --- several processes ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("torchrun")
def test_gist_in_two_processes_gathers_and_matches_one_process(tmp_path):
    """The runner's ``processes = 2`` (torchrun, the settings through its job file): GISTEmbedLoss
    gathers every process's passages, so each step's loss is the one-process run's. MiniLM without
    dropout, so the runs differ only by float rounding (as in test_train_distributed.py)."""
    import shutil

    from hardneg.core.models import resolve_model
    from hardneg.stages.base import RunContext, StageCall
    from hardneg.stages.training import Train

    model = tmp_path / "no-dropout"
    shutil.copytree(resolve_model("minilm-l6"), model)
    settings = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(
        json.dumps({**settings, **{k: 0.0 for k in settings if "dropout" in k}})
    )
    triplets = tmp_path / "t.jsonl"
    write_records(triplets, [triplet(q) for q in range(42)])
    config = small(
        base_model=str(model), loss="gist", num_negatives=1, max_steps=3, gist={"margin_strategy": "relative"}
    )
    one = train_bi_encoder(triplets, config, tmp_path / "one", False)
    two = config.model_copy(update={"processes": 2})
    call = StageCall(
        config=two,
        inputs={"triplets": [triplets]},
        output=tmp_path / "two",
        label="gist",
        show_progress=False,
        context=RunContext(),
    )
    counts = Train().run(call).counts
    assert counts["world_size"] == 2 and counts["loss"] == one.counts["loss"] == describe(config)
    log = json.loads((tmp_path / "two" / "hardneg_training.json").read_text())["log"]
    steps = [entry["loss"] for entry in log if "loss" in entry]
    assert steps[0] > 0.05  # not an easy batch whose loss is ~0 whatever the processes see
    assert steps == pytest.approx([entry["loss"] for entry in one.log if "loss" in entry], rel=1e-4, abs=1e-6)


def test_a_grid_s_mnrl_options_reach_each_train_stage_and_a_source_s_merge_with_them(
    tmp_path, tiny_model_path
):
    from helpers import mini_grid, write_config

    from hardneg.experiment import load_experiment, plan_experiment

    body = mini_grid(tmp_path, "mnrl", tiny_model_path)
    body += """
[train.mnrl]
hardness_mode = "hard_negatives"
hardness_strength = 5
[sources.bm25]
mine = { method = "bm25", num_negatives = 2 }
[sources."bm25 harder"]
combine = { inputs = ["bm25"] }
train = { mnrl = { hardness_strength = 9, directions = ["query_to_doc", "doc_to_query"] } }
"""
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    trains = {s.label: s for s in plan.stages if s.kind == "train"}
    grid, source = trains["mini-bm25"].config["mnrl"], trains["mini-bm25 harder"].config["mnrl"]
    assert (grid["hardness_mode"], grid["hardness_strength"], grid["directions"]) == (
        "hard_negatives", 5.0, ["query_to_doc"]
    )  # fmt: skip
    assert (source["hardness_mode"], source["hardness_strength"]) == ("hard_negatives", 9.0)
    assert source["directions"] == ["query_to_doc", "doc_to_query"]
    assert trains["mini-bm25"].key != trains["mini-bm25 harder"].key
