"""What stages of each kind really took on this machine against their estimates, so that the dry
run and the tune's plan speak of this machine rather than of the one the rates were measured on.

Kept in ``$HARDNEG_CACHE/rates.json`` per CPU model, core count and GPU count (a session may get
another CPU): the last ``KEEP`` stages of each kind that ran whole on their first attempt, alone
(the local executor; Ray's stages share their nodes), without taking work from a cache
(``hardneg.core.reuse``). A kind without enough of them keeps the reference rates scaled to this
machine's cores."""

from __future__ import annotations

import json
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
"""A kind's correction needs this many estimated (reference) seconds behind it."""
MIN_SAMPLE_S = 10.0
"""A stage estimated under this is mostly loading a model: it is not remembered."""
BOUNDS = (0.1, 10.0)


@lru_cache(maxsize=1)
def machine_key() -> str:
    """The CPU model and core count (GPUs too): the rates change with them. Probed once a process
    (it reads /proc/cpuinfo and asks torch for GPUs), as the stages it follows do."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    here = machine()
    return f"{model} x{here['cpus']}" + (f" +{here['gpus']} GPU" if here["gpus"] else "")


def core_scale() -> float:
    """The reference rates on this machine's cores, before anything was measured here."""
    here = machine()
    return RATES_CORES / here["cpus"] if here["gpus"] == 0 else 1.0


def _path() -> Path:
    return cache_root() / "rates.json"


def _read() -> dict[str, dict[str, list[list[float]]]]:
    """The file's well-formed entries (a hand-edited or older file loses only what is malformed)."""
    try:
        found = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    kept: dict[str, dict[str, list[list[float]]]] = {}
    for key, kinds in found.items():
        if not isinstance(kinds, dict):
            continue
        for kind, runs in kinds.items():
            good = [
                [float(r[0]), float(r[1])]
                for r in (runs if isinstance(runs, list) else [])
                if isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r)
            ]
            if good:
                kept.setdefault(key, {})[kind] = good
    return kept


def remember(kind: str, seconds: float, estimated: float | None) -> None:
    """One stage of ``kind`` that ran whole here: its wall seconds against its estimate."""
    if not estimated or estimated < MIN_SAMPLE_S:
        return
    rates = _read()
    mine = rates.setdefault(machine_key(), {})
    mine[kind] = [*mine.get(kind, []), [round(max(0.0, seconds), 2), round(estimated, 2)]][-KEEP:]
    try:
        write_json(_path(), rates)
    except OSError:
        pass  # a read-only cache: the dry run keeps the reference rates


def corrections() -> dict[str, float]:
    """Measured / estimated seconds per stage kind on this machine, where enough was measured."""
    found = {}
    for kind, runs in _read().get(machine_key(), {}).items():
        measured, estimated = sum(r[0] for r in runs), sum(r[1] for r in runs)
        if estimated >= MIN_ESTIMATED_S:
            found[kind] = max(BOUNDS[0], min(BOUNDS[1], measured / estimated))
    return found


class MachineRates:
    """Estimated seconds on this machine: the kind's measured correction, else the core scaling.
    ``current()`` reads the file once per process (and cache folder), so that a tune's plans and
    its measurements of them use the same corrections while its stages add to the file."""

    def __init__(self, saved: dict[str, float] | None = None) -> None:
        """``saved``: the corrections an earlier sitting of the same tune planned with."""
        self.corrections = corrections() if saved is None else dict(saved)
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


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 40 s, 12 min, 2.5 h."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
