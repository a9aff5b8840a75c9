"""A pool from more pairs than those mined for (``pool_pairs``): a file in the CLI and the API, a
pairs stage of its own in a grid, still corpus-free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import mini_grid, solar_pairs, write_config
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.core.errors import HardnegError
from hardneg.data.records import Pair, read_triplets, write_records
from hardneg.experiment import load_experiment, plan_experiment, run_experiment
from hardneg.reporting.questions import without_corpus_section
from hardneg.stages import run_kind

runner = CliRunner()


def _pairs(tmp_path: Path) -> tuple[Path, Path]:
    """Three pairs to mine for, and a file of all seven (the three among them): qA's second pair
    (positive dC) is in the pool's file only."""
    every = solar_pairs()
    mined, pool = tmp_path / "pairs.jsonl", tmp_path / "all-pairs.jsonl"
    write_records(mined, [every[0], every[1], every[3]])  # qA, qB, qD
    write_records(pool, every)
    return mined, pool


def test_a_pool_of_more_pairs_adds_their_positives_and_masks_their_judgments(tmp_path):
    mined, pool = _pairs(tmp_path)
    config = {"corpus": "pool", "method": "bm25", "num_negatives": 5}
    own = run_kind("mine", config, {"pairs": mined}, tmp_path / "own.jsonl", show_progress=False)
    assert own.counts["pool_documents"] == 3
    assert {n.doc_id for t in read_triplets(tmp_path / "own.jsonl") for n in t.negatives} <= {
        "dA",
        "dB",
        "dD",
    }

    wider = run_kind(
        "mine",
        {**config, "pool_pairs": str(pool)},
        {"pairs": mined},
        tmp_path / "wide.jsonl",
        show_progress=False,
    )
    triplets = read_triplets(tmp_path / "wide.jsonl")
    assert wider.counts["pool_documents"] == 6 and [t.query_id for t in triplets] == ["qA", "qB", "qD"]
    drawn = {t.query_id: {n.doc_id for n in t.negatives} for t in triplets}
    assert drawn["qA"] == {"dB", "dD", "dE", "dF"}  # dC is qA's positive in the pool's file
    assert drawn["qB"] == {"dA", "dC", "dD", "dE", "dF"}


def test_pool_pairs_from_the_command_line_and_its_errors(tmp_path):
    mined, pool = _pairs(tmp_path)
    out = tmp_path / "cli.jsonl"
    args = ["mine", "-p", str(mined), "-o", str(out), "--corpus", "pool", "-n", "2", "-q"]
    done = runner.invoke(app, [*args, "--pool-pairs", str(pool)])
    assert done.exit_code == 0, done.output
    assert any(n.doc_id in {"dE", "dF"} for t in read_triplets(out) for n in t.negatives)

    alone = runner.invoke(app, [*args[:5], "--pool-pairs", str(pool)])  # mining the corpus
    assert alone.exit_code == 2 and "pool_pairs: goes with corpus = 'pool'" in alone.output

    nowhere = runner.invoke(app, [*args, "--pool-pairs", str(tmp_path / "nowhere.jsonl")])
    assert nowhere.exit_code == 2 and "nowhere.jsonl" in nowhere.output

    clash = tmp_path / "clash.jsonl"
    write_records(clash, [Pair(query_id="qZ", query="z", positive_id="dB", positive="another text")])
    bad = runner.invoke(app, [*args, "--pool-pairs", str(clash)])
    one_line = " ".join(bad.output.split())
    assert bad.exit_code == 2 and (
        f"{clash}:1: field 'positive': positive_id 'dB' has another text at {mined}:2" in one_line
    )
    assert read_triplets(out)  # the earlier output is untouched

    # the pool's file is read as it comes (one text per positive kept): a bad line far into it, or
    # an empty file, still stops the stage on one line before anything is written
    broken, empty = tmp_path / "broken.jsonl", tmp_path / "empty.jsonl"
    broken.write_text(pool.read_text() + "{not json\n")
    empty.write_text("\n")
    for path, line in ((broken, f"{broken}:8: invalid JSON"), (empty, f"{empty}: empty file")):
        bad = runner.invoke(
            app, [*args[:4], str(tmp_path / "not-made.jsonl"), *args[5:], "--pool-pairs", str(path)]
        )
        assert bad.exit_code == 2 and line in " ".join(bad.output.split()), bad.output
        assert not (tmp_path / "not-made.jsonl").exists()


def _grid(tmp_path: Path, model: Path, pool: str = "{}") -> str:
    return (
        mini_grid(tmp_path, "pool-pairs", model).replace(
            "[pairs]\n", "[pairs]\nmax_pairs = 6\none_per_query = true\n"
        )
        + f"""
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.pool]
mine = {{ method = "bm25", corpus = "pool", num_negatives = 2 }}
[sources.pool-all]
mine = {{ method = "bm25", corpus = "pool", num_negatives = 2 }}
pool_pairs = {pool}
"""
    )


