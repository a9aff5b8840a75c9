"""The local executor runs a grid a row at a time: a sitting cut short leaves whole rows."""

from __future__ import annotations

from helpers import mini_head, write_config

from hardneg.experiment.config import load_experiment
from hardneg.experiment.executors import row_order
from hardneg.experiment.runner import plan_experiment


def test_each_row_is_finished_before_the_next_row_s_negatives_are_made(tmp_path, tiny_model_path):
    body = (
        mini_head(tmp_path, "rows", tiny_model_path)
        + """
[sources.bm25]
mine = { method = "bm25", num_negatives = 2 }
[sources.pool]
mine = { method = "bm25", corpus = "pool", num_negatives = 2 }
[sources."pool+bm25"]
combine = { inputs = ["pool", "bm25"], strategy = "interleave", max_negatives = 2 }
"""
    )
    plan = plan_experiment(load_experiment(write_config(tmp_path, body)), tmp_path / "run")
    order = [stage.title for stage in row_order(plan)]
    assert sorted(order) == sorted(stage.title for stage in plan.stages) and len(set(order)) == len(order)
    position = {stage.key: n for n, stage in enumerate(row_order(plan))}
    assert all(position[dep] < position[stage.key] for stage in plan.stages for dep in stage.deps)
    # the plan makes every source's negatives first; the executor finishes bm25's row before pool's
    titles = [stage.title for stage in plan.stages]
    assert titles.index("mine mini-pool") < titles.index("train mini-bm25")
    row = order.index("mine mini-bm25"), order.index("train mini-bm25"), order.index("audit mini-bm25")
    assert row == tuple(sorted(row)) and order.index("evaluate mini-bm25-on-mini") < order.index(
        "mine mini-pool"
    )
    assert order.index("audit mini-pool") < order.index("combine mini-pool+bm25")
    assert order[:2] == ["evaluate base-on-mini", "pairs mini"]  # the base row first: it needs no training
