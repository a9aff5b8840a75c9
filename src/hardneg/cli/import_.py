"""`hardneg import`: a sentence-transformers dataset read back as hardneg triplets."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli.common import app, print_counts, user_errors


@app.command("import")
def import_command(
    dataset: Path = typer.Argument(..., help="A save_to_disk folder, a Parquet file or JSON lines of rows."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    source: str = typer.Option("imported", "--source", help="Source of the negatives whose row names none."),
) -> None:
    """Read a sentence-transformers dataset (anchor, positive, negative or negative_1..n; optional
    source and score columns) as hardneg triplets, for combine, audit, train and the runner."""
    from hardneg.data.exchange import import_dataset

    with user_errors():
        counts = import_dataset(dataset, output, source=source)
    print_counts(counts, f"wrote {output}")
