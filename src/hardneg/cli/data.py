"""`hardneg data validate|list|show`: what BEIR folders there are, and whether they are sound."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hardneg.cli.common import (
    DataRootOption,
    console,
    data_app,
    errors,
    print_table,
    user_errors,
)


@data_app.command("validate")
def data_validate(path: Path = typer.Argument(..., help="A BEIR folder.")) -> None:
    """Check a BEIR folder; print every problem as FILE:LINE: message (exit 2) or its counts."""
    from hardneg.data.beir import validate_beir

    dataset, problems = validate_beir(path)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        errors.print(f"{len(problems)} problem(s) in {path}", highlight=False)
        raise typer.Exit(2)
    _print_counts(dataset.counts(), f"{path}: valid")


@data_app.command("list")
def data_list(data_root: Optional[Path] = DataRootOption) -> None:
    """Datasets found under the data roots, and BEIR names that would be downloaded."""
    from hardneg.data.registry import list_datasets

    table = Table("name", "status", "path")
    for entry in list_datasets(data_root):
        table.add_row(entry.name, entry.status, str(entry.path or ""))
    print_table(console, table)


@data_app.command("show")
def data_show(name: str, data_root: Optional[Path] = DataRootOption) -> None:
    """Counts per split of a dataset (a name or a path; a missing BEIR name is downloaded)."""
    from hardneg.data.registry import load_dataset

    with user_errors():
        dataset = load_dataset(name, data_root)
    _print_counts(dataset.counts(), f"{dataset.name} ({dataset.path})")


def _print_counts(counts: dict[str, dict[str, int]], title: str) -> None:
    table = Table("split", "queries", "judgments", title=title)
    totals = counts.pop("all")
    for split, values in counts.items():
        table.add_row(split, str(values["queries"]), str(values["judgments"]))
    print_table(console, table)
    console.print(f"documents: {totals['documents']}, queries (all splits): {totals['queries']}")
