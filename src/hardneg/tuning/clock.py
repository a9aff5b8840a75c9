"""The tune's clock: wall time spent across invocations (a killed tune resumes with its budget as
spent), saved every few seconds, and how far the estimates (already corrected by what ran on this
machine before the tune began, ``hardneg.stages.rates``) are still off in this tune."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.core.io import write_json
from hardneg.stages.rates import MachineRates

GRACE = 1.1
"""No stage starts after this times the budget."""
SAVE_EVERY_S = 10.0


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

    rates: MachineRates = field(init=False)
    """The per-kind corrections its estimates use, fixed for the tune's life (saved with it): its own
    stages add to ``rates.json``, and a resumed tune must not correct its estimates twice."""

    def __post_init__(self) -> None:
        saved = None
        try:
            state = json.loads(self.path.read_text())
            saved = state.get("corrections")
            self.plan = state.get("plan")
            # Killed or finished, the time it took counts: a rerun replays the cached stages for
            # free, and a larger budget extends the search by the difference.
            self.earlier = float(state["spent_seconds"])
            self.measured = float(state.get("measured_seconds", 0.0))
            self.estimated = float(state.get("estimated_seconds", 0.0))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.earlier = 0.0
        valid = isinstance(saved, dict) and all(isinstance(v, (int, float)) for v in saved.values())
        self.rates = MachineRates(saved) if valid else MachineRates.current()

    @property
    def ratio(self) -> float:
        """Measured / estimated seconds so far (1 until a minute of estimates is measured), bounded."""
        if self.estimated < 60:
            return 1.0
        return max(0.25, min(4.0, self.measured / self.estimated))

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
            "corrections": self.rates.corrections,
        }
        write_json(self.path, state)
