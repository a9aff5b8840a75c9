"""Who runs a plan's stages. ``local`` runs them one after another in this process; ``ray`` (see
``ray_executor``) runs every ready stage as a Ray task. Both run a stage through ``run_stage``, which
writes its output atomically under its key, so a grid started with one resumes with the other."""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg._moved import moved_from
from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.experiment.plan import Plan
from hardneg.experiment.planfile import StageNode
from hardneg.stages import KINDS, RunContext, StageCall, execute, kind_of

__getattr__ = moved_from(__name__)  # ExecutorSettings lives in hardneg.settings now


def progress_path(run_dir: Path, stage: StageNode) -> Path:
    return run_dir / "progress" / f"{stage.key}.json"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_stage(stage: StageNode, run_dir: Path, show_progress: bool, context: RunContext) -> dict[str, Any]:
    """Run one stage in this process and record who ran it, when, and on which attempt in
    ``RUN/progress/KEY.json`` (what the driver shows and a user can read while it runs)."""
    kind = kind_of(stage.kind)
    record_path = progress_path(run_dir, stage)
    attempt = 1
    if record_path.exists():
        try:
            attempt = json.loads(record_path.read_text()).get("attempt", 0) + 1
        except (OSError, ValueError):
            pass
    record = {
        "stage": stage.title,
        "key": stage.key,
        "worker": worker_name(),
        "pid": os.getpid(),
        "attempt": attempt,
        "started": time.time(),
        "state": "running",
    }
    write_json(record_path, record)
    call = StageCall(
        config=kind.parse(stage.config),
        inputs={role: [run_dir / path for path in paths] for role, paths in stage.inputs.items()},
        output=run_dir / stage.output,
        label=stage.label,
        show_progress=show_progress,
        context=context,
        in_grid=True,
    )
    try:
        execute(kind, call)
        if not kind.done_marker(call.output).exists():
            raise HardnegError(f"finished without writing {kind.done_marker(call.output)}")
    except Exception as exc:  # recorded whatever it is (the traceback for a bug), then raised as it was
        detail = {} if isinstance(exc, HardnegError) else {"traceback": traceback.format_exc()}
        write_json(
            record_path, {**record, "state": "failed", "finished": time.time(), "error": str(exc), **detail}
        )
        raise
    record.update(state="done", finished=time.time())
    write_json(record_path, record)
    return record


@dataclass
class Outcome:
    ran: list[StageNode] = field(default_factory=list)
    reused: list[StageNode] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Stage key -> why; a failed cell does not stop the others."""
    records: dict[str, dict] = field(default_factory=dict)
    """Stage key -> who ran it and when (``run_stage``'s record)."""


class Executor:
    """The bookkeeping both executors share: numbering, skipping, one line per event."""

    name = "executor"

    def __init__(self, plan: Plan, console: Console, show_progress: bool):
        self.plan, self.console, self.show_progress = plan, console, show_progress
        self.number = {stage.key: n for n, stage in enumerate(plan.stages, start=1)}
        self.outcome = Outcome()

    def say(self, stage: StageNode, text: str) -> None:
        head = f"[{self.number[stage.key]}/{len(self.plan.stages)}] {stage.title}"
        self.console.print(f"{head}: {text}", markup=False, highlight=False)

    def settle(self, stage: StageNode) -> bool:
        """Handle a stage that needs no run (cached, or blocked by a failure); True if handled."""
        if self.plan.done(stage):
            self.outcome.reused.append(stage)
            self.say(stage, "cached")
            return True
        blocked = [key for key in stage.deps if key in self.outcome.failed]
        if blocked:
            dep = next(s for s in self.plan.stages if s.key == blocked[0])
            self.outcome.failed[stage.key] = f"needs {dep.title}, which failed"
            self.say(stage, f"skipped ({self.outcome.failed[stage.key]})")
            return True
        return False

    def finished(self, stage: StageNode, record: dict) -> None:
        self.outcome.ran.append(stage)
        self.outcome.records[stage.key] = record
        where = f" on {record['worker']}" if self.name != "local" else ""
        self.say(stage, f"done in {record['finished'] - record['started']:.0f} s{where}")

    def failed(self, stage: StageNode, message: str) -> None:
        self.outcome.failed[stage.key] = message
        self.say(stage, f"FAILED: {message}")

    def run(self) -> Outcome:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Today's behaviour: in dependency order, in this process, datasets shared while needed."""

    name = "local"

    def run(self) -> Outcome:
        context = RunContext()
        last_use = {}
        for index, stage in enumerate(self.plan.stages):
            if KINDS[stage.kind].reads_dataset:
                last_use[stage.config["dataset"]] = index
        for index, stage in enumerate(self.plan.stages):
            if not self.settle(stage):
                self.say(
                    stage, f"{'resuming' if self.plan.partial(stage) else 'running'} ({stage.estimate.work})"
                )
                progress_path(self.plan.run_dir, stage).unlink(missing_ok=True)
                try:
                    self.finished(stage, run_stage(stage, self.plan.run_dir, self.show_progress, context))
                except HardnegError as exc:
                    self.failed(stage, str(exc))
            for dataset in [name for name, last in last_use.items() if last == index]:
                context.release(dataset)  # a grid of many test sets never holds them all
        return self.outcome
