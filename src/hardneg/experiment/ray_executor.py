"""``hardneg run --executor ray``: every stage whose inputs are ready runs as a Ray task with the
resources its kind declares, on whichever worker has them. Ray does the scheduling, placement and
retries (a killed worker's task is re-run); we keep the plan, the run folder and the lines."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg.core.errors import HardnegError
from hardneg.experiment.executors import Executor, Outcome, progress_path, run_stage
from hardneg.experiment.plan import Plan
from hardneg.experiment.planfile import StageNode
from hardneg.settings.experiment import ExecutorSettings

_CONTEXT = None


def _stage_task(
    stage_json: str, run_dir: str, show_progress: bool, gpus: float, kind: Any = None
) -> dict[str, Any]:
    """The Ray task: one stage, in a worker process that keeps its caches for the next stage. A kind
    registered outside hardneg's package comes along (pickled by value when its module is not
    importable on the worker) and is registered here."""
    global _CONTEXT
    from hardneg.stages import KINDS, RunContext, register

    if kind is not None and kind.name not in KINDS:
        register(kind)
    if _CONTEXT is None:
        _CONTEXT = RunContext()
    stage = StageNode.model_validate_json(stage_json)
    if not gpus:  # Ray leaves the GPUs visible to a task that asked for none: it must not use them
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    else:  # Ray shows the task only its own GPUs, numbered from 0
        stage = stage.model_copy(update={"config": visible_devices(stage.config)})
    for name in {key[0] for key in _CONTEXT.datasets} - {stage.config.get("dataset")}:
        _CONTEXT.release(name)  # a long-lived worker holds at most the dataset of the stage it runs
    return run_stage(stage, Path(run_dir), show_progress, _CONTEXT)


def visible_devices(config: Any) -> Any:
    """'cuda:3' -> 'cuda:0' in device settings (and lists of them -> 'cuda:0', 'cuda:1'...): under
    Ray a task sees only the GPUs it was given, renumbered from 0."""
    if isinstance(config, dict):
        return {
            k: _renumber(v) if k in ("device", "devices") else visible_devices(v) for k, v in config.items()
        }
    return config


def _renumber(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("cuda"):
        return "cuda:0"
    if isinstance(value, list):
        return [f"cuda:{i}" if str(d).startswith("cuda") else d for i, d in enumerate(value)]
    return value


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


def start_ray(ray: Any, settings: ExecutorSettings, console: Console) -> bool:
    """Start a local Ray instance or join ``ray_address``, unless Ray is up; True if this started it
    (and then one line says what the cluster holds)."""
    if ray.is_initialized():
        return False
    if settings.ray_address is None:
        ray.init(num_cpus=settings.num_cpus, include_dashboard=False, log_to_driver=True)
    else:
        try:
            ray.init(address=settings.ray_address, log_to_driver=True)
        except (ConnectionError, RuntimeError) as exc:
            raise HardnegError(
                f"--ray-address {settings.ray_address}: cannot join the cluster: {exc}"
            ) from None
    resources, nodes = ray.cluster_resources(), [node for node in ray.nodes() if node.get("Alive")]
    console.print(
        f"ray: {len(nodes)} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs",
        markup=False,
        highlight=False,
    )
    return True


SHARED_ENV = ("HARDNEG_CACHE", "HARDNEG_DATA", "HF_HUB_OFFLINE")
"""The driver's settings that workers on its own machine follow."""


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self, plan: Plan, console: Console, show_progress: bool, settings: ExecutorSettings | None = None
    ):
        super().__init__(plan, console, show_progress, settings)
        self.worker_dir = self.settings.worker_run_dir or str(plan.run_dir.resolve())
        self.ray = _ray()
        self.started_here = False
        self._alive: list[dict] | None = None

    @classmethod
    @contextmanager
    def session(cls, settings: ExecutorSettings, console: Console) -> Iterator[None]:
        """One Ray instance for several plans (a grid's phases), not one started and stopped per plan."""
        ray = _ray()
        started = start_ray(ray, settings, console)
        try:
            yield
        finally:
            if started and settings.ray_address is None:
                ray.shutdown()

    def start(self) -> None:
        self.started_here = start_ray(self.ray, self.settings, self.console)

    def _nodes(self) -> list[dict]:
        """The cluster's live nodes, read once per run (every stage's placement check uses them)."""
        if self._alive is None:
            self._alive = [node for node in self.ray.nodes() if node.get("Alive")]
        return self._alive

    def check_storage(self) -> None:
        """Every node's workers must see the run folder: one writes a probe, the driver reads it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = self.ray.remote(_probe_task)
        checks = []
        for node in self._nodes():
            token, name = uuid.uuid4().hex, f".probe-{uuid.uuid4().hex[:8]}"
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            ref = probe.options(num_cpus=0, scheduling_strategy=strategy, max_retries=0).remote(
                self.worker_dir, name, token
            )
            checks.append((node, name, token, ref))
        for node, name, token, ref in checks:
            where = node.get("NodeManagerAddress", node["NodeID"][:8])
            try:
                self.ray.get(ref, timeout=120)
            except Exception as exc:  # noqa: BLE001  (any failure to write means: not shared)
                cause = getattr(exc, "cause", None) or exc
                raise HardnegError(
                    f"run folder {self.worker_dir}: a Ray worker on {where} cannot write there "
                    f"({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}); "
                    "put the run folder on storage every node mounts, with hardneg installed on every node "
                    "(docs/cluster.md)"
                ) from None
            local = self.plan.run_dir / name
            seen = local.read_text(encoding="utf-8") if local.exists() else None
            local.unlink(missing_ok=True)
            if seen != token:
                raise HardnegError(
                    f"run folder {self.plan.run_dir}: a Ray worker on {where} wrote to {self.worker_dir} "
                    "and the driver does not see it; put the run folder on storage every node mounts, "
                    "or give --worker-run-dir"
                )

    def options(self, stage: StageNode) -> dict[str, Any]:
        """The stage's declared resources, as some node can give them all at once: memory is capped
        at the biggest such node's (never unschedulable); a stage no node can hold is an error."""
        res = stage.resources
        nodes = [n["Resources"] for n in self._nodes()]
        gpus = res.gpus or (res.gpus_if_any if any(n.get("GPU", 0) for n in nodes) else 0.0)
        fits = [n for n in nodes if n.get("GPU", 0) >= gpus and n.get("CPU", 0) >= min(res.cpus, 1)]
        if not fits:
            what = f"{gpus:g} GPU" if gpus else f"{res.cpus:g} CPU"
            raise HardnegError(
                f"{stage.title} asks for {what} (its config), and no node of the cluster has that"
            )
        cpus = min(res.cpus, max(n.get("CPU", 1) for n in fits))
        options = {
            "num_cpus": cpus,
            "num_gpus": gpus,
            "max_retries": self.settings.max_retries,
            "retry_exceptions": False,
        }
        memory = max(n.get("memory", 0) for n in fits)
        if memory:
            options["memory"] = int(min(res.memory_gb * 2**30, memory))
        shared = self.shared_env()
        if shared:
            options["runtime_env"] = {"env_vars": shared}
        return options

    def shared_env(self) -> dict[str, str]:
        """On a one-node Ray instance of this machine, workers use the driver's caches and data
        (``HARDNEG_CACHE``, ``HARDNEG_DATA``) even when Ray started before they were set; a multi-node
        cluster's workers keep their own nodes' settings (docs/cluster.md)."""
        nodes = self._nodes()
        if len(nodes) != 1 or nodes[0].get("NodeManagerAddress") != self.ray.util.get_node_ip_address():
            return {}
        return {name: os.environ[name] for name in SHARED_ENV if name in os.environ}

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

    def shipped(self, stage: StageNode) -> Any:
        """The kind object of a stage whose kind is not hardneg's own (None: workers have those)."""
        import sys

        from hardneg.stages import KINDS

        kind = KINDS[stage.kind]
        module = type(kind).__module__
        if module.startswith("hardneg."):
            return None
        if module in sys.modules and module != "__main__":  # a test's or a script's module: by value
            from ray import cloudpickle

            cloudpickle.register_pickle_by_value(sys.modules[module])
        return kind

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
                    if self.out_of_time(stage):
                        continue
                    options = self.options(stage)
                    # No progress bars: many workers would interleave them; the driver prints lines.
                    ref = task.options(**options).remote(
                        stage.model_dump_json(),
                        self.worker_dir,
                        False,
                        options["num_gpus"],
                        self.shipped(stage),
                    )
                    running[ref] = stage
                    self.say(stage, f"queued ({stage.estimate.work}; {stage.resources.describe()})")
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            self._announce(running.values(), announced)
            for ref in ready:
                stage = running.pop(ref)
                try:
                    record = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                    self.failed(
                        stage, f"its worker died {self.settings.max_retries + 1} times ({type(exc).__name__})"
                    )
                    continue
                except ray.exceptions.RayError as exc:  # the stage's own error, or Ray's (out of memory...)
                    cause = getattr(exc, "cause", None) or exc
                    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
                    self.failed(
                        stage,
                        first if isinstance(cause, HardnegError) else f"{type(cause).__name__}: {first}",
                    )
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
