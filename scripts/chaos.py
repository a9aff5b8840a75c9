"""Kill `hardneg run` with SIGKILL at seeded random moments, rerun it until it finishes, and compare
what it made with one uninterrupted run (SQLite's crash tests, Jepsen, Ray's chaos tests, in small).

Each stage is killed as it starts (then, by a seeded coin, up to twice more at a seeded random point),
killing the whole process group of the run, or with Ray the worker running the stage.
The grid: BM25 mining, an LLM source on a local server that answers deterministically, a
combination, trainings, evaluations and audits.

    python scripts/chaos.py --kills 30 --seed 1            # ~MiniLM on the mini grid; minutes
    python scripts/chaos.py --kills 10 --executor ray      # a Ray worker killed instead of the driver

tests/test_chaos.py runs the same with a tiny random model (slow marker)."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the deterministic LLM server and the mini BEIR folder

KINDS = ("pairs", "mine", "generate", "combine", "train", "evaluate", "audit")


@dataclass
class ChaosReport:
    kills: list[dict] = field(default_factory=list)
    """Each kill: the stage running when it landed (kind, title), the delay, the attempt."""
    runs: int = 0
    """`hardneg run` processes started, the last one finishing."""
    redone: int = 0
    """Interrupted attempts recorded (``progress/*.lost.jsonl``): work a kill cost."""

    @property
    def kinds(self) -> set[str]:
        return {kill["kind"] for kill in self.kills}


def grid(folder: Path, model: str, server_url: str, pairs: int = 8) -> Path:
    """A small grid over the mini BEIR folder: every kind of stage, each a few seconds at most."""
    from helpers import write_mining_beir

    data = folder / "mini"
    if not data.exists():
        write_mining_beir(data)
    body = f"""
name = "chaos"
base_model = "{model}"
data_root = "{folder}"
[[datasets]]
train = "mini"
[pairs]
max_pairs = {pairs}
[train]
num_negatives = 2
batch_size = 2
validation_fraction = 0.25
eval_steps = 1
epochs = 3
max_seq_length = 32
[evaluation]
top_k = 10
bootstrap_resamples = 100
[audit]
scorer = "dense:{model}"
[sources.bm25]
mine = {{ method = "bm25", num_negatives = 2 }}
[sources.llm]
generate = {{ model = "fake-model", base_url = "{server_url}", num_negatives = 2, concurrency = 1, \
max_attempts = 1 }}
[sources."llm+bm25"]
combine = {{ inputs = ["llm", "bm25"], strategy = "interleave", max_negatives = 2 }}
"""
    path = folder / "chaos.toml"
    path.write_text(body)
    return path


def command(config: Path, run_dir: Path, executor: str) -> list[str]:
    hardneg = str(Path(sys.executable).with_name("hardneg"))
    return [hardneg, "run", str(config), "-o", str(run_dir), "-q", "--executor", executor]


def running(run_dir: Path, since: float) -> list[dict]:
    """The records of the stages running now, oldest first (those started since ``since``: a killed
    attempt's record still says 'running' until its stage starts again). Several run side by side,
    and a short stage must not hide behind a newer one."""
    found = []
    for path in (run_dir / "progress").glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("state") == "running" and record.get("started", 0) >= since:
            found.append(record)
    return sorted(found, key=lambda r: r["started"])


def run_once(config: Path, run_dir: Path, env: dict, executor: str = "local") -> subprocess.CompletedProcess:
    return subprocess.run(command(config, run_dir, executor), env=env, capture_output=True, text=True)


def chaos(
    config: Path,
    run_dir: Path,
    env: dict,
    kills: int,
    seed: int,
    executor: str = "local",
    max_delay: float = 0.8,
) -> ChaosReport:
    """Rerun until a run finishes, killing mid-stage until ``kills`` kills have landed: the driver's
    whole process group (local), or the Ray worker running the stage (ray: the run goes on)."""
    rng = random.Random(seed)
    order = list(KINDS)
    report = ChaosReport()
    while True:
        report.runs += 1
        since = time.time()
        process = subprocess.Popen(
            command(config, run_dir, executor),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        while len(report.kills) < kills and _kill_one(process, run_dir, order, rng, max_delay, since, report):
            if executor != "ray":
                break
            since = time.time()  # Ray retried the killed task: the next kill waits for a newer stage
        _, err = process.communicate()
        if process.returncode == 0:
            break
        if process.returncode not in (-signal.SIGKILL, 1, 2) or report.runs > kills + 20:
            raise RuntimeError(f"hardneg run ended with {process.returncode}: {err[-2000:]}")
    report.redone = sum(
        len(path.read_text().splitlines()) for path in (run_dir / "progress").glob("*.lost.jsonl")
    )
    return report


def _kill_one(process, run_dir: Path, order, rng: random.Random, max_delay, since, report) -> bool:
    """Watch the stages as they start; kill one (always the first time a stage is met, then a seeded
    coin: 0.7 the second, 0.5 the third, never a fourth) after a random while; False when the run
    ended first. Every stage is killed at least once, whatever the machine's speed, so the kills
    spread over every kind of stage."""
    met: set[str] = set()
    while process.poll() is None:
        record = next((r for r in running(run_dir, since) if (r["stage"], r["started"]) not in met), None)
        if record is None:
            time.sleep(0.02)
            continue
        met.add((record["stage"], record["started"]))
        before = sum(kill["stage"] == record["stage"] for kill in report.kills)
        if rng.random() >= (1.0, 0.7, 0.5, 0.0)[min(before, 3)]:
            continue
        # a stage's first kill lands at once (some stages take a fraction of a second), later ones at
        # a random point of it
        time.sleep(rng.uniform(0.0, 0.03) if before == 0 else rng.uniform(0.0, max_delay))
        now = running(run_dir, since)  # the stage met, if it still runs; else whichever does
        landed = next((r for r in now if r["stage"] == record["stage"]), now[-1] if now else None)
        if process.poll() is not None:
            return False
        if landed is None:  # between two stages: watch for the next one
            continue
        try:
            if "ray" in process.args:
                os.kill(landed["pid"], signal.SIGKILL)  # a worker: Ray retries its task
            else:
                os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        report.kills.append(
            {"kind": landed["stage"].split()[0], "stage": landed["stage"], "attempt": landed["attempt"]}
        )
        return True
    return False


def outputs(run_dir: Path, folder: str) -> dict[str, bytes]:
    """Every output of one kind of stage (not manifests or answer stores), by name."""
    return {
        path.name: path.read_bytes()
        for path in sorted((run_dir / "stages" / folder).glob("*.jsonl"))
        if not path.name.endswith(".responses.jsonl")
    }


def table(run_dir: Path) -> dict[tuple[str, str], float]:
    results = json.loads((run_dir / "results.json").read_text())
    return {
        (row["source"], column): cell["metrics"]["ndcg@10"]["value"]
        for row in results["rows"]
        for column, cell in row["cells"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "chaos.json")
    args = parser.parse_args()
    from fake_llm import FakeLLM

    with tempfile.TemporaryDirectory(prefix="hardneg-chaos-") as tmp, FakeLLM(delay=0.05) as server:
        folder = Path(tmp)
        env = {**os.environ, "HARDNEG_CACHE": str(folder / "cache"), "HF_HUB_OFFLINE": "1"}
        config = grid(folder, args.model, server.url)
        started = time.perf_counter()
        clean = run_once(config, folder / "clean", env)
        if clean.returncode:
            raise SystemExit(clean.stderr[-2000:])
        clean_s = time.perf_counter() - started
        started = time.perf_counter()
        report = chaos(config, folder / "chaos", env, args.kills, args.seed, args.executor)
        chaos_s = time.perf_counter() - started
        differing = [
            f"{kind}/{name}"
            for kind in ("pairs", "negatives")
            for name, data in outputs(folder / "chaos", kind).items()
            if outputs(folder / "clean", kind).get(name) != data
        ]
        a, b = table(folder / "clean"), table(folder / "chaos")
        result = {
            "command": " ".join(sys.argv),
            "kills": len(report.kills),
            "kinds_killed": sorted(report.kinds),
            "runs": report.runs,
            "attempts_redone": report.redone,
            "files_differing": differing,
            "table_cells": len(a),
            "table_max_abs_difference": max(abs(a[k] - b.get(k, float("nan"))) for k in a) if a else None,
            "clean_run_s": round(clean_s, 1),
            "chaos_runs_s": round(chaos_s, 1),
            "kill_log": report.kills,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "kill_log"}, indent=2))


if __name__ == "__main__":
    main()
