"""Bootstrap intervals, paired randomization tests and Holm's correction."""

import numpy as np
import pytest

from hardneg.evaluation.stats import bootstrap_ci, holm, paired_test


def test_bootstrap_interval_holds_the_mean_narrows_with_more_queries_and_is_seeded():
    rng = np.random.default_rng(1)
    few, many = rng.uniform(size=30), rng.uniform(size=3000)
    low, high = bootstrap_ci(few)
    assert low < few.mean() < high
    many_low, many_high = bootstrap_ci(many)
    assert (many_high - many_low) < (high - low) / 5
    assert bootstrap_ci(few) == (low, high) and bootstrap_ci(few, seed=2) != (low, high)
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5) and bootstrap_ci([0.7]) == (0.7, 0.7)


def test_paired_test_separates_a_consistent_gain_from_noise():
    rng = np.random.default_rng(0)
    base = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(size=80))}
    better = {q: v + 0.05 + rng.normal(0, 0.02) for q, v in base.items()}
    noisy = {q: v + rng.normal(0, 0.05) for q, v in base.items()}
    assert paired_test(better, base) < 0.001
    assert paired_test(noisy, base) > 0.05
    assert paired_test(base, dict(base)) == 1.0
    assert paired_test(better, {"q0": 0.1, "other": 0.3}) == 1.0  # one shared query: nothing to test


def test_holm_adjusts_in_order_and_stays_monotone():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"x": 0.6, "y": 0.9}) == {"x": 1.0, "y": 1.0}
