"""`hardneg run`: plan the grid, skip what is on disk, hand the rest to an executor (this process, or
Ray), then write the report. An interrupted run resumes: finished stages are files, unfinished ones
resume from their own leftovers (stored LLM answers, training checkpoints)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.core.output import PipeConsole, print_table
from hardneg.experiment.config import load_experiment
from hardneg.experiment.executors import Executor, Outcome, executor_class
from hardneg.experiment.phases import phase_plans, print_phases, selected
from hardneg.experiment.plan import Plan, build_plan
from hardneg.experiment.planfile import StageNode
from hardneg.settings.experiment import ExecutorSettings, ExperimentSettings
from hardneg.settings.llm import parse_budget
from hardneg.stages.rates import MachineRates, duration
from hardneg.stages.registry import kind_label
from hardneg.stages.resources import machine


@dataclass
class RunSummary:
    plan: Plan
    ran: list[StageNode]
    reused: list[StageNode]
    seconds: float
    records: dict[str, dict] = field(default_factory=dict)
    """Stage key -> which worker ran it, when (started/finished, epoch seconds), which attempt."""


def plan_experiment(config: ExperimentSettings, run_dir: str | Path, fetch: bool = False) -> Plan:
    """``fetch``: download datasets that are not local (a real run); a dry run never does."""
    return build_plan(config, Path(run_dir), fetch)


def make_executor(settings: ExecutorSettings, plan: Plan, console: Console, show_progress: bool) -> Executor:
    return executor_class(settings.name)(plan, console, show_progress, settings)


def with_budget(config: ExperimentSettings, budget: str) -> ExperimentSettings:
    """``--max-budget`` for every source whose settings take one (the generators, a plugin's too):
    each stops at it; a rerun continues."""
    try:
        parse_budget(budget)
    except ValueError as exc:
        raise HardnegError(f"--max-budget {exc}") from None
    sources = dict(config.sources)
    for name, source in sources.items():
        settings = source.settings
        if "max_budget" in type(settings).model_fields:
            data = settings.model_dump() | {"max_budget": budget}
            sources[name] = source.model_copy(update={source.kind: type(settings).model_validate(data)})
    return config.model_copy(update={"sources": sources})


def default_run_dir(config: ExperimentSettings) -> Path:
    return Path("runs") / config.name


def critical_path(stages: list[StageNode], pending: set[str], rates: MachineRates) -> float:
    """The longest chain of pending stages by estimated seconds on this machine: the least wall time
    any number of workers could take (unknown costs count as 0)."""
    finish: dict[str, float] = {}
    for stage in stages:  # dependency order
        own = rates.total([stage]) if stage.key in pending else 0.0
        finish[stage.key] = own + max((finish.get(dep, 0.0) for dep in stage.deps), default=0.0)
    return max(finish.values(), default=0.0)


def print_plan(plan: Plan, console: Console) -> None:
    here = machine()
    rates = MachineRates.current()
    piped = not console.is_terminal  # a pipe or a CI log: Markdown tables, lines not wrapped at 80 columns
    table = Table(
        "#",
        "stage",
        "model",
        "asks",
        "status",
        "work",
        "rough time",
        title=f"plan: {plan.config.name} -> {plan.run_dir}",
    )
    for column in (1, 2):
        table.columns[column].overflow = "fold"  # names are long: wrap them rather than cut them
    pending: set[str] = set()
    for number, stage in enumerate(plan.stages, start=1):
        state = plan.status(stage)
        if state != "cached":
            pending.add(stage.key)
        cost = duration(rates.seconds(stage.kind, stage.estimate.seconds)) if state != "cached" else ""
        table.add_row(
            str(number),
            stage.title,
            stage.model or "",
            stage.resources.describe(),
            state,
            stage.estimate.work,
            cost,
        )
    print_table(console, table)
    kinds = Table("stage", "planned", "to run", "rough time", title="by kind")
    for kind in dict.fromkeys(s.kind for s in plan.stages):
        stages = [s for s in plan.stages if s.kind == kind]
        todo = [s for s in stages if s.key in pending]
        known = [rates.seconds(s.kind, s.estimate.seconds) for s in todo if s.estimate.seconds is not None]
        cost = duration(sum(known)) + (" + ?" if len(known) < len(todo) else "") if todo else ""
        kinds.add_row(f"{kind} ({kind_label(kind)})", str(len(stages)), str(len(todo)), cost)
    print_table(console, kinds)
    todo = [s for s in plan.stages if s.key in pending]
    total = rates.total(todo)
    unknown = any(s.estimate.seconds is None for s in todo)
    suffix = " + stages of unknown cost (?: data not local, or a remote server)" if unknown else ""
    devices = f"{here['cpus']} CPU cores" + (f" and {here['gpus']} GPUs" if here["gpus"] else "")
    console.print(
        f"{len(todo)} of {len(plan.stages)} stages to run; rough total on this machine ({devices}): "
        f"{duration(total)}{suffix}",
        markup=False,
        highlight=False,
        soft_wrap=piped,
    )
    console.print(
        "critical path (the least wall time with one worker per ready stage): "
        f"{duration(critical_path(plan.stages, pending, rates))}",
        markup=False,
        highlight=False,
        soft_wrap=piped,
    )
    if rates.describe():
        console.print(rates.describe(), markup=False, highlight=False, soft_wrap=piped)
    print_generators(plan, pending, console)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=piped)


def print_generators(plan: Plan, pending: set[str], console: Console) -> None:
    """The LLM bill: tokens per generator (the first round of requests; re-asks add to it) and, with
    prices in the config, dollars."""
    stages = [
        s
        for s in plan.stages
        if s.kind == "generate" and s.key in pending and s.estimate.prompt_tokens is not None
    ]
    if not stages:
        return
    table = Table(
        "generator",
        "pairs",
        "prompt tokens",
        "completion tokens",
        "cost",
        title="LLM cost plan (first round)",
    )
    for stage in stages:
        est = stage.estimate
        cost = f"${est.cost_usd:,.2f}" if est.cost_usd is not None else "(no prices)"
        table.add_row(
            stage.model or stage.label,
            f"{est.pairs:,}",
            f"{est.prompt_tokens:,}",
            f"{est.completion_tokens:,}",
            cost,
        )
    print_table(console, table)
    tokens = sum(s.estimate.prompt_tokens + s.estimate.completion_tokens for s in stages)
    dollars = [s.estimate.cost_usd for s in stages if s.estimate.cost_usd is not None]
    console.print(
        f"LLM tokens to send: ~{tokens:,}" + (f", ~${sum(dollars):,.2f} where priced" if dollars else ""),
        markup=False,
        highlight=False,
        soft_wrap=not console.is_terminal,
    )


def refuse_file_in_path(run_dir: Path) -> None:
    """A run folder that is a file, or under one, is refused before planning: a dry run would plan
    into it and a run would fail only when it first writes."""
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "a file" if folder == run_dir else f"under {folder}, a file"
                raise HardnegError(f"run folder {run_dir}: {what}, not a folder; give a folder with -o")
            return


def check_run_dir(run_dir: Path) -> None:
    """Before any work: the run folder is ours and writable, or one line says why not (root would
    write into a folder marked read-only, or one of another user, and leave it half ours)."""
    refuse_file_in_path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HardnegError(f"run folder {run_dir}: cannot create it ({exc.strerror})") from None
    info = run_dir.stat()
    if info.st_uid != os.geteuid():
        raise HardnegError(
            f"run folder {run_dir}: owned by another user (uid {info.st_uid}, this is uid {os.geteuid()}); "
            "run as its owner, or give another folder with -o"
        )
    if not info.st_mode & stat.S_IWUSR:
        raise HardnegError(
            f"run folder {run_dir}: read-only (mode {stat.filemode(info.st_mode)}); chmod u+w it"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".hardneg-write-check-"):
            pass
    except OSError as exc:
        raise HardnegError(f"run folder {run_dir}: not writable ({exc.strerror})") from None


WHOLE_GRID = "the whole grid"


def _to_run(plan: Plan, failed: dict[str, str]) -> str:
    """How many of a plan's stages will run: not the cached ones, nor those a failure blocks."""
    todo = [s for s in plan.stages if not plan.done(s)]  # (a cached stage runs nothing, blocks nothing)
    blocked: set[str] = set()
    for stage in todo:  # a plan lists a stage after its inputs
        if stage.key in failed or blocked.intersection(stage.deps):
            blocked.add(stage.key)
    skipped = len(blocked)
    text = f"{len(todo) - skipped} of {len(plan.stages)} stages to run"
    return text + (f" ({skipped} skipped: a failure earlier in this run)" if skipped else "")


def run_in_turn(
    steps: list[tuple[str, Plan]], settings: ExecutorSettings, console: Console, show_progress: bool
) -> Outcome:
    """Plans one after another (a grid's phases, then the whole grid): what one ran is cached for
    the next, and a stage that failed is not tried again in this run (a rerun tries it), so a
    ``--max-budget`` is spent once."""
    outcome = Outcome()
    with executor_class(settings.name).session(settings, console):
        for number, (name, plan) in enumerate(steps, start=1):
            if len(steps) > 1 or name != WHOLE_GRID:
                console.print(
                    f"{number}/{len(steps)} {name}: {_to_run(plan, outcome.failed)}",
                    markup=False,
                    highlight=False,
                )
            executor = make_executor(settings, plan, console, show_progress)
            executor.outcome.failed.update(outcome.failed)
            got = executor.run()
            outcome.ran += got.ran
            outcome.reused += got.reused
            outcome.records |= got.records
            outcome.failed = got.failed
    ran = {stage.key for stage in outcome.ran}
    outcome.reused = list({s.key: s for s in outcome.reused if s.key not in ran}.values())
    return outcome


def run_experiment(
    config_path: str | Path,
    run_dir: str | Path | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
    overrides: dict[str, Any] | None = None,
    executor: ExecutorSettings | None = None,
    max_budget: str | None = None,
    phase: str | None = None,
) -> RunSummary:
    """``phase``: run the config's ``[[phases]]`` up to and including this one, not the whole grid."""
    console = console or PipeConsole()
    executor = executor or ExecutorSettings()
    config = load_experiment(config_path, overrides)
    if max_budget is not None:
        config = with_budget(config, max_budget)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    refuse_file_in_path(run_dir)  # check_run_dir, below, makes the folder: not for a dry run
    chosen = selected(config, phase)  # a wrong --phase before any download
    plan = plan_experiment(config, run_dir, fetch=not dry_run)
    phases = phase_plans(config, plan, chosen)
    if dry_run:
        print_plan(plan, console)
        if phases:
            print_phases(phases, None if phase else plan, console)
        return RunSummary(plan, [], [s for s in plan.stages if plan.done(s)], 0.0)

    check_run_dir(run_dir)
    if not (run_dir / "config.toml").exists() or not (run_dir / "config.toml").samefile(config_path):
        shutil.copyfile(config_path, run_dir / "config.toml")  # (a rerun may start from this very copy)
    write_json(
        run_dir / "config.json", {"overrides": overrides or {}, "effective": config.model_dump(mode="json")}
    )
    plan.describe().write(run_dir)  # the whole grid's: a report after a phase shows what is left
    start = time.perf_counter()
    steps = [(f"phase {settings.name}", part) for settings, part in phases]
    if phase is None:
        steps.append((WHOLE_GRID, plan))
    outcome = run_in_turn(steps, executor, console, show_progress)

    from hardneg.reporting.report import write_report

    report = write_report(run_dir, show_progress=show_progress)
    piped = not console.is_terminal
    console.print(report.markdown_table, markup=False, highlight=False, soft_wrap=piped)
    console.print(
        f"report: {report.path} (and results.csv, results.json, plots)",
        markup=False,
        highlight=False,
        soft_wrap=piped,
    )
    failed = outcome.failed
    if failed:
        roots = [s for s in plan.stages if s.key in failed and not failed[s.key].startswith("needs ")]
        first = (roots or [s for s in plan.stages if s.key in failed])[0]
        raise HardnegError(
            f"{len(failed)} of {len(plan.stages)} stages did not finish (the report shows the rest); first: "
            f"{first.title}: {failed[first.key]}"
        )
    return RunSummary(plan, outcome.ran, outcome.reused, time.perf_counter() - start, outcome.records)
