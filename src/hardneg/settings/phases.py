"""``[[phases]]``: the order a long grid runs in. A study of many hours on a small machine runs
over several sittings; phases put the cells that decide it first (in-domain rows, cheap sources)
and end each on whole stages. Every stage is cached by its own settings, not by the grid, so a
phase's stages are the whole grid's: the run after the last phase only adds what is left."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hardneg.settings.base import Settings


class PhaseSettings(Settings):
    """One phase: some rows on some training datasets, tested in-domain or on every test set."""

    name: str = Field(min_length=1)
    """Shown in the log and by ``--dry-run``; ``hardneg run --phase NAME`` stops after it."""
    sources: list[str] = []
    """The rows of this phase (default: every source of each dataset). A source a dataset does not
    train is skipped there; a combination's inputs are made, but get no model unless named."""
    datasets: list[str] = []
    """Training datasets (``[[datasets]].train``) of this phase (default: all)."""
    tests: Literal["in-domain", "all"] = "in-domain"
    """``in-domain``: each model tested on its own dataset only; ``all``: on each of its ``test``."""
