"""`hardneg mine`: negatives mined from the corpus (or the pairs' own positives) for every pair.
Flags from MineSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import QuietOption, app, print_counts, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.mining import MineSettings

MINE = ConfigOptions(
    MineSettings,
    flatten=("filters",),
    flags={
        "dataset": Flag("-d", note="With --corpus pool it is optional: it lends only its qrels."),
        "num_negatives": Flag("-n"),
        "method": Flag("-m"),
    },
)


@app.command("mine")
@MINE
def mine_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl from 'hardneg pairs'."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Mine hard negatives for every pair from the corpus, or with --corpus pool from the other pairs'
    positives; write triplets and a manifest."""
    from hardneg.stages import run_kind

    with user_errors():
        # --batch-size is the dense retriever's too: one flag for whichever model the method runs.
        config = MINE.build(settings, dense={"batch_size": settings["batch_size"]})
        result = run_kind("mine", config, {"pairs": pairs}, output, show_progress=not quiet)
    print_counts(result.counts, f"mined {output}")
