"""Uncertainty for a results table, which the reference study did not report: a bootstrap
confidence interval per cell, and paired tests over queries with Holm's correction across rows.

Both work on per-query metric values (``EvaluationResult.per_query``), so the unit of sampling is
the query, as in IR significance testing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
"""The significance level of every test the report marks (after Holm's correction)."""


def bootstrap_ci(
    per_query: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries (seeded: the same table every run)."""
    values = np.asarray(per_query, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        mean = float(values.mean()) if len(values) else float("nan")
        return mean, mean
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(
    a: Mapping[str, float], b: Mapping[str, float], resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value of a paired randomization test (signs of the per-query differences flipped
    at random) on the mean difference, over the queries both systems were scored on."""
    common = sorted(set(a) & set(b))
    differences = np.array([a[q] - b[q] for q in common], dtype=float)
    if len(differences) < 2 or not differences.any():
        return 1.0
    result = stats.permutation_test(
        (differences,),
        np.mean,
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(result.pvalue)


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (family-wise error over the comparisons given)."""
    order = sorted(pvalues, key=pvalues.__getitem__)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[name]))
        adjusted[name] = running
    return adjusted


def wilson(count: int, total: int) -> list[float]:
    """A share's 95% Wilson interval (statsmodels): sound at shares near 0 or 1 and small counts."""
    from statsmodels.stats.proportion import proportion_confint

    return [float(bound) for bound in proportion_confint(count, total, alpha=0.05, method="wilson")]


def cohen_kappa(pairs: Sequence[tuple[str, str]], categories: Sequence[str]) -> float | None:
    """Cohen's kappa of two labelings over ``categories`` (statsmodels); None when it is undefined
    (no pairs, or chance agreement of 1)."""
    import warnings

    from statsmodels.stats.inter_rater import cohens_kappa

    if not pairs:
        return None
    table = np.zeros((len(categories), len(categories)))
    for a, b in pairs:
        table[categories.index(a), categories.index(b)] += 1
    with warnings.catch_warnings():  # its z-value divides by zero on a one-sided table
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohens_kappa(table).kappa)
    return None if not np.isfinite(kappa) else kappa


def fleiss(labels: Mapping[str, Mapping[str, str]], categories: Sequence[str]) -> dict:
    """Fleiss' kappa needs the same number of annotators per item: it counts the items with the most
    common number (at least 2) and says how many items with 2 or more annotators were left out."""
    from collections import Counter

    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    sizes = Counter(len(v) for v in labels.values() if len(v) >= 2)
    if not sizes:
        return {"kappa": None, "items": 0, "annotators_per_item": None, "left_out": 0}
    raters = max(sizes, key=lambda size: (sizes[size], size))
    rows = [
        [categories.index(label) for label in votes.values()]
        for votes in labels.values()
        if len(votes) == raters
    ]
    table, _ = aggregate_raters(np.array(rows), n_cat=len(categories))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(fleiss_kappa(table, method="fleiss"))
    return {
        "kappa": None if np.isnan(kappa) else kappa,
        "items": len(rows),
        "annotators_per_item": raters,
        "left_out": sum(sizes.values()) - len(rows),
    }
