"""Commands between hardneg's triplets and sentence-transformers datasets: `export` writes a
Hugging Face dataset folder, Parquet or JSON lines; `import` reads such a dataset back as triplets.
Export's flags come from ``ExportConfig`` (hardneg.cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, print_counts, user_errors
from hardneg.cli.options import ConfigOptions
from hardneg.exchange import ExportConfig

EXPORT = ConfigOptions(ExportConfig)


@app.command("export")
@EXPORT
def export_command(
    triplets: list[Path] = typer.Argument(..., help="Triplet files (JSONL; or exported folders / Parquet files)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder (hf) or file (parquet, jsonl) to write."),
    **settings: Any,
) -> None:
    """Write triplets as a sentence-transformers training dataset, with a manifest."""
    from hardneg.exchange import export_triplets

    with user_errors():
        result = export_triplets(triplets, EXPORT.build(settings), output)
    print_counts(result.counts, f"wrote {output}")


@app.command("import")
def import_command(
    dataset: Path = typer.Argument(..., help="A save_to_disk folder, a Parquet file or JSON lines of rows."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    source: str = typer.Option("imported", "--source", help="Source of the negatives whose row names none."),
) -> None:
    """Read a sentence-transformers dataset (anchor, positive, negative or negative_1..n; optional
    source and score columns) as hardneg triplets, for combine, audit, train and the runner."""
    from hardneg.exchange import import_dataset

    with user_errors():
        counts = import_dataset(dataset, output, source=source)
    print_counts(counts, f"wrote {output}")
