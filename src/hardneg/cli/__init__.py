"""The ``hardneg`` command: one sub-command per pipeline stage, each a thin layer over the API.
Commands live in modules by stage; importing them registers them on ``app``."""

from __future__ import annotations

import typer

from hardneg.cli import data, exchange, experiment, generate, mining, review, training  # noqa: F401  (registers the commands)
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
