"""What each recipe step did: the rows of a study that differ by one step of their recipe, set side by
side per column, so "does GIST help here?" or "what did the filter cost?" is read off the table
rather than worked out by hand.

A pair is found in the plan itself, on one training set:
- a row whose negatives are a combination of one other row's negatives (the same negatives passed
  through, filtered, scored, or trained with another loss) against that row;
- a row whose negatives mix several rows' negatives against each of them;
- a row mined from the pool against the row mined the same way from the corpus, and a pool drawn
  from more pairs (``pool_pairs``) against the pool of the mined pairs alone.
Generated rows against each other are the report's "Prompts side by side"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.core.io import save_figure
from hardneg.evaluation.stats import ALPHA, bootstrap_ci, holm, paired_test
from hardneg.experiment.planfile import CellRef, PlanFile, StageNode
from hardneg.reporting.cells import cell_value, keyed
from hardneg.settings.base import dotted

NOT_A_STEP = {"inputs", "dataset", "show_progress"}
"""Config keys that say where a stage reads, not what it does."""


def changes(
    before: dict[str, Any], after: dict[str, Any], shown: tuple[dict[str, Any], dict[str, Any]] | None = None
) -> list[str]:
    """The settings that differ, as 'key: old -> new' (or 'key: new' where unset before); ``shown``:
    the full configs to read the values from (defaults included) when ``before``/``after`` hold only
    what the key sees."""
    a, b = dotted(before, NOT_A_STEP), dotted(after, NOT_A_STEP)
    full_a, full_b = (dotted(c, NOT_A_STEP) for c in shown) if shown else (a, b)
    found = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            old, new = full_a.get(key, a.get(key)), full_b.get(key, b.get(key))
            found.append(f"{key}: {new}" if old is None else f"{key}: {old} -> {new}")
    return found


def stage_changes(before: StageNode | None, after: StageNode) -> list[str]:
    """What ``after`` sets differently from ``before`` (None: from its kind's defaults), among the
    settings that decide its output."""
    from hardneg.stages.registry import kind_of

    if before is None:
        default = kind_of(after.kind).config_type().model_dump(mode="json")
        return changes({}, keyed(after), (default, after.config))
    return changes(keyed(before), keyed(after), (before.config, after.config))


def _pairs(plan: PlanFile, train: str) -> list[tuple[CellRef, CellRef, str, list[str]]]:
    """(reference row, recipe row, kind of step, what changed) on one training set."""
    stages = {s.output: s for s in plan.stages}
    cells = {}
    for cell in plan.cells:
        if cell.train == train and cell.source != "base" and cell.negatives in stages:
            cells.setdefault(cell.source, cell)
    by_negatives: dict[str, list[CellRef]] = {}
    for cell in cells.values():
        by_negatives.setdefault(cell.negatives, []).append(cell)
    found = []
    for cell in cells.values():
        stage = stages[cell.negatives]
        if stage.kind == "combine":
            inputs = stage.inputs.get("triplets", [])
            steps = stage_changes(None, stage)
            for path in inputs:
                others = [c.label for p in inputs if p != path for c in by_negatives.get(p, [])[:1]]
                mixed = [f"mixed with {', '.join(others) or 'another source'}"] if len(inputs) > 1 else []
                for reference in by_negatives.get(path, []):
                    here = mixed + steps + _training_changes(stages, reference, cell)
                    found.append((reference, cell, "mix" if mixed else _kind(here), here))
        elif stage.kind == "mine" and stage.config.get("corpus") == "pool":
            for other in cells.values():
                twin = stages[other.negatives]
                if twin.kind != "mine" or twin.config.get("method") != stage.config.get("method"):
                    continue
                corpus = twin.config.get("corpus", "dataset") == "dataset"
                if corpus or ("pool" in stage.inputs and "pool" not in twin.inputs):
                    steps = _pool_steps(stages, stage, stage_changes(twin, stage))
                    found.append((other, cell, "pool", steps + _training_changes(stages, other, cell)))
    return found


def _pool_steps(stages: dict[str, StageNode], stage: StageNode, steps: list[str]) -> list[str]:
    """'pool_pairs: @input:pool' said as what it is: the pool drawn from other pairs than the mined
    ones ('pool pairs: max_pairs: 500 -> None')."""
    if "pool" not in stage.inputs:
        return steps
    pairs, pool = stages[stage.inputs["pairs"][0]], stages[stage.inputs["pool"][0]]
    drawn = "; ".join(changes(pairs.config, pool.config)) or "as the mined pairs"
    return [f"pool pairs: {drawn}" if step.startswith("pool_pairs:") else step for step in steps]


def _training_changes(stages: dict[str, StageNode], a: CellRef, b: CellRef) -> list[str]:
    if a.model not in stages or b.model not in stages:
        return []
    return [f"train {c}" for c in stage_changes(stages[a.model], stages[b.model])]


def _kind(steps: list[str]) -> str:
    if any(s.startswith("train loss") for s in steps):
        return "loss"
    if any(s.startswith(("filters.", "length_band", "judge")) for s in steps):
        return "filter"
    if any(s.startswith("score_with") for s in steps):
        return "score"
    return "other"


def effects(
    results: dict[str, Any], plan: PlanFile, per_query: dict[tuple[str, str], dict]
) -> list[dict[str, Any]]:
    """Every one-step pair with, per column of its training set, the recipe row minus the reference
    row and a paired randomization test, Holm-corrected over the pairs of that column."""
    metric = results["metrics"][0]
    rows = {r["source"]: r for r in results["rows"]}
    resamples = plan.evaluation["bootstrap_resamples"]
    seed = plan.evaluation.get("bootstrap_seed", 0)
    trains = list(dict.fromkeys(c.train for c in plan.cells if c.train))
    found: list[dict[str, Any]] = []
    raw: dict[str, dict[int, float]] = {}
    for train in trains:
        columns = [c for c in results["columns"] if results["column_datasets"][c]["train"] == train]
        for reference, recipe, kind, steps in _pairs(plan, train):
            if reference.source not in rows or recipe.source not in rows:
                continue
            entry: dict[str, Any] = {
                "train": train,
                "kind": kind,
                "changes": steps,
                "from": {"source": reference.source, "label": reference.label},
                "to": {"source": recipe.source, "label": recipe.label},
                "columns": {},
            }
            for column in columns:
                ours, theirs = (per_query.get((s, column)) for s in (recipe.source, reference.source))
                if ours is None or theirs is None:
                    continue
                difference = cell_value(rows[recipe.source], column, metric) - cell_value(
                    rows[reference.source], column, metric
                )
                a = {q: s[metric] for q, s in ours.items()}
                b = {q: s[metric] for q, s in theirs.items()}
                p = paired_test(a, b, resamples, seed)
                paired = [a[q] - b[q] for q in sorted(set(a) & set(b))]
                enough = len(paired) >= 2  # one query's difference is no interval, however narrow it looks
                low, high = bootstrap_ci(paired, resamples=resamples, seed=seed) if enough else (None, None)
                entry["columns"][column] = {"difference": difference, "ci": [low, high], "p": p}
                raw.setdefault(column, {})[len(found)] = p
            if entry["columns"]:
                found.append(entry)
    for column, pvalues in raw.items():
        for index, adjusted in holm({str(i): p for i, p in pvalues.items()}).items():
            found[int(index)]["columns"][column]["p_holm"] = adjusted
    return found


def effects_section(found: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Per training set, one line per pair: what changed, and the difference in each of its columns."""
    if not found:
        return []
    lines = [
        "Rows that differ by one step of their recipe, on the same training pairs: the recipe row "
        "minus the row it starts from, per column, with its 95% paired-bootstrap interval (not adjusted "
        "for the number of pairs, as p is: an interval may leave 0 where p does not pass). p: paired "
        "randomization test over queries, Holm-corrected over the pairs of each column; "
        f"▲/▼ where p < {ALPHA}.",
    ]
    for train in dict.fromkeys(e["train"] for e in found):
        pairs = [e for e in found if e["train"] == train]
        shown = [c for c in columns if any(c in e["columns"] for e in pairs)]
        lines += [
            "",
            f"### Trained on {train}",
            "",
            "| step | from | to | what changed | " + " | ".join(shown) + " |",
            "|---" * (4 + len(shown)) + "|",
        ]
        for e in pairs:
            cells = []
            for column in shown:
                c = e["columns"].get(column)
                if c is None:
                    cells.append("")
                    continue
                mark = (" ▲" if c["difference"] > 0 else " ▼") if c["p_holm"] < ALPHA else ""
                low, high = c.get("ci") or (None, None)
                interval = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
                cells.append(f"{c['difference']:+.4f}{interval} (p {c['p_holm']:.2g}){mark}")
            what = "; ".join(e["changes"]) or "-"
            lines.append(
                f"| {e['kind']} | {e['from']['label']} | {e['to']['label']} | {what} | "
                + " | ".join(cells)
                + " |"
            )
    return lines


def plot_effects(found: list[dict[str, Any]], train: str, metric: str, output: Path) -> Path | None:
    """A forest plot of one training set's steps: per column, each step's difference with its 95%
    paired-bootstrap interval (the queries resampled); a step whose interval leaves 0 did something."""
    pairs = [e for e in found if e["train"] == train]
    columns = list(dict.fromkeys(c for e in pairs for c in e["columns"]))
    if not pairs or not columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(columns), figsize=(5 + 2.6 * len(columns), 0.34 * len(pairs) + 1.4), sharey=True, squeeze=False
    )
    names = [f"{e['from']['label']} -> {e['to']['label']}" for e in pairs]
    for axis, column in zip(axes[0], columns):
        for position, entry in enumerate(pairs):
            cell = entry["columns"].get(column)
            if cell is None:
                continue
            low, high = cell["ci"]
            if low is None or high is None:
                continue
            color = "#c44e52" if high < 0 else "#55a868" if low > 0 else "#4c72b0"
            difference = cell["difference"]  # the means' difference can sit a hair outside numpy's interval
            axis.errorbar(
                difference,
                position,
                xerr=[[max(0.0, difference - low)], [max(0.0, high - difference)]],
                fmt="o",
                color=color,
                capsize=2,
                markersize=4,
            )
        axis.axvline(0, color="grey", linewidth=0.8)
        axis.set_title(column, fontsize=9)
        axis.set_xlabel(f"{metric} difference")
    axes[0][0].set_yticks(range(len(pairs)), names, fontsize=7)
    axes[0][0].invert_yaxis()
    figure.suptitle(f"{train}: what each recipe step did (95% interval)", fontsize=10)
    return save_figure(figure, output)
