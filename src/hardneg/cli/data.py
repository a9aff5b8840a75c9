"""Commands over datasets and retrieval results: data, evaluate (its flags come from EvaluateConfig)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.table import Table

from hardneg.cli.common import (
    DataRootOption,
    QuietOption,
    app,
    console,
    data_app,
    errors,
    fail,
    slug,
    user_errors,
)
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.config import EvaluateConfig


@data_app.command("validate")
def data_validate(path: Path = typer.Argument(..., help="A BEIR folder.")) -> None:
    """Check a BEIR folder; print every problem as FILE:LINE: message (exit 2) or its counts."""
    from hardneg.data.beir import validate_beir

    dataset, problems = validate_beir(path)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        errors.print(f"{len(problems)} problem(s) in {path}", highlight=False)
        raise typer.Exit(2)
    _print_counts(dataset.counts(), f"{path}: valid")


@data_app.command("list")
def data_list(data_root: Optional[Path] = DataRootOption) -> None:
    """Datasets found under the data roots, and BEIR names that would be downloaded."""
    from hardneg.data.registry import list_datasets

    table = Table("name", "status", "path")
    for entry in list_datasets(data_root):
        table.add_row(entry.name, entry.status, str(entry.path or ""))
    console.print(table)


@data_app.command("show")
def data_show(name: str, data_root: Optional[Path] = DataRootOption) -> None:
    """Counts per split of a dataset (a name or a path; a missing BEIR name is downloaded)."""
    from hardneg.data.registry import load_dataset

    with user_errors():
        dataset = load_dataset(name, data_root)
    _print_counts(dataset.counts(), f"{dataset.name} ({dataset.path})")


def _print_counts(counts: dict[str, dict[str, int]], title: str) -> None:
    table = Table("split", "queries", "judgments", title=title)
    totals = counts.pop("all")
    for split, values in counts.items():
        table.add_row(split, str(values["queries"]), str(values["judgments"]))
    console.print(table)
    console.print(f"documents: {totals['documents']}, queries (all splits): {totals['queries']}")


EVALUATE = ConfigOptions(
    EvaluateConfig,
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
    console.print(table)
