"""A study's tables for the docs, rendered from its ``results.json`` alone, so that a document such as
docs/results.md shows the run's figures without anyone copying them: it marks where each table
goes, and ``python scripts/results_doc.py RESULTS.json DOC.md`` fills the marks in.

    <!-- results:table-ndcg@10:start -->
    (filled in)
    <!-- results:table-ndcg@10:end -->

Blocks: ``table-METRIC`` (the main table), ``without-corpus``, ``prompts``, ``effects``, ``pools``,
``audit-TRAIN`` (the audit of the negatives of one training set) and ``costs`` (what the run cost)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.io import atomic_open

MARK = re.compile(r"<!-- (\w+):([^ ]+):start -->\n.*?<!-- \1:\2:end -->", re.S)
LINE_MARK = re.compile(r"^[ \t]*<!-- results:([^ ]+):start -->.*$", re.M)
"""A start marker that opens a line: one that MARK does not match is a mistake, not prose."""


def replace_block(text: str, tag: str, name: str, body: str, append: bool = False) -> str:
    """``text`` with the block ``<!-- TAG:NAME:start -->`` ... ``end -->`` holding ``body``; a block
    not in the text is appended when ``append``, else the text is returned unchanged."""
    start, end = f"<!-- {tag}:{name}:start -->", f"<!-- {tag}:{name}:end -->"
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.S)  # as MARK: on its own line
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return f"{text.rstrip()}\n\n{block}\n" if append else text


def _audit(results: dict[str, Any], train: str) -> str:
    from hardneg.reporting.audit import SourceAudit, labelled_audit_table

    labels = {row["source"]: row["label"] for row in results["rows"]}
    rows = []
    for key, parts in results.get("audits", {}).items():
        trained, _, source = key.rpartition("/")
        if trained == train:
            rows += [(labels.get(source, source), n, SourceAudit(**s, margins=[])) for n, s in parts.items()]
    return "\n".join(labelled_audit_table(rows))


def _blocks() -> dict[str, tuple[str, Any]]:
    """The named blocks: the results.json field each is made from (older hardneg versions wrote
    fewer), and how it is drawn. ``table-METRIC`` and ``audit-TRAIN`` take an argument instead."""
    from hardneg.reporting.cells import base_values
    from hardneg.reporting.costs import cost_table
    from hardneg.reporting.effects import effects_section
    from hardneg.reporting.pools import pools_section
    from hardneg.reporting.prompts import prompts_section
    from hardneg.reporting.questions import without_corpus_section

    return {
        "without-corpus": (
            "without_corpus",
            lambda r: without_corpus_section(r["without_corpus"], r["rows"]),
        ),
        "prompts": ("prompts", lambda r: prompts_section(r["prompts"], base_values(r))),
        "effects": ("effects", lambda r: effects_section(r["effects"], r["columns"])),
        "pools": ("pools", lambda r: pools_section(r["pools"], base_values(r))),
        "costs": ("costs", lambda r: cost_table(r["costs"]) or ["(no stage has finished yet)"]),
    }


def render(results: dict[str, Any], name: str) -> str:
    """One block's Markdown, or a one-line error naming what the results hold."""
    blocks = _blocks()
    field = blocks[name][0] if name in blocks else "audits" if name.startswith("audit-") else None
    if field and field not in results:
        raise HardnegError(
            f"results.json has no {field!r} (an older hardneg wrote it): rebuild it with `hardneg report RUN`"
        )
    try:
        return _render(results, name, blocks)
    except KeyError as exc:
        raise HardnegError(
            f"results.json lacks {exc} in {name!r} (an older hardneg wrote it): rebuild it with "
            "`hardneg report RUN`"
        ) from None


def _render(results: dict[str, Any], name: str, blocks: dict[str, tuple[str, Any]]) -> str:
    from hardneg.reporting.table import markdown

    kind, _, arg = name.partition("-")
    trains = {key.rpartition("/")[0] for key in results.get("audits", {})}  # the audited training sets
    if kind == "table" and arg in results["metrics"]:
        return markdown(results, arg)
    if name in blocks:
        return "\n".join(blocks[name][1](results)).strip("\n")
    if kind == "audit" and arg in trains:
        return _audit(results, arg)
    known = [f"table-{m}" for m in results["metrics"]] + list(blocks)
    known += [f"audit-{t}" for t in sorted(trains)]
    raise HardnegError(f"no block {name!r} in these results (blocks: {', '.join(known)})")


