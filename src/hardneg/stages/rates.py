"""What stages of each kind really took on this machine against their estimates, so that the dry
run and the tune's plan speak of this machine rather than of the one the rates were measured on.

Kept in ``$HARDNEG_CACHE/rates.json`` per CPU model and core count (a session may get another CPU):
the last ``KEEP`` first attempts of each kind. A kind without enough of them falls back to the
reference rates scaled to this machine's cores. Every machine that runs a stage (a Ray worker too)
records its own."""

from __future__ import annotations

import json
import os
import platform
from functools import lru_cache
from pathlib import Path

from hardneg.core.io import cache_root, write_json
from hardneg.stages.resources import machine

RATES_CORES = 2
"""The reference rates were measured on 2 CPU cores."""
KEEP = 20
"""Stages remembered per kind and machine."""
MIN_ESTIMATED_S = 120.0
"""A kind's correction needs this many estimated seconds behind it: a few tiny stages say little."""
BOUNDS = (0.1, 10.0)


def machine_key() -> str:
    """The CPU model and core count (GPUs too): the rates change with them."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = machine()["gpus"]
    return f"{model} x{os.cpu_count() or 1}" + (f" +{gpus} GPU" if gpus else "")


def core_scale() -> float:
    """The reference rates on this machine's cores, before anything was measured here."""
    here = machine()
    return RATES_CORES / here["cpus"] if here["gpus"] == 0 else 1.0


def _path() -> Path:
    return cache_root() / "rates.json"


def _read() -> dict:
    try:
        found = json.loads(_path().read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def remember(kind: str, seconds: float, estimated: float | None) -> None:
    """One finished first attempt of a stage of ``kind``: its wall seconds against its estimate."""
    if not estimated or estimated <= 0:
        return
    rates = _read()
    mine = rates.setdefault(machine_key(), {})
    mine[kind] = [*mine.get(kind, []), [round(seconds, 2), round(estimated, 2)]][-KEEP:]
    try:
        write_json(_path(), rates)
    except OSError:
        pass  # a read-only cache: the dry run keeps the reference rates


def corrections() -> dict[str, float]:
    """Measured / estimated seconds per stage kind on this machine, where enough was measured."""
    found = {}
    for kind, runs in _read().get(machine_key(), {}).items():
        try:
            measured, estimated = sum(float(r[0]) for r in runs), sum(float(r[1]) for r in runs)
        except (TypeError, ValueError, IndexError):
            continue  # a hand-edited file: ignore that kind
        if estimated >= MIN_ESTIMATED_S:
            found[kind] = max(BOUNDS[0], min(BOUNDS[1], measured / estimated))
    return found


class MachineRates:
    """Estimated seconds on this machine: the kind's measured correction, else the core scaling.
    ``current()`` reads the file once per process (and cache folder), so that a tune's plans and
    its measurements of them use the same corrections while its stages add to the file."""

    def __init__(self) -> None:
        self.corrections = corrections()
        self.scale = core_scale()

    @staticmethod
    def current() -> MachineRates:
        return _loaded(str(_path()))

    def seconds(self, kind: str, seconds: float | None) -> float | None:
        if seconds is None:
            return None
        return seconds * self.corrections.get(kind, self.scale)

    def total(self, stages) -> float:
        """Estimated seconds of ``stages`` (plan stages) on this machine; unknown ones count 0."""
        return sum(self.seconds(s.kind, s.estimate.seconds) or 0.0 for s in stages)

    def describe(self) -> str:
        """One line for the dry run: which kinds' times were measured here."""
        if not self.corrections:
            return ""
        measured = ", ".join(f"{kind} x{ratio:.2f}" for kind, ratio in sorted(self.corrections.items()))
        return f"times corrected by what ran on this machine ({measured}; $HARDNEG_CACHE/rates.json)"


@lru_cache(maxsize=8)
def _loaded(path: str) -> MachineRates:
    return MachineRates()
