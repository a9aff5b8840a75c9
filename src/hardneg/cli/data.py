"""Commands over datasets and retrieval results: data, evaluate."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.table import Table

from hardneg.cli.common import DataRootOption, app, console, data_app, errors, fail, slug, user_errors
from hardneg.config import DEFAULT_METRICS, BM25Settings, DenseSettings, EvaluateConfig


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


@app.command("evaluate")
def evaluate_command(
    datasets: list[str] = typer.Option(
        ..., "--dataset", "-d", help="A dataset name or BEIR folder (repeatable)."
    ),
    retrievers: list[str] = typer.Option(
        ["bm25"], "--retriever", "-r", help="'bm25', a model alias, HF name or path (repeatable)."
    ),
    split: str = typer.Option("test", help="Qrels split to evaluate."),
    top_k: int = typer.Option(100, "--top-k", min=1),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="results.json (one dataset and retriever)."
    ),
    output_dir: Optional[Path] = typer.Option(None, help="One <dataset>-<retriever>.json per combination."),
    metrics: str = typer.Option(",".join(DEFAULT_METRICS), help="Comma-separated, e.g. ndcg@10,recall@100."),
    data_root: Optional[Path] = DataRootOption,
    k1: float = typer.Option(1.2, help="BM25 k1."),
    b: float = typer.Option(0.75, help="BM25 b."),
    bm25_method: str = typer.Option("lucene", help="BM25 variant (lucene, robertson, atire, bm25l, bm25+)."),
    stopwords: str = typer.Option("en", help="BM25 stopword list ('none' to keep all words)."),
    stemmer: str = typer.Option("english", help="Snowball stemmer language ('none' to disable)."),
    keep_unmatched: bool = typer.Option(False, help="Keep bm25s's score-0 filler documents."),
    use_title: bool = typer.Option(True, "--title/--no-title", help="Index title + ' ' + text."),
    batch_size: int = typer.Option(64, help="Encoding batch size (dense)."),
    max_seq_length: int = typer.Option(256, help="Token limit per text (dense)."),
    query_prompt: str = typer.Option("", help="Prefix for queries (dense), e.g. 'query: '."),
    document_prompt: str = typer.Option("", help="Prefix for documents (dense), e.g. 'passage: '."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse corpus embeddings from disk."),
    reranker: Optional[str] = typer.Option(None, help="Cross-encoder re-scoring the top --rerank-depth."),
    rerank_depth: int = typer.Option(100, min=1, help="How many first-stage results the re-ranker scores."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Retrieve for every judged query of a split and report nDCG@10, Recall@100, MRR@10, MAP@100."""
    from hardneg.data.registry import load_dataset
    from hardneg.evaluation import evaluate

    if output and len(datasets) * len(retrievers) > 1:
        fail("--output takes one dataset and one retriever; use --output-dir for several")
    results = []
    with user_errors(), _print_when_done(results):
        base = EvaluateConfig(
            dataset=datasets[0],
            split=split,
            top_k=top_k,
            metrics=tuple(m for m in metrics.split(",") if m.strip()),
            data_root=str(data_root) if data_root else None,
            reranker=reranker,
            rerank_depth=rerank_depth,
            rerank_batch_size=batch_size,
            bm25=BM25Settings(
                k1=k1,
                b=b,
                method=bm25_method,
                use_title=use_title,
                keep_unmatched=keep_unmatched,
                stopwords=None if stopwords == "none" else stopwords,
                stemmer=None if stemmer == "none" else stemmer,
            ),  # fmt: skip
            dense=DenseSettings(
                batch_size=batch_size,
                max_seq_length=max_seq_length,
                use_title=use_title,
                query_prompt=query_prompt,
                document_prompt=document_prompt,
                cache_embeddings=cache,
            ),  # fmt: skip
        )
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
