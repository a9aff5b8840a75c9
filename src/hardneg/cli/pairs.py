"""`hardneg pairs`: (query, positive) pairs from a split's judgments. Flags from PairsSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, console, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.data import PairsSettings

PAIRS = ConfigOptions(
    PairsSettings, flags={"dataset": Flag("-d"), "one_per_query": Flag("--one-per-query/--all-positives")}
)


@app.command("pairs")
@PAIRS
def pairs_command(
    output: Path = typer.Option(..., "--output", "-o", help="pairs.jsonl to write."), **settings: Any
) -> None:
    """(query, positive passage) pairs from a split's judgments: the input of every negative source."""
    from hardneg.stages import run_kind

    with user_errors():
        result = run_kind("pairs", PAIRS.build(settings), {}, output, show_progress=False)
    console.print(f"wrote {result.counts['pairs']} pairs ({result.counts['queries']} queries) to {output}")
