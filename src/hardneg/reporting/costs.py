"""What a run cost, per kind of stage: the wall time the runner recorded against the dry run's estimate.

The progress record of a stage keeps the attempt that finished it; work an earlier, interrupted
attempt left behind (generation answers, embedding shards) is reused and not counted again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.experiment.executors import progress_path
from hardneg.experiment.planfile import PlanFile
from hardneg.stages.registry import kind_label


def costs(run_dir: Path, plan: PlanFile) -> dict[str, dict[str, Any]]:
    """Per stage kind, in plan order: stages done, their recorded seconds, and the estimate for them."""
    found: dict[str, dict[str, Any]] = {}
    for stage in plan.stages:
        path = progress_path(run_dir, stage)
        record = json.loads(path.read_text()) if path.exists() else {}
        if record.get("state") != "done":
            continue
        entry = found.setdefault(stage.kind, {"stages": 0, "seconds": 0.0, "estimated_seconds": 0.0})
        entry["stages"] += 1
        entry["seconds"] += record["finished"] - record["started"]
        entry["estimated_seconds"] += stage.estimate.seconds or 0.0
    return found


def cost_section(run_dir: Path, plan: PlanFile) -> tuple[list[str], dict]:
    """A Markdown table of ``costs`` with a total line."""
    found = costs(run_dir, plan)
    if not found:
        return [], {}
    lines = ["| stage | done | wall time | dry run's estimate |", "|---|---|---|---|"]
    for kind, entry in [*found.items(), ("total", _total(found))]:
        name = kind if kind == "total" else f"{kind} ({kind_label(kind)})"
        lines.append(
            f"| {name} | {entry['stages']} | {_minutes(entry['seconds'])} | "
            f"{_minutes(entry['estimated_seconds'])} |"
        )
    note = (
        "Wall time of the attempt that finished each stage (from `RUN/progress/`); work left by an "
        "interrupted attempt and reused by the next is not counted."
    )
    return ["", note, "", *lines], found


def _total(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        field: sum(entry[field] for entry in found.values())
        for field in ("stages", "seconds", "estimated_seconds")
    }


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"
