"""`hardneg generate`: LLM-written negatives, from one or several generators. Its settings' flags
come from GenerateSettings (hardneg.cli.options); --model and --base-url repeat, one config each."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from hardneg.cli.common import QuietOption, app, console, user_errors
from hardneg.cli.options import ConfigOptions, Flag, zero_means_none
from hardneg.core.errors import HardnegError
from hardneg.settings.llm import GenerateSettings

GENERATE = ConfigOptions(
    GenerateSettings,
    flatten=("sampling", "rejects"),
    exclude=("backoff", "backoff_max", "slots", "context_per_slot", "threads"),
    flags={
        "model": Flag("-m", repeat=True, note="One generator per --model."),
        "base_url": Flag(
            repeat=True,
            note="Give it once for all models, or once per --model; "
            "several endpoints of one model: URL1,URL2.",
        ),
        "num_negatives": Flag("-n"),
        "disable_thinking": Flag("--disable-thinking"),
        "negatives_per_request": Flag("--per-request"),
        "top_k": Flag(convert=zero_means_none, note="0 never sends it."),
        "extra": Flag("--sampling-extra"),
    },
)


@app.command("generate")
@GENERATE
def generate_command(
    pairs: Path = typer.Option(
        ..., "--pairs", "-p", help="pairs.jsonl: (query, positive) pairs; no corpus needed."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="triplets.jsonl to write (one generator)."
    ),
    output_dir: Optional[Path] = typer.Option(
        None, help="With several generators: writes DIR/<model>.jsonl each."
    ),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Ask LLMs for hard negatives of each pair; write triplets, a manifest and the stored answers."""
    from hardneg.generation.generate import generator_label
    from hardneg.stages import run_kind

    models, base_urls = settings["model"], settings["base_url"]
    with user_errors():
        if len(base_urls) not in (0, 1, len(models)):
            raise HardnegError(
                f"give --base-url once or once per --model ({len(models)}), not {len(base_urls)} times"
            )
        if len(models) > 1 and output_dir is None:
            raise HardnegError("several --model options need --output-dir (one output file per generator)")
        if len(models) == 1 and (output is None) == (output_dir is None):
            raise HardnegError("give --output FILE (or --output-dir DIR)")
        urls = base_urls * len(models) if len(base_urls) == 1 else base_urls or [None] * len(models)
        configs = [GENERATE.build(settings, model=name, base_url=url) for name, url in zip(models, urls)]
        for config in configs:
            target = output or output_dir / f"{generator_label(config.model).replace('/', '_')}.jsonl"
            result = run_kind("generate", config, {"pairs": pairs}, target, show_progress=not quiet)
            counts = result.counts
            console.print(
                f"{counts['source']}: {counts['delivered']}/{counts['requested']} negatives "
                f"for {counts['pairs']} pairs "
                f"({counts['shortfalls']} short), {counts.get('requests_sent', 0)} requests sent, "
                f"{counts.get('requests_reused', 0)} reused; rejects {counts['rejects']} -> {target}"
            )
