"""`hardneg report`: results.md / .csv / .json and plots, rebuilt from a run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hardneg.cli.common import app, console, user_errors


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A folder `hardneg run` wrote."),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Report this experiment's cells instead of the run's own plan.json: the whole study's "
        "report over a run folder that ran it in phases, or is still running.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report here (default: the run folder)."
    ),
) -> None:
    """Rebuild results.md / .csv / .json and the plots from a run folder's finished evaluations;
    cells not finished yet are counted, never run."""
    from hardneg.reporting.report import write_report

    with user_errors():
        plan = None
        if config is not None:
            from hardneg.experiment.config import load_experiment
            from hardneg.experiment.runner import plan_experiment

            plan = plan_experiment(load_experiment(config), run_dir, fetch=False).describe()
        built = write_report(run_dir, plan=plan, out=output)
    console.print(built.markdown_table, markup=False, highlight=False)
    console.print(f"wrote {built.path}, results.csv, results.json and plots", markup=False, highlight=False)
