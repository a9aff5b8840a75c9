"""A study's tables for the docs, rendered from its ``results.json`` alone, so that a document such as
docs/results.md shows the run's figures without anyone copying them: it marks where each table
goes, and ``python scripts/results_doc.py RESULTS.json DOC.md`` fills the marks in.

    <!-- results:table-ndcg@10:start -->
    (filled in)
    <!-- results:table-ndcg@10:end -->

Blocks: ``table-METRIC`` (the main table), ``without-corpus``, ``prompts``, ``effects`` and
``audit-TRAIN`` (the audit of the negatives of one training set)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.io import atomic_open

MARK = re.compile(r"<!-- (\w+):([^ ]+):start -->\n.*?<!-- \1:\2:end -->", re.S)


def replace_block(text: str, tag: str, name: str, body: str, append: bool = False) -> str:
    """``text`` with the block ``<!-- TAG:NAME:start -->`` ... ``end -->`` holding ``body``; a block
    not in the text is appended when ``append``, else the text is returned unchanged."""
    start, end = f"<!-- {tag}:{name}:start -->", f"<!-- {tag}:{name}:end -->"
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return f"{text.rstrip()}\n\n{block}\n" if append else text


def _audit(results: dict[str, Any], train: str) -> str:
    from hardneg.reporting.audit import AUDIT_COLUMNS, AuditResult, SourceAudit, audit_rows

    labels = {row["source"]: row["label"] for row in results["rows"]}
    lines = [
        "| negatives | source | " + " | ".join(AUDIT_COLUMNS) + " |",
        "|---" * (len(AUDIT_COLUMNS) + 2) + "|",
    ]
    for key, parts in results.get("audits", {}).items():
        trained, _, source = key.partition("/")
        if trained != train:
            continue
        sources = {name: SourceAudit(**{**stats, "margins": []}) for name, stats in parts.items()}
        rows = audit_rows(AuditResult(inputs=[], scorer="", settings={}, sources=sources))
        for name, row in zip(sources, rows):
            lines.append(f"| {labels.get(source, source)} | {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def render(results: dict[str, Any], name: str) -> str:
    """One block's Markdown, or a one-line error naming what the results hold."""
    from hardneg.reporting.effects import effects_section
    from hardneg.reporting.questions import base_values, prompts_section, without_corpus_section
    from hardneg.reporting.report import markdown

    kind, _, arg = name.partition("-")
    trains = {v["train"] for v in results.get("column_datasets", {}).values()}
    if kind == "table" and arg in results["metrics"]:
        return markdown(results, arg)
    if name == "without-corpus":
        return "\n".join(without_corpus_section(results.get("without_corpus", {})))
    if name == "prompts":
        return "\n".join(prompts_section(results.get("prompts", []), base_values(results)))
    if name == "effects":
        return "\n".join(effects_section(results.get("effects", []), results["columns"]))
    if kind == "audit" and arg in trains:
        return _audit(results, arg)
    known = [f"table-{m}" for m in results["metrics"]] + ["without-corpus", "prompts", "effects"]
    known += [f"audit-{t}" for t in sorted(trains)]
    raise HardnegError(f"no block {name!r} in these results (blocks: {', '.join(known)})")


def fill(results: dict[str, Any], doc: str | Path) -> list[str]:
    """Fill every ``results:NAME`` block of ``doc`` from ``results``; the names filled, in order."""
    doc = Path(doc)
    text = doc.read_text(encoding="utf-8")
    bodies: dict[str, str] = {}
    for match in MARK.finditer(text):  # every block rendered before one is written
        if match.group(1) != "results":
            continue
        try:
            bodies[match.group(2)] = render(results, match.group(2))
        except HardnegError as exc:
            line = text.count("\n", 0, match.start()) + 1
            raise HardnegError(f"{doc}:{line}: {exc}") from None
    for name, body in bodies.items():
        text = replace_block(text, "results", name, body)
    with atomic_open(doc) as handle:
        handle.write(text)
    return list(bodies)
