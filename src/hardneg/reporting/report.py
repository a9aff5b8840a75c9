"""The study's table with what it did not report: a bootstrap interval per cell and paired tests
over queries against the base model and against the mined baseline (Holm-corrected per column),
as Markdown, CSV and JSON, with plots. Built from the run folder alone (`hardneg report`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.io import atomic_open, write_json
from hardneg.evaluation.stats import ALPHA, bootstrap_ci, holm, paired_test
from hardneg.experiment.planfile import CellRef, PlanFile
from hardneg.reporting.cells import base_values
from hardneg.reporting.costs import cost_section
from hardneg.reporting.delivery import delivery_section
from hardneg.reporting.effects import effects, effects_section, plot_effects
from hardneg.reporting.pools import pools, pools_section
from hardneg.reporting.questions import question_sections
from hardneg.reporting.sections import (
    audit_section,
    failed_upstream,
    pool_sizes,
    review_section,
    test_set_notes,
    training_section,
)
from hardneg.reporting.table import CORPUS_FREE, NAMES, markdown, plot_metric, to_csv
from hardneg.stages.registry import kind_label

__all__ = [  # the table's forms moved to reporting/table.py; their old import path still works
    "CORPUS_FREE",
    "NAMES",
    "Report",
    "collect",
    "corpus_lines",
    "markdown",
    "plot_metric",
    "to_csv",
    "write_report",
]


@dataclass
class Report:
    path: Path
    markdown_table: str
    results: dict[str, Any]


def _column(train: str | None, test: str) -> str:
    return test if train in (None, test) else f"{train}->{test}"


def collect(run_dir: Path, plan: PlanFile, per_query: dict | None = None) -> dict[str, Any]:
    """Per row (source) and column (train->test): metric means, intervals and adjusted p-values.
    ``per_query``, when given, is filled with each (source, column)'s per-query scores."""
    resamples, seed = plan.evaluation["bootstrap_resamples"], plan.evaluation.get("bootstrap_seed", 0)
    columns: list[tuple[str | None, str]] = []
    for cell in plan.cells:
        if cell.source != "base" and (cell.train, cell.test) not in columns:
            columns.append((cell.train, cell.test))
    if not columns:  # the base model alone: one column per test set
        columns = list(dict.fromkeys((None, cell.test) for cell in plan.cells))
    per_query = {} if per_query is None else per_query
    rows: dict[str, dict] = {}
    missing: list[str] = []
    waiting: dict[str, int] = {}  # row (source) -> evaluations not run yet
    labels: dict[str, str] = {}
    failures: dict[str, list] = {}  # row (source) -> [the first failed stage waited for, evaluations]
    failed = failed_upstream(run_dir, plan)
    seen = set()
    for cell in plan.cells:
        if (cell.source, cell.evaluation) in seen:  # the base row repeats per training set
            continue
        seen.add((cell.source, cell.evaluation))
        path = run_dir / cell.evaluation
        if not path.exists():
            missing.append(cell.evaluation)
            labels[cell.source] = cell.label
            why = failed(cell.evaluation)
            if why:  # counted apart: a rerun does not finish it unless the failure's cause is fixed
                failures.setdefault(cell.source, [why, 0])[1] += 1
            else:
                waiting[cell.source] = waiting.get(cell.source, 0) + 1
            continue
        result = json.loads(path.read_text())
        kind = {"kind": cell.kind, "made_by": kind_label(cell.kind)} if cell.kind else {}
        row = rows.setdefault(cell.source, {"source": cell.source, "label": cell.label, **kind, "cells": {}})
        _corpus_access(row, cell)
        targets = (
            [c for c in columns if c[1] == cell.test] if cell.source == "base" else [(cell.train, cell.test)]
        )
        for train, test in targets:
            name = _column(train, test)
            per_query[(cell.source, name)] = result["per_query"]
            stats = {}
            for metric in plan.metrics:
                values = [scores[metric] for scores in result["per_query"].values()]
                low, high = bootstrap_ci(values, resamples=resamples, seed=seed)
                stats[metric] = {"value": result["metrics"][metric], "ci": [low, high]}
            rows[cell.source]["cells"][name] = {"queries": len(result["per_query"]), "metrics": stats}
    names = [_column(t, s) for t, s in columns]
    for reference, field in (("base", "vs_base"), (plan.baseline, "vs_baseline")):
        if reference is None:
            continue
        for name in names:
            if (reference, name) not in per_query:
                continue
            for metric in plan.metrics:
                _compare(rows, per_query, reference, name, metric, field, resamples, seed)
    for row in rows.values():
        complete = all(name in row["cells"] for name in names)
        row["average"] = {
            metric: (
                sum(row["cells"][name]["metrics"][metric]["value"] for name in names) / len(names)
                if complete and names
                else None
            )
            for metric in plan.metrics
        }
    return {
        "name": plan.name,
        "base_model": plan.base_model,
        "baseline": plan.baseline,
        "metrics": plan.metrics,
        "columns": names,
        "column_datasets": {_column(t, s): {"train": t or s, "test": s} for t, s in columns},
        "notes": plan.notes,
        "missing": missing,
        "missing_by_row": [
            {
                "source": s,
                "label": labels[s],
                "evaluations": waiting.get(s, 0),
                **({"failed": failures[s][0], "failed_evaluations": failures[s][1]} if s in failures else {}),
            }
            for s in labels
        ],
        "rows": list(rows.values()),
    }


