"""The report's two answers: the best corpus-free row against the rows that read the corpus, and a
generator's prompts side by side."""

from __future__ import annotations

import json
from pathlib import Path

from hardneg.core.io import write_json
from hardneg.evaluation.stats import holm
from hardneg.experiment.planfile import PlanFile, StageNode
from hardneg.reporting.prompts import _shown_words, prompts, prompts_section
from hardneg.reporting.report import write_report

SCORES = {  # per column: the rows' per-query nDCG (40 queries, alternating around the mean)
    "a": {"base": 0.50, "bm25": 0.60, "pool": 0.70, "llm": 0.40},
    "b": {"base": 0.50, "bm25": 0.80, "pool": 0.45, "llm": 0.40},
}
READS = {"bm25": ["mine a-bm25"], "pool": [], "llm": []}


AUDITS = {  # per source, its negatives' sources: (negatives, likely false-negative share, words)
    "bm25": {"bm25": (300, 0.20, 200)},
    "pool": {"pool": (100, 0.10, 100), "swap": (300, 0.50, 150)},
}


def _audit(parts: dict[str, tuple[int, float, int]]) -> dict:
    sources = {
        name: {
            "triplets": 100,
            "negatives": n,
            "false_negative_share": fn,
            "hard_share": 0.4,
            "easy_share": 0.2,
            "mean_margin": -0.1,
            "median_negative_words": words,
            "median_positive_words": 200,
            "query_overlap": 0.3,
            "positive_overlap": 0.1,
            "near_duplicate_share": 0.0,
            "margins": [-0.1] * n,
        }  # fmt: skip
        for name, (n, fn, words) in parts.items()
    }
    return {"inputs": [], "scorer": "dense:m", "settings": {"easy_margin": 0.2}, "sources": sources}


def fake_run(folder: Path, corpus_known: bool = True, cross: dict | None = None) -> Path:
    """SCORES in-domain; ``cross`` adds {source: mean} cells of models trained on a, tested on b."""
    cells = []
    trained = [(test, test, source, mean) for test, means in SCORES.items() for source, mean in means.items()]
    for train, test, source, mean in trained + [("a", "b", s, m) for s, m in (cross or {}).items()]:
        path = f"stages/evaluations/{source}-{train}-{test}.json"
        per_query = {f"q{i}": {"ndcg@10": mean + (0.05 if i % 2 else -0.05)} for i in range(40)}
        write_json(folder / path, {"metrics": {"ndcg@10": mean}, "per_query": per_query})
        reads = READS.get(source) if corpus_known else None
        audit = None
        if source in AUDITS and train == test:
            audit = f"stages/audits/{source}-{train}.json"
            write_json(folder / audit, _audit(AUDITS[source]))
        cells.append({"source": source, "label": source, "train": None if source == "base" else train,
                      "test": test, "evaluation": path, "corpus_reads": reads, "audit": audit})  # fmt: skip
    PlanFile(name="fake", base_model="m", baseline="bm25", metrics=["ndcg@10"], audit={},
             evaluation={"bootstrap_resamples": 500}, notes=[], cells=cells).write(folder)  # fmt: skip
    return folder


def test_the_best_corpus_free_row_is_set_against_the_best_row_that_reads_the_corpus(tmp_path):
    report = write_report(fake_run(tmp_path))
    found = report.results["without_corpus"]
    a, b = found["a"], found["b"]
    assert a["corpus_free"]["source"] == "pool" and a["reads_corpus"]["source"] == "bm25"
    assert round(a["gap"], 4) == 0.1 and a["meets"] and a["vs_reads_corpus"]["p_holm"] < 0.05
    assert a["vs_base"]["p_holm"] < 0.05 and a["baseline_value"] == 0.6
    # In b the pool row is below both BM25 and the base: missed, by how much, in words.
    assert not b["meets"] and round(b["gap"], 4) == -0.35 and b["base"] == 0.5
    markdown = (tmp_path / "results.md").read_text()
    assert "## Without the corpus" in markdown
    assert "| a | pool, best of 2 | 0.7000 | bm25, best of 1 | 0.6000 | +0.1000 (+16.7%)" in markdown
    assert (a["corpus_free"]["of"], a["reads_corpus"]["of"]) == (2, 1)  # the best of how many rows
    assert "- b: missed by 0.3500 under bm25 and 0.0500 under the base" in markdown
    # each column's model is judged on its own training set's columns: b's pool model is below the base
    assert a["harm"] == []
    assert b["harm"] == [{"column": "b", "value": 0.45, "base": 0.5, "p_holm": b["vs_base"]["p_holm"]}]
    assert "- a's best corpus-free row, pool, is not significantly below the base in any column" in markdown
    assert (
        "- b's best corpus-free row, pool, is significantly below the base on b (0.4500 vs 0.5000" in markdown
    )
    assert json.loads((tmp_path / "results.json").read_text())["without_corpus"]["a"]["meets"] is True
    # what the audit says of the two rows' negatives: a mix's sources weighted by their negatives
    pool, bm25 = b["audit"]["corpus_free"], b["audit"]["reads_corpus"]
    assert pool["negatives"] == 400 and round(pool["false_negative_share"], 4) == 0.4
    assert (
        round(pool["length_ratio"], 4) == round((100 * 0.5 + 300 * 0.75) / 400, 4)
        and bm25["length_ratio"] == 1
    )
    assert (
        "- b, the audit of their negatives (pool vs bm25): likely false negatives 40% vs 20%; hard 40% vs 40%"
        in markdown
    )
    assert "- a, the audit of their negatives" not in markdown  # a meets the target: nothing to close


