"""``hardneg run --executor ray``: every stage whose inputs are ready runs as a Ray task with the
resources its kind declares, on whichever worker has them. Ray does the scheduling, placement and
retries (a killed worker's task is re-run); we keep the plan, the run folder and the lines."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg.errors import HardnegError
from hardneg.experiment.executors import Executor, ExecutorSettings, Outcome, progress_path, run_stage
from hardneg.experiment.plan import Plan
from hardneg.experiment.planfile import StageNode

_CONTEXT = None


def _stage_task(stage_json: str, run_dir: str, show_progress: bool) -> dict[str, Any]:
    """The Ray task: one stage, in a worker process that keeps its caches for the next stage."""
    global _CONTEXT
    from hardneg.stages import RunContext

    if _CONTEXT is None:
        _CONTEXT = RunContext()
    stage = StageNode.model_validate_json(stage_json)
    for name in {key[0] for key in _CONTEXT.datasets} - {stage.config.get("dataset")}:
        _CONTEXT.release(name)  # a long-lived worker holds at most the dataset of the stage it runs
    return run_stage(stage, Path(run_dir), show_progress, _CONTEXT)


def _probe_task(run_dir: str, name: str, token: str) -> str:
    """Write a token into the run folder, as this worker sees it."""
    import socket

    path = Path(run_dir) / name
    path.write_text(token, encoding="utf-8")
    return socket.gethostname()


def _ray():
    try:
        import ray
    except ImportError:
        raise HardnegError("--executor ray needs Ray: pip install 'hardneg[ray]'") from None
    return ray


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, plan: Plan, console: Console, show_progress: bool, settings: ExecutorSettings):
        super().__init__(plan, console, show_progress)
        self.settings = settings
        self.worker_dir = settings.worker_run_dir or str(plan.run_dir.resolve())
        self.ray = _ray()
        self.started_here = False

    def start(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        if self.settings.ray_address is None:
            ray.init(num_cpus=self.settings.num_cpus, include_dashboard=False, log_to_driver=True)
        else:
            try:
                ray.init(address=self.settings.ray_address, log_to_driver=True)
            except (ConnectionError, RuntimeError) as exc:
                raise HardnegError(f"--ray-address {self.settings.ray_address}: cannot join the cluster: {exc}") from None
        self.started_here = True
        resources = ray.cluster_resources()
        self.console.print(
            f"ray: {len(self._nodes())} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs",
            markup=False, highlight=False,
        )  # fmt: skip

    def _nodes(self) -> list[dict]:
        return [node for node in self.ray.nodes() if node.get("Alive")]

    def check_storage(self) -> None:
        """Every node's workers must see the run folder: one writes a probe, the driver reads it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = self.ray.remote(_probe_task)
        checks = []
        for node in self._nodes():
            token, name = uuid.uuid4().hex, f".probe-{uuid.uuid4().hex[:8]}"
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            ref = probe.options(num_cpus=0, scheduling_strategy=strategy, max_retries=0).remote(self.worker_dir, name, token)
            checks.append((node, name, token, ref))
        for node, name, token, ref in checks:
            where = node.get("NodeManagerAddress", node["NodeID"][:8])
            try:
                self.ray.get(ref, timeout=120)
            except Exception as exc:  # noqa: BLE001  (any failure to write means: not shared)
                raise HardnegError(
                    f"run folder {self.worker_dir}: a Ray worker on {where} cannot write there "
                    f"({type(exc).__name__}); put the run folder on storage every node mounts (docs/cluster.md)"
                ) from None
            local = self.plan.run_dir / name
            seen = local.read_text(encoding="utf-8") if local.exists() else None
            local.unlink(missing_ok=True)
            if seen != token:
                raise HardnegError(
                    f"run folder {self.plan.run_dir}: a Ray worker on {where} wrote to {self.worker_dir} and the driver "
                    "does not see it; put the run folder on storage every node mounts, or give --worker-run-dir"
                )

    def options(self, stage: StageNode) -> dict[str, Any]:
        """The stage's declared resources, within what the biggest node has (never unschedulable)."""
        nodes = self._nodes()
        cpus = max((n["Resources"].get("CPU", 0) for n in nodes), default=1)
        memory = max((n["Resources"].get("memory", 0) for n in nodes), default=0)
        gpus_available = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
        res = stage.resources
        if res.gpus > gpus_available:
            raise HardnegError(f"{stage.title} asks for {res.gpus:g} GPU (its config names a CUDA device); the cluster has none")
        options = {"num_cpus": min(res.cpus, cpus), "num_gpus": res.gpus, "max_retries": self.settings.max_retries,
                   "retry_exceptions": False}  # fmt: skip
        if memory:
            options["memory"] = int(min(res.memory_gb * 2**30, memory))
        return options

    def run(self) -> Outcome:
        self.start()
        try:
            for stage in self.plan.stages:  # a stage no node could ever hold fails now, not hours in
                if not self.plan.done(stage):
                    self.options(stage)
            self.check_storage()
            return self._schedule()
        finally:
            if self.started_here and self.settings.ray_address is None:
                self.ray.shutdown()

    def _schedule(self) -> Outcome:
        ray = self.ray
        task = ray.remote(_stage_task)
        waiting = [s for s in self.plan.stages if not self.settle(s)]
        running: dict[Any, StageNode] = {}
        announced: dict[str, int] = {}
        finished = {s.key for s in self.outcome.reused}
        while waiting or running:
            for stage in list(waiting):
                if any(key in self.outcome.failed for key in stage.deps):
                    waiting.remove(stage)
                    self.settle(stage)
                elif all(key in finished for key in stage.deps):
                    waiting.remove(stage)
                    progress_path(self.plan.run_dir, stage).unlink(missing_ok=True)
                    ref = task.options(**self.options(stage)).remote(
                        stage.model_dump_json(), self.worker_dir, False  # many workers would interleave their bars: the driver prints lines
                    )
                    running[ref] = stage
                    self.say(stage, f"queued ({stage.estimate.work}; {_asks(stage)})")
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            self._announce(running.values(), announced)
            for ref in ready:
                stage = running.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if not isinstance(cause, HardnegError):
                        raise (cause or exc) from None
                    self.failed(stage, str(cause))
                    continue
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                    self.failed(stage, f"its worker died {self.settings.max_retries + 1} times ({type(exc).__name__})")
                    continue
                finished.add(stage.key)
                self.finished(stage, record)
        return self.outcome

    def _announce(self, stages, announced: dict[str, int]) -> None:
        """'running on host:pid' once per attempt, read from the record the worker writes."""
        for stage in stages:
            path = progress_path(self.plan.run_dir, stage)
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("state") == "running" and announced.get(stage.key) != record["attempt"]:
                announced[stage.key] = record["attempt"]
                again = f", attempt {record['attempt']}" if record["attempt"] > 1 else ""
                self.say(stage, f"running on {record['worker']}{again}")


def _asks(stage: StageNode) -> str:
    res = stage.resources
    return f"{res.cpus:g} CPU" + (f", {res.gpus:g} GPU" if res.gpus else "") + f", ~{res.memory_gb:g} GB"