def _corpus_access(row: dict, cell: CellRef) -> None:
    """A row is corpus-free when no cell's training set read a train corpus (the base row: none).
    ``more_pairs``: per training set, the pairs it drew on besides its training pairs."""
    if cell.more_pairs and cell.train is not None:
        row.setdefault("more_pairs", {})[cell.train] = cell.more_pairs
    reads = [] if cell.source == "base" else cell.corpus_reads
    if reads is None or row.get("corpus_reads", []) is None:
        row["corpus_free"], row["corpus_reads"] = None, None
        return
    row["corpus_reads"] = sorted(set(row.get("corpus_reads", [])) | set(reads))
    row["corpus_free"] = not row["corpus_reads"]


def corpus_lines(results: dict[str, Any]) -> list[str]:
    """The legend of the corpus-free mark, and what makes each other row read a corpus: said even
    when no row is corpus-free, since a filter's scorer can read it where a user would not look."""
    rows = [row for row in results["rows"] if row["source"] != "base"]
    reading = [row for row in rows if row.get("corpus_reads")]
    unknown = [row["label"] for row in rows if row.get("corpus_free") is None]
    if any(row.get("corpus_free") for row in rows):
        lines = [
            f"-{CORPUS_FREE} corpus-free: nothing before the row's training (mining, scorer or "
            "cross-encoder training, filters, judge) read the train dataset's corpus beyond the pairs' "
            "own positives"
        ]
    else:
        lines = ["- no row is corpus-free"] if reading and not unknown else []
    for row in reading:
        lines.append(f"- not corpus-free: {row['label']} (reads it in {', '.join(row['corpus_reads'])})")
    if unknown and lines:  # an older plan throughout: nothing is known, so nothing is said
        lines.append(f"- corpus access unknown (a plan from an older version): {', '.join(unknown)}")
    return lines


def _compare(
    rows, per_query, reference: str, column: str, metric: str, field: str, resamples: int, seed: int
) -> None:
    """Paired tests of every other row against ``reference`` in one column; Holm over the rows."""
    ours = {q: s[metric] for q, s in per_query[(reference, column)].items()}
    raw = {}
    for (source, name), scores in per_query.items():
        if name == column and source != reference:
            raw[source] = paired_test({q: s[metric] for q, s in scores.items()}, ours, resamples, seed)
    for source, adjusted in holm(raw).items():
        entry = rows[source]["cells"][column]["metrics"][metric]
        entry[field] = {"p": raw[source], "p_holm": adjusted, "reference": reference}


