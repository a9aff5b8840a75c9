"""The results table in its three forms: Markdown (cells with intervals and test marks), CSV (one
line per cell and metric) and a plot (every row on the same line of every column's panel)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hardneg.core.io import save_figure
from hardneg.evaluation.stats import ALPHA
from hardneg.reporting.cells import cell_value

NAMES = {"ndcg@10": "nDCG@10", "recall@100": "Recall@100", "mrr@10": "MRR@10", "map@100": "MAP@100"}


CORPUS_FREE = " ◇"
"""Marks a corpus-free row in the tables."""


def _cell_text(entry: dict, reference_values: dict[str, float]) -> str:
    low, high = entry["ci"]
    marks = ""
    for field, letter in (("vs_base", "B"), ("vs_baseline", "M")):
        test = entry.get(field)
        if test is not None and test["p_holm"] < ALPHA:
            better = entry["value"] > reference_values[field]
            marks += (" ▲" if better else " ▼") + letter
    return f"{entry['value']:.4f} [{low:.3f}, {high:.3f}]{marks}"


def markdown(results: dict[str, Any], metric: str) -> str:
    columns = results["columns"]
    lines = ["| negatives | " + " | ".join(columns) + " | average |", "|---" * (len(columns) + 2) + "|"]
    by_source = {row["source"]: row for row in results["rows"]}
    best = {
        c: max(
            (r["cells"][c]["metrics"][metric]["value"] for r in results["rows"] if c in r["cells"]),
            default=None,
        )
        for c in columns
    }
    for row in results["rows"]:
        texts = []
        for column in columns:
            entry = row["cells"].get(column, {}).get("metrics", {}).get(metric)
            if entry is None:
                texts.append("(not run)")
                continue
            references = {
                "vs_base": _value(by_source, "base", column, metric),
                "vs_baseline": _value(by_source, results["baseline"], column, metric),
            }
            text = _cell_text(entry, references)
            texts.append(f"**{text}**" if entry["value"] == best[column] else text)
        average = row["average"][metric]
        texts.append(f"{average:.4f}" if average is not None else "")
        mark = CORPUS_FREE if row.get("corpus_free") and row["source"] != "base" else ""
        lines.append(f"| {row['label']}{mark} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def _value(by_source: dict, source: str | None, column: str, metric: str) -> float | None:
    return cell_value(by_source[source], column, metric) if source in by_source else None


def to_csv(results: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "source",
            "label",
            "column",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "queries",
            "p_vs_base_holm",
            "p_vs_baseline_holm",
            "corpus_free",
        ]
    )
    for row in results["rows"]:
        for column, cell in row["cells"].items():
            for metric, entry in cell["metrics"].items():
                writer.writerow(
                    [
                        row["source"],
                        row["label"],
                        column,
                        metric,
                        f"{entry['value']:.6f}",
                        f"{entry['ci'][0]:.6f}",
                        f"{entry['ci'][1]:.6f}",
                        cell["queries"],
                        _p(entry, "vs_base"),
                        _p(entry, "vs_baseline"),
                        {True: "yes", False: "no"}.get(row.get("corpus_free"), ""),
                    ]
                )
    return buffer.getvalue()


def _p(entry: dict, field: str) -> str:
    return f"{entry[field]['p_holm']:.6f}" if field in entry else ""


def plot_metric(results: dict[str, Any], metric: str, output: Path) -> Path:
    """One panel per column, every row on the same line of every panel (a cell not run stays blank),
    so a row reads across columns: each source's value with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns, rows = results["columns"], results["rows"]
    figure, axes = plt.subplots(
        1,
        len(columns),
        figsize=(3.5 + 2.6 * len(columns), 0.32 * len(rows) + 1.6),
        sharey=True,
        squeeze=False,
    )
    for axis, column in zip(axes[0], columns):
        positions, values, errors = [], [], [[], []]
        for position, row in enumerate(rows):
            entry = row["cells"].get(column, {}).get("metrics", {}).get(metric)
            if entry is None:
                axis.text(
                    0.02,
                    position,
                    "not run",
                    transform=axis.get_yaxis_transform(),
                    va="center",
                    fontsize=7,
                    color="grey",
                )
                continue
            positions.append(position)
            values.append(entry["value"])
            errors[0].append(
                max(0.0, entry["value"] - entry["ci"][0])
            )  # rounding can put the mean a hair outside
            errors[1].append(max(0.0, entry["ci"][1] - entry["value"]))
        axis.barh(positions, values, xerr=errors, height=0.7, color="#4c72b0", ecolor="black", capsize=2)
        axis.set_xlabel(NAMES.get(metric, metric))
        axis.set_title(column, fontsize=9)
        low = min(v - e for v, e in zip(values, errors[0])) if values else 0
        axis.set_xlim(max(0.0, low - 0.05), None)
    axes[0][0].set_yticks(range(len(rows)), [row["label"] for row in rows], fontsize=8)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    figure.suptitle(
        f"{results['name']}: {NAMES.get(metric, metric)} with 95% bootstrap intervals", fontsize=10
    )
    return save_figure(figure, output)