def fill(results: dict[str, Any], doc: str | Path) -> list[str]:
    """Fill every ``results:NAME`` block of ``doc`` from ``results``; the names filled, in order."""
    doc = Path(doc)
    text = doc.read_text(encoding="utf-8")
    starts = {match.start() for match in MARK.finditer(text) if match.group(1) == "results"}
    for line in LINE_MARK.finditer(text):
        if line.start() + len(line.group(0)) - len(line.group(0).lstrip()) not in starts:
            number = text.count("\n", 0, line.start()) + 1
            raise HardnegError(
                f"{doc}:{number}: block {line.group(1)!r} is not filled: its start marker must end its "
                "line, and an end marker must follow"
            )
    blocks = []
    for match in MARK.finditer(text):  # every block rendered before one is written
        if match.group(1) != "results":
            continue
        try:
            blocks.append((match, render(results, match.group(2))))
        except HardnegError as exc:
            line = text.count("\n", 0, match.start()) + 1
            raise HardnegError(f"{doc}:{line}: {exc}") from None
    for match, body in reversed(blocks):  # the spans MARK found, from the end, so none moves
        name = match.group(2)
        block = f"<!-- results:{name}:start -->\n{body}\n<!-- results:{name}:end -->"
        text = text[: match.start()] + block + text[match.end() :]
    with atomic_open(doc) as handle:
        handle.write(text)
    return [match.group(2) for match, _ in blocks]


FIGURE = re.compile(r"(?<![\d.])[-+]?0\.\d{4}(?!\d)")
"""A figure as the docs quote a metric, a gap or a p-value: four decimals."""

QUOTED = ("rows", "effects", "without_corpus", "prompts")
"""The parts of results.json whose figures prose quotes: values, intervals, p-values, effects (not
the audit's shares or the costs, whose many small numbers would let a stale gap through)."""


def stale_figures(doc: str | Path, results: list[dict[str, Any]]) -> list[str]:
    """``FILE:LINE: FIGURE`` for every four-decimal figure in ``doc``'s prose (outside its
    ``results:`` blocks and its ``>`` notes) that none of ``results`` holds, nor the gap between two
    rows of one column in the main metric: after a refill, the prose that still quotes an older run.
    A check, not a proof: a stale figure that happens to equal a current one passes."""
    doc = Path(doc)
    known: set[str] = set()
    for one in results:
        _floats([one.get(part) for part in QUOTED], known)
        known.update(f"{gap:.4f}" for gap in _gaps(one))
    text = doc.read_text(encoding="utf-8")
    prose = MARK.sub(lambda m: "\n" * m.group(0).count("\n") if m.group(1) == "results" else m.group(0), text)
    found = []
    for number, line in enumerate(prose.split("\n"), start=1):
        if line.lstrip().startswith(">"):
            continue
        for figure in FIGURE.findall(line):
            if figure.lstrip("+-") not in known:
                found.append(f"{doc}:{number}: {figure}")
    return found


def _floats(value: Any, into: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _floats(item, into)
    elif isinstance(value, list):
        for item in value:
            _floats(item, into)
    elif isinstance(value, float):
        into.add(f"{abs(value):.4f}")  # (prose gives a sign, or says "below")


def _gaps(results: dict[str, Any]) -> list[float]:
    """Every gap between two rows' values of one column in the main metric, unrounded and as the
    difference of the rounded values a reader sees."""
    metric = results.get("main_metric", "ndcg@10")
    by_column: dict[str, list[float]] = {}
    for row in results.get("rows", []):
        for column, cell in row.get("cells", {}).items():
            if metric in cell.get("metrics", {}):
                by_column.setdefault(column, []).append(cell["metrics"][metric]["value"])
    gaps = []
    for values in by_column.values():
        for a in values:
            for b in values:
                if a > b:
                    gaps += [a - b, round(a, 4) - round(b, 4)]
    return gaps
