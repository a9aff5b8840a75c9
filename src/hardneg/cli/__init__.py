"""The ``hardneg`` command: one sub-command per pipeline stage, each a thin layer over the API,
in a module named after it (``import_`` for ``import``); importing them registers them on ``app``.
``hardneg stage KIND`` runs any registered kind, a plugin's included."""

from __future__ import annotations

import typer

from hardneg.cli import (  # noqa: F401  (registers the commands)
    audit,
    combine,
    data,
    evaluate,
    export,
    generate,
    import_,
    mine,
    pairs,
    quickstart,
    report,
    review,
    run,
    stage,
    train,
    train_cross_encoder,
    tune,
)
from hardneg.cli.common import app, console, quiet_third_party


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the libraries' own messages and bars (model load reports...)."
    ),
) -> None:
    quiet_third_party(verbose)
    if version:
        from hardneg import __version__

        console.print(f"hardneg {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())


def main() -> None:
    app()
