"""The report's answers to the two questions a user brings to a study of negatives: can I skip the
corpus (the best corpus-free row against the rows that read it, per column), and which prompt (each
generator's prompts side by side, with what the audit saw in their negatives).

Both are read off the study's own cells; nothing here trains or evaluates."""

from __future__ import annotations

from typing import Any

from hardneg.evaluation.stats import ALPHA, holm, paired_test
from hardneg.experiment.planfile import PlanFile
from hardneg.reporting.cells import base_values, cell_value, signed
from hardneg.reporting.prompts import prompts, prompts_section


def _best(rows: list[dict], column: str, metric: str) -> tuple[dict | None, int]:
    """The best row of ``column`` and of how many it was chosen (a best of many is partly luck)."""
    scored = [r for r in rows if cell_value(r, column, metric) is not None]
    return (max(scored, key=lambda r: cell_value(r, column, metric)) if scored else None), len(scored)


def _reference(row: dict, column: str, metric: str, field: str) -> dict | None:
    return row["cells"][column]["metrics"][metric].get(field)


def without_corpus(
    results: dict[str, Any], per_query: dict[tuple[str, str], dict], resamples: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Per column: the best corpus-free row, the best row that reads the corpus, the gap between them
    with a paired test (Holm over the in-domain columns, and apart over the cross-tests, so that
    columns joining do not move the target's p), and the corpus-free row against the base model and
    the baseline (the table's own Holm-corrected tests). ``meets`` is the study's target, judged
    in-domain only (None in a cross-test): at or above the point estimate of every corpus-reading
    row and of the base. ``harm`` and ``untested`` are the winner's other columns: where it is
    significantly below the base, and where it has not been tested yet."""
    metric = results["metrics"][0]
    rows = [r for r in results["rows"] if r["source"] != "base"]
    reading = [r for r in rows if r.get("corpus_free") is False]
    base = next((r for r in results["rows"] if r["source"] == "base"), None)
    found: dict[str, dict[str, Any]] = {}
    raw: dict[str, float] = {}
    for column in results["columns"]:
        train = results.get("column_datasets", {}).get(column, {}).get("train")
        free = [r for r in rows if r.get("corpus_free") and not drew_more_pairs(r, train)]
        (best_free, n_free), (best_reading, n_reading) = (
            _best(free, column, metric),
            _best(reading, column, metric),
        )
        if best_free is None or best_reading is None:
            continue
        value, other = cell_value(best_free, column, metric), cell_value(best_reading, column, metric)
        ours = {q: s[metric] for q, s in per_query[(best_free["source"], column)].items()}
        theirs = {q: s[metric] for q, s in per_query[(best_reading["source"], column)].items()}
        raw[column] = paired_test(ours, theirs, resamples, seed)
        base_value = None if base is None else cell_value(base, column, metric)
        vs_base = _reference(best_free, column, metric, "vs_base")
        entry = {
            "metric": metric,
            "corpus_free": {
                "source": best_free["source"],
                "label": best_free["label"],
                "value": value,
                "of": n_free,
            },
            "reads_corpus": {
                "source": best_reading["source"],
                "label": best_reading["label"],
                "value": other,
                "of": n_reading,
            },
            "gap": value - other,
            "relative_gap": (value - other) / other if other else None,
            "base": base_value,
            "vs_base": vs_base,
            "vs_baseline": _reference(best_free, column, metric, "vs_baseline"),
        }
        if results.get("baseline"):
            entry["baseline"] = results["baseline"]
            baseline_row = next((r for r in rows if r["source"] == results["baseline"]), None)
            entry["baseline_value"] = (
                None if baseline_row is None else cell_value(baseline_row, column, metric)
            )
        train = _train(results, column)
        entry["in_domain"] = train == results["column_datasets"][column]["test"]
        at_or_above = value >= other and (base_value is None or value >= base_value)
        entry["meets"] = at_or_above if entry["in_domain"] else None
        own = _columns_of(results, train)
        entry["harm"] = harm(best_free, base, metric, own)
        entry["untested"] = [c for c in own if cell_value(best_free, c, metric) is None]
        entry["audit"] = {
            side: row_audit(results, train, row["source"])
            for side, row in (("corpus_free", best_free), ("reads_corpus", best_reading))
        }
        found[column] = entry
    for in_domain in (True, False):
        family = {c: p for c, p in raw.items() if found[c]["in_domain"] is in_domain}
        for column, adjusted in holm(family).items():
            found[column]["vs_reads_corpus"] = {"p": raw[column], "p_holm": adjusted}
    return found


AUDIT_VIEW = {
    "false_negative_share": ("likely false negatives", ".0%"),
    "hard_share": ("hard", ".0%"),
    "easy_share": ("easy", ".0%"),
    "mean_margin": ("mean margin", "+.3f"),
    "length_ratio": ("length ratio", ".2f"),
}
"""What the audit says about a row's negatives, for setting two rows side by side."""


def row_audit(results: dict[str, Any], train: str, source: str) -> dict[str, float] | None:
    """A row's audit on its training set (results.json's ``audits``) as one set of figures: the
    sources inside its triplets (a mix has several) weighted by their negatives."""
    parts = [p for p in results.get("audits", {}).get(f"{train}/{source}", {}).values() if p["negatives"]]
    if not parts:
        return None
    total = sum(p["negatives"] for p in parts)
    found: dict[str, float] = {"negatives": total}
    for field in AUDIT_VIEW:
        known = [p for p in parts if p.get(field) is not None]
        weight = sum(p["negatives"] for p in known)
        if weight:
            found[field] = sum(p[field] * p["negatives"] for p in known) / weight
    return found


def _audit_line(column: str, e: dict[str, Any]) -> str | None:
    ours, theirs = e["audit"]["corpus_free"], e["audit"]["reads_corpus"]
    if ours is None or theirs is None:
        return None
    figures = "; ".join(
        f"{name} {ours[field]:{form}} vs {theirs[field]:{form}}"
        for field, (name, form) in AUDIT_VIEW.items()
        if field in ours and field in theirs
    )
    return (
        f"- {column}, the audit of their negatives ({e['corpus_free']['label']} vs "
        f"{e['reads_corpus']['label']}): {figures}"
    )


def _train(results: dict[str, Any], column: str) -> str:
    """The dataset a column's models were trained on (results.json's ``column_datasets``)."""
    return results["column_datasets"][column]["train"]


def _columns_of(results: dict[str, Any], train: str) -> list[str]:
    return [c for c in results["columns"] if _train(results, c) == train]


def harm(row: dict, base: dict | None, metric: str, columns: list[str]) -> list[dict[str, Any]]:
    """Those of ``columns`` (one model's: one training set) where ``row`` is significantly below the
    base model (the table's Holm p): a recipe that wins in-domain must not cost anything elsewhere."""
    found = []
    for column, cell in row["cells"].items():
        if column not in columns:
            continue  # the same source trained on another dataset: another model
        entry = cell["metrics"].get(metric, {})
        base_value = None if base is None else cell_value(base, column, metric)
        test = entry.get("vs_base")
        if (
            test is not None
            and base_value is not None
            and entry["value"] < base_value
            and test["p_holm"] < ALPHA
        ):
            found.append(
                {"column": column, "value": entry["value"], "base": base_value, "p_holm": test["p_holm"]}
            )
    return found


def _named(side: dict[str, Any]) -> str:
    return f"{side['label']}, best of {side['of']}" if "of" in side else side["label"]


def _p(test: dict | None) -> str:
    return "-" if test is None else f"{test['p_holm']:.3g}"


def drew_more_pairs(row: dict[str, Any], train: str | None) -> list[str]:
    """The pairs stages (titles) beyond its training pairs that ``row``'s model trained on ``train``
    drew on (a pool of more pairs); any training set's when ``train`` is None."""
    more = row.get("more_pairs") or {}
    return more.get(train, []) if train is not None else sorted({t for ts in more.values() for t in ts})


def without_corpus_section(found: dict[str, dict[str, Any]], rows: list[dict[str, Any]] = ()) -> list[str]:
    """``without_corpus`` as a Markdown table and one line per column that misses the target; ``rows``
    (results.json's) name the corpus-free rows left out of it for drawing on more pairs."""
    left_out = {
        r["label"]: drew_more_pairs(r, None) for r in rows if r.get("corpus_free") and r.get("more_pairs")
    }
    named = "; ".join(f"{label} ({', '.join(pairs)})" for label, pairs in left_out.items())
    left_line = f"- not in the comparison, corpus-free but drawing on more pairs than they train on: {named}"
    if not found:
        return [left_line] if left_out else []
    first = next(iter(found.values()))
    baseline = first.get("baseline")
    lines = [
        f"Per column, the best corpus-free row ({first['metric']}) against the best row that reads the "
        "train corpus, the base model"
        + (f" and the {baseline} negatives' model" if baseline else "")
        + ". p: paired randomization test over queries, Holm-corrected (against the corpus-reading "
        "row: over the in-domain columns, and apart over the cross-tests; against the base and "
        "baseline: over the rows, as in the table). Target, in each in-domain column: at or above the "
        "point estimate of every corpus-reading row and of the base; a cross-test counts only if that "
        "in-domain winner is significantly below the base there. Each side's best is the best of N "
        "rows: the more rows, the more its lead owes to chance, which no test here corrects for.",
        "",
        "| column | best corpus-free | value | best reading the corpus | value | gap (p) | vs base (p) "
        + (f"| vs {baseline} (p) " if baseline else "")
        + "| target |",
        "|---" * (8 + bool(baseline)) + "|",
    ]
    for column, e in found.items():
        free, reading = e["corpus_free"], e["reads_corpus"]
        cells = [
            column,
            _named(free),
            f"{free['value']:.4f}",
            _named(reading),
            f"{reading['value']:.4f}",
            f"{signed(free['value'], reading['value'])} ({_p(e.get('vs_reads_corpus'))})",
            f"{signed(free['value'], e['base'])} ({_p(e['vs_base'])})",
        ]
        if baseline:
            cells.append(f"{signed(free['value'], e.get('baseline_value'))} ({_p(e['vs_baseline'])})")
        cells.append(("met" if e["meets"] else "missed") if e["in_domain"] else "- (cross-test)")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if left_out:
        lines.append(left_line)
    for column, e in found.items():
        name = e["corpus_free"]["label"]
        if e["in_domain"]:
            hurt = ", ".join(
                f"{h['column']} ({h['value']:.4f} vs {h['base']:.4f}, p {h['p_holm']:.3g})" for h in e["harm"]
            )
            untested = e.get("untested", [])
            lines.append(
                f"- {column}'s best corpus-free row, {name}, is "
                + (
                    f"significantly below the base on {hurt}"
                    if hurt
                    else "not significantly below the base in any column it was tested in"
                )
                + (f" (not tested yet: {', '.join(untested)})" if untested else "")
            )
        if e["meets"] or not e["in_domain"]:  # the target is in-domain; a cross-test counts as harm
            continue
        short = []
        if e["gap"] < 0:
            short.append(f"{-e['gap']:.4f} under {e['reads_corpus']['label']}")
        if e["base"] is not None and e["corpus_free"]["value"] < e["base"]:
            short.append(f"{e['base'] - e['corpus_free']['value']:.4f} under the base")
        lines.append(f"- {column}: missed by " + " and ".join(short))
        audit = _audit_line(column, e)
        if audit:
            lines.append(audit)
    return lines


def question_sections(
    plan: PlanFile, results: dict[str, Any], per_query: dict[tuple[str, str], dict]
) -> list[str]:
    """Both sections for the report (empty when the run has nothing to compare), and their JSON in
    ``results`` (``without_corpus``, ``prompts``)."""
    resamples = plan.evaluation["bootstrap_resamples"]
    seed = plan.evaluation.get("bootstrap_seed", 0)
    results["without_corpus"] = without_corpus(results, per_query, resamples, seed)
    results["prompts"] = prompts(results, plan)
    base = base_values(results)
    lines: list[str] = []
    corpus = without_corpus_section(results["without_corpus"], results["rows"])
    if corpus:
        lines += ["", "## Without the corpus", "", *corpus]
    prompt_lines = prompts_section(results["prompts"], base)
    if prompt_lines:
        lines += ["", "## Prompts side by side", "", *prompt_lines]
    return lines