def test_a_grid_draws_the_pool_from_more_train_pairs_and_stays_corpus_free(tmp_path, tiny_model_path):
    path = write_config(tmp_path, _grid(tmp_path, tiny_model_path))
    config = load_experiment(path)
    plan = plan_experiment(config, tmp_path / "run")
    pairs = {s.label: s for s in plan.stages if s.kind == "pairs"}
    assert set(pairs) == {"mini", "mini-pool-all"}
    assert pairs["mini"].config["max_pairs"] == 6 and pairs["mini-pool-all"].config["max_pairs"] is None
    assert pairs["mini-pool-all"].config["one_per_query"] is True  # the rest as [pairs]
    mine = {s.label: s for s in plan.stages if s.kind == "mine"}
    assert mine["mini-pool-all"].inputs["pool"] == [pairs["mini-pool-all"].output]
    assert (
        mine["mini-pool-all"].config["pool_pairs"] == "@input:pool" and "pool" not in mine["mini-pool"].inputs
    )
    assert mine["mini-pool-all"].estimate.documents == 8  # the pool's pairs hold the mined ones
    reads = {cell.source: cell.corpus_reads for cell in plan.cells if cell.source != "base"}
    assert reads == {"bm25": ["mine mini-bm25"], "pool": [], "pool-all": []}
    more = {cell.source: cell.more_pairs for cell in plan.cells}
    assert more == {"base": [], "bm25": [], "pool": [], "pool-all": ["pairs mini-pool-all"]}

    run_experiment(path, tmp_path / "run", show_progress=False)
    run = tmp_path / "run"
    mined = [s for s in plan.stages if s.kind == "mine"]
    triplets = {s.label: read_triplets(run / s.output) for s in mined}
    positives = {t.positive_id for t in triplets["mini-pool"]}
    assert all(n.doc_id in positives for t in triplets["mini-pool"] for n in t.negatives)
    assert any(n.doc_id not in positives for t in triplets["mini-pool-all"] for n in t.negatives)
    results = json.loads((run / "results.json").read_text())
    assert {row["source"]: row["corpus_free"] for row in results["rows"]} == {
        "base": True, "bm25": False, "pool": True, "pool-all": True
    }  # fmt: skip
    steps = {(e["from"]["source"], e["to"]["source"]): (e["kind"], e["changes"]) for e in results["effects"]}
    assert steps[("pool", "pool-all")] == ("pool", ["pool pairs: max_pairs: 6 -> None"])
    assert steps[("bm25", "pool-all")] == (
        "pool",
        ["corpus: dataset -> pool", "pool pairs: max_pairs: 6 -> None"],
    )
    # a row that saw more pairs than the others is left out of the goal's comparison, and said so
    goal = results["without_corpus"]["mini"]
    assert goal["corpus_free"]["source"] == "pool" and goal["corpus_free"]["of"] == 1
    more = {row["source"]: row.get("more_pairs") for row in results["rows"]}
    assert more == {"base": None, "bm25": None, "pool": None, "pool-all": {"mini": ["pairs mini-pool-all"]}}
    # with no other corpus-free row, the section still names the one it leaves out
    alone = [row for row in results["rows"] if row["source"] != "pool"]
    assert without_corpus_section({}, alone) == [
        "- not in the comparison, corpus-free but drawing on more pairs than they train on: "
        "pool-all (pairs mini-pool-all)"
    ]
    markdown = (run / "results.md").read_text()
    assert "more pairs than they train on: pool-all (pairs mini-pool-all)" in markdown
    # the report's Pools: the pool's size from the mining manifests, and the pairs it came from
    pools = {e["source"]: e for e in results["pools"]}
    assert set(pools) == {"pool", "pool-all"} and pools["pool-all"]["pool_documents"] == 8
    assert pools["pool"]["pool_documents"] == len(positives) < 8 and pools["pool"]["more_pairs"] == []
    assert pools["pool-all"]["more_pairs"][0]["label"] == "mini-pool-all"
    assert "+ the train split's 8 (one per query) | 8 | mnrl |" in markdown.split("## Pools", 1)[1]


@pytest.mark.parametrize(
    "source, line",
    [
        (
            'mine = { method = "bm25", num_negatives = 2 }\npool_pairs = {}',
            "sources.x.pool_pairs: goes with mine.corpus = 'pool'",
        ),
        (
            'mine = { corpus = "pool", pool_pairs = "x.jsonl" }',
            "sources.x.mine.pool_pairs: a grid draws a pool's pairs with the source's pool_pairs table",
        ),
        ('mine = { corpus = "pool" }\npool_pairs = { max_pairs = 0 }', "sources.x.pool_pairs.max_pairs: "),
        (
            'mine = { corpus = "pool" }\npool_pairs = { max_pairs = 6 }',
            "sources.x.pool_pairs.max_pairs: 6 is not more than [pairs]'s 6: the pool holds the mined pairs'",
        ),
    ],
)
def test_a_grid_s_pool_pairs_are_checked(tmp_path, tiny_model_path, source, line):
    body = _grid(tmp_path, tiny_model_path) + f"[sources.x]\n{source}\n"
    with pytest.raises(HardnegError) as caught:
        load_experiment(write_config(tmp_path, body))
    assert f"{tmp_path / 'exp.toml'}: {line}" in str(caught.value)


def test_a_pool_of_every_pair_the_grid_trains_on_adds_no_stage(tmp_path, tiny_model_path):
    """With [pairs] uncapped, pool_pairs = {} draws the very pairs mined for: the source is the plain
    pool source, one stage, not a copy keyed otherwise."""
    body = _grid(tmp_path, tiny_model_path).replace("max_pairs = 6\n", "")
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    pooled = [s for s in plan.stages if s.kind == "mine" and s.config["corpus"] == "pool"]
    assert len(pooled) == 1 and "pool" not in pooled[0].inputs
    negatives = {cell.source: cell.negatives for cell in plan.cells}
    assert negatives["pool-all"] == negatives["pool"] == pooled[0].output
    assert [s.label for s in plan.stages if s.kind == "pairs"] == ["mini"]
    assert {cell.source: cell.more_pairs for cell in plan.cells}["pool-all"] == []
