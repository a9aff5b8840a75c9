"""Uncertainty for a results table, which the reference study did not report: a bootstrap
confidence interval per cell, and paired tests over queries with Holm's correction across rows.

Both work on per-query metric values (``EvaluationResult.per_query``), so the unit of sampling is
the query, as in IR significance testing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def bootstrap_ci(
    per_query: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries (seeded: the same table every run)."""
    values = np.asarray(per_query, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        mean = float(values.mean()) if len(values) else float("nan")
        return mean, mean
    result = stats.bootstrap(
        (values,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile",
        random_state=np.random.default_rng(seed), vectorized=True,
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(a: Mapping[str, float], b: Mapping[str, float], resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of a paired randomization test (signs of the per-query differences flipped
    at random) on the mean difference, over the queries both systems were scored on."""
    common = sorted(set(a) & set(b))
    differences = np.array([a[q] - b[q] for q in common], dtype=float)
    if len(differences) < 2 or not differences.any():
        return 1.0
    result = stats.permutation_test(
        (differences,), np.mean, permutation_type="samples", n_resamples=resamples, alternative="two-sided",
        random_state=np.random.default_rng(seed), vectorized=True,
    )  # fmt: skip
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
