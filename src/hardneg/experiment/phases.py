"""A grid's ``[[phases]]`` (``hardneg.settings.phases``) as parts of its plan: a phase's cells and
every stage they need, taken from the whole grid's plan, so a phase runs the whole grid's very
stages (same keys, same paths) and the whole run after it only adds what is left."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hardneg.core.errors import HardnegError
from hardneg.core.output import print_table
from hardneg.experiment.plan import BASE, Plan, ancestors, grid_labels
from hardneg.experiment.planfile import CellRef
from hardneg.settings.experiment import ExperimentSettings
from hardneg.settings.phases import PhaseSettings
from hardneg.stages.rates import MachineRates, duration


def phase_cells(config: ExperimentSettings, plan: Plan, phase: PhaseSettings) -> list[CellRef]:
    """The whole plan's cells in ``phase``: its rows on its datasets, tested in-domain (the training
    dataset, or the first test set when it is not one of them) or on every test set."""
    names = grid_labels(config)
    wanted: set[tuple[str, str | None, str]] = set()
    for spec in config.datasets:
        if phase.datasets and spec.train not in phase.datasets:
            continue
        rows = [name for name in config.rows(spec) if not phase.sources or name in phase.sources]
        if phase.sources and not rows:
            continue
        tests = [names[test] for test in spec.tests]
        if phase.tests == "in-domain":
            tests = [names[spec.train]] if names[spec.train] in tests else tests[:1]
        for test in tests:
            wanted |= {(BASE, None, test)} | {(row, names[spec.train], test) for row in rows}
    return [cell for cell in plan.cells if (cell.source, cell.train, cell.test) in wanted]


def phase_plan(config: ExperimentSettings, plan: Plan, phase: PhaseSettings) -> Plan:
    """The part of ``plan`` that ``phase``'s cells need, in the whole plan's order."""
    cells = phase_cells(config, plan, phase)  # never none: the config's validation saw to that
    by_output = {stage.output: stage for stage in plan.stages}
    keep: set[str] = set()
    for cell in cells:
        for output in (cell.evaluation, cell.audit):
            if output is not None:
                keep.add(by_output[output].key)
                keep |= {stage.key for stage in ancestors(plan.stages, by_output[output].key)}
    stages = [stage for stage in plan.stages if stage.key in keep]
    return Plan(plan.run_dir, plan.config, stages, cells, plan.notes)


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
    config: ExperimentSettings, plan: Plan, phases: list[PhaseSettings]
) -> list[tuple[PhaseSettings, Plan]]:
    return [(phase, phase_plan(config, plan, phase)) for phase in phases]


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
        rows = len({cell.source for cell in plan.cells if cell.source != BASE})
        table.add_row(name, str(rows), tests, str(len(todo)), duration(rates.total(todo)))
    print_table(console, table)
