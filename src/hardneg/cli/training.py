"""Commands from triplets to a model: combine and filter sources, then fine-tune a bi-encoder.
Their settings' flags come from the config classes (hardneg.cli.options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from hardneg.cli.common import QuietOption, app, console, print_counts, user_errors
from hardneg.cli.options import ConfigOptions, Flag, zero_means_none
from hardneg.config import CombineConfig, TrainConfig

COMBINE = ConfigOptions(
    CombineConfig,
    flatten=("filters",),
    prefixed=("judge",),
    exclude=("judge_slots", "judge_context_per_slot", "judge_backoff_max"),
    flags={
        "sources": Flag("--source"),
        "pairs": Flag("--all-pairs", switch="all"),
        "scorer": Flag(note="Required here once a threshold is set."),
    },
)
TRAIN = ConfigOptions(
    TrainConfig,
    exclude=("processes",),  # the runner's: launch `hardneg train` itself with torchrun
    flags={
        "num_negatives": Flag("-n"),
        "skip_empty": Flag("--skip-empty"),
        "patience": Flag(convert=zero_means_none, note="0: never stop early."),
    },
)


@app.command("combine")
@COMBINE
def combine_command(
    inputs: list[Path] = typer.Argument(..., help="Triplet files made from the same pairs (one is fine, to filter)."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    preset: Optional[str] = typer.Option(
        None,
        help="The study's combinations: llm+bm25, llm+ce, all-llms, all-llms+bm25, all-llms+ce "
        "(instead of --strategy, --source, --per-source).",
    ),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Merge triplet files by source and filter their negatives; write triplets and a manifest."""
    from hardneg.combine import combine_files, preset_config

    with user_errors():
        chosen = {}
        if preset is not None:
            fixed = preset_config(preset)
            chosen = {"strategy": fixed.strategy, "sources": fixed.sources, "per_source": fixed.per_source}
        config = COMBINE.build(settings, **chosen)
        result = combine_files(inputs, config, output, preset=preset, show_progress=not quiet)
    print_counts(result.counts, f"wrote {output}")


@app.command("train")
@TRAIN
def train_command(
    triplets: Path = typer.Option(..., "--triplets", "-t", help="triplets.jsonl (mined, generated or combined), or an exported HF folder or Parquet file."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Fine-tune a bi-encoder with MultipleNegativesRankingLoss; resumes from its checkpoints."""
    from hardneg.training.bi_encoder import train_bi_encoder

    with user_errors():
        result = train_bi_encoder(triplets, TRAIN.build(settings), output, show_progress=not quiet)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun / accelerate: rank 0 alone reports, as it alone writes
    counts = result.counts
    how = "reused the model trained earlier from the same triplets and settings" if result.reused else "trained"
    console.print(
        f"{how}: {counts['steps']} steps, validation loss {counts['start_validation_loss']} before, best "
        f"{counts['best_validation_loss']} "
        f"at step {counts['best_step']}; saved to {output} (evaluate it with --retriever {output})"
    )
