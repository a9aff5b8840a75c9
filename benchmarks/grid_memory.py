"""Peak memory of a grid testing on three 300k-document datasets against a grid testing on one.

    .venv/bin/python benchmarks/make_corpora.py 300000
    .venv/bin/python benchmarks/make_corpora.py 300000 --seed 1
    .venv/bin/python benchmarks/make_corpora.py 300000 --seed 2
    .venv/bin/python benchmarks/grid_memory.py [--documents 300000] [--min-free-gb 4]

Target (issue 16): the three-dataset grid peaks at most 1.2x the memory of the one-dataset grid; the
local executor loads a dataset when a stage needs it and lets it go after its last stage.

Both grids are the base model alone with ``base_model = "bm25"`` (no sources: no training, no LLM),
so each test set costs a BM25 evaluation over its whole corpus: (a) one grid testing on
scifact-<N>, (b) one testing on scifact-<N>, scifact-<N>-s1 and scifact-<N>-s2 (same size and kind,
other fillers, so no corpus store or BM25 index is shared through the content-keyed caches). Each is
``hardneg run`` in its own process with a fresh $HARDNEG_CACHE and run folder: both cold, every
corpus store and BM25 index built during the run. Peak RSS is the child's ru_maxrss as wait4 reports
it (the largest process of its tree; the local executor runs every stage in one process), the wall
time the whole command's. A sampler reads the tree's summed RSS every 0.25 s, to name each stage's
peak and to kill the child when the machine's available memory drops under --min-free-gb.
Results: benchmarks/results/grid_memory.json and docs/benchmarks.md (section grid-memory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, update_section  # noqa: E402
from make_corpora import OUT as CORPORA  # noqa: E402
from make_corpora import corpus_name  # noqa: E402

WORK = Path(os.environ.get("HARDNEG_BENCH_WORK", "~/.cache/hardneg/bench-grid-memory")).expanduser()
RESULTS = ROOT / "benchmarks" / "results" / "grid_memory.json"
TARGET = 1.2
NEED_GB = 3.0
"""A cold BM25 evaluation at 300k peaked at 1.7 GB (bm25-scale): a run is skipped up front when the
machine would go under the floor with this much more in use."""


def config_text(name: str, tests: list[str]) -> str:
    quoted = ", ".join(json.dumps(test) for test in tests)
    return f"""name = "{name}"
base_model = "bm25"
data_root = "{CORPORA}"

[[datasets]]
train = "{tests[0]}"
test = [{quoted}]

[pairs]

[evaluation]
bootstrap_resamples = 1000
"""


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024**2
    return float("inf")


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """Summed RSS of a process and its descendants, and how many there are (0, 0 once gone)."""
    total, count, todo = 0.0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        count += 1
        total += (
            next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            / 1024
        )
    return total, count


def run_grid(name: str, tests: list[str], configs: Path, min_free_gb: float) -> dict:
    """``hardneg run`` on a base-only grid in a fresh process, cache and run folder."""
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)  # our own folder: the run starts cold
    folder.mkdir(parents=True)
    config = configs / f"{name}.toml"
    config.write_text(config_text(name, tests))
    if available_gb() - NEED_GB < min_free_gb:
        return {
            "skipped": f"needs ~{NEED_GB:.0f} GB, {available_gb():.1f} GB available, floor {min_free_gb} GB"
        }
    env = {
        **os.environ,
        "HARDNEG_CACHE": str(folder / "cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT / "src"),
    }
    env.pop("HARDNEG_DATA", None)
    command = [
        str(Path(sys.executable).with_name("hardneg")),
        "run",
        str(config),
        "-o",
        str(folder / "run"),
        "-q",
    ]
    samples: list[tuple[float, float]] = []
    state = {"lowest_gb": available_gb(), "processes": 0, "stopped": False}
    done = threading.Event()
    start = time.perf_counter()
    with (folder / "run.log").open("w") as log:
        child = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def sample() -> None:  # never poll() the child here: wait4 below must be the one to reap it
        while not done.wait(0.25):
            rss, count = tree_rss_mb(child.pid)
            samples.append((time.time(), rss))
            state["processes"] = max(state["processes"], count)
            state["lowest_gb"] = min(state["lowest_gb"], available_gb())
            if state["lowest_gb"] < min_free_gb and not state["stopped"]:
                state["stopped"] = True
                os.killpg(child.pid, signal.SIGKILL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = (folder / "run.log").read_text().splitlines()[-5:]
        error = (
            "stopped: available memory under the floor" if state["stopped"] else f"exit {child.returncode}"
        )
        return {"error": error, "log": tail}
    return {
        "tests": tests,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "sampled_tree_peak_mb": round(max((rss for _, rss in samples), default=0.0), 1),
        "max_processes": state["processes"],
        "lowest_available_gb": round(state["lowest_gb"], 1),
        "stages": stage_peaks(folder / "run", samples),
    }


def stage_peaks(run_dir: Path, samples: list[tuple[float, float]]) -> list[dict]:
    """Each stage's time (from RUN/progress) and the highest RSS sampled while it ran."""
    plan = json.loads((run_dir / "plan.json").read_text())
    stages = []
    for stage in plan["stages"]:
        record = json.loads((run_dir / "progress" / f"{stage['key']}.json").read_text())
        during = [rss for at, rss in samples if record["started"] <= at <= record["finished"]]
        stages.append(
            {
                "stage": record["stage"],
                "seconds": round(record["finished"] - record["started"], 1),
                "sampled_start_mb": round(during[0] if during else 0.0, 1),
                "sampled_peak_mb": round(max(during, default=0.0), 1),
            }
        )
    return stages


