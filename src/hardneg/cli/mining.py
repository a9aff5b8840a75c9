"""Commands that make pairs and mine negatives from a corpus, and the offline cross-encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hardneg.cli.common import (
    DataRootOption,
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
from hardneg.config import DenseSettings


@app.command("pairs")
def pairs_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset name or BEIR folder."),
    output: Path = typer.Option(..., "--output", "-o", help="pairs.jsonl to write."),
    split: str = typer.Option("train", help="Qrels split whose positives (score > 0) become pairs."),
    one_per_query: bool = typer.Option(
        False, "--one-per-query/--all-positives", help="Best-graded positive only."
    ),
    max_pairs: Optional[int] = typer.Option(
        None, min=1, help="Keep a seeded random sample of this many pairs."
    ),
    seed: int = typer.Option(0),
    data_root: Optional[Path] = DataRootOption,
) -> None:
    """(query, positive passage) pairs from a split's judgments: the input of every negative source."""
    from hardneg.config import PairsConfig
    from hardneg.pairs import make_pairs

    with user_errors():
        config = PairsConfig(
            dataset=dataset, split=split, one_per_query=one_per_query, max_pairs=max_pairs, seed=seed,
            data_root=str(data_root) if data_root else None,
        )  # fmt: skip
        pairs = make_pairs(config, output)
    console.print(f"wrote {len(pairs)} pairs ({len({p.query_id for p in pairs})} queries) to {output}")


@app.command("mine")
def mine_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl from 'hardneg pairs'."),
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="The dataset the pairs come from (its corpus is mined)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    method: str = typer.Option("bm25", "--method", "-m", help="bm25, dense or cross-encoder."),
    num_negatives: int = typer.Option(5, "--num-negatives", "-n", min=1),
    model: Optional[str] = typer.Option(
        None, help="Bi-encoder (dense) or cross-encoder model: alias, HF name, path."
    ),
    depth: int = typer.Option(100, help="Candidates retrieved per query (bm25, dense)."),
    rerank_depth: int = typer.Option(50, help="BM25 candidates the cross-encoder re-ranks."),
    range_min: int = typer.Option(1, help="Best rank a negative may have (1 = top candidate)."),
    range_max: Optional[int] = typer.Option(None, help="Worst rank a negative may have."),
    sampling: str = typer.Option("top", help="'top' n of the window, or 'random' (seeded)."),
    seed: int = typer.Option(0),
    max_score: Optional[float] = MaxScoreOption,
    min_score: Optional[float] = MinScoreOption,
    absolute_margin: Optional[float] = MarginOption,
    relative_margin: Optional[float] = RelativeMarginOption,
    scorer: Optional[str] = ScorerOption,
    batch_size: int = typer.Option(64, help="Encoding / cross-encoder batch size."),
    data_root: Optional[Path] = DataRootOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Mine hard negatives from the corpus for every pair; write triplets and a manifest."""
    from hardneg.config import FilterSettings, MineConfig
    from hardneg.mining import mine_file

    with user_errors():
        config = MineConfig(
            dataset=dataset, method=method, num_negatives=num_negatives, model=model, depth=depth,
            rerank_depth=rerank_depth, range_min=range_min, range_max=range_max, sampling=sampling,
            seed=seed, batch_size=batch_size, data_root=str(data_root) if data_root else None,
            dense=DenseSettings(batch_size=batch_size),
            filters=FilterSettings(
                max_score=max_score, min_score=min_score, absolute_margin=absolute_margin,
                relative_margin=relative_margin, scorer=scorer,
            ),
        )  # fmt: skip
        result = mine_file(pairs, config, output, show_progress=not quiet)
    print_counts(result.counts, f"mined {output}")


@app.command("train-cross-encoder")
def train_cross_encoder_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl (e.g. the dataset's train split)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset the pairs come from."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    base_model: str = typer.Option("minilm-l6", help="Encoder to start from: alias, HF name or path."),
    num_negatives: int = typer.Option(4, "--num-negatives", "-n", min=1, help="BM25 negatives per pair."),
    random_negatives: int = typer.Option(0, min=0, help="Random corpus passages per pair, mixed in."),
    loss: str = typer.Option(
        "bce", help="'bce' (pointwise) or 'mnrl' (softmax over each query's candidates)."
    ),
    epochs: float = typer.Option(1.0),
    batch_size: int = typer.Option(16),
    learning_rate: float = typer.Option(2e-5),
    max_length: int = typer.Option(256, help="Token limit per (query, passage)."),
    save_steps: int = typer.Option(100, help="Checkpoint every N steps (an interrupted run resumes)."),
    seed: int = typer.Option(0),
    data_root: Optional[Path] = DataRootOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train a cross-encoder offline on (query, positive, BM25 negative) examples."""
    from hardneg.config import CrossEncoderTrainConfig
    from hardneg.training.cross_encoder import train_cross_encoder

    with user_errors():
        config = CrossEncoderTrainConfig(
            dataset=dataset, base_model=base_model, num_negatives=num_negatives,
            random_negatives=random_negatives, loss=loss, epochs=epochs,
            batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
            save_steps=save_steps, seed=seed, data_root=str(data_root) if data_root else None,
        )  # fmt: skip
        folder = train_cross_encoder(pairs, config, output, show_progress=not quiet)
    console.print(f"saved the cross-encoder to {folder}; use it as --model {folder} or --reranker {folder}")
