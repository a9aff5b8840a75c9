"""The report's sections under its tables: how hard each source's negatives are (the audit), the
pools tested on, what each training saw, and a human review of the run."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardneg.core.manifest import MODEL_RECORD
from hardneg.experiment.planfile import PlanFile


def audit_section(run_dir: Path, plan: PlanFile, out: Path | None = None) -> tuple[list[str], dict]:
    """The negative audit of every cell, grouped by training dataset, with one margin plot each (in
    ``out``, default the run folder)."""
    from hardneg.reporting.audit import AuditResult, judge_line, labelled_audit_table, plot_margins

    lines: list[str] = []
    summary: dict[str, Any] = {}
    trains = list(dict.fromkeys(c.train for c in plan.cells if c.audit))
    for train in trains:
        cells = {c.source: c for c in plan.cells if c.train == train and c.audit}
        audits = {
            s: AuditResult(**json.loads((run_dir / c.audit).read_text()))
            for s, c in cells.items()
            if (run_dir / c.audit).exists()
        }
        if not audits:
            continue
        first = next(iter(audits.values()))
        lines += [f"### Negatives of {train} (scorer `{first.scorer}`)", ""]
        lines += labelled_audit_table(
            [(cells[s].label, name, a) for s, audit in audits.items() for name, a in audit.sources.items()]
        )
        groups = {}
        for source, audit in audits.items():
            name = (
                cells[source].label
                if cells[source].label not in groups
                else f"{cells[source].label} ({source})"
            )
            groups[name] = [m for a in audit.sources.values() for m in a.margins]
            summary[f"{train}/{source}"] = {
                k: v.model_dump(exclude={"margins"}) for k, v in audit.sources.items()
            }
        plot = plot_margins(
            groups,
            first.settings["easy_margin"],
            (out or run_dir) / f"audit-{train}.png",
            f"{train}: negative margins by source",
        )
        judged = [
            f"- {cells[s].label}: {judge_line(a.judge)}" for s, a in audits.items() if a.judge is not None
        ]
        lines += ["", *judged, *([""] if judged else []), f"![margins]({plot.name})", ""]
    return lines, summary


def _loss(value: float | None) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def pool_sizes(run_dir: Path, plan: PlanFile) -> list[str]:
    """How big each reduced test set really was."""
    sizes = []
    for path in dict.fromkeys(c.pool for c in plan.cells if c.pool):
        if (run_dir / path).exists():
            pool = json.loads((run_dir / path).read_text())
            test = next(c.test for c in plan.cells if c.pool == path)
            documents = f", {len(pool['documents'])} documents" if pool["documents"] is not None else ""
            sizes.append(f"{test}: {len(pool['queries'])} test queries{documents}")
    return sizes


def test_set_notes(run_dir: Path, plan: PlanFile) -> list[str]:
    """How a test set's numbers were counted when it has BEIR's quirks (read from one evaluation)."""
    notes = []
    for test in dict.fromkeys(cell.test for cell in plan.cells):
        path = next((run_dir / c.evaluation for c in plan.cells if c.test == test), None)
        try:
            settings = json.loads(path.read_text()).get("settings", {}) if path else {}
        except (OSError, ValueError):
            continue
        if settings.get("ignore_identical_ids"):
            notes.append(
                f"{test}: a retrieved document whose id is the query's is dropped (ignore_identical_ids), "
                "as BEIR and MTEB do"
            )
        if settings.get("unretrievable_judgments"):
            notes.append(
                f"{test}: {settings['unretrievable_judgments']} judged documents are not in the corpus; "
                "counted relevant and unretrievable, as BEIR does"
            )
    return notes


def loss_text(loss: dict[str, Any]) -> str:
    """'cached-gist (guide: minilm-l6)', 'margin-mse (scores: dense:minilm-l6)', 'mnrl'."""
    details = {"guide": "guide", "scorer": "scores"}
    named = [f"{label}: {loss[key]}" for key, label in details.items() if loss.get(key)]
    named += [f"{k} {v}" for k, v in loss.items() if k not in details and k != "name"]
    return loss["name"] + (f" ({', '.join(named)})" if named else "")


def training_section(run_dir: Path, plan: PlanFile) -> tuple[list[str], dict]:
    """What each model actually trained on: sources differ in how many pairs they could serve."""
    lines, summary = [], {}
    seen = set()
    for cell in plan.cells:
        model = cell.model
        if not model or model in seen or not (run_dir / model / MODEL_RECORD).exists():
            continue
        seen.add(model)
        counts = json.loads((run_dir / model / MODEL_RECORD).read_text())["counts"]
        loss = counts.get("loss", {"name": "mnrl"})
        summary[f"{cell.train}/{cell.source}"] = {**counts, "loss": loss}
        lines.append(
            f"| {cell.train} | {cell.label} | {loss_text(loss)} | {counts['triplets']} | "
            f"{counts.get('skipped_empty', 0)} | "
            f"{counts.get('padded_short', 0)} | {counts['steps']} | "
            f"{_loss(counts['start_validation_loss'])} -> "
            f"{_loss(counts['best_validation_loss'])} |"
        )
    if lines:
        header = [
            "| trained on | negatives | loss | triplets used | left out (no negative) | padded (too few) "
            "| steps | validation loss (before -> best) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines = header + lines
    return lines, summary


def review_section(run_dir: Path) -> tuple[list[str], dict | None]:
    """`hardneg review import` leaves review.md (and .json) in the run it reviewed; its headings go one
    level down to sit under the report's title."""
    if not (run_dir / "review.md").is_file():
        return [], None
    text = (run_dir / "review.md").read_text(encoding="utf-8")
    lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()]
    data = run_dir / "review.json"
    return lines, json.loads(data.read_text(encoding="utf-8")) if data.is_file() else None


def failed_upstream(run_dir: Path, plan: PlanFile) -> Callable[[str], str | None]:
    """For an evaluation's output: the first stage it waits for (itself included) whose last attempt
    failed, as 'train x: its error'; None while nothing before it has failed. Said apart from 'not run
    yet': a rerun repeats such a failure unless its cause (input, settings, a server that was down)
    has changed. Each stage's progress record is read once, however many evaluations wait on it."""
    from hardneg.experiment.executors import progress_path

    by_key = {stage.key: stage for stage in plan.stages}
    by_output = {stage.output: stage.key for stage in plan.stages}

    @functools.cache
    def failure(key: str) -> str | None:
        stage = by_key[key]
        try:
            record = json.loads(progress_path(run_dir, stage).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        if record.get("state") == "failed" and not (run_dir / stage.output).exists():
            return f"{stage.title}: {record.get('error', 'failed')}"
        return next((why for dep in stage.deps if dep in by_key and (why := failure(dep))), None)

    return lambda evaluation: failure(by_output[evaluation]) if evaluation in by_output else None
