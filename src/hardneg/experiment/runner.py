"""`hardneg run`: plan the grid, skip what is on disk, run the rest in dependency order, then write
the report. An interrupted run resumes: finished stages are files, unfinished ones resume from
their own leftovers (stored LLM answers, training checkpoints)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hardneg.errors import HardnegError
from hardneg.experiment.config import ExperimentConfig, load_experiment
from hardneg.experiment.estimate import Estimates
from hardneg.experiment.plan import Plan, Stage, build_plan
from hardneg.experiment.stages import StageActions
from hardneg.io import write_json


@dataclass
class RunSummary:
    plan: Plan
    ran: list[Stage]
    reused: list[Stage]
    seconds: float


def plan_experiment(config: ExperimentConfig, run_dir: str | Path, fetch: bool = False) -> Plan:
    """``fetch``: download datasets that are not local (a real run); a dry run never does."""
    actions = StageActions(config.data_root)
    return build_plan(config, Path(run_dir), actions, Estimates(actions), fetch)


def default_run_dir(config: ExperimentConfig) -> Path:
    return Path("runs") / config.name


def status(stage: Stage) -> str:
    if stage.done:
        return "cached"
    return "resumes" if stage.partial else "to run"


def print_plan(plan: Plan, console: Console) -> None:
    table = Table("#", "stage", "status", "work", "rough CPU time", title=f"plan: {plan.config.name} -> {plan.run_dir}")
    table.columns[1].overflow = "fold"  # stage names are long: wrap them rather than cut them
    total = 0.0
    unknown = False
    for number, stage in enumerate(plan.stages, start=1):
        state = status(stage)
        if state != "cached":
            if stage.seconds is None:
                unknown = True
            else:
                total += stage.seconds
        cost = _duration(stage.seconds) if state != "cached" else ""
        table.add_row(str(number), f"{stage.kind} {stage.label}", state, stage.work, cost)
    console.print(table)
    kinds = Table("stage", "planned", "to run", "rough CPU time", title="by kind")
    for kind in dict.fromkeys(s.kind for s in plan.stages):
        stages = [s for s in plan.stages if s.kind == kind]
        pending = [s for s in stages if status(s) != "cached"]
        known = [s.seconds for s in pending if s.seconds is not None]
        cost = _duration(sum(known)) + (" + ?" if len(known) < len(pending) else "") if pending else ""
        kinds.add_row(kind, str(len(stages)), str(len(pending)), cost)
    console.print(kinds)
    left = sum(status(s) != "cached" for s in plan.stages)
    suffix = " + stages of unknown cost (?: data not local, or a remote server)" if unknown else ""
    console.print(
        f"{left} of {len(plan.stages)} stages to run; rough total on 2 CPU cores: {_duration(total)}{suffix}"
    )
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_experiment(
    config_path: str | Path,
    run_dir: str | Path | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunSummary:
    console = console or Console()
    config = load_experiment(config_path, overrides)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    plan = plan_experiment(config, run_dir, fetch=not dry_run)
    if dry_run:
        print_plan(plan, console)
        return RunSummary(plan, [], [s for s in plan.stages if s.done], 0.0)

    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.toml").exists() or not (run_dir / "config.toml").samefile(config_path):
        shutil.copyfile(config_path, run_dir / "config.toml")  # (a rerun may start from this very copy)
    write_json(
        run_dir / "config.json", {"overrides": overrides or {}, "effective": config.model_dump(mode="json")}
    )
    write_json(run_dir / "plan.json", plan.describe())
    start = time.perf_counter()
    ran, reused = [], []
    failed: dict[str, str] = {}  # stage key -> why; a failed cell does not stop the others
    for number, stage in enumerate(plan.stages, start=1):
        head = f"[{number}/{len(plan.stages)}] {stage.kind} {stage.label}"
        if stage.done:
            reused.append(stage)
            console.print(f"{head}: cached", markup=False, highlight=False)
            continue
        blocked = [dep for dep in stage.deps if dep.key in failed]
        if blocked:
            failed[stage.key] = f"needs {blocked[0].kind} {blocked[0].label}, which failed"
            console.print(f"{head}: skipped ({failed[stage.key]})", markup=False, highlight=False)
            continue
        state = "resuming" if stage.partial else "running"
        console.print(f"{head}: {state} ({stage.work})", markup=False, highlight=False)
        began = time.perf_counter()
        try:
            stage.output.parent.mkdir(parents=True, exist_ok=True)
            stage.action(stage, show_progress)
            if not stage.done:
                raise HardnegError(f"finished without writing {stage.done_marker}")
        except HardnegError as exc:
            failed[stage.key] = str(exc)
            console.print(f"{head}: FAILED: {exc}", markup=False, highlight=False)
            continue
        console.print(f"{head}: done in {time.perf_counter() - began:.0f} s", markup=False, highlight=False)
        ran.append(stage)

    from hardneg.report import write_report

    report = write_report(run_dir, show_progress=show_progress)
    console.print(report.markdown_table, markup=False, highlight=False)
    console.print(f"report: {report.path} (and results.csv, results.json, plots)", markup=False, highlight=False)
    if failed:
        first = next(s for s in plan.stages if s.key in failed and not failed[s.key].startswith("needs "))
        raise HardnegError(
            f"{len(failed)} of {len(plan.stages)} stages did not finish (the report shows the rest); first: "
            f"{first.kind} {first.label}: {failed[first.key]}"
        )
    return RunSummary(plan, ran, reused, time.perf_counter() - start)
