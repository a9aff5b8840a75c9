"""`hardneg train-cross-encoder`: a re-ranker trained offline on BM25 negatives, for mining and
filters. Flags from CrossEncoderTrainSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import QuietOption, app, console, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.training import CrossEncoderTrainSettings

CROSS_ENCODER = ConfigOptions(
    CrossEncoderTrainSettings,
    exclude=("range_min", "warmup_ratio"),
    flags={
        "dataset": Flag("-d", note="With --corpus pool it is optional: it lends only its qrels."),
        "num_negatives": Flag("-n"),
    },
)


@app.command("train-cross-encoder")
@CROSS_ENCODER
def train_cross_encoder_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl (e.g. the dataset's train split)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Train a cross-encoder offline on (query, positive, BM25 negative) examples."""
    from hardneg.stages import run_kind

    with user_errors():
        run_kind("train-cross-encoder", CROSS_ENCODER.build(settings), {"pairs": pairs}, output, not quiet)
    console.print(f"saved the cross-encoder to {output}; use it as --model {output} or --reranker {output}")
