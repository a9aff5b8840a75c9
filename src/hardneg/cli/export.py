"""`hardneg export`: triplets as a sentence-transformers dataset (a Hugging Face folder, Parquet or
JSON lines). Flags from ExportSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, print_counts, user_errors
from hardneg.cli.options import ConfigOptions
from hardneg.settings.exchange import ExportSettings

EXPORT = ConfigOptions(ExportSettings)


@app.command("export")
@EXPORT
def export_command(
    triplets: list[Path] = typer.Argument(
        ..., help="Triplet files (JSONL; or exported folders / Parquet files)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder (hf) or file (parquet, jsonl) to write."),
    **settings: Any,
) -> None:
    """Write triplets as a sentence-transformers training dataset, with a manifest."""
    from hardneg.data.exchange import export_triplets

    with user_errors():
        result = export_triplets(triplets, EXPORT.build(settings), output)
    print_counts(result.counts, f"wrote {output}")
