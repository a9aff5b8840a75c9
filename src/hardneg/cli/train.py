"""`hardneg train`: a bi-encoder fine-tuned on triplets. Flags from TrainSettings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import QuietOption, app, console, user_errors
from hardneg.cli.options import ConfigOptions, Flag, zero_means_none
from hardneg.settings.training import TrainSettings

TRAIN = ConfigOptions(
    TrainSettings,
    flatten=("mnrl", "gist"),  # each loss's options: --hardness-mode, --guide, --margin...
    exclude=("processes",),  # the runner's: launch `hardneg train` itself with torchrun
    flags={
        "num_negatives": Flag("-n"),
        "skip_empty": Flag("--skip-empty"),
        "patience": Flag(convert=zero_means_none, note="0: never stop early."),
    },
)


@app.command("train")
@TRAIN
def train_command(
    triplets: Path = typer.Option(
        ...,
        "--triplets",
        "-t",
        help="triplets.jsonl (mined, generated or combined), or an exported HF folder or Parquet file.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Fine-tune a bi-encoder (MultipleNegativesRankingLoss, or --loss); resumes from its checkpoints."""
    from hardneg.stages import run_kind

    with user_errors():
        result = run_kind(
            "train", TRAIN.build(settings), {"triplets": triplets}, output, show_progress=not quiet
        )
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun / accelerate: rank 0 alone reports, as it alone writes
    counts = result.counts
    how = (
        "reused the model trained earlier from the same triplets and settings" if result.reused else "trained"
    )
    console.print(
        f"{how}: {counts['steps']} steps, validation loss {counts['start_validation_loss']} before, best "
        f"{counts['best_validation_loss']} "
        f"at step {counts['best_step']}; saved to {output} (evaluate it with --retriever {output})"
    )
