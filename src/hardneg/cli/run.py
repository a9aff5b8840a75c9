"""`hardneg run`: a grid from one TOML config, its stages cached, resumed, run here or on Ray."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import typer

from hardneg.cli.common import app, console, parse_key_values, user_errors
from hardneg.cli.options import ConfigOptions, Flag
from hardneg.settings.llm import GenerateSettings

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


PhaseOption = typer.Option(
    None,
    "--phase",
    help="Run the config's \\[\\[phases]] up to and including this one, then stop (default: every phase, "
    "then the whole grid).",
)
BudgetOption = typer.Option(
    None,
    "--max-budget",
    help=GenerateSettings.model_fields["max_budget"].description + " Applies to each generator.",
)


def _executor_options():
    from hardneg.settings.experiment import ExecutorSettings

    return ConfigOptions(ExecutorSettings, flags={"name": Flag("--executor"), "num_cpus": Flag("--ray-cpus")})


EXECUTOR = _executor_options()
"""`--executor`, `--ray-address`, `--worker-run-dir`, `--max-retries`, `--ray-cpus`: from ExecutorSettings."""


def bundled_config(name: str) -> Path:
    """A config shipped with the package (configs/ in the repository links to the same files)."""
    return Path(str(files("hardneg") / "configs" / f"{name}.toml"))


@app.command()
@EXECUTOR
def run(
    config: Path = ConfigArgument,
    output: Path = RunDirOption,
    dry_run: bool = DryRunOption,
    quiet: bool = QuietOption,
    overrides: list[str] = SetOption,
    max_budget: str = BudgetOption,
    phase: str = PhaseOption,
    **executor: Any,
) -> None:
    """Run every cell of an experiment (pairs -> negatives -> train -> evaluate, plus the base
    model), reusing every stage already on disk, then write the report. A config with \\[\\[phases]]
    runs them first, in order (the cells that decide a long study before the rest)."""
    from hardneg.experiment.runner import run_experiment

    with user_errors():
        settings = parse_key_values(overrides, "--set")
        how = EXECUTOR.build(executor)
        run_experiment(
            config,
            output,
            dry_run=dry_run,
            show_progress=not quiet,
            console=console,
            overrides=settings,
            executor=how,
            max_budget=max_budget,
            phase=phase,
        )
