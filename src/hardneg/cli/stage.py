"""`hardneg stage KIND`: any registered stage kind, a plugin's included, run on files. Its settings
come as ``--set key=value`` (JSON values) or a TOML table (``--config``), validated by the kind's
settings class; the output gets the same manifest a grid's stage does."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hardneg.cli.common import QuietOption, app, console, parse_key_values, print_counts, user_errors
from hardneg.core.errors import HardnegError


@app.command("stage")
def stage_command(
    kind: str = typer.Argument(..., help="A registered stage kind ('hardneg stage --list' names them)."),
    inputs: list[str] = typer.Option(
        [], "--input", "-i", help="ROLE=PATH, repeated for a kind that takes several."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The file or folder to write."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="A TOML file holding the kind's settings."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="A setting: --set num_negatives=3 (JSON values; dotted keys nest)."
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", "-d", help="The dataset, for a kind that reads one."
    ),
    quiet: bool = QuietOption,
) -> None:
    """Run one stage of any registered kind; `hardneg stage list` shows the kinds and their inputs."""
    from hardneg.experiment.config import apply_overrides, read_toml
    from hardneg.stages import KINDS, kind_of, run_kind

    if kind == "list":
        for name, registered in KINDS.items():
            roles = ", ".join(
                f"{r}{'...' if s.many else ''}{'?' if s.optional else ''}"
                for r, s in registered.inputs.items()
            )
            console.print(
                f"{name}: {registered.label} (inputs: {roles or 'none'}; command: hardneg {registered.cli})",
                markup=False,
                highlight=False,
            )
        return
    with user_errors():
        stage = kind_of(kind)
        if output is None:
            raise HardnegError("give --output")
        settings = read_toml(config) if config is not None else {}
        settings = apply_overrides(settings, parse_key_values(overrides, "--set"), config or Path(kind))
        if dataset is not None:
            settings["dataset"] = dataset
        paths: dict[str, list[Path]] = {}
        for item in inputs:
            role, sep, path = item.partition("=")
            if not sep or role not in stage.inputs:
                raise HardnegError(
                    f"--input {item!r}: expected ROLE=PATH, ROLE one of {', '.join(stage.inputs) or 'none'}"
                )
            paths.setdefault(role, []).append(Path(path))
        missing = [role for role, spec in stage.inputs.items() if not spec.optional and role not in paths]
        if missing:
            raise HardnegError(f"stage {kind}: give --input {missing[0]}=PATH")
        result = run_kind(kind, stage.parse(settings), paths, output, show_progress=not quiet)
    print_counts(result.counts, f"{kind}: wrote {output}")
