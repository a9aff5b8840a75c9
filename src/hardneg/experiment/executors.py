"""Who runs a plan's stages. ``local`` runs them one after another in this process; ``ray`` (see
``ray_executor``) runs every ready stage as a Ray task. Both run a stage through ``run_stage``, which
writes its output atomically under its key, so a grid started with one resumes with the other."""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg._moved import moved_from
from hardneg.core import reuse
from hardneg.core.errors import HardnegError, storage_error
from hardneg.core.io import write_json
from hardneg.core.manifest import committed
from hardneg.experiment.plan import Plan
from hardneg.experiment.planfile import StageNode
from hardneg.settings import experiment as experiment_settings  # (the module: the old name here warns)
from hardneg.stages import KINDS, RunContext, StageCall, execute, kind_of, rates

__getattr__ = moved_from(__name__)  # ExecutorSettings lives in hardneg.settings now


def progress_path(run_dir: Path, stage: StageNode) -> Path:
    return run_dir / "progress" / f"{stage.key}.json"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


HEARTBEAT_S = 10.0
"""How often a running stage's record says it is alive: an attempt killed without a word still
leaves how long it ran (to within this), which the cost table counts as lost work."""


def lost_path(run_dir: Path, stage: StageNode) -> Path:
    return run_dir / "progress" / f"{stage.key}.lost.jsonl"


def _previous(record_path: Path) -> dict[str, Any]:
    try:
        return json.loads(record_path.read_text())
    except (OSError, ValueError):
        return {}


def _count_lost(run_dir: Path, stage: StageNode, previous: dict[str, Any]) -> None:
    """An attempt that never finished (killed, failed, its worker lost): its time, appended to the
    stage's ``.lost.jsonl`` for the cost table."""
    if not previous.get("started") or previous.get("state") == "done":
        return
    ended = previous.get("finished") or previous.get("alive") or previous["started"]
    lost = {k: previous.get(k) for k in ("attempt", "worker", "state", "started")}
    line = json.dumps({**lost, "seconds": round(max(0.0, ended - previous["started"]), 1)})
    path = lost_path(run_dir, stage)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class Heartbeat:
    """Rewrites a running stage's record every ``HEARTBEAT_S`` with the time it was last alive."""

    def __init__(self, path: Path, record: dict[str, Any]):
        self.path, self.record = path, record
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="hardneg-heartbeat")

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                write_json(self.path, {**self.record, "alive": time.time()})
            except OSError:
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def check_dataset(stage: StageNode, config: Any) -> None:
    """A stage reads the data the plan was made with, or stops in one line naming both places."""
    if not stage.data_sha:
        return
    from hardneg.experiment.keys import dataset_content

    here, sha = dataset_content(config.dataset, config.data_root)
    if sha != stage.data_sha:
        found = f"{here} (content {sha[:12]})" if sha else "nothing"
        raise HardnegError(
            f"dataset {config.dataset!r}: this worker ({worker_name()}) reads {found}, the plan was made "
            f"with {stage.data_path} (content {stage.data_sha[:12]}): give every worker the same data "
            "(the same path, or the same files under data_root / $HARDNEG_DATA)"
        )


def run_stage(
    stage: StageNode, run_dir: Path, show_progress: bool, context: RunContext, alone: bool = False
) -> dict[str, Any]:
    """Run one stage in this process and record who ran it, when, and on which attempt in
    ``RUN/progress/KEY.json`` (what the driver shows and a user can read while it runs); the time of
    an earlier attempt that never finished goes to ``KEY.lost.jsonl``. ``alone``: nothing else runs
    on this machine and nothing was done before, so its time is this machine's rate for the kind."""
    kind = kind_of(stage.kind)
    record_path = progress_path(run_dir, stage)
    previous = _previous(record_path)
    record = {
        "stage": stage.title,
        "key": stage.key,
        "worker": worker_name(),
        "pid": os.getpid(),
        "attempt": previous.get("attempt", 0) + 1,
        "started": time.time(),
        "state": "running",
    }
    try:
        _count_lost(run_dir, stage, previous)
        write_json(record_path, record)
    except OSError as exc:
        raise (storage_error(exc) or exc) from None
    call = StageCall(
        config=kind.parse(stage.config),
        inputs={role: [run_dir / path for path in paths] for role, paths in stage.inputs.items()},
        output=run_dir / stage.output,
        label=stage.label,
        show_progress=show_progress,
        context=context,
        in_grid=True,
    )
    reuse.reset()
    try:
        check_dataset(stage, call.config)
        with Heartbeat(record_path, record):
            execute(kind, call)
        if not committed(call.output, kind.done_marker(call.output)):
            raise HardnegError(f"finished without a record matching {call.output}")
    except Exception as exc:  # recorded whatever it is (the traceback for a bug), then raised as it was
        storage = storage_error(exc, call.output)  # a full disk: one line, like any error the user fixes
        detail = {} if isinstance(exc, HardnegError) or storage else {"traceback": traceback.format_exc()}
        failed = {
            **record,
            "state": "failed",
            "finished": time.time(),
            "error": str(storage or exc),
            **detail,
        }
        try:
            write_json(record_path, failed)
        except OSError:
            pass  # the disk that failed the stage may not take its record either
        if storage is not None:
            raise storage from None
        raise
    record.update(state="done", finished=time.time())
    write_json(record_path, record)
    if alone and record["attempt"] == 1 and not reuse.taken():
        try:
            rates.remember(stage.kind, record["finished"] - record["started"], stage.estimate.seconds)
        except Exception:  # noqa: BLE001  (a rate is a hint: it never fails a finished stage)
            pass
    return record


