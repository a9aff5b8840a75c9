"""The report's "Pools": each row whose negatives were mined from a pool of pairs' positives (with
any filter or loss on top), with how many passages the pool held and which pairs they came from,
beside the row's in-domain value and what the audit saw. A user choosing how large a pool to mine
from reads what a larger one bought here, rather than in the mining manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardneg.core.manifest import manifest_counts
from hardneg.experiment.planfile import PlanFile, StageNode
from hardneg.reporting.cells import cell_value, number, row_audit, signed
from hardneg.reporting.sections import loss_text


def pool_mine(stages: dict[str, StageNode], output: str | None) -> StageNode | None:
    """The pool mining stage that a row's negatives come from alone: through combine stages of one
    input (a filter, a re-scoring, another loss); None for a mix, a generator or the corpus."""
    seen: set[str] = set()
    while output in stages and output not in seen:
        seen.add(output)
        stage = stages[output]
        if stage.kind == "mine":
            return stage if stage.config.get("corpus") == "pool" else None
        inputs = stage.inputs.get("triplets", []) if stage.kind == "combine" else []
        if len(inputs) != 1:
            return None
        output = inputs[0]
    return None


def _counts(run_dir: Path, output: str) -> dict[str, Any]:
    """A finished stage's manifest counts ({} while it has not run)."""
    return manifest_counts(run_dir / output) or {}


def pools(results: dict[str, Any], plan: PlanFile, run_dir: Path) -> list[dict[str, Any]]:
    """Per training set, each pool row's pool (documents, the pairs it was drawn from) with the
    row's in-domain value and its audit's likely-false-negative and easy shares."""
    metric = results["metrics"][0]
    stages = {s.output: s for s in plan.stages}
    rows = {r["source"]: r for r in results["rows"]}
    training = results.get("training", {})
    found = []
    for cell in plan.cells:
        mine = pool_mine(stages, cell.negatives)
        if cell.train != cell.test or cell.source not in rows or mine is None:
            continue
        counts = _counts(run_dir, mine.output)
        more = [stages.get(p) for p in mine.inputs.get("pool", [])]  # None: pairs outside this plan
        audit = row_audit(results, cell.train, cell.source)
        found.append(
            {
                "train": cell.train,
                "source": cell.source,
                "label": cell.label,
                "method": mine.config.get("method"),
                "mined_pairs": counts.get("pairs"),
                "pool_documents": counts.get("pool_documents"),
                "more_pairs": [
                    {
                        "label": stage.label,
                        "pairs": _counts(run_dir, stage.output).get("pairs"),
                        "one_per_query": stage.config.get("one_per_query", False),
                        "max_pairs": stage.config.get("max_pairs"),
                    }
                    if stage is not None
                    else {"label": None, "pairs": None, "one_per_query": None, "max_pairs": None}
                    for stage in more
                ],
                "loss": training.get(f"{cell.train}/{cell.source}", {}).get("loss"),
                "value": cell_value(rows[cell.source], cell.test, metric),
                "false_negative_share": None if audit is None else audit.get("false_negative_share"),
                "easy_share": None if audit is None else audit.get("easy_share"),
            }
        )
    return found


def _drawn_from(entry: dict[str, Any]) -> str:
    """'its 500 pairs', or with those drawn by ``pool_pairs`` (which hold the mined ones too):
    'its 500 pairs + the train split's 1,000 (one per query, at most 1,000)'."""
    text = f"its {entry['mined_pairs']:,} pairs" if entry["mined_pairs"] is not None else "its pairs"
    for more in entry["more_pairs"]:
        if more["label"] is None:
            text += " + pairs from outside this plan"
            continue
        count = "(not run)" if more["pairs"] is None else f"{more['pairs']:,}"
        how = "one per query" if more["one_per_query"] else "every judged pair"
        cap = f", at most {more['max_pairs']:,}" if more["max_pairs"] is not None else ""
        text += f" + the train split's {count} ({how}{cap})"
    return text


def pools_section(found: list[dict[str, Any]], base: dict[str, float | None]) -> list[str]:
    """``pools`` as one Markdown table; ``base``: the base model's value per test set."""
    if not found:
        return []

    lines = [
        "Rows mined from a pool of pairs' positives (with what was done to their negatives after), "
        "in-domain: how many passages the pool held and which pairs they came from (the pairs mined "
        "for, and more drawn from the train split by `pool_pairs`). Likely false negatives and too "
        "easy: the audit's shares, as in its table.",
        "",
        "| trained on | negatives | method | pool drawn from | pool documents | loss | value | vs base "
        "| likely false negatives | easy |",
        "|---" * 10 + "|",
    ]
    order = sorted(found, key=lambda e: (e["train"], e["method"] or "", e["pool_documents"] or 0))
    for e in order:
        loss = loss_text(e["loss"]) if e["loss"] else "-"
        lines.append(
            f"| {e['train']} | {e['label']} | {e['method']} | {_drawn_from(e)} "
            f"| {number(e['pool_documents'], ',')} | {loss} | {number(e['value'], '.4f')} "
            f"| {signed(e['value'], base.get(e['train']))} | {number(e['false_negative_share'], '.0%')} "
            f"| {number(e['easy_share'], '.0%')} |"
        )
    return lines
