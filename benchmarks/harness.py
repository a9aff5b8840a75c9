"""Shared by the benchmark scripts: run each contender in its own process (so its peak memory is
its own), and write a table into docs/benchmarks.md between that benchmark's markers."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
SHARED_BEIR = ROOT.parent / "shared" / "data" / "beir"


def run_child(script: str, name: str, dataset: Path, cache: Path, *extra: str) -> dict:
    """Run ``script --child name`` in a fresh interpreter; its last stdout line is its JSON result."""
    env = {**os.environ, "HARDNEG_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, script, "--child", name, "--dataset", str(dataset), *extra]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def child_main(children: dict[str, Callable], name: str, dataset_path: Path) -> None:
    from hardneg.data.beir import load_beir

    result = children[name](load_beir(dataset_path))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def machine_line(script: str) -> str:
    return (
        f"Measured by `.venv/bin/python benchmarks/{script}` on {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores ({platform.machine()})"
    )


def update_section(name: str, body: str, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    from hardneg.reporting.docs import replace_block

    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_block(text, "bench", name, body, append=True))
