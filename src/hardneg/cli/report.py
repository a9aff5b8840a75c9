"""`hardneg report`: results.md / .csv / .json and plots, rebuilt from a run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli.common import app, console, user_errors


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A folder `hardneg run` wrote.")) -> None:
    """Rebuild results.md / .csv / .json and the plots from a run folder's finished evaluations."""
    from hardneg.reporting.report import write_report

    with user_errors():
        built = write_report(run_dir)
    console.print(built.markdown_table, markup=False, highlight=False)
    console.print(f"wrote {built.path}, results.csv, results.json and plots", markup=False, highlight=False)
