"""`run`, `quickstart`, `report` and `audit`: the study as one command, and its two read-outs."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hardneg.cli.common import app, console, parse_key_values, user_errors
from hardneg.audit import AuditSettings
from hardneg.config import GenerateConfig
from hardneg.cli.options import ConfigOptions, Flag

ConfigArgument = typer.Argument(
    ..., help="Experiment TOML (see configs/quickstart.toml, configs/paper.toml)."
)
RunDirOption = typer.Option(None, "--output", "-o", help="Run folder (default: runs/<name> from the config).")
DryRunOption = typer.Option(
    False, "--dry-run", help="Print the stages, which are cached, and a rough cost; run nothing."
)
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars (stage lines still print).")
SetOption = typer.Option(
    [], "--set", help="Override a config key: --set pairs.max_pairs=48 (value parsed as JSON when it can be)."
)


BudgetOption = typer.Option(
    None, "--max-budget", help=GenerateConfig.model_fields["max_budget"].description + " Applies to each generator."
)


def _executor_options():
    from hardneg.experiment.executors import ExecutorSettings

    return ConfigOptions(ExecutorSettings, flags={"name": Flag("--executor"), "num_cpus": Flag("--ray-cpus")})


EXECUTOR = _executor_options()
AUDIT = ConfigOptions(AuditSettings)
"""`--executor`, `--ray-address`, `--worker-run-dir`, `--max-retries`, `--ray-cpus`: from ExecutorSettings."""


def bundled_config(name: str) -> Path:
    """A config shipped with the package (configs/ in the repository links to the same files)."""
    return Path(str(files("hardneg") / "configs" / f"{name}.toml"))


@app.command()
@EXECUTOR
def run(
    config: Path = ConfigArgument, output: Path = RunDirOption, dry_run: bool = DryRunOption, quiet: bool = QuietOption,
    overrides: list[str] = SetOption, max_budget: str = BudgetOption, **executor: Any,
) -> None:  # fmt: skip
    """Run every cell of an experiment (pairs -> negatives -> train -> evaluate, plus the base
    model), reusing every stage already on disk, then write the report."""
    from hardneg.experiment.runner import run_experiment

    with user_errors():
        settings = parse_key_values(overrides, "--set")
        how = EXECUTOR.build(executor)
        run_experiment(config, output, dry_run=dry_run, show_progress=not quiet, console=console, overrides=settings,
                       executor=how, max_budget=max_budget)  # fmt: skip


@app.command()
@EXECUTOR
def quickstart(
    output: Path = RunDirOption, dry_run: bool = DryRunOption, quiet: bool = QuietOption, overrides: list[str] = SetOption,
    **executor: Any,
) -> None:  # fmt: skip
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


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A folder `hardneg run` wrote.")) -> None:
    """Rebuild results.md / .csv / .json and the plots from a run folder's finished evaluations."""
    from hardneg.report import write_report

    with user_errors():
        built = write_report(run_dir)
    console.print(built.markdown_table, markup=False, highlight=False)
    console.print(f"wrote {built.path}, results.csv, results.json and plots", markup=False, highlight=False)


@app.command()
@AUDIT
def audit(
    triplets: list[Path] = typer.Argument(..., help="Triplet files; negatives are grouped by their `source`."),
    output_dir: Path = typer.Option(Path("audit"), "--output-dir", "-o", help="Writes audit.md, audit.json, audit.png."),
    **options: Any,
) -> None:
    """How hard each source's negatives are: likely false negatives, hard, too easy; length, overlap, near-copies."""
    from hardneg.audit import (
        AUDIT_COLUMNS,
        audit_file,
        audit_markdown,
        audit_rows,
        plot_margins,
    )
    from hardneg.io import atomic_open, write_json

    with user_errors():
        settings = AUDIT.build(options)
        result = audit_file(list(triplets), settings)
        write_json(output_dir / "audit.json", result.model_dump(mode="json"))
        groups = {source: audit.margins for source, audit in result.sources.items()}
        plot = plot_margins(groups, settings.easy_margin, output_dir / "audit.png", "negative margins by source")
        with atomic_open(output_dir / "audit.md") as handle:
            handle.write(audit_markdown(result) + f"\n![margins]({plot.name})\n")
    table = Table("source", *AUDIT_COLUMNS, title=f"audit ({result.scorer})")
    for source, row in zip(result.sources, audit_rows(result)):
        table.add_row(source, *row)
    console.print(table)
    console.print(f"wrote {output_dir / 'audit.md'}, audit.json, audit.png", markup=False, highlight=False)
