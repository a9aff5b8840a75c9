"""The quickstart grid run by the local executor and by `--executor ray`, in one run, both cold; and
a projection of paper.toml's cost on 1, 8 and 32 GPUs from its dry-run estimates.

    .venv/bin/python benchmarks/executors.py run          # ~25 min on 2 cores: both grids, cold
    .venv/bin/python benchmarks/executors.py projection   # seconds: paper.toml, no compute

``run``: each contender gets a fresh run folder and a fresh $HARDNEG_CACHE (no BM25 index or
embedding reused), and runs `hardneg quickstart -q` in its own process; the wall time covers the
whole command (Ray's start-up included). Ratio = ray seconds / local seconds (the target is <= 1.10).

``projection``: list-schedules paper.toml's stages over W identical workers (a stage starts when
its inputs are done and a worker is free; longest remaining path first) using the dry run's per-stage
estimates, which are 2-CPU-core seconds. The shape (speed-up from 1 to W workers, the critical path)
is what the graph allows; absolute hours assume a GPU worker does a stage GPU_FACTOR times faster than
2 CPU cores, an assumption, not a measurement. LLM generation is left out: it runs on servers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, machine_line, update_section  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "executors.json"
WORK = Path(os.environ.get("HARDNEG_BENCH_WORK", "~/.cache/hardneg/bench-executors")).expanduser()
GPU_FACTOR = 50.0
"""Assumed: one data-centre GPU runs MiniLM/DistilBERT encoding and training ~50x faster than 2 CPU cores."""


def run_quickstart(executor: str) -> dict:
    folder = WORK / executor
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "HARDNEG_CACHE": str(folder / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    command = [
        str(Path(sys.executable).with_name("hardneg")),
        "quickstart",
        "-q",
        "-o",
        str(folder / "run"),
        "--executor",
        executor,
    ]
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    results = json.loads((folder / "run" / "results.json").read_text())
    table = {row["source"]: row["cells"]["scifact"]["metrics"]["ndcg@10"]["value"] for row in results["rows"]}
    return {"executor": executor, "seconds": round(seconds, 1), "ndcg@10": table}


def benchmark_run() -> None:
    results = [run_quickstart("local"), run_quickstart("ray")]
    local, ray = results
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps({"run": results, "projection": _raw().get("projection")}, indent=2) + "\n")
    ratio = ray["seconds"] / local["seconds"]
    rows = "\n".join(
        f"| {source} | {local['ndcg@10'][source]:.4f} | {ray['ndcg@10'].get(source, float('nan')):.4f} |"
        for source in local["ndcg@10"]
    )
    update_section(
        "executors",
        f"""{machine_line("executors.py run")}; the quickstart grid (20 stages), each contender cold """
        f"""(fresh run folder and cache) in its own process, one after the other.

| executor | wall time (s) | ratio to local |
|---|---|---|
| local | {local["seconds"]:.0f} | 1.00 |
| ray (local instance, 2 CPUs) | {ray["seconds"]:.0f} | {ratio:.2f} |

| negatives | nDCG@10, local | nDCG@10, ray |
|---|---|---|
{rows}""",
    )
    print(f"local {local['seconds']:.0f} s, ray {ray['seconds']:.0f} s, ratio {ratio:.2f}")


def _raw() -> dict:
    return json.loads(RAW.read_text()) if RAW.exists() else {}


def schedule(stages: list, workers: int) -> float:
    """Makespan of a greedy list schedule: ready stages, longest path to the end first."""
    import heapq

    cost = {s.key: 0.0 if s.kind == "generate" else s.estimate.seconds or 0.0 for s in stages}
    children: dict[str, list[str]] = {s.key: [] for s in stages}
    for stage in stages:
        for dep in stage.deps:
            children[dep].append(stage.key)
    tail: dict[str, float] = {}
    for stage in reversed(stages):
        tail[stage.key] = cost[stage.key] + max((tail[c] for c in children[stage.key]), default=0.0)
    waiting = {s.key: len(s.deps) for s in stages}
    ready = [(-tail[k], k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < workers:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[key], key))
        now, key = heapq.heappop(running)
        for child in children[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-tail[child], child))
    return now


def benchmark_projection() -> None:
    from hardneg.cli.run import bundled_config
    from hardneg.experiment import load_experiment, plan_experiment

    plan = plan_experiment(load_experiment(bundled_config("paper")), WORK / "paper-plan")
    stages = (
        plan.stages
    )  # generation counted as 0 here: its servers are a separate fleet (issue 13's cost plan)
    unknown = [s.title for s in stages if s.estimate.seconds is None and s.kind != "generate"]
    total = sum(s.estimate.seconds or 0.0 for s in stages if s.kind != "generate")
    spans = {w: schedule(stages, w) for w in (1, 8, 32)}
    raw = _raw()
    raw["projection"] = {"stages": len(stages), "unknown": unknown, "total_s": total, "makespan_s": spans}
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text(json.dumps(raw, indent=2) + "\n")
    lines = "\n".join(
        f"| {w} | {spans[w] / 3600:,.0f} | {spans[w] / GPU_FACTOR / 3600:,.1f} | {spans[1] / spans[w]:.1f}x |"
        for w in spans
    )
    update_section(
        "projection",
        f"""**A projection, not a measurement.** {machine_line("executors.py projection")}: """
        f"""paper.toml's {len(stages)} stages (its 4 generation stages counted as 0: they run on LLM """
        f"""servers), list-scheduled over W workers from the dry run's per-stage estimates ({len(unknown)} """
        f"""stages of unknown cost counted as 0).

| workers (GPUs) | makespan, 2-CPU-core hours | makespan if a GPU is {GPU_FACTOR:.0f}x 2 CPU cores (h) """
        f"""| speed-up over 1 |
|---|---|---|---|
{lines}""",
    )
    print(json.dumps(raw["projection"], indent=2))


if __name__ == "__main__":
    {"run": benchmark_run, "projection": benchmark_projection}[sys.argv[1] if len(sys.argv) > 1 else "run"]()
