"""The report's "Prompts side by side": each generator's prompts on one training set, in-domain,
with the rows that filter their negatives and what the audit saw in them (length, false negatives)."""

from __future__ import annotations

from typing import Any

from hardneg.experiment.planfile import PlanFile
from hardneg.reporting.cells import cell_value, keyed, number, row_audit, signed
from hardneg.settings.base import dotted


def _template(stage_config: dict[str, Any]) -> str:
    """The prompt as a reader knows it: the template, its mode when another, swaps' focus."""
    mode = stage_config.get("mode")
    name = stage_config.get("template") or "default"
    if mode not in (None, "passages", name):
        name += f" ({mode})"
    if stage_config.get("swap_from") not in (None, "any"):
        name += f", {stage_config['swap_from']} phrases"
    return name


def prompts(results: dict[str, Any], plan: PlanFile) -> list[dict[str, Any]]:
    """Rows whose negatives came straight from a generator, grouped by training set and model
    (kept where a model has two prompts or more), with the in-domain value, the row that filters
    them, and the audit's length and false-negative figures."""
    metric = results["metrics"][0]
    stages = {s.output: s for s in plan.stages}
    rows = {r["source"]: r for r in results["rows"]}
    delivered = results.get("delivery", {})
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cells = [c for c in plan.cells if c.train == c.test and c.negatives in stages and c.source in rows]
    for cell in cells:
        stage = stages[cell.negatives]
        if stage.kind != "generate":
            continue
        filtered = [
            c
            for c in cells
            if stages[c.negatives].kind == "combine"
            and stages[c.negatives].inputs.get("triplets") == [cell.negatives]
            and _filters_active(stages[c.negatives].config.get("filters") or {})
        ]
        audit = row_audit(results, cell.train, cell.source)
        delivery = delivered.get(f"{cell.train}/{stage.label}", {})
        groups.setdefault((cell.train, stage.config.get("model")), []).append(
            {
                "train": cell.train,
                "model": stage.config.get("model"),
                "source": cell.source,
                "label": cell.label,
                "prompt": _template(stage.config),
                "value": cell_value(rows[cell.source], cell.test, metric),
                "filtered": [
                    {
                        "source": c.source,
                        "label": c.label,
                        "value": cell_value(rows[c.source], c.test, metric),
                    }
                    for c in filtered
                ],
                "delivered_share": delivery.get("delivered_share"),
                "config": dotted(keyed(stage), PROMPT_SETTINGS),
                "full": dotted(stage.config, PROMPT_SETTINGS),  # a default's value, for showing it
                "length_ratio": None if audit is None else audit.get("length_ratio"),
                "shown_words": _shown_words(audit, stage.config),
                "false_negative_share": None if audit is None else audit["false_negative_share"],
            }
        )
    found = []
    for group in groups.values():
        if len({entry["prompt"] for entry in group}) < 2:
            continue  # one prompt (say, the same source trained twice): nothing to compare
        varied = {
            k for e in group for k, v in e["config"].items() if any(o["config"].get(k) != v for o in group)
        }
        for entry in group:
            config, full = entry.pop("config"), entry.pop("full")
            entry["settings"] = {k: full.get(k, config.get(k)) for k in sorted(varied)}
            found.append(entry)
    return found


PROMPT_SETTINGS = {"template", "mode", "swap_from", "dataset", "model"}
"""What the prompt column and the group already say."""


def _shown_words(audit: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, float] | None:
    """The median negative against the words of the positive the generator was shown (its first
    ``positive_max_words``): a prompt that asks for the positive's length asks for that many, so the
    audit's ratio to the whole positive stays well under 1. Cut at a constant, the median positive
    is the cut median (but for an even count straddling the cap). Swaps apply to the whole
    positive, so they have no such ratio."""
    cap = config.get("positive_max_words")
    if audit is None or cap is None or config.get("mode") == "swap":
        return None
    if audit.get("median_positive_words", 0) <= cap:
        return None  # the positive was shown whole: the audit's ratio says it
    return {"words": float(cap), "ratio": audit["median_negative_words"] / cap}


def _filters_active(filters: dict[str, Any]) -> bool:
    """A threshold is set (a scorer alone filters nothing): ``FilterSettings.active``."""
    from hardneg.settings.mining import FilterSettings

    return FilterSettings(**filters).active


def prompts_section(found: list[dict[str, Any]], base: dict[str, float]) -> list[str]:
    """``prompts`` as one Markdown table; ``base`` is the base model's value per test set."""
    if not found:
        return []

    lines = [
        "Each generator's prompts side by side, in-domain: the same model and pairs; the settings "
        "that differ besides the prompt are listed. Length: the median negative's words over the "
        "median positive's (the audit); where the generator was shown only the positive's first N "
        "words, also over those N, which is all a length-asking prompt asks for. Likely false "
        "negatives: negatives the audit scores at or above their positive.",
        "",
        "| trained on | generator | prompt | other settings | value | filtered | vs base | delivered "
        "| length | likely false negatives |",
        "|---" * 10 + "|",
    ]
    for e in found:
        length = number(e["length_ratio"], ".2f")
        if e.get("shown_words"):
            length += f" ({e['shown_words']['ratio']:.2f} of the {e['shown_words']['words']:.0f} shown)"
        filtered = ", ".join(number(f["value"]) for f in e["filtered"]) or "-"
        settings = (
            ", ".join(f"{k} {'(default)' if v is None else v}" for k, v in e["settings"].items()) or "-"
        )
        lines.append(
            f"| {e['train']} | {e['model']} | {e['prompt']} | {settings} | {number(e['value'])} | {filtered} "
            f"| {signed(e['value'], base.get(e['train']))} | {number(e['delivered_share'], '.0%')} "
            f"| {length} | {number(e['false_negative_share'], '.0%')} |"
        )
    return lines
