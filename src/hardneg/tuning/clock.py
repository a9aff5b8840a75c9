"""The tune's clock: wall time spent across invocations (a killed tune resumes with its budget as
spent), saved every few seconds, and how far the estimates have been off, remembered per machine so
that the next tune plans its first bracket with this machine's rates."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.core.io import cache_root, write_json

GRACE = 1.1
"""No stage starts after this times the budget."""
SAVE_EVERY_S = 10.0
KEEP_TUNES = 5
"""How many recent tunes per machine the rates memory keeps."""


@dataclass
class Clock:
    """Wall time spent by this tune, earlier (killed or finished) invocations included."""

    path: Path
    budget: float
    earlier: float = 0.0
    started: float = field(default_factory=time.time)
    measured: float = 0.0
    estimated: float = 0.0
    """Wall seconds of the stages run so far, and what they were estimated to take."""
    plan: dict | None = None
    """The rungs and what each can afford, decided once for these settings: a resumed or rerun tune
    replays the same decisions (its finished stages now cost nothing) instead of planning anew."""
    before: tuple[float, float] | None = field(default=None, init=False)
    """Measured and estimated seconds of this machine's recent other tunes (``tune-rates.json``)."""

    def __post_init__(self) -> None:
        try:
            state = json.loads(self.path.read_text())
            self.plan = state.get("plan")
            # Killed or finished, the time it took counts: a rerun replays the cached stages for
            # free, and a larger budget extends the search by the difference.
            self.earlier = float(state["spent_seconds"])
            self.measured = float(state.get("measured_seconds", 0.0))
            self.estimated = float(state.get("estimated_seconds", 0.0))
        except (OSError, ValueError, KeyError, TypeError):
            self.earlier = 0.0
        self.before = _machine_rates(exclude=self.path)

    @property
    def ratio(self) -> float:
        """Measured / estimated seconds, bounded: this tune's once it has measured a minute of
        estimates, else that of this machine's recent tunes, else 1."""
        measured, estimated = (
            (self.measured, self.estimated) if self.estimated >= 60 else self.before or (0.0, 0.0)
        )
        if estimated < 60:
            return 1.0
        return max(0.25, min(4.0, measured / estimated))

    def measure(self, took: float, estimated: float) -> None:
        self.measured += took
        self.estimated += estimated

    @property
    def spent(self) -> float:
        return self.earlier + time.time() - self.started

    @property
    def left(self) -> float:
        return self.budget - self.spent

    def deadline(self) -> float:
        return time.time() + self.budget * GRACE - self.spent

    def __enter__(self) -> Clock:
        """Save the time spent every ``SAVE_EVERY_S`` while the tune runs: a SIGKILL loses at most that."""
        self._stop = threading.Event()

        def beat() -> None:
            while not self._stop.wait(SAVE_EVERY_S):
                try:
                    self.save()
                except OSError:
                    return

        self._thread = threading.Thread(target=beat, daemon=True, name="hardneg-tune-clock")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.save()

    def save(self, finished: bool = False) -> None:
        state = {
            "spent_seconds": round(self.spent, 1),
            "budget_seconds": self.budget,
            "finished": finished,
            "measured_seconds": round(self.measured, 1),
            "estimated_seconds": round(self.estimated, 1),
            "plan": self.plan,
        }
        write_json(self.path, state)
        if self.estimated:
            _remember(self.path, self.measured, self.estimated)


def machine_key() -> str:
    """The CPU model and core count: the rates change with them (sessions may get another CPU)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} x{os.cpu_count() or 1}"


def _rates_path() -> Path:
    return cache_root() / "tune-rates.json"


def _read_rates() -> dict:
    try:
        found = json.loads(_rates_path().read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _machine_rates(exclude: Path) -> tuple[float, float] | None:
    """Measured and estimated seconds of this machine's recent tunes, other than ``exclude``."""
    tunes = _read_rates().get(machine_key(), {})
    kept = [v for k, v in tunes.items() if k != str(exclude.resolve()) and isinstance(v, list)]
    if not kept:
        return None
    return sum(float(v[0]) for v in kept), sum(float(v[1]) for v in kept)


def _remember(path: Path, measured: float, estimated: float) -> None:
    """This tune's totals (replacing its earlier ones) under this machine, the last few tunes kept."""
    rates = _read_rates()
    tunes = rates.setdefault(machine_key(), {})
    tunes.pop(str(path.resolve()), None)
    tunes[str(path.resolve())] = [round(measured, 1), round(estimated, 1)]
    rates[machine_key()] = dict(list(tunes.items())[-KEEP_TUNES:])
    try:
        write_json(_rates_path(), rates)
    except OSError:
        pass  # a read-only cache: the next tune plans with the plain rates
