"""`hardneg combine`: triplet files merged by source and filtered. Flags from CombineSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import QuietOption, app, print_counts, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.combine import CombineSettings

COMBINE = ConfigOptions(
    CombineSettings,
    flatten=("filters",),
    prefixed=("judge",),
    exclude=("judge_slots", "judge_context_per_slot", "judge_backoff_max"),
    flags={
        "sources": Flag("--source"),
        "pairs": Flag("--all-pairs", switch="all"),
        "scorer": Flag(note="Required here once a threshold is set."),
    },
)


@app.command("combine")
@COMBINE
def combine_command(
    inputs: list[Path] = typer.Argument(
        ..., help="Triplet files made from the same pairs (one is fine, to filter)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Merge triplet files by source and filter their negatives; write triplets and a manifest."""
    from hardneg.stages import run_kind

    with user_errors():
        result = run_kind("combine", COMBINE.build(settings), {"triplets": list(inputs)}, output, not quiet)
    print_counts(result.counts, f"wrote {output}")
