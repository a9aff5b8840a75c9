"""`hardneg quickstart`: the offline study on SciFact with the bundled models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.cli.common import app
from hardneg.cli.run import EXECUTOR, DryRunOption, QuietOption, RunDirOption, SetOption, bundled_config, run


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
    run(
        config=bundled_config("quickstart"),
        output=output,
        dry_run=dry_run,
        quiet=quiet,
        overrides=overrides,
        max_budget=None,
        phase=None,
        **executor,
    )
