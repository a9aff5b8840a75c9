"""`hardneg quickstart`: the offline study on SciFact with the bundled models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.cli.common import app, console, parse_key_values, user_errors
from hardneg.cli.run import EXECUTOR, DryRunOption, QuietOption, RunDirOption, SetOption, bundled_config


@app.command()
@EXECUTOR
def quickstart(
    output: Path = RunDirOption,
    dry_run: bool = DryRunOption,
    quiet: bool = QuietOption,
    overrides: list[str] = SetOption,
    **executor: Any,
) -> None:
    """The offline study on SciFact with the bundled models (configs/quickstart.toml)."""
    from hardneg.experiment.runner import run_experiment

    with user_errors():
        settings = parse_key_values(overrides, "--set")
        run_experiment(
            bundled_config("quickstart"),
            output,
            dry_run=dry_run,
            show_progress=not quiet,
            console=console,
            overrides=settings,
            executor=EXECUTOR.build(executor),
        )