def write_report(
    run_dir: str | Path,
    show_progress: bool = False,
    plan: PlanFile | None = None,
    out: str | Path | None = None,
) -> Report:
    """The report of ``plan`` (default: the run folder's own plan.json) over the evaluations finished
    in ``run_dir``, written to ``out`` (default: the run folder). Another plan is how a study run in
    phases, or still running, gets the whole study's report of what has finished so far."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HardnegError(f"{run_dir}: no such run folder")
    plan = plan or PlanFile.read(run_dir)
    out = Path(out or run_dir)
    per_query: dict[tuple[str, str], dict] = {}
    results = collect(run_dir, plan, per_query)
    if not results["rows"]:
        raise HardnegError(f"{run_dir}: no evaluation has finished yet")
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    main_metric = results["metrics"][0]
    against = "the base model (B)" + (
        f" and the {results['baseline']} negatives' model (M)" if results["baseline"] else ""
    )
    sources = any(cell.source != "base" for cell in plan.cells)
    tuned = "fine-tuned on each source's negatives" if sources else "alone (no sources)"
    lines = [
        f"# Results: {results['name']}",
        "",
        f"Base model `{results['base_model']}` {tuned}; mean over test queries with a 95% "
        f"bootstrap interval (queries resampled). ▲/▼ marks a row significantly above/below {against}: "
        "paired randomization test over queries, Holm-corrected over the rows of each column, "
        f"p < {ALPHA}. Best per column in bold.",
        "",
    ]
    lines += [f"- {note}" for note in results["notes"]]
    results["test_set_notes"] = test_set_notes(run_dir, plan)
    lines += [f"- {line}" for line in pool_sizes(run_dir, plan) + results["test_set_notes"]]
    lines += corpus_lines(results)
    waiting = [m for m in results["missing_by_row"] if m["evaluations"]]
    if waiting:
        rows = ", ".join(f"{m['label']} ({m['evaluations']})" for m in waiting)
        count = sum(m["evaluations"] for m in waiting)
        lines += [f"- not run yet: {count} evaluations (rerun `hardneg run` to finish): {rows}"]
    for m in results["missing_by_row"]:
        if "failed" in m:  # its own error: a rerun fails the same way until its cause is fixed
            lines.append(
                f"- waiting on a failed stage, {m['failed_evaluations']} evaluation(s) of {m['label']} "
                f"(fix the cause, then rerun `hardneg run`): {m['failed']}"
            )
    table = ""
    for metric in results["metrics"]:
        block = markdown(results, metric)
        table = table or block
        plot = plot_metric(results, metric, out / f"results-{metric.replace('@', '_')}.png")
        lines += ["", f"## {NAMES.get(metric, metric)}", "", block, "", f"![{metric}]({plot.name})"]
    training_lines, training = training_section(run_dir, plan)
    if training_lines:
        lines += [
            "",
            "## Training data",
            "",
            "Each model's validation loss is measured on its own source's held-out negatives: "
            "compare before and after within a row, not across rows (false negatives in a source "
            "inflate its loss).",
            "",
        ] + training_lines
    results["training"] = training
    audit_lines, audits = audit_section(run_dir, plan, out)
    if audit_lines:
        lines += ["", "## How hard are the negatives?", ""] + audit_lines
    results["audits"] = audits
    results["pools"] = pools(results, plan, run_dir)
    pool_lines = pools_section(results["pools"], base_values(results))
    if pool_lines:
        lines += ["", "## Pools", "", *pool_lines]
    delivery_lines, results["delivery"] = delivery_section(run_dir, plan)
    if delivery_lines:
        lines += ["", "## What each generator delivered"] + delivery_lines
    lines += question_sections(plan, results, per_query)
    results["effects"] = effects(results, plan, per_query)
    effect_lines = effects_section(results["effects"], results["columns"])
    if effect_lines:
        lines += ["", "## What each recipe step did", "", *effect_lines]
        for train in dict.fromkeys(e["train"] for e in results["effects"]):
            plot = plot_effects(results["effects"], train, main_metric, out / f"effects-{train}.png")
            lines += ["", f"![{train}: recipe steps]({plot.name})"] if plot else []
    cost_lines, results["costs"] = cost_section(run_dir, plan)
    if cost_lines:
        lines += ["", "## What the run cost"] + cost_lines
    review_lines, results["review"] = review_section(run_dir)
    if review_lines:
        lines += [""] + review_lines
    results["main_metric"] = main_metric
    path = out / "results.md"
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")
    with atomic_open(out / "results.csv") as handle:
        handle.write(to_csv(results))
    write_json(out / "results.json", results)
    return Report(path, f"{NAMES.get(main_metric, main_metric)}\n" + table, results)
