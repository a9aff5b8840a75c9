"""`hardneg run`: config errors, the full grid on tiny models, caching, partial reruns, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FakeLLM, grid_config, mini_grid, shared_dataset, write_config
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.stages.training import Train

runner = CliRunner()


MINIMAL = """
name = "t"
[[datasets]]
train = "scifact"
[pairs]
[sources.bm25]
mine = { method = "bm25" }
"""


@pytest.mark.parametrize(
    "edit, message",
    [
        (("num_negatives", "num_negatves"), "sources.bm25.mine.num_negatves: unknown key"),
        (('method = "bm25"', 'method = "bm52"'), "sources.bm25.mine.method: Input should be"),
        (("[pairs]", "[pairs]\nmax_pairs = -1"), "pairs.max_pairs: Input should be greater than 0"),
        (("[pairs]", "[pairs]\ndataset = 'x'"), "pairs.dataset: set by [[datasets]]"),
        (
            ("[pairs]", "[train]\nbase_model = 'x'\n[pairs]"),
            "train.base_model: set the top-level 'base_model'",
        ),
        (
            ('mine = { method = "bm25", num_negatives = 2 }', "label = 'b'"),
            "sources.bm25: needs exactly one of",
        ),
        (('name = "t"', "name = 't'\nbaseline_source = 'nope'"), "baseline_source: no source 'nope'"),
        (('name = "t"', "name = "), "not valid TOML"),
        (("[sources.bm25]", "[sources.base]"), "sources.base: 'base' is the untuned model's row"),
        (
            (
                "[pairs]",
                "[pairs]\n[sources.f]\ncombine = { inputs = ['bm25'], filters = { min_score = 0.1 } }",
            ),
            "sources.f.combine: filters need a scorer",
        ),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path, edit, message):
    body = MINIMAL.replace('mine = { method = "bm25" }', 'mine = { method = "bm25", num_negatives = 2 }')
    path = write_config(tmp_path, body.replace(*edit))
    with pytest.raises(HardnegError) as error:
        load_experiment(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_combinations_must_name_sources_and_not_loop(tmp_path):
    loop = MINIMAL + '[sources.a]\ncombine = { inputs = ["b"] }\n[sources.b]\ncombine = { inputs = ["a"] }\n'
    with pytest.raises(HardnegError, match="combinations form a cycle: a -> b -> a"):
        load_experiment(write_config(tmp_path, loop))
    missing = MINIMAL + '[sources.a]\ncombine = { inputs = ["llm"] }\n'
    with pytest.raises(HardnegError, match=r"sources.a.combine.inputs: no source 'llm'"):
        load_experiment(write_config(tmp_path, missing))


def test_set_overrides_dotted_keys(tmp_path):
    config = load_experiment(
        write_config(tmp_path, MINIMAL), {"pairs.max_pairs": 5, "train.learning_rate": 1e-4}
    )
    assert config.pairs.max_pairs == 5 and config.train.learning_rate == 1e-4
    with pytest.raises(HardnegError, match="name is not a table"):
        load_experiment(write_config(tmp_path, MINIMAL), {"name.x": 1})
    # a bad value given on the command line is named as --set, so nobody looks for it in the file
    with pytest.raises(HardnegError, match=r"exp.toml: --set train.epochs: Input should be a valid number"):
        load_experiment(write_config(tmp_path, MINIMAL), {"train.epochs": "zero"})
    with pytest.raises(HardnegError, match=r"exp.toml: train.epochs: Input should be a valid number"):
        load_experiment(
            write_config(tmp_path, MINIMAL + "[train]\nepochs = 'zero'\n"), {"pairs.max_pairs": 5}
        )


def test_the_grid_runs_caches_reruns_only_what_changed_and_reports(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        run_dir = tmp_path / "run"
        first = run_experiment(config, run_dir, show_progress=False)
        kinds = [stage.kind for stage in first.plan.stages]
        assert (
            kinds.count("train") == 5
            and kinds.count("evaluate") == 6
            and kinds.count("train-cross-encoder") == 1
        )
        assert len(first.ran) == len(first.plan.stages) and not first.reused

        results = json.loads((run_dir / "results.json").read_text())
        rows = {row["source"]: row for row in results["rows"]}
        assert list(rows) == ["base", "bm25", "ce", "llm", "llm+bm25", "llm filtered"]
        cell = rows["llm"]["cells"]["mini"]["metrics"]["ndcg@10"]
        assert cell["ci"][0] <= cell["value"] <= cell["ci"][1]
        assert cell["vs_base"]["reference"] == "base" and cell["vs_baseline"]["reference"] == "bm25"
        assert "vs_baseline" not in rows["bm25"]["cells"]["mini"]["metrics"]["ndcg@10"]
        markdown = (run_dir / "results.md").read_text()
        delivered = results["delivery"]["mini/mini-llm"]
        assert (
            delivered["requested"] == delivered["delivered"] > 0
            and delivered["usable"] <= delivered["delivered"]
        )
        assert "## What each generator delivered" in markdown
        assert (
            "| base (" in markdown
            and "How hard are the negatives?" in markdown
            and "pooled corpus" in markdown
        )
        pool_file = next(
            p for p in (run_dir / "stages" / "pools").glob("*.json") if ".manifest" not in p.name
        )
        pool = json.loads(pool_file.read_text())
        for kind in ("pools", "evaluations", "audits", "negatives", "pairs"):  # every stage leaves a manifest
            outputs = [
                p
                for p in (run_dir / "stages" / kind).glob("*.json*")
                if ".manifest" not in p.name and not p.name.endswith(".responses.jsonl")
            ]
            assert outputs and all(p.with_name(p.name + ".manifest.json").exists() for p in outputs), kind
        assert f"- mini: 2 test queries, {len(pool['documents'])} documents" in markdown
        assert len((run_dir / "results.csv").read_text().splitlines()) == 1 + 6 * 3
        for png in ("results-ndcg_10.png", "results-recall_100.png", "audit-mini.png"):
            assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"

        again = run_experiment(config, run_dir, show_progress=False)
        assert again.ran == [] and len(again.reused) == len(first.plan.stages)

        changed = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path, learning_rate=1e-4)
        third = run_experiment(changed, run_dir, show_progress=False)
        # every fine-tuned model and its evaluation; not the base row, negatives or audits
        assert {s.kind for s in third.ran} == {"train", "evaluate"} and len(third.ran) == 5 + 5

        asked = len(server.requests)
        more = {"sources.llm.generate.max_attempts": 4}
        fourth = run_experiment(changed, run_dir, show_progress=False, overrides=more)
        assert len(server.requests) == asked  # the LLM stage reran, from its stored answers
        rerun = {s.label for s in fourth.ran if s.kind in ("mine", "generate", "combine")}
        assert rerun == {"mini-llm", "mini-llm+bm25", "mini-llm filtered"}

        # How fast or where a stage runs is not part of its key; neither are the data files' times,
        # nor the run folder's spelling; and a rerun may start from the run folder's copy of the config.
        for path in (tmp_path / "mini").rglob("*.*"):
            path.touch()
        fast = {**more, "sources.llm.generate.concurrency": 8, "train.device": "cpu"}
        fifth = run_experiment(changed, run_dir.resolve(), show_progress=False, overrides=fast)
        assert fifth.ran == []
    assert run_experiment(run_dir / "config.toml", run_dir, show_progress=False, overrides=more).ran == []


def test_an_interrupted_run_resumes_with_the_stages_it_finished(
    tmp_path, tiny_model_path, tiny_cross_encoder_path, monkeypatch
):
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        run_dir = tmp_path / "run"
        trained = []
        real = Train.run

        def crash_on_third(self, call):
            if len(trained) == 2:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C
            real(self, call)
            trained.append(call.label)

        monkeypatch.setattr(Train, "run", crash_on_third)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, run_dir, show_progress=False)
        assert not (run_dir / "results.md").exists()
        monkeypatch.setattr(Train, "run", real)
        finished = {s.key for s in run_experiment(config, run_dir, dry_run=True, show_progress=False).reused}
        second = run_experiment(config, run_dir, show_progress=False)
    assert set(trained) <= {s.label for s in second.reused if s.kind == "train"}
    # nothing finished before the crash runs again; the rows it had not reached do
    assert finished and not finished & {s.key for s in second.ran}
    assert {s.kind for s in second.ran} >= {"train", "evaluate", "audit"}
    assert (run_dir / "results.md").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(
    tmp_path, tiny_model_path, tiny_cross_encoder_path, monkeypatch
):
    import hardneg.data.registry

    def no_loading(*args, **kwargs):
        raise AssertionError("a dry run counts lines; it never loads a corpus")

    monkeypatch.setattr(hardneg.data.registry, "load_dataset", no_loading)
    monkeypatch.setattr("hardneg.stages.resources.usable_cpus", lambda: 8)
    monkeypatch.setenv("COLUMNS", "300")
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        result = runner.invoke(app, ["run", str(config), "--dry-run", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "to run" in text and "cached" not in text and "rough total on this machine (8 CPU cores)" in text
    assert (
        "critical path" in text and "fake-model @ http://127.0.0.1:" in text
    )  # the generator and its endpoint
    assert "output of train mini-bm25" in text and "output of train-cross-encoder mini-ce" in text
    assert "1 CPU" in text and "GB" in text
    assert not (tmp_path / "run").exists()
    assert len(server.requests) == 0


def test_report_rebuilds_from_the_run_folder_and_refuses_other_folders(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        run_experiment(config, tmp_path / "run", show_progress=False)
    (tmp_path / "run" / "results.md").unlink()
    result = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "results.md").exists() and "nDCG@10" in result.output
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no plan.json" in result.output
    # A bigger experiment over the same folder (a study run in phases): its report counts what is
    # missing, runs nothing, and leaves the run's own report alone.
    bigger = config.with_name("bigger.toml")
    extra = '[sources.bm25-more]\nmine = { method = "bm25", num_negatives = 1 }\n'
    bigger.write_text(config.read_text() + extra)
    before = (tmp_path / "run" / "results.md").read_text()
    out = tmp_path / "whole"
    result = runner.invoke(app, ["report", str(tmp_path / "run"), "--config", str(bigger), "-o", str(out)])
    assert result.exit_code == 0, result.output
    whole = (out / "results.md").read_text()
    assert "not run yet: 1 evaluations (rerun `hardneg run` to finish): bm25-more (1)" in whole
    assert (out / "results-ndcg_10.png").exists()
    assert {r["source"] for r in json.loads((out / "results.json").read_text())["rows"]} == {
        r["source"] for r in json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    }
    assert (tmp_path / "run" / "results.md").read_text() == before
    assert not list((tmp_path / "run" / "stages").rglob("*bm25-more*"))
    nowhere = runner.invoke(
        app, ["report", str(tmp_path / "nowhere"), "-c", str(bigger), "-o", str(tmp_path / "o")]
    )
    assert nowhere.exit_code == 2 and "nowhere: no such run folder" in nowhere.output
    assert not (tmp_path / "o").exists()  # nothing written for a mistyped folder


def test_bundled_configs_plan_without_running(tmp_path):
    """paper.toml needs the hub and servers: its dry run must still plan every cell."""
    from hardneg.cli.run import bundled_config

    for name, models in (("paper", 17), ("quickstart", 4), ("offline", 20), ("study", 58)):
        config = load_experiment(bundled_config(name))
        plan = plan_experiment(config, tmp_path / name)
        assert sum(s.kind == "train" for s in plan.stages) == models
    repository_copy = Path(__file__).resolve().parents[1] / "configs" / "paper.toml"
    assert repository_copy.resolve() == bundled_config("paper").resolve()
    result = runner.invoke(app, ["run", str(bundled_config("paper")), "--dry-run", "-o", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "unknown" in result.output and "232 stages to run" in " ".join(result.output.split())


def test_quickstart_dry_run_plans_the_readme_table(tmp_path):
    shared_dataset("scifact")
    result = runner.invoke(app, ["quickstart", "--dry-run", "-o", str(tmp_path / "q")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "20 of 20 stages to run" in text
        and "32 pairs" in text
        and "not the study's MS MARCO cross-encoder" in text
    )


def test_a_failed_cell_does_not_stop_the_others(
    tmp_path, tiny_model_path, tiny_cross_encoder_path, monkeypatch
):
    real = Train.run

    def refuse_llm(self, call):
        if call.label == "mini-llm":
            raise HardnegError("too few validation examples (1) for batches")
        real(self, call)

    monkeypatch.setattr(Train, "run", refuse_llm)
    import hardneg.combining.filtering

    loads = []
    real_load = hardneg.combining.filtering.load_text_scorer
    monkeypatch.setattr(
        hardneg.combining.filtering,
        "load_text_scorer",
        lambda *a, **k: loads.append(a[0]) or real_load(*a, **k),
    )
    with FakeLLM() as server:
        config = grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path)
        with pytest.raises(
            HardnegError, match=r"2 of \d+ stages did not finish .* first: train mini-llm: too few"
        ):
            run_experiment(config, tmp_path / "run", show_progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [row["source"] for row in results["rows"]] == ["base", "bm25", "ce", "llm+bm25", "llm filtered"]
    assert len(results["missing"]) == 1
    assert len(loads) == 2  # one for the filter, one shared by the 4 audits
    # the report says which stage failed and why, not "not run yet": a rerun would fail the same way
    (llm,) = [m for m in results["missing_by_row"] if m["source"] == "llm"]
    assert llm["failed"] == "train mini-llm: too few validation examples (1) for batches"
    assert llm["failed_evaluations"] == 1 and llm["evaluations"] == 0
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "- waiting on a failed stage, 1 evaluation(s) of llm (fix the cause, then rerun" in markdown
    assert "train mini-llm: too few validation" in markdown and "not run yet" not in markdown


def test_a_dataset_that_is_neither_local_nor_downloadable_fails_the_dry_run_too(tmp_path):
    path = write_config(tmp_path, MINIMAL.replace('train = "scifact"', 'train = "scifactt"'))
    result = runner.invoke(app, ["run", str(path), "--dry-run", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown dataset 'scifactt'" in result.output


def test_runtime_settings_stay_out_of_keys_and_a_cuda_device_asks_for_a_gpu(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    with FakeLLM() as server:
        config = load_experiment(grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path))
        on_gpu = load_experiment(
            grid_config(tmp_path, server, tiny_model_path, tiny_cross_encoder_path),
            {
                "train.device": "cuda:0",
                "evaluation.dense.device": "cuda",
                "evaluation.dense.batch_size": 512,
                "sources.ce.mine.devices": "cuda:0,cuda:1",
            },
        )
    cpu, gpu = plan_experiment(config, tmp_path / "run"), plan_experiment(on_gpu, tmp_path / "run")
    assert [s.key for s in cpu.stages] == [s.key for s in gpu.stages]
    asks = {(s.kind, s.resources.gpus) for s in gpu.stages}
    assert ("train", 1.0) in asks and ("evaluate", 1.0) in asks and ("mine", 0.0) in asks
    assert ("mine", 2.0) in asks  # the cross-encoder's pool over two GPUs
    assert all(s.resources.gpus == 0 for s in cpu.stages)


def test_a_dataset_can_train_on_a_subset_of_the_sources(tmp_path):
    body = (
        MINIMAL.replace('train = "scifact"', 'train = "scifact"\nsources = ["bm25+dense"]')
        + """
