"""CLI options derived from config classes: help and defaults come from the fields, pydantic
validates, and each command's CLI-only meanings (0 = None, --all-pairs, repeated --model...) hold."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any, Literal

import pytest
import typer
import typer.main
from pydantic import Field
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.cli.common import user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.base import Settings
from hardneg.settings.combine import CombineSettings
from hardneg.settings.data import PairsSettings
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.settings.llm import GenerateSettings
from hardneg.settings.mining import MineSettings
from hardneg.settings.training import CrossEncoderTrainSettings, TrainSettings
from hardneg.core.errors import HardnegError

runner = CliRunner()


class Widgets(Settings):
    count: int = Field(7, gt=0)
    """How many widgets to make."""
    mode: Literal["fast", "slow"] = "fast"
    tags: list[str] = []
    extra: dict[str, Any] = {}


class MoreWidgets(Widgets):
    count: int = Field(9, gt=0)
    """How many widgets to make, more of them."""


def widget_app(config: type[Settings], built: list) -> typer.Typer:
    widgets = typer.Typer()
    options = ConfigOptions(config, flags={"count": Flag("-c"), "tags": Flag("--tag")})

    @widgets.command()
    @options
    def make(**settings: Any) -> None:
        with user_errors():
            built.append(options.build(settings))

    return widgets


def flat(text: str) -> str:
    """Help text without rich's borders and line wrapping."""
    return " ".join(text.replace("│", " ").split())


def test_a_field_docstring_and_default_are_the_help():
    result = runner.invoke(widget_app(MoreWidgets, []), ["--help"])
    assert result.exit_code == 0
    assert "How many widgets to make, more of them. [x>=1] [default: 9]" in flat(result.stdout)
    assert "<fast|slow>" in result.stdout
    mine = flat(runner.invoke(app, ["mine", "--help"]).stdout)
    assert MineSettings.model_fields["depth"].description in mine
    assert "re-ranking BM25's top --rerank-depth" in mine  # ``rerank_depth`` spelled as the flag


