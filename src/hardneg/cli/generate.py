"""`hardneg generate`: LLM-written negatives, from one or several generators."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hardneg.cli.common import app, console, parse_key_values, user_errors
from hardneg.errors import HardnegError


@app.command("generate")
def generate_command(
    pairs: Path = typer.Option(
        ..., "--pairs", "-p", help="pairs.jsonl: (query, positive) pairs; no corpus needed."
    ),
    model: list[str] = typer.Option(
        ["smollm2-135m"],
        "--model",
        "-m",
        help="Served model name (with --base-url), or an embedded GGUF: alias smollm2-135m or a .gguf path. Repeat for several generators.",
    ),
    base_url: list[str] = typer.Option(
        [],
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (one for all models, or one per --model).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="triplets.jsonl to write (one generator)."
    ),
    output_dir: Optional[Path] = typer.Option(
        None, help="With several generators: writes DIR/<model>.jsonl each."
    ),
    num_negatives: int = typer.Option(5, "--num-negatives", "-n", min=1),
    template: str = typer.Option(
        "query+positive", help="'query+positive', 'query-only', or a template file."
    ),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable that holds the API key."),
    concurrency: int = typer.Option(4, min=1, help="Requests in flight (and embedded parallel slots)."),
    temperature: float = typer.Option(0.6),
    top_p: float = typer.Option(0.95),
    top_k: Optional[int] = typer.Option(20, help="Sent where the server accepts it; 0 to never send."),
    max_tokens: int = typer.Option(1024),
    seed: Optional[int] = typer.Option(None, help="Sampling seed sent to the server."),
    frequency_penalty: Optional[float] = typer.Option(
        None, help="OpenAI frequency penalty (sent only when set)."
    ),
    presence_penalty: Optional[float] = typer.Option(
        None, help="OpenAI presence penalty (sent only when set)."
    ),
    sampling_extra: list[str] = typer.Option(
        [],
        "--sampling-extra",
        help="Server-specific field KEY=VALUE (JSON value), e.g. dry_multiplier=0.8. Repeatable.",
    ),
    structured_output: bool = typer.Option(
        True, help="Send a JSON schema so the server constrains decoding."
    ),
    disable_thinking: bool = typer.Option(
        False, "--disable-thinking", help="Qwen3-style models: no <think> phase."
    ),
    max_attempts: int = typer.Option(3, min=1, help="Rounds per pair, re-asking for missing negatives."),
    per_request: Optional[int] = typer.Option(
        None, "--per-request", min=1, help="At most this many negatives per request (default: all at once)."
    ),
    min_words: int = typer.Option(8, min=1, help="Reject negatives shorter than this."),
    max_copy_overlap: float = typer.Option(
        0.7, help="Reject negatives whose word overlap with the positive exceeds this."
    ),
    timeout: float = typer.Option(300.0, help="Seconds per request."),
    max_retries: int = typer.Option(
        5, min=0, help="Retries on 429, 5xx, timeouts, dropped connections, malformed answers."
    ),
    port: int = typer.Option(0, help="Embedded server port on 127.0.0.1 (0: a free one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Ask LLMs for hard negatives of each pair; write triplets, a manifest and the stored answers."""
    from hardneg.config import GenerateConfig, RejectSettings, SamplingSettings
    from hardneg.generation import generate_file
    from hardneg.generation.generate import generator_label

    with user_errors():
        if len(base_url) not in (0, 1, len(model)):
            raise HardnegError(
                f"give --base-url once or once per --model ({len(model)}), not {len(base_url)} times"
            )
        if len(model) > 1 and output_dir is None:
            raise HardnegError("several --model options need --output-dir (one output file per generator)")
        if len(model) == 1 and (output is None) == (output_dir is None):
            raise HardnegError("give --output FILE (or --output-dir DIR)")
        urls = base_url * len(model) if len(base_url) == 1 else base_url or [None] * len(model)
        configs = [
            GenerateConfig(
                model=name, base_url=url, api_key_env=api_key_env, num_negatives=num_negatives, template=template,
                structured_output=structured_output, disable_thinking=disable_thinking, max_attempts=max_attempts,
                negatives_per_request=per_request,
                concurrency=concurrency, timeout=timeout, max_retries=max_retries, port=port,
                sampling=SamplingSettings(
                    temperature=temperature, top_p=top_p, top_k=top_k or None, max_tokens=max_tokens, seed=seed,
                    frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
                    extra=parse_key_values(sampling_extra, "--sampling-extra"),
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
