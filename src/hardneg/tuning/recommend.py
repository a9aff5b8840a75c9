"""What a tune tells its user: the recipes ranked on the dev split with intervals, paired tests
(Holm) against the best and against the untuned base, and each one's cost; one sentence on what to
use; the winner as a ``hardneg run`` config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.core.io import atomic_open, write_json
from hardneg.evaluation.stats import bootstrap_ci, holm, paired_test
from hardneg.tuning.search import Search, Trial


def rank_key(trial: Trial) -> tuple:
    return (-trial.rung, -(trial.scores.get(trial.rung, float("-inf"))))


def rows(search: Search, costs: dict[str, float]) -> list[dict[str, Any]]:
    """Ranked: the furthest rung first, then the score there. Each recipe is tested at its last
    rung against the best recipe at that same rung (same training size) and against the base."""
    resamples = search.template.get("evaluation", {}).get("bootstrap_resamples", 10_000)
    scored = sorted((t for t in search.trials if t.scores), key=rank_key)
    best_at = {
        rung: max((t for t in scored if rung in t.scores), key=lambda t: t.scores[rung])
        for rung in {r for t in scored for r in t.scores}
    }
    vs_best: dict[str, float] = {}
    vs_base: dict[str, float] = {}
    for trial in scored:
        values = trial.per_query[trial.rung]
        best = best_at[trial.rung]
        if trial is not best:
            vs_best[trial.candidate.name] = paired_test(values, best.per_query[trial.rung], resamples)
        if search.base:
            vs_base[trial.candidate.name] = paired_test(values, search.base, resamples)
    vs_best, vs_base = holm(vs_best), holm(vs_base)
    base_mean = sum(search.base.values()) / len(search.base) if search.base else None
    table = []
    for trial in sorted(search.trials, key=rank_key):
        name = trial.candidate.name
        entry: dict[str, Any] = {
            "recipe": name,
            "label": trial.candidate.label,
            "state": trial.state,
            "rung": trial.rung + 1,
            "train_pairs": search.rungs[trial.rung] if trial.scores else None,
            "corpus_free": not trial.corpus_reads,
            "corpus_reads": trial.corpus_reads,
            "note": trial.note,
            "seconds": round(costs.get(name, 0.0), 1),
            "scores_by_rung": {str(r + 1): round(v, 4) for r, v in sorted(trial.scores.items())},
        }
        if trial.scores:
            values = list(trial.per_query[trial.rung].values())
            low, high = bootstrap_ci(values, resamples=resamples)
            entry.update(
                value=round(trial.scores[trial.rung], 4),
                ci=[round(low, 4), round(high, 4)],
                p_vs_best=round(vs_best[name], 4) if name in vs_best else None,
                p_vs_base=round(vs_base[name], 4) if name in vs_base else None,
                vs_base=round(trial.scores[trial.rung] - base_mean, 4) if base_mean is not None else None,
            )
        table.append(entry)
    return table


def verdict(table: list[dict[str, Any]], base: float | None, metric: str) -> str:
    """One sentence: what to use, or that the untuned base is best and by how much."""
    scored = [r for r in table if "value" in r]
    if not scored:
        return "No recipe finished a rung within the budget: give a larger --budget (see the dry run)."
    top = scored[0]
    where = f"dev {metric} {top['value']:.4f}"
    if base is None:
        return f"Use {top['recipe']} ({top['label']}): {where}."
    gap = top["value"] - base
    p = top.get("p_vs_base")
    significance = f"Holm p = {p:.3g}" if p is not None else "no test"
    if gap <= 0:
        return (
            f"The untuned base model is best: {base:.4f} on the dev split; the best recipe, {top['recipe']}, "
            f"scores {top['value']:.4f} ({gap:+.4f}, {significance}). Keep the base model."
        )
    caveat = "" if p is not None and p < 0.05 else " (not significant at 0.05: the gain may not hold)"
    return (
        f"Use {top['recipe']} ({top['label']}): {where} against {base:.4f} untuned "
        f"({gap / base if base else float('inf'):+.1%}, {significance}){caveat}."
    )


def markdown(result: dict[str, Any]) -> str:
    metric = result["metric"]
    lines = [
        f"# Which negatives suit {result['dataset']}",
        "",
        result["verdict"],
        "",
        f"Dev split: {result['dev_queries']} train queries held out (seed {result['seed']}), scored "
        f"{result['dev_scoring']}; the test split was not read. Rungs (train pairs): "
        + ", ".join(str(n) for n in result["rungs"])
        + f". Budget {result['budget_seconds'] / 60:.0f} min, spent {result['spent_seconds'] / 60:.1f} min.",
        "",
        f"| # | recipe | corpus-free | rung (pairs) | dev {metric} | 95% CI | vs base | p vs best (Holm) "
        "| p vs base (Holm) | cost (min) | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = result["base"]
    if base is not None:
        lines.append(f"| | untuned base ({result['base_model']}) | | | {base:.4f} | | | | | | |")
    for number, row in enumerate(result["recipes"], start=1):

        def fmt(key: str, spec: str = ".4f") -> str:
            value = row.get(key)
            return "" if value is None else format(value, spec)

        ci = f"[{row['ci'][0]:.4f}, {row['ci'][1]:.4f}]" if "ci" in row else ""
        rung = f"{row['rung']} ({row['train_pairs']})" if row["train_pairs"] else ""
        lines.append(
            f"| {number} | {row['recipe']}: {row['label']} | {'◇' if row['corpus_free'] else ''} "
            f"| {rung} | "
            f"{fmt('value')} | {ci} | {fmt('vs_base', '+.4f')} | {fmt('p_vs_best', '.3g')} | "
            f"{fmt('p_vs_base', '.3g')} | {row['seconds'] / 60:.1f} | {row['note']} |"
        )
    lines += [
        "",
        "◇: never reads the corpus beyond the pairs' own positives. A recipe is tested at the last rung it "
        "reached, against the best recipe at that rung (same number of train pairs) and against the base. "
        "Cost: the wall time of the stages it added (shared stages count once, for the first).",
        "",
        f"Next: `hardneg run {result['recipe_file']}` trains the winner on the whole train split; "
        "its training "
        f"set is in {result['train_folder']} (Hugging Face folder and Parquet).",
    ]
    return "\n".join(lines) + "\n"


def write(output: Path, result: dict[str, Any]) -> None:
    write_json(output / "recommendation.json", result)
    with atomic_open(output / "recommendation.md") as handle:
        handle.write(markdown(result))


def recipe_toml(config: dict[str, Any], comment: str) -> str:
    """A grid config as TOML (plain keys, then [[datasets]], then tables), checked by reading it back."""
    import math
    import re
    import tomllib

    lines = [f"# {line}" for line in comment.splitlines()]

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"recipe.toml: {v!r} has no TOML form")
        return json.dumps(v, ensure_ascii=False)

    def table(prefix: str, data: dict[str, Any]) -> None:
        plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
        if plain or not data:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{key(k)} = {value(v)}" for k, v in plain.items())
        for k, v in data.items():
            if isinstance(v, dict):
                table(f"{prefix}.{key(k)}", v)

    lines.extend(
        f"{key(k)} = {value(v)}" for k, v in config.items() if k != "datasets" and not isinstance(v, dict)
    )
    for spec in config.get("datasets", []):
        lines.append("\n[[datasets]]")
        lines.extend(f"{key(k)} = {value(v)}" for k, v in spec.items())
    for k, v in config.items():
        if isinstance(v, dict):
            table(key(k), v)
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != config:
        raise ValueError("recipe.toml: the written TOML does not read back as the recipe")
    return text
