"""`hardneg evaluate`: retrieval scored on a BEIR split (flags from EvaluateSettings)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.table import Table

from hardneg.cli.common import QuietOption, app, console, fail, print_table, slug, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.evaluation import EvaluateSettings

EVALUATE = ConfigOptions(
    EvaluateSettings,
    flatten=("bm25", "dense"),
    shared=("use_title",),
    exclude=("rerank_batch_size", "cache_index", "similarity", "corpus_chunk_size", "device"),
    flags={
        "dataset": Flag("-d", repeat=True),
        "retriever": Flag("-r", repeat=True),
        "method": Flag("--bm25-method"),
        "use_title": Flag("--title/--no-title"),
        "batch_size": Flag(note="Also the re-ranker's."),
        "cache_embeddings": Flag("--cache/--no-cache"),
        "ignore_identical_ids": Flag("--ignore-identical-ids/--keep-identical-ids"),
    },
)


@app.command("evaluate")
@EVALUATE
def evaluate_command(
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="results.json (one dataset and retriever)."
    ),
    output_dir: Optional[Path] = typer.Option(None, help="One <dataset>-<retriever>.json per combination."),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Retrieve for every judged query of a split and report nDCG@10, Recall@100, MRR@10, MAP@100."""
    from hardneg.data.registry import load_dataset
    from hardneg.evaluation import evaluate

    datasets, retrievers, reranker = settings["dataset"], settings["retriever"], settings["reranker"]
    if output and len(datasets) * len(retrievers) > 1:
        fail("--output takes one dataset and one retriever; use --output-dir for several")
    results = []
    with user_errors(), _print_when_done(results):
        base = EVALUATE.build(settings, dataset=datasets[0], rerank_batch_size=settings["batch_size"])
        for name in datasets:
            dataset = load_dataset(name, base.data_root)
            for retriever in retrievers:
                config = base.model_copy(update={"dataset": name, "retriever": retriever})
                result = evaluate(config, dataset, show_progress=not quiet)
                if output_dir:
                    suffix = f"-{slug(reranker)}" if reranker else ""
                    result.save(output_dir / f"{dataset.name}-{slug(retriever)}{suffix}.json")
                results.append(result)
    if output:
        results[0].save(output)
        console.print(f"wrote {output}")
    elif output_dir:
        console.print(f"wrote {len(results)} result file(s) to {output_dir}")


@contextmanager
def _print_when_done(results: list) -> Iterator[None]:
    """Show what finished even when a later dataset or model fails."""
    try:
        yield
    finally:
        if results:
            print_results(results)


def print_results(results) -> None:
    """One row per (dataset, retriever), one column per metric."""
    metrics = list(results[0].metrics)
    table = Table("dataset", "split", "retriever", *metrics)
    for result in results:
        values = [f"{result.metrics[m]:.4f}" for m in metrics]
        table.add_row(result.dataset, result.split, result.system, *values)
    print_table(console, table)