[sources.dense]
mine = { method = "dense" }
[sources."bm25+dense"]
combine = { inputs = ["bm25", "dense"] }
[[datasets]]
train = "nfcorpus"
"""
    )
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    trained = sorted(s.label for s in plan.stages if s.kind == "train")
    assert trained == ["nfcorpus-bm25", "nfcorpus-bm25+dense", "nfcorpus-dense", "scifact-bm25+dense"]
    mined = sorted(s.label for s in plan.stages if s.kind == "mine")
    assert mined == [
        "nfcorpus-bm25",
        "nfcorpus-dense",
        "scifact-bm25",
        "scifact-dense",
    ]  # what the combination needs
    with pytest.raises(HardnegError, match=r"datasets.0.sources: no source 'nope'"):
        load_experiment(
            write_config(
                tmp_path, MINIMAL.replace('train = "scifact"', 'train = "scifact"\nsources = ["nope"]')
            )
        )


def test_a_combination_filters_with_the_cross_encoder_trained_for_another_source(
    tmp_path, tiny_model_path, tiny_cross_encoder_path
):
    body = (
        mini_grid(tmp_path, "tiny", tiny_model_path)
        + f"""
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.ce]
mine = {{ method = "cross-encoder", num_negatives = 2, rerank_depth = 5 }}
train_cross_encoder = {{ base_model = "{tiny_cross_encoder_path}", num_negatives = 2, batch_size = 4, epochs = 1, max_length = 64 }}
[sources."bm25 margin"]
combine = {{ inputs = ["bm25"], filters = {{ relative_margin = 0.05, scorer = "cross-encoder:@source:ce" }} }}
"""
    )
    config = load_experiment(write_config(tmp_path, body))
    plan = plan_experiment(config, tmp_path / "run")
    combine = next(s for s in plan.stages if s.kind == "combine")
    trained = next(s for s in plan.stages if s.kind == "train-cross-encoder")
    assert (
        combine.deps[-1] == trained.key
        and combine.config["filters"]["scorer"] == "cross-encoder:@input:scorer"
    )
    assert combine.model == f"cross-encoder:output of {trained.title}"
    try:  # a tiny random cross-encoder may filter every negative, and that model then has nothing to train on
        run_experiment(write_config(tmp_path, body), tmp_path / "run", show_progress=False)
    except HardnegError as exc:
        assert "train mini-bm25 margin" in str(exc)
    manifest = json.loads((tmp_path / "run" / (combine.output + ".manifest.json")).read_text())
    assert manifest["settings"]["filters"]["scorer"] == f"cross-encoder:{tmp_path / 'run' / trained.output}"
    assert manifest["counts"]["negatives"] + manifest["counts"].get("filtered_relative_margin", 0) > 0
    bad = body.replace("@source:ce", "@source:bm25")
    with pytest.raises(HardnegError, match="no source 'bm25' with train_cross_encoder"):
        load_experiment(write_config(tmp_path, bad))


def test_max_budget_reaches_every_source_that_takes_one_and_no_other():
    from hardneg.experiment.runner import with_budget

    grid = load_experiment(Path(__file__).resolve().parents[1] / "configs" / "quickstart.toml")
    budgeted = with_budget(grid, "2M")
    for name, source in budgeted.sources.items():
        takes_one = "max_budget" in type(source.settings).model_fields
        assert (getattr(source.settings, "max_budget", None) == "2M") == takes_one, name
        assert source.settings.model_dump(exclude={"max_budget"}) == grid.sources[name].settings.model_dump(
            exclude={"max_budget"}
        )
    assert any(source.kind == "generate" for source in budgeted.sources.values())


def test_every_executor_the_settings_accept_is_registered_and_loads():
    """`[executor] name` is checked by its settings and resolved by the registry: the two agree."""
    from typing import get_args

    from hardneg.experiment.executors import EXECUTORS, Executor, executor_class
    from hardneg.settings.experiment import ExecutorSettings

    assert set(get_args(ExecutorSettings.model_fields["name"].annotation)) == set(EXECUTORS)
    for name in EXECUTORS:
        assert issubclass(executor_class(name), Executor) and executor_class(name).name == name
