"""The report's one-step pairs: which rows differ by one recipe step, and what the step did."""

from __future__ import annotations

import re
from pathlib import Path

from hardneg.core.io import write_json
from hardneg.experiment.planfile import PlanFile, StageNode
from hardneg.reporting.effects import changes
from hardneg.reporting.report import write_report
from hardneg.settings.combine import CombineSettings

MNRL = {"loss": "mnrl", "batch_size": 16, "gist": {"guide": None}}
GIST = {**MNRL, "loss": "cached-gist"}
COMBINE = CombineSettings().model_dump(mode="json")
# source: (negatives stage kind, its config, its inputs' sources, training config, mean nDCG on a, on a->b)
ROWS = {
    "bm25": ("mine", {"method": "bm25", "corpus": "dataset", "num_negatives": 3}, [], MNRL, 0.60, 0.50),
    "pool": ("mine", {"method": "bm25", "corpus": "pool", "num_negatives": 3}, [], MNRL, 0.62, 0.50),
    "dense": ("mine", {"method": "dense", "corpus": "dataset", "num_negatives": 3}, [], MNRL, 0.58, 0.50),
    "pool gist": ("combine", COMBINE, ["pool"], GIST, 0.70, 0.40),
    "pool filtered": (
        "combine",
        {**COMBINE, "filters": {**COMBINE["filters"], "relative_margin": 0.05}},
        ["pool"],
        MNRL,
        0.62,
        0.50,
    ),  # fmt: skip
    "mix": ("combine", {**COMBINE, "strategy": "interleave"}, ["pool", "dense"], MNRL, 0.60, 0.50),
}


def fake_run(folder: Path) -> Path:
    stages, cells = [], []
    for source, (kind, config, inputs, train, *means) in ROWS.items():
        wired = {"triplets": [f"neg/{s}" for s in inputs]} if inputs else {"pairs": ["pairs"]}
        stages += [
            StageNode(
                kind=kind, label=source, key=source, output=f"neg/{source}", config=config, inputs=wired
            ),  # fmt: skip
            StageNode(kind="train", label=source, key=f"m-{source}", output=f"models/{source}", config=train),
        ]
        for test, mean in zip(("a", "b"), means):
            path = f"evaluations/{source}-{test}.json"
            scores = {f"q{i}": {"ndcg@10": mean + (0.02 if i % 2 else -0.02)} for i in range(40)}
            write_json(folder / path, {"metrics": {"ndcg@10": mean}, "per_query": scores})
            cells.append({"source": source, "label": source, "train": "a", "test": test, "evaluation": path,
                          "negatives": f"neg/{source}", "model": f"models/{source}"})  # fmt: skip
    PlanFile(name="fake", base_model="m", baseline=None, metrics=["ndcg@10"], audit={}, notes=[],
             evaluation={"bootstrap_resamples": 500}, cells=cells, stages=stages).write(folder)  # fmt: skip
    return folder


def _pair(found: list[dict], before: str, after: str) -> dict:
    return next(e for e in found if e["from"]["source"] == before and e["to"]["source"] == after)


def test_one_step_pairs_are_found_in_the_plan_and_measured_per_column(tmp_path):
    report = write_report(fake_run(tmp_path))
    found = report.results["effects"]
    pairs = {(e["from"]["source"], e["to"]["source"]): e["kind"] for e in found}
    assert pairs == {
        ("bm25", "pool"): "pool",  # the same miner over the pool instead of the corpus (not dense's)
        ("pool", "pool gist"): "loss",
        ("pool", "pool filtered"): "filter",
        ("pool", "mix"): "mix",
        ("dense", "mix"): "mix",
    }
    gist = _pair(found, "pool", "pool gist")
    assert gist["changes"] == ["train loss: mnrl -> cached-gist"]
    assert round(gist["columns"]["a"]["difference"], 4) == 0.08 and gist["columns"]["a"]["p_holm"] < 0.05
    # the cross column is the same model's: the step that helped in-domain cost 0.10 there
    cross = gist["columns"]["a->b"]
    assert round(cross["difference"], 4) == -0.1 and cross["p_holm"] < 0.05
    low, high = gist["columns"]["a"]["ci"]
    assert low > 0 and round(low, 6) <= 0.08 <= round(
        high, 6
    )  # every query gains 0.08: the interval leaves 0
    assert (tmp_path / "effects-a.png").stat().st_size > 0 and "![a: recipe steps](effects-a.png)" in (
        tmp_path / "results.md"
    ).read_text()
    assert _pair(found, "bm25", "pool")["changes"] == ["corpus: dataset -> pool"]
    assert _pair(found, "pool", "mix")["changes"][0] == "mixed with dense"
    assert _pair(found, "pool", "pool filtered")["columns"]["a"]["p_holm"] == 1
    markdown = (tmp_path / "results.md").read_text()
    assert "## What each recipe step did" in markdown and "### Trained on a" in markdown
    row = "| loss | pool | pool gist | train loss: mnrl -> cached-gist | +0.0800 [+0.080, +0.080] (p "
    assert row in markdown  # every query gains exactly 0.08, so the interval is that point
    assert re.search(r"▲ \| -0\.1000 \[-0\.\d{3}, -0\.\d{3}\] \(p ", markdown)


def test_changes_name_each_setting_that_differs():
    before = {"loss": "mnrl", "filters": {"relative_margin": None, "scorer": None}, "dataset": "x"}
    after = {"loss": "gist", "filters": {"relative_margin": 0.05, "scorer": "dense:m"}, "dataset": "y"}
    assert changes(before, after) == [
        "filters.relative_margin: 0.05",
        "filters.scorer: dense:m",
        "loss: mnrl -> gist",
    ]  # where a stage reads (its dataset) is not a step of the recipe


def test_a_cell_without_an_interval_shows_none():
    """results.json of an older hardneg has no "ci"; one paired query gives (None, None)."""
    from hardneg.reporting.effects import effects_section

    side = {"source": "x", "label": "x"}
    found = [
        {
            "train": "a",
            "kind": "loss",
            "from": side,
            "to": {"source": "y", "label": "y"},
            "changes": [],
            "columns": {
                "a": {"difference": 0.1, "p_holm": 0.5},
                "b": {"difference": -0.2, "ci": [None, None], "p_holm": 0.01},
            },
        }  # fmt: skip
    ]
    text = "\n".join(effects_section(found, ["a", "b"]))
    assert "| loss | x | y | - | +0.1000 (p 0.5) | -0.2000 (p 0.01) ▼ |" in text
