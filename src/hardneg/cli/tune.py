"""`hardneg tune DATASET -o DIR`: which negatives and loss suit this data, chosen on a dev split of
its train pairs within a budget (flags from TuneSettings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from hardneg.cli.common import QuietOption, app, console, user_errors
from hardneg.cli.options import ConfigOptions, Flag, zero_means_none
from hardneg.cli.run import EXECUTOR
from hardneg.settings.tune import TuneSettings

TUNE = ConfigOptions(
    TuneSettings,
    exclude=("dataset",),
    flags={
        "corpus_free": Flag("--corpus-free/--any-corpus"),
        "losses": Flag("--loss", repeat=False),
        "dev_pool_depth": Flag(convert=zero_means_none, note="0: the whole corpus (or pool)."),
        "dev_max_queries": Flag(convert=zero_means_none, note="0: the whole share."),
    },
)


@app.command("tune")
@TUNE
@EXECUTOR
def tune_command(
    dataset: Optional[str] = typer.Argument(None, help="A BEIR folder or dataset name with a train split."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Folder for the recommendation, recipe.toml and train/."
    ),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        help="A grid TOML: its \\[train], \\[evaluation], base_model and extra \\[sources] (generators...).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the recipes, the rungs and what the budget buys; train nothing."
    ),
    quiet: bool = QuietOption,
    **settings: Any,
) -> None:
    """Try recipes of negatives (mined, pool, generated, filtered) and losses on a dev split carved
    from the train pairs, by successive halving within --budget, and recommend one; the test split
    is never read."""
    from hardneg.tuning import tune

    executor = {k: settings.pop(k) for k in list(settings) if k in EXECUTOR.options}
    with user_errors():
        how = EXECUTOR.build(executor)
        tune(
            TUNE.build(settings, dataset=dataset),
            output,
            config=config,
            executor=how,
            console=console,
            show_progress=not quiet,
            dry_run=dry_run,
        )
