"""A grid's ``[[phases]]`` (``hardneg.settings.phases``) as smaller grids: each phase is the config
with fewer rows and test sets, planned into the same run folder, where its stages keep the keys they
have in the whole grid."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from hardneg.core.errors import HardnegError
from hardneg.core.output import print_table
from hardneg.experiment.plan import Plan, build_plan, grid_labels
from hardneg.settings.experiment import ExperimentSettings
from hardneg.settings.phases import PhaseSettings
from hardneg.stages.rates import MachineRates, duration


def phase_config(config: ExperimentSettings, phase: PhaseSettings) -> ExperimentSettings:
    """The grid cut to ``phase``: its datasets, its sources among each dataset's own, and in-domain
    tests (the training dataset, or the first test set when it is not one of them)."""
    datasets = []
    for spec in config.datasets:
        if phase.datasets and spec.train not in phase.datasets:
            continue
        own = spec.sources or list(config.sources)
        sources = [name for name in own if not phase.sources or name in phase.sources]
        if own and not sources:
            continue
        tests = spec.tests
        if phase.tests == "in-domain":
            tests = [spec.train] if spec.train in tests else tests[:1]
        datasets.append(spec.model_copy(update={"sources": sources, "test": tests}))
    if not datasets:
        raise HardnegError(f"phase {phase.name!r}: no training dataset of the grid has any of its sources")
    return config.model_copy(update={"datasets": datasets, "phases": []})


def selected(config: ExperimentSettings, until: str | None) -> list[PhaseSettings]:
    """The phases to run: all, or up to and including ``until`` (``hardneg run --phase``)."""
    if until is None:
        return list(config.phases)
    names = [phase.name for phase in config.phases]
    if until not in names:
        have = ", ".join(names) or "none in this config"
        raise HardnegError(f"--phase {until!r}: no such phase (have: {have})")
    return list(config.phases[: names.index(until) + 1])


def phase_plans(
    config: ExperimentSettings, run_dir: Path, until: str | None = None, fetch: bool = False
) -> list[tuple[PhaseSettings, Plan]]:
    names = grid_labels(config)
    return [
        (phase, build_plan(phase_config(config, phase), run_dir, fetch, names))
        for phase in selected(config, until)
    ]


def print_phases(plans: list[tuple[PhaseSettings, Plan]], whole: Plan | None, console: Console) -> None:
    """What each phase adds to the run (stages not cached and not in an earlier phase) and its rough
    time here: how a user sizes phases to sittings."""
    rates = MachineRates.current()
    table = Table("phase", "rows", "tests", "stages to run", "rough time", title="phases, in order")
    seen: set[str] = set()
    steps = [(phase.name, plan, phase.tests) for phase, plan in plans]
    if whole is not None:
        steps.append(("(the whole grid)", whole, "all"))
    for name, plan, tests in steps:
        todo = [s for s in plan.stages if s.key not in seen and not plan.done(s)]
        seen.update(s.key for s in plan.stages)
        rows = len({cell.source for cell in plan.cells})
        table.add_row(name, str(rows), tests, str(len(todo)), duration(rates.total(todo)))
    print_table(console, table)