def test_a_default_changed_in_the_config_class_is_the_cli_default():
    built: list = []
    assert runner.invoke(widget_app(Widgets, built), []).exit_code == 0
    args = ["--tag", "a", "--tag", "b", "--extra", "k=1.5"]
    assert runner.invoke(widget_app(MoreWidgets, built), args).exit_code == 0
    assert built[0] == Widgets() and built[0].count == 7
    assert built[1] == MoreWidgets(tags=["a", "b"], extra={"k": 1.5}) and built[1].count == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "medium"], "error: --mode: Input should be 'fast' or 'slow'"),
        (["-c", "0"], "error: --count: Input should be greater than 0"),
        (["--extra", "novalue"], "error: --extra 'novalue': expected KEY=VALUE"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag(args, message):
    built: list = []
    result = runner.invoke(widget_app(Widgets, built), args)
    assert result.exit_code == 2 and not built
    assert result.stderr.strip() == message


def test_a_bad_choice_in_a_real_command_is_one_line(tmp_path):
    args = ["mine", "-p", str(tmp_path / "p.jsonl"), "-d", "x", "-o", str(tmp_path / "t.jsonl"), "-m", "nope"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --method: Input should be 'bm25', 'dense' or 'cross-encoder'"


def test_clashing_names_raise_when_the_options_are_declared():
    with pytest.raises(ValueError, match="'use_title' would set both bm25.use_title and dense.use_title"):
        ConfigOptions(EvaluateSettings, flatten=("bm25", "dense"))
    with pytest.raises(ValueError, match="no field nonexistent"):
        ConfigOptions(Widgets, flags={"nonexistent": Flag("-x")})
    options = ConfigOptions(Widgets, flags={"count": Flag("-c")})
    with pytest.raises(ValueError, match="'-c' is declared by both"):

        @options
        def make(colour: str = typer.Option("red", "--colour", "-c"), **settings: Any) -> None: ...


@pytest.fixture
def stage(monkeypatch):
    """Replace a stage function by one that records the configs it is given (and stops there,
    unless it is given a result to return); datasets load as stubs."""
    # Modules that bind load_dataset at import must be imported before it is replaced, or they would
    # keep the stub for the rest of the session (hardneg's names load lazily).
    for module in (
        "hardneg.evaluation.evaluate",
        "hardneg.mining.mine",
        "hardneg.data.pairs",
        "hardneg.training.cross_encoder",
    ):
        importlib.import_module(module)
    registry = importlib.import_module("hardneg.data.registry")
    monkeypatch.setattr(registry, "load_dataset", lambda *args: SimpleNamespace(name="x"))
    monkeypatch.setattr("hardneg.stages.base.write_manifest", lambda *args: None)  # nothing was written
    configs: list = []

    def replace(module: str, name: str, result: Any = None) -> list:
        def fake(*args: Any, **kwargs: Any) -> Any:
            configs.extend(arg for arg in args if isinstance(arg, Settings))
            if result is None:
                raise HardnegError("stopped")
            return result

        monkeypatch.setattr(importlib.import_module(module), name, fake)
        return configs

    return replace


GENERATED = SimpleNamespace(
    counts={"source": "llm:x", "delivered": 0, "requested": 0, "pairs": 0, "shortfalls": 0, "rejects": {}},
    timings={},
)
COMMANDS = [  # a command with its required flags, where its stage runs, the config its defaults make
    (["pairs", "-d", "x", "-o", "p"], ("hardneg.data.pairs", "make_pairs"), PairsSettings(dataset="x")),
    (["mine", "-p", "p", "-d", "x", "-o", "t"], ("hardneg.mining.mine", "mine_file"), MineSettings(dataset="x")),
    (["train-cross-encoder", "-p", "p", "-d", "x", "-o", "m"],
     ("hardneg.training.cross_encoder", "train_cross_encoder"), CrossEncoderTrainSettings(dataset="x")),
    (["generate", "-p", "p", "-o", "t"], ("hardneg.generation.generate", "generate_file", GENERATED),
     GenerateSettings()),
    (["combine", "t", "-o", "c"], ("hardneg.combining.combine", "combine_files"), CombineSettings()),
    (["train", "-t", "t", "-o", "m"], ("hardneg.training.bi_encoder", "train_bi_encoder"), TrainSettings()),
    (["evaluate", "-d", "x"], ("hardneg.evaluation", "evaluate"), EvaluateSettings(dataset="x")),
]  # fmt: skip


@pytest.mark.parametrize(("args", "target", "expected"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_every_cli_default_is_the_config_default(stage, args, target, expected):
    configs = stage(*target)
    runner.invoke(app, args)
    assert configs == [expected]


def test_generate_makes_a_config_per_model_and_zero_top_k_is_none(stage, tmp_path):
    configs = stage("hardneg.generation.generate", "generate_file", GENERATED)
    args = ["generate", "-p", "p", "--output-dir", str(tmp_path), "-m", "a", "-m", "b",
            "--base-url", "http://h/v1,http://g/v1", "--top-k", "0", "--sampling-extra", "dry_multiplier=0.8",
            "--per-request", "2", "--disable-thinking", "--no-structured-output",
            "--min-words", "3"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    fleet = ["http://h/v1", "http://g/v1"]  # one comma-separated value: both models' endpoints
    assert [(c.model, c.base_url) for c in configs] == [("a", fleet), ("b", fleet)]
    first = configs[0]
    assert first.sampling.top_k is None and first.sampling.extra == {"dry_multiplier": 0.8}
    assert first.negatives_per_request == 2 and first.disable_thinking and not first.structured_output
    assert first.rejects.min_words == 3


def test_train_patience_zero_is_none(stage):
    configs = stage("hardneg.training.bi_encoder", "train_bi_encoder")
    runner.invoke(app, ["train", "-t", "t", "-o", "m", "--patience", "0", "-n", "2", "--skip-empty"])
    assert configs == [TrainSettings(patience=None, num_negatives=2, skip_empty=True)]


def test_combine_all_pairs_sources_and_presets(stage):
    configs = stage("hardneg.combining.combine", "combine_files")
    runner.invoke(app, ["combine", "t", "-o", "c", "--all-pairs", "--source", "bm25", "--source", "llm:*"])
    runner.invoke(app, ["combine", "t", "-o", "c", "--preset", "llm+bm25", "--strategy", "interleave"])
    assert configs[0] == CombineSettings(pairs="all", sources=["bm25", "llm:*"])
    assert configs[1] == CombineSettings(
        preset="llm+bm25", strategy="interleave"
    )  # one meaning, as in a grid


def test_mine_batch_size_is_the_dense_one_too(stage):
    configs = stage("hardneg.mining.mine", "mine_file")
    args = ["mine", "-p", "p", "-d", "x", "-o", "t", "--batch-size", "8", "--relative-margin", "0.05"]
    runner.invoke(app, args)
    assert configs[0].batch_size == configs[0].dense.batch_size == 8
    assert configs[0].filters.relative_margin == 0.05


def test_evaluate_title_batch_size_stopwords_and_metrics(stage):
    configs = stage("hardneg.evaluation", "evaluate")
    args = ["evaluate", "-d", "x", "--no-title", "--stopwords", "none", "--batch-size", "8",
            "--metrics", "ndcg@10, recall@100", "--no-cache", "--bm25-method", "bm25+"]  # fmt: skip
    runner.invoke(app, args)
    config = configs[0]
    assert not config.bm25.use_title and not config.dense.use_title and config.bm25.stopwords is None
    assert config.dense.batch_size == config.rerank_batch_size == 8
    assert config.metrics == ("ndcg@10", "recall@100")
    assert not config.dense.cache_embeddings and config.bm25.method == "bm25+"


def test_evaluate_devices_and_search_flags_reach_the_dense_settings(stage):
    configs = stage("hardneg.evaluation", "evaluate")
    runner.invoke(app, ["evaluate", "-d", "x", "-r", "minilm-l6", "--devices", "cpu,cpu", "--search", "hnsw",
                        "--search-backend", "faiss"])  # fmt: skip
    dense = configs[0].dense
    assert dense.devices == ["cpu", "cpu"] and dense.search == "hnsw" and dense.search_backend == "faiss"


SPELLINGS = {  # as the docs, README and tests use them
    "pairs": "-d -o --split --one-per-query --all-positives --max-pairs --seed --data-root",
    "mine": "-p -d -o -m -n -q --depth --rerank-depth --range-min --range-max --sampling --model "
            "--scorer --absolute-margin --relative-margin --max-score --min-score --batch-size",
    "train-cross-encoder": "-p -d -o -n --base-model --random-negatives --loss --epochs --max-length "
                           "--save-steps",
    "generate": "-p -m -o -n --base-url --output-dir --template --api-key-env --concurrency --temperature "
                "--top-p --top-k --max-tokens --seed --frequency-penalty --presence-penalty --sampling-extra "
                "--structured-output --no-structured-output --disable-thinking --max-attempts --per-request "
                "--min-words --max-copy-overlap --timeout --max-retries --port",
    "combine": "-o --preset --strategy --source --per-source --max-negatives --all-pairs --min-negatives "
               "--scorer",
    "train": "-t -o -n --base-model --short-triplets --skip-empty --batch-size --epochs --max-steps "
             "--eval-steps --patience --validation-fraction --max-seq-length --device --learning-rate "
             "--warmup-ratio",
    "evaluate": "-d -r -o -q --split --top-k --output-dir --metrics --k1 --b --bm25-method --stopwords "
                "--stemmer --keep-unmatched --title --no-title --batch-size --max-seq-length --query-prompt "
                "--document-prompt --cache --no-cache --reranker --rerank-depth --data-root",
}  # fmt: skip


@pytest.mark.parametrize("name", SPELLINGS)
def test_the_documented_spellings_stay(name):
    params = typer.main.get_command(app).commands[name].params
    declared = {s for p in params for s in (*p.opts, *(getattr(p, "secondary_opts", None) or ()))}
    assert set(SPELLINGS[name].split()) - declared == set()


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):  # a sub-app: hardneg data ..., hardneg review ...
            yield from _commands(command, (*path, name))


def test_no_help_text_loses_a_bracketed_config_key_to_rich_markup(monkeypatch):
    """Help written by hand names config tables ([train], [[phases]], [sources.NAME.mine]);
    unescaped, Rich takes them for markup and prints nothing in their place."""
    import re

    monkeypatch.setenv("TERMINAL_WIDTH", "400")  # (typer's width; wrapping would not matter either)
    tag = re.compile(r"\[\[?[a-z#/@][^\[\]\s]*\]\]?")  # what Rich would read as a tag
    checked = 0
    for path, command in _commands(typer.main.get_group(app)):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        wanted = {m for text in texts for m in tag.findall(text.replace("\\", ""))}
        if not wanted:
            continue
        shown = " ".join(CliRunner().invoke(app, [*path, "--help"]).output.split())
        missing = [key for key in wanted if key not in shown]
        assert not missing, f"hardneg {' '.join(path)} --help drops {missing}: escape them as \\["
        checked += 1
    assert checked >= 2  # run's [[phases]], tune's [train]
