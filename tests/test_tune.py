"""`hardneg tune`: a dev split carved from the train pairs (the test split never opened), successive
halving over recipes as cached stages, a budget kept, and its outputs (recommendation, a runnable
recipe, the winner's training set)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from helpers import write_topic_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.core.output import PipeConsole
from hardneg.experiment.config import load_experiment
from hardneg.experiment.executors import BUDGET_SPENT, LocalExecutor
from hardneg.experiment.plan import build_plan
from hardneg.settings.tune import TuneSettings, parse_duration
from hardneg.tuning import tune
from hardneg.tuning.search import rung_sizes

OPENED: list[str] = []
WATCHING = False


def _audit(event: str, args: tuple) -> None:
    if WATCHING and event == "open" and args and isinstance(args[0], (str, Path)):
        OPENED.append(str(args[0]))


sys.addaudithook(_audit)


def _settings(data: Path, **extra) -> TuneSettings:
    small = dict(budget="20m", min_dev_queries=4, min_pairs=8, dev_pool_depth=5)
    return TuneSettings(dataset=str(data), **{**small, **extra})


def _config(tmp_path: Path, model: Path) -> Path:
    path = tmp_path / "tune.toml"
    path.write_text(
        f'base_model = "{model}"\n[train]\nbatch_size = 4\neval_steps = 2\nmax_seq_length = 32\n'
        "[evaluation]\nbootstrap_resamples = 200\ntop_k = 10\n"
    )
    return path


def _tune(tmp_path: Path, model: Path, settings: TuneSettings, out: Path, **extra):
    """A tune with the tiny model, quiet unless ``console`` is given."""
    options = {"config": _config(tmp_path, model), "console": _quiet(), "show_progress": False, **extra}
    return tune(settings, out, **options)


def _quiet() -> PipeConsole:
    return PipeConsole(file=open("/dev/null", "w"))  # noqa: SIM115


def test_durations_and_rungs():
    assert parse_duration("45m") == 2700 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    with pytest.raises(ValueError):
        parse_duration("soon")
    settings = TuneSettings(dataset="x", min_pairs=64, reduction_factor=3)
    assert rung_sizes(647, settings) == [72, 216, 647]
    assert rung_sizes(100, settings) == [100]  # too few pairs to halve: one rung


def test_tune_finds_a_recipe_without_opening_the_test_split(tmp_path, tiny_model_path):
    global WATCHING
    data = write_topic_beir(tmp_path / "topics")
    out = tmp_path / "out"
    include = ["bm25", "pool-bm25", "pool-bm25 cached-gist", "dense"]
    OPENED.clear()
    WATCHING = True
    try:
        result = _tune(tmp_path, tiny_model_path, _settings(data, include=include), out)
    finally:
        WATCHING = False
    assert not [p for p in OPENED if p.endswith("test.tsv")], "the tune opened the test split"
    for path in out.rglob("*"):  # no test query's id or text reached any file the tune wrote
        if (
            path.is_file()
            and not path.is_symlink()
            and path.suffix in {".json", ".jsonl", ".tsv", ".md", ".toml"}
        ):
            assert not re.search(r"test-(solar|wind|bread|coffee)-q", path.read_text(errors="ignore")), path

    rec = json.loads((out / "recommendation.json").read_text())
    assert result.winner == rec["winner"] and rec["winner"] in include
    assert [r["recipe"] for r in rec["recipes"]][0] == rec["winner"]
    assert {r["recipe"] for r in rec["recipes"]} == set(include)
    assert rec["rungs"] == [13, 38] and rec["dev_queries"] == 10
    manifests = [  # the rungs' (13 and 38 pairs), not the winner's training set's (48)
        json.loads(p.read_text())["counts"]
        for p in (out / "run" / "stages" / "negatives").glob("*pool-bm25*.manifest.json")
    ]
    pools = [m["pool_documents"] for m in manifests if m["pairs"] in rec["rungs"]]
    assert pools and set(pools) == {38}, manifests  # every train pair's positive, at the first rung too
    # one rung decision: of 4 recipes, ceil(4/3) = 2 reach the last rung, the others are pruned
    assert sorted(r["state"] for r in rec["recipes"]) == ["complete", "complete", "pruned", "pruned"]
    for row in rec["recipes"]:
        assert row["corpus_free"] == row["recipe"].startswith("pool"), row
        assert row["ci"][0] <= row["value"] <= row["ci"][1]
    assert "p_vs_base" in rec["recipes"][0] and rec["base"] is not None
    text = (out / "recommendation.md").read_text()
    assert rec["verdict"] in text and "untuned base" in text
    assert rec["verdict"].startswith(("Use ", "The untuned base model is best"))

    recipe = load_experiment(out / "recipe.toml")  # runnable as it is
    assert recipe.datasets[0].train == str(data) and recipe.datasets[0].sources == [rec["winner"]]
    assert recipe.pairs.max_pairs is None and build_plan(recipe, tmp_path / "check").cells

    from datasets import load_from_disk

    exported = load_from_disk(str(out / "train" / "hf"))
    assert exported.column_names[:3] == ["anchor", "positive", "negative_1"]
    assert len(exported) == 48  # every train pair, the dev queries' included
    import pyarrow.parquet as pq

    assert pq.read_table(out / "train" / "train.parquet").num_rows == 48
    assert (out / "optuna.journal").stat().st_size > 0

    # A rerun replays the cached stages: nothing trains again, the same recommendation comes out.
    lines: list[str] = []

    class Recorder(PipeConsole):
        def print(self, *objects, **kwargs):
            lines.append(" ".join(str(o) for o in objects))

    again = _tune(tmp_path, tiny_model_path, _settings(data, include=include), out, console=Recorder())
    assert not [line for line in lines if ": running" in line], lines
    assert [r["value"] for r in again.recommendation["recipes"] if "value" in r] == [
        r["value"] for r in rec["recipes"] if "value" in r
    ]


def test_a_spent_budget_starts_nothing(tmp_path, tiny_model_path):
    data = write_topic_beir(tmp_path / "topics")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tune-state.json").write_text(json.dumps({"spent_seconds": 1250, "finished": False}))
    result = tune(
        _settings(data, include=["bm25", "pool-bm25"]),
        out,
        config=_config(tmp_path, tiny_model_path),
        console=_quiet(),
        show_progress=False,
    )
    assert result.winner is None and not (out / "run" / "stages" / "train").exists()
    assert result.recommendation["verdict"].startswith("No recipe finished")
    assert {r["state"] for r in result.recommendation["recipes"]} == {"unfunded"}


def test_no_stage_starts_after_the_executor_deadline(tmp_path, tiny_model_path):
    data = write_topic_beir(tmp_path / "topics")
    from hardneg.tuning.candidates import catalog
    from hardneg.tuning.search import Trial, rung_config
    from hardneg.tuning.split import prepare
    from hardneg.tuning.tune import DEFAULT_TEMPLATE

    settings = _settings(data, include=["bm25"])
    prepared = prepare(settings, tmp_path / "out")
    trials = [Trial(c) for c in catalog(settings, DEFAULT_TEMPLATE, True)]
    plan = build_plan(
        rung_config(DEFAULT_TEMPLATE, prepared, trials, 8, settings), tmp_path / "run", fetch=True
    )
    executor = LocalExecutor(plan, _quiet(), False)
    executor.deadline = 0.0
    outcome = executor.run()
    assert not outcome.ran and outcome.failed[plan.stages[0].key] == BUDGET_SPENT
    assert all(key in outcome.failed for key in (s.key for s in plan.stages))


def test_cli_dry_run_and_the_corpus_free_cut(tmp_path):
    data = write_topic_beir(tmp_path / "topics")
    runner = CliRunner()
    args = [
        "tune",
        str(data),
        "-o",
        str(tmp_path / "out"),
        "--min-dev-queries",
        "4",
        "--min-pairs",
        "8",
        "--dry-run",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "bm25: BM25 (reads the corpus)" in result.output and "rung 1:" in result.output
    free = runner.invoke(app, [*args, "--corpus-free"])
    assert free.exit_code == 0, free.output
    listed = [line.split(":")[0].strip() for line in free.output.splitlines() if line.startswith("  ")]
    assert listed and all(name.startswith("pool") for name in listed), listed
    assert not (tmp_path / "out" / "run" / "stages").exists()  # a dry run trains nothing


def test_bad_inputs_fail_on_one_line(tmp_path):
    runner = CliRunner()
    data = write_topic_beir(tmp_path / "topics")
    (data / "qrels" / "train.tsv").rename(data / "qrels" / "other.tsv")
    result = runner.invoke(app, ["tune", str(data), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "train.tsv: no 'train' split to tune on" in result.output
    small = write_topic_beir(tmp_path / "small", per_topic=3)
    result = runner.invoke(app, ["tune", str(small), "-o", str(tmp_path / "out2")])
    assert result.exit_code == 2 and "a dev split of 20% gives 3 (< 20)" in result.output
    result = runner.invoke(app, ["tune", str(data), "--budget", "soon", "-o", str(tmp_path / "o3")])
    assert result.exit_code == 2 and "--budget" in result.output
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    result = runner.invoke(app, ["tune", str(small), "-o", str(notes)])  # the run folder's own check
    assert result.exit_code == 2 and "a file, not a folder" in result.output and notes.read_text() == "mine\n"
    with pytest.raises(HardnegError, match="no candidate 'nope'"):
        tune(
            _settings(write_topic_beir(tmp_path / "t2"), include=["nope"]), tmp_path / "o4", console=_quiet()
        )


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_tune_from_the_cli_on_ray_from_a_pairs_file_without_a_corpus(tmp_path, tiny_model_path):
    pytest.importorskip("ray")
    data = write_topic_beir(tmp_path / "topics")
    corpus = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (data / "corpus.jsonl").open()}
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (data / "queries.jsonl").open()}
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as handle:
        for line in (data / "qrels" / "train.tsv").read_text().splitlines()[1:]:
            qid, doc, _ = line.split("\t")
            pair = {"query_id": qid, "query": queries[qid], "positive_id": doc, "positive": corpus[doc]}
            handle.write(json.dumps(pair) + "\n")
    out = tmp_path / "out"
    args = ["tune", "--pairs", str(pairs), "-o", str(out), "--budget", "20m", "--min-dev-queries", "4"]
    args += [
        "--min-pairs",
        "8",
        "--dev-pool-depth",
        "0",
        "--config",
        str(_config(tmp_path, tiny_model_path)),
    ]
    result = CliRunner().invoke(app, [*args, "--executor", "ray", "--ray-cpus", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "rung 1/2:" in result.output and "budget left" in result.output  # what is tried, what is left
    rec = json.loads((out / "recommendation.json").read_text())
    # no corpus: only the pool recipes, every one corpus-free, scored against the pool of positives
    assert {r["recipe"] for r in rec["recipes"]} == {
        "pool-bm25",
        "pool-bm25 cached-gist",
        "pool-dense-margin",
        "pool-dense-margin cached-gist",
    }
    assert (
        all(r["corpus_free"] for r in rec["recipes"]) and "pool of all pairs' positives" in rec["dev_scoring"]
    )
    assert rec["winner"] is not None and rec["rung_log"][0]["admitted"]
    assert rec["verdict"] in result.output
    recipe = load_experiment(out / "recipe.toml")
    assert recipe.datasets[0].train_split == "all"
    import pyarrow.parquet as pq

    assert pq.read_table(out / "train" / "train.parquet").num_rows == 48


def test_the_clock_is_saved_while_it_runs_and_carries_over_a_kill(tmp_path, monkeypatch):
    import time

    from hardneg.tuning import clock as search

    monkeypatch.setattr(search, "SAVE_EVERY_S", 0.05)
    path = tmp_path / "tune-state.json"
    with search.Clock(path, budget=100):
        time.sleep(0.3)
        saved = json.loads(path.read_text())  # what a SIGKILL now would leave
    assert saved["spent_seconds"] >= 0.1 and not saved["finished"]
    resumed = search.Clock(path, budget=100)
    assert resumed.earlier >= 0.25 and resumed.left <= 100 - 0.25
    resumed.save(finished=True)  # a finished one's time counts too: a larger budget extends it
    assert search.Clock(path, budget=100).earlier >= 0.25


def test_a_rerun_follows_the_saved_plan_and_time_left_buys_another_bracket(tmp_path, tiny_model_path):
    from hardneg.tuning.clock import Clock

    data = write_topic_beir(tmp_path / "topics")
    out = tmp_path / "out"
    settings = _settings(data, include=["bm25", "pool-bm25"])
    tune(settings, out, config=_config(tmp_path, tiny_model_path), console=_quiet(), dry_run=True)
    planned = Clock(out / "tune-state.json", 1).plan
    assert planned["rungs"] == [13, 38] and planned["brackets"] == [[2, 1]]
    # a run of the same settings follows the saved plan; another budget plans anew
    (out / "tune-state.json").write_text(
        json.dumps({"spent_seconds": 0, "plan": {**planned, "brackets": [[1, 1]]}, "finished": True})
    )
    result = tune(
        settings, out, config=_config(tmp_path, tiny_model_path), console=_quiet(), show_progress=False
    )
    log = result.recommendation["rung_log"]
    # the saved first bracket affords one recipe; the time left then buys a second bracket for the other
    assert [(e["bracket"], e["rung"], e["admitted"]) for e in log] == [
        (1, 1, ["bm25"]),
        (1, 2, ["bm25"]),
        (2, 1, ["pool-bm25"]),
        (2, 2, ["pool-bm25"]),
    ]
    assert {r["state"] for r in result.recommendation["recipes"]} == {"complete"}
    tune(
        _settings(data, include=["bm25", "pool-bm25"], budget="25m"),
        out,
        config=_config(tmp_path, tiny_model_path),
        console=_quiet(),
        dry_run=True,
    )
    assert Clock(out / "tune-state.json", 1).plan["brackets"] == [[2, 1]]


def test_a_configured_generator_is_a_candidate_and_corpus_free(tmp_path, tiny_model_path):
    from helpers import FakeLLM

    data = write_topic_beir(tmp_path / "topics")
    config = _config(tmp_path, tiny_model_path)
    with FakeLLM() as server:
        config.write_text(
            config.read_text()
            + "[sources.llm]\n"
            + f'generate = {{ model = "fake-model", base_url = "{server.url}", num_negatives = 2 }}\n'
        )
        result = tune(
            _settings(data, include=["llm", "llm cached-gist", "bm25"]),
            tmp_path / "out",
            config=config,
            console=_quiet(),
            show_progress=False,
        )
    rows = {r["recipe"]: r for r in result.recommendation["recipes"]}
    assert set(rows) == {"llm", "llm cached-gist", "bm25"}
    assert (
        rows["llm"]["corpus_free"]
        and rows["llm cached-gist"]["corpus_free"]
        and not rows["bm25"]["corpus_free"]
    )
    assert all("value" in row for row in rows.values())  # each generated, trained and scored at rung 1
    assert server.requests  # the generator was asked
