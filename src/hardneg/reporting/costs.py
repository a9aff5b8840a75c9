"""What a run cost, per kind of stage: the wall time the runner recorded against the reference estimate
(the stage kinds' 2-core rates, before any correction by what ran on this machine).

The progress record of a stage keeps the attempt that finished it; each earlier attempt that never
finished (killed, failed, its worker lost) left its time in ``KEY.lost.jsonl``, counted apart as
lost work (the part of it that a later attempt reused, such as stored LLM answers, is in it too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.experiment.executors import HEARTBEAT_S, lost_path, progress_path
from hardneg.experiment.planfile import PlanFile
from hardneg.stages.registry import kind_label


def costs(run_dir: Path, plan: PlanFile) -> dict[str, dict[str, Any]]:
    """Per stage kind, in plan order: stages done, their recorded seconds, and the estimate for them."""
    found: dict[str, dict[str, Any]] = {}
    for stage in plan.stages:
        seconds, lost = spent(run_dir, stage)
        if seconds is None and not lost:
            continue
        entry = found.setdefault(stage.kind, {field: 0 if field in COUNTS else 0.0 for field in FIELDS})
        entry["lost_seconds"] += sum(lost)
        entry["interrupted"] += len(lost)
        if seconds is not None:
            entry["stages"] += 1
            entry["seconds"] += seconds
            entry["estimated_seconds"] += stage.estimate.seconds or 0.0
    return found


def spent(run_dir: Path, stage) -> tuple[float | None, list[float]]:
    """One stage's wall seconds: its finishing attempt's (None if it has not finished) and each
    interrupted attempt's, its last one included if that failed or was killed."""
    try:
        record = json.loads(progress_path(run_dir, stage).read_text())
    except (OSError, ValueError):
        record = {}
    record = record if isinstance(record, dict) else {}
    lost = _lost(lost_path(run_dir, stage))
    try:
        if record.get("started") and record.get("state") != "done":  # its last attempt: failed, or killed
            ended = record.get("finished") or record.get("alive") or record["started"]
            lost.append(max(0.0, ended - record["started"]))
        if record.get("state") != "done":
            return None, lost
        return max(0.0, record["finished"] - record["started"]), lost
    except (KeyError, TypeError):
        return None, lost  # a record edited by hand, or cut: its time is unknown


FIELDS = ("stages", "seconds", "estimated_seconds", "interrupted", "lost_seconds")
COUNTS = ("stages", "interrupted")


def _lost(path: Path) -> list[float]:
    """Seconds of each interrupted attempt of one stage."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            found.append(float(json.loads(line)["seconds"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill mid-append
    return found


def cost_section(run_dir: Path, plan: PlanFile) -> tuple[list[str], dict]:
    """A Markdown table of ``costs`` with a total line."""
    found = costs(run_dir, plan)
    return cost_table(found), found


def cost_table(found: dict[str, dict[str, Any]]) -> list[str]:
    """``costs`` (as results.json keeps them) as a note and a table with a total line."""
    if not found:
        return []
    lines = [
        "| stage | done | wall time | reference estimate | interrupted attempts | their time (lost) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, entry in [*found.items(), ("total", _total(found))]:
        name = kind if kind == "total" else f"{kind} ({kind_label(kind)})"
        lines.append(
            f"| {name} | {entry['stages']} | {_minutes(entry['seconds'])} | "
            f"{_minutes(entry['estimated_seconds'])} | {entry['interrupted']} | "
            f"{_minutes(entry['lost_seconds'])} |"
        )
    note = (
        "Wall time of the attempt that finished each stage (from `RUN/progress/`), and apart from it the "
        "time of attempts that never finished (killed, failed, a worker lost; to within "
        f"{HEARTBEAT_S:.0f} s, from the record's heartbeat). The reference estimate is the stage kinds' "
        "2-core rates; the dry run scales them by what each kind took on this machine once it has "
        "measured enough ($HARDNEG_CACHE/rates.json)."
    )
    return ["", note, "", *lines]


def _total(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {field: sum(entry[field] for entry in found.values()) for field in FIELDS}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"