@dataclass
class Outcome:
    ran: list[StageNode] = field(default_factory=list)
    reused: list[StageNode] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Stage key -> why; a failed cell does not stop the others."""
    records: dict[str, dict] = field(default_factory=dict)
    """Stage key -> who ran it and when (``run_stage``'s record)."""


BUDGET_SPENT = "not started: the time budget is spent"
"""Why a stage did not run after the executor's ``deadline`` (``hardneg tune``)."""


def row_order(plan: Plan) -> list[StageNode]:
    """The plan's stages one table row at a time: each cell's evaluation with everything it needs
    (in plan order), then its audit. A sitting cut short then leaves whole rows (negatives, model,
    evaluation) to report, not every source's negatives and no model. Stages no cell needs keep
    their plan order, last."""
    by_key = {stage.key: stage for stage in plan.stages}
    by_output = {stage.output: stage.key for stage in plan.stages}
    position = {stage.key: n for n, stage in enumerate(plan.stages)}
    order: list[StageNode] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for dep in sorted(by_key[key].deps, key=position.__getitem__):
            visit(dep)
        order.append(by_key[key])

    for cell in plan.cells:
        for output in (cell.evaluation, cell.audit):
            if output in by_output:
                visit(by_output[output])
    for stage in plan.stages:
        visit(stage.key)
    return order


class Executor:
    """The bookkeeping both executors share: numbering, skipping, one line per event."""

    name = "executor"

    def __init__(
        self,
        plan: Plan,
        console: Console,
        show_progress: bool,
        settings: experiment_settings.ExecutorSettings | None = None,
    ):
        self.plan, self.console, self.show_progress = plan, console, show_progress
        self.settings = settings or experiment_settings.ExecutorSettings()
        self.number = {stage.key: n for n, stage in enumerate(plan.stages, start=1)}
        self.outcome = Outcome()
        self.deadline: float | None = None
        """Epoch seconds after which no stage starts (a running one finishes): a budget's hard end."""

    @classmethod
    @contextmanager
    def session(cls, settings: experiment_settings.ExecutorSettings, console: Console) -> Iterator[None]:
        """What several plans run one after another share (Ray: one instance); nothing here."""
        yield

    def out_of_time(self, stage: StageNode) -> bool:
        """Past the deadline: the stage is left for a later run, and what needs it with it."""
        if self.deadline is None or time.time() < self.deadline:
            return False
        self.outcome.failed[stage.key] = BUDGET_SPENT
        self.say(stage, BUDGET_SPENT)
        return True

    def say(self, stage: StageNode, text: str) -> None:
        head = f"[{self.number[stage.key]}/{len(self.plan.stages)}] {stage.title}"
        self.console.print(f"{head}: {text}", markup=False, highlight=False)

    def settle(self, stage: StageNode) -> bool:
        """Handle a stage that needs no run (cached, or blocked by a failure); True if handled."""
        if self.plan.done(stage):
            self.outcome.failed.pop(stage.key, None)  # (its output was committed after all)
            self.outcome.reused.append(stage)
            self.say(stage, "cached")
            return True
        if stage.key in self.outcome.failed:  # in an earlier phase of this run: a rerun tries again
            self.say(stage, f"skipped (failed earlier in this run: {self.outcome.failed[stage.key]})")
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
    """One stage at a time in this process, a row at a time (``row_order``), datasets shared while
    needed."""

    name = "local"

    def run(self) -> Outcome:
        context = RunContext()
        stages = row_order(self.plan)
        self.number = {stage.key: n for n, stage in enumerate(stages, start=1)}
        last_use = {}
        for index, stage in enumerate(stages):
            if KINDS[stage.kind].reads_dataset:
                last_use[stage.config["dataset"]] = index
        for index, stage in enumerate(stages):
            if not self.settle(stage) and not self.out_of_time(stage):
                partial = self.plan.partial(stage)
                self.say(stage, f"{'resuming' if partial else 'running'} ({stage.estimate.work})")
                try:
                    record = run_stage(stage, self.plan.run_dir, self.show_progress, context, not partial)
                    self.finished(stage, record)
                except HardnegError as exc:
                    self.failed(stage, str(exc))
            for dataset in [name for name, last in last_use.items() if last == index]:
                context.release(dataset)  # a grid of many test sets never holds them all
        return self.outcome


EXECUTORS = {
    "local": "hardneg.experiment.executors:LocalExecutor",
    "ray": "hardneg.experiment.ray_executor:RayExecutor",
}
"""``[executor] name`` -> its class, imported when chosen (Ray's module only when asked for)."""


def executor_class(name: str) -> type[Executor]:
    module, _, attribute = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