def test_harm_counts_the_columns_of_the_winners_own_training_set(tmp_path):
    """The model trained on a and tested on b is a's model: its loss there is a's harm, not b's."""
    report = write_report(fake_run(tmp_path, cross={"pool": 0.40, "bm25": 0.55}))
    results = report.results
    assert results["column_datasets"]["a->b"] == {"train": "a", "test": "b"}
    found = results["without_corpus"]
    assert [h["column"] for h in found["a"]["harm"]] == ["a->b"]
    assert [h["column"] for h in found["b"]["harm"]] == ["b"]
    assert found["a"]["in_domain"] and not found["a->b"]["in_domain"]
    markdown = (tmp_path / "results.md").read_text()
    assert "- a's best corpus-free row, pool, is significantly below the base on a->b (0.4000" in markdown
    assert "a->b's best corpus-free row" not in markdown
    # below BM25 in the cross column too, but the target is in-domain: a cross-test is harm or nothing
    assert "| a->b | pool, best of 1 | 0.4000 |" in markdown and "| - (cross-test) |" in markdown
    assert "- a->b: missed by" not in markdown and found["a->b"]["meets"] is None
    # the gap's Holm family is the in-domain columns; a cross-test has its own (here: alone)
    cross = found["a->b"]["vs_reads_corpus"]
    assert cross["p_holm"] == cross["p"]
    in_domain = holm({c: found[c]["vs_reads_corpus"]["p"] for c in ("a", "b")})
    assert {c: found[c]["vs_reads_corpus"]["p_holm"] for c in ("a", "b")} == in_domain


def test_a_winner_not_yet_tested_everywhere_says_where(tmp_path):
    """A cross-test that has not run is not a pass: the line names the columns still to test."""
    report = write_report(fake_run(tmp_path, cross={"bm25": 0.55}))  # pool's a->b cell not run
    found = report.results["without_corpus"]
    assert found["a"]["untested"] == ["a->b"] and found["a"]["harm"] == []
    markdown = (tmp_path / "results.md").read_text()
    assert (
        "- a's best corpus-free row, pool, is not significantly below the base in any column it was "
        "tested in (not tested yet: a->b)" in markdown
    )


def test_results_of_an_older_hardneg_render_without_the_counts():
    from hardneg.reporting.questions import without_corpus_section

    entry = {"metric": "ndcg@10", "corpus_free": {"source": "pool", "label": "pool", "value": 0.7},
             "reads_corpus": {"source": "bm25", "label": "bm25", "value": 0.6}, "gap": 0.1,
             "base": 0.5, "vs_base": None, "in_domain": True, "meets": True, "harm": []}  # fmt: skip
    lines = without_corpus_section({"a": entry})
    assert "| a | pool | 0.7000 | bm25 | 0.6000 |" in "\n".join(lines)


def test_no_corpus_section_when_the_plan_does_not_know_what_read_the_corpus(tmp_path):
    report = write_report(fake_run(tmp_path, corpus_known=False))
    assert report.results["without_corpus"] == {}
    assert "## Without the corpus" not in (tmp_path / "results.md").read_text()


def _stage(kind: str, output: str, config: dict, inputs: dict | None = None) -> StageNode:
    return StageNode(kind=kind, label=f"a-{Path(output).stem}", key=output, output=output,
                     config=config, inputs=inputs or {})  # fmt: skip


