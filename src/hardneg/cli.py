"""The ``hardneg`` command: one sub-command per pipeline stage, each a thin layer over the API."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from hardneg.config import DEFAULT_METRICS, BM25Settings, DenseSettings, EvaluateConfig
from hardneg.errors import HardnegError

app = typer.Typer(
    help="Build hard-negative training data for dense retrievers, and measure what it is worth.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate BEIR datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
errors = Console(stderr=True)

DataRootOption = typer.Option(
    None, "--data-root", help="Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."
)


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from hardneg import __version__

        console.print(f"hardneg {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())


def fail(message: str) -> None:
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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
    datasets: list[str] = typer.Option(..., "--dataset", "-d", help="A dataset name or BEIR folder (repeatable)."),
    retrievers: list[str] = typer.Option(
        ["bm25"], "--retriever", "-r", help="'bm25', a model alias, HF name or path (repeatable)."
    ),
    split: str = typer.Option("test", help="Qrels split to evaluate."),
    top_k: int = typer.Option(100, "--top-k", min=1),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="results.json (one dataset and retriever)."),
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
                k1=k1, b=b, method=bm25_method, use_title=use_title, keep_unmatched=keep_unmatched,
                stopwords=None if stopwords == "none" else stopwords,
                stemmer=None if stemmer == "none" else stemmer,
            ),  # fmt: skip
            dense=DenseSettings(
                batch_size=batch_size, max_seq_length=max_seq_length, use_title=use_title,
                query_prompt=query_prompt, document_prompt=document_prompt, cache_embeddings=cache,
            ),  # fmt: skip
        )
        for name in datasets:
            dataset = load_dataset(name, base.data_root)
            for retriever in retrievers:
                config = base.model_copy(update={"dataset": name, "retriever": retriever})
                result = evaluate(config, dataset, show_progress=not quiet)
                if output_dir:
                    suffix = f"-{_slug(reranker)}" if reranker else ""
                    result.save(output_dir / f"{dataset.name}-{_slug(retriever)}{suffix}.json")
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


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name or name)


@app.command("pairs")
def pairs_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset name or BEIR folder."),
    output: Path = typer.Option(..., "--output", "-o", help="pairs.jsonl to write."),
    split: str = typer.Option("train", help="Qrels split whose positives (score > 0) become pairs."),
    one_per_query: bool = typer.Option(False, "--one-per-query/--all-positives", help="Best-graded positive only."),
    max_pairs: Optional[int] = typer.Option(None, min=1, help="Keep a seeded random sample of this many pairs."),
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
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset the pairs come from (its corpus is mined)."),
    output: Path = typer.Option(..., "--output", "-o", help="triplets.jsonl to write."),
    method: str = typer.Option("bm25", "--method", "-m", help="bm25, dense or cross-encoder."),
    num_negatives: int = typer.Option(5, "--num-negatives", "-n", min=1),
    model: Optional[str] = typer.Option(None, help="Bi-encoder (dense) or cross-encoder model: alias, HF name, path."),
    depth: int = typer.Option(100, help="Candidates retrieved per query (bm25, dense)."),
    rerank_depth: int = typer.Option(50, help="BM25 candidates the cross-encoder re-ranks."),
    range_min: int = typer.Option(1, help="Best rank a negative may have (1 = top candidate)."),
    range_max: Optional[int] = typer.Option(None, help="Worst rank a negative may have."),
    sampling: str = typer.Option("top", help="'top' n of the window, or 'random' (seeded)."),
    seed: int = typer.Option(0),
    max_score: Optional[float] = typer.Option(None, help="Drop candidates scoring above this."),
    min_score: Optional[float] = typer.Option(None, help="Drop candidates scoring below this."),
    absolute_margin: Optional[float] = typer.Option(None, help="Keep only candidates at least this far below the positive."),
    relative_margin: Optional[float] = typer.Option(None, help="e.g. 0.05: at most 95% of the positive's score."),
    scorer: Optional[str] = typer.Option(None, help="Filter scores from 'dense:MODEL' or 'cross-encoder:MODEL'."),
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
    table = Table("count", "value", title=f"mined {output}")
    for key, value in result.counts.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("generate")
def generate_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl: (query, positive) pairs; no corpus needed."),
    model: list[str] = typer.Option(
        ["smollm2-135m"], "--model", "-m",
        help="Served model name (with --base-url), or an embedded GGUF: alias smollm2-135m or a .gguf path. Repeat for several generators.",
    ),
    base_url: list[str] = typer.Option(
        [], "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (one for all models, or one per --model)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="triplets.jsonl to write (one generator)."),
    output_dir: Optional[Path] = typer.Option(None, help="With several generators: writes DIR/<model>.jsonl each."),
    num_negatives: int = typer.Option(5, "--num-negatives", "-n", min=1),
    template: str = typer.Option("query+positive", help="'query+positive', 'query-only', or a template file."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable that holds the API key."),
    concurrency: int = typer.Option(4, min=1, help="Requests in flight (and embedded parallel slots)."),
    temperature: float = typer.Option(0.6),
    top_p: float = typer.Option(0.95),
    top_k: Optional[int] = typer.Option(20, help="Sent where the server accepts it; 0 to never send."),
    max_tokens: int = typer.Option(1024),
    seed: Optional[int] = typer.Option(None, help="Sampling seed sent to the server."),
    frequency_penalty: Optional[float] = typer.Option(None, help="OpenAI frequency penalty (sent only when set)."),
    presence_penalty: Optional[float] = typer.Option(None, help="OpenAI presence penalty (sent only when set)."),
    structured_output: bool = typer.Option(True, help="Send a JSON schema so the server constrains decoding."),
    disable_thinking: bool = typer.Option(False, "--disable-thinking", help="Qwen3-style models: no <think> phase."),
    max_attempts: int = typer.Option(3, min=1, help="Requests per pair, re-asking for missing negatives."),
    min_words: int = typer.Option(8, min=1, help="Reject negatives shorter than this."),
    max_copy_overlap: float = typer.Option(0.7, help="Reject negatives whose word overlap with the positive exceeds this."),
    timeout: float = typer.Option(300.0, help="Seconds per request."),
    max_retries: int = typer.Option(5, min=0, help="Retries on 429, 5xx, timeouts, dropped connections, malformed answers."),
    port: int = typer.Option(0, help="Embedded server port on 127.0.0.1 (0: a free one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Ask LLMs for hard negatives of each pair; write triplets, a manifest and the stored answers."""
    from hardneg.config import GenerateConfig, RejectSettings, SamplingSettings
    from hardneg.generation import generate_file
    from hardneg.generation.generate import generator_label

    with user_errors():
        if len(base_url) not in (0, 1, len(model)):
            raise HardnegError(f"give --base-url once or once per --model ({len(model)}), not {len(base_url)} times")
        if len(model) > 1 and output_dir is None:
            raise HardnegError("several --model options need --output-dir (one output file per generator)")
        if len(model) == 1 and (output is None) == (output_dir is None):
            raise HardnegError("give --output FILE (or --output-dir DIR)")
        urls = base_url * len(model) if len(base_url) == 1 else base_url or [None] * len(model)
        configs = [
            GenerateConfig(
                model=name, base_url=url, api_key_env=api_key_env, num_negatives=num_negatives, template=template,
                structured_output=structured_output, disable_thinking=disable_thinking, max_attempts=max_attempts,
                concurrency=concurrency, timeout=timeout, max_retries=max_retries, port=port,
                sampling=SamplingSettings(
                    temperature=temperature, top_p=top_p, top_k=top_k or None, max_tokens=max_tokens, seed=seed,
                    frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
                ),
                rejects=RejectSettings(min_words=min_words, max_copy_overlap=max_copy_overlap),
            )
            for name, url in zip(model, urls)
        ]  # fmt: skip
        for config in configs:
            target = output or output_dir / f"{generator_label(config.model).replace('/', '_')}.jsonl"
            result = generate_file(pairs, config, target, show_progress=not quiet)
            counts = result.counts
            console.print(
                f"{counts['source']}: {counts['delivered']}/{counts['requested']} negatives for {counts['pairs']} pairs "
                f"({counts['shortfalls']} short), {counts.get('requests_sent', 0)} requests sent, "
                f"{counts.get('requests_reused', 0)} reused; rejects {counts['rejects']} -> {target}"
            )


@app.command("train-cross-encoder")
def train_cross_encoder_command(
    pairs: Path = typer.Option(..., "--pairs", "-p", help="pairs.jsonl (e.g. the dataset's train split)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset the pairs come from."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the trained model."),
    base_model: str = typer.Option("minilm-l6", help="Encoder to start from: alias, HF name or path."),
    num_negatives: int = typer.Option(4, "--num-negatives", "-n", min=1, help="BM25 negatives per pair."),
    random_negatives: int = typer.Option(0, min=0, help="Random corpus passages per pair, mixed in."),
    loss: str = typer.Option("bce", help="'bce' (pointwise) or 'mnrl' (softmax over each query's candidates)."),
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


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit status 2."""
    try:
        yield
    except HardnegError as exc:
        fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        fail(f"{where}: {first['msg']}")


def print_results(results) -> None:
    """One row per (dataset, retriever), one column per metric."""
    metrics = list(results[0].metrics)
    table = Table("dataset", "split", "retriever", *metrics)
    for result in results:
        values = [f"{result.metrics[m]:.4f}" for m in metrics]
        table.add_row(result.dataset, result.split, result.system, *values)
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
