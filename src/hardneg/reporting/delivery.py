"""What each generator delivered, and how much of it the audit finds usable.

A small model often writes fewer negatives than asked (its answers fail to parse or are rejected),
and some of what it writes answers the query. The report states both per generator, against the
model's own delivery rather than one target for every model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.core.manifest import manifest_counts
from hardneg.experiment.planfile import PlanFile


def delivery(run_dir: Path, plan: PlanFile) -> dict[str, dict[str, Any]]:
    """Per generation stage: requested, delivered, rejects, and the audit's usable count (negatives
    not scored at or above their positive) where an audit of that source exists."""
    audits = {c.negatives: c.audit for c in plan.cells if c.negatives and c.audit}
    labels = {c.negatives: (c.train, c.label) for c in plan.cells if c.negatives}
    found: dict[str, dict[str, Any]] = {}
    for stage in plan.stages:
        counts = manifest_counts(run_dir / stage.output) if stage.kind == "generate" else None
        if counts is None:
            continue
        train, label = labels.get(stage.output, (None, stage.label))
        entry = {
            "train": train,
            "label": label,
            "model": stage.config.get("model"),
            "requested": counts["requested"],
            "delivered": counts["delivered"],
            "delivered_share": counts["delivered"] / counts["requested"] if counts["requested"] else None,
            "rejects": counts.get("rejects", {}),
            "completion_tokens": counts.get("completion_tokens"),
            "completion_tokens_per_s": counts.get("completion_tokens_per_s"),
            "usable": None,
            "usable_share": None,
        }
        audit_path = audits.get(stage.output)
        if audit_path and (run_dir / audit_path).exists():
            sources = json.loads((run_dir / audit_path).read_text())["sources"]
            usable = sum(round(s["negatives"] * (1 - s["false_negative_share"])) for s in sources.values())
            entry["usable"] = usable
            entry["usable_share"] = usable / counts["requested"] if counts["requested"] else None
        found[f"{train}/{stage.label}"] = entry
    return found


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def delivery_section(run_dir: Path, plan: PlanFile) -> tuple[list[str], dict]:
    """A Markdown table of ``delivery``: requested, delivered, usable, the main reject reasons."""
    found = delivery(run_dir, plan)
    if not found:
        return [], {}
    lines = [
        "| trained on | generator | requested | delivered | usable after the audit | main rejects "
        "| tokens/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in found.values():
        rejects = (
            ", ".join(f"{k} {v}" for k, v in sorted(entry["rejects"].items(), key=lambda kv: -kv[1])[:3])
            or "-"
        )
        usable = "-" if entry["usable"] is None else f"{entry['usable']} ({_share(entry['usable_share'])})"
        speed = "-" if entry["completion_tokens_per_s"] is None else f"{entry['completion_tokens_per_s']:.1f}"
        lines.append(
            f"| {entry['train']} | {entry['label']} | {entry['requested']} | {entry['delivered']} "
            f"({_share(entry['delivered_share'])}) | {usable} | {rejects} | {speed} |"
        )
    note = (
        "Usable: delivered negatives the audit's scorer does not rank at or above their positive "
        "(not likely false negatives), as a share of those requested."
    )
    return ["", note, "", *lines], found