def report(results: dict, command: str) -> str:
    one, three = results["one"], results["three"]
    lines = [
        f"Measured by `{command}` on {results['date']}, {os.cpu_count()} cores shared with other work; "
        "both grids cold (fresh $HARDNEG_CACHE and run folder: every corpus store and BM25 index built "
        "in the run), one after the other.",
        "",
        "| grid | test sets | wall time | peak RSS | ratio to one |",
        "|---|---|---|---|---|",
    ]
    for label, row in (("one", one), ("three", three)):
        if "peak_rss_mb" not in row:
            lines.append(f"| {label} | - | {row.get('error', row.get('skipped', '-'))} | - | - |")
            continue
        ratio = f"{row['peak_rss_mb'] / one['peak_rss_mb']:.2f}x" if "peak_rss_mb" in one else "-"
        tests, gb = ", ".join(row["tests"]), row["peak_rss_mb"] / 1024
        lines.append(f"| {label} | {tests} | {row['seconds']:.0f} s | {gb:.2f} GB | {ratio} |")
    if "ratio" in results:
        verdict = "met" if results["ratio"] <= TARGET else "not met"
        target = f"three test sets at most {TARGET}x the peak memory of one"
        lines += ["", f"Target ({target}): **{verdict}**, {results['ratio']:.2f}x."]
    if "stages" in three:
        lines += [
            "",
            "RSS sampled (every 0.25 s) while each stage of the three-set grid ran: at its start (what "
            "the stages before it left) and its highest:",
            "",
            "| stage | time | RSS at start | highest RSS |",
            "|---|---|---|---|",
        ]
        for stage in three["stages"]:
            start, peak = stage["sampled_start_mb"] / 1024, stage["sampled_peak_mb"] / 1024
            lines.append(f"| {stage['stage']} | {stage['seconds']:.0f} s | {start:.2f} GB | {peak:.2f} GB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300_000)
    parser.add_argument("--min-free-gb", type=float, default=4.0)
    parser.add_argument("--keep", action="store_true", help=f"keep the run folders and caches under {WORK}")
    args = parser.parse_args()
    tests = [corpus_name(args.documents, seed) for seed in (0, 1, 2)]
    missing = [name for name in tests if not (CORPORA / name / "corpus.jsonl").is_file()]
    if missing:
        sys.exit(f"missing under {CORPORA}: {', '.join(missing)} (make_corpora.py: see this file's top)")
    results: dict = {"date": time.strftime("%Y-%m-%d"), "documents": args.documents, "cold": True}
    with tempfile.TemporaryDirectory(prefix="hardneg-grid-memory-") as configs:
        for name, chosen in (("one", tests[:1]), ("three", tests)):
            results[name] = run_grid(name, chosen, Path(configs), args.min_free_gb)
            print(
                f"{name}: " + json.dumps({k: v for k, v in results[name].items() if k != "stages"}),
                flush=True,
            )
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    if "peak_rss_mb" in results["one"] and "peak_rss_mb" in results["three"]:
        results["ratio"] = round(results["three"]["peak_rss_mb"] / results["one"]["peak_rss_mb"], 3)
        results["target"] = TARGET
        results["met"] = results["ratio"] <= TARGET
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    command = ".venv/bin/python benchmarks/grid_memory.py " + " ".join(sys.argv[1:])
    update_section("grid-memory", report(results, command.strip()))
    print(f"ratio {results.get('ratio')}, target {TARGET}")


if __name__ == "__main__":
    main()
