"""Commands that make pairs and mine negatives from a corpus, and the offline cross-encoder.
Their settings' flags come from the config classes (hardneg.cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import QuietOption, app, console, print_counts, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.config import CrossEncoderTrainConfig, MineConfig, PairsConfig

SHORT = {"dataset": Flag("-d"), "num_negatives": Flag("-n")}
PAIRS = ConfigOptions(
    PairsConfig, flags={"dataset": SHORT["dataset"], "one_per_query": Flag("--one-per-query/--all-positives")}
)
MINE = ConfigOptions(MineConfig, flatten=("filters",), flags={**SHORT, "method": Flag("-m")})
CROSS_ENCODER = ConfigOptions(CrossEncoderTrainConfig, exclude=("range_min", "warmup_ratio"), flags=SHORT)


@app.command("pairs")
@PAIRS
def pairs_command(
    output: Path = typer.Option(..., "--output", "-o", help="pairs.jsonl to write."), **settings: Any
) -> None:
    """(query, positive passage) pairs from a split's judgments: the input of every negative source."""
    from hardneg.pairs import make_pairs

    with user_errors():
        pairs = make_pairs(PAIRS.build(settings), output)
    console.print(f"wrote {len(pairs)} pairs ({len({p.query_id for p in pairs})} queries) to {output}")


@app.command("mine")
@MINE
def mine_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl from 'hardneg pairs'."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Mine hard negatives from the corpus for every pair; write triplets and a manifest."""
    from hardneg.mining import mine_file

    with user_errors():
        # --batch-size is the dense retriever's too: one flag for whichever model the method runs.
        config = MINE.build(settings, dense={"batch_size": settings["batch_size"]})
        result = mine_file(pairs, config, output, show_progress=not quiet)
    print_counts(result.counts, f"mined {output}")


@app.command("train-cross-encoder")
@CROSS_ENCODER
def train_cross_encoder_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl (e.g. the dataset's train split)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Train a cross-encoder offline on (query, positive, BM25 negative) examples."""
    from hardneg.training.cross_encoder import train_cross_encoder

    with user_errors():
        folder = train_cross_encoder(pairs, CROSS_ENCODER.build(settings), output, show_progress=not quiet)
    console.print(f"saved the cross-encoder to {folder}; use it as --model {folder} or --reranker {folder}")