def test_a_generators_prompts_are_set_side_by_side_with_their_filtered_rows_and_audit():
    stages = [
        _stage(
            "generate",
            "qp",
            {"model": "smol", "template": "query+positive", "mode": "passages", "positive_max_words": 90},
        ),  # fmt: skip
        _stage(
            "generate",
            "swap",
            {
                "model": "smol",
                "template": "swap",
                "mode": "swap",
                "swap_from": "any",
                "sampling": {"max_tokens": 128},
            },
        ),  # fmt: skip
        _stage(
            "generate",
            "swapq",
            {
                "model": "smol",
                "template": "swap",
                "mode": "swap",
                "swap_from": "query",
                "positive_max_words": 90,
            },
        ),  # fmt: skip
        _stage("generate", "other", {"model": "big", "template": "query-only"}),
        _stage("generate", "other2", {"model": "big", "template": "query-only", "num_negatives": 5}),
        _stage("combine", "swapf", {"filters": {"relative_margin": 0.05}}, {"triplets": ["swap"]}),
        _stage("combine", "mix", {"filters": {"relative_margin": None}}, {"triplets": ["swap"]}),
        _stage("combine", "scorer only", {"filters": {"scorer": "dense:m"}}, {"triplets": ["swap"]}),
    ]
    names = {"qp": "llm", "swap": "llm-swap", "swapq": "llm-swap q", "other": "big", "other2": "big again",
             "swapf": "swap filtered", "mix": "mix", "scorer only": "scorer only"}  # fmt: skip
    cells = [{"source": s, "label": s, "train": "a", "test": "a", "evaluation": f"{s}.json", "negatives": out}
             for out, s in names.items()]  # fmt: skip
    plan = PlanFile(name="p", base_model="m", baseline=None, metrics=["ndcg@10"], audit={},
                    evaluation={"bootstrap_resamples": 10}, notes=[], cells=cells, stages=stages)  # fmt: skip
    values = {"llm": 0.60, "llm-swap": 0.64, "llm-swap q": 0.65, "big": 0.5, "big again": 0.52,
              "swap filtered": 0.66, "mix": 0.61, "scorer only": 0.6}  # fmt: skip
    audit = {"median_negative_words": 180.0, "median_positive_words": 200.0, "length_ratio": 0.9}
    audit["false_negative_share"] = 0.25
    results = {
        "metrics": ["ndcg@10"],
        "rows": [
            {"source": s, "cells": {"a": {"metrics": {"ndcg@10": {"value": v}}}}} for s, v in values.items()
        ],
        "audits": {
            "a/llm-swap": {"generated": audit},
            "a/llm": {"generated": {**audit, "median_negative_words": 72.0, "length_ratio": 0.36}},
            "a/llm-swap q": {"generated": audit},
        },
        "delivery": {"a/a-swap": {"delivered_share": 0.9}},
    }
    found = prompts(results, plan)
    # The one-prompt generator is left out (twice the same prompt is not a comparison); neither the
    # unfiltered mix nor a combine naming a scorer without a threshold is the swap's filtered row.
    assert [(e["source"], e["prompt"]) for e in found] == [
        ("llm", "query+positive"),
        ("llm-swap", "swap"),
        ("llm-swap q", "swap, query phrases"),
    ]
    swap = found[1]
    assert [f["source"] for f in swap["filtered"]] == ["swap filtered"] and swap["filtered"][0][
        "value"
    ] == 0.66
    assert (
        swap["length_ratio"] == 0.9
        and swap["false_negative_share"] == 0.25
        and swap["delivered_share"] == 0.9
    )
    assert found[0]["filtered"] == [] and swap["shown_words"] is None  # the swap saw it whole
    assert found[2]["shown_words"] is None  # a capped swap still edits the whole positive
    # Shown the first 90 of 200 words, the generator was asked for 90: 72 words are 0.8 of that.
    assert found[0]["length_ratio"] == 0.36 and found[0]["shown_words"] == {"words": 90, "ratio": 0.8}
    lines = prompts_section(found, {"a": 0.62})
    row = "| a | smol | swap | positive_max_words (default), sampling.max_tokens 128 | 0.6400 | 0.6600 | +0.0200 (+3.2%) | 90% | 0.90 | 25% |"
    assert row in lines
    assert found[0]["settings"] == {
        "positive_max_words": 90,
        "sampling.max_tokens": None,
    }  # what the query+positive row left unset
    assert (
        "| a | smol | query+positive | positive_max_words 90, sampling.max_tokens (default) |"
        in "\n".join(lines)
    )
    assert "| 0.36 (0.80 of the 90 shown) | 25% |" in lines[4]
    short = {**audit, "median_positive_words": 80.0}  # shown whole: the audit's ratio is the one
    assert _shown_words(short, {"positive_max_words": 90}) is None
    assert _shown_words(audit, {}) is None and _shown_words(None, {"positive_max_words": 90}) is None
