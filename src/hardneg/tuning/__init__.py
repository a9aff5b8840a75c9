"""`hardneg tune`: the recipe of negatives and loss that suits a user's own data, found on a dev
split of their train pairs within a time budget (``tune``)."""

from __future__ import annotations

from hardneg.tuning.tune import TuneResult, tune

__all__ = ["TuneResult", "tune"]
