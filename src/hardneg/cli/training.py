"""Commands from triplets to a model: combine and filter sources, then fine-tune a bi-encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hardneg.cli.common import (
    MarginOption,
    MaxScoreOption,
    MinScoreOption,
    RelativeMarginOption,
    ScorerOption,
    app,
    console,
    print_counts,
    user_errors,
)
from hardneg.config import FilterSettings


@app.command("combine")
def combine_command(
    inputs: list[Path] = typer.Argument(..., help="Triplet files made from the same pairs (one is fine, to filter)."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    preset: Optional[str] = typer.Option(
        None, help="The study's combinations: llm+bm25, llm+ce, all-llms, all-llms+bm25, all-llms+ce."
    ),
    strategy: str = typer.Option("concat", help="concat, per-source (first --per-source of each), interleave."),
    source: list[str] = typer.Option([], "--source", help="Keep these sources (names or patterns like 'llm:*'). Repeatable."),
    per_source: Optional[int] = typer.Option(None, min=1, help="With --strategy per-source: negatives from each source."),
    max_negatives: Optional[int] = typer.Option(None, min=1, help="Cap per triplet, after filters."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Keep pairs missing from some inputs (default: shared only)."),
    min_negatives: int = typer.Option(0, min=0, help="Leave out triplets with fewer negatives than this."),
    scorer: Optional[str] = ScorerOption,
    absolute_margin: Optional[float] = MarginOption,
    relative_margin: Optional[float] = RelativeMarginOption,
    max_score: Optional[float] = MaxScoreOption,
    min_score: Optional[float] = MinScoreOption,
    batch_size: int = typer.Option(64, min=1, help="Scorer batch size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Merge triplet files by source and filter their negatives; write triplets and a manifest."""
    from hardneg.combine import combine_files, preset_config
    from hardneg.config import CombineConfig

    with user_errors():
        filters = FilterSettings(scorer=scorer, absolute_margin=absolute_margin, relative_margin=relative_margin,
                                 max_score=max_score, min_score=min_score)  # fmt: skip
        settings = dict(max_negatives=max_negatives, pairs="all" if all_pairs else "shared",
                        min_negatives=min_negatives, filters=filters, batch_size=batch_size)  # fmt: skip
        if preset is not None:
            config = preset_config(preset, **settings)
        else:
            config = CombineConfig(strategy=strategy, sources=source, per_source=per_source, **settings)
        result = combine_files(inputs, config, output, preset=preset, show_progress=not quiet)
    print_counts(result.counts, f"wrote {output}")


@app.command("train")
def train_command(
    triplets: Path = typer.Option(..., "--triplets", "-t", help="triplets.jsonl (mined, generated or combined)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    base_model: str = typer.Option("minilm-l6", help="Alias, Hugging Face name or path (plain transformers get mean pooling)."),
    num_negatives: int = typer.Option(5, "--num-negatives", "-n", min=0, help="negative_1..k columns per example."),
    short_triplets: str = typer.Option("pad", help="Triplets with fewer negatives: 'pad' (repeat their own) or 'drop'."),
    skip_empty: bool = typer.Option(False, "--skip-empty", help="Leave out triplets without negatives instead of failing."),
    batch_size: int = typer.Option(16, min=2),
    epochs: float = typer.Option(1.0),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many steps (overrides --epochs)."),
    learning_rate: float = typer.Option(2e-5),
    warmup_ratio: float = typer.Option(0.1),
    eval_steps: int = typer.Option(100, min=1, help="Validate and checkpoint every N steps."),
    patience: int = typer.Option(3, min=0, help="Early stopping: evaluations without improvement (0: never stop early)."),
    validation_fraction: float = typer.Option(0.1, help="Share of queries held out for validation."),
    max_seq_length: Optional[int] = typer.Option(None, min=1, help="Token limit per text (shorter is faster on CPU)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, mps... (default: a GPU when there is one)."),
    seed: int = typer.Option(0),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fine-tune a bi-encoder with MultipleNegativesRankingLoss; resumes from its checkpoints."""
    from hardneg.config import TrainConfig
    from hardneg.training.bi_encoder import train_bi_encoder

    with user_errors():
        config = TrainConfig(
            base_model=base_model, num_negatives=num_negatives, short_triplets=short_triplets, skip_empty=skip_empty,
            batch_size=batch_size,
            epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, warmup_ratio=warmup_ratio,
            eval_steps=eval_steps, patience=patience or None, validation_fraction=validation_fraction,
            max_seq_length=max_seq_length, device=device, seed=seed,
        )  # fmt: skip
        result = train_bi_encoder(triplets, config, output, show_progress=not quiet)
    counts = result.counts
    how = "reused the model trained earlier from the same triplets and settings" if result.reused else "trained"
    console.print(
        f"{how}: {counts['steps']} steps, validation loss {counts['start_validation_loss']} before, best "
        f"{counts['best_validation_loss']} "
        f"at step {counts['best_step']}; saved to {output} (evaluate it with --retriever {output})"
    )
